"""The user admin: deleting users there goes through the account service, so their photo files go too."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from classifier.models import Prediction
from tests.classifier.page_helpers import stored_files
from tests.conftest import row_files, stored_names

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")]


@pytest.fixture
def admin_client_ui(admin_user_ui) -> Client:
    client = Client()
    client.force_login(admin_user_ui)
    return client


def test_deleting_a_user_in_the_admin_deletes_their_files(
    admin_client_ui, alice, bob, make_prediction, ui_private_media, django_capture_on_commit_callbacks
):
    make_prediction(user=alice, status="done")
    bobs = make_prediction(user=bob, status="done")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_ui.post(reverse("admin:auth_user_delete", args=[alice.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk=alice.pk).exists()
    assert list(Prediction.objects.all()) == [bobs]
    assert len(stored_files(ui_private_media)) == 2
    assert stored_names(ui_private_media) == row_files(bobs)


def test_deleting_selected_users_in_the_admin_deletes_their_files(
    admin_client_ui, alice, bob, make_prediction, ui_private_media, django_capture_on_commit_callbacks
):
    make_prediction(user=alice)
    make_prediction(user=bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_ui.post(
            reverse("admin:auth_user_changelist"),
            {"action": "delete_selected", "_selected_action": [alice.pk, bob.pk], "post": "yes"},
        )
    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk__in=[alice.pk, bob.pk]).exists()
    assert Prediction.objects.count() == 0
    assert stored_files(ui_private_media) == []
