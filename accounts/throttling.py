"""Log-in throttling that an attacker cannot turn against someone else, and the account rate limits.

Log-ins (django-axes, configured in settings/base.py):
- failures count per client address (melanoma_site.client_ip, behind the trusted proxies), never per username:
  guessing slows down the guesser's own address, and a stranger cannot lock alice out by failing as "alice";
- every further lockout of the same address within a day doubles the pause (15 min, 30 min, 1 h, … up to 24 h);
- a browser that has logged in to an account before carries a signed device cookie: a log-in to that account
  from it is not held by its address's lockout (someone else behind the same NAT or proxy may be guessing),
  until the device itself fails AXES_FAILURE_LIMIT times (OWASP "device cookies"; a stolen cookie buys no
  more guesses than anyone else gets);
- a password reset lifts the lockout (accounts.services.user_password_changed) and trusts the device it was made
  on.

Sign-up, password-reset e-mails and current-password checks (password change, account deletion) are limited
with the same fixed-window counters as uploads (classifier/ratelimit.py), answered with 429 and a readable page.
"""

from __future__ import annotations

import datetime
import logging
import secrets

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from classifier.ratelimit import rate_limit_hit, rate_limit_reached
from melanoma_site.client_ip import client_ip

logger = logging.getLogger(__name__)

DEVICE_COOKIE = "melanoma_device"
_DEVICE_SALT = "accounts.device-cookie"
DEVICE_COOKIE_MAX_AGE_S = 365 * 24 * 3600
_LOCKOUTS_REMEMBERED_S = 24 * 3600
_MAX_COOLOFF = datetime.timedelta(hours=24)


# --- durations a person reads -----------------------------------------------------------------------


def duration_text(delta: datetime.timedelta) -> str:
    """'15 minutes', '1 hour', '2 hours 30 minutes' (never '0:15:00')."""
    minutes = max(1, round(delta.total_seconds() / 60))
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


# --- the address, and the pause with backoff --------------------------------------------------------


def _address(request) -> str:
    return getattr(request, "axes_ip_address", None) or client_ip(request)


def _lockouts_key(address: str) -> str:
    return f"login-lockouts:{address}"


def _previous_lockouts(request) -> int:
    if request is None:
        return 0
    try:
        return int(cache.get(_lockouts_key(_address(request))) or 0)
    except Exception:  # noqa: BLE001 - without the cache, no backoff: the base pause still applies
        logger.warning("Login backoff counter unavailable", exc_info=True)
        return 0


def lockout_cooloff(request: HttpRequest | None = None) -> datetime.timedelta:
    """AXES_COOLOFF_TIME: the base pause, doubled for every earlier lockout of this address in the last day."""
    base = datetime.timedelta(minutes=settings.MELANOMA_LOGIN_COOLOFF_MINUTES)
    doublings = max(0, _previous_lockouts(request) - 1)
    return min(base * (2 ** min(doublings, 10)), max(base, _MAX_COOLOFF))


def lockout_recorded(sender, request=None, ip_address=None, **kwargs) -> None:
    """Receiver of axes' user_locked_out: count one lockout episode of this address (not every refused try
    while it lasts, which axes also signals)."""
    if request is None:
        return
    failures = getattr(request, "axes_failures_since_start", None)
    if failures != settings.AXES_FAILURE_LIMIT:
        return
    key = _lockouts_key(ip_address or _address(request))
    try:
        cache.add(key, 0, timeout=_LOCKOUTS_REMEMBERED_S)
        cache.incr(key)
    except Exception:  # noqa: BLE001 - see _previous_lockouts
        logger.warning("Login backoff counter unavailable", exc_info=True)


