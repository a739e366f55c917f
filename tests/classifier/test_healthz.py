"""/healthz: 200 when database, broker and active model are all usable; 503 when any is not.

The public answer is ok/unavailable per component; staff and a probe with the token see the details. The model is
really loaded (a truncated file with a valid header is caught), once per version of its files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.test import Client

from classifier import model_check
from classifier.models import ModelVersion
from melanoma_site.embedded_redis import free_port
from tests.classifier import production_headers

pytestmark = pytest.mark.django_db

HEALTH_TOKEN = "probe-token-for-tests-0123456789"  # noqa: S105 - a test value


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def test_all_up_is_200_and_says_only_ok(client, active_model):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok", "model": "ok"},
    }


def test_public_answer_shows_no_paths_hosts_or_threshold(client, active_model, tmp_path):
    ModelVersion.objects.filter(pk=active_model.pk).update(path=str(tmp_path / "gone"))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok", "model": "unavailable"},
    }
    text = response.content.decode()
    for secret in (str(tmp_path), "127.0.0.1", "redis", str(active_model.threshold), active_model.version):
        assert secret not in text


def test_staff_see_the_details(staff_client, active_model):
    body = staff_client.get("/healthz").json()
    assert body["details"]["database"]["ok"]
    assert body["details"]["broker"]["ok"]
    model = body["details"]["model"]
    assert model["ok"] is True
    assert model["version"] == active_model.version
    assert model["threshold"] == active_model.threshold
    assert "check image scored" in model["detail"]


def test_a_probe_with_the_token_sees_the_details(client, active_model, settings):
    settings.MELANOMA_HEALTHZ_TOKEN = HEALTH_TOKEN
    assert "details" in client.get("/healthz", HTTP_AUTHORIZATION=f"Bearer {HEALTH_TOKEN}").json()
    assert "details" not in client.get("/healthz", HTTP_AUTHORIZATION="Bearer wrong").json()
    assert "details" not in client.get("/healthz").json()
    settings.MELANOMA_HEALTHZ_TOKEN = ""
    assert "details" not in client.get("/healthz", HTTP_AUTHORIZATION="Bearer ").json()


def test_no_active_model_is_503(staff_client, active_model):
    ModelVersion.objects.update(is_active=False)
    response = staff_client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["details"]["model"] == {"ok": False, "error": "No model version is active."}


def test_missing_model_file_is_503_naming_it(staff_client, active_model, tmp_path):
    ModelVersion.objects.filter(pk=active_model.pk).update(path=str(tmp_path / "gone"))
    response = staff_client.get("/healthz")
    assert response.status_code == 503
    assert "gone does not exist" in response.json()["details"]["model"]["error"]


@pytest.mark.parametrize("keep", [0.5, 0.9], ids=["half", "all-but-the-end"])
def test_truncated_model_file_is_503(staff_client, active_model, model_dir, tmp_path, keep):
    """The header ("TFL3" at bytes 4-8) survives truncation; only loading the model finds it broken."""
    truncated = tmp_path / "truncated"
    shutil.copytree(model_dir, truncated)
    data = (model_dir / "model.tflite").read_bytes()
    (truncated / "model.tflite").write_bytes(data[: int(len(data) * keep)])
    assert (truncated / "model.tflite").read_bytes()[4:8] == b"TFL3"
    ModelVersion.objects.filter(pk=active_model.pk).update(path=str(truncated))
    response = staff_client.get("/healthz")
    assert response.status_code == 503
    assert "not usable" in response.json()["details"]["model"]["error"]


def test_the_model_is_loaded_once_per_file_version(client, active_model, monkeypatch, tmp_path, model_dir):
    loads = []
    real = model_check._load_and_score
    monkeypatch.setattr(model_check, "_load_and_score", lambda path: loads.append(path) or real(path))
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    ModelVersion.objects.filter(pk=active_model.pk).update(path=str(copy))
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert len(loads) == 1
    data = (copy / "model.tflite").read_bytes()
    (copy / "model.tflite").write_bytes(data[: len(data) // 2])  # replaced in place: checked again
    assert client.get("/healthz").status_code == 503
    assert len(loads) == 2


def test_broker_down_is_503(staff_client, active_model, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = staff_client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"] == {"database": "ok", "broker": "unavailable", "storage": "ok", "model": "ok"}
    assert body["details"]["broker"]["ok"] is False
    assert body["details"]["broker"]["error"]


def test_needs_no_login_and_is_not_cached(client, active_model):
    response = client.get("/healthz")
    assert "no-store" in response["Cache-Control"]


def test_plain_http_is_answered_not_redirected_in_production(tmp_path):
    """A probe over plain HTTP must see 200/503, not a 301 it might count as up; every other URL still
    redirects to https."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "melanoma_site.settings.production",
        "DJANGO_SECRET_KEY": "x" * 60,
        "DJANGO_ALLOWED_HOSTS": "melanoma.example.org",
        "MELANOMA_VAR_DIR": str(tmp_path),
        "PYTHONPATH": str(django_settings.BASE_DIR),
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", production_headers.__name__],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["healthz_plain_status"] in (200, 503)
    assert seen["plain_status"] == 301
