"""One record per prediction state change: a JSON log line (logger `melanoma.events`) and the Prometheus
counters of classifier/metrics.py. The writes in prediction_writes.py and prediction_runs.py call it after the
row changed.

The line carries the prediction id, the new status and technical facts (attempt, model version, timings,
reason kind): never the user, the note, the body site or a file name, so the log can go to a shared log store.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from django.utils import timezone

from classifier import metrics

events_logger = logging.getLogger("melanoma.events")


def prediction_event(*, prediction_id: int, status: str, event: str, **facts: object) -> None:
    """Log `event` (uploaded, queued, running, done, failed) of one prediction; never raises."""
    record = {"ts": timezone.now().isoformat(), "event": event, "prediction_id": prediction_id, "status": status}
    record.update({key: value for key, value in facts.items() if value is not None})
    try:
        events_logger.info(json.dumps(record, default=str, sort_keys=False))
    except Exception:  # noqa: BLE001 - logging must never break a prediction
        logging.getLogger(__name__).exception("Could not log the event of prediction %s", prediction_id)


def prediction_uploaded(*, prediction_id: int) -> None:
    metrics.UPLOADS.inc()
    prediction_event(prediction_id=prediction_id, status="queued", event="uploaded")


def prediction_requeued(*, prediction_id: int, why: str) -> None:
    prediction_event(prediction_id=prediction_id, status="queued", event="queued", why=why)


def prediction_started(*, prediction_id: int, attempt: int | None) -> None:
    prediction_event(prediction_id=prediction_id, status="running", event="running", attempt=attempt)


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def prediction_finished(
    *,
    prediction_id: int,
    verdict: str,
    model_version: str,
    inference_ms: float,
    queued_at: datetime | None,
    completed_at: datetime | None,
) -> None:
    latency_s = _seconds_between(queued_at, completed_at)
    metrics.PREDICTIONS.labels(outcome=verdict).inc()
    metrics.INFERENCE.observe(inference_ms / 1000.0)
    if latency_s is not None:
        metrics.LATENCY.observe(latency_s)
    prediction_event(
        prediction_id=prediction_id,
        status="done",
        event="done",
        verdict=verdict,
        model_version=model_version,
        inference_ms=round(inference_ms, 2),
        latency_ms=None if latency_s is None else round(latency_s * 1000.0, 1),
    )


def prediction_failed(*, prediction_id: int, reason_kind: str) -> None:
    kind = reason_kind if reason_kind in metrics.FAILURE_REASONS else "unexpected"
    metrics.PREDICTIONS.labels(outcome="failed").inc()
    metrics.FAILURES.labels(reason=kind).inc()
    prediction_event(prediction_id=prediction_id, status="failed", event="failed", reason=kind)
