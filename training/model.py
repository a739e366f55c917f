"""MobileNetV2 (torchvision ImageNet weights) + a small softmax head, and the cut used for cached fine-tuning.

Training on 2 CPU cores: the lower backbone (up to `block_12_add`, ~75 % of the compute) stays frozen and
its activations are computed once per augmented view; the top blocks 13-16 + Conv_1 + head are trained on
those cached activations with BatchNorm frozen (in inference mode, ImageNet statistics).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.weights import Backbone, build_backbone

DEFAULT_CUT_LAYER = "block_12_add"
HEAD_NAME = "diagnosis"


@dataclass
class ClassifierModel:
    model: Any  # keras.Model: image -> class probabilities
    lower: Any  # keras.Model: image -> activations at the cut (frozen)
    upper: Any  # keras.Model: activations at the cut -> class probabilities (trained)
    backbone: Backbone
    cut_layer: str


def build_model(
    *,
    image_size: int,
    n_classes: int,
    weights: str | Path | None = "torchvision",
    dropout: float = 0.3,
    cut_layer: str = DEFAULT_CUT_LAYER,
    cache_dir: Path | None = None,
) -> ClassifierModel:
    import keras  # noqa: PLC0415 - TensorFlow only for training
    from keras import layers  # noqa: PLC0415

    backbone = build_backbone(image_size, weights if weights is not None else "none", cache_dir=cache_dir)
    features = backbone.model.output
    x = layers.GlobalAveragePooling2D(name="pool")(features)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name=HEAD_NAME)(x)
    model = keras.Model(backbone.model.input, outputs, name="melanoma_mobilenetv2")

    cut = model.get_layer(cut_layer).output
    lower = keras.Model(model.input, cut, name="lower_backbone")
    upper = keras.Model(cut, outputs, name="upper_backbone_and_head")
    for layer in lower.layers:
        layer.trainable = False
    freeze_batchnorm(upper)
    return ClassifierModel(model=model, lower=lower, upper=upper, backbone=backbone, cut_layer=cut_layer)


def freeze_batchnorm(model: Any) -> None:
    """BatchNorm keeps ImageNet statistics: small, skewed batches on a few thousand images would wreck them.

    In Keras 3 a non-trainable BatchNormalization layer also runs in inference mode during fit().
    """
    from keras import layers  # noqa: PLC0415

    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
