"""A logistic-regression head on frozen backbone features, folded into one Keras Dense layer for export.

Why logistic regression rather than a few epochs of Adam on the head: on 5,000 images the L2-regularised
convex fit has one answer for a given C (no learning rate, epochs or seed to tune), takes seconds, and its
strength C is the one knob that trades fit on HAM10000 against travelling to other sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LinearHead:
    """softmax(features @ kernel + bias); standardisation is already folded into kernel and bias."""

    kernel: np.ndarray  # (dim, n_classes)
    bias: np.ndarray  # (n_classes,)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        logits = features.astype(np.float64) @ self.kernel + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def to_dense(self, name: str) -> Any:
        """A keras Dense(softmax) layer holding this head (build it by calling it on the features)."""
        import keras  # noqa: PLC0415

        dim, n_classes = self.kernel.shape
        layer = keras.layers.Dense(n_classes, activation="softmax", name=name)
        layer.build((None, dim))
        layer.set_weights([self.kernel.astype(np.float32), self.bias.astype(np.float32)])
        return layer


def fit_logistic_head(
    features: np.ndarray,
    targets: np.ndarray,
    *,
    n_classes: int,
    c: float,
    max_iter: int = 3000,
    sample_weight: np.ndarray | None = None,
) -> LinearHead:
    """Multinomial logistic regression on standardised features with balanced class weights.

    Balanced weights: melanoma is 8 % of HAM10000 and the threshold is later set for 90 % sensitivity, so
    the fit should rank melanomas well rather than be calibrated to the training prevalence. With
    `sample_weight` (training.weighting: classes balanced within each source) those replace the class weights.
    """
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    present = np.unique(targets)
    if present.size < 2:
        raise ValueError("The training split holds a single class; a classifier needs at least two.")
    scaler = StandardScaler().fit(features)
    model = LogisticRegression(C=c, max_iter=max_iter, class_weight="balanced" if sample_weight is None else None)
    model.fit(scaler.transform(features), targets, sample_weight=sample_weight)
    # Scatter sklearn's coefficients (one row for binary, one per seen class otherwise) into all n_classes.
    coef = np.zeros((n_classes, features.shape[1]))
    intercept = np.zeros(n_classes)
    if model.coef_.shape[0] == 1:  # binary: logit of classes_[1] against classes_[0]
        coef[model.classes_[1]] = model.coef_[0]
        intercept[model.classes_[1]] = model.intercept_[0]
    else:
        coef[model.classes_] = model.coef_
        intercept[model.classes_] = model.intercept_
    missing = np.setdiff1d(np.arange(n_classes), model.classes_)
    intercept[missing] = -1e4  # a class absent from training is never predicted
    kernel = (coef / scaler.scale_).T
    bias = intercept - coef @ (scaler.mean_ / scaler.scale_)
    return LinearHead(kernel=kernel, bias=bias)
