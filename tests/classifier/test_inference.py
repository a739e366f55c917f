"""classifier.inference: the worker's entry point, with a real LiteRT model and real database rows."""

import json
import shutil

import pytest

from classifier.inference import (
    ImageUnreadable,
    InferenceError,
    ModelUnavailable,
    clear_cache,
    get_active_scorer,
    predict_melanoma,
)
from classifier.models import ModelVersion
from classifier.services.model_versions import model_version_activate, model_version_register


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


def _copy_model(source, target, version):
    shutil.copytree(source, target)
    card_path = target / "model_card.json"
    card = json.loads(card_path.read_text())
    card["version"] = version
    card_path.write_text(json.dumps(card))
    return target


@pytest.mark.django_db
def test_predict_with_the_active_model(active_model, make_image_bytes):
    result = predict_melanoma(make_image_bytes("JPEG", width=640, height=480))
    assert 0.0 <= result.score <= 1.0
    assert result.threshold == active_model.threshold
    assert result.model_version == active_model.version
    assert result.model_version_id == active_model.pk


@pytest.mark.django_db
def test_same_bytes_same_score_and_scorer_loaded_once(active_model, make_image_bytes):
    image = make_image_bytes("PNG", seed=3)
    first = predict_melanoma(image)
    _, scorer = get_active_scorer()
    second = predict_melanoma(image)
    assert first == second
    assert get_active_scorer()[1] is scorer


@pytest.mark.django_db
def test_no_active_model_is_model_unavailable(make_image_bytes):
    ModelVersion.objects.update(is_active=False)
    with pytest.raises(ModelUnavailable, match="No model is active"):
        predict_melanoma(make_image_bytes())


@pytest.mark.django_db
def test_unreadable_image(active_model):
    with pytest.raises(ImageUnreadable) as error:
        predict_melanoma(b"definitely not a photo")
    assert isinstance(error.value, InferenceError)
    assert "could not be read" in str(error.value)


@pytest.mark.django_db
def test_missing_model_file_is_model_unavailable(model_dir, tmp_path, make_image_bytes):
    broken = _copy_model(model_dir, tmp_path / "broken", "broken-model")
    model_version = model_version_register(model_dir=broken, activate=True)
    (broken / "model.tflite").unlink()
    with pytest.raises(ModelUnavailable, match="broken-model"):
        predict_melanoma(make_image_bytes())
    assert ModelVersion.objects.get(pk=model_version.pk).is_active  # nothing changed behind the operator's back


@pytest.mark.django_db
def test_newly_activated_version_is_used_without_restart(model_dir, tmp_path, make_image_bytes):
    first = model_version_register(model_dir=_copy_model(model_dir, tmp_path / "a", "version-a"), activate=True)
    second = model_version_register(model_dir=_copy_model(model_dir, tmp_path / "b", "version-b"))
    image = make_image_bytes()
    assert predict_melanoma(image).model_version == "version-a"
    model_version_activate(model_version=second)
    result = predict_melanoma(image)
    assert result.model_version == "version-b"
    assert result.model_version_id == second.pk != first.pk
