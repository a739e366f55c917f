"""The Celery app. Configuration lives in Django settings under the CELERY_ namespace."""

import os

from celery import Celery
from celery.signals import worker_ready

# Development unless told otherwise; a deployment sets DJANGO_SETTINGS_MODULE=melanoma_site.settings.production.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_site.settings.development")

app = Celery("melanoma_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def serve_worker_metrics(sender=None, **kwargs) -> None:
    """On a worker host without a web server, MELANOMA_METRICS_PORT serves this host's event metrics (the pool
    processes' counters, PROMETHEUS_MULTIPROC_DIR) at /metrics, with the same token/allow-list rule as the web's.
    Started once the pool has forked, from the main process, in a daemon thread."""
    port = int(os.environ.get("MELANOMA_METRICS_PORT") or 0)
    if not port:
        return
    from melanoma_site.worker_metrics import start_metrics_server  # noqa: PLC0415

    start_metrics_server(bind=os.environ.get("MELANOMA_METRICS_BIND", "127.0.0.1"), port=port)
