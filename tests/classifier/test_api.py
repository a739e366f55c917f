"""The JSON API: every endpoint for owner / other user / anonymous / staff / clinician; every error readable JSON."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from api_tokens.models import ApiToken
from classifier.models import Prediction
from classifier.services.prediction_runs import prediction_fail
from classifier.services.prediction_writes import prediction_create
from tests.conftest import media_files
from tests.factories import TEST_PASSWORD, api_token_for

pytestmark = pytest.mark.django_db

LIST_URL = "/api/predictions/"


@pytest.fixture(autouse=True)
def isolated_rate_limit_cache(settings):
    """Rate-limit counters are keyed by user id, and ids repeat across tests: give each test its own cache."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(id(settings))}
    }


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(user)}")
    return client


def detail_url(pk: int) -> str:
    return f"/api/predictions/{pk}/"


@pytest.fixture
def alice_prediction(alice, make_upload) -> Prediction:
    return prediction_create(user=alice, upload=make_upload(), body_site="trunk", note="on the back")


def noise_png(side: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, size=(side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


# --- token ------------------------------------------------------------------------------------------


def test_token_for_valid_credentials(alice):
    response = APIClient().post("/api/token/", {"username": "alice", "password": TEST_PASSWORD}, format="json")
    assert response.status_code == 200
    assert ApiToken.objects.get(user=alice).prefix == response.json()["token"][:8]

    listing = client_for().get(LIST_URL, HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert listing.status_code == 200


def test_token_for_wrong_password_is_400_with_message(alice):
    response = APIClient().post("/api/token/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 400
    assert "Unable to log in" in response.json()["detail"]
    assert not ApiToken.objects.exists()


def test_session_auth_works_too(alice, alice_prediction):
    client = APIClient()
    client.force_login(alice)
    assert client.get(detail_url(alice_prediction.pk)).status_code == 200


# --- create -----------------------------------------------------------------------------------------


def test_upload_returns_202_and_queues(alice, make_upload, private_media, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(alice).post(
            LIST_URL, {"image": make_upload("photo.png", fmt="PNG"), "body_site": "head_neck", "note": "new"}
        )
    assert response.status_code == 202, response.content
    body = response.json()
    prediction = Prediction.objects.get()
    assert body == {"id": prediction.pk, "status": "queued", "url": f"http://testserver{detail_url(prediction.pk)}"}
    assert response["Location"] == body["url"]
    assert (prediction.user, prediction.body_site, prediction.note) == (alice, "head_neck", "new")
    assert len(media_files(private_media)) == 2
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("empty.jpg", b"", "empty"),
        ("notes.jpg", b"hello, I am text", "not a photo"),
        ("page.png", b"<html><script>alert(1)</script></html>", "web page"),
        ("../../x\x00.jpg", b"<svg onload='alert(1)'/>", "SVG"),
        ("a" * 300 + ".jpg", b"GIF89a" + b"\x00" * 20, "GIF"),
    ],
)
def test_upload_bad_image_is_400_with_reason_and_leaves_nothing(
    alice, make_upload, private_media, name, content, words
):
    response = client_for(alice).post(LIST_URL, {"image": make_upload(name, content=content)})
    assert response.status_code == 400, response.content
    assert words.lower() in response.json()["detail"].lower()
    assert Prediction.objects.count() == 0
    assert media_files(private_media) == []


def test_upload_without_image_is_400(alice):
    response = client_for(alice).post(LIST_URL, {"body_site": "trunk"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("image:")


def test_upload_bad_body_site_is_400(alice, make_upload, private_media):
    response = client_for(alice).post(LIST_URL, {"image": make_upload(), "body_site": "elbow"})
    assert response.status_code == 400
    assert "body_site" in response.json()["detail"]
    assert media_files(private_media) == []


def test_upload_over_limit_by_content_length_is_413_without_reading(alice, settings, private_media):
    data = noise_png(400)
    settings.MELANOMA_MAX_UPLOAD_BYTES = len(data) // 4
    response = client_for(alice).post(LIST_URL, {"image": io.BytesIO(data)}, format="multipart")
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert Prediction.objects.count() == 0
    assert media_files(private_media) == []


def test_upload_over_limit_caught_while_streaming_is_413(alice, settings, private_media):
    data = noise_png(200)
    # Within the middleware's allowance for form fields, so the upload handler is what stops it.
    settings.MELANOMA_MAX_UPLOAD_BYTES = len(data) - 1000
    upload = io.BytesIO(data)
    upload.name = "big.png"
    response = client_for(alice).post(LIST_URL, {"image": upload}, format="multipart")
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert media_files(private_media) == []


def test_upload_rate_limit_is_429_with_message(alice, bob, make_upload, settings):
    settings.MELANOMA_UPLOAD_RATE_PER_MINUTE = 2
    client = client_for(alice)
    statuses = [client.post(LIST_URL, {"image": make_upload(seed=i)}).status_code for i in range(3)]
    assert statuses == [202, 202, 429]
    response = client.post(LIST_URL, {"image": make_upload()})
    assert "Too many uploads" in response.json()["detail"]
    assert Prediction.objects.filter(user=alice).count() == 2
    assert client_for(bob).post(LIST_URL, {"image": make_upload()}).status_code == 202  # per user
    assert client.get(LIST_URL).status_code == 200  # reading is not limited


def test_upload_is_accepted_when_the_rate_limit_cache_is_down(alice, make_upload, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    response = client_for(alice).post(LIST_URL, {"image": make_upload()})
    assert response.status_code == 202


# --- read -------------------------------------------------------------------------------------------


def test_detail_owner_sees_all_fields(alice, alice_prediction):
    response = client_for(alice).get(detail_url(alice_prediction.pk))
    assert response.status_code == 200
    body = response.json()
    for field in (
        "id", "status", "risk_level", "risk_level_meaning", "melanoma_probability", "score", "verdict", "threshold",
        "model_version", "body_site",
    ):  # fmt: skip
        assert field in body
    for field in ("error", "created_at", "completed_at", "image_url", "thumbnail_url", "url"):
        assert field in body
    assert body["status"] == "queued"
    assert body["melanoma_probability"] is None
    assert body["image_url"].endswith(f"/api/predictions/{alice_prediction.pk}/image/")


def test_detail_of_a_done_prediction(alice, alice_prediction, active_model):
    from classifier.services.prediction_runs import prediction_run

    prediction_run(prediction_id=alice_prediction.pk)
    body = client_for(alice).get(detail_url(alice_prediction.pk)).json()
    assert body["status"] == "done"
    assert 0 <= body["score"] <= 1
    if (active_model.card or {}).get("calibration"):  # the shipped model: a calibrated probability and level
        assert 0 <= body["melanoma_probability"] <= 1
        assert body["risk_level"] in {"low", "moderate", "high"}
    else:  # the tiny model has no calibration: no probability is invented, the level comes from the threshold
        assert body["melanoma_probability"] is None
        assert body["risk_level"] == ("moderate" if body["score"] >= body["threshold"] else "low")
    assert (body["risk_level"] == "low") == (body["score"] < body["threshold"])
    assert body["model_version"] == active_model.version
    assert body["verdict"] in {"refer", "low_risk"}
    assert body["completed_at"]


# Who may read, change or delete which row: tests/classifier/test_access_matrix.py.


def test_image_is_the_private_jpeg(alice, alice_prediction):
    response = client_for(alice).get(detail_url(alice_prediction.pk) + "image/")
    assert response["Content-Type"] == "image/jpeg"
    assert "private" in response["Cache-Control"]
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).format == "JPEG"


def test_unknown_id_is_404_json(alice):
    response = client_for(alice).get(detail_url(999999))
    assert response.status_code == 404
    assert response.json()["detail"]


def test_list_is_own_newest_first(alice, bob, make_upload):
    mine = [prediction_create(user=alice, upload=make_upload(seed=i)).pk for i in range(3)]
    prediction_create(user=bob, upload=make_upload())

    body = client_for(alice).get(LIST_URL).json()
    assert body["count"] == 3
    assert [item["id"] for item in body["results"]] == list(reversed(mine))
    assert body["previous"] is None
    assert body["next"] is None
    assert body["results"][0]["image_url"]


def test_list_pages(alice, make_upload):
    for i in range(3):
        prediction_create(user=alice, upload=make_upload(seed=i))
    first = client_for(alice).get(LIST_URL, {"page_size": 2}).json()
    assert (first["count"], len(first["results"])) == (3, 2)
    second = client_for(alice).get(first["next"]).json()
    assert len(second["results"]) == 1
    assert second["previous"]


# --- delete, retry ----------------------------------------------------------------------------------


def test_delete_by_owner_removes_row_and_files(
    alice, alice_prediction, private_media, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).delete(detail_url(alice_prediction.pk))
    assert response.status_code == 204
    assert not Prediction.objects.exists()
    assert media_files(private_media) == []


def test_retry_failed_prediction(alice, bob, alice_prediction):
    prediction_fail(prediction_id=alice_prediction.pk, reason="The model file is missing.")
    url = detail_url(alice_prediction.pk) + "retry/"
    assert client_for(bob).post(url).status_code == 404
    response = client_for(alice).post(url)
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    again = client_for(alice).post(url)
    assert again.status_code == 409
    assert "Only a failed prediction" in again.json()["detail"]


# --- schema -----------------------------------------------------------------------------------------


def test_openapi_schema_lists_the_endpoints():
    response = APIClient().get(reverse("api:schema"), {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/token/", "/api/predictions/", "/api/predictions/{id}/"} <= set(paths)
    assert "202" in paths["/api/predictions/"]["post"]["responses"]


def test_openapi_schema_describes_the_result_fields():
    schema = APIClient().get(reverse("api:schema"), {"format": "json"}).json()
    prediction = schema["components"]["schemas"]["Prediction"]["properties"]
    for field in ("risk_level", "risk_level_meaning", "melanoma_probability", "score", "threshold", "verdict"):
        assert field in prediction, field
    assert prediction["melanoma_probability"]["nullable"] is True
    assert "calibrated" in prediction["melanoma_probability"]["description"]
    levels = schema["components"]["schemas"].get("RiskLevelEnum", {}).get("enum") or prediction["risk_level"]
    assert "high" in json.dumps(levels)
