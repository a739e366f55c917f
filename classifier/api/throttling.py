"""The API side of the per-user upload limit; the counter is classifier.ratelimit's, shared with the page."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from classifier.ratelimit import upload_rate_limit_hit

logger = logging.getLogger(__name__)


def upload_rate_message(wait_seconds: int | None = None) -> str:
    per_minute = int(settings.MELANOMA_UPLOAD_RATE_PER_MINUTE)
    wait = f" Please wait {wait_seconds} s and try again." if wait_seconds else " Please wait a minute."
    return f"Too many uploads: at most {per_minute} per minute.{wait}"


class UploadRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        try:
            return not upload_rate_limit_hit(user=request.user)
        except Exception:  # noqa: BLE001 - the cache is Redis; with it down, accept uploads rather than 500
            logger.warning("Upload rate limit unavailable; allowing the upload", exc_info=True)
            return True

    def wait(self) -> float:
        return 60 - (time.time() % 60)  # fixed one-minute windows
