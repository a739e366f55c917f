"""Prometheus metrics (prometheus-client) and the exposition that GET /metrics serves.

Two kinds, each counted where its truth is:
- Events, counted by the process where they happen: uploads (web), predictions by outcome, failures by reason,
  queued->done latency and inference time (worker). Several gunicorn workers and Celery pool processes on one
  host share them through prometheus-client's multiprocess mode: PROMETHEUS_MULTIPROC_DIR (set by the stack
  harness; one empty folder per host, created before the processes start) holds one file per process, and the
  scrape adds them up. Without it (manage.py runserver, the tests) the process's own registry is served.
  A worker on a host without a web server serves its host's figures itself (melanoma_site/celery.py,
  MELANOMA_METRICS_PORT), with the same access rule.
- State, read at scrape time from where it lives, so every web host reports the same: queue depth (from the
  broker), predictions waiting or running (from the database), the model version in use.

Labels are fixed sets (outcome, reason kind, queue, status, version): never a user, a file name or an id.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from typing import Protocol, cast

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)

UPLOADS = Counter("melanoma_uploads", "Photos accepted for analysis (each creates one queued prediction).")
PREDICTIONS = Counter(
    "melanoma_predictions_finished", "Predictions that finished, by outcome (refer, low_risk, failed).", ["outcome"]
)
FAILURES = Counter("melanoma_prediction_failures", "Failed predictions by reason kind.", ["reason"])
LATENCY = Histogram(
    "melanoma_prediction_latency_seconds",
    "From queued to done: what a user waits for a verdict.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
INFERENCE = Histogram(
    "melanoma_inference_seconds",
    "Decoding, preprocessing and scoring one photo in the worker.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# The reason kinds of prediction_fail: a closed set, so that the label never carries free text.
FAILURE_REASONS = (
    "missing_photo",
    "model_unavailable",
    "image_unreadable",
    "invalid_score",
    "interrupted",
    "unavailable",
    "timeout",
    "unexpected",
)


class StateCollector:
    """Gauges read at scrape time: the broker's queue depths, rows waiting/running, the active model."""

    def collect(self):
        from django.conf import settings  # noqa: PLC0415
        from django.db.models import Count  # noqa: PLC0415

        from classifier.models import Prediction  # noqa: PLC0415
        from classifier.selectors import model_version_get_active  # noqa: PLC0415

        depth = GaugeMetricFamily("melanoma_queue_depth", "Messages waiting in the broker queue.", labels=["queue"])
        for queue in (settings.MELANOMA_INFERENCE_QUEUE, settings.MELANOMA_HOUSEKEEPING_QUEUE):
            count = _queue_depth(settings.CELERY_BROKER_URL, queue)
            if count is not None:
                depth.add_metric([queue], count)
        yield depth

        rows = GaugeMetricFamily(
            "melanoma_predictions_unfinished", "Predictions queued or running (database).", labels=["status"]
        )
        unfinished = (Prediction.Status.QUEUED, Prediction.Status.RUNNING)
        try:
            counts = dict(
                Prediction.objects.filter(status__in=unfinished)
                .order_by()
                .values_list("status")
                .annotate(count=Count("id"))
            )
            for status in unfinished:
                rows.add_metric([status], counts.get(status, 0))
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            logger.warning("metrics: cannot count predictions", exc_info=True)
        yield rows

        model = GaugeMetricFamily("melanoma_model_info", "The model version in use (value 1).", labels=["version"])
        try:
            active = model_version_get_active()
            if active is not None:
                model.add_metric([active.version], 1)
        except Exception:  # noqa: BLE001
            logger.warning("metrics: cannot read the active model", exc_info=True)
        yield model


class _DeclaringChannel(Protocol):
    """What every kombu transport's channel (py-amqp's and the virtual ones, Redis included) answers; kombu-stubs
    type `default_channel` as the abstract StdChannel, which does not declare queue_declare."""

    def queue_declare(self, queue: str, passive: bool = ...) -> tuple[str, int, int]: ...


def _queue_depth(broker_url: str, queue: str) -> int | None:
    """Messages ready in `queue` (a passive declare: nothing is created); None when the broker is down."""
    from kombu import Connection  # noqa: PLC0415
    from kombu.exceptions import ChannelError  # noqa: PLC0415

    try:
        with Connection(broker_url, connect_timeout=1) as connection:
            connection.ensure_connection(max_retries=0, timeout=1)
            try:
                channel = cast(_DeclaringChannel, connection.default_channel)
                _, count, _ = channel.queue_declare(queue=queue, passive=True)
            except ChannelError:
                # Redis keeps no empty lists: no key is an empty queue. RabbitMQ: nobody declared it yet.
                return 0 if connection.transport.driver_type == "redis" else None
            return int(count)
    except Exception:  # noqa: BLE001 - the broker is down: no sample rather than a failed scrape
        return None


def event_registry_payload() -> bytes:
    """The event metrics of this host: every process's (multiprocess mode) or this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    from prometheus_client import REGISTRY  # noqa: PLC0415

    return generate_latest(REGISTRY)


def metrics_payload(*, with_state: bool = True) -> bytes:
    body = event_registry_payload()
    if with_state:
        registry = CollectorRegistry()
        registry.register(StateCollector())
        body += generate_latest(registry)
    return body


def metrics_access_allowed(*, authorization: str, remote_addr: str, token: str, allowed: list[str]) -> bool:
    """A bearer token equal to MELANOMA_METRICS_TOKEN, or a client address inside MELANOMA_METRICS_ALLOWED_IPS
    (addresses or networks). Neither configured: nobody (metrics are never public by default)."""
    if token:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    if allowed and remote_addr:
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(entry, strict=False) for entry in allowed)
    return False
