"""Serving a stored lesion photo. There is no public media URL: every page and API endpoint that shows a photo
checks access first and then answers through this one response, so the caching rules are the same everywhere.

The file is streamed from whichever storage holds it (local files or the S3 bucket): chunk by chunk, never read
whole into the web process's memory, and never redirected to a bucket URL.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from django.core.files.storage import Storage
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404


class PrivateFileResponse(FileResponse):
    block_size = 64 * 1024  # per chunk read from the file or the object's body and sent on


def _open(storage: Storage, name: str) -> tuple[Any, int | None]:
    """A readable binary stream of the stored file and its size when known."""
    open_stream = getattr(storage, "open_stream", None)
    if open_stream is not None:  # S3: one GET whose body is read as the response is sent
        stored = open_stream(name)
        return stored.stream, stored.size
    if not storage.exists(name):
        raise FileNotFoundError(name)
    return storage.open(name, "rb"), None


def private_file_response(field_file: FieldFile) -> PrivateFileResponse:
    """The stored file, inline; Http404 when the row has none or it is missing from storage."""
    name = field_file.name  # a FieldFile is falsy exactly when its name is None or ""
    if not name:
        raise Http404("Image not found.")
    try:
        stream, size = _open(field_file.storage, name)
    except FileNotFoundError as error:
        raise Http404("Image not found.") from error
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = PrivateFileResponse(stream, content_type=content_type)
    if size is not None:
        response["Content-Length"] = str(size)
    # Medical photos: no cache may keep them, the browser's included (a shared or lost computer).
    response["Cache-Control"] = "private, no-store, max-age=0"
    response["Content-Disposition"] = "inline"
    return response
