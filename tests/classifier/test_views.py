"""Pages: upload, result, live status, history, retry, delete and the private image views.

Every view that takes an id is checked for the owner (alice), another user (bob), anonymous and staff
(charlie): the status code, and that nothing leaked (no photo bytes, no result) or changed (rows, files).
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from classifier.answers import LOW
from classifier.models import Prediction
from tests.classifier.page_helpers import lesion_jpeg, stored_files
from tests.conftest import row_files, stored_names

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")]


def _client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# --- landing and login requirement ------------------------------------------------------------------


def test_landing_says_what_the_service_does_and_does_not(client):
    response = client.get(reverse("landing"))
    assert response.status_code == 200
    text = response.content.decode()
    assert "screening aid, not a diagnosis" in text
    assert "dermatologist" in text
    assert "/static/css/site.css" in text
    assert "https://" not in text.split("<body")[0], "no CDN assets in <head>"


# --- upload -----------------------------------------------------------------------------------------


def test_upload_page_offers_the_camera_and_labels_every_field(alice):
    response = _client_for(alice).get(reverse("classifier:upload"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'accept="image/*"' in html
    for field_id in ("id_image", "id_body_site", "id_note"):
        assert f'for="{field_id}"' in html
    for value, _label in Prediction.BodySite.choices:
        assert f'value="{value}"' in html


def test_upload_creates_a_queued_prediction_and_redirects_to_it(alice, ui_private_media, jpeg_upload):
    response = _client_for(alice).post(
        reverse("classifier:upload"),
        {"image": jpeg_upload("IMG_0001.JPG"), "body_site": "trunk", "note": "left shoulder"},
    )
    prediction = Prediction.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("classifier:prediction_detail", args=[prediction.pk])
    assert prediction.user == alice
    assert prediction.status == Prediction.Status.QUEUED
    assert prediction.body_site == "trunk"
    assert prediction.note == "left shoulder"
    # The photo as taken, minus its metadata; the worker adds the thumbnail.
    assert stored_names(ui_private_media) == row_files(prediction) == {prediction.image.name}
    assert "IMG_0001" not in prediction.image.name  # stored under a random name


def test_upload_without_body_site_defaults_to_unknown(alice, jpeg_upload):
    _client_for(alice).post(reverse("classifier:upload"), {"image": jpeg_upload()})
    assert Prediction.objects.get().body_site == Prediction.BodySite.UNKNOWN


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.jpg", b"this is not a photo, just text\n" * 20, "image"),
        ("page.png", b"<html><body><script>alert(1)</script></body></html>", "web page"),
        ("truncated.jpg", lesion_jpeg()[:300], ""),
    ],
)
def test_bad_image_is_a_form_error_and_leaves_no_row_and_no_file(alice, ui_private_media, name, content, expected):
    response = _client_for(alice).post(
        reverse("classifier:upload"), {"image": SimpleUploadedFile(name, content), "body_site": "trunk"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["image"]
    assert expected in " ".join(response.context["form"].errors["image"])
    assert 'class="errorlist' in response.content.decode()
    assert Prediction.objects.count() == 0
    assert stored_files(ui_private_media) == []


def test_empty_file_is_a_form_error(alice, ui_private_media):
    response = _client_for(alice).post(reverse("classifier:upload"), {"image": SimpleUploadedFile("empty.jpg", b"")})
    assert response.status_code == 400
    assert response.context["form"].errors["image"]
    assert Prediction.objects.count() == 0
    assert stored_files(ui_private_media) == []


def test_unknown_body_site_is_a_form_error(alice, jpeg_upload, ui_private_media):
    response = _client_for(alice).post(
        reverse("classifier:upload"), {"image": jpeg_upload(), "body_site": "elbow-of-mars"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["body_site"]
    assert Prediction.objects.count() == 0
    assert stored_files(ui_private_media) == []


def test_too_large_upload_is_413_with_a_readable_message_not_a_500(alice, settings, ui_private_media):
    settings.MELANOMA_MAX_UPLOAD_BYTES = 20_000
    big = SimpleUploadedFile("big.jpg", lesion_jpeg(width=1600, height=1200, seed=3))
    assert big.size > 20_000
    response = _client_for(alice).post(reverse("classifier:upload"), {"image": big})
    assert response.status_code == 413
    assert "too large" in response.content.decode()
    assert Prediction.objects.count() == 0
    assert stored_files(ui_private_media) == []


def test_upload_rate_limit_answers_429_with_a_message(alice, settings, jpeg_upload, ui_private_media):
    settings.MELANOMA_UPLOAD_RATE_PER_MINUTE = 2
    client = _client_for(alice)
    statuses = [client.post(reverse("classifier:upload"), {"image": jpeg_upload()}).status_code for _ in range(3)]
    assert statuses == [302, 302, 429]
    response = client.post(reverse("classifier:upload"), {"image": jpeg_upload()})
    assert response.status_code == 429
    assert "Too many uploads" in response.content.decode()
    assert Prediction.objects.count() == 2
    assert stored_names(ui_private_media) == row_files(*Prediction.objects.all())


def test_rate_limit_is_per_user(alice, bob, settings, jpeg_upload):
    settings.MELANOMA_UPLOAD_RATE_PER_MINUTE = 1
    assert _client_for(alice).post(reverse("classifier:upload"), {"image": jpeg_upload()}).status_code == 302
    assert _client_for(bob).post(reverse("classifier:upload"), {"image": jpeg_upload()}).status_code == 302


# --- result page and live status ---------------------------------------------------------------------


# Who may open which page: tests/classifier/test_access_matrix.py. Here: what the owner gets.


def test_result_page_shows_the_owner_her_note(alice, make_prediction):
    prediction = make_prediction(user=alice, status="done", probability=0.91, note="secret note")
    response = _client_for(alice).get(reverse("classifier:prediction_detail", args=[prediction.pk]))
    assert response.status_code == 200
    assert "secret note" in response.content.decode()


def test_result_page_shows_the_verdict_level_and_version_without_a_bare_percentage(alice, make_prediction):
    prediction = make_prediction(user=alice, status="done", probability=0.912)
    html = _client_for(alice).get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()
    assert "Have this lesion checked by a dermatologist" in html
    assert "Moderate" in html  # a model without measured levels: the level comes from the threshold alone
    assert "has no measurement of what this level meant" in html
    assert "%" not in _panel(html)  # issue 10: no bare percentage on the page
    assert "test-model-1" in html
    assert "screening aid, not a diagnosis" in html
    assert reverse("classifier:prediction_image", args=[prediction.pk]) in html
    assert 'data-finished="true"' in html


def test_result_page_low_wording_never_says_benign(alice, make_prediction):
    prediction = make_prediction(user=alice, status="done", probability=0.05)
    html = _client_for(alice).get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()
    panel = _panel(html)
    assert "The photo did not show the features the model looks for" in panel
    assert "Watch it for change" in panel
    assert "benign" not in panel
    assert "%" not in panel


MEASURED_LEVELS = {
    "boundaries": {"moderate_from": 0.35, "high_from": 0.8},
    "rule": "test",
    "measured_on": "test",
    "levels": {
        "low": {"images": 600, "melanoma": 6, "melanoma_share": 0.01, "share_of_melanomas": 0.05},
        "moderate": {"images": 300, "melanoma": 36, "melanoma_share": 0.12, "share_of_melanomas": 0.3},
        "high": {"images": 100, "melanoma": 78, "melanoma_share": 0.78, "share_of_melanomas": 0.65},
    },
}


@pytest.mark.parametrize(
    ("probability", "level", "words"),
    [
        (0.05, "low", ["about 1 in 100 lesions with this result were melanoma", "About 5 in 100 melanomas also"]),
        (0.5, "moderate", ["In our tests, about 12 in 100 lesions with this result were melanoma."]),
        (0.9, "high", ["about 78 in 100 lesions with this result were melanoma", "soon"]),
    ],
)
def test_result_page_and_history_say_what_the_level_meant(alice, make_prediction, probability, level, words):
    from classifier.models import ModelVersion, Prediction

    prediction = make_prediction(user=alice, status="done", probability=probability)
    ModelVersion.objects.filter(pk=prediction.model_version_id).update(card={"risk_levels": MEASURED_LEVELS})
    Prediction.objects.filter(pk=prediction.pk).update(risk_level=level)

    html = _client_for(alice).get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()
    panel = _panel(html)
    for text in words:
        assert text in panel
    assert level.capitalize() in panel
    assert "%" not in panel
    history = _client_for(alice).get(reverse("classifier:history")).content.decode()
    assert words[0] in history


def _panel(html: str) -> str:
    start = html.index('id="result-panel"')
    return html[start : html.index("screening aid", start)]


def test_queued_result_page_polls_with_the_static_script(alice, make_prediction):
    prediction = make_prediction(user=alice)
    html = _client_for(alice).get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()
    assert 'data-finished="false"' in html
    assert reverse("classifier:prediction_status", args=[prediction.pk]) in html
    assert "/static/js/site.js" in html
    assert "Waiting in the queue" in html


def test_failed_result_page_shows_the_reason_and_a_try_again_button(alice, make_prediction):
    prediction = make_prediction(user=alice, status="failed", error="The model file is missing.")
    html = _client_for(alice).get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()
    assert "The model file is missing." in html
    assert reverse("classifier:prediction_retry", args=[prediction.pk]) in html
    assert "Try again" in html


def test_status_endpoint_answers_the_owner_uncached(alice, make_prediction):
    prediction = make_prediction(user=alice, status="done", probability=0.77)
    response = _client_for(alice).get(reverse("classifier:prediction_status", args=[prediction.pk]))
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "done"
    assert data["finished"] is True
    assert "Have this lesion checked by a dermatologist" in data["html"]
    assert "%" not in data["html"]
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


def test_status_endpoint_follows_the_row(alice, make_prediction):
    prediction = make_prediction(user=alice)
    client = _client_for(alice)
    url = reverse("classifier:prediction_status", args=[prediction.pk])
    assert client.get(url).json()["finished"] is False
    Prediction.objects.filter(pk=prediction.pk).update(status="running")
    assert "Analysing" in client.get(url).json()["html"]


def test_unknown_id_is_404(alice):
    assert _client_for(alice).get(reverse("classifier:prediction_detail", args=[999999])).status_code == 404


# --- images -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url_name", ["classifier:prediction_image", "classifier:prediction_thumbnail"])
def test_images_are_served_privately_to_their_owner(alice, make_prediction, url_name):
    prediction = make_prediction(user=alice)
    response = _client_for(alice).get(reverse(url_name, args=[prediction.pk]))
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xff\xd8")  # JPEG bytes
    assert response["Content-Type"] == "image/jpeg"
    assert "private" in response["Cache-Control"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_no_public_media_url(alice, make_prediction):
    prediction = make_prediction(user=alice)
    client = _client_for(None)
    for path in (f"/media/{prediction.image.name}", f"/{prediction.image.name}"):
        assert client.get(path).status_code == 404


def test_image_with_missing_file_is_404_not_500(alice, make_prediction):
    prediction = make_prediction(user=alice)
    prediction.image.storage.delete(prediction.image.name)
    assert _client_for(alice).get(reverse("classifier:prediction_image", args=[prediction.pk])).status_code == 404


# --- history --------------------------------------------------------------------------------------------


def test_history_lists_only_my_predictions_newest_first(alice, bob, make_prediction):
    older = make_prediction(user=alice, status="done", probability=0.1, body_site="head_neck")
    newer = make_prediction(user=alice, status="failed")
    bobs = make_prediction(user=bob, status="done")
    response = _client_for(alice).get(reverse("classifier:history"))
    assert response.status_code == 200
    listed = list(response.context["page"].object_list)
    assert listed == [newer, older]
    html = response.content.decode()
    assert reverse("classifier:prediction_thumbnail", args=[older.pk]) in html
    assert reverse("classifier:prediction_detail", args=[bobs.pk]) not in html
    assert "Head / neck" in html
    assert LOW.title in html  # the one wording of a low result (classifier/answers.py)
    assert "Low risk level" in html
    assert "Failed" in html


def test_history_is_paginated(alice, make_prediction, monkeypatch):
    from classifier.views import predictions as views

    monkeypatch.setattr(views, "HISTORY_PAGE_SIZE", 2)
    made = [make_prediction(user=alice) for _ in range(3)]
    client = _client_for(alice)
    first = client.get(reverse("classifier:history"))
    second = client.get(reverse("classifier:history"), {"page": 2})
    assert [p.pk for p in first.context["page"].object_list] == [made[2].pk, made[1].pk]
    assert [p.pk for p in second.context["page"].object_list] == [made[0].pk]
    assert "Page 1 of 2" in first.content.decode()
    assert client.get(reverse("classifier:history"), {"page": "nonsense"}).status_code == 200


def test_history_of_a_new_user_is_empty(bob):
    response = _client_for(bob).get(reverse("classifier:history"))
    assert response.status_code == 200
    assert "You have not checked any photos yet" in response.content.decode()


# --- delete ----------------------------------------------------------------------------------------------


def test_owner_deletes_row_and_files(alice, make_prediction, ui_private_media, django_capture_on_commit_callbacks):
    prediction = make_prediction(user=alice, status="done")
    keep = make_prediction(user=alice, status="done")
    with django_capture_on_commit_callbacks(execute=True):
        response = _client_for(alice).post(reverse("classifier:prediction_delete", args=[prediction.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("classifier:history")
    assert list(Prediction.objects.all()) == [keep]
    assert len(stored_files(ui_private_media)) == 2
    assert stored_names(ui_private_media) == row_files(keep)


# --- retry -------------------------------------------------------------------------------------------------


def test_owner_retries_a_failed_prediction(alice, make_prediction):
    prediction = make_prediction(user=alice, status="failed")
    response = _client_for(alice).post(reverse("classifier:prediction_retry", args=[prediction.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("classifier:prediction_detail", args=[prediction.pk])
    prediction.refresh_from_db()
    assert prediction.status == Prediction.Status.QUEUED
    assert prediction.error == ""


def test_retry_needs_post(alice, make_prediction):
    prediction = make_prediction(user=alice, status="failed")
    response = _client_for(alice).get(reverse("classifier:prediction_retry", args=[prediction.pk]))
    assert response.status_code == 405
    prediction.refresh_from_db()
    assert prediction.status == Prediction.Status.FAILED


def test_retry_of_a_done_prediction_changes_nothing(alice, make_prediction):
    prediction = make_prediction(user=alice, status="done", probability=0.4)
    response = _client_for(alice).post(reverse("classifier:prediction_retry", args=[prediction.pk]), follow=True)
    assert response.status_code == 200
    prediction.refresh_from_db()
    assert prediction.status == Prediction.Status.DONE
    assert prediction.melanoma_probability == pytest.approx(0.4)
    assert [str(message) for message in response.context["messages"]]


# --- CSRF ---------------------------------------------------------------------------------------------------


# Refused without a token: tests/classifier/test_access_matrix.py.


def test_upload_with_a_csrf_token_works(alice, jpeg_upload):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    page = client.get(reverse("classifier:upload"))
    token = page.cookies["csrftoken"].value
    response = client.post(reverse("classifier:upload"), {"image": jpeg_upload(), "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Prediction.objects.count() == 1


def test_upload_just_over_the_limit_is_a_413_form_error(alice, settings, ui_private_media):
    # Small enough to pass the Content-Length guard, so the upload handler stops it while the form is parsed.
    photo = lesion_jpeg(width=1600, height=1200, seed=4)
    settings.MELANOMA_MAX_UPLOAD_BYTES = len(photo) - 1000
    response = _client_for(alice).post(
        reverse("classifier:upload"), {"image": SimpleUploadedFile("big.jpg", photo), "note": "kept"}
    )
    assert response.status_code == 413
    assert "too large" in " ".join(response.context["form"].errors["image"])
    assert Prediction.objects.count() == 0
    assert stored_files(ui_private_media) == []


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, ""), (0.0, "0.0%"), (0.00004, "< 0.1%"), (0.1234, "12.3%"), (0.99996, "> 99.9%"), (1.0, "100.0%"),
     (float("nan"), "not available")],
)  # fmt: skip
def test_probabilities_are_shown_as_percentages(value, shown):
    from classifier.templatetags.classifier_extras import percent

    assert percent(value) == shown
