"""The shipped recipe: frozen backbone, pooled features, a logistic-regression head. ~5 minutes on HAM10000.

The backbone stays frozen. Pooled features of several layers (training.features) are extracted through
LiteRT for each training image and for a colour-constant (shades-of-gray) copy of it; a multinomial
logistic regression on them (training.linear_head) becomes the Dense softmax head.
"""

from __future__ import annotations

import time

import numpy as np

from training.features import FEATURE_LAYERS, build_feature_model, export_runner, extract
from training.linear_head import fit_logistic_head
from training.model import HEAD_NAME
from training.recipes.base import FitInputs, Fitted, Recipe, class_targets, model_inputs, notify
from training.weights import build_backbone


def fit(run: FitInputs) -> Fitted:
    import keras  # noqa: PLC0415

    config, train_samples, val_samples = run.config, run.train_samples, run.val_samples
    normalisation, progress, timings = run.normalisation, run.progress, run.timings

    phase = time.perf_counter()
    backbone = build_backbone(config.image_size, config.weights)
    feature_model = build_feature_model(backbone.model)
    check_inputs = model_inputs(val_samples[:4], image_size=config.image_size, normalisation=normalisation)
    runner = export_runner(feature_model, image_size=config.image_size, check_inputs=check_inputs)
    total = len(train_samples) * len(config.feature_views) + len(val_samples)
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        notify(progress, "cache", done, total)

    notify(progress, "cache", 0, total)
    train_features = extract(
        runner, train_samples, image_size=config.image_size, normalisation=normalisation,
        views=config.feature_views, rng=run.rng, progress=advance,
    )  # fmt: skip
    val_features = extract(
        runner, val_samples, image_size=config.image_size, normalisation=normalisation, progress=advance
    )[0]
    timings["cache_s"] = time.perf_counter() - phase

    phase = time.perf_counter()
    notify(progress, "train", 0, 1)
    views, count, dim = train_features.shape
    targets = np.tile(class_targets(train_samples, run.class_names), views)
    head = fit_logistic_head(
        train_features.reshape(views * count, dim), targets, n_classes=len(run.class_names), c=config.logistic_c
    )
    model = keras.Model(feature_model.input, head.to_dense(HEAD_NAME)(feature_model.output), name="melanoma_mnv2")
    notify(progress, "train", 1, 1)
    timings["train_s"] = time.perf_counter() - phase
    layers = ", ".join(f"{name} ({pooling})" for name, pooling in FEATURE_LAYERS)
    return Fitted(
        model=model,
        val_scores=head.probabilities(val_features)[:, run.melanoma_indices].sum(axis=1),
        architecture=(
            f"MobileNetV2 (alpha 1.0, frozen ImageNet backbone); global pooling of {layers}, concatenated "
            f"({dim} features); softmax head = L2-regularised logistic regression (C={config.logistic_c}, "
            "balanced class weights) with the feature standardisation folded into the Dense layer"
        ),
        backbone_origin=backbone.origin,
        recipe={
            "feature_layers": [list(item) for item in FEATURE_LAYERS],
            "training_views": list(config.feature_views),
            "logistic_c": config.logistic_c,
            "class_weight": "balanced",
            "trained_layers": "head only (Dense softmax); backbone frozen",
            "ms_per_image_view": round(1000 * timings["cache_s"] / max(1, total), 2),
        },
    )


# "auto" fits melanoma vs rest: the 7-diagnosis fit was no better on validation or isic-sample AUC.
RECIPE = Recipe(name="logistic", auto_task="binary", fit=fit)
