"""Serving a stored lesion photo. There is no public media URL: every page and API endpoint that shows a photo
checks access first and then answers through this one response, so the caching rules are the same everywhere."""

from __future__ import annotations

import mimetypes

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404


def private_file_response(field_file: FieldFile) -> FileResponse:
    """The stored file, inline; Http404 when the row has none or it is missing from storage."""
    name = field_file.name
    if not field_file or not name or not field_file.storage.exists(name):
        raise Http404("Image not found.")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(field_file.storage.open(name, "rb"), content_type=content_type)
    # Medical photos: the browser may keep them, shared caches and proxies may not.
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Disposition"] = "inline"
    return response
