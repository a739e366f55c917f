"""Per-user upload rate limit, shared by the upload page and the API (fixed one-minute windows in the cache)."""

import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


def upload_rate_limit_hit(*, user) -> bool:
    """Count one upload attempt for `user`; True when it goes over MELANOMA_UPLOAD_RATE_PER_MINUTE.

    A fixed window is coarse (a burst can straddle two windows) but it needs no locking and survives across
    web processes because the counter lives in Redis.
    """
    limit = getattr(settings, "MELANOMA_UPLOAD_RATE_PER_MINUTE", 30)
    if limit <= 0:
        return False
    window = int(time.time() // 60)
    key = f"upload-rate:{user.pk}:{window}"
    try:
        # add() is atomic: only the first request of the window creates the counter.
        cache.add(key, 0, timeout=120)
        try:
            count = cache.incr(key)
        except ValueError:  # the key expired between add() and incr()
            cache.set(key, 1, timeout=120)
            count = 1
    except Exception:  # noqa: BLE001 - with the cache (Redis) down, accept the upload rather than answer 500
        logger.warning("Upload rate limit unavailable; allowing the upload", exc_info=True)
        return False
    return count > limit
