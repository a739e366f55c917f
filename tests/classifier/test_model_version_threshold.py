"""A version's threshold has one source, its model card: the row copies it at registration, nothing edits it."""

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from classifier.models import ModelVersion
from classifier.services.model_versions import model_version_register
from lesion_model.preprocessing import Normalisation
from training.model_card import write_model_card

pytestmark = pytest.mark.django_db


def _model_dir(path: Path, *, threshold: float) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.tflite").write_bytes(b"not read by registration")
    card = {"version": "card-threshold", "input_size": 32, "threshold": threshold, "metrics": {}}
    write_model_card(path, {**card, "normalisation": Normalisation().to_card()})
    return path


def test_registering_again_takes_the_cards_new_threshold(tmp_path):
    model_dir = _model_dir(tmp_path / "card-threshold", threshold=0.4)
    assert model_version_register(model_dir=model_dir).threshold == 0.4

    _model_dir(model_dir, threshold=0.25)
    model_version_register(model_dir=model_dir)

    assert ModelVersion.objects.get(version="card-threshold").threshold == 0.25


def test_the_admin_cannot_edit_a_threshold(admin_user, tmp_path):
    model_version = model_version_register(model_dir=_model_dir(tmp_path / "card-threshold", threshold=0.4))
    client = Client()
    client.force_login(admin_user)
    url = reverse("admin:classifier_modelversion_change", args=[model_version.pk])

    html = client.get(url).content.decode()
    client.post(url, {"threshold": "0.9"})

    assert 'name="threshold"' not in html
    model_version.refresh_from_db()
    assert model_version.threshold == 0.4
