"""The one stack harness: `make run`, `bench/` and the tests that start real processes all use `Stack`.

A `Stack` starts what a deployment runs, each child in its own process group: an embedded Redis when no
REDIS_URL is given, gunicorn serving melanoma_site.wsgi, a prefork Celery worker (optionally with the embedded
beat that runs the stuck-prediction sweep). It waits until each is ready, exposes their pids (and the pool
children) for fault injection, and stops everything it started: stopping a child kills its whole group, so
nothing is left behind.

`python -m melanoma_site.stack` is `make run`: migrate (no prompts), `register_models` (registers the shipped
model), collect static files, then Redis (embedded when REDIS_URL is unset), web and worker + beat, until one
Ctrl-C. A child that exits on its own is started again (with a back-off; a crash loop stops everything), so a
worker lost to a broker outage never takes the web server down with it. Environment: PORT (8000), DATABASE_URL
(SQLite under var/ by default), REDIS_URL (embedded when unset), WEB_CONCURRENCY (2 gunicorn workers),
WEB_THREADS (16 threads each), CELERY_CONCURRENCY (2 worker processes), MELANOMA_WORKER_LOG_LEVEL (INFO),
DJANGO_SETTINGS_MODULE (development by default).

Nothing here imports Django: a benchmark's measuring process stays as lean as the processes it measures.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from melanoma_site.embedded_rabbitmq import EmbeddedRabbitMQ
from melanoma_site.embedded_redis import EmbeddedRedis, free_port, start_embedded_redis

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN_DIR = Path(PYTHON).parent
DEVELOPMENT_SETTINGS = "melanoma_site.settings.development"
PRODUCTION_SETTINGS = "melanoma_site.settings.production"
STOP_TIMEOUT_S = 15.0
# A child that exits on its own is started again after 1, 2, 4... s (at most 30 s); more than MAX_RESTARTS
# exits within RESTART_WINDOW_S is a crash loop (a broken configuration, say): then everything stops.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 300.0
MAX_RESTART_DELAY_S = 30.0
WEB_READY_TIMEOUT_S = 60.0
WORKER_READY_TIMEOUT_S = 90.0


class StackError(RuntimeError):
    """A child did not start, or a start-up step failed; the message carries the end of its log."""


def _log(message: str) -> None:
    print(f"[stack] {message}", flush=True)


# --- processes ------------------------------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`, e.g. a Celery worker's pool processes (scans /proc; no psutil needed)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return sorted(children)


def wait_for_port(port: int, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StackError(f"the process exited with {process.returncode} before listening on port {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.1)
    raise StackError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:g} s")


def signal_process(process: subprocess.Popen, sig: int) -> None:
    """SIGKILL to the whole group (a machine failure); any other signal to the leader only: Celery's pool
    processes die on SIGTERM, so a warm shutdown (finish the running task, then exit) must reach the parent alone;
    gunicorn's master likewise stops its workers gracefully itself."""
    with contextlib.suppress(ProcessLookupError):
        if sig == signal.SIGKILL:
            os.killpg(process.pid, sig)
        else:
            os.kill(process.pid, sig)


def stop_process(process: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """`sig` (SIGTERM: a warm shutdown for Celery and gunicorn; see signal_process), then SIGKILL to whatever is
    left in the group (a pool child, a gunicorn worker) once the leader has exited or `timeout_s` passed."""
    if process.poll() is None:
        signal_process(process, sig)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _log(f"pid {process.pid} did not stop in {timeout_s:g} s; killing it")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=10)


