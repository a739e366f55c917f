"""Lesion photos, served only to their owner (and clinicians, audited): there is no public media URL."""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest
from django.views.decorators.http import require_safe

from classifier.access import prediction_get_for_request
from classifier.private_files import private_file_response


@require_safe
@login_required
def prediction_image(request: HttpRequest, pk: int) -> FileResponse:
    prediction = prediction_get_for_request(request, pk)
    return private_file_response(prediction.image)


@require_safe
@login_required
def prediction_thumbnail(request: HttpRequest, pk: int) -> FileResponse:
    prediction = prediction_get_for_request(request, pk)
    # Older rows, or a thumbnail that failed to render, fall back to the full image.
    return private_file_response(prediction.thumbnail or prediction.image)


@require_safe
@login_required
def prediction_heatmap(request: HttpRequest, pk: int) -> FileResponse:
    """Where the model looked (an RGBA PNG overlay); 404 when the prediction has none."""
    prediction = prediction_get_for_request(request, pk)
    return private_file_response(prediction.heatmap)
