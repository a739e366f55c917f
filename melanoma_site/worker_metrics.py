"""/metrics of a worker host (MELANOMA_METRICS_PORT): the event metrics its pool processes counted.

The state gauges (queue depth, unfinished rows, model in use) come from the web's /metrics: they are the same
from every host. Same access rule as the web's: a bearer token or an allow-listed address.
"""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST

from classifier.metrics import metrics_access_allowed, metrics_payload

logger = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return


def metrics_app(environ: dict, start_response) -> list[bytes]:
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not found.\n"]
    if not metrics_access_allowed(
        authorization=environ.get("HTTP_AUTHORIZATION", ""),
        remote_addr=environ.get("REMOTE_ADDR", ""),
        token=settings.MELANOMA_METRICS_TOKEN,
        allowed=settings.MELANOMA_METRICS_ALLOWED_IPS,
    ):
        start_response("403 Forbidden", [("Content-Type", "text/plain")])
        return [b"Metrics need the scraper's token.\n"]
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
    return [metrics_payload(with_state=False)]


def start_metrics_server(*, bind: str, port: int) -> None:
    server = make_server(bind, port, metrics_app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("Worker metrics on http://%s:%s/metrics", bind, port)
