"""Who may do what, for every URL of the site: one table, checked against the URLconf.

Every named URL must have a row in ACCESS (the admin, which has its own permission system, is checked as a
whole): a URL added without saying who may use it fails `test_every_url_has_an_access_rule`. Each row says,
for each method and each person, the status to expect:

- owner: alice, whose predictions and spot the ids point at; other: bob, an ordinary user; staff: the staff flag
  alone (opens the admin, no one else's prediction); clinician: staff in the "clinician" group (may read
  everyone's predictions, audited, never change them; spots, their reports and a check's report stay the
  owner's: 404); anonymous: nobody signed in.
- Pages send anonymous people to the login page (LOGIN); the API answers 401. Someone else's id is 404 on
  every method, never 403: ids cannot be probed.
- The two links sent by e-mail (reminder unsubscribe, e-mail confirmation) work signed out: the signed token is
  the proof. Here they get a forged token, which is 400 for everyone.

Whenever the answer is a refusal, and whatever bob or the staff member is answered, no byte of alice's photo,
note, result, error or spot name leaves; nothing in the database or the media folder changes for anyone but
alice. Every POST (and API PATCH/DELETE) is refused without a CSRF token when the person is signed in by
session cookie; every form a page renders carries the token.
"""

from __future__ import annotations

import html
import io
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse

from accounts.models import VerifiedEmail
from classifier.models import ModelVersion, Prediction
from lesion_model.explain import heatmap_png
from spots.models import Spot
from spots.services import prediction_move_to_spot, spot_create
from tests.conftest import make_clinician, media_files
from tests.factories import PredictionFactory, UserFactory, api_token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_isolated_cache")]

OWNER, OTHER, STAFF, CLINICIAN, ANONYMOUS = "owner", "other", "staff", "clinician", "anonymous"
PEOPLE = (OWNER, OTHER, STAFF, CLINICIAN, ANONYMOUS)
LOGIN = 3020  # a 302 to the login page (and nowhere else)
SECRET_NOTE = "secret note: left breast, since May"
SECRET_RESULT = "about 37 in 100 lesions with this result were melanoma"  # what her level meant (the card)
SECRET_ERROR = "The model file is missing."
SECRET_SPOT = "secret spot: mole under the left shoulder blade"
SPOT = "spot"  # Rule.target for URLs that take alice's spot id
FORGED_TOKEN = {"token": "eyJzcG90IjoxfQ:forged:signature"}  # the e-mailed links' signed token, tampered with


@dataclass(frozen=True)
class Rule:
    """method -> person -> expected status (a set where the answer legitimately depends on the environment)."""

    methods: dict[str, dict[str, int | frozenset[int]]]
    api: bool = False
    csrf: bool = True  # POST/PATCH/DELETE by a session-signed-in person needs the CSRF token
    target: str = "done"  # what of alice's the id points at: her "done" or "failed" prediction, or her SPOT
    csrf_as: str = OWNER  # who sends the forged request (ANONYMOUS for the forms of people not signed in)
    kwargs: dict[str, str] = field(default_factory=dict)


def _everyone(status, **overrides) -> dict[str, int | frozenset[int]]:
    return {person: overrides.get(person, status) for person in PEOPLE}


def public_page(*, post: int | None = None) -> Rule:
    methods = {"get": _everyone(200)}
    if post is not None:
        methods["post"] = _everyone(post)
    return Rule(methods, csrf_as=ANONYMOUS)


def signed_in_page(*, get: int = 200, post: int | None = None) -> Rule:
    methods = {"get": _everyone(get, anonymous=LOGIN)}
    if post is not None:
        methods["post"] = _everyone(post, anonymous=LOGIN)
    return Rule(methods)


