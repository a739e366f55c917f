"""/healthz: 200 when database, broker and active model are all usable; 503 naming what is not."""

from __future__ import annotations

import pytest

from classifier.models import ModelVersion
from melanoma_site.embedded_redis import free_port

pytestmark = pytest.mark.django_db


def test_all_up_is_200(client, active_model):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"]
    assert body["checks"]["broker"]["ok"]
    assert body["checks"]["model"] == {"ok": True, "version": active_model.version, "threshold": active_model.threshold}


def test_no_active_model_is_503(client, active_model):
    ModelVersion.objects.update(is_active=False)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["model"] == {"ok": False, "error": "No model version is active."}


def test_missing_model_file_is_503_naming_it(client, active_model, tmp_path):
    ModelVersion.objects.filter(pk=active_model.pk).update(path=str(tmp_path / "gone"))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "does not exist" in response.json()["checks"]["model"]["error"]


def test_broker_down_is_503(client, active_model, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_needs_no_login_and_is_not_cached(client, active_model):
    response = client.get("/healthz")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
