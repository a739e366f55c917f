"""Faults with real processes: a Celery worker (prefork, as in production) in its own process, killed with
SIGKILL in the middle of a task; a Redis server restarted under a running worker.

The worker runs against this test run's database, queue and media folder. To stop it mid-task without any
mock, the stored photo is replaced by a named pipe: the task blocks reading it until the test writes the
bytes, so the test knows exactly where the task is when it kills the process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.db import connection

from classifier.models import Prediction
from classifier.services.prediction_writes import prediction_create
from melanoma_site.stack import Stack, isolated_env
from tests.conftest import wait_for_status
from tests.processes import publish_to, run_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FINISHED = {Prediction.Status.DONE, Prediction.Status.FAILED}
# With beat: the sweep every 2 s re-sends `running` rows past the hard limit + 30 s and `queued` ones after 5 s.
FAST_SWEEP_ENV = {
    "MELANOMA_SWEEP_EVERY_S": "2",
    "MELANOMA_SWEEP_QUEUED_AFTER_S": "5",
    "MELANOMA_TASK_SOFT_TIME_LIMIT_S": "8",
    "MELANOMA_TASK_TIME_LIMIT_S": "10",
}


@pytest.fixture
def worker_stack(isolated_services, private_media, tmp_path) -> Iterator[Callable[..., Stack]]:
    """worker_stack(own_redis=False): the stack harness of `make run` (melanoma_site/stack.py) on this run's
    database, queue and media folder, with a real Celery worker (prefork, 1 process) as production runs it;
    with `own_redis`, on a redis-server of its own that the test can stop and start again."""
    stacks: list[Stack] = []

    def make(*, own_redis: bool = False, beat: bool = False, concurrency: int = 1) -> Stack:
        env = isolated_env(
            tmp_path / f"stack-{len(stacks)}",
            settings_module=os.environ["DJANGO_SETTINGS_MODULE"],
            database_url=run_database_url(),
            queue=isolated_services["queue"],
            media_root=private_media,
            **(FAST_SWEEP_ENV if beat else {}),
        )
        stack = Stack(
            env=env,
            var_dir=tmp_path / f"stack-{len(stacks)}" / "var",
            redis_url=None if own_redis else isolated_services["redis_url"],
            log_dir=tmp_path / f"stack-{len(stacks)}" / "logs",
            worker_concurrency=concurrency,
            beat=beat,
        )
        stacks.append(stack)
        stack.start_redis()
        return stack

    yield make
    for stack in stacks:
        stack.close()


def test_worker_killed_mid_task_redelivers_and_completes_once(
    worker_stack, active_model, alice, real_photo_bytes, private_media, broker_outage_free
):
    prediction = prediction_create(user=alice, upload=real_photo_bytes)  # queued; no worker runs yet
    stored = private_media / prediction.image.name
    photo = stored.read_bytes()
    stored.unlink()
    os.mkfifo(stored)  # the task will block reading the photo until we write it

    stack = worker_stack()
    stack.start_worker()
    running = wait_for_status(prediction.pk, {Prediction.Status.RUNNING, *FINISHED})
    assert running.status == Prediction.Status.RUNNING
    (child,) = stack.worker_children()
    os.kill(child, signal.SIGKILL)  # mid-task: the row is claimed, the message not yet acknowledged

    # The worker replaces the dead process and the message comes back (acks_late + reject_on_worker_lost);
    # the redelivered task reclaims the row and blocks on the pipe again. Now let it read the photo.
    deadline = time.monotonic() + 60
    while not any(pid != child for pid in stack.worker_children()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    writer = threading.Thread(target=lambda: stored.write_bytes(photo), daemon=True)
    writer.start()

    done = wait_for_status(prediction.pk, FINISHED)
    writer.join(timeout=10)
    assert done.status == Prediction.Status.DONE, (done.error, stack.log_tail("worker"))
    assert done.attempts == 2  # claimed by the killed run and by the redelivery, completed once
    assert 0.0 <= done.score <= 1.0
    assert "WorkerLostError" in stack.log("worker") or "exited with" in stack.log("worker")


@pytest.fixture
def broker_outage_free(isolated_services) -> Iterator[None]:
    """Restore the publisher's broker URL after a test that changed it."""
    yield
    publish_to(isolated_services["redis_url"])


