"""Public pages."""

from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.http import require_safe


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/landing.html")


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on pages without an icon link (the admin's, a JSON response): send them to
    the static file instead of a 404. Resolved per request: the hashed static name exists after collectstatic."""
    return HttpResponsePermanentRedirect(static("favicon.ico"))