def owner_page(*, clinician_reads: bool, target: str = "done") -> Rule:
    """A page about one prediction or spot: its owner (and a clinician, where `clinician_reads`) may see it; GET
    only."""
    methods = {
        "get": {OWNER: 200, OTHER: 404, STAFF: 404, CLINICIAN: 200 if clinician_reads else 404, ANONYMOUS: LOGIN},
        # The method is checked before anything else: nothing is looked up, so nothing can leak.
        "post": _everyone(405),
        "delete": _everyone(405),
    }
    return Rule(methods, target=target)


def owner_only(status: int, *, anonymous: int = LOGIN) -> dict[str, int | frozenset[int]]:
    """Only alice gets `status`; everyone else signed in is told there is no such thing."""
    return {OWNER: status, OTHER: 404, STAFF: 404, CLINICIAN: 404, ANONYMOUS: anonymous}


def owner_action(*, target: str) -> Rule:
    """A POST-only button about one prediction: only its owner may press it."""
    methods = {
        "get": {OWNER: 405, OTHER: 405, STAFF: 405, CLINICIAN: 405, ANONYMOUS: 405},
        "post": {OWNER: 302, OTHER: 404, STAFF: 404, CLINICIAN: 404, ANONYMOUS: LOGIN},
    }
    return Rule(methods, target=target)


def api(methods: dict[str, dict[str, int | frozenset[int]]], *, target: str = "done", csrf: bool = True) -> Rule:
    return Rule(methods, api=True, target=target, csrf=csrf)


