"""Django admin: prediction list and review, re-run, model-version activation. Actions go through services.
(The user admin is tested in tests/accounts/test_user_admin.py.)"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from classifier.models import ModelVersion, Prediction
from classifier.services.model_versions import model_version_activate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")]

CHANGELIST = "admin:classifier_prediction_changelist"


@pytest.fixture
def admin_client_ui(admin_user_ui) -> Client:
    client = Client()
    client.force_login(admin_user_ui)
    return client


def _version(version: str, *, model_dir, active: bool = False, **metrics) -> ModelVersion:
    # A real model folder: activation loads the model and scores a check image first.
    model_version = ModelVersion.objects.create(version=version, path=str(model_dir), threshold=0.3, metrics=metrics)
    if active:
        # Through the service: it switches off any other active version (the one-active constraint).
        model_version = model_version_activate(model_version=model_version)
    return model_version


def test_prediction_list_shows_thumbnails_through_the_private_view(admin_client_ui, alice, bob, make_prediction):
    mine = make_prediction(user=alice, status="done", probability=0.66)
    make_prediction(user=bob, status="failed")
    response = admin_client_ui.get(reverse(CHANGELIST))
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("classifier:prediction_thumbnail", args=[mine.pk]) in html
    assert "0.660" in html
    assert "test-model-1" in html
    assert "/media/" not in html
    # The thumbnail URL works for the admin (staff may see every photo).
    thumbnail = admin_client_ui.get(reverse("classifier:prediction_thumbnail", args=[mine.pk]))
    assert thumbnail.status_code == 200


def test_prediction_list_has_no_n_plus_one(admin_client_ui, alice, make_prediction, django_assert_max_num_queries):
    for _ in range(3):
        make_prediction(user=alice, status="done")
    with django_assert_max_num_queries(12) as few:
        admin_client_ui.get(reverse(CHANGELIST))
    for _ in range(5):
        make_prediction(user=alice, status="done")
    with django_assert_max_num_queries(len(few.captured_queries)):
        admin_client_ui.get(reverse(CHANGELIST))


def test_search_by_username_and_filters(admin_client_ui, alice, bob, make_prediction):
    alices = make_prediction(user=alice, status="done")
    bobs = make_prediction(user=bob, status="failed")
    found = admin_client_ui.get(reverse(CHANGELIST), {"q": "bob"}).context["cl"].result_list
    assert list(found) == [bobs]
    done = admin_client_ui.get(reverse(CHANGELIST), {"status__exact": "done"}).context["cl"].result_list
    assert list(done) == [alices]
    for query in ({"verdict__exact": "refer"}, {"reviewed__exact": "0"}, {"model_version__id__exact": "1"}):
        assert admin_client_ui.get(reverse(CHANGELIST), query).status_code == 200


def test_predictions_cannot_be_added_in_the_admin(admin_client_ui):
    assert admin_client_ui.get(reverse("admin:classifier_prediction_add")).status_code == 403


def test_saving_a_confirmed_diagnosis_records_who_and_when(admin_client_ui, admin_user_ui, alice, make_prediction):
    prediction = make_prediction(user=alice, status="done", probability=0.7)
    url = reverse("admin:classifier_prediction_change", args=[prediction.pk])
    page = admin_client_ui.get(url)
    assert page.status_code == 200
    form_fields = page.context["adminform"].form.fields
    assert set(form_fields) == {"confirmed_diagnosis", "review_comment"}  # machine outputs are read-only
    response = admin_client_ui.post(
        url, {"confirmed_diagnosis": "melanoma", "melanoma_probability": "0.01", "status": "failed"}
    )
    assert response.status_code == 302
    prediction.refresh_from_db()
    assert prediction.confirmed_diagnosis == "melanoma"
    assert prediction.reviewed is True
    assert prediction.reviewed_by == admin_user_ui
    assert prediction.reviewed_at is not None
    assert prediction.melanoma_probability == pytest.approx(0.7)  # unchanged
    assert prediction.status == "done"


def test_rerun_action_requeues_finished_predictions(admin_client_ui, alice, make_prediction):
    done = make_prediction(user=alice, status="done")
    running = make_prediction(user=alice, status="running")
    response = admin_client_ui.post(
        reverse(CHANGELIST), {"action": "rerun_inference", "_selected_action": [done.pk, running.pk]}, follow=True
    )
    assert response.status_code == 200
    done.refresh_from_db()
    running.refresh_from_db()
    assert done.status == Prediction.Status.QUEUED
    assert done.melanoma_probability is None
    assert running.status == Prediction.Status.RUNNING
    messages = [str(message) for message in response.context["messages"]]
    assert any("Re-queued 1" in message for message in messages)
    assert any(f"#{running.pk}" in message for message in messages)


def test_mark_reviewed_actions(admin_client_ui, admin_user_ui, alice, make_prediction):
    with_diagnosis = make_prediction(user=alice, status="done", confirmed_diagnosis="other")
    without = make_prediction(user=alice, status="done")
    admin_client_ui.post(
        reverse(CHANGELIST), {"action": "mark_reviewed", "_selected_action": [with_diagnosis.pk, without.pk]}
    )
    with_diagnosis.refresh_from_db()
    without.refresh_from_db()
    assert with_diagnosis.reviewed
    assert with_diagnosis.reviewed_by == admin_user_ui
    assert not without.reviewed

    admin_client_ui.post(
        reverse(CHANGELIST), {"action": "mark_reviewed_not_melanoma", "_selected_action": [without.pk]}
    )
    without.refresh_from_db()
    assert without.reviewed
    assert without.confirmed_diagnosis == "not_melanoma"
    assert without.reviewed_by == admin_user_ui


@pytest.mark.parametrize("who", ["staff", "charlie"])
def test_staff_without_change_permission_cannot_change_predictions(request, who, alice, make_prediction):
    """Plain staff cannot open the list at all; a clinician (view permission only) can read it, but the actions
    that write (review, re-run) are not theirs to run."""
    prediction = make_prediction(user=alice, status="done")
    client = Client()
    client.force_login(request.getfixturevalue(who))
    response = client.post(
        reverse(CHANGELIST), {"action": "mark_reviewed_melanoma", "_selected_action": [prediction.pk]}
    )
    assert response.status_code == 403 if who == "staff" else response.status_code in {200, 302}
    prediction.refresh_from_db()
    assert not prediction.reviewed


def test_anonymous_is_sent_to_the_admin_login(client):
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_model_version_list_shows_metrics_and_threshold(admin_client_ui, model_dir):
    _version("v1", model_dir=model_dir, active=True, roc_auc=0.87654, sensitivity=0.9, specificity=0.61)
    html = admin_client_ui.get(reverse("admin:classifier_modelversion_changelist")).content.decode()
    assert "0.877" in html
    assert "0.900" in html
    assert "0.610" in html
    assert "0.3" in html


def test_activate_action_makes_exactly_one_active(admin_client_ui, model_dir):
    old = _version("v1", model_dir=model_dir, active=True)
    new = _version("v2", model_dir=model_dir)
    url = reverse("admin:classifier_modelversion_changelist")
    response = admin_client_ui.post(url, {"action": "activate", "_selected_action": [new.pk]}, follow=True)
    assert response.status_code == 200
    assert list(ModelVersion.objects.filter(is_active=True)) == [new]
    old.refresh_from_db()
    assert not old.is_active


def test_activate_with_two_selected_is_an_error_and_changes_nothing(admin_client_ui, model_dir):
    old = _version("v1", model_dir=model_dir, active=True)
    new = _version("v2", model_dir=model_dir)
    url = reverse("admin:classifier_modelversion_changelist")
    response = admin_client_ui.post(url, {"action": "activate", "_selected_action": [old.pk, new.pk]}, follow=True)
    assert any("exactly one" in str(message) for message in response.context["messages"])
    assert list(ModelVersion.objects.filter(is_active=True)) == [old]


def test_deleting_a_prediction_in_the_admin_deletes_its_files(
    admin_client_ui, alice, make_prediction, ui_private_media, django_capture_on_commit_callbacks
):
    from tests.classifier.page_helpers import stored_files

    doomed = make_prediction(user=alice, status="done")
    kept = make_prediction(user=alice, status="done")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_ui.post(
            reverse(CHANGELIST), {"action": "delete_selected", "_selected_action": [doomed.pk], "post": "yes"}
        )
    assert response.status_code == 302
    assert list(Prediction.objects.all()) == [kept]
    assert len(stored_files(ui_private_media)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        admin_client_ui.post(reverse("admin:classifier_prediction_delete", args=[kept.pk]), {"post": "yes"})
    assert Prediction.objects.count() == 0
    assert stored_files(ui_private_media) == []
