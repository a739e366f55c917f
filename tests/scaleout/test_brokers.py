"""The fault scenarios of bench/faults.py on both brokers, as pytest tests: Redis (the embedded default) and
RabbitMQ (the production broker, a node of the test's own so that restarting it disturbs nobody else).

- the whole worker SIGKILLed mid-task, then started again: the prediction completes, once;
- the broker restarted while a task runs: the prediction completes (0 lost);
- the broker down when a photo is uploaded: the upload is accepted, the sweep sends it once the broker is
  back, it completes.
Plus the queues: housekeeping goes to its own queue, and a warm shutdown (SIGTERM) finishes the running task.

"Mid-task" without a mock: the stored photo is replaced by a named pipe, so the task blocks reading it until the
test writes the bytes (as in tests/classifier/test_faults.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from classifier.models import Prediction
from classifier.services.prediction_writes import prediction_create
from melanoma_site.celery import app as celery_app
from melanoma_site.embedded_rabbitmq import rabbitmq_available
from melanoma_site.stack import Stack, isolated_env
from tests.conftest import wait_for_status
from tests.processes import publish_to, run_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FINISHED = {Prediction.Status.DONE, Prediction.Status.FAILED}
# Short limits so that each recovery path shows within seconds (as bench/faults.py FAULT_ENV).
FAULT_ENV = {
    "MELANOMA_TASK_SOFT_TIME_LIMIT_S": "8",
    "MELANOMA_TASK_TIME_LIMIT_S": "10",
    "MELANOMA_SWEEP_EVERY_S": "2",
    "MELANOMA_SWEEP_QUEUED_AFTER_S": "4",
    "MELANOMA_VISIBILITY_TIMEOUT_S": "12",
}
BROKERS = [
    "redis",
    pytest.param("rabbitmq", marks=pytest.mark.skipif(bool(rabbitmq_available()), reason=rabbitmq_available() or "")),
]


@pytest.fixture
def broker_stack(isolated_services, private_media, tmp_path) -> Iterator[Callable[..., Stack]]:
    """broker_stack(broker): the harness of `make run` on this run's database, queues and media folder, with a
    broker of its own (redis-server, or a RabbitMQ node) that the test can stop and start, and beat (the sweep)
    in the worker."""
    stacks: list[Stack] = []

    def make(broker: str, **stack_options) -> Stack:
        root = tmp_path / f"stack-{len(stacks)}"
        env = isolated_env(
            root,
            settings_module=os.environ["DJANGO_SETTINGS_MODULE"],
            database_url=run_database_url(),
            queue=isolated_services["queue"],
            media_root=private_media,
            **FAULT_ENV,
        )
        options = {"worker_concurrency": 1, "beat": True, **stack_options}
        stack = Stack(env=env, var_dir=root / "var", log_dir=root / "logs", broker=broker, **options)
        stacks.append(stack)
        stack.start_redis()
        stack.start_broker()
        publish_to(stack.broker_url)
        return stack

    yield make
    publish_to(isolated_services["redis_url"])
    for stack in stacks:
        stack.close()


def _block_on_photo(private_media: Path, prediction: Prediction) -> Callable[[], None]:
    """Replace the stored photo by a named pipe; returns a function that feeds the photo through it to every
    reader (each redelivered attempt opens it again) until the row is finished."""
    stored = private_media / prediction.image.name
    photo = stored.read_bytes()
    stored.unlink()
    os.mkfifo(stored)

    def release() -> None:
        def feed() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if Prediction.objects.filter(pk=prediction.pk, status__in=FINISHED).exists():
                    return
                try:
                    fd = os.open(stored, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:  # no reader yet
                    time.sleep(0.1)
                    continue
                os.set_blocking(fd, True)
                with os.fdopen(fd, "wb") as pipe, contextlib.suppress(BrokenPipeError):
                    pipe.write(photo)
                time.sleep(0.2)

        threading.Thread(target=feed, daemon=True).start()

    return release


def _wait_running(prediction: Prediction) -> None:
    running = wait_for_status(prediction.pk, {Prediction.Status.RUNNING, *FINISHED}, timeout_s=60)
    assert running.status == Prediction.Status.RUNNING
    time.sleep(0.5)  # inside open() on the pipe


@pytest.mark.parametrize("broker", BROKERS)
def test_whole_worker_sigkilled_mid_task_completes_once(broker, broker_stack, active_model, alice, make_upload,
                                                         private_media):  # fmt: skip
    stack = broker_stack(broker)
    prediction = prediction_create(user=alice, upload=make_upload(seed=1))
    release = _block_on_photo(private_media, prediction)
    stack.start_worker()
    _wait_running(prediction)
    stack.stop_worker(sig=signal.SIGKILL)  # parent and pool at once: nobody rejects the message
    release()
    stack.start_worker()
    done = wait_for_status(prediction.pk, FINISHED, timeout_s=120)
    assert done.status == Prediction.Status.DONE, (done.error, stack.log_tail("worker"))
    assert done.attempts == 2  # the killed run and the one that finished: completed once


@pytest.mark.parametrize("broker", BROKERS)
def test_broker_restart_while_a_task_runs_loses_nothing(broker, broker_stack, active_model, alice, make_upload,
                                                        private_media):  # fmt: skip
    stack = broker_stack(broker)
    prediction = prediction_create(user=alice, upload=make_upload(seed=2))
    release = _block_on_photo(private_media, prediction)
    stack.start_worker()
    _wait_running(prediction)
    stack.stop_broker(crash=True)
    time.sleep(2)
    stack.start_broker()
    release()
    done = wait_for_status(prediction.pk, FINISHED, timeout_s=120)
    assert done.status == Prediction.Status.DONE, (done.error, stack.log_tail("worker"))
    # And the worker carries on with new work on the restarted broker.
    after = wait_for_status(prediction_create(user=alice, upload=make_upload(seed=3)).pk, FINISHED, timeout_s=90)
    assert after.status == Prediction.Status.DONE, after.error


@pytest.mark.parametrize("broker", BROKERS)
def test_broker_down_at_upload_is_accepted_and_completes_after(broker, broker_stack, active_model, alice,
                                                               make_upload):  # fmt: skip
    stack = broker_stack(broker)
    stack.start_worker()
    stack.stop_broker(crash=True)
    started = time.monotonic()
    prediction = prediction_create(user=alice, upload=make_upload(seed=4))  # the send fails; the row stays
    assert time.monotonic() - started < 10  # the upload does not hang on the dead broker
    assert Prediction.objects.get(pk=prediction.pk).status == Prediction.Status.QUEUED
    time.sleep(1)
    stack.start_broker()
    done = wait_for_status(prediction.pk, FINISHED, timeout_s=120)  # re-sent by the sweep (housekeeping queue)
    assert done.status == Prediction.Status.DONE, (done.error, stack.log_tail("worker"))


def test_housekeeping_runs_on_its_own_queue_and_inference_on_the_other(broker_stack, isolated_services):
    from celery import current_app

    assert (
        current_app.amqp.router.route({}, "classifier.predictions_sweep")["queue"].name
        == (isolated_services["housekeeping_queue"])
    )
    assert current_app.amqp.router.route({}, "classifier.prediction_run")["queue"].name == isolated_services["queue"]


def test_inference_only_worker_never_takes_housekeeping(broker_stack, active_model, alice, make_upload):
    """A worker started with `-Q <inference queue>` completes predictions while the sweep's messages wait."""
    stack = broker_stack("redis", beat=False)
    stack.start_worker(queues=[stack.env["MELANOMA_CELERY_QUEUE"]])
    celery_app.send_task("classifier.predictions_sweep")
    done = wait_for_status(prediction_create(user=alice, upload=make_upload(seed=5)).pk, FINISHED, timeout_s=60)
    assert done.status == Prediction.Status.DONE
    import redis

    client = redis.Redis.from_url(stack.broker_url)
    try:
        assert client.llen(f"{stack.env['MELANOMA_CELERY_QUEUE']}.housekeeping") == 1  # still waiting
    finally:
        client.close()


def test_warm_shutdown_finishes_the_running_task(broker_stack, active_model, alice, make_upload, private_media):
    stack = broker_stack("redis", beat=False)
    prediction = prediction_create(user=alice, upload=make_upload(seed=6))
    release = _block_on_photo(private_media, prediction)
    worker = stack.start_worker()
    _wait_running(prediction)
    stop = threading.Thread(target=stack.stop_worker)  # SIGTERM, as systemd or a deploy would send
    stop.start()
    time.sleep(2)  # the worker is shutting down, the task still waits for its photo
    assert worker.poll() is None
    release()
    stop.join(timeout=60)
    done = Prediction.objects.get(pk=prediction.pk)
    assert done.status == Prediction.Status.DONE, (done.error, stack.log_tail("worker"))
    assert done.attempts == 1  # finished by the run that was shutting down, not redelivered
    assert worker.returncode == 0