def test_redis_restart_under_a_running_worker(worker_stack, active_model, alice, make_upload, broker_outage_free):
    stack = worker_stack(own_redis=True)
    publish_to(stack.redis_url)
    stack.start_worker()
    before = wait_for_status(prediction_create(user=alice, upload=make_upload(seed=1)).pk, FINISHED)
    assert before.status == Prediction.Status.DONE

    stack.stop_redis()
    time.sleep(1)
    stack.start_redis()  # same address, empty: a restart without persistence

    after = wait_for_status(prediction_create(user=alice, upload=make_upload(seed=2)).pk, FINISHED, timeout_s=90)
    assert after.status == Prediction.Status.DONE, after.error


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_broken_active_model_fails_predictions_with_a_reason_site_stays_up_and_activation_recovers(
    damage, client, active_model, model_dir, alice, staff, make_upload, tmp_path
):
    """The active model file missing or overwritten: each prediction fails with a reason, pages still load,
    /healthz says 503 and what is wrong; activating a good version and retrying recovers."""
    import shutil

    from classifier.inference import clear_cache
    from classifier.services.model_versions import model_version_activate, model_version_register
    from classifier.services.prediction_runs import MODEL_UNAVAILABLE_REASON, prediction_run
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
    assert failed.error == MODEL_UNAVAILABLE_REASON  # no path or exception text for the user
    assert client.get("/").status_code == 200  # the site stays up
    client.force_login(staff)  # /healthz details are for staff
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["details"]["model"]["ok"] is False
    assert health.json()["details"]["model"]["version"] == broken.version
    assert ("no model.tflite" if damage == "missing" else "not usable") in health.json()["details"]["model"]["error"]

    model_version_activate(model_version=active_model)
    assert client.get("/healthz").json()["checks"]["model"] == "ok"
    prediction_retry(prediction=failed)
    recovered = prediction_run(prediction_id=failed.pk)
    assert recovered.status == Prediction.Status.DONE, recovered.error


def _feed_until_finished(path, data: bytes, prediction_id: int) -> threading.Thread:
    """Each (re)delivered attempt opens the named pipe again: feed whoever opens it until the row is finished."""

    def feed() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and Prediction.objects.get(pk=prediction_id).status not in FINISHED:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # nobody has it open for reading yet
                time.sleep(0.1)
                continue
            os.set_blocking(fd, True)
            with contextlib.suppress(OSError), os.fdopen(fd, "wb") as pipe:
                pipe.write(data)
        connection.close()

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread


def test_redis_lost_while_a_task_runs_worker_survives_and_prediction_completes(
    worker_stack, active_model, alice, real_photo_bytes, private_media, broker_outage_free
):
    """Issue 11.1: Redis shut down while a task (acks_late: its message unacknowledged) is running. Before the
    fix the worker died with `Unrecoverable error: AttributeError("'NoneType' object has no attribute
    'hostname'")` while restoring the unacknowledged message. Wanted: the worker process survives, and the
    prediction completes once Redis is back (a restart without persistence: the sweep re-sends it)."""
    # Two pool processes as `make run` has: one blocked in the task, the consumer polling (BRPOP) for the other.
    stack = worker_stack(own_redis=True, beat=True, concurrency=2)
    publish_to(stack.redis_url)
    prediction = prediction_create(user=alice, upload=real_photo_bytes)
    stored = private_media / prediction.image.name
    photo = stored.read_bytes()
    stored.unlink()
    os.mkfifo(stored)

    worker = stack.start_worker()
    running = wait_for_status(prediction.pk, {Prediction.Status.RUNNING, *FINISHED})
    assert running.status == Prediction.Status.RUNNING

    stack.stop_redis()  # mid-task
    feeder = _feed_until_finished(stored, photo, prediction.pk)
    time.sleep(8)  # the worker notices (socket closed) and tries to reconnect
    assert worker.poll() is None, stack.log_tail("worker")
    stack.start_redis()  # same port, empty

    done = wait_for_status(prediction.pk, FINISHED, timeout_s=120)
    feeder.join(timeout=10)
    assert done.status == Prediction.Status.DONE, (done.error, stack.log_tail("worker"))
    assert worker.poll() is None, stack.log_tail("worker")
    assert "Unrecoverable error" not in stack.log("worker")
