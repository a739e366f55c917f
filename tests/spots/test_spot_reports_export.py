"""The doctor's PDF (per spot, per check) and the data export zip."""

from __future__ import annotations

import csv
import io
import json
import zipfile

from django.urls import reverse
from pypdf import PdfReader

from classifier.services.prediction_writes import prediction_create, prediction_mark_reviewed
from spots.reports import SCREENING_AID, check_report_pdf
from tests.classifier.page_helpers import lesion_jpeg
from tests.spots.conftest import SECRET_SPOT, session_client, token_client


def _pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def test_spot_report_pdf_from_page_and_api(alice, spot_with_checks):
    spot, older, newer = spot_with_checks
    for client, url in (
        (session_client(alice), reverse("spots:spot_report", args=[spot.pk])),
        (token_client(alice), f"/api/spots/{spot.pk}/report.pdf"),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert "attachment" in response["Content-Disposition"]
        text = _pdf_text(response.content)
        assert SECRET_SPOT in text
        assert "Back view" in text
        assert "Trunk" in text
        assert "test-model-1" in text
        assert "it itches" in text  # the symptom answer
        assert older.created_at.strftime("%d %b %Y") in text
        assert newer.created_at.strftime("%d %b %Y") in text
        assert "screening aid, not a diagnosis" in text
        reader = PdfReader(io.BytesIO(response.content))
        assert sum(len(page.images) for page in reader.pages) >= 2  # both photos


def test_check_report_pdf_with_review(alice, staff, private_media):
    check = prediction_create(user=alice, upload=lesion_jpeg())
    prediction_mark_reviewed(prediction=check, reviewer=staff, diagnosis="not_melanoma", comment="Seen in clinic")
    response = session_client(alice).get(reverse("spots:prediction_report", args=[check.pk]))
    assert response.status_code == 200
    text = _pdf_text(response.content)
    assert "Not melanoma" in text
    assert "Seen in clinic" in text
    assert SCREENING_AID.split(".")[0].split()[-1] in text


def test_a_photo_kept_on_its_side_is_upright_in_the_report(alice, private_media):
    """Phones store portrait photos on their side with EXIF orientation 6; the upload keeps them as taken, and PDF
    viewers ignore EXIF, so the report places an upright copy."""
    from PIL import ExifTags, Image

    landscape_on_disk = Image.open(io.BytesIO(lesion_jpeg(400, 300)))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # shown turned a quarter: 300 wide, 400 high
    buffer = io.BytesIO()
    landscape_on_disk.save(buffer, format="JPEG", exif=exif)
    check = prediction_create(user=alice, upload=buffer.getvalue())

    reader = PdfReader(io.BytesIO(check_report_pdf(check=check)))
    (placed,) = [image for page in reader.pages for image in page.images]
    assert placed.image.size == (300, 400)


def test_report_survives_characters_outside_latin1(alice, private_media):
    from spots.services import spot_create

    spot = spot_create(user=alice, name="Muttermal 😀 ǅ", x=0.5, y=0.3)
    check = prediction_create(user=alice, upload=lesion_jpeg(), spot=spot)
    assert "Muttermal" in _pdf_text(check_report_pdf(check=check))


def test_export_zip_holds_every_photo_and_the_tables(alice, bob, spot_with_checks, staff):
    spot, older, newer = spot_with_checks
    unfiled = prediction_create(user=alice, upload=lesion_jpeg(seed=3))
    prediction_create(user=bob, upload=lesion_jpeg(seed=4), note="bob-only")
    prediction_mark_reviewed(prediction=older, reviewer=staff, diagnosis="not_melanoma", comment="ok")
    for client, url in (
        (session_client(alice), reverse("accounts:account_export")),
        (token_client(alice), "/api/me/export/"),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        names = archive.namelist()
        photos = [name for name in names if name.startswith("photos/")]
        assert len(photos) == 3
        assert all(archive.read(name)[:3] == b"\xff\xd8\xff" for name in photos)
        checks = json.loads(archive.read("checks.json"))
        assert sorted(row["id"] for row in checks) == sorted([older.pk, newer.pk, unfiled.pk])
        assert "bob-only" not in archive.read("checks.json").decode()
        rows = list(csv.DictReader(io.StringIO(archive.read("checks.csv").decode())))
        assert len(rows) == 3
        assert [row["id"] for row in csv.DictReader(io.StringIO(archive.read("reviews.csv").decode()))] == [
            str(older.pk)
        ]
        spots = json.loads(archive.read("spots.json"))
        assert spots[0]["name"] == SECRET_SPOT
        assert sorted(spots[0]["check_ids"]) == sorted([older.pk, newer.pk])
        reports = [name for name in names if name.startswith("reports/")]
        assert len(reports) == 2  # the spot's report, and the unfiled check's
        spot_report = next(name for name in reports if "spot-" in name)
        assert SECRET_SPOT in _pdf_text(archive.read(spot_report))


def test_export_needs_login():
    from django.test import Client

    assert Client().get(reverse("accounts:account_export")).status_code == 302
    assert Client(HTTP_ACCEPT="application/json").get("/api/me/export/").status_code == 401
