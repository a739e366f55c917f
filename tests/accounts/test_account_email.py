"""Adding or changing the e-mail address with a confirmation link (works logged out); signup sends one too."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import VerifiedEmail
from accounts.selectors import user_verified_email
from accounts.services import email_confirm_token


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.MELANOMA_SITE_URL = "http://testserver"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _link(message) -> str:
    return re.search(r"http://testserver(/accounts/email/confirm/\S+/)", message.body).group(1)


def test_change_email_then_confirm_logged_out(alice):
    client = Client()
    client.force_login(alice)
    assert "Change your e-mail address" in client.get(reverse("accounts:account")).content.decode()
    response = client.post(reverse("accounts:account_email"), {"email": "new@example.org"})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.email == "alice@example.org"  # unchanged until the link is opened
    [message] = mail.outbox
    assert message.to == ["new@example.org"]
    confirmed = Client().get(_link(message))  # logged out, e.g. on a phone
    assert confirmed.status_code == 200
    alice.refresh_from_db()
    assert alice.email == "new@example.org"
    assert user_verified_email(user=alice) == "new@example.org"
    account = client.get(reverse("accounts:account")).content.decode()
    assert "confirmed" in account
    assert "Export my data" in account


def test_bad_email_is_a_form_error(alice):
    client = Client()
    client.force_login(alice)
    response = client.post(reverse("accounts:account_email"), {"email": "not-an-address"})
    assert response.status_code == 400
    assert mail.outbox == []


def test_tampered_or_expired_link_is_refused(alice, settings):
    token = email_confirm_token(user=alice, email="evil@example.org")
    assert Client().get(reverse("accounts:email_confirm", args=[token[:-3] + "abc"])).status_code == 400
    settings.MELANOMA_EMAIL_CONFIRM_MAX_AGE_S = -1
    assert Client().get(reverse("accounts:email_confirm", args=[token])).status_code == 400
    alice.refresh_from_db()
    assert alice.email == "alice@example.org"
    assert VerifiedEmail.objects.count() == 0


def test_an_unconfirmed_or_replaced_address_is_not_verified(alice):
    assert user_verified_email(user=alice) is None
    Client().get(reverse("accounts:email_confirm", args=[email_confirm_token(user=alice, email="a@example.org")]))
    alice.refresh_from_db()
    assert user_verified_email(user=alice) == "a@example.org"
    alice.email = "b@example.org"
    alice.save()
    assert user_verified_email(user=alice) is None


def test_signup_with_an_email_sends_a_confirmation_link(db):
    response = Client().post(
        reverse("accounts:signup"),
        {
            "username": "newbie",
            "email": "newbie@example.org",
            "password1": "a-long-and-unusual-passphrase-31",
            "password2": "a-long-and-unusual-passphrase-31",
        },
    )
    assert response.status_code == 302
    [message] = mail.outbox
    assert message.to == ["newbie@example.org"]
    assert "/accounts/email/confirm/" in message.body
