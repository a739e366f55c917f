"""Part 3: upload (API POST) -> completed_at through the real stack, at concurrency 1 and 8; part 4's
resident memory of the web and worker processes and the TensorFlow check.

The stack: gunicorn serving melanoma_site.wsgi, our own redis-server, a prefork Celery worker, the SQLite
file (or BENCH_DATABASE_URL). Each upload's latency is the row's `completed_at` (written by the worker)
minus the client's wall clock just before it sent the POST: one clock, one machine, and no polling delay in
the figure. One thread here watches all pending rows and releases each client as soon as its row is done.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.common import (
    Results,
    SampleImage,
    litert_loaded,
    log,
    median,
    percentile,
    rss_mib,
    tensorflow_loaded,
)
from melanoma_site.stack import Stack, child_pids

WEB_WORKERS = 2
WORKER_CONCURRENCY = 2
READY_TIMEOUT_S = 120.0
ROW_TIMEOUT_S = 120.0


@dataclass
class Upload:
    sent_at: float  # client wall clock before the POST
    responded_at: float  # ... after the 202
    created_at: float  # row timestamps (server clocks = the same machine clock)
    started_at: float
    completed_at: float
    inference_ms: float
    status: str

    @property
    def e2e_ms(self) -> float:
        return (self.completed_at - self.sent_at) * 1000.0

    @property
    def post_ms(self) -> float:
        return (self.responded_at - self.sent_at) * 1000.0

    @property
    def queue_to_done_ms(self) -> float:
        return (self.completed_at - self.created_at) * 1000.0


class RowWatcher:
    """One thread polls the database for all pending rows; clients wait on an Event, not on a sleep."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self._pending: dict[int, tuple[threading.Event, list]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="row-watcher", daemon=True)

    def __enter__(self) -> RowWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def wait(self, prediction_id: int, timeout_s: float) -> tuple[str, float, float, float, float]:
        event, slot = threading.Event(), []
        with self._lock:
            self._pending[prediction_id] = (event, slot)
        if not event.wait(timeout_s):
            raise RuntimeError(f"prediction {prediction_id} did not finish within {timeout_s:g} s")
        return slot[0]

    def _run(self) -> None:
        from django.db import connection  # noqa: PLC0415

        from classifier.models import Prediction  # noqa: PLC0415

        finished = Prediction.FINISHED_STATUSES
        try:
            while not self._stop.is_set():
                with self._lock:
                    ids = list(self._pending)
                if ids:
                    rows = Prediction.objects.filter(pk__in=ids, status__in=finished).values_list(
                        "pk", "status", "created_at", "started_at", "completed_at", "inference_ms"
                    )
                    for pk, status, created_at, started_at, completed_at, inference_ms in rows:
                        with self._lock:
                            event, slot = self._pending.pop(pk)
                        started = (started_at or completed_at).timestamp()
                        stamps = (created_at.timestamp(), started, completed_at.timestamp(), inference_ms or 0.0)
                        slot.append((status, *stamps))
                        event.set()
                time.sleep(self.interval_s)
        finally:
            connection.close()


def _wait_ready(client, stack: Stack, web, started: float) -> float:
    while time.monotonic() - started < READY_TIMEOUT_S:
        if web.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {stack.log_tail('web')}")
        try:
            if client.get("/healthz").status_code == 200:
                return time.monotonic() - started
        except Exception:  # noqa: BLE001, S110 - not listening yet
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the web server was not healthy within {READY_TIMEOUT_S:g} s: {stack.log_tail('web')}")


def _upload_once(client, watcher: RowWatcher, image: SampleImage) -> Upload:
    sent_at = time.time()
    response = client.post(
        "/api/predictions/", files={"image": ("photo.jpg", image.data, "image/jpeg")}, data={"body_site": "trunk"}
    )
    responded_at = time.time()
    if response.status_code != 202:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text[:500]}")
    status, created_at, started_at, completed_at, inference_ms = watcher.wait(response.json()["id"], ROW_TIMEOUT_S)
    return Upload(sent_at, responded_at, created_at, started_at, completed_at, inference_ms, status)


