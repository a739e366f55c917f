"""Web-side writes for Prediction rows: upload, retry, re-run, review, delete.

Views, the API, admin actions and the account service call these; the worker's side (run, fail, sweep) is in
prediction_runs.py. Files and rows move together: a failed upload leaves no row and no file; deleting a row
deletes its files (after the transaction commits, so a rollback never loses a photo).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import IO

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from classifier.images import image_prepare_upload
from classifier.models import Prediction
from classifier.services.prediction_queue import prediction_enqueue_on_commit

logger = logging.getLogger(__name__)

Status = Prediction.Status


class PredictionStateError(Exception):
    """The prediction is not in a state that allows the requested action (e.g. retrying a finished one)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- files ----------------------------------------------------------------------------------------


def _random_name(folder: str) -> str:
    # Random names: nothing of the uploader's file name (or path tricks in it) reaches the disk.
    return f"{folder}/{uuid.uuid4().hex}.jpg"


def _delete_files(names: Iterable[str]) -> None:
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("Could not delete stored file %s", name)


def _delete_files_after_commit(names: list[str]) -> None:
    transaction.on_commit(lambda: _delete_files(names), robust=True)


# --- create ---------------------------------------------------------------------------------------


def _validate_inputs(*, body_site: str, note: str) -> tuple[str, str]:
    body_site = body_site or Prediction.BodySite.UNKNOWN
    if body_site not in Prediction.BodySite.values:
        choices = ", ".join(Prediction.BodySite.values)
        raise ValidationError({"body_site": f"Unknown body site {body_site!r}. Choose one of: {choices}."})
    note = (note or "").strip()
    if len(note) > Prediction.NOTE_MAX_LENGTH:
        raise ValidationError({"note": f"The note is too long (at most {Prediction.NOTE_MAX_LENGTH} characters)."})
    return body_site, note


def prediction_create(
    *, user, upload: IO[bytes] | bytes, body_site: str = Prediction.BodySite.UNKNOWN, note: str = ""
) -> Prediction:
    """Check the photo, store a clean copy and a thumbnail privately, create the `queued` row and queue the
    task after commit.

    Raises ImageRejected (400/413) for a photo we will not process, ValidationError for a bad body site or
    note. On any failure no row and no file remains.
    """
    body_site, note = _validate_inputs(body_site=body_site, note=note)
    prepared = image_prepare_upload(upload)

    saved_names: list[str] = []
    try:
        with transaction.atomic():
            image_name = default_storage.save(_random_name("lesions"), ContentFile(prepared.jpeg))
            saved_names.append(image_name)
            thumbnail_name = default_storage.save(_random_name("thumbnails"), ContentFile(prepared.thumbnail))
            saved_names.append(thumbnail_name)
            prediction = Prediction.objects.create(
                user=user,
                image=image_name,
                thumbnail=thumbnail_name,
                body_site=body_site,
                note=note,
                status=Status.QUEUED,
                queued_at=timezone.now(),
            )
            prediction_enqueue_on_commit(prediction_id=prediction.pk)
    except BaseException:
        _delete_files(saved_names)
        raise
    return prediction


# --- retry, re-run --------------------------------------------------------------------------------


def _requeue(prediction: Prediction, *, allowed: Iterable[str]) -> Prediction:
    if not prediction.image or not default_storage.exists(prediction.image.name):
        raise PredictionStateError("The stored photo is missing, so it cannot be analysed again.")
    updated = Prediction.objects.filter(pk=prediction.pk, status__in=list(allowed)).update(
        status=Status.QUEUED,
        queued_at=timezone.now(),
        started_at=None,
        completed_at=None,
        score=None,
        melanoma_probability=None,
        risk_level=None,
        threshold=None,
        verdict="",
        model_version=None,
        inference_ms=None,
        error="",
    )
    if updated != 1:
        raise PredictionStateError("This prediction is still being analysed.")
    prediction_enqueue_on_commit(prediction_id=prediction.pk)
    prediction.refresh_from_db()
    return prediction


@transaction.atomic
def prediction_retry(*, prediction: Prediction) -> Prediction:
    """The user's "try again" on a failed prediction: re-queue the same stored photo."""
    if prediction.status != Status.FAILED:
        raise PredictionStateError("Only a failed prediction can be tried again.")
    return _requeue(prediction, allowed=(Status.FAILED,))


@transaction.atomic
def prediction_rerun(*, prediction: Prediction) -> Prediction:
    """Admin: run inference again on a finished prediction (e.g. after activating a new model version).
    The clinician's review, if any, is kept: it is about the lesion, not the model's output."""
    if not prediction.is_finished:
        raise PredictionStateError("This prediction is still being analysed.")
    return _requeue(prediction, allowed=Prediction.FINISHED_STATUSES)


# --- review, delete -------------------------------------------------------------------------------


@transaction.atomic
def prediction_mark_reviewed(*, prediction: Prediction, reviewer, diagnosis: str) -> Prediction:
    """A clinician's confirmed diagnosis: the ground truth a later retraining can use."""
    if diagnosis not in Prediction.Diagnosis.values:
        choices = ", ".join(Prediction.Diagnosis.values)
        raise ValidationError({"confirmed_diagnosis": f"Unknown diagnosis {diagnosis!r}. Choose one of: {choices}."})
    prediction.reviewed = True
    prediction.confirmed_diagnosis = diagnosis
    prediction.reviewed_by = reviewer
    prediction.reviewed_at = timezone.now()
    prediction.save(update_fields=["reviewed", "confirmed_diagnosis", "reviewed_by", "reviewed_at"])
    return prediction


@transaction.atomic
def prediction_delete(*, prediction: Prediction) -> None:
    """Delete the row and, once that has committed, its photo and thumbnail."""
    names = [name for name in (prediction.image.name, prediction.thumbnail.name) if name]
    Prediction.objects.filter(pk=prediction.pk).delete()
    _delete_files_after_commit(names)


@transaction.atomic
def predictions_delete_for_user(*, user) -> None:
    """Delete every prediction the user uploaded and, once that has committed, every stored file of theirs.
    (Deleting the user alone would cascade to the rows but leave the photos on disk.)"""
    predictions = Prediction.objects.filter(user=user)
    names = [name for pair in predictions.values_list("image", "thumbnail") for name in pair if name]
    predictions.delete()
    _delete_files_after_commit(names)
