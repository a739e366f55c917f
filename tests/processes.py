"""What a test needs to point a real process (a stack, a command) at this run's database and broker."""

from __future__ import annotations

from urllib.parse import quote

from django.db import connection

from melanoma_site.celery import app as celery_app


def run_database_url() -> str:
    """This run's test database as a DATABASE_URL for another process (its rows must be committed: use
    transactional tests)."""
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{database['NAME']}"
    credentials = quote(database["USER"] or "") + (
        f":{quote(database['PASSWORD'])}" if database.get("PASSWORD") else ""
    )
    return f"postgres://{credentials}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"


def publish_to(url: str) -> None:
    """This test process sends its Celery messages to `url` from now on. Celery keeps one connection pool per
    broker URL; forgetting the current one makes it pick up the new URL."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app.conf.broker_url = url
