"""Security and privacy across the whole site, filling what the page/API/account tests do not already cover:

- (who may use which URL, and CSRF on every form: tests/classifier/test_access_matrix.py);
- login throttling also on the API token endpoint (otherwise a side door for guessing passwords);
- production settings: refuse to start without DJANGO_SECRET_KEY, DEBUG off, HTTPS/HSTS/secure cookies,
  nosniff, Referrer-Policy, a Content-Security-Policy that no page breaks, `check --deploy` silent;
- stored and served photos carry no EXIF/GPS; deleting an account removes every row, token and file.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from PIL import ExifTags, Image

from api_tokens.models import ApiToken
from classifier.models import Prediction
from classifier.services.prediction_runs import prediction_run
from classifier.services.prediction_writes import prediction_create
from tests.conftest import media_files, row_files, stored_names
from tests.corpus import jpeg, jpeg_with_gps, multipart_body
from tests.factories import TEST_PASSWORD, api_token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_isolated_cache")]

SECRET_NOTE = "secret note: left breast, since May"


def _session_client(user=None, *, enforce_csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    if user is not None:
        client.force_login(user)
    return client


def _token_client(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {api_token_for(user)}", HTTP_ACCEPT="application/json")


# --- login throttling ---------------------------------------------------------------------------


def test_guessing_passwords_on_the_api_token_endpoint_is_locked_out_too(alice, settings):
    client = Client(HTTP_ACCEPT="application/json")
    statuses = [
        client.post(reverse("api:token"), {"username": "alice", "password": "guess"}).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[:-1] == [400] * (settings.AXES_FAILURE_LIMIT - 1)  # wrong password, said plainly
    response = client.post(reverse("api:token"), {"username": "alice", "password": TEST_PASSWORD})
    assert response.status_code == 429, response.content
    assert "Too many failed log-ins" in response.json()["detail"]
    assert "token" not in response.json()
    assert not ApiToken.objects.filter(user=alice).exists()


# --- production settings ------------------------------------------------------------------------


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment a deployment has: production settings, a real secret key, a host name."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "PYTEST_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="melanoma_site.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="melanoma.example.org",
        MELANOMA_VAR_DIR=str(tmp_path / "var"),
        PYTHONPATH=str(django_settings.BASE_DIR),
        **extra,
    )
    return env


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("stale_debug", [None, "1"])
def test_production_refuses_to_start_without_a_secret_key(tmp_path, stale_debug):
    """Production is chosen by its settings module alone: a DJANGO_DEBUG=1 left in the environment (the variable
    older versions read) does not let it start without a key."""
    env = _production_env(tmp_path)
    del env["DJANGO_SECRET_KEY"]
    if stale_debug is not None:
        env["DJANGO_DEBUG"] = stale_debug
    result = _run([sys.executable, "manage.py", "check"], env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_check_deploy_reports_nothing(tmp_path):
    result = _run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], _production_env(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_responses_carry_the_security_headers(tmp_path):
    result = _run([sys.executable, "-m", "tests.classifier.production_headers"], _production_env(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["debug"] is False
    assert seen["session_cookie_secure"]
    assert seen["csrf_cookie_secure"]
    assert seen["session_cookie_httponly"]
    assert seen["plain_status"] == 301
    assert seen["plain_location"].startswith("https://melanoma.example.org/")
    headers = {key.lower(): value for key, value in seen["https_headers"].items()}
    assert seen["https_status"] == 401
    hsts = headers["strict-transport-security"]
    assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 31_536_000
    assert "includeSubDomains" in hsts
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    _assert_strict_csp(headers["content-security-policy"])


def _assert_strict_csp(policy: str) -> None:
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy


def test_the_csp_breaks_no_page(alice, private_media):
    """Every page (the admin's too) sends the policy, and none has what the policy would block: inline scripts,
    inline styles, event-handler attributes, javascript: links or assets from another site."""
    prediction = prediction_create(user=alice, upload=jpeg())
    signed_in = _session_client(alice)
    pages = [
        (Client(), reverse("landing")),
        (Client(), reverse("login")),
        (Client(), reverse("accounts:signup")),
        (signed_in, reverse("classifier:upload")),
        (signed_in, reverse("classifier:history")),
        (signed_in, reverse("classifier:prediction_detail", args=[prediction.pk])),
        (signed_in, reverse("accounts:account")),
    ]
    root = get_user_model().objects.create_superuser("root", "root@example.org", TEST_PASSWORD)
    admin = _session_client(root)
    pages += [
        (admin, path)
        for path in (
            "/admin/",
            "/admin/classifier/prediction/",
            f"/admin/classifier/prediction/{prediction.pk}/change/",
            "/admin/classifier/modelversion/",
            f"/admin/auth/user/{alice.pk}/change/",
        )
    ]
    for client, path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        _assert_strict_csp(response["Content-Security-Policy"])
        page = response.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), f"inline script on {path}"
        assert not re.search(r"<style\b|\sstyle=", page), f"inline style on {path}"
        assert not re.search(r"\son[a-z]+\s*=", page), f"event-handler attribute on {path}"
        assert "javascript:" not in page
        assert not re.search(r"""(src|href)=["']https?://""", page), f"asset from another site on {path}"


# --- privacy: metadata and account deletion -------------------------------------------------------


@pytest.mark.parametrize("entry_point", ["form", "api"])
def test_no_exif_or_gps_is_stored_or_served(entry_point, alice, private_media, active_model):
    photo = jpeg_with_gps()
    with Image.open(io.BytesIO(photo)) as source:  # the fixture really carries GPS
        assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    body, content_type = multipart_body(filename="IMG_0001.jpg", content=photo)
    if entry_point == "form":
        response = _session_client(alice).generic("POST", reverse("classifier:upload"), body, content_type=content_type)
        assert response.status_code == 302
        pk = Prediction.objects.get().pk
        served = [
            reverse(name, args=[pk]) for name in ("classifier:prediction_image", "classifier:prediction_thumbnail")
        ]
        client = _session_client(alice)
    else:
        client = _token_client(alice)
        response = client.generic("POST", reverse("api:prediction-list"), body, content_type=content_type)
        assert response.status_code == 202
        pk = response.json()["id"]
        served = [reverse("api:prediction-image", args=[pk]), reverse("api:prediction-thumbnail", args=[pk])]

    # The photo is kept as taken, its metadata stripped without decoding; the worker adds the thumbnail (and the
    # heatmap): every stored and served file is checked.
    prediction_run(prediction_id=pk)
    blobs = [path.read_bytes() for path in media_files(private_media)]
    assert len(blobs) >= 2
    for url in served:
        response = client.get(url)
        assert response.status_code == 200
        blobs.append(b"".join(response.streaming_content))
    for blob in blobs:
        with Image.open(io.BytesIO(blob)) as image:
            assert not image.getexif()
            assert not {"exif", "comment", "icc_profile", "xmp"} & set(image.info)
        for marker in (b"Exif", b"PhoneMakerXYZ", b"home address", b"GPS"):
            assert marker not in blob


def test_deleting_the_account_removes_every_row_token_and_file(
    alice, bob, private_media, django_capture_on_commit_callbacks
):
    for index, status in enumerate(["queued", "running", "done", "failed"]):
        prediction = prediction_create(user=alice, upload=jpeg(), note=f"{SECRET_NOTE} {index}")
        Prediction.objects.filter(pk=prediction.pk).update(status=status)
    bobs = prediction_create(user=bob, upload=jpeg())
    alice_token = api_token_for(alice)
    api = Client(HTTP_AUTHORIZATION=f"Token {alice_token}")
    assert api.get(reverse("api:prediction-list")).json()["count"] == 4
    browser = Client()
    browser.force_login(alice)

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(reverse("accounts:account_delete"), {"password": TEST_PASSWORD})
    assert response.status_code == 302

    assert not get_user_model().objects.filter(username="alice").exists()
    assert not Prediction.objects.filter(note__startswith=SECRET_NOTE).exists()
    assert not ApiToken.objects.filter(user__username="alice").exists()
    assert stored_names(private_media) == row_files(bobs)
    # Nothing that used to be alice's opens any more: not the old session, not the old token.
    assert api.get(reverse("api:prediction-list")).status_code == 401
    assert browser.get(reverse("classifier:history")).status_code == 302
    login = Client().post(reverse("login"), {"username": "alice", "password": TEST_PASSWORD})
    assert login.status_code == 200  # the form again, with an error: no such account
    assert "_auth_user_id" not in login.client.session
