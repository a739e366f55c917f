"""`Authorization: Bearer <token>` (what most HTTP clients and OpenAPI tools send) or `Token <token>` (what
this API documented first): both name the same tokens."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from api_tokens.selectors import api_token_get_by_key
from api_tokens.services import api_token_touch

KEYWORDS = ("bearer", "token")


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].decode(errors="replace").lower() not in KEYWORDS:
            return None  # not ours: session authentication may still apply
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: send 'Bearer <token>'.")
        try:
            key = parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = api_token_get_by_key(key=key)
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.is_expired:
            raise exceptions.AuthenticationFailed("This token has expired: ask for a new one with POST /api/token/.")
        api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials, and says what to send.
        return 'Bearer realm="api"'
