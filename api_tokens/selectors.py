"""Reads for API tokens."""

from __future__ import annotations

from django.db.models import QuerySet

from api_tokens.models import ApiToken
from api_tokens.services import api_token_digest


def api_token_list_for_user(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def api_token_get_by_key(*, key: str) -> ApiToken | None:
    """The token with this secret (expired or not: the caller says which is which), with its user."""
    return ApiToken.objects.select_related("user").filter(key_digest=api_token_digest(key)).first()
