"""`make run` for real: the supervisor starts embedded Redis, migrates, serves, runs a worker, starts a crashed
child again while the rest keeps serving, and one SIGINT stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from melanoma_site.embedded_redis import free_port

pytestmark = pytest.mark.slow


def _processes_with_marker(marker: str) -> list[int]:
    """Pids whose environment carries `marker` (every child inherits the test's MELANOMA_VAR_DIR)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def _child_running(parent: int, word: str) -> int | None:
    """The pid of the supervisor's child whose command line contains `word` ("celery", "gunicorn")."""
    from melanoma_site.stack import child_pids

    for pid in child_pids(parent):
        try:
            if word.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def _wait_for(url: str, timeout_s: float) -> httpx.Response | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=10)
        except httpx.HTTPError:
            time.sleep(0.5)
    return None


def test_stack_starts_serves_and_stops_cleanly(tmp_path):
    port = free_port()
    var_dir = tmp_path / "var"
    # Nothing from this test process leaks in: not its services, nor what Celery's test worker put in os.environ.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "DATABASE_URL"} and not key.startswith(("CELERY_", "MELANOMA_"))
    }
    env.update(
        PORT=str(port),
        MELANOMA_VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'db.sqlite3'}",  # never the shared CI database
        WEB_CONCURRENCY="1",
        CELERY_CONCURRENCY="1",
    )
    log_path = tmp_path / "stack.log"
    log = log_path.open("w")
    # A file, not a pipe: nobody reads a pipe while the stack runs, and a full pipe would block the children.
    stack = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "melanoma_site.stack"], cwd=settings.BASE_DIR, env=env, stdout=log, stderr=log
    )
    try:
        health = _wait_for(f"http://127.0.0.1:{port}/healthz", timeout_s=120)
        assert health is not None, "the web server never answered"
        checks = health.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["broker"] == "ok"  # the embedded Redis is up
        assert httpx.get(f"http://127.0.0.1:{port}/api/predictions/", timeout=30).status_code == 401
        assert len(_processes_with_marker(str(var_dir))) >= 4  # supervisor, redis, web, worker (+ children)

        # Issue 11.1: a worker that dies (here SIGKILL; in the wild, Redis lost mid-task) is started again, and
        # the web server keeps serving meanwhile (before, the supervisor stopped everything).
        worker = _child_running(stack.pid, "celery")
        assert worker is not None
        os.killpg(worker, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while (_child_running(stack.pid, "celery") in (None, worker)) and time.monotonic() < deadline:
            assert stack.poll() is None, "the supervisor stopped when its worker died"
            time.sleep(0.2)
        assert _child_running(stack.pid, "celery") not in (None, worker), "the worker was not started again"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200
    except (AssertionError, httpx.HTTPError) as error:
        log.flush()
        raise AssertionError(f"{error!r}\n--- stack log ---\n{log_path.read_text()[-4000:]}") from error
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(timeout=60)
        log.close()
    output = log_path.read_text()

    assert stack.returncode == 0, output[-3000:]
    assert "ready: http://127.0.0.1:" in output
    assert "started worker again" in output
    time.sleep(0.5)
    assert _processes_with_marker(str(var_dir)) == [], "processes left behind after Ctrl-C"
