"""Django admin: clinicians review predictions (ground truth for retraining); staff manage model versions.
The user admin is accounts/admin.py.

Actions and saves go through the same services as the pages and the API.
"""

import json
import re
from pathlib import Path

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from audit.services import prediction_access_record
from classifier.model_metrics import format_metric, headline_figure, headline_table, metrics_tables
from classifier.models import ModelVersion, Prediction
from classifier.selectors import model_versions_reviewed_performance, predictions_review_queue
from classifier.services.model_versions import ModelVersionUnusable, model_version_activate, model_version_resolve_path
from classifier.services.prediction_writes import (
    PredictionStateError,
    prediction_delete,
    prediction_mark_reviewed,
    prediction_rerun,
)

admin.site.site_header = "Skin check administration"
admin.site.site_title = "Skin check admin"
admin.site.index_title = "Predictions, reviews and model versions"
# The app list beside every page took a quarter of a 1280 px screen and cut the prediction list off; the
# breadcrumbs and the index page lead everywhere it did.
admin.site.enable_nav_sidebar = False

# Everything the model and the worker wrote: a reviewer reads these, never edits them.
MACHINE_OUTPUTS = (
    "status",
    "risk_level",
    "probability",  # rounded: a reviewer reads 0.123, not 0.123456789
    "raw_score",
    "verdict",
    "threshold_rounded",
    "quality_issue",
    "differential_list",
    "model_version",
    "error",
    "inference_time",
    "attempts",
    "created_at",
    "queued_at",
    "started_at",
    "completed_at",
)


def _thumbnail_tag(prediction: Prediction, size: int) -> str:
    url = reverse("classifier:prediction_thumbnail", args=[prediction.pk])
    return format_html(
        '<img class="lesion-thumb" src="{}" alt="Lesion photo {}" width="{}" height="{}">',
        url,
        prediction.pk,
        size,
        size,
    )


