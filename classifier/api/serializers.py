"""API shapes. Input serializers only collect fields; the photo itself is checked by the service."""

from django.urls import reverse
from rest_framework import serializers

from classifier.answers import verdict_text
from classifier.models import ModelVersion, Prediction
from classifier.risk_wording import level_meaning


class PredictionCreateSerializer(serializers.Serializer):
    # A FileField, not DRF's ImageField: validation by content (and its messages) belongs to classifier.images.
    image = serializers.FileField(
        allow_empty_file=True, help_text="The photo: JPEG, PNG, HEIC or WebP, up to the size limit."
    )
    body_site = serializers.ChoiceField(
        choices=Prediction.BodySite.choices, required=False, default=Prediction.BodySite.UNKNOWN
    )
    note = serializers.CharField(max_length=Prediction.NOTE_MAX_LENGTH, required=False, allow_blank=True, default="")
    spot = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="The id of one of your spots to file this check under (its body region becomes the body site).",
    )
    changed_size = serializers.BooleanField(required=False, default=False)
    changed_colour = serializers.BooleanField(required=False, default=False)
    itching = serializers.BooleanField(required=False, default=False)
    bleeding = serializers.BooleanField(required=False, default=False)


class DifferentialItemSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="HAM10000 diagnosis code: nv, mel, bkl, bcc, akiec, vasc or df.")
    # A field named like Field.label: DRF's metaclass takes declared fields off the class, mypy cannot know.
    label = serializers.CharField()  # type: ignore[assignment]
    probability = serializers.FloatField(help_text="Calibrated on validation data (see the model card).")


class PredictionSerializer(serializers.ModelSerializer):
    model_version: "serializers.SlugRelatedField[ModelVersion]" = serializers.SlugRelatedField(
        slug_field="version", read_only=True
    )
    verdict_text = serializers.SerializerMethodField(help_text="The answer in words, as the pages word it.")
    score = serializers.FloatField(
        read_only=True, allow_null=True, help_text="The model's raw output (what the threshold applies to)."
    )
    melanoma_probability = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="The score calibrated on validation data (see the model card); null when the model has none.",
    )
    risk_level_meaning = serializers.SerializerMethodField(
        help_text="What this level meant when the model was tested, in plain words."
    )
    confirmed_diagnosis = serializers.ChoiceField(
        choices=Prediction.Diagnosis.choices,
        allow_blank=True,
        read_only=True,
        help_text="A clinician's confirmed diagnosis once the check was reviewed; empty until then.",
    )
    quality_issue = serializers.ChoiceField(
        choices=Prediction.QualityIssue.choices,
        allow_blank=True,
        read_only=True,
        help_text="Set when verdict is `retake`: why the photo was refused (no melanoma probability then). "
        "Empty otherwise.",
    )
    differential = DifferentialItemSerializer(
        many=True,
        read_only=True,
        help_text="The three most likely diagnoses of the model's second output, most likely first; a "
        "screening aid's guess, not a diagnosis. Empty on retake or with a model without it.",
    )
    heatmap_url = serializers.SerializerMethodField(
        help_text="PNG overlay of where the model looked (null when there is none)."
    )
    url = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Prediction
        fields = [
            "id",
            "url",
            "status",
            "risk_level",
            "risk_level_meaning",
            "melanoma_probability",
            "score",
            "verdict",
            "verdict_text",
            "quality_issue",
            "differential",
            "threshold",
            "model_version",
            "body_site",
            "note",
            "spot",
            "changed_size",
            "changed_colour",
            "itching",
            "bleeding",
            "reviewed",
            "confirmed_diagnosis",
            "review_comment",
            "reviewed_at",
            "error",
            "created_at",
            "completed_at",
            "image_url",
            "thumbnail_url",
            "heatmap_url",
        ]
        read_only_fields = fields

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_verdict_text(self, prediction: Prediction) -> str:
        return verdict_text(prediction.verdict, prediction.risk_level)

    def get_risk_level_meaning(self, prediction: Prediction) -> str:
        return level_meaning(prediction.risk_level, prediction.risk_level_measurement)

    def get_url(self, prediction: Prediction) -> str:
        return self._absolute(reverse("api:prediction-detail", args=[prediction.pk]))

    def get_image_url(self, prediction: Prediction) -> str:
        return self._absolute(reverse("api:prediction-image", args=[prediction.pk]))

    def get_thumbnail_url(self, prediction: Prediction) -> str:
        return self._absolute(reverse("api:prediction-thumbnail", args=[prediction.pk]))

    def get_heatmap_url(self, prediction: Prediction) -> str | None:
        if not prediction.heatmap:
            return None
        return self._absolute(reverse("api:prediction-heatmap", args=[prediction.pk]))


class PredictionCreatedSerializer(PredictionSerializer):
    class Meta(PredictionSerializer.Meta):
        fields = ["id", "status", "url"]
        read_only_fields = fields


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A message a person can read.")


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False, write_only=True)
    name = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", help_text="What it is for, e.g. 'clinic app'."
    )
    expires_in_days = serializers.IntegerField(
        min_value=1,
        max_value=3650,
        required=False,
        allow_null=True,
        default=None,
        help_text="Days until the token stops working; none: until revoked.",
    )


class TokenCreatedSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Bearer <token>`. Shown this once only.")
    id = serializers.IntegerField()
    expires_at = serializers.DateTimeField(allow_null=True)


class TokenListSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The token's first characters, to tell tokens apart.")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    current = serializers.SerializerMethodField(help_text="True for the token this request was made with.")

    def get_current(self, token) -> bool:
        return token == self.context.get("current_token")
