"""Suite-wide fixtures: real Redis, a real Celery worker, a real LiteRT model, real images.

Several engineers run the suite at the same time on one machine, against one PostgreSQL and one Redis, so
each run gets its own test database name, Celery queue and cache key prefix.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.utils import override_settings
from PIL import Image

from bench.synthetic import build_model_dir_in_subprocess, encode_image, lesion_pixels
from melanoma_site.embedded_redis import redis_is_reachable, start_embedded_redis
from tests.factories import UserFactory

RUN_ID = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
SHARED_UPLOADS = Path(django_settings.BASE_DIR).parent / "shared" / "derm" / "uploads"


# --- database: a name of our own ------------------------------------------------------------------


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory) -> None:
    """A test database no concurrent run uses: a file for SQLite (the worker thread needs a real file, not a
    shared in-memory database), a unique name for PostgreSQL (MELANOMA_TEST_DB_NAME overrides)."""
    database = django_settings.DATABASES["default"]
    # No persistent connections in tests. With CONN_MAX_AGE > 0 a thread that served a request keeps its
    # PostgreSQL session after the request (the live server's keep-alive request threads, worker threads), and
    # `DROP DATABASE` at the end then fails with "is being accessed by other users": the database is left behind.
    database["CONN_MAX_AGE"] = 0
    test = database.setdefault("TEST", {})
    if database["ENGINE"].endswith("sqlite3"):
        test["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")
    else:
        test["NAME"] = os.environ.get("MELANOMA_TEST_DB_NAME") or f"test_melanoma_{RUN_ID.replace('-', '_')}"
        _POSTGRES_TEST_DATABASES.append(test["NAME"])


_POSTGRES_TEST_DATABASES: list[str] = []


def _leftover_test_database() -> tuple[str, list[tuple]] | None:
    """(name, the sessions still connected to it) when this run's PostgreSQL test database survived teardown."""
    from django.db import connection

    if not _POSTGRES_TEST_DATABASES or connection.vendor != "postgresql":
        return None
    name = _POSTGRES_TEST_DATABASES[-1]
    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            return None
        cursor.execute(
            "SELECT pid, application_name, client_addr, client_port, state, left(query, 120)"
            " FROM pg_stat_activity WHERE datname = %s",
            [name],
        )
        return name, cursor.fetchall()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Guard: the run's PostgreSQL database must be gone once the session fixtures are torn down.

    pytest-django only *warns* when `DROP DATABASE` fails (e.g. "is being accessed by other users"), and that
    warning drowned among the others while `test_melanoma_*` databases piled up on the shared server. Here a
    leftover is dropped (terminating what still holds it) and reported in red with the sessions that held it;
    the run fails only if even that drop leaves the database behind. (A backend whose client process was just
    killed can linger for a moment: naming it is what tells a real leak from that race.)
    """
    from django.db import connection
    from pytest_django.plugin import blocking_manager_key

    if getattr(session.config.option, "reuse_db", False) or blocking_manager_key not in session.config.stash:
        return  # --reuse-db keeps the database on purpose; without Django set up there is none
    with session.config.stash[blocking_manager_key].unblock():
        leftover = _leftover_test_database()
        if leftover is None:
            return
        name, sessions = leftover
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        still_there = _leftover_test_database() is not None
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"test database {name} survived teardown (dropped now); sessions still connected: {sessions}"
    if reporter is not None:
        reporter.write_line(f"{'ERROR' if still_there else 'WARNING'}: {message}", red=True)
    if still_there:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- settings every test shares (set once, here) ---------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def suite_settings(tmp_path_factory) -> Iterator[None]:
    """Test users log in with a known password, and PBKDF2 (deliberately slow) would dominate the suite's time.
    STATIC_ROOT exists only after `collectstatic`; WhiteNoise warns on every request when it is missing, so
    the suite points it at an empty folder of its own (the app's static/ is served through the finders)."""
    overrides = override_settings(  # override_settings, not assignment: Django caches the hashers it loaded
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        STATIC_ROOT=str(tmp_path_factory.mktemp("staticfiles")),
    )
    overrides.enable()
    yield
    overrides.disable()


# --- Redis, Celery, cache: reachable and isolated -------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when reachable, else the local default, else an embedded redis-server for this run."""
    for url in (os.environ.get("REDIS_URL"), "redis://127.0.0.1:6379/0"):
        if url and redis_is_reachable(url):
            yield url
            return
    embedded = start_embedded_redis()
    try:
        yield embedded.url
    finally:
        embedded.stop()


@pytest.fixture(scope="session", autouse=True)
def isolated_services(redis_url: str) -> Iterator[dict[str, str]]:
    """Point Celery and the cache at the reachable Redis, with this run's own queue and key prefix."""
    from kombu import Queue

    from melanoma_site.celery import app as celery_app

    queue = f"melanoma-test-{RUN_ID}"
    housekeeping = f"{queue}.housekeeping"
    prefix = f"melanoma-test-{RUN_ID}"
    queues = (Queue(queue, routing_key=queue), Queue(housekeeping, routing_key=housekeeping))
    route = {"queue": housekeeping, "routing_key": housekeeping}
    routes = {name: route for name in django_settings.MELANOMA_HOUSEKEEPING_TASKS}
    overrides = override_settings(
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        MELANOMA_INFERENCE_QUEUE=queue,
        MELANOMA_HOUSEKEEPING_QUEUE=housekeeping,
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis_url,
                "KEY_PREFIX": prefix,
            }
        },
    )
    overrides.enable()
    celery_app.conf.update(
        broker_url=redis_url,
        task_default_queue=queue,
        task_default_routing_key=queue,
        task_queues=queues,
        task_routes=routes,
    )
    try:
        yield {"redis_url": redis_url, "queue": queue, "housekeeping_queue": housekeeping}
    finally:
        overrides.disable()
        import redis

        client = redis.Redis.from_url(redis_url)
        try:
            client.delete(queue, housekeeping)
            for key in client.scan_iter(f":*:{prefix}*"):
                client.delete(key)
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
        except redis.exceptions.RedisError:
            pass
        finally:
            client.close()


