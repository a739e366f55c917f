from django.urls import path
from rest_framework.routers import SimpleRouter

from classifier.api.views import ApiRootView, DocsView, PredictionViewSet, SchemaView, TokenView
from spots.api import MyExportView, SpotReportView, SpotViewSet

app_name = "api"

router = SimpleRouter()
router.register("predictions", PredictionViewSet, basename="prediction")
router.register("spots", SpotViewSet, basename="spot")

urlpatterns = [
    path("", ApiRootView.as_view(), name="root"),
    path("token/", TokenView.as_view(), name="token"),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(), name="docs"),
    path("spots/<int:pk>/report.pdf", SpotReportView.as_view(), name="spot-report"),
    path("me/export/", MyExportView.as_view(), name="me-export"),
    *router.urls,
]
