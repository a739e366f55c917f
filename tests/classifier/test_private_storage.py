"""Patient data stays out of caches and out of other accounts' reach (issue 11, items 14 and 15).

- every private page, API answer and photo is `Cache-Control: no-store` (photos were `private, max-age=3600`, and
  the result page, history, account and API JSON had no Cache-Control at all: a shared computer's browser cache
  or the back button after logging out showed them);
- stored photos are 0600 in 0700 folders (they were 0644 in 0755: any account on the server could read them).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from classifier.services.prediction_runs import prediction_run
from tests.conftest import media_files
from tests.factories import api_token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_isolated_cache")]


def _private_urls(prediction_id: int) -> list[str]:
    return [
        "/upload/",
        "/history/",
        "/accounts/",
        "/accounts/delete/",
        "/accounts/password_change/",
        f"/predictions/{prediction_id}/",
        f"/predictions/{prediction_id}/status/",
        f"/predictions/{prediction_id}/delete/",
        f"/predictions/{prediction_id}/image/",
        f"/predictions/{prediction_id}/thumbnail/",
        "/api/predictions/",
        f"/api/predictions/{prediction_id}/",
        f"/api/predictions/{prediction_id}/image/",
        f"/api/predictions/{prediction_id}/thumbnail/",
    ]


def _assert_no_store(response, url: str) -> None:
    cache_control = response.get("Cache-Control", "")
    assert "no-store" in cache_control, f"{url}: Cache-Control {cache_control!r}"
    assert "public" not in cache_control, url
    assert "max-age=3600" not in cache_control, url


def test_every_private_page_api_answer_and_photo_is_no_store(alice, make_prediction):
    prediction = make_prediction(user=alice, status="done")
    session = Client()
    session.force_login(alice)
    token = api_token_for(alice)
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    for url in _private_urls(prediction.pk):
        client = api if url.startswith("/api/") else session
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_no_store(response, url)


def test_errors_and_the_token_answer_are_no_store(alice):
    client = Client()
    client.force_login(alice)
    _assert_no_store(client.get("/predictions/999999/"), "404 page")
    token = Client().post("/api/token/", {"username": "alice", "password": "correct-horse-battery-staple-42"})
    assert token.status_code == 200
    _assert_no_store(token, "/api/token/")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_stored_photos_are_owner_only_whatever_the_umask(alice, make_prediction, ui_private_media, active_model):
    previous = os.umask(0o022)  # the usual default: files 0644, folders 0755 unless the app says otherwise
    try:
        prediction = make_prediction(user=alice)
        prediction_run(prediction_id=prediction.pk)  # the worker writes the thumbnail (and the heatmap)
    finally:
        os.umask(previous)
    files = media_files(ui_private_media)
    assert {path.parent.name for path in files} >= {"lesions", "thumbnails"}
    for path in files:
        assert _mode(path) == 0o600, f"{path}: {oct(_mode(path))}"
    for folder in {path.parent for path in files} | {Path(ui_private_media)}:
        assert _mode(folder) == 0o700, f"{folder}: {oct(_mode(folder))}"


def test_a_fresh_var_folder_is_owner_only(tmp_path):
    """var/ holds the SQLite database (notes, results); settings create it on first use."""
    var_dir = tmp_path / "var"
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            # The SQLite default (not this run's DATABASE_URL): that is what puts the database under var/.
            **{key: value for key, value in os.environ.items() if key != "DATABASE_URL"},
            "MELANOMA_VAR_DIR": str(var_dir),
            "DJANGO_SETTINGS_MODULE": "melanoma_site.settings.development",
        },
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _mode(var_dir) == 0o700