def isolated_env(
    root: Path,
    *,
    settings_module: str,
    database_url: str | None = None,
    queue: str | None = None,
    media_root: Path | None = None,
    base: Mapping[str, str] | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of a throw-away stack under `root`: its own var folder, media folder, SQLite file (unless
    `database_url`), Celery queue and cache keys, so that it never meets `make run` or a concurrent run.

    Django and Celery variables of the calling process (a test run's own settings) are left out.
    """
    tag = f"{os.getpid()}-{secrets.token_hex(3)}"
    env = {
        key: value
        for key, value in (os.environ if base is None else base).items()
        if not key.startswith(("DJANGO_", "CELERY_"))
        and key not in {"DATABASE_URL", "REDIS_URL", "CACHE_URL", "CACHE_KEY_PREFIX"}
    }
    env.update(
        PYTHONPATH=str(BASE_DIR),
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE=settings_module,
        DATABASE_URL=database_url or f"sqlite:///{root / 'db.sqlite3'}",
        MELANOMA_VAR_DIR=str(root / "var"),
        MELANOMA_MEDIA_ROOT=str(media_root or root / "media"),
        MELANOMA_CELERY_QUEUE=queue or f"stack-{tag}",
        CACHE_KEY_PREFIX=f"stack-{tag}",
    )
    env.update(extra)
    return env


@dataclass
class RestartTracker:
    """When each child last exited on its own: the delay before its next start, and when to give up."""

    exits: dict[str, list[float]] = field(default_factory=dict)

    def record(self, name: str) -> int:
        """Note an exit of `name` now; how many exits it had within RESTART_WINDOW_S."""
        now = time.monotonic()
        recent = [at for at in self.exits.get(name, []) if now - at < RESTART_WINDOW_S] + [now]
        self.exits[name] = recent
        return len(recent)

    @staticmethod
    def delay_s(exits: int) -> float:
        return min(MAX_RESTART_DELAY_S, 2.0 ** (exits - 1))


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path | None


# --- the stack ------------------------------------------------------------------------------------


@dataclass
class Stack:
    """Redis (given or embedded), web (gunicorn) and worker (Celery) with one environment.

    `env` is the children's environment (settings module, database, queue...); the Redis URL is added to it.
    With `log_dir` each start of a child writes its own log file there (`worker-0.log`, `worker-1.log`...)
    and a worker start waits until Celery logs "ready."; without, children write to this terminal.
    """

    env: dict[str, str]
    var_dir: Path
    redis_url: str | None = None  # None: start an embedded redis-server
    redis_port: int | None = None  # the embedded one's port: a free one, kept across restarts
    log_dir: Path | None = None
    web_port: int = 0  # 0: a free port
    web_workers: int = 2
    web_threads: int = 16  # per web worker
    web_access_log: bool = False
    worker_concurrency: int = 2
    beat: bool = False
    log_level: str = "INFO"
    children: dict[str, Child] = field(default_factory=dict)
    logs: dict[str, list[Path]] = field(default_factory=dict)
    embedded_redis: EmbeddedRedis | None = None
    # "rabbitmq": the Celery broker is a RabbitMQ node of the stack's own (melanoma_site/embedded_rabbitmq.py)
    # unless env has CELERY_BROKER_URL; Redis stays the cache either way.
    broker: str = "redis"
    embedded_rabbitmq: EmbeddedRabbitMQ | None = None

    def __post_init__(self) -> None:
        self.env = {"PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": DEVELOPMENT_SETTINGS, **self.env}
        self.var_dir.mkdir(parents=True, exist_ok=True)
        # Prometheus multiprocess mode: every gunicorn and Celery process of this host writes its counters here
        # and /metrics adds them up; emptied at each start (counters restart with the processes).
        metrics_dir = Path(self.env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(self.var_dir / "metrics")))
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True, exist_ok=True)
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        self.web_port = self.web_port or free_port()
        self._own_redis = self.redis_url is None
        if self.redis_url is not None:
            self.env["REDIS_URL"] = self.redis_url

    # --- Redis ------------------------------------------------------------------------------------

    def start_redis(self) -> None:
        """Start the embedded redis-server (again, on the same port after a stop); no-op with a given URL."""
        if not self._own_redis or (self.embedded_redis and self.embedded_redis.process.poll() is None):
            return
        self.embedded_redis = start_embedded_redis(port=self.redis_port)
        self.redis_port = int(self.embedded_redis.url.rsplit(":", 1)[1].split("/")[0])
        self.redis_url = self.embedded_redis.url
        self.env["REDIS_URL"] = self.redis_url

    def stop_redis(self, *, crash: bool = False) -> None:
        """Stop the embedded Redis; `crash` kills it (SIGKILL) as a machine failure would."""
        if self.embedded_redis is not None:
            self.embedded_redis.stop(kill=crash)

    # --- the Celery broker (Redis, or RabbitMQ with broker="rabbitmq") -------------------------------

    def start_broker(self) -> None:
        """Start the broker (again): the embedded Redis, or the stack's own RabbitMQ node / its application."""
        if self.broker != "rabbitmq":
            self.start_redis()
            return
        if self.embedded_rabbitmq is None:
            if self.env.get("CELERY_BROKER_URL"):
                return  # a given RabbitMQ: not ours to start
            from melanoma_site.embedded_rabbitmq import start_embedded_rabbitmq  # noqa: PLC0415

            self.embedded_rabbitmq = start_embedded_rabbitmq()
            self.env["CELERY_BROKER_URL"] = self.embedded_rabbitmq.url
        else:
            self.embedded_rabbitmq.start_app()

    def stop_broker(self, *, crash: bool = False) -> None:
        """Stop the broker: Redis (killed with `crash`), or the RabbitMQ application (connections drop; durable
        queues and persistent messages stay for its restart)."""
        if self.broker != "rabbitmq":
            self.stop_redis(crash=crash)
        elif self.embedded_rabbitmq is not None:
            self.embedded_rabbitmq.stop_app()

    @property
    def broker_url(self) -> str | None:
        return self.env.get("CELERY_BROKER_URL") or self.redis_url

    # --- one-off commands -------------------------------------------------------------------------

    def manage(self, *args: str) -> str:
        """`manage.py args` in the stack's environment. With a log folder its stdout is returned (and its output
        is in the error on failure); without, it writes to this terminal."""
        return self._run([PYTHON, "manage.py", *args], f"manage.py {' '.join(args[:2])}")

    def run_module(self, module: str, *args: str) -> str:
        """`python -m module args` in the stack's environment (setup code for bench and tests); its stdout."""
        return self._run([PYTHON, "-m", module, *args], f"python -m {module}", capture=True)

    def _run(self, command: list[str], what: str, *, capture: bool | None = None) -> str:
        capture = self.log_dir is not None if capture is None else capture
        result = subprocess.run(  # noqa: S603 - our own interpreter and scripts
            command, cwd=BASE_DIR, env=self.env, capture_output=capture, text=True, timeout=600, check=False
        )
        if result.returncode != 0:
            output = f"\n{(result.stdout or '')[-2000:]}{(result.stderr or '')[-3000:]}" if capture else ""
            raise StackError(f"{what} failed with exit code {result.returncode}{output}")
        return result.stdout or ""

    # --- long-running children --------------------------------------------------------------------

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        if name in self.children and self.children[name].process.poll() is None:
            raise StackError(f"{name} is already running (pid {self.children[name].process.pid})")
        log_path: Path | None = None
        output: IO | None = None
        if self.log_dir is not None:
            log_path = self.log_dir / f"{name}-{len(self.logs.get(name, []))}.log"
            self.logs.setdefault(name, []).append(log_path)
            output = log_path.open("w")
        # A new session: a Ctrl-C in the terminal reaches only the supervisor, which stops each group in order.
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and its console scripts
            command, cwd=BASE_DIR, env=self.env, stdout=output, stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )  # fmt: skip
        if output is not None:
            output.close()  # the child holds its own descriptor
        self.children[name] = Child(name, process, log_path)
        return process

    def start_web(self, *, workers: int | None = None, wait: bool = True) -> subprocess.Popen:
        """gunicorn serving melanoma_site.wsgi on 127.0.0.1:`web_port`; waits until it listens."""
        # Threads (gthread), not one sync process per request: a client that sends its headers and then trickles
        # its body (or stalls) ties up one thread until the body timeout (melanoma_site/wsgi.py), not a whole
        # worker. A worker takes no more connections than it has threads, so a full one leaves new connections
        # to the others instead of queueing them behind stalled clients.
        command = [str(BIN_DIR / "gunicorn"), "melanoma_site.wsgi:application",
                   "--bind", f"127.0.0.1:{self.web_port}", "--workers", str(workers or self.web_workers),
                   "--worker-class", "gthread", "--threads", str(self.web_threads),
                   "--worker-connections", str(self.web_threads),
                   "--timeout", "60", "--graceful-timeout", "10", "--log-level", self.log_level.lower(),
                   # Its default control socket is one path per user: two stacks (make run, a test) would collide.
                   "--no-control-socket"]  # fmt: skip
        if self.web_access_log:
            command += ["--access-logfile", "-"]
        process = self.start("web", command)
        if wait:
            try:
                wait_for_port(self.web_port, WEB_READY_TIMEOUT_S, process)
            except StackError as error:
                raise StackError(f"the web server did not start: {error}\n{self.log_tail('web')}") from error
        return process

    def start_worker(
        self,
        *,
        concurrency: int | None = None,
        beat: bool | None = None,
        wait: bool = True,
        queues: list[str] | None = None,
    ) -> subprocess.Popen:
        """A Celery worker as production runs one (prefork pool), consuming both of the stack's queues (inference
        and housekeeping) unless `queues` names some; with `beat` the embedded scheduler for the sweep. With a
        log folder, waits until the worker logs "ready." (needs INFO)."""
        beat = self.beat if beat is None else beat
        command = [str(BIN_DIR / "celery"), "-A", "melanoma_site", "worker", "--pool", "prefork",
                   "--concurrency", str(concurrency or self.worker_concurrency), "--loglevel", self.log_level,
                   "-n", f"worker-{secrets.token_hex(3)}@%h", "--without-mingle", "--without-gossip"]  # fmt: skip
        if queues:
            command += ["-Q", ",".join(queues)]
        if beat:
            command += ["--beat", "--schedule", str(self.var_dir / "celerybeat-schedule")]
        process = self.start("worker", command)
        log_path = self.children["worker"].log_path
        if wait and log_path is not None:
            deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
            while "ready." not in log_path.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise StackError(f"the worker did not start:\n{self.log_tail('worker')}")
                time.sleep(0.2)
        return process

    def stop(self, name: str, *, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> None:
        child = self.children.pop(name, None)
        if child is not None:
            stop_process(child.process, sig=sig, timeout_s=timeout_s)

    def stop_worker(self, *, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: warm shutdown; SIGKILL: the parent and its pool at once, as a machine failure would."""
        self.stop("worker", sig=sig, timeout_s=30)

    def process(self, name: str) -> subprocess.Popen | None:
        child = self.children.get(name)
        return child.process if child is not None else None

    @property
    def web(self) -> subprocess.Popen | None:
        return self.process("web")

    @property
    def worker(self) -> subprocess.Popen | None:
        return self.process("worker")

    def worker_children(self) -> list[int]:
        """The running worker's pool processes (and the beat process when embedded): targets for SIGKILL."""
        return child_pids(self.worker.pid) if self.worker is not None else []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def log(self, name: str) -> str:
        """Every log of `name` (each start of it), oldest first."""
        return "\n".join(path.read_text(errors="replace") for path in self.logs.get(name, []) if path.is_file())

    def log_tail(self, name: str, chars: int = 3000) -> str:
        return self.log(name)[-chars:]

    # --- supervision ------------------------------------------------------------------------------

    def restart_exited(self, restarts: RestartTracker, *, should_stop: Callable[[], bool] = lambda: False) -> list[str]:
        """Start again every child (and the embedded Redis) that exited on its own, each after its back-off
        delay; the others keep running. A worker that died (Redis lost mid-task, an out-of-memory kill) must not
        take the web server down with it. Raises StackError on a crash loop. Returns the names restarted."""
        restarted: list[str] = []
        if self._own_redis and self.embedded_redis is not None and self.embedded_redis.process.poll() is not None:
            code = self.embedded_redis.process.returncode
            exits = restarts.record("redis")
            if exits > MAX_RESTARTS:
                raise StackError(f"the embedded Redis exited {exits} times in {RESTART_WINDOW_S:g} s")
            _log(f"embedded Redis exited with code {code}; starting it again on the same port")
            if self._sleep_unless_stopping(restarts.delay_s(exits), should_stop):
                return restarted
            self.start_redis()
            restarted.append("redis")
        starters: dict[str, Callable[[], subprocess.Popen]] = {"web": self.start_web, "worker": self.start_worker}
        for name, child in list(self.children.items()):
            if child.process.poll() is None or name not in starters:
                continue
            code = child.process.returncode
            self.stop(name)  # what is left of its group: a crashed worker's pool processes
            exits = restarts.record(name)
            if exits > MAX_RESTARTS:
                raise StackError(f"{name} exited {exits} times in {RESTART_WINDOW_S:g} s (last code {code})")
            delay_s = restarts.delay_s(exits)
            _log(f"{name} exited with code {code}; starting it again in {delay_s:g} s (the rest keeps running)")
            if self._sleep_unless_stopping(delay_s, should_stop):
                return restarted
            try:
                process = starters[name]()
            except StackError as error:  # counted as the next exit when the loop comes round again
                _log(f"{name} did not start again: {error}")
                continue
            _log(f"started {name} again (pid {process.pid})")
            restarted.append(name)
        return restarted

    @staticmethod
    def _sleep_unless_stopping(seconds: float, should_stop: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if should_stop():
                return True
            time.sleep(0.1)
        return should_stop()

    # --- whole ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker and the web server (together, each group), then the embedded Redis."""
        children = list(self.children.values())
        self.children.clear()
        for child in children:
            if child.process.poll() is None:
                signal_process(child.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in children:
            stop_process(child.process, timeout_s=max(0.1, deadline - time.monotonic()))
        self.stop_redis()
        if self.embedded_rabbitmq is not None:
            self.embedded_rabbitmq.close()
            self.embedded_rabbitmq = None

    def __enter__(self) -> Stack:
        self.start_redis()
        if self.broker == "rabbitmq":
            self.start_broker()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- `make run` -----------------------------------------------------------------------------------


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", DEVELOPMENT_SETTINGS)
    stack = Stack(
        env=env,
        var_dir=Path(env.get("MELANOMA_VAR_DIR", str(BASE_DIR / "var"))),
        redis_url=env.get("REDIS_URL") or None,
        web_port=int(env.get("PORT", "8000")),
        web_workers=int(env.get("WEB_CONCURRENCY", "2")),
        web_threads=int(env.get("WEB_THREADS", "16")),
        web_access_log=True,
        worker_concurrency=int(env.get("CELERY_CONCURRENCY", "2")),
        beat=True,
        log_level=env.get("MELANOMA_WORKER_LOG_LEVEL", "INFO"),  # not CELERY_LOG_LEVEL: Celery sets that itself
    )
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if stack.redis_url is None:
            stack.start_redis()
            _log(f"embedded Redis at {stack.redis_url} (set REDIS_URL to use your own)")
        for step in (
            ["migrate", "--no-input", "-v", "1"],
            ["register_models"],
            ["collectstatic", "--no-input", "-v", "0"],
        ):
            _log(f"manage.py {' '.join(step)}")
            stack.manage(*step)
        _log(f"started web (gunicorn, pid {stack.start_web().pid})")
        _log(f"started worker (celery, with beat for the sweep; pid {stack.start_worker().pid})")
        _log(f"ready: {stack.base_url}/  (API: /api/, health: /healthz; Ctrl-C stops everything)")

        restarts = RestartTracker()
        while not stopping:
            try:
                stack.restart_exited(restarts, should_stop=lambda: stopping)
            except StackError as error:
                _log(f"{error}; stopping the rest")
                return 1
            time.sleep(0.5)
        return 0
    except StackError as error:
        _log(f"start-up failed: {error}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        _log("stopping")
        stack.close()
        _log("stopped")


if __name__ == "__main__":
    sys.exit(main())
