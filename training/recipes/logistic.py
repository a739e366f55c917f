"""The shipped recipe: frozen backbone, pooled features, a logistic-regression head. ~5 minutes on HAM10000.

The backbone stays frozen. Pooled features of several layers (training.features) are extracted through
LiteRT for each training image and for a colour-constant (shades-of-gray) copy of it; a multinomial
logistic regression on them (training.linear_head) becomes the Dense softmax head. Images are weighted by
source and class (training.weighting) when train() passes weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.datasets import Sample
from training.explain_heads import explain_heads, heatmap_branch
from training.feature_cache import FeatureCache, fingerprint
from training.features import CENTRE_FRACTION, FEATURE_LAYERS, build_feature_model, export_runner, extract
from training.linear_head import fit_logistic_head
from training.model import HEAD_NAME
from training.recipes.base import FitInputs, Fitted, Recipe, class_targets, model_inputs, notify
from training.weights import build_backbone


def fit(run: FitInputs) -> Fitted:
    import keras  # noqa: PLC0415

    config, train_samples, val_samples = run.config, run.train_samples, run.val_samples
    progress, timings = run.progress, run.timings

    phase = time.perf_counter()
    backbone, feature_model, runner = _feature_runner(run)
    views = tuple(config.feature_views)
    total = len(train_samples) * len(views) + len(val_samples)
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        notify(progress, "cache", done, total)

    notify(progress, "cache", 0, total)
    train_features = _features(run, runner, train_samples, views, advance)
    val_features = _features(run, runner, val_samples, ("identity",), advance)[0]
    timings["cache_s"] = time.perf_counter() - phase

    phase = time.perf_counter()
    notify(progress, "train", 0, 1)
    n_views, count, dim = train_features.shape
    targets = np.tile(class_targets(train_samples, run.class_names), n_views)
    weights = np.tile(run.train_weights, n_views) if run.train_weights is not None else None
    head = fit_logistic_head(
        train_features.reshape(n_views * count, dim), targets, n_classes=len(run.class_names), c=config.logistic_c,
        sample_weight=weights,
    )  # fmt: skip
    extras = explain_heads(run, backbone.model, head, train_features, val_features)
    model = keras.Model(
        feature_model.input,
        {
            "probabilities": head.to_dense(HEAD_NAME)(feature_model.output),
            "heatmap": heatmap_branch(backbone.model, _melanoma_direction(head, run.melanoma_indices)),
            **{name: layer(feature_model.output) for name, layer in extras.layers.items()},
        },
        name="melanoma_mnv2",
    )
    notify(progress, "train", 1, 1)
    timings["train_s"] = time.perf_counter() - phase
    layers = ", ".join(f"{name} ({pooling})" for name, pooling in FEATURE_LAYERS)
    weighting = "balanced class weights" if weights is None else f"{config.source_weighting} sample weights"

    def score_samples(samples: Sequence[Sample]) -> np.ndarray:
        features = _features(run, runner, samples, ("identity",), None)[0]
        return head.probabilities(features)[:, run.melanoma_indices].sum(axis=1)

    def score_simulated(samples: Sequence[Sample]) -> np.ndarray:
        features = _features(run, runner, samples, ("simulated_camera",), None)[0]
        return head.probabilities(features)[:, run.melanoma_indices].sum(axis=1)

    def differential_samples(samples: Sequence[Sample]) -> np.ndarray:
        assert extras.differential_head is not None  # noqa: S101 - only handed out when there is one
        return extras.differential_head.probabilities(_features(run, runner, samples, ("identity",), None)[0])

    return Fitted(
        model=model,
        val_scores=head.probabilities(val_features)[:, run.melanoma_indices].sum(axis=1),
        architecture=(
            f"MobileNetV2 (alpha 1.0, frozen ImageNet backbone); global pooling of {layers}, concatenated "
            f"({dim} features); softmax head = L2-regularised logistic regression (C={config.logistic_c}, "
            f"{weighting}) with the feature standardisation folded into the Dense layer"
        ),
        backbone_origin=backbone.origin,
        recipe={
            "feature_layers": [list(item) for item in FEATURE_LAYERS],
            "centre_fraction": CENTRE_FRACTION,
            "training_views": list(views),
            "logistic_c": config.logistic_c,
            "class_weight": "balanced"
            if weights is None
            else f"balanced within each source ({config.source_weighting})",
            "trained_layers": "head only (Dense softmax); backbone frozen",
            # Measured over every extraction of this train() call (cross-source folds included): the final fit
            # alone may have found all its features in the memo.
            "ms_per_image_view": round(1000 * run.memo.get("extract_s", 0.0) / max(1, run.memo.get("extracted", 0)), 2),
        },
        score_samples=score_samples,
        card_extras=extras.card,
        differential_samples=differential_samples if extras.differential_head is not None else None,
        score_simulated=score_simulated,
    )


def _melanoma_direction(head: Any, melanoma_indices: Sequence[int]) -> np.ndarray:
    """Feature weights of the melanoma logit against the rest (exact log-odds for the binary head)."""
    kernel = np.asarray(head.kernel, dtype=np.float64)
    melanoma = kernel[:, list(melanoma_indices)].mean(axis=1)
    others = [i for i in range(kernel.shape[1]) if i not in set(melanoma_indices)]
    return melanoma - kernel[:, others].mean(axis=1)


def _feature_runner(run: FitInputs) -> tuple[Any, Any, Any]:
    """(backbone, Keras feature model, LiteRT runner), built once per train() call and kept in run.memo."""
    if "feature_runner" not in run.memo:
        config = run.config
        backbone = build_backbone(config.image_size, config.weights)
        feature_model = build_feature_model(backbone.model)
        check_inputs = model_inputs(run.val_samples[:4], image_size=config.image_size, normalisation=run.normalisation)
        runner = export_runner(feature_model, image_size=config.image_size, check_inputs=check_inputs)
        run.memo["feature_runner"] = (backbone, feature_model, runner)
    return run.memo["feature_runner"]


def _features(
    run: FitInputs,
    runner: Any,
    samples: Sequence[Sample],
    views: tuple[str, ...],
    progress: Callable[[int], None] | None,
) -> np.ndarray:
    """(views, samples, dim) features; each (image, view) is extracted once per train() call (a random view is
    seeded by the image's path, so every fit of the call sees the same one)."""
    memo: dict[tuple[Path, str], np.ndarray] = run.memo.setdefault("features", {})
    disk = _disk_cache(run)
    if disk is not None:
        for sample in samples:
            for view in views:
                if (sample.path, view) not in memo and (vector := disk.get(sample.path, view)) is not None:
                    memo[(sample.path, view)] = vector
    missing = [sample for sample in samples if any((sample.path, v) not in memo for v in views)]
    if missing:
        started = time.perf_counter()
        extracted = extract(
            runner, missing, image_size=run.config.image_size, normalisation=run.normalisation, views=views,
            seed=run.config.seed, progress=progress,
        )  # fmt: skip
        run.memo["extract_s"] = run.memo.get("extract_s", 0.0) + time.perf_counter() - started
        run.memo["extracted"] = run.memo.get("extracted", 0) + len(missing) * len(views)
        for view_index, view in enumerate(views):
            for sample_index, sample in enumerate(missing):
                memo[(sample.path, view)] = extracted[view_index, sample_index]
                if disk is not None:
                    disk.put(sample.path, view, extracted[view_index, sample_index])
    if progress is not None and len(missing) < len(samples):
        progress((len(samples) - len(missing)) * len(views))
    return np.stack([np.stack([memo[(sample.path, view)] for sample in samples]) for view in views])


def _disk_cache(run: FitInputs) -> FeatureCache | None:
    """The run's on-disk feature cache (TrainConfig.feature_cache), opened once per train() call; None: none."""
    config = run.config
    if config.feature_cache is None:
        return None
    if "disk_cache" not in run.memo:
        run.memo["disk_cache"] = FeatureCache(
            config.feature_cache,
            fingerprint(
                image_size=config.image_size, weights=config.weights, normalisation=run.normalisation,
                seed=config.seed, layers=FEATURE_LAYERS, centre_fraction=CENTRE_FRACTION,
            ),
        )  # fmt: skip
    return run.memo["disk_cache"]


# "auto" fits melanoma vs rest: the 7-diagnosis fit was no better on validation or isic-sample AUC.
RECIPE = Recipe(name="logistic", auto_task="binary", fit=fit)
