"""Part 2: worker throughput with 1 and 2 worker processes on a pre-filled queue; part 4's worker start-up.

The rows are created through the prediction service while no worker runs, so their messages wait in our
own Redis; then a real Celery worker (prefork, `--concurrency N`) is started and drains them. Throughput is
taken from the rows' own `completed_at` stamps, leaving out the first completions (process start, model
load), so neither the polling here nor the start-up enters it. Between repeats the same rows are re-queued
with the admin's re-run service.
"""

from __future__ import annotations

import time
from datetime import datetime

from bench.common import Results, SampleImage, log, median
from melanoma_site.stack import Stack

RUN_TIMEOUT_S = 300.0


def _create_rows(user, image: SampleImage, count: int) -> list[int]:
    """`count` queued predictions; the first from the real upload, the rest from its stored copy (the
    worker reads the stored copy either way, and re-preparing a 12 MP photo N times only slows set-up)."""
    from django.core.files.storage import default_storage  # noqa: PLC0415

    from classifier.services.prediction_writes import prediction_create  # noqa: PLC0415

    first = prediction_create(user=user, upload=image.data)
    with default_storage.open(first.image.name, "rb") as stored:
        stored_copy = stored.read()
    ids = [first.pk]
    for _ in range(count - 1):
        ids.append(prediction_create(user=user, upload=stored_copy).pk)
    return ids


def _requeue(ids: list[int]) -> None:
    from classifier.models import Prediction  # noqa: PLC0415
    from classifier.services.prediction_writes import prediction_rerun  # noqa: PLC0415

    for prediction in Prediction.objects.filter(pk__in=ids):
        prediction_rerun(prediction=prediction)


def _wait_all_finished(stack: Stack, ids: list[int], process) -> list[tuple[str, datetime]]:
    from classifier.models import Prediction  # noqa: PLC0415

    finished = Prediction.FINISHED_STATUSES
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        if Prediction.objects.filter(pk__in=ids, status__in=finished).count() == len(ids):
            return list(Prediction.objects.filter(pk__in=ids).values_list("status", "completed_at"))
        if process.poll() is not None:
            raise RuntimeError(f"worker exited ({process.returncode}): {stack.log_tail('worker')}")
        time.sleep(0.05)
    raise RuntimeError(f"worker did not finish {len(ids)} predictions in {RUN_TIMEOUT_S:g} s")


def bench_worker(
    results: Results,
    stack: Stack,
    image: SampleImage,
    *,
    n_predictions: int,
    repeats: int,
    concurrencies: tuple[int, ...] = (1, 2),
) -> None:
    from django.contrib.auth import get_user_model  # noqa: PLC0415

    user = get_user_model().objects.create_user(username="bench-worker", password="bench-worker-password-1")
    log(f"worker: creating {n_predictions} queued predictions through the service (no worker running)")
    ids = _create_rows(user, image, n_predictions)
    first_run = True
    startups: list[float] = []
    for concurrency in concurrencies:
        skip = 2 * concurrency  # first completions include process start and model load
        rates = []
        for repeat in range(repeats):
            if not first_run:
                _requeue(ids)
            first_run = False
            log(f"worker: concurrency {concurrency}, run {repeat + 1}/{repeats}")
            started_wall = time.time()
            # Not waiting for "ready.": the start-up is part of what is measured (first completed_at).
            process = stack.start_worker(concurrency=concurrency, beat=False, wait=False)
            try:
                rows = _wait_all_finished(stack, ids, process)
            finally:
                stack.stop_worker()
            failed = sum(1 for status, _ in rows if status != "done")
            if failed:
                raise RuntimeError(f"{failed} predictions failed in the worker benchmark: {stack.log_tail('worker')}")
            stamps = sorted(completed.timestamp() for _, completed in rows)
            rates.append((len(stamps) - 1 - skip) / (stamps[-1] - stamps[skip]))
            if concurrency == 1:
                startups.append(stamps[0] - started_wall)
        throughput = median(rates)
        results.add(
            "2 worker",
            f"throughput, {concurrency} worker process{'es' if concurrency > 1 else ''}",
            throughput,
            "predictions/s",
            f"prefork --concurrency {concurrency}; queue of {n_predictions} pre-filled; median of {repeats} runs; "
            f"stored copy of the {image.label}",
        )
        results.summary[f"worker_per_s_{concurrency}"] = throughput
    if startups:
        results.add(
            "4 memory",
            "worker start to first prediction",
            median(startups),
            "s",
            f"Popen of `celery worker` -> first completed_at, queue pre-filled; median of {len(startups)}",
        )
