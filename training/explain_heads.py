"""The shipped graph's extra outputs, built on the frozen features the melanoma head already uses.

- `heatmap_branch`: the melanoma logit's per-position share (lesion_model.explain says why it is exact for
  the average-pooled layers), a 1x1 convolution per layer with the head's weights, summed on one grid.
- the differential: a second logistic head on the same features, seven diagnoses, then calibrated on
  validation (a temperature and a bias per class, folded into the Dense layer). The melanoma head is fitted
  before and apart from it, so the melanoma output is the same with or without it.
- familiarity: the features whitened on the training images' first principal components; the card's
  threshold is the 99.5th percentile of the validation images' distances.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lesion_model.explain import DIAGNOSES, diagnosis_code
from training.features import FEATURE_LAYERS, centre_margin
from training.linear_head import LinearHead, fit_logistic_head

FAMILIARITY_COMPONENTS = 32
FAMILIARITY_PERCENTILE = 99.5
# The threshold sits this far beyond the validation percentile: at the percentile itself 4-8 % of lesions from
# sources never trained on (isic-sample, ISIC 2017 test) were refused, at 1.25x none of 200 (README).
FAMILIARITY_MARGIN = 1.25
DIFFERENTIAL_C = 0.002
# Poolings that are means over positions, so the logit's part from them spreads exactly over the map.
AVERAGED = ("avg", "centre_avg")


@dataclass(frozen=True)
class ExtraHeads:
    layers: dict[str, Any]  # output name -> Keras layer to call on the pooled features
    card: dict[str, Any]
    differential_head: LinearHead | None = None  # calibrated; None when the data has no diagnoses


def differential_metrics(
    probabilities: np.ndarray, dx: Sequence[str | None], labels: Sequence[int], melanoma_scores: np.ndarray
) -> dict[str, Any]:
    """How the differential does on images with a known diagnosis: per-class recall of the most likely code, their
    mean (balanced accuracy over the classes present), and the melanoma AUC of its `mel` column against the
    melanoma output's on the same images (the melanoma output is the one the verdict rests on)."""
    codes = list(DIAGNOSES)
    truth = np.array([codes.index(code) if (code := diagnosis_code(value)) else -1 for value in dx])
    known = truth >= 0
    predicted = probabilities.argmax(axis=1)
    recall = {
        code: round(float((predicted[known & (truth == i)] == i).mean()), 3)
        for i, code in enumerate(codes)
        if (known & (truth == i)).any()
    }
    labels = np.asarray(labels)
    return {
        "images": int(known.sum()),
        "balanced_accuracy": round(float(np.mean(list(recall.values()))), 3) if recall else None,
        "recall": recall,
        "melanoma_auc_of_differential": round(float(roc_auc(labels, probabilities[:, codes.index("mel")])), 4),
        "melanoma_auc_of_melanoma_output": round(float(roc_auc(labels, melanoma_scores)), 4),
    }


def heatmap_grid(backbone_model: Any) -> int:
    """The heatmap's side: the finest averaged layer's (28 at 224 px, 40 at 320)."""
    return max(int(backbone_model.get_layer(n).output.shape[1]) for n, pooling in FEATURE_LAYERS if pooling in AVERAGED)


