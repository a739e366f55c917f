"""Writes for Prediction rows: upload, run inference, fail, retry, re-run, review, delete.

Views, the API, admin actions, Celery tasks and commands all call these; none holds logic of its own.
Files and rows move together: a failed upload leaves no row and no file; deleting a row deletes its files
(after the transaction commits, so a rollback never loses a photo).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import IO

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from classifier.images import image_prepare_upload
from classifier.models import Prediction

logger = logging.getLogger(__name__)

Status = Prediction.Status
FINISHED_STATUSES = (Status.DONE, Status.FAILED)
NOTE_MAX_LENGTH = 2000

# Errors worth retrying: the database or the broker is briefly unreachable. Anything else is a bug or bad
# input, and retrying it only delays the readable failure.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)


class PredictionStateError(Exception):
    """The prediction is not in a state that allows the requested action (e.g. retrying a finished one)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- queueing -------------------------------------------------------------------------------------


def prediction_enqueue(*, prediction_id: int) -> bool:
    """Send the Celery message for a prediction. Never raises: with the broker down, the row stays `queued`
    and the periodic sweep (predictions_requeue_stuck) sends it again once the broker is back."""
    from classifier.tasks import prediction_run_task  # the task module imports this one

    try:
        prediction_run_task.apply_async(
            args=(prediction_id,),
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        )
    except Exception:  # noqa: BLE001 - any broker failure must not turn an accepted upload into a 500
        logger.warning("Could not queue prediction %s; the sweep will re-queue it", prediction_id, exc_info=True)
        return False
    return True


def _enqueue_after_commit(prediction_id: int) -> None:
    # A message sent before COMMIT can reach a worker before the row is visible to it.
    transaction.on_commit(lambda: prediction_enqueue(prediction_id=prediction_id), robust=True)


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


def _file_names(prediction: Prediction) -> list[str]:
    return [name for name in (prediction.image.name, prediction.thumbnail.name) if name]


# --- create ---------------------------------------------------------------------------------------


def _validate_inputs(*, body_site: str, note: str) -> tuple[str, str]:
    body_site = body_site or Prediction.BodySite.UNKNOWN
    if body_site not in Prediction.BodySite.values:
        choices = ", ".join(Prediction.BodySite.values)
        raise ValidationError({"body_site": f"Unknown body site {body_site!r}. Choose one of: {choices}."})
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ValidationError({"note": f"The note is too long (at most {NOTE_MAX_LENGTH} characters)."})
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
            _enqueue_after_commit(prediction.pk)
    except BaseException:
        _delete_files(saved_names)
        raise
    return prediction


# --- run ------------------------------------------------------------------------------------------


def _verdict(*, melanoma_probability: float, threshold: float) -> str:
    return Prediction.Verdict.REFER if melanoma_probability >= threshold else Prediction.Verdict.LOW_RISK


def _release_claim(prediction_id: int) -> None:
    """Give a claimed row back to the queue so that a retry of the task can claim it again."""
    try:
        Prediction.objects.filter(id=prediction_id, status=Status.RUNNING).update(
            status=Status.QUEUED, queued_at=timezone.now()
        )
    except DatabaseError:
        # The database is still down: the row stays `running` and the sweep re-queues it after the hard limit.
        logger.warning("Could not release prediction %s", prediction_id, exc_info=True)


def prediction_run(*, prediction_id: int, reclaim_running: bool = False) -> Prediction | None:
    """Run inference for one queued prediction. Safe to call twice for the same id: only the call that
    claims the row (`queued` -> `running`) does any work, so a duplicate message does nothing twice.

    reclaim_running: the broker redelivered this very message because the worker that held it died (SIGKILL,
    out of memory, lost connection). The row it left `running` is then claimed again instead of waiting
    for the sweep; a message is held by one worker at a time, so nobody else is working on it.

    Returns the row (None when it no longer exists). Inference errors (model unavailable, unreadable image)
    mark the row failed with their message. Transient database errors give the row back to the queue and
    propagate so that the task can retry.
    """
    from classifier.inference import InferenceError, predict_melanoma  # loads no model at import time

    claimable = (Status.QUEUED, Status.RUNNING) if reclaim_running else (Status.QUEUED,)
    claimed = Prediction.objects.filter(id=prediction_id, status__in=claimable).update(
        status=Status.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1, error=""
    )
    if claimed != 1:
        logger.info("Prediction %s is not queued (done, running elsewhere or deleted); skipping", prediction_id)
        return Prediction.objects.filter(id=prediction_id).first()

    prediction = Prediction.objects.get(id=prediction_id)
    try:
        with default_storage.open(prediction.image.name, "rb") as stored:
            image_bytes = stored.read()
    except (FileNotFoundError, ValueError):
        return prediction_fail(
            prediction_id=prediction_id, reason="The stored photo is missing; please upload it again."
        )

    started = time.perf_counter()
    try:
        result = predict_melanoma(image_bytes)
    except InferenceError as error:
        return prediction_fail(prediction_id=prediction_id, reason=str(error) or error.__class__.__name__)
    except TRANSIENT_DB_ERRORS:
        _release_claim(prediction_id)
        raise
    inference_ms = (time.perf_counter() - started) * 1000.0

    probability = float(result.melanoma_probability)
    threshold = float(result.threshold)
    if not (math.isfinite(probability) and 0.0 <= probability <= 1.0):
        # A broken model (e.g. NaN outputs) must not produce a verdict; NaN would also be stored as NULL.
        logger.error("Model %s returned %r for prediction %s", result.model_version, probability, prediction_id)
        return prediction_fail(
            prediction_id=prediction_id,
            reason="The model could not score this photo. The team has been notified; please try again later.",
        )
    # Only a row that is still ours (running) is written: it may have been deleted meanwhile.
    updated = Prediction.objects.filter(id=prediction_id, status=Status.RUNNING).update(
        status=Status.DONE,
        melanoma_probability=probability,
        threshold=threshold,
        verdict=_verdict(melanoma_probability=probability, threshold=threshold),
        model_version_id=result.model_version_id,
        inference_ms=inference_ms,
        completed_at=timezone.now(),
        error="",
    )
    if updated != 1:
        logger.info("Prediction %s changed while it ran; result discarded", prediction_id)
    return Prediction.objects.filter(id=prediction_id).first()


