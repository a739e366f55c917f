from django.contrib import admin
from django.urls import include, path

from classifier.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("classifier.api.urls")),
    path("healthz", healthz, name="healthz"),
]
