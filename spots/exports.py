"""Export my data (GDPR art. 20): one zip with every photo, the checks, spots and reviews as CSV and JSON, and
the reports for the doctor. Built in a temporary file (spilled to disk above a few MB), streamed back."""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
import zipfile

from django.http import FileResponse
from django.utils import timezone

from classifier.models import Prediction
from spots.models import Spot
from spots.reports import check_photo_bytes, check_report_pdf, report_filename, spot_report_pdf

logger = logging.getLogger(__name__)

CHECK_FIELDS = (
    "id",
    "created_at",
    "completed_at",
    "status",
    "verdict",
    "melanoma_probability",
    "threshold",
    "model_version",
    "spot_id",
    "spot_name",
    "body_site",
    "note",
    *Prediction.SYMPTOM_FIELDS,
    "photo",
    "reviewed",
    "confirmed_diagnosis",
    "review_comment",
    "reviewed_at",
)
README = """Your data from Skin check, exported {when}.

checks.csv / checks.json   every check: date, result, model version, spot, your answers, clinician review
spots.json                 your spots: name, body-map position (view, x, y as fractions), note, reminders
reviews.csv                clinician reviews of your checks
photos/                    every photo as stored (metadata removed at upload)
reports/                   the PDF report for the doctor, per spot and per check not filed under a spot

A screening aid, not a diagnosis.
"""


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _check_row(check: Prediction, photo: str) -> dict:
    return {
        "id": check.pk,
        "created_at": _iso(check.created_at),
        "completed_at": _iso(check.completed_at),
        "status": check.status,
        "verdict": check.verdict,
        "melanoma_probability": check.melanoma_probability,
        "threshold": check.threshold,
        "model_version": check.model_version.version if check.model_version else None,
        "spot_id": check.spot_id,
        "spot_name": check.spot.name if check.spot is not None else None,
        "body_site": check.body_site,
        "note": check.note,
        **{name: getattr(check, name) for name in Prediction.SYMPTOM_FIELDS},
        "photo": photo,
        "reviewed": check.reviewed,
        "confirmed_diagnosis": check.confirmed_diagnosis,
        "review_comment": check.review_comment,
        "reviewed_at": _iso(check.reviewed_at),
    }


def _csv(rows: list[dict], fields: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def user_export_write(*, user, target) -> None:
    """Write the user's export zip to a binary file object."""
    checks = list(
        Prediction.objects.filter(user=user).select_related("model_version", "spot", "user").order_by("created_at")
    )
    spots = list(Spot.objects.filter(user=user).select_related("user").order_by("created_at"))
    rows = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", README.format(when=timezone.now().isoformat(timespec="seconds")))
        for check in checks:
            photo = f"photos/check-{check.pk}-{check.created_at:%Y%m%d}.jpg"
            try:
                # JPEG: already packed
                archive.writestr(photo, check_photo_bytes(check), compress_type=zipfile.ZIP_STORED)
            except OSError:
                logger.warning("Export: photo of check %s is missing", check.pk)
                photo = ""
            rows.append(_check_row(check, photo))
        archive.writestr("checks.csv", _csv(rows, CHECK_FIELDS))
        archive.writestr("checks.json", json.dumps(rows, indent=2))
        reviews = [row for row in rows if row["reviewed"]]
        review_fields = ("id", "created_at", "confirmed_diagnosis", "review_comment", "reviewed_at")
        archive.writestr("reviews.csv", _csv(reviews, review_fields))
        spot_rows = [
            {
                "id": spot.pk,
                "name": spot.name,
                "view": spot.view,
                "x": spot.x,
                "y": spot.y,
                "region": spot.region,
                "note": spot.note,
                "recheck_months": spot.recheck_months,
                "created_at": _iso(spot.created_at),
                "check_ids": [check.pk for check in checks if check.spot_id == spot.pk],
            }
            for spot in spots
        ]
        archive.writestr("spots.json", json.dumps(spot_rows, indent=2))
        for spot in spots:
            spot_checks = [check for check in reversed(checks) if check.spot_id == spot.pk]
            name = f"reports/spot-{spot.pk}-{report_filename(spot.name)}"
            archive.writestr(name, spot_report_pdf(spot=spot, checks=spot_checks))
        for check in checks:
            if not check.spot_id:
                archive.writestr(f"reports/check-{check.pk}.pdf", check_report_pdf(check=check))


def user_export_response(*, user) -> FileResponse:
    """The export as a download (the account page's button and GET /api/me/export/)."""
    spooled = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - FileResponse closes it
    user_export_write(user=user, target=spooled)
    spooled.seek(0)
    filename = f"skin-check-export-{timezone.localdate():%Y-%m-%d}.zip"
    response = FileResponse(spooled, as_attachment=True, filename=filename, content_type="application/zip")
    response["Cache-Control"] = "private, no-store"
    return response