def _risk_field() -> str:
    """The field the review workflow filters on: the risk level once predictions have one, else the verdict."""
    names = {field.name for field in Prediction._meta.get_fields()}
    return "risk_level" if "risk_level" in names else "verdict"


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    # Few, narrow columns: the list must fit 1280 px beside the filter sidebar (body site and model version
    # are filters and on the detail page).
    list_display = (
        "id",
        "thumbnail_preview",
        "owner",
        "created",
        "status",
        "result",
        "probability",
        "diagnosis",
        "reviewed",
    )
    list_display_links = ("id", "thumbnail_preview")
    list_filter = (
        _risk_field(),
        "quality_issue",
        "reviewed",
        "confirmed_diagnosis",
        "model_version",
        "status",
        "body_site",
    )
    # "=id" finds a check by number; the rest by who uploaded it, what they noted, or the model version.
    search_fields = ("=id", "user__username", "user__email", "note", "model_version__version")
    search_help_text = "Check number, username, e-mail, note or model version."
    list_select_related = ("user", "model_version")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_per_page = 50

    class Media:
        # A stylesheet, not style="" attributes: the Content-Security-Policy allows no inline styles.
        css = {"all": ("css/admin.css",)}

    readonly_fields = (
        "photo",
        "heatmap_overlay",
        "user",
        "body_site",
        "note",
        *MACHINE_OUTPUTS,
        "reviewed",
        "reviewed_by",
        "reviewed_at",
    )
    fieldsets = (
        ("Photo", {"fields": ("photo", "heatmap_overlay", "user", "body_site", "note")}),
        (
            "Model output",
            {"fields": MACHINE_OUTPUTS},
        ),
        (
            "Clinician review",
            {
                "fields": ("confirmed_diagnosis", "review_comment", "reviewed", "reviewed_by", "reviewed_at"),
                "description": "Set the confirmed diagnosis (and a comment the person will read); who reviewed it "
                "and when are recorded on save, and the person is told by e-mail.",
            },
        ),
    )
    actions = (
        "rerun_inference",
        "mark_reviewed",
        "mark_reviewed_melanoma",
        "mark_reviewed_not_melanoma",
        "mark_reviewed_other",
    )

    @admin.display(description="Photo")
    def thumbnail_preview(self, prediction: Prediction) -> str:
        return _thumbnail_tag(prediction, 48)

    @admin.display(description="Photo")
    def photo(self, prediction: Prediction) -> str:
        url = reverse("classifier:prediction_image", args=[prediction.pk])
        return format_html('<a href="{}">{}</a>', url, _thumbnail_tag(prediction, 240))

    @admin.display(description="Where it looked")
    def heatmap_overlay(self, prediction: Prediction) -> str:
        """The photo with the model's heatmap over it; a checkbox shows or hides it (CSS only: no inline script)."""
        if not prediction.heatmap:
            return "—"
        return format_html(
            '<input type="checkbox" id="heatmap-toggle-{pk}" class="heatmap-toggle" checked>'
            '<label for="heatmap-toggle-{pk}"> show the heatmap</label>'
            '<div class="heatmap-stack">'
            '<img src="{photo}" alt="Lesion photo {pk}" width="320">'
            '<img class="heatmap-overlay" src="{heat}" alt="Heatmap of prediction {pk}" width="320">'
            "</div>",
            pk=prediction.pk,
            photo=reverse("classifier:prediction_image", args=[prediction.pk]),
            heat=reverse("classifier:prediction_heatmap", args=[prediction.pk]),
        )

    @admin.display(description="Differential")
    def differential_list(self, prediction: Prediction) -> str:
        """The second head's top diagnoses with their calibrated probabilities (a guess, not a diagnosis)."""
        if not prediction.differential:
            return "—"
        return format_html_join(
            ", ",
            "{} ({}) {}",
            (
                (item.get("label", ""), item.get("code", ""), f"{100 * float(item.get('probability', 0)):.0f} %")
                for item in prediction.differential
            ),
        )

    # Short headers (the admin never wraps them) and cells that wrap: the list fits 1280 px.
    @admin.display(description="User", ordering="user__username")
    def owner(self, prediction: Prediction) -> str:
        return prediction.user.get_username()

    @admin.display(description="Uploaded", ordering="created_at")
    def created(self, prediction: Prediction) -> str:
        return format_html(
            '<time datetime="{}">{}</time>',
            prediction.created_at.isoformat(),
            timezone.localtime(prediction.created_at).strftime("%-d %b %Y %H:%M"),
        )

    @admin.display(description="Diagnosis", ordering="confirmed_diagnosis")
    def diagnosis(self, prediction: Prediction) -> str:
        return prediction.get_confirmed_diagnosis_display() or "—"

    @admin.display(description="Result", ordering="risk_level")
    def result(self, prediction: Prediction) -> str:
        # The full wording is for patients; a reviewer scanning a list needs the level in one word (one column:
        # the list must fit 1280 px). A refused photo has no level, only the reason.
        if prediction.verdict == Prediction.Verdict.RETAKE:
            return f"Retake: {prediction.get_quality_issue_display()}"
        if prediction.risk_level:
            return prediction.get_risk_level_display()
        short: dict[str, str] = {Prediction.Verdict.REFER: "Refer", Prediction.Verdict.LOW_RISK: "Low risk"}
        return short.get(prediction.verdict, "—")

    @admin.display(description="Probability (calibrated)", ordering="melanoma_probability")
    def probability(self, prediction: Prediction) -> str:
        if prediction.melanoma_probability is None:
            return "—"
        return f"{prediction.melanoma_probability:.3f}"

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        # The change page shows the photo, note and result: opening someone else's is audited like the pages.
        prediction = self.get_object(request, unquote(object_id))
        if response.status_code == 200 and prediction is not None and prediction.user_id != request.user.pk:
            prediction_access_record(
                viewer=request.user, prediction=prediction, method=request.method or "GET", url=request.get_full_path()
            )
        return response

    @admin.display(description="Threshold")
    def threshold_rounded(self, prediction: Prediction) -> str:
        return "—" if prediction.threshold is None else f"{prediction.threshold:.3f}"

    @admin.display(description="Inference time")
    def inference_time(self, prediction: Prediction) -> str:
        return "—" if prediction.inference_ms is None else format_metric("inference_ms", prediction.inference_ms)

    # --- the review queue: one flagged, unreviewed check at a time, answered with the keyboard -------------

    def get_urls(self):
        extra = [
            path("review/", self.admin_site.admin_view(self.review_view), name="classifier_prediction_review"),
        ]
        return extra + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {**(extra_context or {}), "review_waiting": predictions_review_queue().count()}
        return super().changelist_view(request, extra_context=extra_context)

    def review_view(self, request: HttpRequest) -> HttpResponse:
        """GET: the oldest flagged check nobody reviewed (?after=ID: the next one after a skipped check).
        POST: record the diagnosis through the same service as the actions, then show the next one."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        queue = predictions_review_queue()
        if request.method == "POST":
            return self._review_answer(request, queue)
        after = request.GET.get("after", "")
        current = queue.filter(id__gt=int(after)).first() if after.isdigit() else queue.first()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Review queue",
            "prediction": current,
            "waiting": queue.count(),
            "diagnoses": Prediction.Diagnosis.choices,
            "photo": self.photo(current) if current else "",
        }
        return TemplateResponse(request, "admin/classifier/prediction/review.html", context)

    def _review_answer(self, request: HttpRequest, queue: QuerySet[Prediction]) -> HttpResponse:
        prediction = queue.filter(pk=request.POST.get("prediction", "0") or "0").first()
        if prediction is None:
            self.message_user(request, "That check was reviewed meanwhile, or is not in the queue.", messages.INFO)
        else:
            try:
                prediction_mark_reviewed(
                    prediction=prediction, reviewer=request.user, diagnosis=request.POST.get("diagnosis", "")
                )
            except ValidationError as error:
                self.message_user(request, "; ".join(error.messages), messages.ERROR)
                return HttpResponseRedirect(f"{reverse('admin:classifier_prediction_review')}")
            label = prediction.get_confirmed_diagnosis_display().lower()
            self.message_user(request, f"Check #{prediction.pk} reviewed: {label}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:classifier_prediction_review"))

    @admin.display(description="Score (raw)", ordering="score")
    def raw_score(self, prediction: Prediction) -> str:
        return "—" if prediction.score is None else f"{prediction.score:.3f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Predictions come from uploads (pages, API), which check and clean the photo first.
        return False

    def save_model(self, request: HttpRequest, obj: Prediction, form, change: bool) -> None:
        if {"confirmed_diagnosis", "review_comment"} & set(form.changed_data) and obj.confirmed_diagnosis:
            prediction_mark_reviewed(
                prediction=obj, reviewer=request.user, diagnosis=obj.confirmed_diagnosis, comment=obj.review_comment
            )
        else:
            super().save_model(request, obj, form, change)

    # Deleting in the admin must delete the photo files too, as everywhere else: go through the service.
    def delete_model(self, request: HttpRequest, obj: Prediction) -> None:
        prediction_delete(prediction=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        for prediction in queryset:
            prediction_delete(prediction=prediction)

    @admin.action(description="Re-run inference", permissions=["change"])
    def rerun_inference(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        requeued, skipped = 0, []
        for prediction in queryset:
            try:
                prediction_rerun(prediction=prediction)
            except PredictionStateError as error:
                skipped.append(f"#{prediction.pk}: {error.message}")
            else:
                requeued += 1
        if requeued:
            self.message_user(request, f"Re-queued {requeued} prediction(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, "Not re-queued: " + "; ".join(skipped), messages.WARNING)

    def _mark_reviewed(self, request: HttpRequest, queryset: QuerySet[Prediction], diagnosis: str | None) -> None:
        marked, skipped = 0, []
        for prediction in queryset:
            chosen = diagnosis or prediction.confirmed_diagnosis
            if not chosen:
                skipped.append(f"#{prediction.pk}")
                continue
            try:
                prediction_mark_reviewed(prediction=prediction, reviewer=request.user, diagnosis=chosen)
            except ValidationError as error:
                skipped.append(f"#{prediction.pk} ({'; '.join(error.messages)})")
            else:
                marked += 1
        if marked:
            self.message_user(request, f"Marked {marked} prediction(s) reviewed.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                "Not marked (no confirmed diagnosis: set one on the prediction, or use a 'Mark reviewed as' action): "
                + ", ".join(skipped),
                messages.WARNING,
            )

    @admin.action(description="Mark reviewed (with the confirmed diagnosis already set)", permissions=["change"])
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        self._mark_reviewed(request, queryset, None)

    @admin.action(description="Mark reviewed as melanoma", permissions=["change"])
    def mark_reviewed_melanoma(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        self._mark_reviewed(request, queryset, Prediction.Diagnosis.MELANOMA)

    @admin.action(description="Mark reviewed as not melanoma", permissions=["change"])
    def mark_reviewed_not_melanoma(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        self._mark_reviewed(request, queryset, Prediction.Diagnosis.NOT_MELANOMA)

    @admin.action(description="Mark reviewed as other", permissions=["change"])
    def mark_reviewed_other(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        self._mark_reviewed(request, queryset, Prediction.Diagnosis.OTHER)


# Figures a model folder may hold that the card page shows (and the figure view serves; nothing else).
FIGURE_NAME = re.compile(r"^(roc|reliability)[\w.-]*\.png$")


def _figures(model_version: ModelVersion) -> list[str]:
    folder = model_version_resolve_path(model_version)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if FIGURE_NAME.match(p.name) and p.is_file())


def _card_rows(card: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The card as label/value rows (nested parts flattened into "data / sources / ham10000 / images")."""
    rows: list[tuple[str, str]] = []
    for key, value in card.items():
        if key == "metrics" and not prefix:
            continue  # shown as tables
        where = (*prefix, str(key))
        if isinstance(value, dict):
            rows.extend(_card_rows(value, where))
        elif isinstance(value, list):
            rows.append(
                (
                    " / ".join(where),
                    ", ".join(json.dumps(item) if isinstance(item, dict | list) else str(item) for item in value),
                )
            )
        else:
            rows.append((" / ".join(where), format_metric(str(key), value)))
    return rows


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "version",
        "is_active",
        "threshold_rounded",
        "roc_auc",
        "sensitivity",
        "specificity",
        "measured_on",
        "created_at",
    )
    list_filter = ("is_active",)
    search_fields = ("version",)
    ordering = ("-created_at",)
    # All of a version comes from its model card, the threshold included: the card is the one source of truth,
    # so an edit here would be overwritten by the next registration. Change the card and register it again.
    readonly_fields = (
        "version",
        "path",
        "threshold_rounded",
        "input_size",
        "is_active",
        "created_at",
        "activated_at",
        "metrics_tables",
        "figures",
        "card_summary",
        "raw_card",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "version",
                    "is_active",
                    "threshold_rounded",
                    "input_size",
                    "path",
                    "created_at",
                    "activated_at",
                )
            },
        ),
        ("Measured performance", {"fields": ("metrics_tables", "figures")}),
        ("Model card", {"fields": ("card_summary",)}),
        ("Model card as stored (JSON)", {"fields": ("raw_card",), "classes": ("collapse",)}),
    )
    actions = ("activate",)

    class Media:
        css = {"all": ("css/admin.css",)}

    @admin.display(description="Threshold", ordering="threshold")
    def threshold_rounded(self, model_version: ModelVersion) -> str:
        return f"{model_version.threshold:.3f}"

    @admin.display(description="ROC AUC")
    def roc_auc(self, model_version: ModelVersion) -> str:
        return headline_figure(model_version.metrics, "roc_auc")

    @admin.display(description="Sensitivity")
    def sensitivity(self, model_version: ModelVersion) -> str:
        return headline_figure(model_version.metrics, "sensitivity")

    @admin.display(description="Specificity")
    def specificity(self, model_version: ModelVersion) -> str:
        return headline_figure(model_version.metrics, "specificity")

    @admin.display(description="Measured on")
    def measured_on(self, model_version: ModelVersion) -> str:
        table = headline_table(model_version.metrics)
        return table.source if table else "—"

    @admin.display(description="Metrics per data source")
    def metrics_tables(self, model_version: ModelVersion) -> str:
        tables = metrics_tables(model_version.metrics)
        return render_to_string("admin/classifier/modelversion/_metrics.html", {"tables": tables})

    @admin.display(description="Figures")
    def figures(self, model_version: ModelVersion) -> str:
        if not model_version.pk:
            return "—"
        figures = [
            (name, reverse("admin:classifier_modelversion_figure", args=[model_version.pk, name]))
            for name in _figures(model_version)
        ]
        return render_to_string("admin/classifier/modelversion/_figures.html", {"figures": figures})

    @admin.display(description="Card")
    def card_summary(self, model_version: ModelVersion) -> str:
        rows = _card_rows(model_version.card or {})
        return render_to_string("admin/classifier/modelversion/_card.html", {"rows": rows})

    @admin.display(description="JSON")
    def raw_card(self, model_version: ModelVersion) -> str:
        return format_html('<pre class="model-card-json">{}</pre>', json.dumps(model_version.card, indent=2))

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Versions are registered from a model folder (train_model / register command), never typed in.
        return False

    def get_urls(self):
        extra = [
            path(
                "<int:pk>/figure/<str:name>/",
                self.admin_site.admin_view(self.figure_view),
                name="classifier_modelversion_figure",
            ),
            path(
                "comparison/",
                self.admin_site.admin_view(self.comparison_view),
                name="classifier_modelversion_comparison",
            ),
        ]
        return extra + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {**(extra_context or {}), "comparison_url": reverse("admin:classifier_modelversion_comparison")}
        return super().changelist_view(request, extra_context=extra_context)

    def figure_view(self, request: HttpRequest, pk: int, name: str) -> HttpResponseBase:
        """A figure from the model folder, for staff only (model folders are not public static files)."""
        if request.method not in {"GET", "HEAD"}:
            return HttpResponseNotAllowed(["GET", "HEAD"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        model_version = self.get_object(request, str(pk))
        if model_version is None or name not in _figures(model_version):
            raise Http404("No such figure.")
        response = FileResponse(
            (Path(model_version_resolve_path(model_version)) / name).open("rb"), content_type="image/png"
        )
        response["Cache-Control"] = "private, max-age=300"
        return response

    def comparison_view(self, request: HttpRequest) -> HttpResponse:
        """Per model version: sensitivity and specificity on the checks clinicians reviewed, with counts,
        beside what the model card measured before release."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = [
            {
                "performance": performance,
                "card_sensitivity": headline_figure(performance.model_version.metrics, "sensitivity"),
                "card_specificity": headline_figure(performance.model_version.metrics, "specificity"),
                "measured_on": getattr(headline_table(performance.model_version.metrics), "source", "—"),
            }
            for performance in model_versions_reviewed_performance()
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Model answers compared with confirmed diagnoses",
            "rows": rows,
        }
        return TemplateResponse(request, "admin/classifier/modelversion/comparison.html", context)

    @admin.action(description="Activate (make this the model used for new predictions)")
    def activate(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one model version to activate.", messages.ERROR)
            return
        try:
            model_version = model_version_activate(model_version=queryset.get())
        except ModelVersionUnusable as error:
            self.message_user(request, f"{error.message} The active version is unchanged.", messages.ERROR)
            return
        self.message_user(request, f"Model version {model_version.version} is now active.", messages.SUCCESS)
