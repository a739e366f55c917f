"""Issue 11, items 4, 5 and 7: each test plays the attack and checks that it no longer works.

4. a password change or reset revokes every API token and every other session;
5. nobody can lock someone else out: failures slow the guessing address (with backoff), a browser that logged
   in before still gets in, a reset lifts the lockout, the page says "15 minutes", and the client address comes
   from the trusted proxies only;
7. sign-up, password-reset e-mails and current-password checks are rate limited (429, a readable message).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse

from api_tokens.models import ApiToken
from melanoma_site.client_ip import client_ip
from tests.classifier.page_helpers import PASSWORD
from tests.factories import api_token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_isolated_cache")]
User = get_user_model()
NEW_PASSWORD = "a-brand-new-passphrase-31"
VICTIM_IP, ATTACKER_IP, OTHER_IP = "198.51.100.7", "203.0.113.66", "192.0.2.10"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _from(ip: str, **extra) -> Client:
    return Client(REMOTE_ADDR=ip, **extra)


def _logged_in(client: Client) -> bool:
    return client.get(reverse("accounts:account")).status_code == 200


def _login(client: Client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def _fail_logins(client: Client, username: str, times: int) -> None:
    for _ in range(times):
        _login(client, username, "a-wrong-guess")


def _reset_link(email_index: int = -1) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/reset/\S+)", mail.outbox[email_index].body).group(1)


def _reset_password(client: Client, email: str, new_password: str = NEW_PASSWORD):
    assert client.post(reverse("password_reset"), {"email": email}).status_code == 302
    form_page = client.get(_reset_link(), follow=True)
    return client.post(form_page.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password})


# --- 4: a new password shuts out the old credentials ----------------------------------------------------------


def test_password_change_revokes_tokens_and_other_sessions_but_keeps_this_one(alice):
    token = api_token_for(alice)
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get(reverse("api:prediction-list")).status_code == 200
    stolen_session = Client()
    stolen_session.force_login(alice)
    me = Client()
    me.force_login(alice)

    response = me.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302

    assert api.get(reverse("api:prediction-list")).status_code == 401
    assert not ApiToken.objects.filter(user=alice).exists()
    assert not _logged_in(stolen_session)
    assert _logged_in(me)


def test_password_reset_revokes_tokens_and_every_session(alice):
    token = api_token_for(alice)
    stolen_session = Client()
    stolen_session.force_login(alice)

    assert _reset_password(Client(), "alice@example.org").status_code == 302

    assert Client(HTTP_AUTHORIZATION=f"Token {token}").get(reverse("api:prediction-list")).status_code == 401
    assert not _logged_in(stolen_session)
    assert _login(Client(), "alice", NEW_PASSWORD).status_code == 302


def test_admin_password_change_revokes_tokens_too(alice, admin_user_ui):
    token = api_token_for(alice)
    admin = Client()
    admin.force_login(admin_user_ui)
    url = reverse("admin:auth_user_password_change", args=[alice.pk])
    response = admin.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})
    assert response.status_code == 302, response.content[:500]
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token}").get(reverse("api:prediction-list")).status_code == 401
    assert not ApiToken.objects.filter(user=alice).exists()


# --- 5: nobody can lock someone else out ----------------------------------------------------------------------


def test_a_stranger_failing_as_alice_does_not_lock_alice_out(alice, settings):
    """Guard for the per-address design: counting per username instead would let anyone lock alice out."""
    _fail_logins(_from(ATTACKER_IP), "alice", settings.AXES_FAILURE_LIMIT * 2)
    victim = _from(VICTIM_IP)
    assert _login(victim, "alice", PASSWORD).status_code == 302
    assert _logged_in(victim)


def test_the_guessing_address_is_paused_whichever_account_it_tries(alice, bob, settings):
    attacker = _from(ATTACKER_IP)
    _fail_logins(attacker, "alice", settings.AXES_FAILURE_LIMIT - 1)
    _fail_logins(attacker, "bob", 1)
    response = _login(attacker, "bob", PASSWORD)  # even the right password: the address is paused
    assert response.status_code == 429
    assert not _logged_in(attacker)


def test_logging_in_to_an_own_account_does_not_wipe_the_count(alice, bob, settings):
    """A guesser who logs in to their own account between guesses must not get a fresh budget each time."""
    attacker = _from(ATTACKER_IP)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _fail_logins(attacker, "alice", 1)
        _login(attacker, "bob", PASSWORD)
        attacker.post(reverse("logout"))
    assert _login(attacker, "alice", PASSWORD).status_code == 429


def test_a_browser_that_logged_in_before_still_gets_in_behind_the_same_address(alice, settings):
    """Behind one NAT or proxy, alice and the attacker share an address: her known browser is not held by it."""
    alices_browser = _from(ATTACKER_IP)
    assert _login(alices_browser, "alice", PASSWORD).status_code == 302
    alices_browser.post(reverse("logout"))

    _fail_logins(_from(ATTACKER_IP), "alice", settings.AXES_FAILURE_LIMIT * 2)
    assert _login(_from(ATTACKER_IP), "alice", PASSWORD).status_code == 429  # a new browser there is paused
    assert _login(alices_browser, "alice", PASSWORD).status_code == 302
    assert _logged_in(alices_browser)


def test_a_device_cookie_is_no_licence_to_guess(alice, settings):
    """A stolen device cookie gives no more guesses than anyone gets."""
    browser = _from(VICTIM_IP)
    _login(browser, "alice", PASSWORD)
    browser.post(reverse("logout"))
    _fail_logins(browser, "alice", settings.AXES_FAILURE_LIMIT * 2)
    assert _login(browser, "alice", PASSWORD).status_code == 429


def test_a_device_cookie_for_another_account_or_forged_does_not_count(alice, bob, settings):
    browser = _from(ATTACKER_IP)
    _login(browser, "bob", PASSWORD)
    browser.post(reverse("logout"))
    _fail_logins(_from(ATTACKER_IP), "alice", settings.AXES_FAILURE_LIMIT)
    assert _login(browser, "alice", PASSWORD).status_code == 429  # bob's device is not alice's
    forged = _from(ATTACKER_IP)
    forged.cookies["melanoma_device"] = browser.cookies["melanoma_device"].value.replace("b", "c", 1) + "x"
    assert _login(forged, "bob", PASSWORD).status_code == 429


def test_the_lockout_page_says_15_minutes_and_the_pause_doubles_for_a_repeat_offender(alice, settings):
    attacker = _from(ATTACKER_IP)
    _fail_logins(attacker, "alice", settings.AXES_FAILURE_LIMIT)
    response = _login(attacker, "alice", PASSWORD)
    assert response.status_code == 429
    text = response.content.decode()
    assert "15 minutes" in text
    assert "0:15:00" not in text
    assert "hours:minutes:seconds" not in text
    assert response["Retry-After"] == "900"

    # The pause is over (the attempts expired), the same address guesses again: a longer pause.
    from axes.models import AccessAttempt

    AccessAttempt.objects.all().delete()
    _fail_logins(attacker, "alice", settings.AXES_FAILURE_LIMIT)
    response = _login(attacker, "alice", PASSWORD)
    assert response.status_code == 429
    assert "30 minutes" in response.content.decode()
    # Nobody else is slowed by it.
    assert _login(_from(VICTIM_IP), "alice", PASSWORD).status_code == 302


def test_the_api_token_endpoint_says_minutes_too(alice, settings):
    api = _from(ATTACKER_IP, HTTP_ACCEPT="application/json")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        api.post(reverse("api:token"), {"username": "alice", "password": "guess"})
    response = api.post(reverse("api:token"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
    assert "15 minutes" in response.json()["detail"]


def test_a_password_reset_lifts_the_lockout(alice, settings):
    """alice shares the attacker's address (a new browser there): resetting her password gets her back in."""
    shared = _from(ATTACKER_IP)
    _fail_logins(_from(ATTACKER_IP), "alice", settings.AXES_FAILURE_LIMIT)
    assert _login(shared, "alice", PASSWORD).status_code == 429

    assert _reset_password(shared, "alice@example.org").status_code == 302
    assert _login(shared, "alice", NEW_PASSWORD).status_code == 302
    # And the failures against her account are forgotten for everyone on that address.
    assert _login(_from(ATTACKER_IP), "alice", NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        ([], "203.0.113.66", "198.51.100.7", "203.0.113.66"),  # no proxy trusted: the header is ignored
        (["127.0.0.1"], "127.0.0.1", "198.51.100.7", "198.51.100.7"),
        (["127.0.0.1"], "127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # spoofed left part ignored
        (["10.0.0.0/8"], "10.0.0.2", "198.51.100.7, 10.0.0.9", "198.51.100.7"),  # two proxies of ours
        (["127.0.0.1"], "203.0.113.66", "198.51.100.7", "203.0.113.66"),  # not from our proxy: header ignored
        (["127.0.0.1"], "127.0.0.1", "", "127.0.0.1"),
        (["127.0.0.1"], "127.0.0.1", "garbage", "127.0.0.1"),
        (["::1"], "::1", "[2001:db8::7]:443", "2001:db8::7"),
    ],
)
def test_client_address_comes_from_the_trusted_proxies_only(settings, trusted, remote, forwarded, expected):
    settings.MELANOMA_TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_behind_a_trusted_proxy_the_attacker_pauses_only_their_own_address(alice, settings):
    """Through a proxy every client used to share the proxy's address, so anyone could pause everyone."""
    settings.MELANOMA_TRUSTED_PROXIES = ["127.0.0.1"]
    attacker = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=ATTACKER_IP)
    _fail_logins(attacker, "alice", settings.AXES_FAILURE_LIMIT * 2)
    assert _login(attacker, "alice", PASSWORD).status_code == 429
    victim = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=VICTIM_IP)
    assert _login(victim, "alice", PASSWORD).status_code == 302


