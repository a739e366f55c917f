from django.urls import path
from rest_framework.routers import SimpleRouter

from classifier.api.views import ApiRootView, DocsView, PredictionViewSet, SchemaView, TokenView

app_name = "api"

router = SimpleRouter()
router.register("predictions", PredictionViewSet, basename="prediction")

urlpatterns = [
    path("", ApiRootView.as_view(), name="root"),
    path("token/", TokenView.as_view(), name="token"),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(), name="docs"),
    *router.urls,
]