ACCESS: dict[str, Rule] = {
    # public
    "landing": public_page(),
    "healthz": Rule({"get": _everyone(frozenset({200, 503}))}, csrf=False),  # 503 names what is down
    "favicon": Rule({"get": _everyone(301), "post": _everyone(405)}, csrf=False),  # to the static file
    # For the scraper only: its token or an allow-listed address (neither is set here); no session opens it.
    "metrics": Rule({"get": _everyone(403), "post": _everyone(405)}, csrf=False),
    "login": public_page(post=200),
    "logout": Rule({"post": _everyone(302)}),
    # signed-in people are sent on to the upload page
    "accounts:signup": Rule({method: _everyone(302, anonymous=200) for method in ("get", "post")}, csrf_as=ANONYMOUS),
    "password_reset": public_page(post=200),
    "password_reset_done": public_page(),
    "password_reset_confirm": Rule(
        {"get": _everyone(200)}, csrf_as=ANONYMOUS, kwargs={"uidb64": "MQ", "token": "set-password"}
    ),
    "password_reset_complete": public_page(),
    # signed in
    "classifier:upload": signed_in_page(post=400),  # 400: a form without a photo
    "classifier:history": signed_in_page(),
    "accounts:account": signed_in_page(),
    "accounts:account_delete": signed_in_page(post=200),
    "accounts:account_email": signed_in_page(post=200),  # 200: an empty POST is the blank form again
    "accounts:account_export": Rule({"get": _everyone(200, anonymous=LOGIN), "post": _everyone(405)}),  # one's own
    # the link in the confirmation e-mail: GET only, signed out too; a forged token is 400
    "accounts:email_confirm": Rule({"get": _everyone(400), "post": _everyone(405)}, kwargs=FORGED_TOKEN),
    "password_change": signed_in_page(post=200),
    "password_change_done": signed_in_page(),
    # one prediction: its owner, and a clinician where they may read (the staff flag alone opens nothing)
    "classifier:prediction_detail": owner_page(clinician_reads=True),
    "classifier:prediction_status": owner_page(clinician_reads=True),
    "classifier:prediction_image": owner_page(clinician_reads=True),
    "classifier:prediction_thumbnail": owner_page(clinician_reads=True),
    "classifier:prediction_heatmap": owner_page(clinician_reads=True),
    "classifier:prediction_delete": Rule(
        {
            "get": {OWNER: 200, OTHER: 404, STAFF: 404, CLINICIAN: 404, ANONYMOUS: LOGIN},  # the confirmation page
            "post": {OWNER: 302, OTHER: 404, STAFF: 404, CLINICIAN: 404, ANONYMOUS: LOGIN},
            "delete": {
                OWNER: 200,
                OTHER: 404,
                STAFF: 404,
                CLINICIAN: 404,
                ANONYMOUS: LOGIN,
            },  # not a form's method: the page
        }
    ),
    "classifier:prediction_retry": owner_action(target="failed"),
    # spots are the owner's alone, from a clinician too (who reads checks on their result pages and in the admin)
    "spots:spot_new": signed_in_page(post=200),  # 200: an empty POST is the blank form again
    "spots:spot_detail": owner_page(clinician_reads=False, target=SPOT),
    "spots:spot_edit": Rule({"get": owner_only(200), "post": owner_only(200)}, target=SPOT),  # 200: empty form
    "spots:spot_delete": Rule(
        {"get": owner_only(200), "post": owner_only(302), "delete": owner_only(200)}, target=SPOT
    ),  # GET (and DELETE, not a form's method) show the confirmation page
    "spots:spot_report": owner_page(clinician_reads=False, target=SPOT),
    "spots:prediction_report": owner_page(clinician_reads=False),  # the owner's document for her doctor
    "spots:prediction_move": owner_action(target="done"),  # an empty form takes the check out of its spot
    # The one-click unsubscribe link of a reminder: signed out too, and POSTed by mail clients (RFC 8058) without
    # a CSRF token, so it is exempt: the signed token is the proof. A forged token is 400 and changes nothing.
    # The account page's "no reminders for any spot" switch: POST only, about one's own account (an empty POST
    # changes nothing and goes back to the account page).
    "spots:account_reminders": Rule({"get": _everyone(405), "post": _everyone(302, anonymous=LOGIN)}),
    "spots:unsubscribe": Rule({"get": _everyone(400), "post": _everyone(400)}, csrf=False, kwargs=FORGED_TOKEN),
    # the API: token or session; anonymous is 401
    # POST: credentials in the body (400: none given); GET lists and DELETE revokes the caller's own tokens
    "api:token": api(
        {"post": _everyone(400), "get": _everyone(200, anonymous=401), "delete": _everyone(204, anonymous=401)}
    ),
    "api:root": api({"get": _everyone(200)}),
    "api:schema": api({"get": _everyone(200)}),
    "api:docs": api({"get": _everyone(200)}),
    "api:prediction-list": api({"get": _everyone(200, anonymous=401), "post": _everyone(400, anonymous=401)}),
    "api:prediction-detail": api(
        {
            "get": {OWNER: 200, OTHER: 404, STAFF: 404, CLINICIAN: 200, ANONYMOUS: 401},
            "post": {OWNER: 405, OTHER: 405, STAFF: 405, CLINICIAN: 405, ANONYMOUS: 401},
            "delete": {OWNER: 204, OTHER: 404, STAFF: 404, CLINICIAN: 404, ANONYMOUS: 401},
        }
    ),
    "api:prediction-image": api(
        {
            "get": {OWNER: 200, OTHER: 404, STAFF: 404, CLINICIAN: 200, ANONYMOUS: 401},
            "delete": {OWNER: 405, OTHER: 405, STAFF: 405, CLINICIAN: 405, ANONYMOUS: 401},
        }
    ),
    "api:prediction-thumbnail": api(
        {
            "get": {OWNER: 200, OTHER: 404, STAFF: 404, CLINICIAN: 200, ANONYMOUS: 401},
            "delete": {OWNER: 405, OTHER: 405, STAFF: 405, CLINICIAN: 405, ANONYMOUS: 401},
        }
    ),
    "api:prediction-heatmap": api(
        {
            "get": {OWNER: 200, OTHER: 404, STAFF: 404, CLINICIAN: 200, ANONYMOUS: 401},
            "delete": {OWNER: 405, OTHER: 405, STAFF: 405, CLINICIAN: 405, ANONYMOUS: 401},
        }
    ),
    "api:prediction-retry": api(
        {
            "get": {OWNER: 405, OTHER: 405, STAFF: 405, CLINICIAN: 405, ANONYMOUS: 401},
            "post": {OWNER: 202, OTHER: 404, STAFF: 404, CLINICIAN: 404, ANONYMOUS: 401},
        },
        target="failed",
    ),
    "api:spot-list": api({"get": _everyone(200, anonymous=401), "post": _everyone(400, anonymous=401)}),
    "api:spot-detail": api(
        {
            "get": owner_only(200, anonymous=401),
            "post": _everyone(405, anonymous=401),
            "patch": owner_only(200, anonymous=401),  # an empty change
            "delete": owner_only(204, anonymous=401),
        },
        target=SPOT,
    ),
    "api:spot-report": api(
        {"get": owner_only(200, anonymous=401), "delete": _everyone(405, anonymous=401)}, target=SPOT
    ),
    "api:me-export": api({"get": _everyone(200, anonymous=401), "delete": _everyone(405, anonymous=401)}),
}
UNSAFE_METHODS = ("post", "patch", "delete")
ADMIN_NAMESPACE = "admin"


