"""Prediction services: rows AND files, on the happy path and on every failure path."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone
from PIL import Image

from classifier.images import ImageRejected
from classifier.models import ModelVersion, Prediction
from classifier.services.prediction_runs import (
    MODEL_UNAVAILABLE_REASON,
    prediction_fail,
    prediction_run,
    predictions_requeue_stuck,
)
from classifier.services.prediction_writes import (
    PredictionStateError,
    prediction_create,
    prediction_delete,
    prediction_mark_reviewed,
    prediction_rerun,
    prediction_retry,
)
from tests.conftest import media_files

pytestmark = pytest.mark.django_db


def _create(user, make_upload, **kwargs) -> Prediction:
    return prediction_create(user=user, upload=make_upload(), **kwargs)


# --- create -----------------------------------------------------------------------------------------


def test_create_stores_clean_files_and_queues_after_commit(
    alice, make_upload, private_media, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        prediction = prediction_create(
            user=alice, upload=make_upload("../../etc/passwd\x00.jpg"), body_site="trunk", note=" grew "
        )

    assert len(callbacks) == 1  # the task is sent only once the row is committed
    prediction.refresh_from_db()
    assert prediction.status == Prediction.Status.QUEUED
    assert prediction.queued_at is not None
    assert (prediction.body_site, prediction.note) == ("trunk", "grew")
    # A JPEG is kept as taken (metadata stripped): one file; the worker adds the thumbnail.
    files = media_files(private_media)
    assert [str(path.relative_to(private_media)) for path in files] == [prediction.image.name]
    assert prediction.thumbnail.name == ""
    assert "passwd" not in prediction.image.name  # random names, nothing of the uploader's
    with Image.open(private_media / prediction.image.name) as stored:
        assert stored.format == "JPEG"


@pytest.mark.parametrize(
    ("upload_kwargs", "error"),
    [
        ({"content": b""}, ImageRejected),
        ({"content": b"<svg><script>alert(1)</script></svg>", "name": "x.png"}, ImageRejected),
        ({"content": b"GIF89a\x01\x00\x01\x00"}, ImageRejected),
    ],
)
def test_create_rejects_bad_image_leaving_nothing(alice, make_upload, private_media, upload_kwargs, error):
    with pytest.raises(error):
        prediction_create(user=alice, upload=make_upload(**upload_kwargs))
    assert Prediction.objects.count() == 0
    assert media_files(private_media) == []


def test_create_rejects_bad_body_site_and_long_note(alice, make_upload, private_media):
    with pytest.raises(ValidationError):
        _create(alice, make_upload, body_site="elbow")
    with pytest.raises(ValidationError):
        _create(alice, make_upload, note="x" * 2001)
    assert Prediction.objects.count() == 0
    assert media_files(private_media) == []


def test_create_removes_files_when_the_row_cannot_be_saved(make_upload, private_media):
    unsaved_user = get_user_model()(username="ghost")  # saving a row that points at it fails
    with pytest.raises(ValueError, match="unsaved related object"):
        prediction_create(user=unsaved_user, upload=make_upload())
    assert Prediction.objects.count() == 0
    assert media_files(private_media) == []


# --- run --------------------------------------------------------------------------------------------


def test_run_stores_the_result_and_a_second_run_does_nothing(alice, make_upload, active_model):
    prediction = _create(alice, make_upload)

    done = prediction_run(prediction_id=prediction.pk)
    assert done.status == Prediction.Status.DONE
    assert 0.0 <= done.score <= 1.0
    assert done.threshold == pytest.approx(active_model.threshold)
    expected = "refer" if done.score >= done.threshold else "low_risk"
    assert done.verdict == expected
    assert done.model_version == active_model
    assert done.inference_ms > 0
    assert done.completed_at is not None
    assert done.attempts == 1

    again = prediction_run(prediction_id=prediction.pk)  # a redelivered message
    assert again.attempts == 1
    assert again.completed_at == done.completed_at


def test_run_without_active_model_fails_with_reason(alice, make_upload, active_model):
    prediction = _create(alice, make_upload)
    active_model.__class__.objects.update(is_active=False)

    failed = prediction_run(prediction_id=prediction.pk)
    assert failed.status == Prediction.Status.FAILED
    assert failed.error == MODEL_UNAVAILABLE_REASON  # the operator's detail is in the log, not on the row
    assert failed.melanoma_probability is None


def test_run_with_missing_model_file_fails_with_reason(alice, make_upload, active_model, tmp_path):
    prediction = _create(alice, make_upload)
    active_model.__class__.objects.filter(pk=active_model.pk).update(path=str(tmp_path / "gone"))

    failed = prediction_run(prediction_id=prediction.pk)
    assert failed.status == Prediction.Status.FAILED
    assert failed.error == MODEL_UNAVAILABLE_REASON
    assert str(tmp_path) not in failed.error


def test_run_with_missing_photo_fails_with_reason(alice, make_upload, active_model, private_media):
    prediction = _create(alice, make_upload)
    (private_media / prediction.image.name).unlink()

    failed = prediction_run(prediction_id=prediction.pk)
    assert failed.status == Prediction.Status.FAILED
    assert "missing" in failed.error


def test_run_of_deleted_prediction_is_a_no_op(alice, make_upload, active_model):
    prediction = _create(alice, make_upload)
    prediction_delete(prediction=prediction)
    assert prediction_run(prediction_id=prediction.pk) is None


# --- fail, retry, rerun -----------------------------------------------------------------------------


def test_retry_requeues_the_same_photo(alice, make_upload, django_capture_on_commit_callbacks):
    prediction = _create(alice, make_upload)
    image_name = prediction.image.name
    prediction_fail(prediction_id=prediction.pk, reason="The model file is missing.")
    prediction.refresh_from_db()

    with django_capture_on_commit_callbacks() as callbacks:
        retried = prediction_retry(prediction=prediction)
    assert len(callbacks) == 1
    assert retried.status == Prediction.Status.QUEUED
    assert retried.error == ""
    assert retried.completed_at is None
    assert retried.image.name == image_name
    assert Prediction.objects.count() == 1


def test_retry_only_failed(alice, make_upload):
    prediction = _create(alice, make_upload)
    with pytest.raises(PredictionStateError):
        prediction_retry(prediction=prediction)


def test_rerun_a_done_prediction_clears_outputs_keeps_review(alice, staff, make_upload, active_model):
    prediction = prediction_run(prediction_id=_create(alice, make_upload).pk)
    prediction_mark_reviewed(prediction=prediction, reviewer=staff, diagnosis="melanoma")

    rerun = prediction_rerun(prediction=prediction)
    assert rerun.status == Prediction.Status.QUEUED
    assert rerun.melanoma_probability is None
    assert rerun.verdict == ""
    assert rerun.model_version is None
    assert rerun.confirmed_diagnosis == "melanoma"

    done = prediction_run(prediction_id=prediction.pk)
    assert done.status == Prediction.Status.DONE
    assert done.attempts == 2


def test_rerun_refuses_unfinished(alice, make_upload):
    with pytest.raises(PredictionStateError):
        prediction_rerun(prediction=_create(alice, make_upload))


def test_mark_reviewed(alice, staff, make_upload):
    prediction = _create(alice, make_upload)
    reviewed = prediction_mark_reviewed(prediction=prediction, reviewer=staff, diagnosis="not_melanoma")
    reviewed.refresh_from_db()
    assert reviewed.reviewed
    assert reviewed.confirmed_diagnosis == "not_melanoma"
    assert reviewed.reviewed_by == staff
    assert reviewed.reviewed_at is not None
    with pytest.raises(ValidationError):
        prediction_mark_reviewed(prediction=prediction, reviewer=staff, diagnosis="probably fine")


# --- sweep ------------------------------------------------------------------------------------------


def test_sweep_requeues_stuck_running_and_forgotten_queued(alice, make_upload):
    long_ago = timezone.now() - timedelta(hours=1)
    stuck = _create(alice, make_upload)
    Prediction.objects.filter(pk=stuck.pk).update(status="running", started_at=long_ago, attempts=1)
    forgotten = _create(alice, make_upload)
    Prediction.objects.filter(pk=forgotten.pk).update(queued_at=long_ago)
    fresh = _create(alice, make_upload)
    exhausted = _create(alice, make_upload)
    Prediction.objects.filter(pk=exhausted.pk).update(status="running", started_at=long_ago, attempts=3)

    report = predictions_requeue_stuck(
        running_older_than=timedelta(minutes=5), queued_older_than=timedelta(minutes=1), max_attempts=3
    )

    assert sorted(report["requeued"]) == sorted([stuck.pk, forgotten.pk])
    assert report["failed"] == [exhausted.pk]
    statuses = dict(Prediction.objects.values_list("pk", "status"))
    assert statuses == {stuck.pk: "queued", forgotten.pk: "queued", fresh.pk: "queued", exhausted.pk: "failed"}
    forgotten.refresh_from_db()
    assert forgotten.queued_at > long_ago  # not sent again on the very next sweep


# --- delete -----------------------------------------------------------------------------------------


def test_delete_removes_row_and_every_file(
    alice, make_upload, private_media, active_model, django_capture_on_commit_callbacks
):
    prediction = prediction_run(prediction_id=_create(alice, make_upload).pk)
    assert {prediction.image.name, prediction.thumbnail.name, prediction.heatmap.name} == {
        str(path.relative_to(private_media)) for path in media_files(private_media)
    }
    assert prediction.thumbnail.name.startswith("thumbnails/")

    with django_capture_on_commit_callbacks(execute=True):
        prediction_delete(prediction=prediction)

    assert Prediction.objects.count() == 0
    assert media_files(private_media) == []


def test_redelivered_message_reclaims_a_row_its_dead_worker_left_running(alice, make_upload, active_model):
    prediction = _create(alice, make_upload)
    Prediction.objects.filter(pk=prediction.pk).update(status="running", started_at=timezone.now(), attempts=1)

    assert prediction_run(prediction_id=prediction.pk).status == "running"  # a duplicate: hands off
    done = prediction_run(prediction_id=prediction.pk, reclaim_running=True)  # the same message, redelivered
    assert done.status == "done"
    assert done.attempts == 2


def test_a_model_that_returns_nan_fails_the_prediction_instead_of_a_verdict(alice, make_upload, monkeypatch):
    # A broken export can return NaN for every photo; a verdict from it would be meaningless.
    from classifier import inference

    def broken_model(image_bytes: bytes, **options) -> inference.InferenceResult:
        return inference.InferenceResult(
            score=float("nan"),
            melanoma_probability=None,
            risk_level="low",
            threshold=0.5,
            model_version="broken",
            model_version_id=None,
        )

    monkeypatch.setattr(inference, "predict_melanoma", broken_model)
    failed = prediction_run(prediction_id=_create(alice, make_upload).pk)
    assert failed.status == Prediction.Status.FAILED
    assert "could not score" in failed.error
    assert failed.verdict == ""
    assert failed.melanoma_probability is None


def test_shipped_model_replaces_an_active_version_whose_folder_is_gone(db, model_dir, tmp_path, settings):
    """After an upgrade removed the old shipped folder, registering the shipped models activates the new one."""
    import shutil

    from classifier.services.model_versions import model_version_register, model_versions_register_shipped

    shipped = tmp_path / "models"
    shutil.copytree(model_dir, shipped / model_dir.name)
    old = tmp_path / "old-model"
    shutil.copytree(model_dir, old)
    card = json.loads((old / "model_card.json").read_text())
    card.update(version="old-shipped", created="2000-01-01T00:00:00+00:00")
    (old / "model_card.json").write_text(json.dumps(card))
    stale = model_version_register(model_dir=old, activate=True)
    settings.MELANOMA_MODELS_DIR = shipped

    model_versions_register_shipped()  # the old folder still exists: an admin's choice is kept
    stale.refresh_from_db()
    assert stale.is_active

    shutil.rmtree(old)
    model_versions_register_shipped()
    stale.refresh_from_db()
    active = ModelVersion.objects.get(is_active=True)
    assert not stale.is_active
    assert active.version == json.loads((model_dir / "model_card.json").read_text())["version"]


def test_services_send_the_task_by_name_and_never_import_the_task_module():
    """The task module imports the services; the other way round would be a cycle (and would load the worker's
    code into the web process)."""
    from pathlib import Path

    from django.conf import settings

    services = Path(settings.BASE_DIR) / "classifier" / "services"
    for module in services.glob("*.py"):
        assert "classifier.tasks" not in module.read_text(), module.name
    from classifier.services.prediction_queue import PREDICTION_RUN_TASK
    from classifier.tasks import prediction_run_task

    assert prediction_run_task.name == PREDICTION_RUN_TASK
