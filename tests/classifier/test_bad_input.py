"""Hostile, broken and awkward uploads (tests/corpus.py) through every door a photo comes in: the upload form,
the JSON API and the `predict_images` command.

Rejected: a message a person understands, the right status code, no row and no file left behind, and nothing
over the pixel limit ever decoded. Accepted: a completed prediction whose stored photo is an upright,
metadata-free RGB JPEG under a random name inside MEDIA_ROOT.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from PIL import Image, ImageFile, ImageOps
from PIL.ExifTags import IFD

from classifier.images import stored_sizes
from classifier.models import Prediction
from classifier.services.prediction_runs import prediction_run
from tests.conftest import media_files
from tests.corpus import CASES, TEST_UPLOAD_LIMIT_BYTES, Case, encode, multipart_body
from tests.factories import api_token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_isolated_cache")]

STORED_NAME = re.compile(r"^(lesions|thumbnails)/[0-9a-f]{32}\.jpg$")
EXIF_ORIENTATION = 0x0112
GPS_IFD = IFD.GPSInfo
# Signs that an internal error, not a message for a person, reached the client.
NOT_FOR_HUMANS = ("Traceback", "Exception", "BytesIO", "Errno", "NoneType", "Server Error")


def _params():
    for case in CASES:
        for entry_point in case.entry_points:
            yield pytest.param(case, entry_point, id=f"{entry_point}-{case.id}")


@pytest.fixture
def decoded_sizes(monkeypatch) -> list[tuple[int, int]]:
    """The size of every image whose pixels Pillow decodes during the test (ImageFile.load is where that
    happens): a decompression bomb must be refused from its header, before this is ever reached."""
    sizes: list[tuple[int, int]] = []
    original_load = ImageFile.ImageFile.load

    def recording_load(self):
        sizes.append(self.size)
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    return sizes


@pytest.fixture
def body_bytes_read(monkeypatch) -> list[int]:
    """How many bytes of the request body the server side read (the test client's wsgi.input)."""
    from django.test import client as test_client

    counter = [0]
    original_read = test_client.FakePayload.read

    def counting_read(self, size=-1, /):
        data = original_read(self, size)
        counter[0] += len(data)
        return data

    monkeypatch.setattr(test_client.FakePayload, "read", counting_read)
    return counter


def _post_upload(entry_point: str, user, case: Case, content: bytes):
    body, content_type = multipart_body(
        filename=case.filename, content=content, fields={"body_site": "trunk", "note": "left shoulder"}
    )
    if entry_point == "form":
        client = Client()
        client.force_login(user)
        return client.generic("POST", reverse("classifier:upload"), body, content_type=content_type)
    return Client().generic(
        "POST",
        reverse("api:prediction-list"),
        body,
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Token {api_token_for(user)}",
        HTTP_ACCEPT="application/json",
    )


def _message(entry_point: str, response) -> str:
    if entry_point == "api":
        assert response["Content-Type"].startswith("application/json")
        return response.json()["detail"]
    text = html.unescape(response.content.decode())
    form = (response.context or {}).get("form") if response.context is not None else None
    if form is not None and form.errors.get("image"):
        return " ".join(form.errors["image"])
    return text  # the 413 page the size guard renders before any form exists


def _assert_upright(stored: Image.Image, upright: np.ndarray) -> None:
    pixels = np.asarray(stored.convert("RGB"), dtype=np.int16)
    assert pixels.shape == upright.shape, "the stored photo is not in its upright shape"
    error = np.abs(pixels - upright).mean()
    # JPEG error on flat colours is a few levels; any wrong rotation or mirror moves whole quadrants (>40).
    assert error < 8, f"stored pixels differ from the upright original by {error:.1f} levels on average"


@pytest.mark.parametrize(("case", "entry_point"), list(_params()))
def test_bad_input(case: Case, entry_point: str, request, settings, private_media, decoded_sizes, body_bytes_read):
    settings.MELANOMA_MAX_UPLOAD_BYTES = TEST_UPLOAD_LIMIT_BYTES
    content = case.make()
    if entry_point == "command":
        _check_command(case, content, request.getfixturevalue("active_model"), request, private_media)
    else:
        alice = request.getfixturevalue("alice")
        response = _post_upload(entry_point, alice, case, content)
        if case.accept:
            _check_accepted_upload(case, entry_point, response, request, private_media)
        else:
            _check_rejected_upload(case, entry_point, response, private_media, body_bytes_read[0])

    max_pixels = settings.MELANOMA_MAX_IMAGE_PIXELS
    assert all(width * height <= max_pixels for width, height in decoded_sizes), decoded_sizes


def _check_rejected_upload(case: Case, entry_point: str, response, media_root: Path, bytes_read: int) -> None:
    assert response.status_code == case.status, response.content[:500]
    message = _message(entry_point, response)
    assert case.words.lower() in message.lower()
    assert not any(marker in message for marker in NOT_FOR_HUMANS), message
    # Nothing half-done: no row, no file.
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []
    if case.status == 413:
        from classifier.uploads import max_request_bytes

        # The size guard answers from the declared length: the body is never read past the limit.
        assert bytes_read <= max_request_bytes(), f"read {bytes_read} bytes of a {len(case.make())}-byte upload"


def _check_accepted_upload(case: Case, entry_point: str, response, request, media_root: Path) -> None:
    if entry_point == "form":
        assert response.status_code == 302, _message("form", response)
        prediction = Prediction.objects.get()
        assert response["Location"] == reverse("classifier:prediction_detail", args=[prediction.pk])
    else:
        assert response.status_code == 202, response.content[:500]
        data = response.json()
        assert data["status"] == "queued"
        prediction = Prediction.objects.get(pk=data["id"])
    assert prediction.status == Prediction.Status.QUEUED
    assert prediction.body_site == "trunk"

    # Stored under random names inside MEDIA_ROOT: nothing of the uploaded name reached the disk. A JPEG is kept as
    # taken (its metadata stripped; the worker makes its thumbnail); anything else is re-encoded with a thumbnail.
    with Image.open(io.BytesIO(case.make())) as uploaded:
        kept_as_taken = uploaded.format in {"JPEG", "MPO"} and uploaded.mode in {"RGB", "L"}
    assert STORED_NAME.match(prediction.image.name), prediction.image.name
    if kept_as_taken:
        assert prediction.thumbnail.name == ""
    else:
        assert STORED_NAME.match(prediction.thumbnail.name), prediction.thumbnail.name
    root = Path(media_root).resolve()
    stored = media_files(media_root)
    assert len(stored) == (1 if kept_as_taken else 2)
    assert all(path.resolve().is_relative_to(root) for path in stored)
    if "../" in case.filename:
        assert not (root / case.filename).resolve().exists(), "the upload escaped MEDIA_ROOT"

    with Image.open(root / prediction.image.name) as image:
        assert image.format == "JPEG"
        assert image.mode in {"RGB", "L"} if kept_as_taken else image.mode == "RGB"
        # Of the metadata, at most the orientation remains (a kept JPEG is shown and analysed upright by it).
        assert set(image.getexif()) <= ({EXIF_ORIENTATION} if kept_as_taken else set())
        assert not image.getexif().get_ifd(GPS_IFD)
        assert "comment" not in image.info
        assert "xmp" not in image.info
        if not kept_as_taken:
            assert "icc_profile" not in image.info
        image.load()
        if case.upright is not None:
            _assert_upright(ImageOps.exif_transpose(image), case.upright())

    request.getfixturevalue("active_model")
    done = prediction_run(prediction_id=prediction.pk)
    assert done.status == Prediction.Status.DONE, done.error
    assert done.verdict in Prediction.Verdict.values
    if done.verdict == Prediction.Verdict.RETAKE:
        # Decoded fine, then refused by the photo check (flat test patterns, greyscale): a reason, no score.
        assert done.quality_issue in Prediction.QualityIssue.values
        assert done.score is None
        assert done.melanoma_probability is None
    else:
        assert 0.0 <= done.score <= 1.0
    # Every check ends with an upright thumbnail, made by the worker when the web kept the photo as taken.
    assert STORED_NAME.match(done.thumbnail.name), done.thumbnail.name
    with Image.open(root / done.thumbnail.name) as thumbnail:
        assert max(thumbnail.size) <= stored_sizes()[1]
        if case.upright is not None:
            height, width = case.upright().shape[:2]
            assert (thumbnail.width > thumbnail.height) == (width > height), "the thumbnail is not upright"


def _check_command(case: Case, content: bytes, active_model, request, media_root: Path) -> None:
    folder = Path(request.getfixturevalue("tmp_path")) / "photos"
    folder.mkdir()
    path = folder / case.filename
    path.write_bytes(content)
    paths = [path]
    captured: list[np.ndarray] = []
    if case.upright is not None:
        # The command keeps nothing; what the model is shown must be upright. Score the upright original
        # alongside and compare the two model inputs.
        reference = folder / "reference-upright.png"
        reference.write_bytes(encode(Image.fromarray(case.upright()), "PNG"))
        paths = [reference, path]
        _capture_model_inputs(request.getfixturevalue("monkeypatch"), captured)

    out, err = io.StringIO(), io.StringIO()
    if case.accept:
        call_command("predict_images", *map(str, paths), stdout=out, stderr=err)
        line = next(line for line in out.getvalue().splitlines() if line.startswith(str(path)))
        probability = float(line.split()[-2])
        assert 0.0 <= probability <= 1.0
        assert line.split()[-1] in Prediction.Verdict.values
        if captured:
            reference_input, case_input = captured
            difference = float(np.abs(reference_input - case_input).mean())
            assert difference < 0.1, f"the model saw a rotated or mirrored photo (mean difference {difference:.3f})"
    else:
        with pytest.raises(CommandError, match="could not be scored"):
            call_command("predict_images", *map(str, paths), stdout=out, stderr=err)
        line = next(line for line in out.getvalue().splitlines() if line.startswith(str(path)))
        assert "failed:" in line
        reason = line.split("failed:", 1)[1].strip()
        assert reason
        assert case.command_words.lower() in reason.lower()
    assert Prediction.objects.count() == 0
    assert media_files(media_root) == []


def _capture_model_inputs(monkeypatch, captured: list[np.ndarray]) -> None:
    from lesion_model.scorer import MelanomaScorer

    original = MelanomaScorer.score_array

    def capturing(self, model_input):
        captured.append(np.array(model_input, copy=True))
        return original(self, model_input)

    monkeypatch.setattr(MelanomaScorer, "score_array", capturing)


@pytest.mark.django_db(transaction=True)
def test_awkward_but_valid_uploads_complete_through_the_real_worker(celery_worker, active_model, alice, settings):
    """The accepted oddities above, end to end: API upload -> Redis -> a real Celery worker -> done."""
    from tests.conftest import wait_for_status

    settings.MELANOMA_MAX_UPLOAD_BYTES = TEST_UPLOAD_LIMIT_BYTES
    odd = ["jpeg-named-png", "png-16bit", "png-palette", "jpeg-cmyk", "exif-orientation-6", "name-nul-byte"]
    cases = [case for case in CASES if case.id in odd]
    ids = []
    for case in cases:
        response = _post_upload("api", alice, case, case.make())
        assert response.status_code == 202, (case.id, response.content[:300])
        ids.append(response.json()["id"])
    for case, pk in zip(cases, ids, strict=True):
        done = wait_for_status(pk, {Prediction.Status.DONE, Prediction.Status.FAILED})
        assert done.status == Prediction.Status.DONE, (case.id, done.error)
        assert done.attempts == 1
