"""Rate limits in the cache (fixed windows): per-user uploads, shared by the upload page and the API, and the
account limits (sign-up, password-reset e-mails, current-password guesses) in accounts/throttling.py."""

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


def _key(scope: str, ident: str, window_s: int) -> str:
    # Hashed: e-mail addresses and client addresses have no business sitting in Redis in clear.
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return f"rate:{scope}:{digest}:{int(time.time() // window_s)}"


def rate_limit_hit(*, scope: str, ident: str, limit: int, window_s: int) -> bool:
    """Count one event for (scope, ident); True when it goes over `limit` in the current window.

    A fixed window is coarse (a burst can straddle two windows) but it needs no locking and survives across
    web processes because the counter lives in Redis. With the cache down the event is allowed, not a 500.
    """
    if limit <= 0:
        return False
    key = _key(scope, ident, window_s)
    try:
        # add() is atomic: only the first event of the window creates the counter.
        cache.add(key, 0, timeout=window_s * 2)
        try:
            count = cache.incr(key)
        except ValueError:  # the key expired between add() and incr()
            cache.set(key, 1, timeout=window_s * 2)
            count = 1
    except Exception:  # noqa: BLE001 - with the cache (Redis) down, allow rather than answer 500
        logger.warning("Rate limit %s unavailable; allowing", scope, exc_info=True)
        return False
    return count > limit


def rate_limit_reached(*, scope: str, ident: str, limit: int, window_s: int) -> bool:
    """True when (scope, ident) already counted `limit` events in the current window; counts nothing."""
    if limit <= 0:
        return False
    try:
        return (cache.get(_key(scope, ident, window_s)) or 0) >= limit
    except Exception:  # noqa: BLE001 - as above
        logger.warning("Rate limit %s unavailable; allowing", scope, exc_info=True)
        return False


def upload_rate_limit_hit(*, user) -> bool:
    """Count one upload attempt for `user`; True when it goes over MELANOMA_UPLOAD_RATE_PER_MINUTE."""
    limit = getattr(settings, "MELANOMA_UPLOAD_RATE_PER_MINUTE", 30)
    return rate_limit_hit(scope="upload", ident=str(user.pk), limit=limit, window_s=60)
