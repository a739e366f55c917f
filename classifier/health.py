"""GET /healthz: is every part the service needs up? 200 when all are, 503 when any is not.

The public answer says only "ok" or "unavailable" per component: error texts name hosts, paths and versions,
which are nobody else's business. Staff (logged in) and probes sending `Authorization: Bearer
<MELANOMA_HEALTHZ_TOKEN>` get the details too. The model is really loaded and scores a check image (cached until
its files change: classifier.model_check), since a truncated file keeps a valid header.
"""

from __future__ import annotations

import hmac

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from classifier.model_check import model_check
from classifier.selectors import model_version_get_active
from classifier.services.model_versions import model_version_resolve_path

BROKER_TIMEOUT_S = 1.0


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - report any failure, never raise from a health check
        return {"ok": False, "error": f"{error.__class__.__name__}: {error}"}
    return {"ok": True, "vendor": connection.vendor}


def check_broker() -> dict:
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_connect_timeout=BROKER_TIMEOUT_S, socket_timeout=BROKER_TIMEOUT_S
    )
    try:
        client.ping()
    except Exception as error:  # noqa: BLE001
        return {"ok": False, "error": f"{error.__class__.__name__}: {error}"}
    finally:
        client.close()
    return {"ok": True}


def check_model() -> dict:
    try:
        active = model_version_get_active()
    except Exception as error:  # noqa: BLE001 - the database being down is reported by check_database
        return {"ok": False, "error": f"Cannot read the active model: {error.__class__.__name__}"}
    if active is None:
        return {"ok": False, "error": "No model version is active."}
    check = model_check(model_version_resolve_path(active))
    if not check.ok:
        return {"ok": False, "version": active.version, "error": f"The model is not usable: {check.detail}"}
    return {"ok": True, "version": active.version, "threshold": active.threshold, "detail": check.detail}


def _may_see_details(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    token = str(getattr(settings, "MELANOMA_HEALTHZ_TOKEN", "") or "")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": check_database(), "broker": check_broker(), "model": check_model()}
    healthy = all(check["ok"] for check in checks.values())
    body: dict = {
        "status": "ok" if healthy else "unavailable",
        "checks": {name: "ok" if check["ok"] else "unavailable" for name, check in checks.items()},
    }
    if _may_see_details(request):
        body["details"] = checks
    return JsonResponse(body, status=200 if healthy else 503)
