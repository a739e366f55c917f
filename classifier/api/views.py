"""JSON API: thin views over the prediction services and selectors."""

from __future__ import annotations

import math

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from classifier.api.exceptions import PayloadTooLarge
from classifier.api.serializers import (
    ErrorSerializer,
    PredictionCreatedSerializer,
    PredictionCreateSerializer,
    PredictionSerializer,
    TokenSerializer,
)
from classifier.api.throttling import UploadRateThrottle, upload_rate_message
from classifier.images import too_large_message
from classifier.models import Prediction
from classifier.private_files import private_file_response
from classifier.selectors import prediction_get_for_user, prediction_list_for_user
from classifier.services.prediction_writes import prediction_create, prediction_delete, prediction_retry
from classifier.uploads import upload_too_large

_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input; `detail` says why."),
    401: OpenApiResponse(ErrorSerializer, description="Not authenticated."),
    404: OpenApiResponse(ErrorSerializer, description="No such prediction, or not yours."),
}


class TokenView(ObtainAuthToken):
    """Exchange a username and password for an API token (`Authorization: Token <token>`)."""

    parser_classes = [FormParser, MultiPartParser, JSONParser]

    @extend_schema(
        summary="Exchange a username and password for an API token",
        request=AuthTokenSerializer,
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Wrong or missing username or password."),
            429: OpenApiResponse(ErrorSerializer, description="Too many failed log-ins."),
        },
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            # django-axes refuses a locked-out login by making authenticate() return None, which would read as
            # "wrong password" here; it flags the request it was given (this DRF Request), so say what happened.
            if getattr(request, "axes_locked_out", False) or getattr(request._request, "axes_locked_out", False):
                minutes = round(float(settings.AXES_COOLOFF_TIME) * 60)
                raise Throttled(
                    wait=minutes * 60,
                    detail=f"Too many failed log-ins for this account. Please try again in {minutes} minutes.",
                ) from None
            raise


@extend_schema_view(
    list=extend_schema(
        summary="Your predictions, newest first",
        responses={
            200: PredictionSerializer(many=True),
            401: _ERRORS[401],
            404: OpenApiResponse(ErrorSerializer, description="No such page."),
        },
    ),
    retrieve=extend_schema(summary="One prediction", responses={200: PredictionSerializer, **_ERRORS}),
    destroy=extend_schema(summary="Delete a prediction and its photo", responses={204: None, **_ERRORS}),
)
class PredictionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = PredictionSerializer
    parser_classes = [MultiPartParser, FormParser]
    queryset = Prediction.objects.none()  # for the schema; real queries go through the selectors

    def get_queryset(self):
        return prediction_list_for_user(user=self.request.user)

    def get_object(self) -> Prediction:
        # Staff may read any prediction; only its owner may change or delete it.
        read_only = self.request.method in {"GET", "HEAD", "OPTIONS"}
        return prediction_get_for_user(user=self.request.user, pk=self.kwargs["pk"], allow_staff=read_only)

    def get_throttles(self):
        return [UploadRateThrottle()] if self.action == "create" else []

    def throttled(self, request: Request, wait: float | None) -> None:
        wait_seconds = math.ceil(wait) if wait else None
        raise Throttled(wait=wait_seconds, detail=upload_rate_message(wait_seconds))

    @extend_schema(
        summary="Upload a photo for assessment",
        request={"multipart/form-data": PredictionCreateSerializer},
        responses={
            202: PredictionCreatedSerializer,
            **_ERRORS,
            413: OpenApiResponse(ErrorSerializer, description="The file is too large."),
            429: OpenApiResponse(ErrorSerializer, description="Too many uploads."),
        },
    )
    def create(self, request: Request) -> Response:
        if upload_too_large(request):
            raise PayloadTooLarge(too_large_message())
        serializer = PredictionCreateSerializer(data=request.data)
        if upload_too_large(request):  # parsing happens lazily, on first access to request.data
            raise PayloadTooLarge(too_large_message())
        serializer.is_valid(raise_exception=True)
        prediction = prediction_create(
            user=request.user,
            upload=serializer.validated_data["image"],
            body_site=serializer.validated_data["body_site"],
            note=serializer.validated_data["note"],
        )
        data = PredictionCreatedSerializer(prediction, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})

    def perform_destroy(self, instance: Prediction) -> None:
        prediction_delete(prediction=instance)

    @extend_schema(
        summary="Try a failed prediction again (same photo)",
        request=None,
        responses={202: PredictionSerializer, 409: ErrorSerializer, **_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: int) -> Response:
        prediction = prediction_retry(prediction=self.get_object())
        serializer = PredictionSerializer(prediction, context={"request": request})
        return Response(serializer.data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="The stored photo (JPEG, metadata removed)",
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, **_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def image(self, request: Request, pk: int) -> FileResponse:
        return private_file_response(self.get_object().image)

    @extend_schema(summary="A small thumbnail (JPEG)", responses={(200, "image/jpeg"): OpenApiTypes.BINARY, **_ERRORS})
    @action(detail=True, methods=["get"])
    def thumbnail(self, request: Request, pk: int) -> FileResponse:
        prediction = self.get_object()
        return private_file_response(prediction.thumbnail or prediction.image)