def _url_names() -> set[str]:
    """Every named URL of the live URLconf ("namespace:name"), the admin's folded into ADMIN_NAMESPACE."""
    found: set[str] = set()

    def walk(patterns, namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace == ADMIN_NAMESPACE:
                    found.add(ADMIN_NAMESPACE)
                    continue
                inner = ":".join(part for part in (namespace, pattern.namespace) if part)
                walk(pattern.url_patterns, inner)
            elif isinstance(pattern, URLPattern):
                assert pattern.name, f"URL {pattern.pattern} has no name, so it cannot be given an access rule"
                found.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)

    walk(get_resolver().url_patterns, "")
    return found


def test_every_url_has_an_access_rule():
    names = _url_names()
    assert names - set(ACCESS) - {ADMIN_NAMESPACE} == set(), "new URLs: say who may use them in ACCESS"
    assert set(ACCESS) - names == set(), "ACCESS lists URLs that no longer exist"


# --- the people, alice's predictions and her spot --------------------------------------------------------


@pytest.fixture
def world(alice, bob, private_media) -> dict:
    staff = UserFactory(username="charlie", staff=True)
    clinician = make_clinician("clara")
    done = PredictionFactory(user=alice, done=True, score=0.91, melanoma_probability=0.91, note=SECRET_NOTE)
    # Her result in words comes from her model version's card: make it one that no other page can show.
    levels = {"levels": {done.risk_level: {"melanoma_share": 0.37, "share_of_melanomas": 0.5}}}
    ModelVersion.objects.filter(pk=done.model_version_id).update(card={"risk_levels": levels})
    # Where the model looked: stored like the photo, so its URLs open for exactly the photo's people.
    heatmap_name = default_storage.save("heatmaps/matrix.png", ContentFile(heatmap_png(np.eye(8))))
    Prediction.objects.filter(pk=done.pk).update(heatmap=heatmap_name)
    failed = PredictionFactory(user=alice, failed=True, error=SECRET_ERROR, note=SECRET_NOTE)
    # The finished check is filed under her spot, so the spot's pages, report and API show its result and note.
    spot = spot_create(user=alice, name=SECRET_SPOT, note=SECRET_NOTE, view="back", x=0.5, y=0.3, recheck_months=3)
    prediction_move_to_spot(prediction=done, spot=spot)
    return {
        "people": {OWNER: alice, OTHER: bob, STAFF: staff, CLINICIAN: clinician, ANONYMOUS: None},
        "predictions": {"done": done, "failed": failed},
        "targets": {"done": done, "failed": failed, SPOT: spot},
        "media": private_media,
    }


def _url(name: str, rule: Rule, world: dict) -> str:
    if rule.kwargs:
        return reverse(name, kwargs=rule.kwargs)
    try:
        return reverse(name)
    except NoReverseMatch:  # the URL takes the id of one of alice's things
        return reverse(name, args=[world["targets"][rule.target].pk])


