"""Fixtures for the page, account and admin tests: three people (healthchecks' alice/bob/charlie), real
generated photos, and predictions created through the real upload service.

None of these is autouse, so that the API/worker tests in this folder keep their own set-up; page tests opt
in with `pytestmark = pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests.classifier.page_helpers import PASSWORD, lesion_jpeg


@pytest.fixture
def ui_private_media(private_media: Path) -> Path:
    """Uploaded photos go to a per-test folder (tests/conftest.py), so that tests can count the files left."""
    return private_media


@pytest.fixture
def ui_isolated_cache(settings) -> None:
    """The upload rate limit counts in the cache; a per-test in-memory cache keeps counts from leaking between
    tests (user ids repeat across tests) without flushing the Redis that Celery also uses."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(id(settings))}
    }


def _make_user(username: str, **extra):
    return get_user_model().objects.create_user(
        username=username, email=f"{username}@example.org", password=PASSWORD, **extra
    )


# alice (the owner) and bob (another user) come from tests/conftest.py.


@pytest.fixture
def charlie(db):
    """Staff (a clinician): may see everyone's predictions."""
    return _make_user("charlie", is_staff=True)


@pytest.fixture
def admin_user_ui(db):
    return _make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def jpeg_upload() -> Callable[..., SimpleUploadedFile]:
    def make(name: str = "mole.jpg", **kwargs) -> SimpleUploadedFile:
        return SimpleUploadedFile(name, lesion_jpeg(**kwargs), content_type="image/jpeg")

    return make


@pytest.fixture
def make_prediction(ui_private_media, jpeg_upload):
    """A prediction made by the real upload service (so its files exist), then put in the wanted state."""
    from classifier.models import ModelVersion, Prediction
    from classifier.services.prediction_writes import prediction_create

    def make(*, user, status: str = "queued", probability: float = 0.82, **fields) -> Prediction:
        prediction = prediction_create(user=user, upload=jpeg_upload(), body_site=fields.pop("body_site", "trunk"))
        updates: dict = {"status": status, **fields}
        if status == Prediction.Status.DONE:
            model_version, _ = ModelVersion.objects.get_or_create(
                version="test-model-1", defaults={"path": "models/test-model-1", "threshold": 0.35}
            )
            updates.update(
                score=probability,
                melanoma_probability=probability,
                risk_level="moderate" if probability >= model_version.threshold else "low",
                threshold=model_version.threshold,
                verdict="refer" if probability >= model_version.threshold else "low_risk",
                model_version=model_version,
                completed_at=timezone.now(),
            )
        elif status == Prediction.Status.FAILED:
            updates.update(error=fields.get("error", "The model file is missing."), completed_at=timezone.now())
        Prediction.objects.filter(pk=prediction.pk).update(**updates)
        prediction.refresh_from_db()
        return prediction

    return make
