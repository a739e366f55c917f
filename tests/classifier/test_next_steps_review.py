"""What to do next on the result page (by risk level), and the clinician's review: shown, and e-mailed once."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import VerifiedEmail
from classifier.risk import NEXT_STEPS, next_steps_for
from classifier.services.prediction_writes import prediction_mark_reviewed

pytestmark = pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")
FORBIDDEN = ("you have cancer", "this is benign", "you have melanoma")


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.MELANOMA_SITE_URL = "http://testserver"


def _page(user, prediction) -> str:
    client = Client()
    client.force_login(user)
    return client.get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()


def test_refer_says_how_soon_by_whom_what_to_bring_and_abcde(alice, make_prediction):
    page = _page(alice, make_prediction(user=alice, status="done", probability=0.9))
    for words in ("within the next few weeks", "GP", "dermatologist", "Bring", "asymmetry", "border", "evolving"):
        assert words in page
    assert not any(phrase in page.lower() for phrase in FORBIDDEN)


def test_low_says_when_to_recheck_and_what_brings_you_back(alice, make_prediction):
    page = _page(alice, make_prediction(user=alice, status="done", probability=0.01))
    assert "again in about three months" in page
    assert "Come back sooner" in page
    assert not any(phrase in page.lower() for phrase in FORBIDDEN)


def test_every_next_steps_template_keeps_the_tone():
    from django.template.loader import get_template

    for key, steps in NEXT_STEPS.items():
        source = get_template(steps.template).template.source.lower()
        assert not any(phrase in source for phrase in FORBIDDEN), key


def test_a_graded_risk_level_is_preferred_when_present(alice, make_prediction):
    prediction = make_prediction(user=alice, status="done", probability=0.01)
    prediction.risk_level = "high"  # what a later model may store
    assert next_steps_for(prediction).see_within == "the next two weeks"


def test_no_next_steps_before_a_result(alice, make_prediction):
    assert "What to do next" not in _page(alice, make_prediction(user=alice, status="queued"))


def test_review_is_shown_and_emailed_once_to_a_confirmed_address(
    alice, charlie, make_prediction, django_capture_on_commit_callbacks
):
    VerifiedEmail.objects.create(user=alice, email=alice.email, verified_at=timezone.now())
    prediction = make_prediction(user=alice, status="done", probability=0.9)
    with django_capture_on_commit_callbacks(execute=True):
        prediction_mark_reviewed(prediction=prediction, reviewer=charlie, diagnosis="not_melanoma", comment="Seen.")
    with django_capture_on_commit_callbacks(execute=True):
        prediction_mark_reviewed(prediction=prediction, reviewer=charlie, diagnosis="not_melanoma")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [alice.email]
    assert "Not melanoma" in mail.outbox[0].body
    page = _page(alice, prediction)
    assert 'data-testid="review"' in page
    assert "Not melanoma" in page
    assert "Seen." in page


def test_no_review_email_to_an_unconfirmed_address(alice, charlie, make_prediction, django_capture_on_commit_callbacks):
    prediction = make_prediction(user=alice, status="done", probability=0.9)
    with django_capture_on_commit_callbacks(execute=True):
        prediction_mark_reviewed(prediction=prediction, reviewer=charlie, diagnosis="melanoma")
    assert mail.outbox == []


def test_admin_review_comment_reaches_the_person(
    admin_user_ui, alice, make_prediction, django_capture_on_commit_callbacks
):
    VerifiedEmail.objects.create(user=alice, email=alice.email, verified_at=timezone.now())
    prediction = make_prediction(user=alice, status="done", probability=0.9)
    client = Client()
    client.force_login(admin_user_ui)
    url = reverse("admin:classifier_prediction_change", args=[prediction.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"confirmed_diagnosis": "other", "review_comment": "Seborrhoeic keratosis."})
    assert response.status_code == 302, response.content[:500]
    prediction.refresh_from_db()
    assert (prediction.reviewed, prediction.review_comment) == (True, "Seborrhoeic keratosis.")
    assert len(mail.outbox) == 1
    assert "Seborrhoeic keratosis." in mail.outbox[0].body
