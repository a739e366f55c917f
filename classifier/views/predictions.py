"""Upload, result, history, retry and delete. Every view that takes an id goes through
prediction_get_for_user, which answers 404 for another user's prediction."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from classifier.forms import UploadForm
from classifier.images import ImageRejected, too_large_message
from classifier.ratelimit import upload_rate_limit_hit
from classifier.selectors import prediction_get_for_user, prediction_list_for_user
from classifier.services.prediction_writes import (
    PredictionStateError,
    prediction_create,
    prediction_delete,
    prediction_retry,
)
from classifier.uploads import upload_too_large

HISTORY_PAGE_SIZE = 12


def _rejection_message(error: ImageRejected) -> str:
    return getattr(error, "message", None) or str(error)


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "classifier/upload.html", {"form": UploadForm()})

    if upload_rate_limit_hit(user=request.user):
        per_minute = getattr(settings, "MELANOMA_UPLOAD_RATE_PER_MINUTE", 30)
        return render(request, "429.html", {"per_minute": per_minute}, status=429)

    form = UploadForm(request.POST, request.FILES)
    status = 400
    if upload_too_large(request):
        # The upload handler stopped reading the body: say why instead of "this field is required".
        form = UploadForm.too_large(too_large_message(), request.POST)
        return render(request, "classifier/upload.html", {"form": form}, status=413)
    if form.is_valid():
        try:
            prediction = prediction_create(
                user=request.user,
                upload=form.cleaned_data["image"],
                body_site=form.cleaned_data["body_site"],
                note=form.cleaned_data["note"],
            )
        except ImageRejected as error:
            form.add_error("image", _rejection_message(error))
            status = getattr(error, "status_code", 400)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect("classifier:prediction_detail", pk=prediction.pk)
    return render(request, "classifier/upload.html", {"form": form}, status=status)


@require_safe
@login_required
def history(request: HttpRequest) -> HttpResponse:
    predictions = prediction_list_for_user(user=request.user)
    page = Paginator(predictions, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "classifier/history.html", {"page": page})


@require_safe
@login_required
def prediction_detail(request: HttpRequest, pk: int) -> HttpResponse:
    prediction = prediction_get_for_user(user=request.user, pk=pk)
    return render(
        request,
        "classifier/result.html",
        {"prediction": prediction, "finished": prediction.is_finished},
    )


@never_cache
@require_safe
@login_required
def prediction_status(request: HttpRequest, pk: int) -> JsonResponse:
    """What the result page polls: the status, and the result panel rendered by the same template as the page."""
    prediction = prediction_get_for_user(user=request.user, pk=pk)
    html = render_to_string("classifier/_result_panel.html", {"prediction": prediction}, request=request)
    return JsonResponse(
        {
            "id": prediction.pk,
            "status": prediction.status,
            "finished": prediction.is_finished,
            "html": html,
        }
    )


@require_POST
@login_required
def prediction_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    # Staff may look at anyone's prediction; only its owner may change it (as in the API).
    prediction = prediction_get_for_user(user=request.user, pk=pk, allow_staff=False)
    try:
        prediction_retry(prediction=prediction)
    except PredictionStateError as error:
        messages.info(request, error.message)
    else:
        messages.success(request, "Your photo is queued again.")
    return redirect("classifier:prediction_detail", pk=prediction.pk)


@login_required
def prediction_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    # Only the owner deletes a photo; staff delete through the admin, which checks their permissions.
    prediction = prediction_get_for_user(user=request.user, pk=pk, allow_staff=False)
    if request.method == "POST":
        prediction_delete(prediction=prediction)
        messages.success(request, "The photo and its result are deleted.")
        return redirect("classifier:history")
    return render(request, "classifier/prediction_confirm_delete.html", {"prediction": prediction})
