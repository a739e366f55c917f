from django.contrib import admin
from django.urls import include, path

from classifier.health import healthz
from classifier.views.metrics import metrics_view
from classifier.views.pages import favicon, landing

# Errors while Django reads a request: JSON under /api/, a page elsewhere, with 408/413 where they apply.
handler400 = "melanoma_site.errors.bad_request"
handler404 = "melanoma_site.errors.page_not_found"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("classifier.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("metrics", metrics_view, name="metrics"),
    path("", landing, name="landing"),
    path("accounts/", include("accounts.auth_urls")),
    path("accounts/", include("accounts.urls")),
    path("", include("classifier.urls")),
    path("", include("spots.urls")),
]
