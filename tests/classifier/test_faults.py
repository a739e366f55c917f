"""Faults with real processes: a Celery worker (prefork, as in production) in its own process, killed with
SIGKILL in the middle of a task; a Redis server restarted under a running worker.

The worker runs against this test run's database, queue and media folder. To stop it mid-task without any
mock, the stored photo is replaced by a named pipe: the task blocks reading it until the test writes the
bytes, so the test knows exactly where the task is when it kills the process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.db import connection

from bench.realstack import children
from classifier.models import Prediction
from classifier.services.prediction_writes import prediction_create
from melanoma_site.celery import app as celery_app
from melanoma_site.embedded_redis import start_embedded_redis
from tests.conftest import wait_for_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FINISHED = {Prediction.Status.DONE, Prediction.Status.FAILED}


def _database_url() -> str:
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{database['NAME']}"
    auth = database["USER"] + (f":{database['PASSWORD']}" if database.get("PASSWORD") else "")
    return f"postgres://{auth}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"


def _publish_to(url: str) -> None:
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app.conf.broker_url = url


@pytest.fixture
def start_worker_process(isolated_services, private_media, tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `celery worker` (prefork, 1 process) as production does, on this run's database/queue/media."""
    started: list[subprocess.Popen] = []

    def start(redis_url: str | None = None) -> subprocess.Popen:
        log_path = tmp_path / f"worker-{len(started)}.log"
        env = {
            **os.environ,
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": redis_url or isolated_services["redis_url"],
            "MELANOMA_CELERY_QUEUE": isolated_services["queue"],
            "MELANOMA_MEDIA_ROOT": str(private_media),
            "CACHE_KEY_PREFIX": isolated_services["queue"],
        }
        command = [sys.executable, "-m", "celery", "-A", "melanoma_site", "worker", "--pool", "prefork"]
        command += ["--concurrency", "1", "--loglevel", "INFO", "--without-mingle", "--without-gossip"]
        process = subprocess.Popen(  # noqa: S603
            command, cwd=settings.BASE_DIR, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT
        )
        started.append(process)
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()[-2000:]
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.2)
        process.log_path = log_path  # type: ignore[attr-defined]
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_worker_killed_mid_task_redelivers_and_completes_once(
    start_worker_process, active_model, alice, real_photo_bytes, private_media, broker_outage_free
):
    prediction = prediction_create(user=alice, upload=real_photo_bytes)  # queued; no worker runs yet
    stored = private_media / prediction.image.name
    photo = stored.read_bytes()
    stored.unlink()
    os.mkfifo(stored)  # the task will block reading the photo until we write it

    worker = start_worker_process()
    running = wait_for_status(prediction.pk, {Prediction.Status.RUNNING, *FINISHED})
    assert running.status == Prediction.Status.RUNNING
    (child,) = children(worker.pid)
    os.kill(child, signal.SIGKILL)  # mid-task: the row is claimed, the message not yet acknowledged

    # The worker replaces the dead process and the message comes back (acks_late + reject_on_worker_lost);
    # the redelivered task reclaims the row and blocks on the pipe again. Now let it read the photo.
    deadline = time.monotonic() + 60
    while not any(pid != child for pid in children(worker.pid)):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    writer = threading.Thread(target=lambda: stored.write_bytes(photo), daemon=True)
    writer.start()

    done = wait_for_status(prediction.pk, FINISHED)
    writer.join(timeout=10)
    assert done.status == Prediction.Status.DONE, (done.error, worker.log_path.read_text()[-3000:])
    assert done.attempts == 2  # claimed by the killed run and by the redelivery, completed once
    assert 0.0 <= done.melanoma_probability <= 1.0
    assert "WorkerLostError" in worker.log_path.read_text() or "exited with" in worker.log_path.read_text()


@pytest.fixture
def broker_outage_free(isolated_services) -> Iterator[None]:
    """Restore the publisher's broker URL after a test that changed it."""
    yield
    _publish_to(isolated_services["redis_url"])


def test_redis_restart_under_a_running_worker(
    start_worker_process, active_model, alice, make_upload, broker_outage_free
):
    redis_server = start_embedded_redis()
    port = int(redis_server.url.rsplit(":", 1)[1].split("/")[0])
    try:
        _publish_to(redis_server.url)
        start_worker_process(redis_server.url)
        before = wait_for_status(prediction_create(user=alice, upload=make_upload(seed=1)).pk, FINISHED)
        assert before.status == Prediction.Status.DONE

        redis_server.stop()
        time.sleep(1)
        redis_server = start_embedded_redis(port=port)  # same address, empty: a restart without persistence

        after = wait_for_status(prediction_create(user=alice, upload=make_upload(seed=2)).pk, FINISHED, timeout_s=90)
        assert after.status == Prediction.Status.DONE, after.error
    finally:
        redis_server.stop()


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_broken_active_model_fails_predictions_with_a_reason_site_stays_up_and_activation_recovers(
    damage, client, active_model, model_dir, alice, make_upload, tmp_path
):
    """The active model file missing or overwritten: each prediction fails with a reason, pages still load,
    /healthz says 503 and what is wrong; activating a good version and retrying recovers."""
    import shutil

    from classifier.inference import clear_cache
    from classifier.services.model_versions import model_version_activate, model_version_register
    from classifier.services.prediction_runs import prediction_run
    from classifier.services.prediction_writes import prediction_retry

    broken_dir = tmp_path / "broken-model"
    shutil.copytree(model_dir, broken_dir)
    card = broken_dir / "model_card.json"
    card.write_text(card.read_text().replace(active_model.version, "broken-model"))
    broken = model_version_register(model_dir=broken_dir, activate=True)
    if damage == "missing":
        (broken_dir / "model.tflite").unlink()
    else:
        (broken_dir / "model.tflite").write_bytes(b"this is not a model " * 100)
    clear_cache()

    failed = prediction_run(prediction_id=prediction_create(user=alice, upload=make_upload()).pk)
    assert failed.status == Prediction.Status.FAILED
    assert "broken-model" in failed.error and "cannot be loaded" in failed.error
    assert client.get("/").status_code == 200  # the site stays up
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["checks"]["model"]["ok"] is False
    assert health.json()["checks"]["model"]["version"] == broken.version
    assert ("no model.tflite" if damage == "missing" else "corrupt") in health.json()["checks"]["model"]["error"]

    model_version_activate(model_version=active_model)
    assert client.get("/healthz").json()["checks"]["model"]["ok"] is True
    prediction_retry(prediction=failed)
    recovered = prediction_run(prediction_id=failed.pk)
    assert recovered.status == Prediction.Status.DONE, recovered.error