def prediction_fail(*, prediction_id: int, reason: str) -> Prediction | None:
    """Mark an unfinished prediction failed with a reason a person can read."""
    Prediction.objects.filter(id=prediction_id, status__in=(Status.QUEUED, Status.RUNNING)).update(
        status=Status.FAILED, error=reason[:2000], completed_at=timezone.now()
    )
    return Prediction.objects.filter(id=prediction_id).first()


# --- retry, re-run, sweep -------------------------------------------------------------------------


def _requeue(prediction: Prediction, *, allowed: Iterable[str]) -> Prediction:
    if not prediction.image or not default_storage.exists(prediction.image.name):
        raise PredictionStateError("The stored photo is missing, so it cannot be analysed again.")
    updated = Prediction.objects.filter(pk=prediction.pk, status__in=list(allowed)).update(
        status=Status.QUEUED,
        queued_at=timezone.now(),
        started_at=None,
        completed_at=None,
        melanoma_probability=None,
        threshold=None,
        verdict="",
        model_version=None,
        inference_ms=None,
        error="",
    )
    if updated != 1:
        raise PredictionStateError("This prediction is still being analysed.")
    _enqueue_after_commit(prediction.pk)
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
    if prediction.status not in FINISHED_STATUSES:
        raise PredictionStateError("This prediction is still being analysed.")
    return _requeue(prediction, allowed=FINISHED_STATUSES)


def predictions_requeue_stuck(
    *, running_older_than: timedelta, queued_older_than: timedelta, max_attempts: int = 3
) -> dict[str, list[int]]:
    """The periodic sweep. Re-queues predictions whose message was lost:
    - `running` past the hard time limit (their worker died and the message is gone), unless they have
      already been attempted max_attempts times, in which case they fail with a reason;
    - `queued` for longer than queued_older_than (the broker was down when they were uploaded).
    A duplicate message is harmless: only one task can claim the row.
    """
    now = timezone.now()
    report: dict[str, list[int]] = {"requeued": [], "failed": []}

    stale_running = Prediction.objects.filter(status=Status.RUNNING, started_at__lt=now - running_older_than)
    for prediction_id, attempts in stale_running.values_list("id", "attempts"):
        if attempts >= max_attempts:
            prediction_fail(
                prediction_id=prediction_id,
                reason="The analysis was interrupted several times. Please try again later.",
            )
            report["failed"].append(prediction_id)
        elif (
            Prediction.objects.filter(id=prediction_id, status=Status.RUNNING).update(
                status=Status.QUEUED, queued_at=now
            )
            == 1
        ):
            report["requeued"].append(prediction_id)

    stale_queued = Prediction.objects.filter(status=Status.QUEUED).filter(
        Q(queued_at__lt=now - queued_older_than) | Q(queued_at__isnull=True, created_at__lt=now - queued_older_than)
    )
    for prediction_id in stale_queued.values_list("id", flat=True):
        # Refresh queued_at so that one sweep interval passes before this row is sent again.
        if Prediction.objects.filter(id=prediction_id, status=Status.QUEUED).update(queued_at=now) == 1:
            report["requeued"].append(prediction_id)

    for prediction_id in report["requeued"]:
        prediction_enqueue(prediction_id=prediction_id)
    if report["requeued"] or report["failed"]:
        logger.info("Sweep: re-queued %s, failed %s", report["requeued"], report["failed"])
    return report


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
    names = _file_names(prediction)
    Prediction.objects.filter(pk=prediction.pk).delete()
    _delete_files_after_commit(names)


@transaction.atomic
def user_delete_account(*, user) -> None:
    """Delete a user and everything of theirs: rows (cascade: predictions, API token) and every stored file."""
    names: list[str] = []
    for image_name, thumbnail_name in Prediction.objects.filter(user=user).values_list("image", "thumbnail"):
        names.extend(name for name in (image_name, thumbnail_name) if name)
    # Rows the user reviewed as a clinician keep their review; only the reviewer link goes (SET_NULL).
    user.delete()
    _delete_files_after_commit(names)
