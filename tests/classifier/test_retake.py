"""Photos the check refuses (issue 12): verdict `retake` with a reason, through the real worker, on the result
page (reason, how to retake, the upload form), in history, the API and its schema, and the admin filter."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image, ImageFilter
from rest_framework.test import APIClient

from bench.photo_check import scene
from bench.synthetic import lesion_pixels
from classifier.models import ModelVersion, Prediction
from classifier.photo_advice import ADVICE
from classifier.services.prediction_writes import prediction_create
from lesion_model.quality import QualityIssue
from tests.conftest import wait_for_status
from tests.factories import ModelVersionFactory, api_token_for

FINISHED = set(Prediction.FINISHED_STATUSES)


def _jpeg(image: Image.Image) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return SimpleUploadedFile("photo.jpg", buffer.getvalue(), content_type="image/jpeg")


def _blurry_lesion() -> Image.Image:
    """A 1280 x 960 lesion photo out of focus: sigma 4 px at the check's 224 px is about 23 px here."""
    return Image.fromarray(lesion_pixels(1280, 960, 3)).filter(ImageFilter.GaussianBlur(23))


def _landscape() -> Image.Image:
    """A real-looking non-skin scene (sky, hills): it passes the upload check (not one flat colour; a solid
    picture is refused there with 400), and the worker's photo check refuses it as not a lesion."""
    return scene("landscape", 1).resize((800, 600), Image.Resampling.BICUBIC)


def _flat_skin() -> Image.Image:
    """One flat colour. As a JPEG it is kept as taken, never decoded by the web (no 400 there): the worker's
    check refuses it."""
    return Image.new("RGB", (640, 480), (214, 168, 140))


def _retake(prediction: Prediction, issue: str) -> Prediction:
    """A prediction as the worker leaves a refused photo."""
    Prediction.objects.filter(pk=prediction.pk).update(
        status=Prediction.Status.DONE,
        verdict=Prediction.Verdict.RETAKE,
        quality_issue=issue,
        melanoma_probability=None,
        threshold=None,
        model_version=ModelVersionFactory(),
    )
    prediction.refresh_from_db()
    return prediction


def test_quality_issues_mirror_the_runtime_check():
    assert set(Prediction.QualityIssue.values) == {issue.value for issue in QualityIssue}
    assert set(ADVICE) == set(Prediction.QualityIssue.values)


# --- through the real worker ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("make_image", "issue"),
    [
        pytest.param(_landscape, "not_a_lesion", id="landscape"),
        pytest.param(_blurry_lesion, "blurry", id="blurry"),
        pytest.param(_flat_skin, "not_a_lesion", id="flat-jpeg-kept-as-taken"),
    ],
)
def test_refused_photo_is_done_with_retake_and_no_verdict(celery_worker, active_model, alice, make_image, issue):
    prediction = prediction_create(user=alice, upload=_jpeg(make_image()), body_site="trunk")

    done = wait_for_status(prediction.pk, FINISHED)
    assert done.status == Prediction.Status.DONE, done.error
    assert done.verdict == Prediction.Verdict.RETAKE
    assert done.quality_issue == issue
    assert done.melanoma_probability is None
    assert done.threshold is None
    assert done.model_version_id == active_model.pk
    assert done.error == ""
    assert done.thumbnail.name.startswith("thumbnails/")  # history shows what was refused


@pytest.mark.django_db(transaction=True)
def test_clear_photo_gets_a_verdict_and_no_quality_issue(celery_worker, active_model, alice, make_upload):
    done = wait_for_status(prediction_create(user=alice, upload=make_upload()).pk, FINISHED)
    assert done.verdict in {"refer", "low_risk"}
    assert done.quality_issue == ""
    assert 0.0 <= done.melanoma_probability <= 1.0


def test_admin_rerun_clears_the_quality_issue(alice, make_upload, active_model):
    from classifier.services.prediction_writes import prediction_rerun

    refused = _retake(prediction_create(user=alice, upload=make_upload()), "blurry")
    rerun = prediction_rerun(prediction=refused)
    assert rerun.status == Prediction.Status.QUEUED
    assert rerun.verdict == ""
    assert rerun.quality_issue == ""


# --- pages ------------------------------------------------------------------------------------------

pages = pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")


@pages
@pytest.mark.django_db
def test_result_page_explains_the_reason_and_offers_the_upload_form(client, alice, make_prediction):
    prediction = _retake(make_prediction(user=alice, status="done"), "blurry")
    client.force_login(alice)

    html = client.get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()
    assert "Please retake the photo" in html
    assert ADVICE["blurry"].title in html
    assert "How to take a better photo" in html
    assert "Tap the spot on the screen to focus" in html
    assert "This photo got no melanoma assessment" in html
    assert 'data-testid="retake-form"' in html
    assert f'action="{reverse("classifier:upload")}"' in html
    assert 'name="image"' in html
    assert "csrfmiddlewaretoken" in html
    # No verdict and no probability for a refused photo.
    assert "Melanoma probability" not in html
    assert "Have this lesion checked" not in html
    assert "Low risk" not in html


@pages
@pytest.mark.django_db
def test_the_retake_form_uploads_a_new_check(client, alice, make_prediction, make_upload):
    prediction = _retake(make_prediction(user=alice, status="done"), "too_dark")
    client.force_login(alice)
    response = client.post(reverse("classifier:upload"), {"image": make_upload(), "body_site": prediction.body_site})
    assert response.status_code == 302
    newest = Prediction.objects.filter(user=alice).order_by("-pk").first()
    assert newest.pk != prediction.pk
    assert newest.body_site == prediction.body_site


