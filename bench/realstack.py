"""The production-like stack for bench/load.py and bench/faults.py, on the harness of `make run`
(melanoma_site/stack.py): PostgreSQL (a database of our own; SQLite when PostgreSQL is unreachable), our own
redis-server on a free port (never the shared one at 6379), gunicorn serving melanoma_site.wsgi with production
settings (DEBUG off) on plain HTTP, and a prefork Celery worker (optionally with beat for the stuck-prediction
sweep). Loopback only.

Each piece can be stopped, killed and started again, which is what the fault scenarios need. The row states
are read straight from the database, so the figures and verdicts do not depend on polling.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

from melanoma_site.stack import BASE_DIR, PRODUCTION_SETTINGS, Stack, isolated_env

REPO = BASE_DIR
POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class RealStack(Stack):
    """`with RealStack(...) as stack:` migrated, static files collected, `users` load users (load000...) with
    `password`, the web server and a worker running; everything stopped and the database dropped on exit."""

    def __init__(
        self,
        *,
        users: int = 1,
        web_workers: int = 2,
        worker_concurrency: int = 2,
        beat: bool = False,
        extra_env: dict[str, str] | None = None,
        model_dir: Path | None = None,
        broker: str = "redis",
        storage: str = "local",
    ) -> None:
        """broker: "redis" (its own redis-server) or "rabbitmq" (its own RabbitMQ node; Redis stays the cache).
        storage: "local" (files under the stack's folder) or "s3" (its own SeaweedFS, STORAGE_URL=s3://...)."""
        self.storage = storage
        self.s3 = None
        self.users = users
        # Never starting with "-": it is passed on a command line (bench.stack_setup), where argparse takes that for
        # an option and the run fails one time in 64.
        self.password = "p" + secrets.token_urlsafe(16)
        self.model_dir = model_dir
        self.tag = f"{os.getpid()}_{secrets.token_hex(3)}"
        self.root = Path(tempfile.mkdtemp(prefix="melanoma-stack-"))
        self.database_name = f"melanoma_bench_{self.tag}"
        self.database = "postgresql"
        env = isolated_env(
            self.root,
            settings_module=PRODUCTION_SETTINGS,
            # Production settings (DEBUG off) but plain HTTP on loopback: no TLS terminator in front here.
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            DJANGO_SECURE_SSL_REDIRECT="0",
            DJANGO_SECURE_COOKIES="0",
            **{"LOG_LEVEL": "WARNING", **(extra_env or {})},
        )
        super().__init__(
            env=env,
            var_dir=self.root / "var",
            log_dir=self.root / "logs",
            web_workers=web_workers,
            worker_concurrency=worker_concurrency,
            beat=beat,
            broker=broker,
        )

    @property
    def media_root(self) -> Path:
        return Path(self.env["MELANOMA_MEDIA_ROOT"])

    @property
    def database_url(self) -> str:
        if self.database == "sqlite":
            return f"sqlite:///{self.root / 'db.sqlite3'}"
        return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.database_name

    def worker_log(self) -> str:
        return self.log("worker")

    # --- the database -----------------------------------------------------------------------------

    def create_database(self) -> None:
        try:
            import psycopg  # noqa: PLC0415

            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as connection:
                connection.execute(f'CREATE DATABASE "{self.database_name}"')
        except Exception as error:  # noqa: BLE001 - no PostgreSQL here: say so, use SQLite
            log(f"PostgreSQL unavailable ({error.__class__.__name__}); using SQLite")
            self.database = "sqlite"
        self.env["DATABASE_URL"] = self.database_url

    def drop_database(self) -> None:
        if self.database != "postgresql":
            return
        import psycopg  # noqa: PLC0415

        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')

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
            if self.broker == "rabbitmq":
                self.start_broker()
            if self.storage == "s3":
                from melanoma_site.embedded_s3 import start_embedded_s3  # noqa: PLC0415

                self.s3 = start_embedded_s3()
                self.env["STORAGE_URL"] = self.s3.storage_url()
            self.create_database()
            log(
                f"stack in {self.root}: {self.database} {self.database_name}, redis :{self.redis_port}, "
                f"broker {self.broker}, storage {self.storage}"
            )
            self.manage("migrate", "--no-input", "-v", "0")
            self.manage("collectstatic", "--no-input", "-v", "0")  # DEBUG off: pages need the manifest
            setup_args = [self.password, str(self.users)] + ([str(self.model_dir)] if self.model_dir else [])
            log(self.run_module("bench.stack_setup", "users", *setup_args).strip())
            self.start_web()
            self.start_worker()
            log(f"web at {self.base_url} ({self.web_workers} gunicorn workers), worker x{self.worker_concurrency}")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        super().close()
        if self.s3 is not None:
            self.s3.stop()
        with contextlib.suppress(Exception):
            self.drop_database()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)
