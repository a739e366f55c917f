"""Fixtures for the page, account and admin tests: three people (healthchecks' alice/bob/charlie), real
generated photos, and predictions created through the real upload service.

None of these is autouse, so that the API/worker tests in this folder keep their own set-up; page tests opt
in with `pytestmark = pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bench.synthetic import lesion_jpeg
from tests.factories import PredictionFactory, UserFactory


@pytest.fixture
def ui_private_media(private_media: Path) -> Path:
    """Uploaded photos go to a per-test folder (tests/conftest.py), so that tests can count the files left."""
    return private_media


@pytest.fixture
def ui_isolated_cache(settings) -> None:
    """The rate limits count in the cache; a per-test in-memory cache keeps counts from leaking between tests
    (user ids repeat across tests) without flushing the Redis that Celery also uses. A random name: LocMemCache
    shares its store by name, and the id of a freed settings object can come back."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": uuid.uuid4().hex}
    }


# alice (the owner) and bob (another user) come from tests/conftest.py.


@pytest.fixture
def charlie(db):
    """A clinician (staff in the "clinician" group): may see everyone's predictions."""
    from tests.conftest import join_clinicians

    return join_clinicians(UserFactory(username="charlie", staff=True))


@pytest.fixture
def admin_user_ui(db):
    return UserFactory(username="root", superuser=True)


@pytest.fixture
def jpeg_upload() -> Callable[..., SimpleUploadedFile]:
    def make(name: str = "mole.jpg", **kwargs) -> SimpleUploadedFile:
        return SimpleUploadedFile(name, lesion_jpeg(**kwargs), content_type="image/jpeg")

    return make


@pytest.fixture
def make_prediction(ui_private_media):
    """make_prediction(user=, status="queued"|"done"|"failed", probability=0.82, **fields): a prediction made by
    the real upload service (so its files exist), then put in the wanted state (tests/factories.py)."""
    from classifier.models import Prediction

    def make(*, user, status: str = "queued", probability: float = 0.82, **fields) -> Prediction:
        if status == Prediction.Status.DONE:
            fields.update(done=True, score=probability, melanoma_probability=probability)
        elif status == Prediction.Status.FAILED:
            fields["failed"] = True
        else:
            fields["status"] = status
        return PredictionFactory(user=user, **fields)

    return make
