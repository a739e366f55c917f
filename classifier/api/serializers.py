"""API shapes. Input serializers only collect fields; the photo itself is checked by the service."""

from django.urls import reverse
from rest_framework import serializers

from classifier.models import Prediction


class PredictionCreateSerializer(serializers.Serializer):
    # A FileField, not DRF's ImageField: validation by content (and its messages) belongs to classifier.images.
    image = serializers.FileField(
        allow_empty_file=True, help_text="The photo: JPEG, PNG, HEIC or WebP, up to the size limit."
    )
    body_site = serializers.ChoiceField(
        choices=Prediction.BodySite.choices, required=False, default=Prediction.BodySite.UNKNOWN
    )
    note = serializers.CharField(max_length=Prediction.NOTE_MAX_LENGTH, required=False, allow_blank=True, default="")


class PredictionSerializer(serializers.ModelSerializer):
    model_version = serializers.SlugRelatedField(slug_field="version", read_only=True)
    verdict_text = serializers.CharField(source="get_verdict_display", read_only=True)
    url = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Prediction
        fields = [
            "id",
            "url",
            "status",
            "melanoma_probability",
            "verdict",
            "verdict_text",
            "threshold",
            "model_version",
            "body_site",
            "note",
            "error",
            "created_at",
            "completed_at",
            "image_url",
            "thumbnail_url",
        ]
        read_only_fields = fields

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_url(self, prediction: Prediction) -> str:
        return self._absolute(reverse("api:prediction-detail", args=[prediction.pk]))

    def get_image_url(self, prediction: Prediction) -> str:
        return self._absolute(reverse("api:prediction-image", args=[prediction.pk]))

    def get_thumbnail_url(self, prediction: Prediction) -> str:
        return self._absolute(reverse("api:prediction-thumbnail", args=[prediction.pk]))


class PredictionCreatedSerializer(PredictionSerializer):
    class Meta(PredictionSerializer.Meta):
        fields = ["id", "status", "url"]
        read_only_fields = fields


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A message a person can read.")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
