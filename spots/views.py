"""Spot pages: new, detail (body map, timeline, comparison, change flag), edit, delete, reports, filing a check
under a spot, and the reminder unsubscribe link. Every view that takes a spot id goes through
spot_get_for_user (404 for someone else's spot); checks go through prediction_get_for_user."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from classifier.models import Prediction
from classifier.selectors import prediction_get_for_user
from spots import body_map
from spots.forms import MoveCheckForm, SpotForm
from spots.reports import check_report_pdf, report_filename, spot_report_pdf
from spots.selectors import (
    reminders_off_for_account,
    spot_checks,
    spot_due_on,
    spot_get_for_user,
    spot_timeline,
)
from spots.services import (
    UnsubscribeError,
    prediction_move_to_spot,
    reminders_set_for_account,
    spot_create,
    spot_delete,
    spot_resolve_for_user,
    spot_unsubscribe,
    spot_update,
)


def _pdf(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _form_page(request: HttpRequest, form: SpotForm, *, spot=None) -> HttpResponse:
    data = form.data if form.is_bound else form.initial
    context = {"form": form, "spot": spot, "map": body_map.form_map_context(data)}
    return render(request, "spots/spot_form.html", context, status=400 if form.errors else 200)


@login_required
def spot_new(request: HttpRequest) -> HttpResponse:
    form = SpotForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            spot = spot_create(user=request.user, **form.spot_fields())
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            messages.success(request, f"Spot “{spot.name}” added.")
            return redirect("spots:spot_detail", pk=spot.pk)
    return _form_page(request, form)


@login_required
def spot_edit(request: HttpRequest, pk: int) -> HttpResponse:
    spot = spot_get_for_user(user=request.user, pk=pk)
    initial = {field: getattr(spot, field) for field in ("name", "note", "recheck_months", "view", "x", "y")}
    initial["body_site"] = spot.region
    form = SpotForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            spot_update(spot=spot, **form.spot_fields())
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            messages.success(request, "Spot saved.")
            return redirect("spots:spot_detail", pk=spot.pk)
    return _form_page(request, form, spot=spot)


@require_safe
@login_required
def spot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    spot = spot_get_for_user(user=request.user, pk=pk)
    checks = spot_checks(spot=spot)
    timeline = spot_timeline(checks=checks)
    by_id = {str(check.pk): check for check in checks}
    # Compare any two photos: ?a=<id>&b=<id>; by default the newest and the one before it.
    first = by_id.get(request.GET.get("a", "")) or (checks[1] if len(checks) > 1 else None)
    second = by_id.get(request.GET.get("b", "")) or (checks[0] if checks else None)
    context = {
        "spot": spot,
        "timeline": timeline,
        "changed": bool(timeline and timeline[0].changed),
        "compare": (first, second) if first and second and first.pk != second.pk else None,
        "checks": checks,
        "due_on": spot_due_on(spot=spot),
        "reminders_off": reminders_off_for_account(user=request.user),
        "region_label": dict(Prediction.BodySite.choices).get(spot.region, spot.region),
        "map": body_map.map_context(view=spot.view, x=spot.x, y=spot.y),
    }
    return render(request, "spots/spot_detail.html", context)


@login_required
def spot_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    spot = spot_get_for_user(user=request.user, pk=pk)
    if request.method == "POST":
        deleted = spot_delete(spot=spot)
        messages.success(request, f"The spot and its {deleted} photo(s) are deleted.")
        return redirect("classifier:history")
    return render(request, "spots/spot_confirm_delete.html", {"spot": spot})


@require_safe
@login_required
def spot_report(request: HttpRequest, pk: int) -> HttpResponse:
    spot = spot_get_for_user(user=request.user, pk=pk)
    return _pdf(spot_report_pdf(spot=spot, checks=spot_checks(spot=spot)), report_filename(spot.name))


@require_safe
@login_required
def prediction_report(request: HttpRequest, pk: int) -> HttpResponse:
    check = prediction_get_for_user(user=request.user, pk=pk, owner_only=True)
    return _pdf(check_report_pdf(check=check), f"skin-check-{check.pk}.pdf")


@require_POST
@login_required
def prediction_move(request: HttpRequest, pk: int) -> HttpResponse:
    check = prediction_get_for_user(user=request.user, pk=pk, owner_only=True)
    form = MoveCheckForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, "Choose one of your spots.")
        return redirect("classifier:prediction_detail", pk=check.pk)
    try:
        spot = spot_resolve_for_user(user=request.user, spot_id=form.cleaned_data["spot"])
        prediction_move_to_spot(prediction=check, spot=spot)
    except ValidationError:
        messages.error(request, "Choose one of your spots.")
    else:
        messages.success(request, f"Filed under “{spot.name}”." if spot else "No longer filed under a spot.")
    return redirect("classifier:prediction_detail", pk=check.pk)


# A mail client's one-click unsubscribe (RFC 8058) POSTs without a CSRF token; the signed token is the proof.
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        spot = spot_unsubscribe(token=token)
    except UnsubscribeError as error:
        return render(request, "spots/unsubscribed.html", {"error": error.message}, status=400)
    return render(request, "spots/unsubscribed.html", {"spot": spot})


@require_POST
@login_required
def account_reminders(request: HttpRequest) -> HttpResponse:
    """The account page's switch: re-check reminders off for every spot, or on again (each spot's interval)."""
    choice = request.POST.get("reminders")
    if choice not in ("on", "off"):
        messages.error(request, "Choose whether you want re-check reminders.")
    else:
        reminders_set_for_account(user=request.user, on=choice == "on")
        messages.success(
            request,
            "Re-check reminders are on again for spots with a reminder interval."
            if choice == "on"
            else "You will get no re-check reminders for any of your spots.",
        )
    return redirect("accounts:account")
