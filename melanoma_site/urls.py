from django.contrib import admin
from django.urls import include, path

from classifier.health import healthz
from classifier.views.pages import favicon, landing

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("classifier.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("", landing, name="landing"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/", include("accounts.urls")),
    path("", include("classifier.urls")),
]
