"""Activating a broken model is refused; people never see file paths or exception text (issue 11, item 9).

Before: the admin's "activate" accepted a truncated `model.tflite`, and every user then read
`Model broken-trunc cannot be loaded: /srv/.../model.tflite is not a loadable LiteRT model` on their result page.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from classifier.inference import clear_cache
from classifier.models import ModelVersion, Prediction
from classifier.services.model_versions import (
    ModelVersionUnusable,
    model_version_activate,
    model_version_register,
    model_versions_register_shipped,
)
from classifier.services.prediction_runs import (
    IMAGE_UNREADABLE_REASON,
    MODEL_UNAVAILABLE_REASON,
    prediction_run,
)
from tests.factories import api_token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")]


def _copy(model_dir: Path, target: Path, version: str, *, created: str | None = None, **card_changes) -> Path:
    shutil.copytree(model_dir, target)
    card = json.loads((target / "model_card.json").read_text())
    card.update(version=version, **card_changes)
    if created is not None:
        card["created"] = created
    (target / "model_card.json").write_text(json.dumps(card))
    return target


def _truncate(model_folder: Path) -> None:
    data = (model_folder / "model.tflite").read_bytes()
    (model_folder / "model.tflite").write_bytes(data[: len(data) // 2])


@pytest.fixture
def broken_trunc(model_dir, tmp_path) -> ModelVersion:
    folder = _copy(model_dir, tmp_path / "broken-trunc", "broken-trunc")
    _truncate(folder)
    return model_version_register(model_dir=folder)


def test_service_refuses_a_truncated_model_and_changes_nothing(active_model, broken_trunc):
    with pytest.raises(ModelVersionUnusable) as caught:
        model_version_activate(model_version=broken_trunc)
    assert "broken-trunc was not activated" in caught.value.message
    assert list(ModelVersion.objects.filter(is_active=True)) == [active_model]


def test_service_refuses_a_model_its_card_does_not_describe(active_model, model_dir, tmp_path):
    """The card says 300 px, the network takes its own size: the check image cannot be scored."""
    card_input = json.loads((model_dir / "model_card.json").read_text())["input_size"]
    wrong = model_version_register(
        model_dir=_copy(model_dir, tmp_path / "wrong-size", "wrong-size", input_size=card_input + 76)
    )
    with pytest.raises(ModelVersionUnusable):
        model_version_activate(model_version=wrong)
    assert ModelVersion.objects.get(is_active=True) == active_model


def test_a_good_model_is_activated(active_model, model_dir, tmp_path):
    good = model_version_register(model_dir=_copy(model_dir, tmp_path / "good", "good-copy"))
    assert model_version_activate(model_version=good).is_active


def test_admin_activate_refuses_with_a_message(active_model, broken_trunc, admin_user_ui):
    client = Client()
    client.force_login(admin_user_ui)
    response = client.post(
        reverse("admin:classifier_modelversion_changelist"),
        {"action": "activate", "_selected_action": [broken_trunc.pk]},
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(message) for message in response.context["messages"]]
    assert any("broken-trunc was not activated" in message and "unchanged" in message for message in messages)
    assert not any("is now active" in message for message in messages)
    assert list(ModelVersion.objects.filter(is_active=True)) == [active_model]


def test_register_shipped_skips_a_broken_newest_model(model_dir, tmp_path, settings):
    shipped = tmp_path / "models"
    _copy(model_dir, shipped / "older", "older-good", created="2020-01-01T00:00:00+00:00")
    _truncate(_copy(model_dir, shipped / "newer", "newer-broken", created="2030-01-01T00:00:00+00:00"))
    settings.MELANOMA_MODELS_DIR = shipped
    ModelVersion.objects.update(is_active=False)
    model_versions_register_shipped()
    assert ModelVersion.objects.get(is_active=True).version == "older-good"


# --- what people read when the model breaks after activation -------------------------------------------------


def _leaks(text: str, *secrets: str) -> list[str]:
    words = ("/", "Traceback", "Error", "tflite", "LiteRT", "cannot be loaded", *secrets)
    return [word for word in words if word in text]


def _pages_and_api(prediction: Prediction) -> list[str]:
    session = Client()
    session.force_login(prediction.user)
    token = api_token_for(prediction.user)
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    result_page = session.get(reverse("classifier:prediction_detail", args=[prediction.pk]))
    status = session.get(reverse("classifier:prediction_status", args=[prediction.pk]))
    detail = api.get(f"/api/predictions/{prediction.pk}/")
    assert result_page.status_code == status.status_code == detail.status_code == 200
    return [result_page.content.decode(), status.json()["html"], detail.json()["error"]]


def test_model_broken_after_activation_shows_a_plain_reason(active_model, broken_trunc, alice, make_prediction):
    # The file went bad after a successful activation (disk, a bad deploy): bypass the service's check.
    ModelVersion.objects.update(is_active=False)
    ModelVersion.objects.filter(pk=broken_trunc.pk).update(is_active=True)
    clear_cache()
    prediction = make_prediction(user=alice)

    failed = prediction_run(prediction_id=prediction.pk)
    assert failed.status == Prediction.Status.FAILED
    assert failed.error == MODEL_UNAVAILABLE_REASON
    assert _leaks(failed.error, broken_trunc.path) == []
    for shown in _pages_and_api(failed):
        assert MODEL_UNAVAILABLE_REASON in shown.replace("&#x27;", "'")
        assert str(Path(broken_trunc.path)) not in shown
        assert "not a loadable" not in shown
        assert "cannot be loaded" not in shown


def test_no_active_model_shows_a_plain_reason(active_model, alice, make_prediction):
    ModelVersion.objects.update(is_active=False)
    failed = prediction_run(prediction_id=make_prediction(user=alice).pk)
    assert failed.error == MODEL_UNAVAILABLE_REASON


def test_unreadable_stored_photo_shows_a_plain_reason(active_model, alice, make_prediction):
    prediction = make_prediction(user=alice)
    default_storage.delete(prediction.image.name)
    default_storage.save(prediction.image.name, ContentFile(b"\xff\xd8\xff\xe0 not really a jpeg"))
    failed = prediction_run(prediction_id=prediction.pk)
    assert failed.status == Prediction.Status.FAILED
    assert failed.error == IMAGE_UNREADABLE_REASON
    assert _leaks(failed.error) == []
