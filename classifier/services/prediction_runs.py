"""Worker-side writes for Prediction rows: run inference, fail with a reason, and the sweep that re-queues
predictions whose message was lost. Celery tasks (classifier/tasks.py) are thin wrappers around these."""

from __future__ import annotations

import logging
import math
import time
import uuid
from datetime import timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, InterfaceError, OperationalError
from django.db.models import F, Q
from django.utils import timezone

from classifier.images import stored_sizes
from classifier.models import Prediction
from classifier.services import prediction_events
from classifier.services.prediction_queue import prediction_enqueue

logger = logging.getLogger(__name__)

Status = Prediction.Status

# Errors worth retrying: the database or the broker is briefly unreachable. Anything else is a bug or bad
# input, and retrying it only delays the readable failure.
TRANSIENT_DB_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)

# What a person reads on the result page and in the API. The exception text (file paths, library messages) goes
# to the log for the operator, never onto the row.
MODEL_UNAVAILABLE_REASON = (
    "The service cannot analyse photos at the moment. The team has been notified; please try again later."
)
IMAGE_UNREADABLE_REASON = "The stored photo could not be read. Please upload it again."


def _release_claim(prediction_id: int) -> None:
    """Give a claimed row back to the queue so that a retry of the task can claim it again."""
    try:
        released = Prediction.objects.filter(id=prediction_id, status=Status.RUNNING).update(
            status=Status.QUEUED, queued_at=timezone.now()
        )
        if released:
            prediction_events.prediction_requeued(prediction_id=prediction_id, why="transient_error")
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
    from classifier.inference import ImageUnreadable, InferenceError, predict_melanoma  # loads no model at import

    claimable = (Status.QUEUED, Status.RUNNING) if reclaim_running else (Status.QUEUED,)
    claimed = Prediction.objects.filter(id=prediction_id, status__in=claimable).update(
        status=Status.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1, error=""
    )
    if claimed != 1:
        logger.info("Prediction %s is not queued (done, running elsewhere or deleted); skipping", prediction_id)
        return Prediction.objects.filter(id=prediction_id).first()

    prediction = Prediction.objects.get(id=prediction_id)
    prediction_events.prediction_started(prediction_id=prediction_id, attempt=prediction.attempts)
    try:
        # Through the storage API: local files or the S3 bucket, whichever STORAGE_URL chose.
        if not prediction.image.name:
            raise FileNotFoundError(prediction_id)
        with default_storage.open(prediction.image.name, "rb") as stored:
            image_bytes = stored.read()
    except (FileNotFoundError, ValueError):
        return prediction_fail(
            prediction_id=prediction_id,
            reason="The stored photo is missing; please upload it again.",
            kind="missing_photo",
        )

    started = time.perf_counter()
    try:
        # A photo stored as taken (classifier/images.py) has no thumbnail yet: made from the pixels decoded here.
        result = predict_melanoma(image_bytes, thumbnail_side=None if prediction.thumbnail.name else stored_sizes()[1])
    except InferenceError as error:
        logger.error("Prediction %s failed: %s", prediction_id, error)
        unreadable = isinstance(error, ImageUnreadable)
        reason = IMAGE_UNREADABLE_REASON if unreadable else MODEL_UNAVAILABLE_REASON
        kind = "image_unreadable" if unreadable else "model_unavailable"
        return prediction_fail(prediction_id=prediction_id, reason=reason, kind=kind)
    except TRANSIENT_DB_ERRORS:
        _release_claim(prediction_id)
        raise
    inference_ms = (time.perf_counter() - started) * 1000.0
    prediction_thumbnail_attach(prediction_id, result.thumbnail_jpeg)

    if result.quality_issue or result.score is None:
        return _prediction_finish_retake(
            prediction_id=prediction_id,
            quality_issue=result.quality_issue,
            model_version_id=result.model_version_id,
            inference_ms=inference_ms,
            previous_heatmap=prediction.heatmap.name or "",
        )
    score = float(result.score)
    probability = result.melanoma_probability
    threshold = float(result.threshold)
    if not (math.isfinite(score) and 0.0 <= score <= 1.0) or (
        probability is not None and not (math.isfinite(probability) and 0.0 <= probability <= 1.0)
    ):
        # A broken model (e.g. NaN outputs) must not produce a verdict; NaN would also be stored as NULL.
        logger.error("Model %s returned %r for prediction %s", result.model_version, score, prediction_id)
        return prediction_fail(
            prediction_id=prediction_id,
            reason="The model could not score this photo. The team has been notified; please try again later.",
            kind="invalid_score",
        )
    # Only a row that is still ours (running) is written: it may have been deleted meanwhile.
    # The threshold applies to the raw score; the calibrated probability is for people to read.
    verdict = Prediction.Verdict.for_score(score=score, threshold=threshold)
    heatmap_name = _heatmap_save(result.heatmap_png)
    previous_heatmap = prediction.heatmap.name or ""
    completed_at = timezone.now()
    updated = Prediction.objects.filter(id=prediction_id, status=Status.RUNNING).update(
        status=Status.DONE,
        score=score,
        melanoma_probability=probability,
        risk_level=result.risk_level,
        threshold=threshold,
        verdict=verdict,
        quality_issue="",
        heatmap=heatmap_name,
        differential=result.differential,
        model_version_id=result.model_version_id,
        inference_ms=inference_ms,
        completed_at=completed_at,
        error="",
    )
    if updated != 1:
        logger.info("Prediction %s changed while it ran; result discarded", prediction_id)
        _stored_file_delete(heatmap_name)
    else:
        _stored_file_delete(previous_heatmap)  # a re-run replaces the map of the run before
        prediction_events.prediction_finished(
            prediction_id=prediction_id,
            verdict=str(verdict),
            model_version=result.model_version,
            inference_ms=inference_ms,
            queued_at=prediction.queued_at or prediction.created_at,
            completed_at=completed_at,
        )
    return Prediction.objects.filter(id=prediction_id).first()


