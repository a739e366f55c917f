from django.contrib import admin
from django.urls import include, path

from classifier.health import healthz
from classifier.views.metrics import metrics_view
from classifier.views.pages import landing

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("classifier.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("", landing, name="landing"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/", include("accounts.urls")),
    path("", include("classifier.urls")),
]
