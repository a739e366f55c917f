"""The classifier graph: MobileNetV2 + head, split at the cut for cached training, BatchNorm frozen."""

import numpy as np
import pytest

pytest.importorskip("keras")


def test_build_model_shapes_and_split():
    import keras

    from training.model import build_model

    classifier = build_model(image_size=64, n_classes=3, weights="none")
    assert classifier.model.input_shape == (None, 64, 64, 3)
    assert classifier.model.output_shape == (None, 3)
    assert classifier.lower.output_shape == (None, 4, 4, 96)  # block_12_add at 1/16 resolution

    images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    whole = classifier.model(images, training=False).numpy()
    composed = classifier.upper(classifier.lower(images, training=False), training=False).numpy()
    np.testing.assert_allclose(whole, composed, atol=1e-6)
    np.testing.assert_allclose(whole.sum(axis=1), 1.0, atol=1e-5)

    # Only the top blocks' convolutions and the head learn; no BatchNorm and nothing below the cut.
    assert all(not layer.trainable for layer in classifier.lower.layers)
    batchnorms = [layer for layer in classifier.upper.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert batchnorms
    assert all(not layer.trainable for layer in batchnorms)
    trainable_names = {variable.path.split("/")[0] for variable in classifier.upper.trainable_variables}
    assert "diagnosis" in trainable_names
    assert "block_16_project" in trainable_names
    assert not any(name.startswith(("block_12", "Conv1")) for name in trainable_names)


def test_torch_padding_and_epsilon_in_graph():
    from keras import layers

    from training.weights import build_torch_compatible_mobilenet_v2

    model = build_torch_compatible_mobilenet_v2((32, 32, 3))
    assert model.get_layer("Conv1").padding == "valid"
    assert model.get_layer("Conv1_pad").padding == ((1, 1), (1, 1))
    assert model.get_layer("block_13_pad").padding == ((1, 1), (1, 1))
    assert all(
        layer.epsilon == pytest.approx(1e-5) for layer in model.layers if isinstance(layer, layers.BatchNormalization)
    )
