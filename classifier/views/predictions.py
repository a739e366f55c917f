"""Upload, result, history, retry and delete. Every view that takes an id goes through
classifier.access.prediction_get_for_request, which answers 404 for another user's prediction (unless the
user may view it, and then it is audited)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from classifier.access import prediction_get_for_request
from classifier.forms import UploadForm
from classifier.images import ImageRejected, too_large_message
from classifier.models import Prediction
from classifier.ratelimit import upload_rate_limit_hit
from classifier.selectors import prediction_list_for_user
from classifier.services.prediction_writes import (
    PredictionStateError,
    prediction_delete,
    prediction_retry,
)
from classifier.uploads import upload_too_large
from spots.body_map import form_map_context, region_for
from spots.forms import NEW_SPOT, MoveCheckForm
from spots.selectors import predictions_unfiled_for_user, spot_due_on, spot_list_for_user
from spots.services import check_create, spot_resolve_for_user

HISTORY_PAGE_SIZE = 12


def _rejection_message(error: ImageRejected) -> str:
    return getattr(error, "message", None) or str(error)


def upload_page(request: HttpRequest, form: UploadForm, status: int = 200) -> HttpResponse:
    """The upload page with `form` (its body map and symptom list filled in from what was sent)."""
    context = {
        "form": form,
        "map": form_map_context(form.data if form.is_bound else {}),
        "symptom_names": Prediction.SYMPTOM_FIELDS,
    }
    return render(request, "classifier/upload.html", context, status=status)


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        form = UploadForm(user=request.user, initial={"spot": request.GET.get("spot", "")})
        return upload_page(request, form)

    if upload_rate_limit_hit(user=request.user):
        per_minute = getattr(settings, "MELANOMA_UPLOAD_RATE_PER_MINUTE", 30)
        return render(request, "429.html", {"per_minute": per_minute}, status=429)

    form = UploadForm(request.POST, request.FILES, user=request.user)
    status = 400
    if upload_too_large(request):
        # The upload handler stopped reading the body: say why instead of "this field is required".
        form = UploadForm.too_large(too_large_message(), request.POST, user=request.user)
        return upload_page(request, form, status=413)
    if form.is_valid():
        data = form.cleaned_data
        new_spot = None
        body_site = data["body_site"]
        if form.placed():
            place = {"view": data["view"], "x": data["x"], "y": data["y"]}
            if data["spot"] == NEW_SPOT:
                new_spot = {"name": data["new_spot_name"], **place}
            else:  # a tap on the map without a new spot still says where on the body it is
                body_site = region_for(**place)
        try:
            spot = None if data["spot"] == NEW_SPOT else spot_resolve_for_user(user=request.user, spot_id=data["spot"])
            prediction = check_create(
                user=request.user,
                upload=data["image"],
                spot=spot,
                new_spot=new_spot,
                body_site=body_site,
                note=data["note"],
                symptoms=form.symptoms(),
            )
        except ImageRejected as error:
            form.add_error("image", _rejection_message(error))
            status = getattr(error, "status_code", 400)
        except ValidationError as error:
            # Field names of the services (a new spot's "name") need not be this form's: show them all on top.
            form.add_error(None, error.messages)
        else:
            return redirect("classifier:prediction_detail", pk=prediction.pk)
    return upload_page(request, form, status=status)


@require_safe
@login_required
def history(request: HttpRequest) -> HttpResponse:
    """Spots first (each with its latest check and when it is due), then the checks not filed under a spot."""
    spots = list(spot_list_for_user(user=request.user))
    latest_ids = [spot.latest_check_id for spot in spots if spot.latest_check_id is not None]
    latest: dict[int | None, Prediction] = {
        check.pk: check for check in prediction_list_for_user(user=request.user).filter(pk__in=latest_ids)
    }
    spot_rows = [
        {"spot": spot, "latest": latest.get(spot.latest_check_id), "due_on": spot_due_on(spot=spot)} for spot in spots
    ]
    unfiled = predictions_unfiled_for_user(user=request.user)
    page = Paginator(unfiled, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "classifier/history.html", {"page": page, "spot_rows": spot_rows})


@require_safe
@login_required
def prediction_detail(request: HttpRequest, pk: int) -> HttpResponse:
    prediction = prediction_get_for_request(request, pk)
    context = {"prediction": prediction, "finished": prediction.is_finished}
    if prediction.user_id == request.user.pk:
        context["move_form"] = MoveCheckForm(user=request.user, initial={"spot": prediction.spot_id or ""})
    return render(request, "classifier/result.html", context)


@never_cache
@require_safe
@login_required
def prediction_status(request: HttpRequest, pk: int) -> JsonResponse:
    """What the result page polls: the status, and the result panel rendered by the same template as the page."""
    prediction = prediction_get_for_request(request, pk)
    html = render_to_string("classifier/_result_panel.html", {"prediction": prediction}, request=request)
    return JsonResponse(
        {
            "id": prediction.pk,
            "status": prediction.status,
            "finished": prediction.is_finished,
            "html": html,
            # The result page shows its "where the model looked" toggle once there is a map to show.
            "heatmap_url": (
                reverse("classifier:prediction_heatmap", args=[prediction.pk]) if prediction.heatmap else None
            ),
        }
    )


@require_POST
@login_required
def prediction_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    # Clinicians may look at anyone's prediction; only its owner may change it (as in the API).
    prediction = prediction_get_for_request(request, pk, owner_only=True)
    try:
        prediction_retry(prediction=prediction)
    except PredictionStateError as error:
        messages.info(request, error.message)
    else:
        messages.success(request, "Your photo is queued again.")
    return redirect("classifier:prediction_detail", pk=prediction.pk)


@login_required
def prediction_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    # Only the owner deletes a photo; others delete through the admin, which checks their permissions.
    prediction = prediction_get_for_request(request, pk, owner_only=True)
    if request.method == "POST":
        prediction_delete(prediction=prediction)
        messages.success(request, "The photo and its result are deleted.")
        return redirect("classifier:history")
    return render(request, "classifier/prediction_confirm_delete.html", {"prediction": prediction})
