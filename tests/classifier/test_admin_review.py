"""Admin for clinicians and ML maintainers: readable model cards with rounded figures and the figures
themselves, the review queue, search and filters, the comparison with confirmed diagnoses, the favicon."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from classifier.model_metrics import headline_table, metrics_tables
from classifier.models import ModelVersion, Prediction
from classifier.selectors import Proportion, model_versions_reviewed_performance, predictions_review_queue
from tests.factories import PredictionFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")]

CHANGELIST = "admin:classifier_prediction_changelist"
REVIEW = "admin:classifier_prediction_review"
# The shape the shipped card stores: figures one level down, per data source.
NESTED_METRICS = {
    "validation": {"roc_auc": 0.9035068352008243, "sensitivity": 0.9595959595959596, "specificity": 0.6712, "tp": 95},
    "external": {"isic-sample": {"roc_auc": 0.7532, "sensitivity": 0.86, "specificity": 0.55, "n_images": 1500}},
    "timings": {"median_inference_ms": 55.57022099998221},
}


@pytest.fixture
def clinician_client(admin_user_ui) -> Client:
    client = Client()
    client.force_login(admin_user_ui)
    return client


def _model(version="v-nested", *, folder: Path | None = None, **fields) -> ModelVersion:
    return ModelVersion.objects.create(
        version=version,
        path=str(folder or f"models/{version}"),
        threshold=0.04313585817942593,
        metrics=fields.pop("metrics", NESTED_METRICS),
        card={"version": version, "intended_use": "A screening aid.", "timings_s": {"train_s": 5.04321}},
        **fields,
    )


# --- model versions ------------------------------------------------------------------------------------------


def test_metrics_tables_are_found_at_any_depth_and_rounded():
    tables = {table.source: dict(table.rows) for table in metrics_tables(NESTED_METRICS)}
    assert set(tables) == {"validation", "external / isic-sample"}
    assert tables["validation"]["ROC AUC"] == "0.904"
    assert tables["validation"]["True positives"] == "95"
    assert tables["external / isic-sample"]["Images"] == "1,500"
    assert headline_table(NESTED_METRICS).source == "validation"
    assert headline_table({"test": {"roc_auc": 0.8}, **NESTED_METRICS}).source == "test"
    assert headline_table({"roc_auc": 0.8}).source == "all data"
    assert metrics_tables({}) == []
    assert metrics_tables(None) == []


def test_model_version_list_shows_nested_figures_rounded(clinician_client):
    _model()
    html = clinician_client.get(reverse("admin:classifier_modelversion_changelist")).content.decode()
    for shown in ("0.904", "0.960", "0.671", "0.043", "validation"):
        assert shown in html
    assert "0.9035068" not in html
    assert "0.0431358" not in html
    assert "Compare with confirmed diagnoses" in html


def test_model_version_page_is_a_readable_card_with_its_figures(clinician_client, tmp_path, settings):
    folder = tmp_path / "v-figures"
    folder.mkdir()
    png = Path(settings.BASE_DIR) / "static" / "favicon.ico"  # any bytes will do: served as they are
    shutil.copyfile(png, folder / "roc.png")
    shutil.copyfile(png, folder / "reliability.png")
    (folder / "model.tflite").write_bytes(b"weights")
    model_version = _model("v-figures", folder=folder)

    html = clinician_client.get(reverse("admin:classifier_modelversion_change", args=[model_version.pk])).content
    html = html.decode()
    assert "<caption>validation</caption>" in html
    assert "<caption>external / isic-sample</caption>" in html
    assert "5.0 s" in html
    assert "A screening aid." in html
    for name in ("roc.png", "reliability.png"):
        url = reverse("admin:classifier_modelversion_figure", args=[model_version.pk, name])
        assert url in html
        response = clinician_client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
    for refused in ("model.tflite", "missing.png", "..%2Fv-figures%2Froc.png"):
        response = clinician_client.get(f"/admin/classifier/modelversion/{model_version.pk}/figure/{refused}/")
        # 404; a path with slashes does not even reach the figure view (the admin's catch-all redirects).
        assert response.status_code in {404, 302}, refused
        assert response.get("Content-Type") != "image/png", refused


def test_model_figures_are_for_staff_only(alice, tmp_path):
    folder = tmp_path / "v-private"
    folder.mkdir()
    (folder / "roc.png").write_bytes(b"\x89PNG")
    model_version = _model("v-private", folder=folder)
    url = reverse("admin:classifier_modelversion_figure", args=[model_version.pk, "roc.png"])
    for client in (Client(), _logged_in(alice)):
        response = client.get(url)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_prediction_page_rounds_machine_outputs(clinician_client, alice):
    prediction = PredictionFactory(user=alice, done=True, melanoma_probability=0.123456789)
    Prediction.objects.filter(pk=prediction.pk).update(inference_ms=55.57022099998221, threshold=0.04313585817942593)
    html = clinician_client.get(reverse("admin:classifier_prediction_change", args=[prediction.pk])).content.decode()
    assert "55.6 ms" in html
    assert "0.123" in html
    assert "0.043" in html
    assert "55.5702" not in html
    assert "0.1234567" not in html


# --- prediction list -------------------------------------------------------------------------------------------


def test_prediction_list_has_the_confirmed_diagnosis_and_few_columns(clinician_client, alice):
    PredictionFactory(user=alice, done=True, confirmed_diagnosis="melanoma", reviewed=True)
    response = clinician_client.get(reverse(CHANGELIST))
    html = response.content.decode()
    assert "column-diagnosis" in html
    assert ">Melanoma<" in html
    assert len(response.context["cl"].list_display) <= 10  # (the browser test checks the width at 1280 px)


def test_search_finds_checks_by_number_email_note_and_model_version(clinician_client):
    dora = UserFactory(username="dora", email="dora@clinic.example")
    noted = PredictionFactory(user=dora, note="left shoulder, grew in spring")
    other = PredictionFactory(user=UserFactory(username="eve"), done=True)

    def found(query: str) -> set[int]:
        return {p.pk for p in clinician_client.get(reverse(CHANGELIST), {"q": query}).context["cl"].result_list}

    assert found("clinic.example") == {noted.pk}
    assert found("shoulder") == {noted.pk}
    assert found(str(other.pk)) == {other.pk}
    assert found("test-model-1") == {other.pk}
    assert found("dora") == {noted.pk}


def test_filters_by_risk_level_or_verdict_reviewed_diagnosis_and_model_version(clinician_client, alice):
    PredictionFactory(user=alice, done=True, melanoma_probability=0.9)
    model_version = ModelVersion.objects.get()
    risk = "risk_level" if any(f.name == "risk_level" for f in Prediction._meta.get_fields()) else "verdict"
    value = "high" if risk == "risk_level" else "refer"
    for query in (
        {f"{risk}__exact": value},
        {"reviewed__exact": "0"},
        {"confirmed_diagnosis__exact": "melanoma"},
        {"model_version__id__exact": str(model_version.pk)},
    ):
        assert clinician_client.get(reverse(CHANGELIST), query).status_code == 200, query
    html = clinician_client.get(reverse(CHANGELIST)).content.decode()
    assert f"?{risk}__exact=" in html


# --- review queue ----------------------------------------------------------------------------------------------


def test_review_queue_holds_unreviewed_flagged_checks_oldest_first(alice):
    first = PredictionFactory(user=alice, done=True, melanoma_probability=0.9)
    PredictionFactory(user=alice, done=True, melanoma_probability=0.01)  # low risk: not queued
    PredictionFactory(user=alice, done=True, melanoma_probability=0.95, reviewed=True, confirmed_diagnosis="other")
    PredictionFactory(user=alice)  # not finished
    second = PredictionFactory(user=alice, done=True, melanoma_probability=0.5)
    assert list(predictions_review_queue()) == [first, second]


def test_review_page_answers_with_buttons_and_moves_on(clinician_client, admin_user_ui, alice):
    first = PredictionFactory(user=alice, done=True, melanoma_probability=0.9, note="itches")
    second = PredictionFactory(user=alice, done=True, melanoma_probability=0.8)
    changelist = clinician_client.get(reverse(CHANGELIST)).content.decode()
    assert "Review queue (2 waiting)" in changelist

    page = clinician_client.get(reverse(REVIEW)).content.decode()
    assert f"Check #{first.pk}" in page
    assert "itches" in page
    assert reverse("classifier:prediction_thumbnail", args=[first.pk]) in page
    buttons = re.findall(r'<button type="submit"\s+name="diagnosis"\s+value="(\w+)"[^>]*accesskey="(\d)"', page)
    assert buttons == [("melanoma", "1"), ("not_melanoma", "2"), ("other", "3")]

    response = clinician_client.post(reverse(REVIEW), {"prediction": first.pk, "diagnosis": "not_melanoma"})
    assert response.status_code == 302
    assert response["Location"] == reverse(REVIEW)
    first.refresh_from_db()
    assert (first.reviewed, first.confirmed_diagnosis, first.reviewed_by) == (True, "not_melanoma", admin_user_ui)
    assert f"Check #{second.pk}" in clinician_client.get(reverse(REVIEW)).content.decode()

    skipped = clinician_client.get(reverse(REVIEW), {"after": second.pk}).content.decode()
    assert "Nothing waiting" in skipped


def test_review_refuses_a_bad_diagnosis_and_people_without_permission(clinician_client, charlie, alice):
    prediction = PredictionFactory(user=alice, done=True, melanoma_probability=0.9)
    clinician_client.post(reverse(REVIEW), {"prediction": prediction.pk, "diagnosis": "flu"})
    prediction.refresh_from_db()
    assert not prediction.reviewed
    staff_without_permissions = _logged_in(charlie)
    assert staff_without_permissions.get(reverse(REVIEW)).status_code == 403
    staff_without_permissions.post(reverse(REVIEW), {"prediction": prediction.pk, "diagnosis": "melanoma"})
    prediction.refresh_from_db()
    assert not prediction.reviewed


# --- comparison ----------------------------------------------------------------------------------------------


def test_proportion_and_wilson_interval():
    assert Proportion(0, 0).value is None
    assert Proportion(0, 0).interval is None
    low, high = Proportion(3, 4).interval
    assert Proportion(3, 4).value == 0.75
    assert 0.30 < low < 0.31
    assert 0.95 < high < 0.96


def test_comparison_counts_reviewed_checks_per_model_version(clinician_client, alice):
    def reviewed(probability: float, diagnosis: str) -> None:
        PredictionFactory(
            user=alice, done=True, melanoma_probability=probability, reviewed=True, confirmed_diagnosis=diagnosis
        )

    reviewed(0.9, "melanoma")  # caught
    reviewed(0.1, "melanoma")  # missed
    reviewed(0.1, "not_melanoma")  # cleared
    reviewed(0.9, "other")  # referred, not melanoma
    PredictionFactory(user=alice, done=True, melanoma_probability=0.9)  # not reviewed: not counted
    ModelVersion.objects.create(version="never-used", path="models/x", threshold=0.5)

    by_version = {row.model_version.version: row for row in model_versions_reviewed_performance()}
    used = by_version["test-model-1"]
    assert used.reviewed == 4
    assert (used.sensitivity.hits, used.sensitivity.total) == (1, 2)
    assert (used.specificity.hits, used.specificity.total) == (1, 2)
    assert by_version["never-used"].reviewed == 0

    html = clinician_client.get(reverse("admin:classifier_modelversion_comparison")).content.decode()
    assert "0.500" in html
    assert "1 of 2" in html
    assert "none reviewed" in html


# --- favicon ----------------------------------------------------------------------------------------------------


def test_favicon_exists_is_linked_and_slash_favicon_redirects(client, clinician_client, settings):
    assert (Path(settings.BASE_DIR) / "static" / "favicon.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("favicon.ico")
    for html in (client.get("/").content, clinician_client.get(reverse("admin:index")).content):
        assert b'rel="icon" href="/static/favicon.ico"' in html
