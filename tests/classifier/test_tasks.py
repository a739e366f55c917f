"""The Celery path end to end: real Redis, a real worker thread, the real LiteRT model."""

from __future__ import annotations

from datetime import timedelta

import pytest

from classifier.models import ModelVersion, Prediction
from classifier.services.prediction_queue import prediction_enqueue
from classifier.services.prediction_runs import MODEL_UNAVAILABLE_REASON, predictions_requeue_stuck
from classifier.services.prediction_writes import prediction_create, prediction_retry
from classifier.tasks import prediction_run_task
from tests.conftest import wait_for_status
from tests.processes import publish_to

pytestmark = pytest.mark.django_db(transaction=True)

FINISHED = set(Prediction.FINISHED_STATUSES)


def test_upload_is_analysed_by_the_worker(celery_worker, active_model, alice, real_photo_bytes):
    prediction = prediction_create(user=alice, upload=real_photo_bytes, body_site="trunk")

    done = wait_for_status(prediction.pk, FINISHED)
    assert done.status == Prediction.Status.DONE, done.error
    assert 0.0 <= done.score <= 1.0
    assert done.verdict in {"refer", "low_risk"}
    assert done.model_version_id == active_model.pk
    assert done.attempts == 1
    assert done.started_at <= done.completed_at


def test_redelivered_message_does_nothing_twice(celery_worker, active_model, alice, make_upload):
    first = wait_for_status(prediction_create(user=alice, upload=make_upload()).pk, FINISHED)
    assert first.status == Prediction.Status.DONE

    prediction_run_task.delay(first.pk)  # the same message again, as after a redelivery
    # The solo worker takes one message at a time, in order: once this one is done, the duplicate was handled.
    second = wait_for_status(prediction_create(user=alice, upload=make_upload(seed=1)).pk, FINISHED)
    assert second.status == Prediction.Status.DONE

    first_again = Prediction.objects.get(pk=first.pk)
    assert first_again.attempts == 1
    assert first_again.completed_at == first.completed_at
    assert first_again.score == first.score


def test_no_active_model_fails_with_reason(celery_worker, active_model, alice, make_upload):
    ModelVersion.objects.update(is_active=False)
    failed = wait_for_status(prediction_create(user=alice, upload=make_upload()).pk, FINISHED)
    assert failed.status == Prediction.Status.FAILED
    assert failed.error == MODEL_UNAVAILABLE_REASON


def test_missing_model_file_fails_with_reason_and_activating_a_good_one_recovers(
    celery_worker, active_model, alice, make_upload, tmp_path
):
    broken = ModelVersion.objects.create(version="broken", path=str(tmp_path / "missing"), threshold=0.5)
    ModelVersion.objects.update(is_active=False)
    ModelVersion.objects.filter(pk=broken.pk).update(is_active=True)

    failed = wait_for_status(prediction_create(user=alice, upload=make_upload()).pk, FINISHED)
    assert failed.status == Prediction.Status.FAILED
    assert failed.error == MODEL_UNAVAILABLE_REASON

    ModelVersion.objects.update(is_active=False)
    ModelVersion.objects.filter(pk=active_model.pk).update(is_active=True)
    prediction_retry(prediction=failed)
    recovered = wait_for_status(failed.pk, FINISHED)
    assert recovered.status == Prediction.Status.DONE, recovered.error


@pytest.fixture
def broker_outage(isolated_services):
    """Publishing goes to a port nobody listens on, as if Redis were down; calling the fixture's value ends it."""
    from melanoma_site.embedded_redis import free_port

    publish_to(f"redis://127.0.0.1:{free_port()}/0")
    yield lambda: publish_to(isolated_services["redis_url"])
    publish_to(isolated_services["redis_url"])


def test_upload_while_broker_is_down_is_kept_and_completes_after_the_sweep(
    broker_outage, active_model, alice, make_upload, request
):
    prediction = prediction_create(user=alice, upload=make_upload())  # the send fails: logged, not raised
    assert Prediction.objects.get(pk=prediction.pk).status == Prediction.Status.QUEUED
    assert prediction_enqueue(prediction_id=prediction.pk) is False

    broker_outage()  # Redis is back
    request.getfixturevalue("celery_worker")
    report = predictions_requeue_stuck(running_older_than=timedelta(minutes=5), queued_older_than=timedelta(0))

    assert report["requeued"] == [prediction.pk]
    done = wait_for_status(prediction.pk, FINISHED)
    assert done.status == Prediction.Status.DONE, done.error
