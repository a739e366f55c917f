"""Celery tasks: thin wrappers that take an id and call a service.

Reliability settings live here and in settings.py (CELERY_*): acks_late + reject_on_worker_lost so that a
message survives a worker dying mid-task (the atomic claim in prediction_run makes the redelivery
harmless), soft/hard time limits, and retries for transient infrastructure errors only.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from classifier.services.media_cleanup import media_orphans_delete
from classifier.services.prediction_queue import PREDICTION_RUN_TASK
from classifier.services.prediction_runs import (
    TRANSIENT_DB_ERRORS,
    prediction_fail,
    prediction_run,
    predictions_requeue_stuck,
)

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    *TRANSIENT_DB_ERRORS,
    RedisConnectionError,
    RedisTimeoutError,
    KombuOperationalError,
    ConnectionError,
)
MAX_RETRIES = 5
RETRY_BACKOFF_MAX_S = 60

UNAVAILABLE_REASON = "The analysis service is temporarily unavailable. Please try again in a few minutes."
TIMEOUT_REASON = "The analysis took too long and was stopped. Please try again."
UNEXPECTED_REASON = "Something went wrong while analysing this photo. Please try again."


class PredictionTask(Task):
    """Marks the prediction failed, with a readable reason, whenever the task gives up."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        prediction_id = kwargs.get("prediction_id", args[0] if args else None)
        if prediction_id is None:
            return
        if isinstance(exc, TRANSIENT_ERRORS):
            reason, kind = UNAVAILABLE_REASON, "unavailable"
        elif isinstance(exc, SoftTimeLimitExceeded):
            reason, kind = TIMEOUT_REASON, "timeout"
        else:
            reason, kind = UNEXPECTED_REASON, "unexpected"
        try:
            prediction_fail(prediction_id=int(prediction_id), reason=reason, kind=kind)
        except Exception:  # noqa: BLE001 - the database may be the thing that is down; the sweep will catch up
            logger.exception("Could not mark prediction %s failed", prediction_id)


@shared_task(
    bind=True,
    base=PredictionTask,
    name=PREDICTION_RUN_TASK,  # the services send it by this name
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.MELANOMA_TASK_SOFT_TIME_LIMIT_S,
    time_limit=settings.MELANOMA_TASK_TIME_LIMIT_S,
    max_retries=MAX_RETRIES,
)
def prediction_run_task(self: Task, prediction_id: int) -> None:
    # Set by the broker on a message that comes back after its worker died while holding it.
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    try:
        prediction_run(prediction_id=prediction_id, reclaim_running=redelivered)
    except TRANSIENT_ERRORS as error:
        # Exponential backoff: 1, 2, 4, 8, 16 s (capped); then on_failure marks the row failed.
        countdown = min(RETRY_BACKOFF_MAX_S, 2**self.request.retries)
        logger.warning("Prediction %s hit a transient error (%s); retry in %ss", prediction_id, error, countdown)
        raise self.retry(exc=error, countdown=countdown) from error


@shared_task(name="classifier.predictions_sweep", ignore_result=True)
def predictions_sweep_task() -> dict[str, list[int]]:
    """Re-queue predictions whose message was lost (see predictions_requeue_stuck)."""
    return predictions_requeue_stuck(
        running_older_than=timedelta(seconds=settings.MELANOMA_TASK_TIME_LIMIT_S + 30),
        queued_older_than=timedelta(seconds=settings.MELANOMA_SWEEP_QUEUED_AFTER_S),
    )


@shared_task(name="classifier.media_orphans_cleanup", ignore_result=True)
def media_orphans_cleanup_task() -> list[str]:
    """Delete stored photos no row refers to (see media_orphans_delete)."""
    return media_orphans_delete(older_than=timedelta(seconds=settings.MELANOMA_ORPHAN_FILES_AFTER_S))