@contextmanager
def real_worker(queue: str) -> Iterator[object]:
    """A real Celery worker (solo pool, in a thread of this process) consuming `queue` from real Redis."""
    from celery.contrib.testing.worker import start_worker

    from melanoma_site.celery import app as celery_app

    with start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
        queues=[queue],
    ) as worker:
        yield worker


@pytest.fixture
def celery_worker(transactional_db, isolated_services) -> Iterator[object]:
    """A real worker on this run's queue.

    Tests using it must use `transactional_db`: the worker has its own database connection and must see
    committed rows.
    """
    with real_worker(isolated_services["queue"]) as worker:
        yield worker


def wait_for_status(prediction_id: int, statuses: set[str], timeout_s: float = 60.0):
    """Wait (not a timing assertion: a generous ceiling) until the row reaches one of `statuses`."""
    from classifier.models import Prediction

    deadline = time.monotonic() + timeout_s
    while True:
        prediction = Prediction.objects.get(pk=prediction_id)
        if prediction.status in statuses or time.monotonic() > deadline:
            return prediction
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def isolated_cache_keys(settings, isolated_services) -> None:
    """Counters in the cache (upload rate limit) are keyed by user id, and ids repeat across tests (SQLite
    rolls back its sequence): each test gets its own key prefix in the real Redis."""
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"melanoma-test-{RUN_ID}-{uuid.uuid4().hex[:8]}"}
    }


