"""GET /healthz: is every part the service needs up? 200 when all are, 503 naming what is down."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from classifier.selectors import model_version_get_active
from classifier.services.model_versions import model_version_resolve_path
from lesion_model.model_card import TFLITE_FILENAME, ModelCardError, read_model_card

BROKER_TIMEOUT_S = 1.0
TFLITE_IDENTIFIER = b"TFL3"


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
        connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_S)
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
    model_dir = model_version_resolve_path(active)
    try:
        read_model_card(model_dir)  # also checks that the model file is there
        size = (model_dir / TFLITE_FILENAME).stat().st_size
    except (ModelCardError, OSError) as error:
        return {"ok": False, "version": active.version, "error": str(error)}
    if size == 0:
        return {"ok": False, "version": active.version, "error": f"{TFLITE_FILENAME} is empty."}
    try:
        with (model_dir / TFLITE_FILENAME).open("rb") as model_file:
            header = model_file.read(8)
    except OSError as error:
        return {"ok": False, "version": active.version, "error": f"{TFLITE_FILENAME} cannot be read: {error}"}
    # A LiteRT flatbuffer names itself "TFL3" at bytes 4-8: cheap enough for every health check, and it
    # catches a file overwritten with something else (loading the model here would cost far more).
    if header[4:8] != TFLITE_IDENTIFIER:
        return {"ok": False, "version": active.version, "error": f"{TFLITE_FILENAME} is not a LiteRT model (corrupt)."}
    return {"ok": True, "version": active.version, "threshold": active.threshold}


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
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503
    )
