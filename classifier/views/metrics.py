"""GET /metrics: Prometheus exposition (classifier/metrics.py) for the scraper only, never the public.

Allowed with `Authorization: Bearer $MELANOMA_METRICS_TOKEN`, or from an address in MELANOMA_METRICS_ALLOWED_IPS
(the scraper's, when it reaches the web hosts directly rather than through the proxy). Anyone else gets 403.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from classifier.metrics import metrics_access_allowed, metrics_payload


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_access_allowed(
        authorization=request.headers.get("Authorization", ""),
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        token=settings.MELANOMA_METRICS_TOKEN,
        allowed=settings.MELANOMA_METRICS_ALLOWED_IPS,
    ):
        return HttpResponse("Metrics need the scraper's token.\n", status=403, content_type="text/plain")
    return HttpResponse(metrics_payload(), content_type=CONTENT_TYPE_LATEST)
