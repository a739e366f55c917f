"""Refuse oversized uploads without reading them into memory.

Two layers: a middleware that answers 413 straight away when the declared Content-Length is over the limit
(the usual case: browsers and HTTP clients send it), and an upload handler that stops a body without a
Content-Length (chunked) once it passes the limit. Views ask `upload_too_large(request)` after parsing.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.urls import reverse

from classifier.images import too_large_message
from melanoma_site.errors import LENGTH_REQUIRED, REQUEST_ERRORS, error_response
from melanoma_site.request_body import (
    BODY_TIMED_OUT_KEY,
    BODY_TOO_LARGE_KEY,
    LENGTH_REQUIRED_KEY,
    RequestBodyTimeout,
)

# Room for the multipart boundaries and the small text fields (body site, note, CSRF token).
FORM_OVERHEAD_BYTES = 64 * 1024
_TOO_LARGE_ATTRIBUTE = "_melanoma_upload_too_large"


def max_request_bytes() -> int:
    return int(settings.MELANOMA_MAX_UPLOAD_BYTES) + FORM_OVERHEAD_BYTES


def upload_too_large(request: HttpRequest) -> bool:
    """True when the upload handler stopped this request's body for being over the limit."""
    inner = getattr(request, "_request", request)  # DRF wraps the Django request
    return bool(getattr(inner, _TOO_LARGE_ATTRIBUTE, False))


def too_large_response(request: HttpRequest) -> HttpResponse:
    message = too_large_message()
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"detail": message}, status=413)
    if request.path == reverse("classifier:upload"):
        # The upload page again, signed in, with the reason on the photo field: the person picks a smaller
        # photo where they are. (The note and body site were in the unread body; the page's script checks the
        # size before sending, so in a browser with script this path is not reached.)
        from classifier.forms import UploadForm  # noqa: PLC0415 - forms import models; this module loads early
        from classifier.views.predictions import upload_page  # noqa: PLC0415 - views import this module

        user = request.user if request.user.is_authenticated else None
        return upload_page(request, UploadForm.too_large(message, user=user), status=413)
    body: str
    try:
        body = render_to_string("413.html", {"message": message}, request=request)
    except TemplateDoesNotExist:
        body = f"<!doctype html><title>File too large</title><h1>File too large</h1><p>{message}</p>"
    # No "Connection: close" here: hop-by-hop headers belong to the server (WSGI forbids them in responses).
    return HttpResponse(body, status=413)


class RequestSizeLimitMiddleware:
    """Placed after the session, authentication and message middleware (none of which reads the body) and
    before any view or view middleware (CSRF reads the body there): the 413 page knows who is signed in."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Set by melanoma_site/request_body.py, which read a chunked body before Django did.
        if request.META.get(BODY_TOO_LARGE_KEY):
            return too_large_response(request)
        if request.META.get(BODY_TIMED_OUT_KEY):
            return error_response(request, *REQUEST_ERRORS[RequestBodyTimeout])
        if request.META.get(LENGTH_REQUIRED_KEY):
            return error_response(request, *LENGTH_REQUIRED)
        if request.method in {"POST", "PUT", "PATCH"}:
            try:
                content_length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                content_length = 0
            if content_length > max_request_bytes():
                return too_large_response(request)
        return self.get_response(request)


class MaxSizeUploadHandler(FileUploadHandler):
    """Counts the bytes of every file in the request and stops reading once they pass the limit."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > int(settings.MELANOMA_MAX_UPLOAD_BYTES):
            if self.request is not None:
                setattr(self.request, _TOO_LARGE_ATTRIBUTE, True)
            raise StopUpload(connection_reset=True)
        return raw_data  # pass the chunk on to the memory / temporary-file handler

    def file_complete(self, file_size: int):
        return None  # the next handler builds the UploadedFile
