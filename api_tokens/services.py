"""Writes for API tokens: issue, revoke one, revoke all (password change and reset call the last one)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from api_tokens.models import ApiToken


def api_token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, user, name: str = "", expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the secret, which is shown this once and never stored."""
    key = secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    token = ApiToken.objects.create(
        user=user, key_digest=api_token_digest(key), prefix=key[:8], name=name, expires_at=expires_at
    )
    return token, key


def api_token_revoke(*, user, token_id: int) -> None:
    """Revoke one of the user's tokens; ApiToken.DoesNotExist for another person's (the API says 404)."""
    ApiToken.objects.get(user=user, pk=token_id).delete()


def tokens_revoke_all(*, user) -> int:
    """Revoke every API token of `user` (password changed or reset, "log out everywhere"); returns how many."""
    deleted, _ = ApiToken.objects.filter(user=user).delete()
    return deleted


def api_token_touch(*, token: ApiToken) -> None:
    """Record use, at most once a minute per token: one write per request would make every read a write."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
