"""Suite-wide fixtures: real Redis, a real Celery worker, a real LiteRT model, real images.

Several engineers run the suite at the same time on one machine, against one PostgreSQL and one Redis, so
each run gets its own test database name, Celery queue and cache key prefix.
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.utils import override_settings
from PIL import Image

from melanoma_site.embedded_redis import redis_is_reachable, start_embedded_redis

RUN_ID = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
TEST_PASSWORD = "correct-horse-battery-staple-42"
SHARED_UPLOADS = Path(django_settings.BASE_DIR).parent / "shared" / "derm" / "uploads"
TINY_MODEL_SCRIPT = """
import sys
from pathlib import Path
import keras
from training.export import export_tflite
from training.model_card import write_model_card
model_dir, size = Path(sys.argv[1]), int(sys.argv[2])
inputs = keras.Input((size, size, 3))
outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(inputs))
export_tflite(keras.Model(inputs, outputs), model_dir, image_size=size)
write_model_card(model_dir, {"version": "test-tiny-model", "input_size": size, "threshold": 0.5,
    "normalisation": "imagenet_torch", "metrics": {}, "created": "1970-01-01T00:00:00Z"})
"""


# --- database: a name of our own ------------------------------------------------------------------


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory) -> None:
    """A test database no concurrent run uses: a file for SQLite (the worker thread needs a real file, not a
    shared in-memory database), a unique name for PostgreSQL (MELANOMA_TEST_DB_NAME overrides)."""
    database = django_settings.DATABASES["default"]
    test = database.setdefault("TEST", {})
    if database["ENGINE"].endswith("sqlite3"):
        test["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")
    else:
        test["NAME"] = os.environ.get("MELANOMA_TEST_DB_NAME") or f"test_melanoma_{RUN_ID.replace('-', '_')}"


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


# --- users ----------------------------------------------------------------------------------------


def _create_user(username: str, **extra):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(
        username=username, email=f"{username}@example.org", password=TEST_PASSWORD, **extra
    )


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    return _create_user


@pytest.fixture
def alice(db):
    return _create_user("alice")


@pytest.fixture
def bob(db):
    return _create_user("bob")


@pytest.fixture
def staff(db):
    return _create_user("staffer", is_staff=True)


# --- the model ------------------------------------------------------------------------------------


def _shipped_model_dirs() -> list[Path]:
    """Shipped model folders that load and give a finite score (a broken export is ML's test to catch)."""
    from training.model_card import ModelCardError
    from training.serving import LiteRTScorer

    probe = encode_image(Image.fromarray(lesion_pixels()), "JPEG")
    usable = []
    for card in sorted(Path(django_settings.MELANOMA_MODELS_DIR).glob("*/model_card.json")):
        try:
            score = LiteRTScorer(card.parent).score_bytes(probe)
        except (ModelCardError, ValueError, OSError, RuntimeError) as error:
            warnings.warn(f"Shipped model {card.parent.name} is not usable: {error}", stacklevel=1)
            continue
        if not math.isfinite(score):
            warnings.warn(f"Shipped model {card.parent.name} scores {score}; using a tiny test model", stacklevel=1)
            continue
        usable.append(card.parent)
    return usable


@pytest.fixture(scope="session")
def model_dir(request) -> Path:
    """The shipped default model (models/), or, where none is shipped yet, a tiny LiteRT model built once
    (in a subprocess: TensorFlow never loads into the process that runs the worker) and cached."""
    shipped = _shipped_model_dirs()
    if shipped:
        return shipped[-1]
    target = Path(request.config.cache.mkdir("melanoma-tiny-model"))
    if not (target / "model.tflite").is_file():
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-c", TINY_MODEL_SCRIPT, str(target), "64"],
            capture_output=True,
            text=True,
            cwd=django_settings.BASE_DIR,
            timeout=600,
        )
        if result.returncode != 0:
            pytest.skip(f"No shipped model and the tiny test model could not be built: {result.stderr[-500:]}")
    return target


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


def lesion_pixels(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """Skin-toned noise with a dark irregular blob: a photo-like image, different for every seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    radius = min(width, height) * (0.25 + 0.05 * np.sin(np.arctan2(yy - height / 2, xx - width / 2) * 5))
    inside = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2) < radius**2
    skin, mole = np.array([214, 168, 140], np.float32), np.array([92, 58, 44], np.float32)
    pixels = np.where(inside[..., None], mole, skin) + rng.normal(0, 8, size=(height, width, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def encode_image(image: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


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
