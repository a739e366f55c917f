"""Melanoma-versus-rest metrics a clinician would accept: never accuracy alone.

A score at or above the threshold means "refer" (predicted melanoma), the same rule the serving path uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

CALIBRATION_BINS = 10


def _as_arrays(y_true: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(y_true, dtype=int).ravel()
    probabilities = np.asarray(scores, dtype=float).ravel()
    if labels.shape != probabilities.shape:
        raise ValueError(f"{labels.size} labels but {probabilities.size} scores.")
    if labels.size == 0:
        raise ValueError("No images to compute metrics on.")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("Labels must be 0 (not melanoma) or 1 (melanoma).")
    if not np.isfinite(probabilities).all():
        raise ValueError("Scores must be finite numbers.")
    return labels, probabilities


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def expected_calibration_error(
    y_true: Sequence[int], scores: Sequence[float], *, bins: int = CALIBRATION_BINS
) -> float:
    """Mean |predicted probability - observed melanoma rate| over equal-width bins, weighted by bin size."""
    labels, probabilities = _as_arrays(y_true, scores)
    # Bin i holds [i/bins, (i+1)/bins); a score of exactly 1.0 falls in the last bin.
    bin_index = np.minimum((np.clip(probabilities, 0.0, 1.0) * bins).astype(int), bins - 1)
    error = 0.0
    for i in range(bins):
        in_bin = bin_index == i
        if in_bin.any():
            error += in_bin.mean() * abs(probabilities[in_bin].mean() - labels[in_bin].mean())
    return float(error)


CONFIDENCE_LEVEL = 0.95
AUC_RESAMPLES = 2000


def _auc(melanoma_scores: np.ndarray, benign_scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """ROC AUC along `axis` (batches of resamples at once): the Mann-Whitney U statistic over all melanoma-benign
    pairs, ties counted half, which is exactly roc_auc_score."""
    from scipy.stats import mannwhitneyu  # noqa: PLC0415

    u_statistic = mannwhitneyu(melanoma_scores, benign_scores, axis=axis).statistic
    return u_statistic / (melanoma_scores.shape[axis] * benign_scores.shape[axis])


def confidence_intervals(
    y_true: Sequence[int], melanoma_scores: Sequence[float], threshold: float, *, seed: int = 0
) -> dict[str, list[float] | None]:
    """Two-sided 95 % intervals of ROC AUC, sensitivity and specificity; None where the figure is undefined.

    A few hundred images pin a figure down only to some hundredths, and a figure printed without its interval
    invites reading more into it. ROC AUC: a percentile bootstrap (scipy.stats.bootstrap, AUC_RESAMPLES draws,
    seeded so the same scores always give the same interval) that resamples melanomas and benign lesions
    separately, so every draw keeps the data's class counts; None with fewer than two of either. Sensitivity and
    specificity: Wilson score intervals of the counts at `threshold`.
    """
    from scipy.stats import binomtest, bootstrap  # noqa: PLC0415

    labels, probabilities = _as_arrays(y_true, melanoma_scores)
    melanoma, benign = probabilities[labels == 1], probabilities[labels == 0]
    referred = probabilities >= threshold

    def proportion(successes: int, trials: int) -> list[float] | None:
        if trials == 0:
            return None
        interval = binomtest(successes, trials).proportion_ci(confidence_level=CONFIDENCE_LEVEL, method="wilson")
        return [float(interval.low), float(interval.high)]

    roc_auc = None
    if melanoma.size >= 2 and benign.size >= 2:  # a class of one cannot be resampled: no interval
        result = bootstrap(
            (melanoma, benign), _auc, n_resamples=AUC_RESAMPLES, confidence_level=CONFIDENCE_LEVEL,
            method="percentile", random_state=np.random.default_rng(seed),
        )  # fmt: skip
        low, high = result.confidence_interval
        roc_auc = [float(low), float(high)]
    return {
        "roc_auc_ci": roc_auc,
        "sensitivity_ci": proportion(int(np.sum(referred[labels == 1])), melanoma.size),
        "specificity_ci": proportion(int(np.sum(~referred[labels == 0])), benign.size),
    }


def auc_difference(
    y_true: Sequence[int], scores: Sequence[float], baseline: Sequence[float], *, seed: int = 0
) -> list[float] | None:
    """ROC AUC of `scores` minus that of `baseline` on the same images, with its two-sided 95 % interval:
    [difference, low, high]; None with fewer than two of either class.

    Two heads scored on the same left-out images are correlated, so their separate intervals overlap even where
    one is better on nearly every resample. A paired bootstrap draws the same images for both (melanomas and
    benign lesions separately, AUC_RESAMPLES draws, seeded) and reads the spread of the difference.
    """
    labels, first = _as_arrays(y_true, scores)
    _, second = _as_arrays(labels, baseline)
    melanoma, benign = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if melanoma.size < 2 or benign.size < 2:
        return None

    def difference_on(melanoma_rows: np.ndarray, benign_rows: np.ndarray) -> np.ndarray:
        return _auc(first[melanoma_rows], first[benign_rows]) - _auc(second[melanoma_rows], second[benign_rows])

    difference = float(difference_on(melanoma, benign))
    # Drawn here rather than by scipy.stats.bootstrap: its paired mode draws one set of indices for every sample,
    # so it cannot resample the two classes separately and keep their counts.
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, AUC_RESAMPLES, 250):  # in chunks: 250 draws of 6,000 images is ~12 MB a side
        count = min(250, AUC_RESAMPLES - start)
        melanoma_rows = melanoma[rng.integers(0, melanoma.size, (count, melanoma.size))]
        benign_rows = benign[rng.integers(0, benign.size, (count, benign.size))]
        draws.append(difference_on(melanoma_rows, benign_rows))
    low, high = np.percentile(np.concatenate(draws), [2.5, 97.5])
    return [difference, float(low), float(high)]


def compute_metrics(
    y_true: Sequence[int], melanoma_scores: Sequence[float], threshold: float, *, intervals: bool = False
) -> dict[str, Any]:
    """Every figure the model card and `evaluate_model` report; None where a figure is undefined.

    roc_auc and pr_auc (average precision) need both classes present; sensitivity needs a melanoma,
    specificity a non-melanoma. `intervals` adds `confidence_intervals` (a bootstrap: seconds on thousands of
    images, so only where a figure is reported, not inside a search).
    """
    labels, probabilities = _as_arrays(y_true, melanoma_scores)
    predicted = probabilities >= threshold
    positive = labels == 1
    tp = int(np.sum(predicted & positive))
    fn = int(np.sum(~predicted & positive))
    tn = int(np.sum(~predicted & ~positive))
    fp = int(np.sum(predicted & ~positive))
    both_classes = 0 < positive.sum() < labels.size
    sensitivity = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    balanced = (sensitivity + specificity) / 2 if sensitivity is not None and specificity is not None else None
    return {
        "roc_auc": float(roc_auc_score(labels, probabilities)) if both_classes else None,
        "pr_auc": float(average_precision_score(labels, probabilities)) if both_classes else None,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "balanced_accuracy": balanced,
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "accuracy": (tp + tn) / labels.size,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
        "brier": float(np.mean((probabilities - labels) ** 2)),
        "ece": expected_calibration_error(labels, probabilities),
        "n_images": int(labels.size),
        "n_melanoma": int(positive.sum()),
        "threshold": float(threshold),
        **(confidence_intervals(labels, probabilities, threshold) if intervals else {}),
    }


def wilson_lower_bound(successes: int, trials: int, *, confidence: float) -> float:
    """One-sided lower confidence bound of a proportion (Wilson score interval)."""
    if trials <= 0:
        return 0.0
    z = NormalDist().inv_cdf(confidence)
    proportion = successes / trials
    centre = proportion + z * z / (2 * trials)
    spread = z * math.sqrt(proportion * (1 - proportion) / trials + z * z / (4 * trials * trials))
    return (centre - spread) / (1 + z * z / trials)


def melanomas_needed(n_melanoma: int, target_sensitivity: float, confidence: float | None = None) -> int:
    """How many of n validation melanomas the threshold must catch.

    Without `confidence`: ceil(target * n), the point estimate. With it: the fewest whose one-sided Wilson
    lower bound reaches the target, so the target holds with that confidence rather than only on these
    images (99 melanomas, 0.90 at 95 %: 95 caught, not 90). When no count is enough (small sets), all.
    """
    if confidence is None:
        # The tolerance absorbs 0.9 * 10 = 8.999...
        return max(1, math.ceil(target_sensitivity * n_melanoma - 1e-9))
    for caught in range(1, n_melanoma + 1):
        if wilson_lower_bound(caught, n_melanoma, confidence=confidence) >= target_sensitivity:
            return caught
    return n_melanoma


def choose_threshold(
    y_true: Sequence[int],
    scores: Sequence[float],
    *,
    target_sensitivity: float = 0.90,
    confidence: float | None = None,
) -> float:
    """The highest operating point whose sensitivity (score >= threshold) on these data reaches the target.

    Highest, because among thresholds that catch enough melanomas it refers the fewest benign lesions. The
    critical point is the k-th highest melanoma score; the threshold is placed halfway between it and the next
    lower score, which gives exactly the same validation decisions but does not sit *on* a melanoma's score:
    the served LiteRT model reproduces Keras only to ~1e-6, and a threshold equal to a score lost that melanoma
    (measured: validation sensitivity 0.909 in the card, 0.899 through serving).

    `confidence` (e.g. 0.95) asks for the target as a lower confidence bound, see `melanomas_needed`.
    """
    if not 0.0 < target_sensitivity <= 1.0:
        raise ValueError(f"target_sensitivity must lie in (0, 1], got {target_sensitivity}.")
    labels, probabilities = _as_arrays(y_true, scores)
    melanoma_scores = np.sort(probabilities[labels == 1])[::-1]
    if melanoma_scores.size == 0:
        raise ValueError("Cannot choose a threshold for a sensitivity target without any melanoma.")
    if confidence is not None and not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must lie in [0.5, 1), got {confidence}.")
    # The k-th highest melanoma score keeps k melanomas at or above it.
    needed = melanomas_needed(melanoma_scores.size, target_sensitivity, confidence)
    critical = float(melanoma_scores[needed - 1])
    lower = probabilities[probabilities < critical]
    if lower.size == 0:
        return critical
    return (critical + float(lower.max())) / 2


def save_roc_curve(y_true: Sequence[int], scores: Sequence[float], path: Path, *, threshold: float) -> Path:
    """Write the ROC curve with the operating point marked as a PNG (no display needed)."""
    from matplotlib.figure import Figure  # Figure without pyplot: no global state, no GUI backend

    labels, probabilities = _as_arrays(y_true, scores)
    metrics = compute_metrics(labels, probabilities, threshold)
    if metrics["roc_auc"] is None:
        raise ValueError("A ROC curve needs both melanoma and non-melanoma images.")
    false_positive_rate, true_positive_rate, _ = roc_curve(labels, probabilities)
    figure = Figure(figsize=(5, 5), dpi=100)
    axes = figure.add_subplot()
    axes.plot(false_positive_rate, true_positive_rate, label=f"ROC (AUC {metrics['roc_auc']:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8, label="chance")
    axes.scatter(
        [1 - metrics["specificity"]],
        [metrics["sensitivity"]],
        color="red",
        zorder=3,
        label=f"threshold {threshold:.3f}: sens {metrics['sensitivity']:.2f}, spec {metrics['specificity']:.2f}",
    )
    axes.set_xlabel("1 - specificity (false positive rate)")
    axes.set_ylabel("sensitivity (true positive rate)")
    axes.set_title(f"Melanoma vs rest: {metrics['n_images']} images, {metrics['n_melanoma']} melanoma")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


_TABLE_ROWS = (
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "PR AUC (average precision)"),
    ("threshold", "threshold (refer at or above)"),
    ("sensitivity", "sensitivity (melanoma caught)"),
    ("specificity", "specificity (benign cleared)"),
    ("balanced_accuracy", "balanced accuracy"),
    ("ppv", "PPV (referrals that are melanoma)"),
    ("npv", "NPV"),
    ("accuracy", "accuracy"),
    ("brier", "Brier score"),
    ("ece", "expected calibration error"),
    ("n_images", "images"),
    ("n_melanoma", "melanoma"),
)


def format_metrics_table(metrics: dict[str, Any]) -> str:
    """A two-column table for the terminal, with the confusion matrix underneath."""
    lines = []
    for key, title in _TABLE_ROWS:
        if key not in metrics:
            continue
        value = metrics[key]
        shown = "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))
        interval = metrics.get(f"{key}_ci")
        shown_interval = f"  (95 % CI {interval[0]:.3f}-{interval[1]:.3f})" if interval else ""
        lines.append(f"{title:<34} {shown:>8}{shown_interval}")
    if all(key in metrics for key in ("tn", "fp", "fn", "tp")):
        lines += [
            "confusion matrix           predicted benign  predicted melanoma",
            f"  actual benign            {metrics['tn']:>16}  {metrics['fp']:>18}",
            f"  actual melanoma          {metrics['fn']:>16}  {metrics['tp']:>18}",
        ]
    return "\n".join(lines)


def choose_threshold_by_source(
    y_true: Sequence[int],
    scores: Sequence[float],
    sources: Sequence[str],
    *,
    target_sensitivity: float = 0.90,
    confidence: float | None = None,
) -> tuple[float, dict[str, float]]:
    """The most conservative (lowest) of: the pooled rule (`choose_threshold` with `confidence`) and, for each
    source with a melanoma, the point-estimate threshold on that source alone.

    A pooled 90 % can hide a source at 70 % (HAM10000 dominates the pool); taking the lowest makes the target
    hold on every validation source. Returns (threshold, {"pooled" and each source: its own threshold}).
    """
    labels, probabilities = _as_arrays(y_true, scores)
    names = np.asarray(sources, dtype=object)
    if names.shape != labels.shape:
        raise ValueError(f"{labels.size} labels but {names.size} sources.")
    candidates = {
        "pooled": choose_threshold(labels, probabilities, target_sensitivity=target_sensitivity, confidence=confidence)
    }
    for source in sorted(set(names.tolist())):
        selected = names == source
        if labels[selected].any():
            candidates[source] = choose_threshold(
                labels[selected], probabilities[selected], target_sensitivity=target_sensitivity
            )
    return min(candidates.values()), candidates
