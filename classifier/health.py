"""GET /healthz: is every part the service needs up? 200 when all are, 503 when any is not.

The public answer says only "ok" or "unavailable" per component: error texts name hosts, paths and versions,
which are nobody else's business. Staff (logged in) and probes sending `Authorization: Bearer
<MELANOMA_HEALTHZ_TOKEN>` get the details too. The model is really loaded and scores a check image (cached until
its files change: classifier.model_check), since a truncated file keeps a valid header.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.core.files.storage import default_storage
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
    """Connect to the Celery broker (Redis or RabbitMQ) with a short timeout; no message is sent."""
    from kombu import Connection  # noqa: PLC0415

    connection = Connection(settings.CELERY_BROKER_URL, connect_timeout=BROKER_TIMEOUT_S)
    try:
        # kombu-stubs say int, but kombu only adds it to time(): a float is what it works with.
        connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_S)  # type: ignore[arg-type]
        transport = connection.transport_cls
    except Exception as error:  # noqa: BLE001
        return {"ok": False, "error": f"{error.__class__.__name__}: {error}"}
    finally:
        connection.release()
    return {"ok": True, "transport": str(transport)}


def check_storage() -> dict:
    """Ask the photo storage about one name (a HEAD on S3): reachable and credentials accepted."""
    try:
        default_storage.exists("healthz-probe")
    except Exception as error:  # noqa: BLE001 - never raise from a health check; the message names the cause
        return {"ok": False, "error": f"{error.__class__.__name__}: {str(error)[:200]}"}
    return {"ok": True, "backend": "s3" if settings.MELANOMA_OBJECT_STORAGE else "local"}


def check_model() -> dict:
    try:
        active = model_version_get_active()
    except Exception as error:  # noqa: BLE001 - the database being down is reported by check_database
        return {"ok": False, "error": f"Cannot read the active model: {error.__class__.__name__}"}
    if active is None:
        return {"ok": False, "error": "No model version is active."}
    if (active.artifact or {}).get("sha256"):
        # In the object store: this host may have no copy; the workers verify the checksums when they load it.
        from classifier.services.model_artifacts import model_artifact_check  # noqa: PLC0415

        try:
            problem = model_artifact_check(active)
        except Exception as error:  # noqa: BLE001 - the storage check names the cause
            problem = f"Cannot reach the stored model: {error.__class__.__name__}"
        if problem:
            return {"ok": False, "version": active.version, "error": problem}
        return {"ok": True, "version": active.version, "threshold": active.threshold, "stored": True}
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
    checks = {
        "database": check_database(),
        "broker": check_broker(),
        "storage": check_storage(),
        "model": check_model(),
    }
    healthy = all(check["ok"] for check in checks.values())
    body: dict = {
        "status": "ok" if healthy else "unavailable",
        "checks": {name: "ok" if check["ok"] else "unavailable" for name, check in checks.items()},
    }
    if _may_see_details(request):
        body["details"] = checks
    return JsonResponse(body, status=200 if healthy else 503)