def heatmap_branch(backbone_model: Any, direction: np.ndarray) -> Any:
    """Keras tensor (grid, grid): sum over averaged layers of their maps weighted by `direction` (heatmap_grid)."""
    import keras  # noqa: PLC0415

    grid = heatmap_grid(backbone_model)
    parts = []
    offset = 0
    for layer_name, pooling in FEATURE_LAYERS:
        output = backbone_model.get_layer(layer_name).output
        channels = int(output.shape[-1])
        weights = direction[offset : offset + channels]
        offset += channels
        if pooling not in AVERAGED:  # a max-pooled feature has no spread over the image: left out (module docstring)
            continue
        side = int(output.shape[1])
        name = f"heat_{layer_name}" if pooling == "avg" else f"heat_{layer_name}_{pooling}"
        margin = centre_margin(side) if pooling == "centre_avg" else 0
        # A centre average is the mean over (side - 2 margin)^2 cells: on the whole grid, whose mean the map keeps,
        # each of them counts (side / (side - 2 margin))^2 times, and the cells outside count nothing.
        scale = (side / (side - 2 * margin)) ** 2
        conv = keras.layers.Conv2D(1, 1, use_bias=False, name=name)
        conv.build(output.shape)
        conv.set_weights([(scale * weights).reshape(1, 1, channels, 1).astype(np.float32)])
        heat = conv(output)
        if margin:
            heat = keras.layers.Cropping2D(margin, name=f"{name}_crop")(heat)
            heat = keras.layers.ZeroPadding2D(margin, name=f"{name}_pad")(heat)
        if side != grid:
            heat = keras.layers.UpSampling2D(grid // side, interpolation="nearest", name=f"{name}_up")(heat)
        parts.append(heat)
    if offset != direction.size:
        raise ValueError(f"The head has {direction.size} weights; the feature layers hold {offset}.")
    summed = parts[0] if len(parts) == 1 else keras.layers.Add(name="heat_sum")(parts)
    return keras.layers.Reshape((grid, grid), name="heatmap")(summed)


def explain_heads(
    run: Any, backbone_model: Any, head: LinearHead, train_features: np.ndarray, val_features: np.ndarray
) -> ExtraHeads:
    """The differential and familiarity layers with their card sections (run: training.recipes.base.FitInputs)."""
    layers: dict[str, Any] = {}
    card: dict[str, Any] = {
        "heatmap": {
            "output": "heatmap",
            "grid": heatmap_grid(backbone_model),
            "layers": [name for name, pooling in FEATURE_LAYERS if pooling == "avg"],
            "centre_layers": [name for name, pooling in FEATURE_LAYERS if pooling == "centre_avg"],
            "method": (
                "class activation map of the melanoma logit (against the rest): per position, the head's weights "
                "times each average-pooled layer's map (centre-pooled ones on their central cells, scaled by the "
                "grid's area over the centre's), nearest-upsampled to the grid and summed; its mean is exactly "
                "those layers' share of the logit. Max-pooled features and the bias are left out."
            ),
        }
    }
    differential = _differential(run, train_features, val_features, head)
    differential_head = None
    if differential is not None:
        layers["differential"], card["differential"], differential_head = differential
    if not run.fold:  # a cross-source fold's table has no use for it
        layers["familiarity"], card["familiarity"] = _familiarity(train_features, val_features)
    return ExtraHeads(layers=layers, card=card, differential_head=differential_head)


def _differential(
    run: Any, train_features: np.ndarray, val_features: np.ndarray, melanoma_head: LinearHead
) -> tuple[Any, dict[str, Any], LinearHead] | None:
    codes = list(DIAGNOSES)
    train_codes = [diagnosis_code(sample.dx) for sample in run.train_samples]
    val_codes = [diagnosis_code(sample.dx) for sample in run.val_samples]
    known = np.array([code is not None for code in train_codes])
    if known.sum() < 10 or len({code for code in train_codes if code}) < 2:
        return None
    n_views = train_features.shape[0]
    targets = np.array([codes.index(code) if code else -1 for code in train_codes])
    x = train_features[:, known].reshape(-1, train_features.shape[-1])
    y = np.tile(targets[known], n_views)
    raw = fit_logistic_head(x, y, n_classes=len(codes), c=DIFFERENTIAL_C)
    val_known = np.array([code is not None for code in val_codes])
    val_targets = np.array([codes.index(code) if code else -1 for code in val_codes])
    logits = val_features[val_known].astype(np.float64) @ raw.kernel + raw.bias
    temperature, shift = _calibrate(logits, val_targets[val_known], len(codes))
    calibrated = LinearHead(kernel=raw.kernel / temperature, bias=raw.bias / temperature + shift)
    all_probabilities = calibrated.probabilities(val_features)
    probabilities = all_probabilities[val_known]
    truth = val_targets[val_known]
    melanoma_scores = melanoma_head.probabilities(val_features)[:, run.melanoma_indices].sum(axis=1)
    validation = differential_metrics(
        all_probabilities, [sample.dx for sample in run.val_samples], run.val_labels, melanoma_scores
    )
    section = {
        "output": "differential",
        "codes": codes,
        "labels": [DIAGNOSES[code] for code in codes],
        "logistic_c": DIFFERENTIAL_C,
        "class_weight": "balanced",
        "training_images": int(known.sum()),
        "calibration": {
            "method": "temperature and a bias per class, fitted by log-loss on the validation split",
            "temperature": round(temperature, 4),
            "bias": [round(float(value), 4) for value in shift],
        },
        "validation": {
            **validation,
            "log_loss": round(
                float(-np.mean(np.log(np.clip(probabilities[np.arange(truth.size), truth], 1e-12, 1)))), 4
            ),
        },
        "note": (
            "A separate head fitted after the melanoma head on the same frozen features: the melanoma output is "
            "unchanged by it (same weights with or without)."
        ),
    }
    return calibrated.to_dense("differential"), section, calibrated


def _calibrate(logits: np.ndarray, targets: np.ndarray, n_classes: int) -> tuple[float, np.ndarray]:
    """Temperature T and per-class bias b minimising the log-loss of softmax(logits / T + b)."""
    from scipy.optimize import minimize  # noqa: PLC0415

    present = targets >= 0

    def loss(params: np.ndarray) -> float:
        z = logits[present] / np.exp(params[0]) + params[1:]
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        # A small ridge keeps the bias of a class absent from validation at zero.
        return float(-log_p[np.arange(z.shape[0]), targets[present]].mean() + 1e-3 * np.sum(params[1:] ** 2))

    result = minimize(loss, np.zeros(n_classes + 1), method="L-BFGS-B")
    return float(np.exp(result.x[0])), np.asarray(result.x[1:], dtype=np.float64)


def _familiarity(train_features: np.ndarray, val_features: np.ndarray) -> tuple[Any, dict[str, Any]]:
    import keras  # noqa: PLC0415
    from scipy.linalg import eigh  # noqa: PLC0415

    x = train_features[0].astype(np.float64)  # the images as served (identity view)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    standard = (x - mean) / scale
    # The first k principal axes, from the top k eigenvectors of the scatter matrix: the same axes and spreads
    # as a full SVD of the images (to 1e-15 on the shipped training set) in 11 s instead of 55 at 5,664 features.
    k = min(FAMILIARITY_COMPONENTS, *standard.shape)
    scatter = standard.T @ standard
    eigenvalues, eigenvectors = eigh(scatter, subset_by_index=[scatter.shape[0] - k, scatter.shape[0] - 1])
    order = np.argsort(eigenvalues)[::-1]  # largest first, as an SVD gives them
    spread = np.sqrt(np.clip(eigenvalues[order], 0.0, None) / max(1, x.shape[0] - 1))
    kernel = (eigenvectors[:, order] / scale[:, None]) / spread[None, :]
    bias = -(mean @ kernel)
    distances = np.sqrt(np.sum(np.square(val_features.astype(np.float64) @ kernel + bias), axis=1))
    percentile = float(np.percentile(distances, FAMILIARITY_PERCENTILE))
    threshold = FAMILIARITY_MARGIN * percentile
    layer = keras.layers.Dense(k, name="familiarity")
    layer.build((None, x.shape[1]))
    layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return layer, {
        "output": "familiarity",
        "method": (
            f"Mahalanobis distance of the pooled features on the training images' first {k} principal "
            "components (standardised features); unfamiliar above the threshold"
        ),
        "components": k,
        "threshold": round(threshold, 3),
        "threshold_rule": (
            f"{FAMILIARITY_MARGIN} x the {FAMILIARITY_PERCENTILE}th percentile of the validation images' distances"
        ),
        "validation_percentile": round(percentile, 3),
        "validation_median": round(float(np.median(distances)), 3),
    }


def roc_auc(labels: Sequence[int] | np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    return float(roc_auc_score(np.asarray(labels), scores))
