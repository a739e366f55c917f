"""Lesion photos, served only to their owner (and staff): there is no public media URL."""

import mimetypes

from django.contrib.auth.decorators import login_required
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_safe

from classifier.selectors import prediction_get_for_user


def _private_file_response(field_file: FieldFile) -> FileResponse:
    if not field_file or not field_file.storage.exists(field_file.name):
        raise Http404("Image not found.")
    content_type = mimetypes.guess_type(field_file.name)[0] or "application/octet-stream"
    response = FileResponse(field_file.storage.open(field_file.name, "rb"), content_type=content_type)
    # Medical photos: the browser may keep them, shared caches and proxies may not.
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Disposition"] = "inline"
    return response


@require_safe
@login_required
def prediction_image(request: HttpRequest, pk: int) -> FileResponse:
    prediction = prediction_get_for_user(user=request.user, pk=pk)
    return _private_file_response(prediction.image)


@require_safe
@login_required
def prediction_thumbnail(request: HttpRequest, pk: int) -> FileResponse:
    prediction = prediction_get_for_user(user=request.user, pk=pk)
    # Older rows, or a thumbnail that failed to render, fall back to the full image.
    return _private_file_response(prediction.thumbnail or prediction.image)
