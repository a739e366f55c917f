"""Sending a prediction to the worker. The task is sent by name, so the services never import the task module
(which imports the services): the web process needs nothing of the worker's code to queue work."""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

# The name classifier/tasks.py registers prediction_run_task under; messages already queued carry it.
PREDICTION_RUN_TASK = "classifier.prediction_run"

# A broker that is briefly down should not hold an upload for long: a few quick tries, then the sweep's job.
_SEND_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def prediction_enqueue(*, prediction_id: int) -> bool:
    """Send the Celery message for a prediction. Never raises: with the broker down, the row stays `queued`
    and the periodic sweep (predictions_requeue_stuck) sends it again once the broker is back."""
    try:
        current_app.send_task(PREDICTION_RUN_TASK, args=(prediction_id,), retry=True, retry_policy=_SEND_RETRY_POLICY)
    except Exception:  # noqa: BLE001 - any broker failure must not turn an accepted upload into a 500
        logger.warning("Could not queue prediction %s; the sweep will re-queue it", prediction_id, exc_info=True)
        return False
    return True


def prediction_enqueue_on_commit(*, prediction_id: int) -> None:
    # A message sent before COMMIT can reach a worker before the row is visible to it.
    transaction.on_commit(lambda: prediction_enqueue(prediction_id=prediction_id), robust=True)