def _client(person, rule: Rule, *, enforce_csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    if person is None:
        return client
    if rule.api and not enforce_csrf:
        return Client(HTTP_AUTHORIZATION=f"Bearer {api_token_for(person)}", HTTP_ACCEPT="application/json")
    client.force_login(person)
    return client


def _snapshot(media_root: Path) -> tuple:
    predictions = Prediction.objects.order_by("pk").values_list(
        "pk", "user_id", "status", "error", "note", "image", "spot_id", "body_site"
    )
    spots = Spot.objects.order_by("pk").values_list(
        "pk", "user_id", "name", "note", "view", "x", "y", "region", "recheck_months", "reminded_for"
    )
    users = get_user_model().objects.order_by("pk").values_list("pk", "username", "email", "password", "is_active")
    verified = VerifiedEmail.objects.order_by("pk").values_list("user_id", "email")
    return tuple(predictions), tuple(spots), tuple(users), tuple(verified), tuple(media_files(media_root))


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _assert_nothing_leaked(body: bytes, *, api: bool) -> None:
    assert b"\xff\xd8\xff" not in body, "photo bytes leaked"
    text = html.unescape(body.decode(errors="replace"))
    for secret in (SECRET_NOTE, SECRET_RESULT, SECRET_ERROR, SECRET_SPOT):
        assert secret not in text, f"{secret!r} leaked"
    if api:
        assert "alice" not in text


CASES = [
    pytest.param(name, method, person, id=f"{name}-{method}-{person}")
    for name, rule in ACCESS.items()
    for method, expected in rule.methods.items()
    for person in expected
]


@pytest.mark.parametrize(("name", "method", "person"), CASES)
def test_access(name, method, person, world):
    rule = ACCESS[name]
    expected = rule.methods[method][person]
    url = _url(name, rule, world)
    before = _snapshot(world["media"])

    response = getattr(_client(world["people"][person], rule), method)(url)
    body = _body(response)

    if expected == LOGIN:
        assert response.status_code == 302, f"got {response.status_code}: {body[:200]!r}"
        assert response["Location"].startswith(reverse("login")), response["Location"]
    else:
        allowed = expected if isinstance(expected, frozenset) else {expected}
        assert response.status_code in allowed, f"got {response.status_code}: {body[:200]!r}"
    refused = response.status_code in {400, 401, 403, 404, 405} or expected == LOGIN
    if person != OWNER:
        # Nothing of alice's left (a clinician may read her predictions where allowed) and nothing changed (a
        # public POST here is an empty, invalid form; a forged e-mail link is refused).
        if refused or person != CLINICIAN or method != "get":
            _assert_nothing_leaked(body, api=rule.api)
        assert _snapshot(world["media"]) == before, "something changed"
    elif refused:
        assert _snapshot(world["media"]) == before, "something changed"


def test_owner_sees_her_own_prediction(world):
    """The counterpart of the leak checks: the same secrets do reach their owner (and a clinician)."""
    done = world["predictions"]["done"]
    for person in (OWNER, CLINICIAN):
        client = _client(world["people"][person], ACCESS["classifier:prediction_detail"])
        text = client.get(reverse("classifier:prediction_detail", args=[done.pk])).content.decode()
        assert SECRET_NOTE in html.unescape(text)
        assert SECRET_RESULT in text
    spot_page = _client(world["people"][OWNER], ACCESS["spots:spot_detail"]).get(
        reverse("spots:spot_detail", args=[world["targets"][SPOT].pk])
    )
    assert SECRET_SPOT in html.unescape(spot_page.content.decode())
    assert SECRET_NOTE in html.unescape(spot_page.content.decode())


@pytest.mark.parametrize("name", ["accounts:account_export", "api:me-export"])
def test_an_export_holds_only_its_own_persons_data(name, world):
    """The export is a zip (deflated), which the byte checks of test_access cannot look into: open it."""
    rule = ACCESS[name]
    for person in (OWNER, OTHER, STAFF, CLINICIAN):
        response = _client(world["people"][person], rule).get(_url(name, rule, world))
        assert response.status_code == 200
        archive = zipfile.ZipFile(io.BytesIO(_body(response)))
        text = "\n".join(
            archive.read(member).decode(errors="replace")
            for member in archive.namelist()
            if member.endswith(("json", "csv"))
        )
        photos = [member for member in archive.namelist() if member.startswith("photos/")]
        if person == OWNER:
            assert SECRET_SPOT in text  # the counterpart: the checks below could fail
            assert SECRET_NOTE in text
            assert len(photos) == 2
        else:
            assert photos == []
            for secret in (SECRET_NOTE, SECRET_ERROR, SECRET_SPOT):
                assert secret not in text, f"{secret!r} in {person}'s export"


# --- CSRF ---------------------------------------------------------------------------------------------------


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self._current = {"method": (attributes.get("method") or "get").lower(), "action": attributes.get("action")}
            self._current["fields"] = []
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None:
            self._current["fields"].append(attributes.get("name"))

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


CSRF_CASES = [
    pytest.param(name, method, id=f"{name}-{method}")
    for name, rule in ACCESS.items()
    if rule.csrf
    for method in UNSAFE_METHODS
    if method in rule.methods and rule.methods[method][rule.csrf_as] not in {401, 405, LOGIN}
]


@pytest.mark.parametrize(("name", "method"), CSRF_CASES)
def test_unsafe_requests_without_a_csrf_token_are_refused(name, method, world):
    """Signed in by session cookie (what a forged cross-site request would carry), with no CSRF token: 403 and
    nothing changes. Public forms (log in, sign up, reset) are refused the same way for anonymous people."""
    rule = ACCESS[name]
    person = rule.csrf_as
    url = _url(name, rule, world)
    before = _snapshot(world["media"])
    client = _client(world["people"][person], rule, enforce_csrf=True)

    response = getattr(client, method)(url, {"password": "x", "username": "x", "email": "x@example.org"})

    assert response.status_code == 403, (
        f"{method.upper()} {url} without a CSRF token: {response.status_code}, {_body(response)[:300]!r}"
    )
    if not rule.api:
        assert "This form has expired" in response.content.decode()  # a readable page, not Django's debug text
    assert _snapshot(world["media"]) == before
    if person == OWNER:
        assert "_auth_user_id" in client.session, "the refused request signed the owner out"


def test_every_rendered_post_form_carries_a_csrf_token_and_posts_to_a_protected_url(world):
    """Every page anyone can GET, as that person: its POST forms carry the token and post to URLs whose CSRF
    refusal is tested above."""
    protected = {
        _url(name, ACCESS[name], world) for name, method in (case.values for case in CSRF_CASES) if method == "post"
    }
    forms_seen = 0
    for name, rule in ACCESS.items():
        if rule.api or "get" not in rule.methods:
            continue
        for person, expected in rule.methods["get"].items():
            if expected != 200:
                continue
            url = _url(name, rule, world)
            response = _client(world["people"][person], rule).get(url)
            if response.streaming or "html" not in response.get("Content-Type", ""):
                continue
            parser = _FormParser()
            parser.feed(response.content.decode())
            for form in parser.forms:
                if form["method"] != "post":
                    continue
                forms_seen += 1
                action = html.unescape(form["action"]) if form["action"] else url
                assert "csrfmiddlewaretoken" in form["fields"], f"form to {action} on {url} has no CSRF token"
                assert action.split("?")[0] in protected, f"form on {url} posts to {action}, not in CSRF_CASES"
    assert forms_seen >= 8


def test_the_admin_is_for_staff_only(world):
    """The admin has its own permission system (tests/classifier/test_admin.py); here: nobody else gets in."""
    for person in (ANONYMOUS, OTHER):
        response = _client(world["people"][person], Rule({})).get(reverse("admin:index"))
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]