def _run_at(concurrency: int, total: int, make_client, watcher: RowWatcher, image: SampleImage) -> list[Upload]:
    per_client = [total // concurrency + (1 if index < total % concurrency else 0) for index in range(concurrency)]

    def client_loop(count: int) -> list[Upload]:
        with make_client() as client:
            return [_upload_once(client, watcher, image) for _ in range(count)]

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return [upload for uploads in pool.map(client_loop, per_client) for upload in uploads]


def _process_memory(results: Results, role: str, parent_pid: int, *, expect_litert: bool) -> float:
    """RSS of the parent and each child; returns the largest single process (what one process costs)."""
    pids = [parent_pid, *child_pids(parent_pid)]
    sizes = {pid: rss_mib(pid) or 0.0 for pid in pids}
    tf_pids = [pid for pid in pids if tensorflow_loaded(pid)]
    litert = [pid for pid in pids if litert_loaded(pid)]
    results.add(
        "4 memory",
        f"{role} RSS after predictions (largest process)",
        max(sizes.values()),
        "MiB",
        "per process: "
        + ", ".join(f"{'parent' if pid == parent_pid else 'child'} {size:.0f}" for pid, size in sizes.items())
        + f"; sum {sum(sizes.values()):.0f} MiB (RSS counts pages shared after fork in each process)",
    )
    results.add(
        "4 memory",
        f"TensorFlow loaded in {role} processes",
        "yes" if tf_pids else "no",
        "",
        f"/proc/<pid>/maps of {len(pids)} processes; LiteRT mapped in {len(litert)}"
        + ("" if not expect_litert or litert else " (LiteRT not found: check the detector)"),
    )
    return max(sizes.values())


def bench_e2e(
    results: Results, stack: Stack, image: SampleImage, *, n_sequential: int, n_concurrent: int, warmup: int
) -> None:
    import httpx  # noqa: PLC0415
    from django.contrib.auth import get_user_model  # noqa: PLC0415

    from api_tokens.services import api_token_create  # noqa: PLC0415

    user = get_user_model().objects.create_user(username="bench-e2e", password="bench-e2e-password-1")
    token = api_token_create(user=user, name="bench")[1]

    def make_client() -> httpx.Client:
        return httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Token {token}"}, timeout=60.0)

    log("e2e: starting gunicorn and a Celery worker")
    started = time.monotonic()
    web = stack.start_web(workers=WEB_WORKERS, wait=False)
    worker = stack.start_worker(concurrency=WORKER_CONCURRENCY, beat=True, wait=False)
    with make_client() as client:
        ready_s = _wait_ready(client, stack, web, started)
    results.add("4 memory", "web server start to healthy", ready_s, "s", f"gunicorn --workers {WEB_WORKERS}")

    with RowWatcher() as watcher:
        # Warm-up: each gunicorn worker and each worker child loads its code and the model once.
        _run_at(WEB_WORKERS * WORKER_CONCURRENCY, warmup, make_client, watcher, image)
        for concurrency, total in ((1, n_sequential), (8, n_concurrent)):
            log(f"e2e: {total} uploads at concurrency {concurrency}")
            started = time.monotonic()
            uploads = _run_at(concurrency, total, make_client, watcher, image)
            elapsed = time.monotonic() - started
            failed = [upload for upload in uploads if upload.status != "done"]
            if failed:
                raise RuntimeError(f"{len(failed)} uploads failed: {stack.log_tail('worker-e2e')}")
            e2e = [upload.e2e_ms for upload in uploads]
            p50, p95 = percentile(e2e, 50), percentile(e2e, 95)

            def stage(values: list[float]) -> str:
                return f"{median(values):.0f}"

            note = (
                f"{total} uploads of the {image.label}, {total / elapsed:.1f} uploads/s; medians (ms): "
                f"POST->202 {stage([u.post_ms for u in uploads])}, "
                f"POST->created_at {stage([(u.created_at - u.sent_at) * 1e3 for u in uploads])}, "
                f"created_at->started_at {stage([(u.started_at - u.created_at) * 1e3 for u in uploads])}, "
                f"started_at->completed_at {stage([(u.completed_at - u.started_at) * 1e3 for u in uploads])} "
                f"(inference_ms {stage([u.inference_ms for u in uploads])})"
            )
            results.add("3 e2e", f"upload -> completed_at p50, concurrency {concurrency}", p50, "ms", note)
            results.add("3 e2e", f"upload -> completed_at p95, concurrency {concurrency}", p95, "ms")
            if concurrency == 1:
                results.summary["e2e_p50_ms"] = p50
                results.summary["e2e_p95_ms"] = p95

    _process_memory(results, "web (gunicorn)", web.pid, expect_litert=False)
    results.summary["worker_rss_mib"] = _process_memory(results, "worker (celery)", worker.pid, expect_litert=True)
