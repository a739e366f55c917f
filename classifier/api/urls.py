from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from classifier.api.views import PredictionViewSet, TokenView

app_name = "api"

router = SimpleRouter()
router.register("predictions", PredictionViewSet, basename="prediction")

urlpatterns = [
    path("token/", TokenView.as_view(), name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    *router.urls,
]
