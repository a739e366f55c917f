"""Issue 12 parts 2 and 3 through the worker's service: the heatmap stored privately and served to its owner
only, the differential in the API and its schema, and the `unfamiliar` step of the photo check.

The graph's extra outputs are stood in for (the tiny test model has none); the shipped model's are measured by
`evaluate_model --masks` and its card."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from classifier import inference
from classifier.models import Prediction
from classifier.services.prediction_runs import prediction_run
from classifier.services.prediction_writes import prediction_create, prediction_delete
from lesion_model.explain import DIAGNOSES, Familiarity, top_differential
from lesion_model.scorer import Analysis, MelanomaScorer
from tests.factories import api_token_for

DIFFERENTIAL = top_differential([0.55, 0.25, 0.1, 0.05, 0.03, 0.01, 0.01], list(DIAGNOSES))


@pytest.fixture
def explained(monkeypatch, active_model, private_media):
    """The active model's graph answers with a heatmap, a differential and a distance."""
    state = {"distance": 1.0, "familiarity": None}

    def analyse(self, model_input):
        heat = np.zeros((28, 28), dtype=np.float32)
        heat[10, 12] = 4.0
        return Analysis(score=0.2, heatmap=heat, differential=DIFFERENTIAL, distance=state["distance"])

    monkeypatch.setattr(MelanomaScorer, "analyse_array", analyse)
    monkeypatch.setattr(inference, "unfamiliar", lambda analysis, scorer: analysis.unfamiliar(state["familiarity"]))
    inference.clear_cache()
    yield state
    inference.clear_cache()


def _run(user, make_upload) -> Prediction:
    prediction = prediction_create(user=user, upload=make_upload(), body_site="trunk")
    done = prediction_run(prediction_id=prediction.pk)
    assert done is not None
    assert done.status == Prediction.Status.DONE, done.error
    return done


@pytest.mark.django_db
def test_worker_stores_the_heatmap_privately_and_the_differential(
    explained, alice, make_upload, django_capture_on_commit_callbacks
):
    done = _run(alice, make_upload)
    assert done.heatmap.name.startswith("heatmaps/")
    assert default_storage.exists(done.heatmap.name)
    with default_storage.open(done.heatmap.name, "rb") as stored, Image.open(io.BytesIO(stored.read())) as image:
        # The photo's aspect, so the page lays it over the photo in the same box.
        with default_storage.open(done.image.name, "rb") as photo_file, Image.open(photo_file) as photo:
            aspect = photo.width / photo.height
        assert max(image.size) == inference.HEATMAP_LONG_SIDE
        assert image.width / image.height == pytest.approx(aspect, rel=0.02)
        assert image.mode == "RGBA"
    assert done.differential == DIFFERENTIAL
    # Deleting the check deletes its heatmap with the photo.
    name = done.heatmap.name
    with django_capture_on_commit_callbacks(execute=True):
        prediction_delete(prediction=done)
    assert not default_storage.exists(name)


@pytest.mark.django_db
def test_rerun_replaces_the_previous_heatmap(explained, alice, make_upload):
    done = _run(alice, make_upload)
    first = done.heatmap.name
    Prediction.objects.filter(pk=done.pk).update(status=Prediction.Status.QUEUED)
    again = prediction_run(prediction_id=done.pk)
    assert again.heatmap.name != first
    assert not default_storage.exists(first)


@pytest.mark.django_db
def test_heatmap_is_served_to_its_owner_only(explained, alice, bob, make_upload):
    done = _run(alice, make_upload)
    owner, other = APIClient(), APIClient()
    owner.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_for(alice)}")
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_for(bob)}")
    url = reverse("api:prediction-heatmap", args=[done.pk])

    response = owner.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    assert other.get(url).status_code == 404

    detail = owner.get(reverse("api:prediction-detail", args=[done.pk])).json()
    assert detail["differential"] == DIFFERENTIAL
    assert [set(item) for item in detail["differential"]] == [{"code", "label", "probability"}] * 3
    assert detail["heatmap_url"].endswith(url)


@pytest.mark.django_db
def test_a_check_without_heatmap_answers_404_and_null(alice, client, make_upload, private_media):
    prediction = prediction_create(user=alice, upload=make_upload(), body_site="trunk")
    client.force_login(alice)
    assert client.get(reverse("classifier:prediction_heatmap", args=[prediction.pk])).status_code == 404
    api = APIClient()
    api.force_authenticate(alice)
    detail = api.get(reverse("api:prediction-detail", args=[prediction.pk])).json()
    assert detail["heatmap_url"] is None
    assert detail["differential"] == []


@pytest.mark.django_db
def test_features_far_from_the_training_images_are_unfamiliar(explained, alice, make_upload):
    explained["familiarity"] = Familiarity(threshold=10.0, components=32)
    explained["distance"] = 25.0
    done = _run(alice, make_upload)
    assert done.verdict == Prediction.Verdict.RETAKE
    assert done.quality_issue == Prediction.QualityIssue.UNFAMILIAR
    assert done.score is None
    assert done.risk_level is None
    assert not done.heatmap
    assert done.differential == []

    explained["distance"] = 5.0
    assert _run(alice, make_upload).verdict != Prediction.Verdict.RETAKE


@pytest.mark.django_db
def test_openapi_schema_has_the_differential_and_the_heatmap(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    prediction = schema["components"]["schemas"]["Prediction"]["properties"]
    assert "differential" in prediction
    assert "heatmap_url" in prediction
    item = schema["components"]["schemas"]["DifferentialItem"]["properties"]
    assert set(item) == {"code", "label", "probability"}
    assert "/api/predictions/{id}/heatmap/" in schema["paths"]


@pytest.mark.django_db
def test_result_page_has_the_overlay_toggle_and_plain_other_possibilities(explained, alice, client, make_upload):
    done = _run(alice, make_upload)
    client.force_login(alice)
    page = client.get(reverse("classifier:prediction_detail", args=[done.pk])).content.decode()
    assert 'id="heatmap-toggle"' in page
    assert reverse("classifier:prediction_heatmap", args=[done.pk]) in page
    assert "Other things this could be" in page
    assert "a harmless age spot" in page  # bkl in plain words
    for clinical in ("Benign keratosis", "bkl", "55"):
        assert clinical not in page.split("Other things this could be")[1].split("</section>")[0]


@pytest.mark.django_db
def test_admin_and_doctors_report_show_the_differential(explained, alice, make_upload, admin_client):
    from spots.reports import check_report_pdf, differential_text

    done = _run(alice, make_upload)
    page = admin_client.get(reverse("admin:classifier_prediction_change", args=[done.pk])).content.decode()
    assert "Melanocytic nevus (nv) 55 %" in page
    assert reverse("classifier:prediction_heatmap", args=[done.pk]) in page
    assert differential_text(done).startswith("Melanocytic nevus (nv) 55%; Melanoma (mel) 25%")
    assert check_report_pdf(check=done).startswith(b"%PDF")
