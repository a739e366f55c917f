"""The web process and the worker run on requirements.txt alone: no TensorFlow, Keras, scikit-learn or tqdm.

TensorFlow in the worker is slow to import, large in memory and hangs Celery's forked processes; and `make run`
does not install requirements-train.txt. So every runtime module is imported in a fresh process (this test
process has TensorFlow loaded already) and the test fails naming the module that pulled a training package in.
"""

from __future__ import annotations

import json
import subprocess
import sys

from django.conf import settings

from tests.runtime_only import FORBIDDEN_IN_RUNTIME


def test_runtime_modules_import_no_training_package(model_dir):
    result = subprocess.run(
        [sys.executable, "-m", "tests.runtime_only", "imports", str(model_dir)],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert report["pulled_in"] == {}, f"runtime modules importing {', '.join(FORBIDDEN_IN_RUNTIME)}"
    assert report["loaded"] == []
    # The walk really reached what the worker and the web process run.
    expected = {"lesion_model.scorer", "lesion_model.decode", "classifier.inference", "classifier.tasks"}
    expected |= {"classifier.images", "classifier.management.commands.predict_images", settings.ROOT_URLCONF}
    assert expected <= set(report["imported"])
