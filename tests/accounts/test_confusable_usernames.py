"""Issue 11, item 16: a username that only looks like another ("aliсe" with a Cyrillic "с") is refused."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.usernames import username_skeletons
from tests.classifier.page_helpers import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_isolated_cache")]
User = get_user_model()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _signup(username: str):
    return Client().post(
        reverse("accounts:signup"), {"username": username, "password1": PASSWORD, "password2": PASSWORD}
    )


@pytest.mark.parametrize(
    "look_alike",
    [
        "ali\u0441e",  # Cyrillic es: the attack of the issue
        "\u0430lice",  # Cyrillic a
        "a1ice",  # digit one for l
        "aIice",  # capital i for l
        "ALICE",  # case only
        "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth: NFKC makes it "alice"
    ],
)
def test_a_look_alike_of_an_existing_name_is_refused(alice, look_alike):
    response = _signup(look_alike)
    assert response.status_code == 400
    errors = " ".join(response.context["form"].errors["username"])
    assert "looks too much like" in errors or "different alphabets" in errors or "already exists" in errors
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]


def test_mixing_alphabets_is_refused_even_without_a_twin(db):
    response = _signup("p\u0430ypal")  # Latin with a Cyrillic a
    assert response.status_code == 400
    assert "different alphabets" in " ".join(response.context["form"].errors["username"])
    assert not User.objects.exists()


@pytest.mark.parametrize("name", ["alicia", "Jürgen", "Дмитрий", "bob.smith", "dana_42"])
def test_ordinary_names_in_any_one_alphabet_still_work(alice, name):
    assert _signup(name).status_code == 302
    assert User.objects.filter(username=name).exists()


def test_the_admin_add_user_form_applies_the_same_rule(alice, admin_user_ui):
    client = Client()
    client.force_login(admin_user_ui)
    response = client.post(
        reverse("admin:auth_user_add"),
        {"username": "ali\u0441e", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert not User.objects.filter(username="ali\u0441e").exists()


def test_skeletons():
    assert username_skeletons("alice") & username_skeletons("ali\u0441e")
    assert not username_skeletons("alice") & username_skeletons("alicia")