def prediction_thumbnail_attach(prediction_id: int, jpeg: bytes | None) -> None:
    """Store the thumbnail the worker made and name it on the row, whatever the verdict (retakes show in history
    too). A row deleted meanwhile, or given a thumbnail by another run, keeps no stray file."""
    if jpeg is None:
        return
    name = default_storage.save(f"thumbnails/{uuid.uuid4().hex}.jpg", ContentFile(jpeg))
    if Prediction.objects.filter(id=prediction_id, thumbnail="").update(thumbnail=name) != 1:
        _stored_file_delete(name)


def _heatmap_save(png: bytes | None) -> str:
    """Store the overlay privately under a random name (like the photo); "" when the model made none."""
    if not png:
        return ""
    return default_storage.save(f"heatmaps/{uuid.uuid4().hex}.png", ContentFile(png))


def _stored_file_delete(name: str) -> None:
    if not name:
        return
    try:
        default_storage.delete(name)
    except OSError:
        logger.exception("Could not delete stored file %s", name)


def _prediction_finish_retake(
    *, prediction_id: int, quality_issue: str, model_version_id: int, inference_ms: float, previous_heatmap: str = ""
) -> Prediction | None:
    """The photo check refused the photo: done, with no melanoma verdict, and the reason to retake it."""
    if quality_issue not in Prediction.QualityIssue.values:
        # A runtime newer than this database's choices: still no verdict, and a reason a person can act on.
        logger.warning("Unknown quality issue %r for prediction %s", quality_issue, prediction_id)
        quality_issue = Prediction.QualityIssue.UNFAMILIAR
    updated = Prediction.objects.filter(id=prediction_id, status=Status.RUNNING).update(
        status=Status.DONE,
        verdict=Prediction.Verdict.RETAKE,
        quality_issue=quality_issue,
        score=None,
        melanoma_probability=None,
        risk_level=None,
        threshold=None,
        heatmap="",
        differential=[],
        model_version_id=model_version_id,
        inference_ms=inference_ms,
        completed_at=timezone.now(),
        error="",
    )
    if updated != 1:
        logger.info("Prediction %s changed while it ran; result discarded", prediction_id)
    else:
        _stored_file_delete(previous_heatmap)  # a re-run that is refused keeps no map of the run before
    return Prediction.objects.filter(id=prediction_id).first()


def prediction_fail(*, prediction_id: int, reason: str, kind: str = "unexpected") -> Prediction | None:
    """Mark an unfinished prediction failed with a reason a person can read; `kind` (one of
    classifier.metrics.FAILURE_REASONS) is what the metrics and the event log count it under."""
    failed = Prediction.objects.filter(id=prediction_id, status__in=(Status.QUEUED, Status.RUNNING)).update(
        status=Status.FAILED, error=reason[:2000], completed_at=timezone.now()
    )
    if failed:
        prediction_events.prediction_failed(prediction_id=prediction_id, reason_kind=kind)
    return Prediction.objects.filter(id=prediction_id).first()


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
                kind="interrupted",
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
        prediction_events.prediction_requeued(prediction_id=prediction_id, why="sweep")
        prediction_enqueue(prediction_id=prediction_id)
    if report["requeued"] or report["failed"]:
        logger.info("Sweep: re-queued %s, failed %s", report["requeued"], report["failed"])
    return report
