"""Content-Security-Policy for every response (Django 5.2 has none built in), and no browser cache for pages.

The site serves its own CSS and JS and no inline script or style, so the policy can be strict: a script
injected into a page (say, through a note that escaped escaping) does not run, and no page can be framed.
The policy is a setting (CONTENT_SECURITY_POLICY) so that a deployment can tighten or report-only it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

DEFAULT_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_POLICY)
        self.header = (
            "Content-Security-Policy-Report-Only"
            if getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", False)
            else "Content-Security-Policy"
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy and self.header not in response:
            response[self.header] = self.policy
        return response


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every response the application makes (static files are answered by WhiteNoise
    before this runs, and keep their long cache lifetime).

    Result pages, history, the account page, API JSON and photos are medical records: on a shared or lost
    computer, a browser cache or the back button after logging out must not show them. A view that sets its own
    Cache-Control is left alone.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Cache-Control" not in response:
            add_never_cache_headers(response)
        return response