# --- media ----------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path: Path) -> Path:
    """Each test stores photos in its own folder, so that tests can assert exactly which files exist."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def media_files(media_root: Path) -> list[Path]:
    return sorted(path for path in Path(media_root).rglob("*") if path.is_file())


def stored_names(media_root: Path) -> set[str]:
    """Every stored file, as its storage name (relative to the media root)."""
    return {str(path.relative_to(media_root)) for path in media_files(media_root)}


def row_files(*predictions) -> set[str]:
    """The storage names these rows refer to, as they are in the database now: photo, thumbnail (the web's, or the
    worker's for a photo kept as taken), heatmap."""
    names: set[str] = set()
    for prediction in predictions:
        prediction.refresh_from_db()
        names |= {name for name in (prediction.image.name, prediction.thumbnail.name, prediction.heatmap.name) if name}
    return names


# --- users ----------------------------------------------------------------------------------------


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    """make_user(username, **fields): a user who logs in with TEST_PASSWORD."""
    return lambda username, **extra: UserFactory(username=username, **extra)


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


@pytest.fixture
def staff(db):
    """Staff flag only: opens the admin, but no one else's prediction."""
    return UserFactory(username="staffer", staff=True)


def join_clinicians(user):
    """Put `user` in the "clinician" group (made by a data migration; made again here because transactional
    tests flush it): it may then open other people's predictions, audited."""
    from django.contrib.auth.models import Group, Permission

    from audit.models import CLINICIAN_GROUP

    group, _ = Group.objects.get_or_create(name=CLINICIAN_GROUP)
    group.permissions.add(Permission.objects.get(content_type__app_label="classifier", codename="view_prediction"))
    user.groups.add(group)
    return user


def make_clinician(username: str):
    return join_clinicians(UserFactory(username=username, staff=True))


@pytest.fixture
def clinician(db):
    return make_clinician("clinician")


# --- the model ------------------------------------------------------------------------------------


def _shipped_model_dirs() -> list[Path]:
    """Shipped model folders that load and give a finite score (a broken export is ML's test to catch)."""
    from lesion_model.model_card import ModelCardError
    from lesion_model.scorer import MelanomaScorer

    probe = encode_image(Image.fromarray(lesion_pixels()), "JPEG")
    usable = []
    for card in sorted(Path(django_settings.MELANOMA_MODELS_DIR).glob("*/model_card.json")):
        try:
            score = MelanomaScorer(card.parent).score_bytes(probe)
        except (ModelCardError, ValueError, OSError, RuntimeError) as error:
            warnings.warn(f"Shipped model {card.parent.name} is not usable: {error}", stacklevel=1)
            continue
        if not math.isfinite(score):
            warnings.warn(f"Shipped model {card.parent.name} scores {score}; using a tiny test model", stacklevel=1)
            continue
        usable.append(card.parent)
    return usable


@pytest.fixture(scope="session")
def tiny_model(request, tmp_path_factory) -> Path:
    """The one synthetic LiteRT model folder of the suite (bench/synthetic.py): 32 px, a 2-way softmax that scores
    dark pictures high and pale skin low, threshold 0.5, version "tiny-test". Built once (in a subprocess:
    TensorFlow never loads into the process that runs the worker) and kept in pytest's cache when there is one.
    Tests that change it copy it first."""
    cache = getattr(request.config, "cache", None)
    parent = Path(cache.mkdir("melanoma-tiny-model-v2")) if cache else tmp_path_factory.mktemp("tiny-model")
    target = parent / "tiny-test"
    if not (target / "model_card.json").is_file():
        try:
            build_model_dir_in_subprocess(target, size=32, version="tiny-test", threshold=0.5)
        except subprocess.CalledProcessError as error:
            pytest.fail(f"The tiny test model could not be built: {error.stderr[-1500:]}")
    return target


@pytest.fixture(scope="session")
def model_dir(request) -> Path:
    """The shipped default model (models/), or, where none is shipped yet, the tiny test model."""
    shipped = _shipped_model_dirs()
    return shipped[-1] if shipped else request.getfixturevalue("tiny_model")


@pytest.fixture
def active_model(db, model_dir: Path):
    """Register and activate the model (transactional tests flush the row that `migrate` created)."""
    from classifier.inference import clear_cache
    from classifier.services.model_versions import model_version_register

    clear_cache()
    model_version = model_version_register(model_dir=model_dir, activate=True)
    yield model_version
    clear_cache()


# --- images ---------------------------------------------------------------------------------------


@pytest.fixture
def make_image_bytes() -> Callable[..., bytes]:
    """make_image_bytes(fmt="JPEG"|"PNG"|..., width=, height=, mode="RGB", seed=, **save_params) -> bytes."""

    def make(fmt: str = "JPEG", *, width: int = 320, height: int = 240, mode: str = "RGB", seed: int = 0, **params):
        image = Image.fromarray(lesion_pixels(width, height, seed))
        if mode != "RGB":
            image = image.convert(mode)
        return encode_image(image, fmt, **params)

    return make


@pytest.fixture
def make_upload(make_image_bytes) -> Callable[..., SimpleUploadedFile]:
    def make(name: str = "mole.jpg", content: bytes | None = None, content_type: str = "image/jpeg", **kwargs):
        return SimpleUploadedFile(name, make_image_bytes(**kwargs) if content is None else content, content_type)

    return make


@pytest.fixture
def real_photo_bytes(make_image_bytes) -> bytes:
    """A full-size phone photo from ../shared/derm/uploads when present, else a generated 1600x1200 JPEG."""
    photos = sorted(SHARED_UPLOADS.glob("*.jpg")) if SHARED_UPLOADS.is_dir() else []
    if photos:
        return photos[0].read_bytes()
    return make_image_bytes("JPEG", width=1600, height=1200, quality=92)
