"""Keras -> LiteRT export: the .tflite reproduces Keras, and a damaged export is rejected."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def small_model():
    from training.model import build_model

    return build_model(image_size=48, n_classes=2, weights="none").model


def test_export_matches_keras(small_model, tmp_path):
    from training.export import export_tflite, verify_tflite

    path = export_tflite(small_model, tmp_path / "model", image_size=48)
    assert path.name == "model.tflite"
    assert path.stat().st_size > 100_000
    inputs = np.random.default_rng(1).normal(size=(3, 48, 48, 3)).astype(np.float32)
    assert verify_tflite(small_model, path, inputs) < 1e-4


def test_export_mismatch_is_rejected(small_model, tmp_path):
    import keras

    from training.export import ExportError, export_tflite, verify_tflite

    path = export_tflite(small_model, tmp_path / "model", image_size=48)
    # A different model behind the same file: verification must notice.
    inputs = keras.Input((48, 48, 3))
    other = keras.Model(
        inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs))
    )
    with pytest.raises(ExportError):
        verify_tflite(other, path, np.random.default_rng(2).normal(size=(2, 48, 48, 3)).astype(np.float32))
