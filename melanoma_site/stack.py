"""`make run`: the whole service in one command, stopped by one Ctrl-C.

Migrates (no prompts), registers the shipped models (`manage.py register_models`), collects static files,
starts an embedded Redis when REDIS_URL is unset, then the web server (gunicorn) and a Celery worker with the
embedded beat scheduler that runs the stuck-prediction sweep. Each child runs in its own process group, so
stopping kills its workers too: nothing is left behind.

Environment: PORT (8000), DATABASE_URL (SQLite under var/ by default), REDIS_URL (embedded when unset),
WEB_CONCURRENCY (2 gunicorn workers), CELERY_CONCURRENCY (2 worker processes), MELANOMA_WORKER_LOG_LEVEL (INFO),
DJANGO_DEBUG.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_TIMEOUT_S = 15.0


def _log(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def _run_step(args: list[str], env: dict[str, str]) -> None:
    _log(" ".join(args[1:]))
    subprocess.run([sys.executable, *args], cwd=BASE_DIR, env=env, check=True)  # noqa: S603


def _start(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    # A new session: Ctrl-C reaches only this supervisor, which then stops each group in order.
    process = subprocess.Popen(args, cwd=BASE_DIR, env=env, start_new_session=True)  # noqa: S603
    _log(f"started {name} (pid {process.pid})")
    return process


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for name, process in processes.items():
        if process.poll() is None:
            _log(f"stopping {name}")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _log(f"{name} did not stop in {STOP_TIMEOUT_S:g} s; killing it")
        # Whatever is left in the group (a pool child, a gunicorn worker) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.wait(timeout=5)


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_site.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    port = int(env.get("PORT", "8000"))
    var_dir = Path(env.get("MELANOMA_VAR_DIR", str(BASE_DIR / "var")))
    var_dir.mkdir(parents=True, exist_ok=True)

    embedded_redis = None
    processes: dict[str, subprocess.Popen] = {}
    stopping = False

    def request_stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if not env.get("REDIS_URL"):
            from melanoma_site.embedded_redis import start_embedded_redis

            embedded_redis = start_embedded_redis()
            env["REDIS_URL"] = embedded_redis.url
            _log(f"embedded Redis at {embedded_redis.url} (set REDIS_URL to use your own)")

        _run_step(["manage.py", "migrate", "--no-input", "-v", "1"], env)
        _run_step(["manage.py", "register_models"], env)
        _run_step(["manage.py", "collectstatic", "--no-input", "-v", "0"], env)

        bin_dir = Path(sys.executable).parent
        processes["web"] = _start(
            "web (gunicorn)",
            [
                str(bin_dir / "gunicorn"),
                "melanoma_site.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                env.get("WEB_CONCURRENCY", "2"),
                "--timeout",
                "60",
                "--access-logfile",
                "-",
                # Its default control socket is one path per user: a second stack (tests, bench) would collide.
                "--no-control-socket",
            ],
            env,
        )
        processes["worker"] = _start(
            "worker (celery, with beat for the sweep)",
            [
                str(bin_dir / "celery"),
                "-A",
                "melanoma_site",
                "worker",
                "--beat",
                "--loglevel",
                env.get("MELANOMA_WORKER_LOG_LEVEL", "INFO"),  # not CELERY_LOG_LEVEL: Celery sets that itself
                "--concurrency",
                env.get("CELERY_CONCURRENCY", "2"),
                "--schedule",
                str(var_dir / "celerybeat-schedule"),
            ],
            env,
        )
        _log(f"ready: http://127.0.0.1:{port}/  (API: /api/, health: /healthz; Ctrl-C stops everything)")

        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    _log(f"{name} exited with code {process.returncode}; stopping the rest")
                    stopping = True
                    break
            time.sleep(0.5)
        failed = any(process.poll() not in (None, 0) for process in processes.values())
        return 1 if failed else 0
    except subprocess.CalledProcessError as error:
        _log(f"start-up step failed: {error}")
        return error.returncode or 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        _stop(processes)
        if embedded_redis is not None:
            embedded_redis.stop()
        _log("stopped")


if __name__ == "__main__":
    sys.exit(main())