@pages
@pytest.mark.django_db
def test_status_poll_renders_the_retake_panel(client, alice, make_prediction):
    prediction = _retake(make_prediction(user=alice, status="done"), "not_a_lesion")
    client.force_login(alice)
    data = client.get(reverse("classifier:prediction_status", args=[prediction.pk])).json()
    assert data["finished"] is True
    assert ADVICE["not_a_lesion"].title in data["html"]


@pages
@pytest.mark.django_db
def test_history_shows_a_retake_badge(client, alice, make_prediction):
    _retake(make_prediction(user=alice, status="done"), "glare")
    client.force_login(alice)
    html = client.get(reverse("classifier:history")).content.decode()
    assert "badge-retake" in html
    assert "Retake photo" in html
    assert "Glare on the lesion" in html


@pages
@pytest.mark.django_db
def test_scored_result_says_camera_photos_are_less_reliable(client, alice, make_prediction):
    prediction = make_prediction(user=alice, status="done", probability=0.2)
    client.force_login(alice)
    html = client.get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()
    assert 'data-testid="camera-note"' in html
    assert "assessed less reliably than dermoscopic ones" in html
    assert "treat its answer on a phone photo with more caution" in html


@pages
@pytest.mark.django_db
def test_camera_note_shows_the_model_cards_figures_when_it_has_them(client, alice, make_prediction):
    prediction = make_prediction(user=alice, status="done", probability=0.2)
    ModelVersion.objects.filter(pk=prediction.model_version_id).update(
        card={"camera_photos": {"sensitivity": 0.81, "dermoscopic_sensitivity": 0.96}}
    )
    client.force_login(alice)
    html = client.get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()
    assert "caught about 81 in 100 melanomas" in html
    assert "about 96 in 100 on dermoscopic ones" in html
    assert "more caution" not in html


@pages
@pytest.mark.django_db
def test_camera_note_says_what_camera_photos_cost_when_sensitivity_holds(client, alice, make_prediction):
    """The shipped card: as sensitive on camera-like photos, far less specific. The note says which."""
    prediction = make_prediction(user=alice, status="done", probability=0.2)
    figures = {"sensitivity": 0.976, "dermoscopic_sensitivity": 0.976, "specificity": 0.30}
    ModelVersion.objects.filter(pk=prediction.model_version_id).update(
        card={"camera_photos": {**figures, "dermoscopic_specificity": 0.547}}
    )
    client.force_login(alice)
    html = client.get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()
    text = " ".join(html.split())
    assert "caught about 98 in 100 melanomas (about 98 in 100 on dermoscopic ones)" in text
    assert "tell apart only about 30 in 100 harmless moles (about 55 in 100 on dermoscopic ones)" in text
    assert "%" not in text[text.index('data-testid="camera-note"') :].split("</p>")[0]
    assert "sent to a doctor more often" in text


# --- API and schema ---------------------------------------------------------------------------------


@pages
@pytest.mark.django_db
def test_api_reports_retake_and_the_quality_issue(alice, make_prediction):
    prediction = _retake(make_prediction(user=alice, status="done"), "too_small")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_for(alice)}")

    body = client.get(f"/api/predictions/{prediction.pk}/").json()
    assert body["verdict"] == "retake"
    assert body["verdict_text"] == "Retake the photo"
    assert body["quality_issue"] == "too_small"
    assert body["melanoma_probability"] is None
    listed = client.get("/api/predictions/").json()["results"][0]
    assert listed["quality_issue"] == "too_small"


@pytest.mark.django_db
def test_openapi_schema_names_retake_and_every_quality_issue(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "quality_issue" in schema
    assert "retake" in schema
    for value in Prediction.QualityIssue.values:
        assert value in schema


# --- admin ------------------------------------------------------------------------------------------


@pages
@pytest.mark.django_db
def test_admin_filters_by_quality_issue(admin_user_ui, alice, make_prediction):
    blurry = _retake(make_prediction(user=alice, status="done"), "blurry")
    dark = _retake(make_prediction(user=alice, status="done"), "too_dark")
    scored = make_prediction(user=alice, status="done")
    client = Client()
    client.force_login(admin_user_ui)

    response = client.get(reverse("admin:classifier_prediction_changelist"), {"quality_issue__exact": "blurry"})
    assert response.status_code == 200
    shown = {row.pk for row in response.context["cl"].result_list}
    assert shown == {blurry.pk}
    assert dark.pk not in shown
    assert scored.pk not in shown
    html = response.content.decode()
    assert "By quality issue" in html
    assert "Retake: Blurry" in html


def test_unknown_issue_from_a_newer_runtime_is_stored_as_unfamiliar(alice, make_upload, monkeypatch, active_model):
    from classifier import inference
    from classifier.services.prediction_runs import prediction_run

    def refusing(image_bytes: bytes, **options) -> inference.InferenceResult:
        return inference.InferenceResult(
            score=None,
            melanoma_probability=None,
            risk_level="",
            threshold=0.5,
            model_version=active_model.version,
            model_version_id=active_model.pk,
            quality_issue="something_new",
        )

    monkeypatch.setattr(inference, "predict_melanoma", refusing)
    done = prediction_run(prediction_id=prediction_create(user=alice, upload=make_upload()).pk)
    assert done.verdict == "retake"
    assert done.quality_issue == "unfamiliar"


def test_every_issue_has_advice():
    for advice in ADVICE.values():
        assert advice.title
        assert advice.explanation
        assert advice.tips
