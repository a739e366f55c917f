"""Issue 11, item 6: the staff flag alone reads nobody's photo, note or result; only a clinician (the "clinician"
group, classifier.view_prediction) does, and every such look is in the audit log that only superusers read."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from audit.models import CLINICIAN_GROUP, PredictionAccess
from classifier.models import Prediction
from classifier.services.prediction_writes import prediction_create
from tests.corpus import jpeg
from tests.factories import api_token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_isolated_cache")]

SECRET_NOTE = "secret note: left breast, since May"
PAGE_URLS = ("classifier:prediction_detail", "classifier:prediction_image", "classifier:prediction_thumbnail")
API_URLS = ("api:prediction-detail", "api:prediction-image", "api:prediction-thumbnail")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alices(alice, private_media) -> Prediction:
    return prediction_create(user=alice, upload=jpeg(), body_site="trunk", note=SECRET_NOTE)


def _page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api_client(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {api_token_for(user)}")


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_migration_made_the_clinician_group_with_the_view_permission():
    group = Group.objects.get(name=CLINICIAN_GROUP)
    assert {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()} == {
        "classifier.view_prediction"
    }


def test_staff_walking_sequential_ids_reads_nothing(staff, alice, private_media):
    """The attack: a staff account (e.g. someone who only manages model versions) walks /predictions/N/."""
    for index in range(3):
        prediction_create(user=alice, upload=jpeg(), note=f"{SECRET_NOTE} {index}")
    pages, api = _page_client(staff), _api_client(staff)
    for pk in Prediction.objects.values_list("pk", flat=True):
        for name in PAGE_URLS:
            response = pages.get(reverse(name, args=[pk]))
            assert response.status_code == 404, (name, response.status_code)
            assert b"\xff\xd8\xff" not in _body(response)
            assert SECRET_NOTE not in html.unescape(_body(response).decode(errors="replace"))
        for name in API_URLS:
            response = api.get(reverse(name, args=[pk]))
            assert response.status_code == 404, (name, response.status_code)
            assert b"\xff\xd8\xff" not in _body(response)
    assert api.get(reverse("api:prediction-list")).json()["count"] == 0
    assert not PredictionAccess.objects.exists()


@pytest.mark.parametrize("name", PAGE_URLS + API_URLS)
def test_a_clinician_may_read_and_every_look_is_audited(name, clinician, alice, alices):
    client = _api_client(clinician) if name.startswith("api:") else _page_client(clinician)
    url = reverse(name, args=[alices.pk])
    response = client.get(url)
    assert response.status_code == 200
    entry = PredictionAccess.objects.get()
    assert (entry.viewer, entry.viewer_username) == (clinician, "clinician")
    assert (entry.owner, entry.owner_username) == (alice, "alice")
    assert entry.prediction_pk == alices.pk
    assert (entry.method, entry.url) == ("GET", url)
    assert entry.accessed_at is not None


def test_a_clinician_still_cannot_change_or_delete(clinician, alices):
    client = _page_client(clinician)
    assert client.post(reverse("classifier:prediction_delete", args=[alices.pk])).status_code == 404
    assert _api_client(clinician).delete(reverse("api:prediction-detail", args=[alices.pk])).status_code == 404
    assert Prediction.objects.filter(pk=alices.pk).exists()


def test_the_owner_looking_at_their_own_is_not_audited(alice, alices):
    client = _page_client(alice)
    for name in PAGE_URLS:
        assert client.get(reverse(name, args=[alices.pk])).status_code == 200
    assert not PredictionAccess.objects.exists()


def test_the_admin_change_page_is_audited_too(clinician, alices):
    response = _page_client(clinician).get(reverse("admin:classifier_prediction_change", args=[alices.pk]))
    assert response.status_code == 200
    assert SECRET_NOTE in html.unescape(response.content.decode())
    assert PredictionAccess.objects.filter(viewer=clinician, prediction_pk=alices.pk).exists()


def test_only_superusers_read_the_audit_log_and_nobody_edits_it(clinician, admin_user_ui, alices):
    _page_client(clinician).get(reverse("classifier:prediction_detail", args=[alices.pk]))
    entry = PredictionAccess.objects.get()
    changelist = reverse("admin:audit_predictionaccess_changelist")
    change = reverse("admin:audit_predictionaccess_change", args=[entry.pk])
    delete = reverse("admin:audit_predictionaccess_delete", args=[entry.pk])

    superuser = _page_client(admin_user_ui)
    page = superuser.get(changelist)
    assert page.status_code == 200
    assert "clinician" in page.content.decode()
    assert reverse("classifier:prediction_detail", args=[alices.pk]) in (page.content.decode())
    assert superuser.get(change).status_code == 200  # read-only view
    assert superuser.post(change, {"url": "/elsewhere/"}).status_code == 403
    assert superuser.post(delete, {"post": "yes"}).status_code == 403
    assert superuser.get(reverse("admin:audit_predictionaccess_add")).status_code == 403

    # A clinician (staff) is not shown the log of their own looks, even with the model's permissions.
    from django.contrib.auth.models import Permission

    clinician.user_permissions.add(*Permission.objects.filter(content_type__app_label="audit"))
    assert _page_client(clinician).get(changelist).status_code == 403
    assert PredictionAccess.objects.get().url == entry.url


@pytest.mark.parametrize("name", ["landing", "classifier:upload", "accounts:signup"])
def test_the_privacy_text_says_who_can_see_a_photo(name, alice):
    client = Client()
    if name == "classifier:upload":
        client.force_login(alice)
    text = html.unescape(client.get(reverse(name)).content.decode())
    assert "only you can see" not in text.lower()
    assert "private to your account" not in text
    assert "clinicians" in text
