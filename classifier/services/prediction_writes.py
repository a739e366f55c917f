"""Web-side writes for Prediction rows: upload, retry, re-run, review, delete.

Views, the API, admin actions and the account service call these; the worker's side (run, fail, sweep) is in
prediction_runs.py. Files and rows move together: a failed upload leaves no row and no file; deleting a row
deletes its files (after the transaction commits, so a rollback never loses a photo).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import IO

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from classifier.images import image_prepare_upload
from classifier.models import Prediction
from classifier.services import prediction_events
from classifier.services.prediction_queue import prediction_enqueue
from melanoma_site.links import absolute_url

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


# --- queueing -------------------------------------------------------------------------------------


def _enqueue_on_commit(prediction_id: int, log_event: Callable[[int], None]) -> None:
    """After COMMIT (a message sent before it can reach a worker before the row is visible): log the state
    change, then send the task. One callback, so that the event line always precedes the worker's."""

    def after_commit() -> None:
        log_event(prediction_id)
        prediction_enqueue(prediction_id=prediction_id)

    transaction.on_commit(after_commit, robust=True)


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
    *,
    user,
    upload: IO[bytes] | bytes,
    body_site: str = Prediction.BodySite.UNKNOWN,
    note: str = "",
    spot=None,
    symptoms: Iterable[str] = (),
) -> Prediction:
    """Check the photo, store a clean copy (and a thumbnail, when the photo was decoded here) privately, create the
    `queued` row and queue the task after commit.

    `spot` (one of the user's spots) files the check under it, and its body-map region becomes the body site;
    `symptoms` names the ticked answers (Prediction.SYMPTOM_FIELDS). Raises ImageRejected (400/413) for a photo we
    will not process, ValidationError for a bad body site, note, spot or symptom. On any failure no row and no
    file remains.
    """
    if spot is not None:
        if spot.user_id != user.pk:
            raise ValidationError({"spot": "No such spot."})
        body_site = spot.region
    body_site, note = _validate_inputs(body_site=body_site, note=note)
    symptoms = set(symptoms)
    if unknown := symptoms - set(Prediction.SYMPTOM_FIELDS):
        raise ValidationError({"symptoms": f"Unknown symptom(s): {', '.join(sorted(unknown))}."})
    prepared = image_prepare_upload(upload)

    saved_names: list[str] = []
    try:
        with transaction.atomic():
            image_name = default_storage.save(_random_name("lesions"), ContentFile(prepared.jpeg))
            saved_names.append(image_name)
            thumbnail_name = ""  # a JPEG kept as taken gets its thumbnail from the worker, which decodes it anyway
            if prepared.thumbnail is not None:
                thumbnail_name = default_storage.save(_random_name("thumbnails"), ContentFile(prepared.thumbnail))
                saved_names.append(thumbnail_name)
            prediction = Prediction.objects.create(
                user=user,
                image=image_name,
                thumbnail=thumbnail_name,
                body_site=body_site,
                note=note,
                spot=spot,
                status=Status.QUEUED,
                **{name: True for name in symptoms},
                queued_at=timezone.now(),
            )
            _enqueue_on_commit(prediction.pk, lambda pk: prediction_events.prediction_uploaded(prediction_id=pk))
    except BaseException:
        _delete_files(saved_names)
        raise
    return prediction


# --- retry, re-run --------------------------------------------------------------------------------


def _requeue(prediction: Prediction, *, allowed: Iterable[str], why: str) -> Prediction:
    if not prediction.image.name or not default_storage.exists(prediction.image.name):
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
        quality_issue="",
        model_version=None,
        inference_ms=None,
        error="",
    )
    if updated != 1:
        raise PredictionStateError("This prediction is still being analysed.")
    _enqueue_on_commit(prediction.pk, lambda pk: prediction_events.prediction_requeued(prediction_id=pk, why=why))
    prediction.refresh_from_db()
    return prediction


@transaction.atomic
def prediction_retry(*, prediction: Prediction) -> Prediction:
    """The user's "try again" on a failed prediction: re-queue the same stored photo."""
    if prediction.status != Status.FAILED:
        raise PredictionStateError("Only a failed prediction can be tried again.")
    return _requeue(prediction, allowed=(Status.FAILED,), why="retry")


@transaction.atomic
def prediction_rerun(*, prediction: Prediction) -> Prediction:
    """Admin: run inference again on a finished prediction (e.g. after activating a new model version).
    The clinician's review, if any, is kept: it is about the lesion, not the model's output."""
    if not prediction.is_finished:
        raise PredictionStateError("This prediction is still being analysed.")
    return _requeue(prediction, allowed=Prediction.FINISHED_STATUSES, why="rerun")


# --- review, delete -------------------------------------------------------------------------------


def _review_email_send(*, prediction_id: int) -> None:
    # Imported here: accounts imports this module (account deletion).
    from accounts.selectors import user_verified_email

    prediction = Prediction.objects.select_related("user").get(pk=prediction_id)
    email = user_verified_email(user=prediction.user)
    if email is None:
        return  # only confirmed addresses get mail
    context = {"prediction": prediction, "link": absolute_url("classifier:prediction_detail", prediction.pk)}
    try:
        send_mail(
            subject="A clinician has reviewed your skin check",
            message=render_to_string("classifier/email/review.txt", context),
            from_email=None,
            recipient_list=[email],
        )
    except OSError:
        logger.exception("Could not send the review e-mail for prediction %s", prediction_id)


@transaction.atomic
def prediction_mark_reviewed(
    *, prediction: Prediction, reviewer, diagnosis: str, comment: str | None = None
) -> Prediction:
    """A clinician's confirmed diagnosis: the ground truth a later retraining can use. The person sees it on
    their result page and, at a confirmed address, gets an e-mail (after commit) the first time."""
    if diagnosis not in Prediction.Diagnosis.values:
        choices = ", ".join(Prediction.Diagnosis.values)
        raise ValidationError({"confirmed_diagnosis": f"Unknown diagnosis {diagnosis!r}. Choose one of: {choices}."})
    first_review = not Prediction.objects.filter(pk=prediction.pk, reviewed=True).exists()
    prediction.reviewed = True
    prediction.confirmed_diagnosis = diagnosis
    prediction.reviewed_by = reviewer
    prediction.reviewed_at = timezone.now()
    fields = ["reviewed", "confirmed_diagnosis", "reviewed_by", "reviewed_at"]
    if comment is not None:
        prediction.review_comment = comment.strip()
        fields.append("review_comment")
    prediction.save(update_fields=fields)
    if first_review:
        prediction_id = prediction.pk
        transaction.on_commit(lambda: _review_email_send(prediction_id=prediction_id), robust=True)
    return prediction


@transaction.atomic
def prediction_delete(*, prediction: Prediction) -> None:
    """Delete the row and, once that has committed, its photo and thumbnail."""
    names = [name for name in (prediction.image.name, prediction.thumbnail.name, prediction.heatmap.name) if name]
    Prediction.objects.filter(pk=prediction.pk).delete()
    _delete_files_after_commit(names)


@transaction.atomic
def predictions_delete_for_user(*, user) -> None:
    """Delete every prediction the user uploaded and, once that has committed, every stored file of theirs.
    (Deleting the user alone would cascade to the rows but leave the photos on disk.)"""
    predictions = Prediction.objects.filter(user=user)
    names = [name for row in predictions.values_list("image", "thumbnail", "heatmap") for name in row if name]
    predictions.delete()
    _delete_files_after_commit(names)
