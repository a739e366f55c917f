"""API tokens: Bearer or Token, several per person, listed without secrets, revoked one or all, optional expiry;
only a digest is stored; tokens from before this app keep working."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.utils import timezone

from api_tokens.models import ApiToken
from api_tokens.services import api_token_create, tokens_revoke_all
from tests.factories import TEST_PASSWORD, api_token_for

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/token/"
LIST_URL = "/api/predictions/"


def _api(key: str | None = None, keyword: str = "Bearer") -> Client:
    headers = {"HTTP_ACCEPT": "application/json"}
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = f"{keyword} {key}"
    return Client(**headers)


@pytest.mark.parametrize("keyword", ["Bearer", "Token", "bearer"])
def test_bearer_and_token_both_work(alice, keyword):
    assert _api(api_token_for(alice), keyword).get(LIST_URL).status_code == 200


def test_no_or_a_wrong_token_is_401_and_says_bearer(alice):
    for client in (_api(), _api("not-a-token")):
        response = client.get(LIST_URL)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert _api("a b", "Bearer").get(LIST_URL).status_code == 401


def test_log_in_gives_a_token_that_is_stored_only_as_a_digest(alice):
    response = _api().post(TOKEN_URL, {"username": "alice", "password": TEST_PASSWORD, "name": "clinic app"})
    assert response.status_code == 200
    key = response.json()["token"]
    row = ApiToken.objects.get(user=alice)
    assert row.key_digest == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {row.key_digest, row.prefix, row.name}
    assert (row.name, response.json()["expires_at"]) == ("clinic app", None)
    assert _api(key).get(LIST_URL).status_code == 200


def test_a_bad_login_says_so_once(alice):
    response = _api().post(TOKEN_URL, {"username": "alice", "password": "wrong"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Unable to log in with provided credentials."}
    assert not ApiToken.objects.exists()


def test_optional_expiry(alice):
    response = _api().post(TOKEN_URL, {"username": "alice", "password": TEST_PASSWORD, "expires_in_days": 30})
    expires_at = ApiToken.objects.get(user=alice).expires_at
    assert timedelta(days=29) < expires_at - timezone.now() <= timedelta(days=30)
    assert response.json()["expires_at"]
    bad = _api().post(TOKEN_URL, {"username": "alice", "password": TEST_PASSWORD, "expires_in_days": 0})
    assert bad.status_code == 400
    assert "expires_in_days" in bad.json()["detail"]


def test_an_expired_token_is_refused_with_a_reason(alice):
    token, key = api_token_create(user=alice, expires_in_days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _api(key).get(LIST_URL)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_list_shows_my_tokens_without_secrets(alice, bob):
    first, first_key = api_token_create(user=alice, name="phone")
    second_key = api_token_for(alice, name="clinic")
    api_token_for(bob, name="bob's")
    response = _api(second_key).get(TOKEN_URL)
    assert response.status_code == 200
    listed = response.json()
    assert [token["name"] for token in listed] == ["clinic", "phone"]
    assert [token["current"] for token in listed] == [True, False]
    text = response.content.decode()
    for secret in (first_key, second_key, first.key_digest):
        assert secret not in text
    assert "bob" not in text


def test_delete_revokes_the_token_in_use(alice):
    key, other = api_token_for(alice), api_token_for(alice)
    assert _api(key).delete(TOKEN_URL).status_code == 204
    assert _api(key).get(LIST_URL).status_code == 401
    assert _api(other).get(LIST_URL).status_code == 200


def test_delete_by_id_only_for_my_own_tokens(alice, bob):
    bobs, _ = api_token_create(user=bob)
    mine, _ = api_token_create(user=alice)
    client = _api(api_token_for(alice))
    assert client.delete(f"{TOKEN_URL}?id={bobs.pk}").status_code == 404
    assert client.delete(f"{TOKEN_URL}?id=nonsense").status_code == 404
    assert ApiToken.objects.filter(pk=bobs.pk).exists()
    assert client.delete(f"{TOKEN_URL}?id={mine.pk}").status_code == 204
    assert not ApiToken.objects.filter(pk=mine.pk).exists()


def test_delete_all_and_the_service_other_features_call(alice, bob):
    keys = [api_token_for(alice) for _ in range(3)]
    api_token_for(bob)
    assert _api(keys[0]).delete(f"{TOKEN_URL}?all=true").status_code == 204
    assert not ApiToken.objects.filter(user=alice).exists()
    assert ApiToken.objects.filter(user=bob).count() == 1
    assert tokens_revoke_all(user=bob) == 1


def test_delete_signed_in_by_session_must_say_which(alice):
    api_token_for(alice)
    client = Client()
    client.force_login(alice)
    response = client.delete(TOKEN_URL)
    assert response.status_code == 400
    assert set(response.json()) == {"detail"}
    assert ApiToken.objects.filter(user=alice).count() == 1


@pytest.mark.django_db(transaction=True)
def test_tokens_issued_before_this_app_keep_working(alice):
    """The migration turns DRF authtoken rows (key in clear) into ApiTokens and drops the old table."""
    migration = __import__("api_tokens.migrations.0002_convert_legacy_tokens", fromlist=["convert_legacy_tokens"])
    with connection.schema_editor() as editor:
        editor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id bigint NOT NULL, created timestamp)"
        )
        editor.execute(
            "INSERT INTO authtoken_token (key, user_id, created) VALUES (%s, %s, %s)",
            ["0123456789abcdef0123456789abcdef01234567", alice.pk, timezone.now().replace(tzinfo=None)],
        )
        migration.convert_legacy_tokens(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    assert _api("0123456789abcdef0123456789abcdef01234567", "Token").get(LIST_URL).status_code == 200
