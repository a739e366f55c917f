"""Faults against the real stack (bench/realstack.py), one scenario after another; prints the outcome of each.

    .venv/bin/python -m bench.faults [--model DIR] [--only NAME ...] [--broker redis|rabbitmq|both]

Scenarios (each uploads through the JSON API as a signed-in user and follows the row in PostgreSQL):
  pool-child-sigkill   the worker's pool process is SIGKILLed mid-task: redelivered at once, completes once
  worker-sigkill       the whole worker (parent and pool) is SIGKILLed mid-task, then restarted: the unacked
                       message comes back after the visibility timeout (or the sweep re-queues the row)
  stuck-running        a row left `running` whose message is gone: the periodic sweep re-queues it
  redis-down-upload    an upload while the broker is down is accepted (202, `queued`) and completes once it is
                       back (the sweep re-sends its message); then the broker is restarted under the running
                       worker and a new upload completes: the worker reconnected
  redis-lost-mid-task  Redis shut down while a task runs (its message unacknowledged) and the other pool process
                       waits for work: the worker survives (issue 11.1: it used to die with "'NoneType' object
                       has no attribute 'hostname'"), and the prediction completes once Redis is back
  orphan-files         web workers SIGKILLed in the middle of uploads (files written, rows maybe never committed),
                       plus one planted orphan; all backdated by two hours: the periodic cleanup (every 3 s here,
                       hourly by default) deletes every file with no row, and no file of a row
  broker-restart-mid-task  the broker restarted while a task runs: the prediction still completes
  broken-model         the active model file missing, then corrupt: predictions fail with a plain reason (no
                       path, no exception text), pages stay up, /healthz is 503; activating the broken version
                       again is refused; activating a good version and retrying recovers

"Mid-task" without a mock: the stored photo of the upload is replaced by a named pipe, so the task blocks
reading it until the script writes the bytes; the script knows exactly where the task is when it kills.
Short limits make the scenarios quick: hard time limit 10 s, sweep every 3 s, `queued` re-sent after 8 s,
visibility timeout 20 s (`--default-settings`: the deployment's defaults, for the figures a deployment sees).
Every wait is bounded; a scenario that does not reach its end is reported FAIL.
The broker is Redis (its own redis-server) or RabbitMQ (its own node; `--broker both` runs every scenario on
each); Redis is the cache either way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.load import load_images
from bench.realstack import REPO, RealStack, log
from melanoma_site.stack import StackError

FINISHED = ("done", "failed")
FAULT_ENV = {
    "MELANOMA_TASK_SOFT_TIME_LIMIT_S": "8",
    "MELANOMA_TASK_TIME_LIMIT_S": "10",
    "MELANOMA_SWEEP_EVERY_S": "3",
    "MELANOMA_SWEEP_QUEUED_AFTER_S": "8",
    "MELANOMA_VISIBILITY_TIMEOUT_S": "20",
    "MELANOMA_ORPHAN_CLEANUP_EVERY_S": "3",
    "MELANOMA_UPLOAD_RATE_PER_MINUTE": "1000",
    "LOG_LEVEL": "INFO",  # the worker log tells which mechanism brought a message back
}

# Only what a load of scenarios needs; every reliability setting at its default.
DEFAULT_SETTINGS_ENV = {key: FAULT_ENV[key] for key in ("MELANOMA_UPLOAD_RATE_PER_MINUTE", "LOG_LEVEL")}


class Scenario:
    def __init__(self, stack: RealStack, client: httpx.Client, photo: bytes) -> None:
        self.stack = stack
        self.client = client
        self.photo = photo

    def upload(self) -> httpx.Response:
        return self.client.post("/api/predictions/", files={"image": ("mole.jpg", self.photo, "image/jpeg")})

    def row(self, pk: int) -> dict:
        rows = self.stack.query(
            "SELECT status, attempts, error, image, started_at, completed_at FROM classifier_prediction WHERE id = %s",
            (pk,),
        )
        if not rows:
            return {"status": "missing"}
        status, attempts, error, image, started_at, completed_at = rows[0]
        return {"status": status, "attempts": attempts, "error": error, "image": image, "completed_at": completed_at}

    def wait(self, pk: int, statuses: tuple[str, ...], timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            row = self.row(pk)
            if row["status"] in statuses or time.monotonic() > deadline:
                return row
            time.sleep(0.2)

    def block_on_photo(self, pk: int) -> Callable[[], None]:
        """Replace the stored photo by a named pipe; returns a function that feeds the photo through it."""
        path = self.stack.media_root / self.row(pk)["image"]
        data = path.read_bytes()
        path.unlink()
        os.mkfifo(path)
        self.blocked_path = path

        def release() -> None:
            # Each redelivered attempt opens the pipe again; feed whoever opens it until the row is finished.
            def feed() -> None:
                deadline = time.monotonic() + 240  # with --default-settings a re-sent task comes minutes later
                while time.monotonic() < deadline and self.row(pk)["status"] not in FINISHED:
                    with contextlib.suppress(OSError):
                        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                        with os.fdopen(fd, "wb") as pipe:
                            os.set_blocking(fd, True)
                            pipe.write(data)
                    time.sleep(0.1)

            threading.Thread(target=feed, daemon=True).start()

        return release


def _running_child(stack: RealStack, pk: int, scenario: Scenario, timeout_s: float = 30) -> int:
    """The pool process that is inside the task, i.e. that is opening or reading the photo's named pipe.

    Picking "a celery child" is not enough: with beat embedded (`-B`) the worker has a beat child too.
    """
    row = scenario.wait(pk, ("running", *FINISHED), timeout_s)
    if row["status"] != "running":
        raise RuntimeError(f"the task never started (row {row['status']})")
    pipe = str(scenario.blocked_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for pid in stack.worker_children():
            with contextlib.suppress(OSError):
                # Blocked in open() on the FIFO (no fd yet: the kernel waits for a writer), or reading it.
                if Path(f"/proc/{pid}/wchan").read_text() == "wait_for_partner" or any(
                    os.readlink(fd) == pipe for fd in Path(f"/proc/{pid}/fd").iterdir()
                ):
                    return pid
        time.sleep(0.05)
    raise RuntimeError("no pool process has the photo open")


def pool_child_sigkill(s: Scenario) -> tuple[bool, str]:
    s.stack.stop_worker()
    pk = s.upload().json()["id"]
    release = s.block_on_photo(pk)
    s.stack.start_worker()
    child = _running_child(s.stack, pk, s)
    os.kill(child, signal.SIGKILL)
    started = time.monotonic()
    deadline = time.monotonic() + 30
    while not any(pid != child for pid in s.stack.worker_children()) and time.monotonic() < deadline:
        time.sleep(0.1)
    release()
    row = s.wait(pk, FINISHED, 60)
    took = time.monotonic() - started
    worker_lost = "WorkerLostError" in s.stack.worker_log() or "exited with" in s.stack.worker_log()
    ok = row["status"] == "done" and row["attempts"] == 2 and worker_lost
    return ok, (
        f"row {row['status']} after {took:.1f} s, attempts {row['attempts']} (killed run + redelivery), "
        f"worker saw the loss: {worker_lost}"
    )


def worker_sigkill(s: Scenario) -> tuple[bool, str]:
    s.stack.stop_worker()
    pk = s.upload().json()["id"]
    release = s.block_on_photo(pk)
    s.stack.start_worker()
    _running_child(s.stack, pk, s)
    s.stack.stop_worker(sig=signal.SIGKILL)  # parent and pool at once: nobody rejects the message
    killed_at = time.monotonic()
    unacked = s.stack.query("SELECT 1")  # keep the database connection warm; the message sits in Redis' unacked
    del unacked
    release()
    s.stack.start_worker()
    row = s.wait(pk, FINISHED, 120)
    took = time.monotonic() - killed_at
    sweep_lines = [line for line in s.stack.worker_log().splitlines() if "Sweep: re-queued" in line]
    by_sweep = any(re.search(rf"re-queued \[[^\]]*\b{pk}\b", line) for line in sweep_lines)
    how = "the stale-running sweep re-queued it" if by_sweep else "the broker restored the unacked message"
    return row["status"] == "done", (
        f"row {row['status']} {took:.1f} s after the kill: {how} (visibility timeout 20 s, sweep of `running` "
        f"rows after 40 s); attempts {row['attempts']}"
    )


def stuck_running(s: Scenario) -> tuple[bool, str]:
    s.stack.stop_worker()
    pk = s.upload().json()["id"]
    from kombu import Connection  # noqa: PLC0415

    # The message is gone (as when a worker died holding it and the broker lost it) and the row says running.
    with Connection(s.stack.broker_url) as connection:
        connection.default_channel.queue_purge(s.stack.env["MELANOMA_CELERY_QUEUE"])
    s.stack.query(
        "UPDATE classifier_prediction SET status = 'running', attempts = 1, "
        "started_at = NOW() - INTERVAL '1 hour' WHERE id = %s",
        (pk,),
    )
    s.stack.start_worker()
    started = time.monotonic()
    row = s.wait(pk, FINISHED, 60)
    return row["status"] == "done", f"row {row['status']} {time.monotonic() - started:.1f} s after the worker started"


def redis_down_upload(s: Scenario) -> tuple[bool, str]:
    s.stack.stop_broker(crash=True)
    started = time.monotonic()
    response = s.upload()
    upload_s = time.monotonic() - started
    if response.status_code != 202:
        return False, f"upload while Redis is down answered {response.status_code}: {response.text[:200]}"
    pk = response.json()["id"]
    queued = s.row(pk)["status"]
    health = s.client.get("/healthz")
    time.sleep(3)
    s.stack.start_broker()  # Redis: same port, empty (no persistence); RabbitMQ: its application again
    back = time.monotonic()
    row = s.wait(pk, FINISHED, 150)  # with the default settings the sweep re-sends it after 60-90 s
    first = f"upload with the broker down: 202 in {upload_s:.1f} s, row {queued}, /healthz {health.status_code}; "
    first += f"row {row['status']} {time.monotonic() - back:.1f} s after the broker returned"

    # The broker restarted under a running worker: it reconnects and carries on.
    s.stack.stop_broker(crash=True)
    time.sleep(2)
    s.stack.start_broker()
    restarted = time.monotonic()
    after = s.upload()
    row2 = s.wait(after.json()["id"], FINISHED, 150) if after.status_code == 202 else {"status": after.status_code}
    second = (
        f"; broker restarted under the worker: next upload {row2['status']} in {time.monotonic() - restarted:.1f} s"
    )
    return row["status"] == "done" and row2["status"] == "done", first + second


def redis_lost_mid_task(s: Scenario) -> tuple[bool, str]:
    s.stack.stop_worker()
    pk = s.upload().json()["id"]
    release = s.block_on_photo(pk)
    # Two pool processes, as `make run` has: one in the task, the consumer polling (BRPOP) for the other.
    worker = s.stack.start_worker(concurrency=2)
    _running_child(s.stack, pk, s)
    s.stack.stop_redis()  # a clean shutdown of Redis (SIGTERM), mid-task
    down_at = time.monotonic()
    release()
    time.sleep(5)
    alive_while_down = worker.poll() is None
    health = s.client.get("/healthz").status_code
    s.stack.start_redis()  # same port, empty: the unacknowledged message is gone, the sweep re-sends the row
    row = s.wait(pk, FINISHED, 240)  # defaults: `running` rows are re-sent 120 s after they started
    took = time.monotonic() - down_at
    crashed = "Unrecoverable error" in s.stack.worker_log()
    alive = worker.poll() is None
    s.stack.stop_worker()
    s.stack.start_worker()  # back to the one-process worker of the other scenarios
    ok = row["status"] == "done" and alive_while_down and alive and not crashed
    return ok, (
        f"worker alive with Redis down: {alive_while_down}, after: {alive}, crashed: {crashed}; /healthz {health} "
        f"with Redis down; row {row['status']} {took:.1f} s after Redis went down (attempts {row['attempts']})"
    )


def _stored_files(s: Scenario) -> tuple[set[str], set[str]]:
    """(every file under the upload folders, the ones a row refers to), as storage names."""
    root = s.stack.media_root
    on_disk = {
        path.relative_to(root).as_posix()
        for folder in ("lesions", "thumbnails")
        for path in (root / folder).rglob("*")
        if path.is_file()
    }
    rows = s.stack.query("SELECT image, thumbnail FROM classifier_prediction")
    referenced = {name for row in rows for name in row if name}
    return on_disk, referenced


def orphan_files(s: Scenario) -> tuple[bool, str]:
    from melanoma_site.stack import child_pids  # noqa: PLC0415

    web = s.stack.web

    def upload_ignoring_errors() -> None:
        with contextlib.suppress(httpx.HTTPError):
            s.upload()

    uploads = [threading.Thread(target=upload_ignoring_errors, daemon=True) for _ in range(8)]
    for thread in uploads:
        thread.start()
    time.sleep(0.3)
    killed = child_pids(web.pid)
    for pid in killed:  # gunicorn's workers, mid-request; the master starts new ones
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for thread in uploads:
        thread.join(timeout=60)
    on_disk, referenced = _stored_files(s)
    from_kill = len(on_disk - referenced)
    planted = s.stack.media_root / "lesions" / "planted-orphan.jpg"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(s.photo[:1000])
    two_hours_ago = time.time() - 7200
    for name in on_disk | {"lesions/planted-orphan.jpg"}:
        with contextlib.suppress(FileNotFoundError):
            os.utime(s.stack.media_root / name, (two_hours_ago, two_hours_ago))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        on_disk_now, referenced = _stored_files(s)
        if not on_disk_now - referenced:
            break
        time.sleep(1)
    left = on_disk_now - referenced
    # A row's file may be a named pipe left by an earlier scenario: present is what counts.
    rows_intact = all((s.stack.media_root / name).exists() for name in referenced if name)
    web_up = s.client.get("/healthz").status_code in (200, 503)
    return not left and rows_intact and web_up, (
        f"{len(killed)} web workers killed mid-upload: {from_kill} orphan file(s) left by them, plus 1 planted; "
        f"after the cleanup: {len(left)} orphan(s) left, files of rows intact: {rows_intact}, web serving: {web_up}"
    )


def broker_restart_mid_task(s: Scenario) -> tuple[bool, str]:
    s.stack.stop_worker()
    pk = s.upload().json()["id"]
    release = s.block_on_photo(pk)
    s.stack.start_worker()
    _running_child(s.stack, pk, s)
    s.stack.stop_broker(crash=True)
    time.sleep(2)
    s.stack.start_broker()
    restarted = time.monotonic()
    release()
    row = s.wait(pk, FINISHED, 120)
    return row["status"] == "done", (
        f"row {row['status']} {time.monotonic() - restarted:.1f} s after the broker came back, "
        f"attempts {row['attempts']}"
    )


def broken_model(s: Scenario, good_model: Path) -> tuple[bool, str]:
    broken_dir = s.stack.root / "broken-model"
    shutil.copytree(good_model, broken_dir)
    card = broken_dir / "model_card.json"
    import json  # noqa: PLC0415

    data = json.loads(card.read_text())
    good_version = data["version"]
    data["version"] = "broken-model"
    card.write_text(json.dumps(data))
    s.stack.run_module("bench.stack_setup", "activate", str(broken_dir))
    details, ok = [], True
    for damage in ("missing", "corrupt"):
        model_file = broken_dir / "model.tflite"
        if damage == "missing":
            model_file.unlink()
        else:
            model_file.write_bytes(b"not a model " * 1000)
        row = s.wait(s.upload().json()["id"], FINISHED, 60)
        health = s.client.get("/healthz")
        landing = s.client.get("/")
        model_check = health.json()["checks"]["model"]
        # People read a plain reason: no file path, no exception text (the operator's detail is in the log).
        ok &= row["status"] == "failed" and "/" not in row["error"] and "broken-model" not in row["error"]
        ok &= health.status_code == 503 and landing.status_code == 200 and model_check == "unavailable"
        details.append(
            f"{damage}: prediction {row['status']} ({row['error'][:90]}); /healthz {health.status_code} "
            f"(model {model_check}); landing page {landing.status_code}"
        )
        failed_pk = s.stack.query("SELECT MAX(id) FROM classifier_prediction WHERE status = 'failed'")[0][0]
    # Activating the broken version again (as an operator might) is refused: it cannot score the check image.
    try:
        s.stack.run_module("bench.stack_setup", "activate", "broken-model")
    except StackError as error:
        refused = "was not activated" in str(error)
    else:
        refused = False
    ok &= refused
    details.append(f"re-activating the broken version: {'refused' if refused else 'ACCEPTED'}")
    s.stack.run_module("bench.stack_setup", "activate", good_version)
    retry = s.client.post(f"/api/predictions/{failed_pk}/retry/")
    row = s.wait(failed_pk, FINISHED, 60)
    health = s.client.get("/healthz")
    ok &= retry.status_code == 202 and row["status"] == "done" and health.status_code == 200
    details.append(
        f"good version activated: retry {retry.status_code} -> {row['status']}, /healthz {health.status_code}"
    )
    return ok, "; ".join(details)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="a working model folder to activate (default: the shipped one)")
    parser.add_argument("--only", nargs="+", help="scenario names to run")
    parser.add_argument(
        "--default-settings",
        action="store_true",
        help="the deployment's default limits and sweep timings instead of the shortened ones (slower; the figures "
        "a deployment sees)",
    )
    parser.add_argument("--broker", choices=("redis", "rabbitmq", "both"), default="redis")
    args = parser.parse_args(argv)
    brokers = ("redis", "rabbitmq") if args.broker == "both" else (args.broker,)
    return max(run_scenarios(args, broker) for broker in brokers)


def run_scenarios(args: argparse.Namespace, broker: str) -> int:
    photo = load_images(REPO.parent / "shared" / "derm" / "uploads", limit=1)[0][1]
    stack = RealStack(
        broker=broker,
        users=1,
        web_workers=1,
        worker_concurrency=1,
        beat=True,
        extra_env=DEFAULT_SETTINGS_ENV if args.default_settings else FAULT_ENV,
        model_dir=args.model.resolve() if args.model else None,
    )
    outcomes: list[tuple[str, bool, str]] = []
    with stack:
        good_model = Path(stack.run_module("bench.stack_setup", "active-path").strip())
        with httpx.Client(base_url=stack.base_url, timeout=60) as client:
            login = client.post("/api/token/", data={"username": "load000", "password": stack.password})
            client.headers.update({"Authorization": f"Token {login.json()['token']}", "Accept": "application/json"})
            scenario = Scenario(stack, client, photo)
            scenarios: dict[str, Callable[[], tuple[bool, str]]] = {
                "pool-child-sigkill": lambda: pool_child_sigkill(scenario),
                "worker-sigkill": lambda: worker_sigkill(scenario),
                "stuck-running": lambda: stuck_running(scenario),
                "redis-down-upload": lambda: redis_down_upload(scenario),
                "redis-lost-mid-task": lambda: redis_lost_mid_task(scenario),
                "orphan-files": lambda: orphan_files(scenario),
                "broker-restart-mid-task": lambda: broker_restart_mid_task(scenario),
                "broken-model": lambda: broken_model(scenario, good_model),
            }
            for name, run in scenarios.items():
                if args.only and name not in args.only:
                    continue
                log(f"scenario {name}")
                try:
                    if stack.worker is None:
                        stack.start_worker()
                    ok, detail = run()
                except Exception as error:  # noqa: BLE001 - report the scenario as failed and go on
                    ok, detail = False, f"{error.__class__.__name__}: {error}"
                outcomes.append((name, ok, detail))
                log(f"  {'PASS' if ok else 'FAIL'}: {detail}")
        lost = stack.query(
            "SELECT COUNT(*) FROM classifier_prediction WHERE status NOT IN ('done', 'failed')"
        )[0][0]  # fmt: skip
        total = stack.query("SELECT COUNT(*) FROM classifier_prediction")[0][0]
    print(f"Faults against the real stack ({stack.database}, broker {broker}, gunicorn, Celery prefork + beat):")
    for name, ok, detail in outcomes:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:20} {detail}")
    print(f"  rows: {total} uploaded, {lost} unfinished at the end (lost)")
    return 0 if all(ok for _, ok, _ in outcomes) and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
