"""Commands on a runtime-only install (requirements.txt alone, what `make run` installs).

Each command runs in a fresh process in which TensorFlow, Keras, scikit-learn, matplotlib and tqdm cannot be
imported (tests.runtime_only). predict_images must work; the training commands must say in one line what to
install instead of showing an ImportError traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from PIL import Image

from tests.conftest import encode_image, lesion_pixels
from tests.processes import run_database_url

INSTALL_LINE = "pip install -r requirements-train.txt"


def run_runtime_only(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.runtime_only", "manage", *args],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        env={**os.environ, "DATABASE_URL": run_database_url()},
        timeout=300,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_predict_images_needs_only_the_runtime(active_model, tmp_path):
    photo = tmp_path / "mole.jpg"
    photo.write_bytes(encode_image(Image.fromarray(lesion_pixels()), "JPEG"))

    result = run_runtime_only("predict_images", str(photo))

    assert result.returncode == 0, result.stderr[-3000:]
    assert str(photo) in result.stdout
    assert f"Model {active_model.version}" in result.stdout
    assert "1 scored" in result.stdout


@pytest.mark.django_db(transaction=True)
def test_system_checks_need_only_the_runtime():
    result = run_runtime_only("check")  # imports the URLconf, every view, the admin and the API
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no issues" in result.stdout


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", ["evaluate_model", "train_model"])
def test_training_commands_say_what_to_install(command, tmp_path):
    result = run_runtime_only(command, "--data", str(tmp_path))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("CommandError")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert command in errors[0]
    assert errors[0].endswith(INSTALL_LINE)
    assert "scikit-learn" in errors[0]
