"""Fixtures for the spot tests: alice's spot with two finished checks a month apart, clients for pages and API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from classifier.models import ModelVersion, Prediction
from classifier.services.prediction_writes import prediction_create
from tests.classifier.page_helpers import lesion_jpeg
from tests.factories import api_token_for

SECRET_SPOT = "secret-spot-name-7f3a"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def locmem_email_and_site(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.MELANOMA_SITE_URL = "http://testserver"


def session_client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def token_client(user) -> Client:
    token = api_token_for(user)
    return Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_ACCEPT="application/json")


def finish(prediction: Prediction, *, verdict: str, probability: float, when: dt.datetime) -> Prediction:
    """Put a check in the finished state, dated `when` (the upload service stamps 'now')."""
    model_version, _ = ModelVersion.objects.get_or_create(
        version="test-model-1", defaults={"path": "models/test-model-1", "threshold": 0.35}
    )
    Prediction.objects.filter(pk=prediction.pk).update(
        status=Prediction.Status.DONE,
        verdict=verdict,
        melanoma_probability=probability,
        threshold=model_version.threshold,
        model_version=model_version,
        created_at=when,
        completed_at=when,
    )
    prediction.refresh_from_db()
    return prediction


@pytest.fixture
def spot_with_checks(alice, private_media):
    """alice's spot: a low-risk check two months ago, then a month later a 'refer' one with 'itching' ticked."""
    from spots.services import spot_create

    spot = spot_create(user=alice, name=SECRET_SPOT, view="back", x=0.5, y=0.3, recheck_months=1)
    now = timezone.now()
    older = prediction_create(user=alice, upload=lesion_jpeg(seed=1), spot=spot)
    newer = prediction_create(user=alice, upload=lesion_jpeg(seed=2), spot=spot, symptoms=["itching"])
    finish(older, verdict="low_risk", probability=0.1, when=now - dt.timedelta(days=61))
    finish(newer, verdict="refer", probability=0.6, when=now - dt.timedelta(days=31))
    return spot, older, newer
