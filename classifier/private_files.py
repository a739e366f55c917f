"""Serving a stored lesion photo. There is no public media URL: every page and API endpoint that shows a photo
checks access first and then answers through this one response, so the caching rules are the same everywhere."""

from __future__ import annotations

import mimetypes

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404


def private_file_response(field_file: FieldFile) -> FileResponse:
    """The stored file, inline; Http404 when the row has none or it is missing from storage."""
    if not field_file or not field_file.storage.exists(field_file.name):
        raise Http404("Image not found.")
    content_type = mimetypes.guess_type(field_file.name)[0] or "application/octet-stream"
    response = FileResponse(field_file.storage.open(field_file.name, "rb"), content_type=content_type)
    # Medical photos: no cache may keep them, the browser's included (a shared or lost computer).
    response["Cache-Control"] = "private, no-store, max-age=0"
    response["Content-Disposition"] = "inline"
    return response
