"""Django admin: clinicians review predictions (ground truth for retraining); staff manage model versions.
The user admin is accounts/admin.py.

Actions and saves go through the same services as the pages and the API.
"""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from classifier.models import ModelVersion, Prediction
from classifier.services.model_versions import ModelVersionUnusable, model_version_activate
from classifier.services.prediction_writes import (
    PredictionStateError,
    prediction_delete,
    prediction_mark_reviewed,
    prediction_rerun,
)

admin.site.site_header = "Skin check administration"
admin.site.site_title = "Skin check admin"
admin.site.index_title = "Predictions, reviews and model versions"

# Everything the model and the worker wrote: a reviewer reads these, never edits them.
MACHINE_OUTPUTS = (
    "status",
    "melanoma_probability",
    "verdict",
    "threshold",
    "model_version",
    "error",
    "inference_ms",
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


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "thumbnail_preview",
        "user",
        "created_at",
        "status",
        "verdict_short",
        "probability",
        "model_version",
        "body_site",
        "reviewed",
    )
    list_display_links = ("id", "thumbnail_preview")
    list_filter = ("status", "verdict", "model_version", "reviewed", "confirmed_diagnosis", "body_site")
    search_fields = ("user__username",)
    list_select_related = ("user", "model_version")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_per_page = 50

    class Media:
        # A stylesheet, not style="" attributes: the Content-Security-Policy allows no inline styles.
        css = {"all": ("css/admin.css",)}

    readonly_fields = (
        "photo",
        "user",
        "body_site",
        "note",
        *MACHINE_OUTPUTS,
        "reviewed",
        "reviewed_by",
        "reviewed_at",
    )
    fieldsets = (
        ("Photo", {"fields": ("photo", "user", "body_site", "note")}),
        (
            "Model output",
            {"fields": MACHINE_OUTPUTS},
        ),
        (
            "Clinician review",
            {
                "fields": ("confirmed_diagnosis", "reviewed", "reviewed_by", "reviewed_at"),
                "description": "Set the confirmed diagnosis; who reviewed it and when are recorded on save.",
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
        return _thumbnail_tag(prediction, 56)

    @admin.display(description="Photo")
    def photo(self, prediction: Prediction) -> str:
        url = reverse("classifier:prediction_image", args=[prediction.pk])
        return format_html('<a href="{}">{}</a>', url, _thumbnail_tag(prediction, 240))

    @admin.display(description="Verdict", ordering="verdict")
    def verdict_short(self, prediction: Prediction) -> str:
        # The full wording is for patients; a reviewer scanning a list needs one word.
        return {Prediction.Verdict.REFER: "Refer", Prediction.Verdict.LOW_RISK: "Low risk"}.get(prediction.verdict, "—")

    @admin.display(description="Probability", ordering="melanoma_probability")
    def probability(self, prediction: Prediction) -> str:
        if prediction.melanoma_probability is None:
            return "—"
        return f"{prediction.melanoma_probability:.3f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Predictions come from uploads (pages, API), which check and clean the photo first.
        return False

    def save_model(self, request: HttpRequest, obj: Prediction, form, change: bool) -> None:
        if "confirmed_diagnosis" in form.changed_data and obj.confirmed_diagnosis:
            prediction_mark_reviewed(prediction=obj, reviewer=request.user, diagnosis=obj.confirmed_diagnosis)
        else:
            super().save_model(request, obj, form, change)

    # Deleting in the admin must delete the photo files too, as everywhere else: go through the service.
    def delete_model(self, request: HttpRequest, obj: Prediction) -> None:
        prediction_delete(prediction=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        for prediction in queryset:
            prediction_delete(prediction=prediction)

    @admin.action(description="Re-run inference")
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

    @admin.action(description="Mark reviewed (with the confirmed diagnosis already set)")
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        self._mark_reviewed(request, queryset, None)

    @admin.action(description="Mark reviewed as melanoma")
    def mark_reviewed_melanoma(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        self._mark_reviewed(request, queryset, Prediction.Diagnosis.MELANOMA)

    @admin.action(description="Mark reviewed as not melanoma")
    def mark_reviewed_not_melanoma(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        self._mark_reviewed(request, queryset, Prediction.Diagnosis.NOT_MELANOMA)

    @admin.action(description="Mark reviewed as other")
    def mark_reviewed_other(self, request: HttpRequest, queryset: QuerySet[Prediction]) -> None:
        self._mark_reviewed(request, queryset, Prediction.Diagnosis.OTHER)


def _metric(model_version: ModelVersion, key: str) -> str:
    value = (model_version.metrics or {}).get(key)
    return f"{value:.3f}" if isinstance(value, int | float) else "—"


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("version", "is_active", "threshold", "roc_auc", "sensitivity", "specificity", "created_at")
    list_filter = ("is_active",)
    search_fields = ("version",)
    ordering = ("-created_at",)
    # All of a version comes from its model card, the threshold included: the card is the one source of truth,
    # so an edit here would be overwritten by the next registration. Change the card and register it again.
    readonly_fields = (
        "version",
        "path",
        "threshold",
        "input_size",
        "metrics",
        "card",
        "is_active",
        "created_at",
        "activated_at",
    )
    actions = ("activate",)

    @admin.display(description="ROC AUC")
    def roc_auc(self, model_version: ModelVersion) -> str:
        return _metric(model_version, "roc_auc")

    @admin.display(description="Sensitivity")
    def sensitivity(self, model_version: ModelVersion) -> str:
        return _metric(model_version, "sensitivity")

    @admin.display(description="Specificity")
    def specificity(self, model_version: ModelVersion) -> str:
        return _metric(model_version, "specificity")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Versions are registered from a model folder (train_model / register command), never typed in.
        return False

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
