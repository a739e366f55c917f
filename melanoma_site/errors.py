"""Errors Django raises while it reads a request (before any view runs), as readable answers: JSON
`{"detail": ...}` under /api/, a page elsewhere, with the status that says what happened.

Django answers these with a bare 400 (its `handler400`): too many form fields (DATA_UPLOAD_MAX_NUMBER_FIELDS),
too many files (DATA_UPLOAD_MAX_NUMBER_FILES), a text field over DATA_UPLOAD_MAX_MEMORY_SIZE, and here a body
that stopped arriving (melanoma_site/request_body.py). The API's exception handler uses the same table.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from melanoma_site.request_body import RequestBodyTimeout

REQUEST_ERRORS: dict[type[Exception], tuple[int, str, str]] = {
    RequestBodyTimeout: (
        408,
        "The request took too long",
        "The request did not arrive in time. Please check your connection and try again.",
    ),
    RequestDataTooBig: (
        413,
        "The form is too large",
        "A text field of the form is too large. Please keep the note short (a few lines) and try again.",
    ),
    TooManyFieldsSent: (
        400,
        "The form has too many fields",
        "The form has too many fields. Send the photo with its body site and an optional note only.",
    ),
    TooManyFilesSent: (
        400,
        "Too many files",
        "Too many files in one request. Please upload one photo at a time.",
    ),
}
LENGTH_REQUIRED = (
    411,
    "Length required",
    "The upload must say how large it is (a Content-Length header) or be sent in chunks.",
)


def request_error(exception: BaseException | None) -> tuple[int, str, str] | None:
    """(status, title, message) for an error Django raised while reading the request; None for others."""
    for kind, answer in REQUEST_ERRORS.items():
        if isinstance(exception, kind):
            return answer
    return None


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def error_response(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"detail": message}, status=status)
    return render(request, "request_error.html", {"title": title, "message": message}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: Django's SuspiciousOperation / BadRequest while reading the request."""
    known = request_error(exception)
    if known is not None:
        return error_response(request, *known)
    if wants_json(request):
        return JsonResponse({"detail": "The request could not be read."}, status=400)
    return render(request, "400.html", status=400)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: a URL that matches nothing (e.g. /api/spots/-1/): JSON under /api/, the site's page elsewhere."""
    if wants_json(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "404.html", status=404)
