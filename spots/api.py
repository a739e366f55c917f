"""JSON API for spots: `/api/spots/` (list, create), `/api/spots/{id}/` (read with its checks, PATCH, DELETE),
`/api/spots/{id}/report.pdf`, and `/api/me/export/`. Thin views over the spot services and selectors; another
user's spot is a 404 on every URL."""

from __future__ import annotations

import datetime

from django.http import FileResponse, HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier.api.serializers import ErrorSerializer, PredictionSerializer
from spots.exports import user_export_response
from spots.models import Spot
from spots.reports import report_filename, spot_report_pdf
from spots.selectors import spot_checks, spot_due_on, spot_get_for_user, spot_list_for_user
from spots.services import spot_create, spot_delete, spot_update

_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input; `detail` says why."),
    401: OpenApiResponse(ErrorSerializer, description="Not authenticated."),
    404: OpenApiResponse(ErrorSerializer, description="No such spot, or not yours."),
}


class SpotSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    report_url = serializers.SerializerMethodField()
    check_count = serializers.IntegerField(read_only=True)
    next_recheck_due = serializers.SerializerMethodField()
    x = serializers.FloatField(min_value=0.0, max_value=1.0, help_text="Across the drawing, 0 = left edge.")
    y = serializers.FloatField(min_value=0.0, max_value=1.0, help_text="Down the drawing, 0 = top.")

    class Meta:
        model = Spot
        fields = [
            "id",
            "url",
            "name",
            "view",
            "x",
            "y",
            "region",
            "note",
            "recheck_months",
            "next_recheck_due",
            "check_count",
            "created_at",
            "report_url",
        ]
        read_only_fields = ["id", "url", "region", "next_recheck_due", "check_count", "created_at", "report_url"]

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_url(self, spot: Spot) -> str:
        return self._absolute(reverse("api:spot-detail", args=[spot.pk]))

    def get_report_url(self, spot: Spot) -> str:
        return self._absolute(reverse("api:spot-report", args=[spot.pk]))

    def get_next_recheck_due(self, spot: Spot) -> datetime.date | None:
        return spot_due_on(spot=spot)


class SpotDetailSerializer(SpotSerializer):
    checks = serializers.SerializerMethodField(help_text="The spot's checks, newest first.")

    class Meta(SpotSerializer.Meta):
        fields = [*SpotSerializer.Meta.fields, "checks"]

    @extend_schema_field(PredictionSerializer(many=True))
    def get_checks(self, spot: Spot) -> list[dict]:
        serializer = PredictionSerializer(context=self.context)
        return [serializer.to_representation(check) for check in spot_checks(spot=spot)]


@extend_schema_view(
    list=extend_schema(
        summary="Your spots",
        responses={200: SpotSerializer(many=True), 401: _ERRORS[401], 404: _ERRORS[404]},  # 404: no such page
    ),
    create=extend_schema(summary="Add a spot", responses={201: SpotDetailSerializer, **_ERRORS}),
    retrieve=extend_schema(summary="One spot with its checks", responses={200: SpotDetailSerializer, **_ERRORS}),
    partial_update=extend_schema(summary="Change a spot", responses={200: SpotDetailSerializer, **_ERRORS}),
    destroy=extend_schema(
        summary="Delete a spot and every check filed under it (photos included)", responses={204: None, **_ERRORS}
    ),
)
class SpotViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    queryset = Spot.objects.none()  # for the schema; real queries go through the selectors

    def get_serializer_class(self):
        return SpotSerializer if self.action == "list" else SpotDetailSerializer

    def get_queryset(self):
        return spot_list_for_user(user=self.request.user)

    def get_object(self) -> Spot:
        return spot_get_for_user(user=self.request.user, pk=self.kwargs["pk"])

    def create(self, request: Request) -> Response:
        serializer = SpotSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        spot = spot_create(user=request.user, **serializer.validated_data)
        spot = spot_get_for_user(user=request.user, pk=spot.pk)
        data = SpotDetailSerializer(spot, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": data["url"]})

    def partial_update(self, request: Request, pk=None) -> Response:
        spot = self.get_object()
        serializer = SpotSerializer(spot, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        spot_update(spot=spot, **serializer.validated_data)
        spot = spot_get_for_user(user=request.user, pk=spot.pk)
        return Response(SpotDetailSerializer(spot, context={"request": request}).data)

    def perform_destroy(self, instance: Spot) -> None:
        spot_delete(spot=instance)


class _FileOrJsonError(BaseContentNegotiation):
    """A download answers with its file, or with a JSON error whatever the client accepts (a PDF reader's
    `Accept: application/pdf` must not turn a 404 into a 406 or an HTML page)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class SpotReportView(APIView):
    """The report for the doctor: every check of the spot, with photos, dates, results and answers."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FileOrJsonError

    @extend_schema(
        summary="The spot's report for a doctor (PDF)",
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, 401: _ERRORS[401], 404: _ERRORS[404]},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        spot = spot_get_for_user(user=request.user, pk=pk)
        response = HttpResponse(
            spot_report_pdf(spot=spot, checks=spot_checks(spot=spot)), content_type="application/pdf"
        )
        response["Content-Disposition"] = f'attachment; filename="{report_filename(spot.name)}"'
        response["Cache-Control"] = "private, no-store"
        return response


class MyExportView(APIView):
    """Export my data (GDPR art. 20)."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FileOrJsonError

    @extend_schema(
        summary="Everything of yours as a zip: photos, checks/spots/reviews (CSV and JSON), reports",
        responses={(200, "application/zip"): OpenApiTypes.BINARY, 401: _ERRORS[401]},
    )
    def get(self, request: Request) -> FileResponse:
        return user_export_response(user=request.user)
