"""Photos in a real S3 bucket (SeaweedFS on loopback) through django-storages: the whole path in this process
(upload -> real Celery worker -> result -> image views -> delete) and what must never happen (a public or
pre-signed URL, another user's photo, a file left behind after deleting a prediction or an account)."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from classifier.models import Prediction
from classifier.services.prediction_writes import prediction_create
from tests.conftest import wait_for_status
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

FINISHED = {Prediction.Status.DONE, Prediction.Status.FAILED}


def _photo_keys(bucket) -> list[str]:
    """Photos and thumbnails in the bucket (the active model's files may be there too: models/...)."""
    return sorted(bucket.keys("lesions/") + bucket.keys("thumbnails/"))


def _api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_upload_worker_result_image_view_and_delete_against_s3(
    s3_storage, celery_worker, active_model, alice, bob, real_photo_bytes, private_media
):
    upload = SimpleUploadedFile("mole.jpg", real_photo_bytes, content_type="image/jpeg")
    response = _api(alice).post("/api/predictions/", {"image": upload}, format="multipart")
    assert response.status_code == 202, response.content
    pk = response.json()["id"]
    prediction = Prediction.objects.get(pk=pk)
    # The photo, kept as taken, is in the bucket under a random name; nothing went to the local media folder.
    assert _photo_keys(s3_storage) == [prediction.image.name]
    assert not private_media.exists() or not any(private_media.rglob("*.jpg"))

    done = wait_for_status(pk, FINISHED)
    assert done.status == Prediction.Status.DONE, done.error  # the worker read the photo from S3
    assert 0.0 <= done.melanoma_probability <= 1.0
    prediction.refresh_from_db()  # the worker wrote the thumbnail to the bucket too
    assert _photo_keys(s3_storage) == sorted([prediction.image.name, prediction.thumbnail.name])

    owner = Client()
    owner.force_login(alice)
    image = owner.get(f"/predictions/{pk}/image/")
    assert image.status_code == 200
    assert image.streaming  # sent chunk by chunk from the object's body, not read whole first
    assert b"".join(image.streaming_content) == s3_storage.get(prediction.image.name)
    assert image["Content-Length"] == str(len(s3_storage.get(prediction.image.name)))
    assert image["Cache-Control"] == "private, no-store, max-age=0"
    thumbnail = owner.get(f"/predictions/{pk}/thumbnail/")
    assert b"".join(thumbnail.streaming_content) == s3_storage.get(prediction.thumbnail.name)

    other = Client()
    other.force_login(bob)
    assert other.get(f"/predictions/{pk}/image/").status_code == 404  # not bob's: nothing leaks
    assert Client().get(f"/predictions/{pk}/image/").status_code == 302  # anonymous: to the log-in page

    assert owner.post(f"/predictions/{pk}/delete/").status_code == 302
    assert not Prediction.objects.filter(pk=pk).exists()
    assert _photo_keys(s3_storage) == []  # both objects removed from the bucket


def test_the_storage_never_hands_out_a_url(s3_storage, alice, make_upload):
    prediction = prediction_create(user=alice, upload=make_upload())
    with pytest.raises(NotImplementedError):
        default_storage.url(prediction.image.name)


def test_missing_object_is_404_not_500(s3_storage, alice, make_upload):
    prediction = prediction_create(user=alice, upload=make_upload())
    s3_storage.server.client().delete_object(Bucket=s3_storage.name, Key=prediction.image.name)
    client = Client()
    client.force_login(alice)
    assert client.get(f"/predictions/{prediction.pk}/image/").status_code == 404


def test_account_deletion_removes_every_object(s3_storage, alice, bob, make_upload):
    for seed in range(2):
        prediction_create(user=alice, upload=make_upload(seed=seed))
    kept = prediction_create(user=bob, upload=make_upload(seed=9))
    assert len(_photo_keys(s3_storage)) == 3  # the photos; the worker adds thumbnails (not run here)

    client = Client()
    client.force_login(alice)
    response = client.post("/accounts/delete/", {"password": TEST_PASSWORD})
    assert response.status_code == 302
    assert _photo_keys(s3_storage) == [kept.image.name]


def test_worker_fails_with_a_reason_when_the_object_is_gone(s3_storage, active_model, alice, make_upload):
    from classifier.services.prediction_runs import prediction_run

    prediction = prediction_create(user=alice, upload=make_upload())
    s3_storage.server.client().delete_object(Bucket=s3_storage.name, Key=prediction.image.name)
    failed = prediction_run(prediction_id=prediction.pk)
    assert failed.status == Prediction.Status.FAILED
    assert "missing" in failed.error
