"""Accounts: sign up, log in/out, change and reset password, login throttling, account deletion."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from classifier.models import Prediction
from tests.classifier.page_helpers import PASSWORD, stored_files
from tests.conftest import row_files, stored_names

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")]
User = get_user_model()


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_signup_creates_the_account_and_logs_in(client):
    response = client.post(
        reverse("accounts:signup"),
        {"username": "dana", "email": "dana@example.org", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("classifier:upload")
    user = User.objects.get(username="dana")
    assert user.email == "dana@example.org"
    assert user.check_password(PASSWORD)
    assert _logged_in(client)
    assert client.get(reverse("classifier:upload")).status_code == 200


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"username": "erin", "password1": PASSWORD, "password2": PASSWORD + "x"}, "password2"),
        ({"username": "erin", "password1": "123", "password2": "123"}, "password2"),
        ({"username": "", "password1": PASSWORD, "password2": PASSWORD}, "username"),
        ({"username": "alice", "password1": PASSWORD, "password2": PASSWORD}, "username"),
    ],
)
def test_signup_errors_are_shown_and_create_nothing(client, alice, data, field):
    response = client.post(reverse("accounts:signup"), data)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert 'class="errorlist' in response.content.decode()
    assert User.objects.count() == 1
    assert not _logged_in(client)


def test_signup_page_labels_every_field(client):
    html = client.get(reverse("accounts:signup")).content.decode()
    for field_id in ("id_username", "id_email", "id_password1", "id_password2"):
        assert f'for="{field_id}"' in html


def test_login_and_logout(client, alice):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert 'for="id_username"' in page.content.decode()
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("classifier:upload")
    assert _logged_in(client)

    assert client.get(reverse("logout")).status_code == 405  # logging out is a POST
    assert _logged_in(client)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("landing")
    assert not _logged_in(client)


def test_login_redirects_back_to_the_page_asked_for(client, alice):
    target = reverse("classifier:history")
    response = client.post(
        f"{reverse('login')}?next={target}", {"username": "alice", "password": PASSWORD, "next": target}
    )
    assert response["Location"] == target


def test_wrong_password_shows_a_readable_error(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()
    assert not _logged_in(client)


def test_repeated_failed_logins_are_locked_out_with_a_readable_page(client, alice, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many failed log-ins" in html
    assert "/static/css/site.css" in html
    assert not _logged_in(client)


def test_change_password(client, alice):
    client.force_login(alice)
    assert client.get(reverse("password_change")).status_code == 200
    new_password = "another-long-passphrase-77"
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(new_password)


def test_reset_password_by_email(client, alice):
    response = client.post(reverse("password_reset"), {"email": "alice@example.org"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    new_password = "reset-passphrase-for-alice-9"
    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(new_password)


def test_reset_for_an_unknown_email_sends_nothing_and_says_the_same(client):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.org"}, follow=True)
    assert response.status_code == 200
    assert "Check your e-mail" in response.content.decode()
    assert mail.outbox == []


def test_account_page(client, alice):
    client.force_login(alice)
    html = client.get(reverse("accounts:account")).content.decode()
    assert "alice" in html
    assert reverse("accounts:account_delete") in html


def test_delete_account_with_a_wrong_password_changes_nothing(client, alice, make_prediction, ui_private_media):
    prediction = make_prediction(user=alice, status="done")
    client.force_login(alice)
    response = client.post(reverse("accounts:account_delete"), {"password": "wrong"})
    assert response.status_code == 400
    assert User.objects.filter(username="alice").exists()
    assert Prediction.objects.count() == 1
    assert len(stored_files(ui_private_media)) == 2  # the photo and the worker's thumbnail
    assert stored_names(ui_private_media) == row_files(prediction)


def test_delete_account_removes_the_user_rows_and_files_only_theirs(
    client, alice, bob, make_prediction, ui_private_media, django_capture_on_commit_callbacks
):
    make_prediction(user=alice)
    make_prediction(user=alice, status="done")
    bobs = make_prediction(user=bob)
    client.force_login(alice)
    assert client.get(reverse("accounts:account_delete")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:account_delete"), {"password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("landing")
    assert not User.objects.filter(username="alice").exists()
    assert list(Prediction.objects.all()) == [bobs]
    assert stored_names(ui_private_media) == row_files(bobs)
    assert not _logged_in(client)