# --- 7: rate limits ---------------------------------------------------------------------------------------------


def _signup(client: Client, username: str):
    return client.post(reverse("accounts:signup"), {"username": username, "password1": PASSWORD, "password2": PASSWORD})


def test_signup_is_rate_limited_per_address(settings):
    settings.MELANOMA_SIGNUP_RATE_PER_HOUR = 3
    statuses = [_signup(_from(ATTACKER_IP), f"bot{index}").status_code for index in range(5)]
    assert statuses == [302, 302, 302, 429, 429]
    assert User.objects.count() == 3
    refused = _signup(_from(ATTACKER_IP), "bot9")
    assert "Too many new accounts" in refused.content.decode()
    assert refused["Retry-After"] == "3600"
    assert _signup(_from(VICTIM_IP), "dana").status_code == 302  # someone else signs up fine


def test_password_reset_mails_to_one_address_are_limited_from_any_number_of_addresses(alice, settings):
    settings.MELANOMA_PASSWORD_RESET_RATE_PER_HOUR_PER_EMAIL = 3
    statuses = [
        _from(f"203.0.113.{index}").post(reverse("password_reset"), {"email": "alice@example.org"}).status_code
        for index in range(12)
    ]
    assert statuses == [302] * 3 + [429] * 9
    assert len(mail.outbox) == 3
    response = _from(OTHER_IP).post(reverse("password_reset"), {"email": "ALICE@example.org"})
    assert response.status_code == 429
    assert "Too many reset e-mails" in response.content.decode()


