"""The request a signed-in-only view receives, for the type checker."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest


class AuthenticatedHttpRequest(HttpRequest):
    """What a @login_required view is called with: `request.user` is a signed-in User, never AnonymousUser
    (django-stubs' documented way to say so; at run time it is a plain HttpRequest)."""

    user: User
