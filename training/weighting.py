"""Per-image training weights that keep small sources from being drowned by HAM10000.

Pooled as they are, HAM10000 holds 77 % of the training images (5,984 of ~7,700), so a fit learns mostly
its clinics. Measured with the logistic recipe on cached features (AUC, HAM10000 validation / ISIC 2017
valid; leave-one-source-out HAM10000 / ISIC 2017 / PH2):
- "class": classes balanced over the pool, sources as they come: 0.906 / 0.771.
- "source_class": every source the same total weight, classes balanced within each: 0.898 / 0.757 (PH2's
  200 images then weigh as much as HAM10000's 6,000: its quirks are overfitted).
- "sqrt_source_class": a source's total weight proportional to the square root of its size, classes
  balanced within each source: 0.907 / 0.762; leave-one-source-out 0.909 / 0.685 / 0.851. HAM10000's share
  drops to ~59 %. The default.
Weights have mean 1, so the regularisation strength means the same whichever scheme is used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SCHEMES = ("class", "source_class", "sqrt_source_class")
DEFAULT_SCHEME = "sqrt_source_class"


def sample_weights(labels: Sequence[int], sources: Sequence[str], scheme: str = DEFAULT_SCHEME) -> np.ndarray:
    """One weight per image (mean 1): its source's share of the total, split equally between its classes."""
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown source weighting {scheme!r}: use {', '.join(SCHEMES)}.")
    y = np.asarray(labels, dtype=int)
    src = np.asarray(sources, dtype=object)
    if y.shape != src.shape:
        raise ValueError(f"{y.size} labels but {src.size} sources.")
    if scheme == "class":
        src = np.full(y.shape, "all", dtype=object)
    names = sorted(set(src.tolist()))
    size = {name: int(np.sum(src == name)) for name in names}
    raw_share = {name: (np.sqrt(size[name]) if scheme == "sqrt_source_class" else 1.0) for name in names}
    total_share = sum(raw_share.values())
    weights = np.zeros(y.size, dtype=np.float64)
    for name in names:
        in_source = src == name
        classes = [c for c in (0, 1) if np.any(in_source & (y == c))]
        for c in classes:
            selected = in_source & (y == c)
            weights[selected] = y.size * raw_share[name] / total_share / (len(classes) * selected.sum())
    return weights


def source_shares(weights: np.ndarray, sources: Sequence[str]) -> dict[str, float]:
    """Each source's share of the total training weight (the card shows it)."""
    src = np.asarray(sources, dtype=object)
    total = float(np.sum(weights))
    return {name: round(float(np.sum(weights[src == name])) / total, 3) for name in sorted(set(src.tolist()))}
