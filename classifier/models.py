"""Database rows: trained model versions and the predictions made with them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelVersion(models.Model):
    """One trained model folder (LiteRT file + model card); exactly one is active at a time."""

    version = models.SlugField(max_length=64, unique=True)
    # Folder holding model.tflite and model_card.json; relative to BASE_DIR when it lies inside the project.
    path = models.CharField(max_length=500)
    # One source of truth: the model card. This copy (made by model_version_register, read-only in the admin)
    # spares the worker and the list pages a file read; to change it, change the card and register again.
    threshold = models.FloatField(help_text="Melanoma probability at or above which the verdict is 'refer'.")
    input_size = models.PositiveIntegerField(default=224)
    metrics = models.JSONField(default=dict, blank=True)
    card = models.JSONField(default=dict, blank=True)
    # With object storage: where the folder's files are in the bucket and their SHA-256s
    # ({"sha256": of the manifest, "prefix": ..., "files": {name: sha256}}); empty: serve from `path`.
    artifact = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_model"),
        ]

    def __str__(self) -> str:
        return self.version


class Prediction(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    # A finished prediction changes no more unless someone asks again (retry, re-run); pages stop polling it.
    FINISHED_STATUSES = (Status.DONE, Status.FAILED)
    NOTE_MAX_LENGTH = 2000

    class Verdict(models.TextChoices):
        REFER = "refer", "Have this lesion checked by a dermatologist"
        LOW_RISK = "low_risk", "Low risk"
        # The photo check refused the photo (quality_issue says why): no melanoma verdict at all.
        RETAKE = "retake", "Retake the photo"

        @classmethod
        def for_score(cls, *, score: float, threshold: float) -> Prediction.Verdict:
            """The decision rule, the same everywhere: the model's raw score at or above the threshold, refer
            (the threshold is set on raw scores; the calibrated probability is only for people to read)."""
            return cls.REFER if score >= threshold else cls.LOW_RISK

    class RiskLevel(models.TextChoices):
        # low ends at the referral threshold (verdict low_risk); the model card holds the other boundary and
        # what each level meant when the model was tested (lesion_model.calibration).
        LOW = "low", "Low"
        MODERATE = "moderate", "Moderate"
        HIGH = "high", "High"

    class QualityIssue(models.TextChoices):
        """Why the photo check (lesion_model/quality.py, whose QualityIssue these values mirror) refused a photo."""

        NOT_A_LESION = "not_a_lesion", "Not a photo of a skin lesion"
        BLURRY = "blurry", "Blurry"
        TOO_DARK = "too_dark", "Too dark"
        TOO_BRIGHT = "too_bright", "Too bright"
        GLARE = "glare", "Glare on the lesion"
        TOO_SMALL = "too_small", "Lesion too small in the frame"
        TOO_CLOSE = "too_close", "Lesion too close (fills the frame)"
        UNFAMILIAR = "unfamiliar", "Unlike the photos the model learnt from"

    class BodySite(models.TextChoices):
        HEAD_NECK = "head_neck", "Head / neck"
        TRUNK = "trunk", "Trunk"
        UPPER_EXTREMITY = "upper_extremity", "Upper extremity (arm, hand)"
        LOWER_EXTREMITY = "lower_extremity", "Lower extremity (leg, foot)"
        PALMS_SOLES = "palms_soles", "Palms / soles"
        ORAL_GENITAL = "oral_genital", "Oral / genital"
        UNKNOWN = "unknown", "Unknown"

    class Diagnosis(models.TextChoices):
        MELANOMA = "melanoma", "Melanoma"
        NOT_MELANOMA = "not_melanoma", "Not melanoma"
        OTHER = "other", "Other"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="predictions")
    image = models.FileField(upload_to="lesions/", max_length=255)
    thumbnail = models.FileField(upload_to="thumbnails/", max_length=255, blank=True)
    # Where the model looked (lesion_model/explain.py): an RGBA overlay PNG, private like the photo.
    heatmap = models.FileField(upload_to="heatmaps/", max_length=255, blank=True)
    body_site = models.CharField(max_length=32, choices=BodySite.choices, default=BodySite.UNKNOWN)
    note = models.TextField(blank=True, max_length=NOTE_MAX_LENGTH)
    # The spot this check follows (spots app). SET_NULL, not CASCADE: deleting a spot goes through
    # spots.services.spot_delete, which deletes its checks *and their files*; a bare cascade would orphan files.
    spot = models.ForeignKey("spots.Spot", on_delete=models.SET_NULL, null=True, blank=True, related_name="predictions")
    # The person's own answers when they took the photo: "it has changed" (the change flag on the spot page).
    changed_size = models.BooleanField("it has grown or changed shape", default=False)
    changed_colour = models.BooleanField("its colour has changed", default=False)
    itching = models.BooleanField("it itches", default=False)
    bleeding = models.BooleanField("it bleeds or crusts", default=False)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # The model's raw output: what the threshold applies to. Not a probability (class weights inflate it).
    score = models.FloatField(null=True, blank=True)
    # The score mapped through the model card's calibration; None when the model has no calibration.
    melanoma_probability = models.FloatField(null=True, blank=True)
    # NULL until scored (the API shows null, not ""), like the numbers beside it.
    risk_level = models.CharField(max_length=16, choices=RiskLevel.choices, null=True, blank=True)  # noqa: DJ001
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True, db_index=True)
    # Set only with verdict `retake`: what was wrong with the photo.
    quality_issue = models.CharField(max_length=24, choices=QualityIssue.choices, blank=True, db_index=True)
    threshold = models.FloatField(null=True, blank=True)
    # Top diagnoses of the model's second head: [{"code", "label", "probability"}], most likely first.
    differential = models.JSONField(default=list, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="predictions"
    )
    error = models.TextField(blank=True)
    inference_ms = models.FloatField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    # Clinician review: the ground truth a later retraining can use.
    reviewed = models.BooleanField(default=False, db_index=True)
    confirmed_diagnosis = models.CharField(max_length=16, choices=Diagnosis.choices, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_comment = models.TextField(
        blank=True, max_length=NOTE_MAX_LENGTH, help_text="Shown to the person on their result page."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="prediction_user_created")]

    def __str__(self) -> str:
        return f"Prediction {self.pk} ({self.status})"

    SYMPTOM_FIELDS = ("changed_size", "changed_colour", "itching", "bleeding")

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED_STATUSES

    @classmethod
    def symptom_label(cls, name: str) -> str:
        """One symptom question in words (its field's verbose name, e.g. "changed size")."""
        field = cls._meta.get_field(name)
        if name not in cls.SYMPTOM_FIELDS or not isinstance(field, models.BooleanField):
            raise ValueError(f"{name!r} is not a symptom question")
        return str(field.verbose_name)

    @property
    def symptoms(self) -> list[str]:
        """The ticked symptom answers, in words."""
        return [self.symptom_label(name) for name in self.SYMPTOM_FIELDS if getattr(self, name)]

    @property
    def risk_level_measurement(self) -> dict | None:
        """What this prediction's level meant when its model was tested (the card's risk_levels), if known."""
        if not self.risk_level or self.model_version is None:
            return None
        levels = (self.model_version.card or {}).get("risk_levels") or {}
        measured = (levels.get("levels") or {}).get(self.risk_level)
        return measured if isinstance(measured, dict) else None
