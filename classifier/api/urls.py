from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from classifier.api.views import PredictionViewSet, TokenView
from spots.api import MyExportView, SpotReportView, SpotViewSet

app_name = "api"

router = SimpleRouter()
router.register("predictions", PredictionViewSet, basename="prediction")
router.register("spots", SpotViewSet, basename="spot")

urlpatterns = [
    path("token/", TokenView.as_view(), name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("spots/<int:pk>/report.pdf", SpotReportView.as_view(), name="spot-report"),
    path("me/export/", MyExportView.as_view(), name="me-export"),
    *router.urls,
]