def test_password_reset_mails_are_limited_per_client_address(make_user, settings):
    settings.MELANOMA_PASSWORD_RESET_RATE_PER_HOUR_PER_IP = 4
    for index in range(6):
        make_user(f"user{index}")
    attacker = _from(ATTACKER_IP)
    statuses = [
        attacker.post(reverse("password_reset"), {"email": f"user{index}@example.org"}).status_code
        for index in range(6)
    ]
    assert statuses == [302] * 4 + [429] * 2
    assert len(mail.outbox) == 4


def test_unknown_and_known_addresses_are_limited_alike(alice, settings):
    """The limit must not tell an attacker which addresses have an account."""
    settings.MELANOMA_PASSWORD_RESET_RATE_PER_HOUR_PER_EMAIL = 1
    for email in ("alice@example.org", "nobody@example.org"):
        client = _from(OTHER_IP)
        assert [client.post(reverse("password_reset"), {"email": email}).status_code for _ in range(2)] == [302, 429]


@pytest.mark.parametrize("form", ["password_change", "account_delete"])
def test_guessing_the_current_password_in_a_session_is_limited(form, alice, settings):
    """Someone at an unlocked laptop guesses the owner's password through the forms that ask for it."""
    settings.MELANOMA_PASSWORD_CHECK_FAILURES = 3
    client = Client()
    client.force_login(alice)

    def attempt(password: str):
        if form == "password_change":
            data = {"old_password": password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
            return client.post(reverse("password_change"), data)
        return client.post(reverse("accounts:account_delete"), {"password": password})

    wrong = 200 if form == "password_change" else 400  # the form again, with an error
    assert [attempt(f"guess-{index}").status_code for index in range(3)] == [wrong] * 3
    refused = attempt(PASSWORD)  # even the right one is not checked any more
    assert refused.status_code == 429
    assert "Too many wrong passwords" in refused.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
    assert User.objects.filter(pk=alice.pk).exists()