def lockout_message(request: HttpRequest) -> str:
    return (
        f"Too many failed log-ins from your network. Please try again in {duration_text(lockout_cooloff(request))}, "
        "or reset your password by e-mail."
    )


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: a readable page (JSON under /api/), status 429, the pause in words."""
    cooloff = lockout_cooloff(request)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": lockout_message(request)}, status=429)
    else:
        context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "cooloff_text": duration_text(cooloff)}
        response = render(request, "registration/lockout.html", context, status=429)
    response["Retry-After"] = str(int(cooloff.total_seconds()))
    return response


# --- device cookies -----------------------------------------------------------------------------------


def device_cookie_set(response: HttpResponse, *, user) -> None:
    """Mark this browser as one that has logged in to `user`'s account."""
    value = signing.dumps({"u": user.get_username(), "n": secrets.token_urlsafe(12)}, salt=_DEVICE_SALT)
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def _device_id(request, username: str | None) -> str | None:
    """The device cookie's id when the request carries a valid one for `username`."""
    raw = getattr(request, "COOKIES", {}).get(DEVICE_COOKIE)
    if not raw or not username:
        return None
    try:
        data = signing.loads(raw, salt=_DEVICE_SALT, max_age=DEVICE_COOKIE_MAX_AGE_S)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != username:
        return None
    return str(data.get("n") or "") or None


def _device_failures_ident(device_id: str) -> str:
    return f"device:{device_id}"


def _username(request, credentials) -> str | None:
    from axes.helpers import get_client_username

    return get_client_username(request, credentials)


def login_from_trusted_device(request, credentials=None) -> bool:
    """AXES_WHITELIST_CALLABLE: a device that logged in to this account before, and has not itself failed too
    often, is not held by its address's lockout."""
    device_id = _device_id(request, _username(request, credentials))
    if device_id is None:
        return False
    return not rate_limit_reached(
        scope="device-login-failures",
        ident=_device_failures_ident(device_id),
        limit=settings.AXES_FAILURE_LIMIT,
        window_s=int(lockout_cooloff(None).total_seconds()),
    )


def device_login_failed(sender, credentials=None, request=None, **kwargs) -> None:
    """Receiver of user_login_failed: failures from a trusted device count against that device."""
    if request is None:
        return
    device_id = _device_id(request, _username(request, credentials))
    if device_id is not None:
        rate_limit_hit(
            scope="device-login-failures",
            ident=_device_failures_ident(device_id),
            limit=settings.AXES_FAILURE_LIMIT,
            window_s=int(lockout_cooloff(None).total_seconds()),
        )


# --- sign-up, reset e-mails, current-password checks ------------------------------------------------

HOUR_S = 3600
PASSWORD_CHECK_WINDOW_S = 15 * 60


def signup_rate_limit_hit(request: HttpRequest) -> bool:
    return rate_limit_hit(
        scope="signup", ident=client_ip(request), limit=settings.MELANOMA_SIGNUP_RATE_PER_HOUR, window_s=HOUR_S
    )


def password_reset_rate_limit_hit(request: HttpRequest, *, email: str) -> bool:
    """Per client address, and per target address (so that nobody can flood one person's inbox); the e-mail is
    counted whether or not an account has it, so that the answer tells nothing about who has an account."""
    by_address = rate_limit_hit(
        scope="password-reset-ip",
        ident=client_ip(request),
        limit=settings.MELANOMA_PASSWORD_RESET_RATE_PER_HOUR_PER_IP,
        window_s=HOUR_S,
    )
    by_email = rate_limit_hit(
        scope="password-reset-email",
        ident=email.strip().lower(),
        limit=settings.MELANOMA_PASSWORD_RESET_RATE_PER_HOUR_PER_EMAIL,
        window_s=HOUR_S,
    )
    return by_address or by_email


def password_check_blocked(*, user) -> bool:
    """True when this account's current password was given wrong too often lately (change / delete forms)."""
    return rate_limit_reached(
        scope="password-check-failures",
        ident=str(user.pk),
        limit=settings.MELANOMA_PASSWORD_CHECK_FAILURES,
        window_s=PASSWORD_CHECK_WINDOW_S,
    )


def password_check_failed(*, user) -> None:
    rate_limit_hit(
        scope="password-check-failures",
        ident=str(user.pk),
        limit=settings.MELANOMA_PASSWORD_CHECK_FAILURES,
        window_s=PASSWORD_CHECK_WINDOW_S,
    )


def too_many_response(request: HttpRequest, *, title: str, message: str, retry_after_s: int) -> HttpResponse:
    response = render(request, "registration/too_many.html", {"title": title, "message": message}, status=429)
    response["Retry-After"] = str(retry_after_s)
    return response
