"""JSON API: thin views over the prediction services and selectors."""

from __future__ import annotations

import math
from typing import NoReturn

from django.contrib.auth import authenticate
from django.http import FileResponse
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, Throttled
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.throttling import lockout_cooloff, lockout_message
from api_tokens.models import ApiToken
from api_tokens.selectors import api_token_list_for_user
from api_tokens.services import api_token_create, api_token_revoke, tokens_revoke_all
from classifier.access import prediction_get_for_request
from classifier.api.exceptions import BadRequest, PayloadTooLarge
from classifier.api.filters import PredictionFilter
from classifier.api.pagination import PredictionPagination
from classifier.api.serializers import (
    ErrorSerializer,
    PredictionCreatedSerializer,
    PredictionCreateSerializer,
    PredictionSerializer,
    TokenCreatedSerializer,
    TokenListSerializer,
    TokenRequestSerializer,
)
from classifier.api.throttling import UploadRateThrottle, upload_rate_message
from classifier.images import too_large_message
from classifier.models import Prediction
from classifier.private_files import private_file_response
from classifier.selectors import prediction_list_for_user
from classifier.services.prediction_writes import prediction_create, prediction_delete, prediction_retry
from classifier.uploads import upload_too_large
from spots.services import spot_resolve_for_user

_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input; `detail` says why."),
    401: OpenApiResponse(ErrorSerializer, description="Not authenticated."),
    404: OpenApiResponse(ErrorSerializer, description="No such prediction, or not yours."),
}


def _wants(value: str | None) -> bool:
    return (value or "").lower() in {"1", "true", "yes"}


class TokenView(APIView):
    """POST: a new token for a username and password. GET: your tokens. DELETE: revoke one or all."""

    parser_classes = [FormParser, MultiPartParser, JSONParser]

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        summary="Get an API token for a username and password",
        request=TokenRequestSerializer,
        responses={
            200: TokenCreatedSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Wrong username or password, or bad input."),
            429: OpenApiResponse(ErrorSerializer, description="Too many failed log-ins: locked out for a while."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = authenticate(request=request, username=data["username"], password=data["password"])
        if user is None:
            # django-axes refuses a locked-out login by making authenticate() return None, which would read as
            # "wrong password" here; it flags the request it was given (this DRF Request), so say what happened.
            if getattr(request, "axes_locked_out", False) or getattr(request._request, "axes_locked_out", False):
                raise Throttled(
                    wait=lockout_cooloff(request._request).total_seconds(), detail=lockout_message(request._request)
                ) from None
            raise BadRequest("Unable to log in with provided credentials.")
        token, key = api_token_create(user=user, name=data["name"], expires_in_days=data["expires_in_days"])
        return Response({"token": key, "id": token.pk, "expires_at": token.expires_at})

    @extend_schema(summary="Your API tokens (never their secrets)", responses={200: TokenListSerializer(many=True)})
    def get(self, request: Request) -> Response:
        tokens = api_token_list_for_user(user=request.user)
        context = {"current_token": request.auth if isinstance(request.auth, ApiToken) else None}
        return Response(TokenListSerializer(tokens, many=True, context=context).data)

    @extend_schema(
        summary="Revoke a token: the one this request uses, another of yours (?id=N), or all (?all=true)",
        parameters=[
            OpenApiParameter("id", int, description="Revoke this token of yours instead of the current one."),
            OpenApiParameter("all", bool, description="Revoke every token of yours (log out everywhere)."),
        ],
        responses={204: None, 400: ErrorSerializer, 401: ErrorSerializer, 404: ErrorSerializer},
    )
    def delete(self, request: Request) -> Response:
        if _wants(request.query_params.get("all")):
            tokens_revoke_all(user=request.user)
        elif (token_id := request.query_params.get("id")) is not None:
            try:
                api_token_revoke(user=request.user, token_id=int(token_id))
            except (ValueError, OverflowError, ApiToken.DoesNotExist):
                raise NotFound("No such token of yours.") from None
        elif isinstance(request.auth, ApiToken):
            api_token_revoke(user=request.user, token_id=request.auth.pk)
        else:
            raise BadRequest("This request is not signed with a token: revoke one with ?id=N, or all with ?all=true.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiRootView(APIView):
    """Where to start: the docs, the schema and the endpoints."""

    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        def link(name: str) -> str:
            return request.build_absolute_uri(reverse(name))

        return Response(
            {
                "docs": link("api:docs"),
                "schema": link("api:schema"),
                "schema_yaml": link("api:schema") + "?format=yaml",
                "token": link("api:token"),
                "predictions": link("api:prediction-list"),
            }
        )


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema. JSON first, so that a browser shows it instead of downloading YAML; YAML with
    `?format=yaml` or `Accept: application/yaml`."""

    renderer_classes = [OpenApiJsonRenderer2, OpenApiJsonRenderer, OpenApiYamlRenderer, OpenApiYamlRenderer2]


class _PageOnly(BaseContentNegotiation):
    """The docs are a page whatever the client accepts (an API client's `Accept: application/json` included)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI from this site's own static files (drf-spectacular-sidecar); its start-up script is a separate
    file (the split view), and the page template has no inline style, so the strict CSP holds."""

    template_name = "api/swagger_ui.html"
    url_name = "api:schema"
    content_negotiation_class = _PageOnly


@extend_schema_view(
    list=extend_schema(
        summary="Your predictions, newest first (filters below)",
        responses={
            200: PredictionSerializer(many=True),
            400: OpenApiResponse(ErrorSerializer, description="A filter value that is not valid."),
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
    pagination_class = PredictionPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = PredictionFilter

    def get_queryset(self):
        return prediction_list_for_user(user=self.request.user)

    def get_object(self) -> Prediction:
        # Clinicians may read any prediction (audited); only its owner may change or delete it.
        read_only = self.request.method in {"GET", "HEAD", "OPTIONS"}
        return prediction_get_for_request(self.request, self.kwargs["pk"], owner_only=not read_only)

    def get_throttles(self):
        return [UploadRateThrottle()] if self.action == "create" else []

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
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
        data = serializer.validated_data
        # Before the photo is processed: someone else's spot id is the same 400 as a missing one.
        spot = spot_resolve_for_user(user=request.user, spot_id=data["spot"])
        prediction = prediction_create(
            user=request.user,
            upload=data["image"],
            body_site=data["body_site"],
            note=data["note"],
            spot=spot,
            symptoms=[name for name in Prediction.SYMPTOM_FIELDS if data[name]],
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

    @extend_schema(
        summary="Where the model looked: a PNG overlay (transparent where cold) to lay over the photo",
        # 404 also while there is none: not finished yet, refused for a retake, or from a model without heatmaps.
        responses={(200, "image/png"): OpenApiTypes.BINARY, **_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def heatmap(self, request: Request, pk: int) -> FileResponse:
        return private_file_response(self.get_object().heatmap)
