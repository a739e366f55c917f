"""Fitting what lesion_model.calibration applies: the Platt mapping, the risk levels, the reliability diagram.

Everything is fitted on the validation scores (never a test set). Platt rather than isotonic: two numbers,
monotone by construction and smooth; isotonic regression on ~140 validation melanomas makes a staircase whose
steps are noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lesion_model.calibration import HIGH, LEVELS, Calibration, LevelMeasurement, RiskLevels, logit
from training.metrics import _as_arrays

# "high" starts where the calibrated probability reaches this: about 3 in 10 such lesions are melanoma at the
# validation prevalence (~10 %), three times the base rate - clearly elevated, while the band between the
# referral threshold and it ("moderate") holds the many referrals that are mostly benign.
HIGH_PROBABILITY = 0.30


def fit_platt(y_true: Sequence[int], scores: Sequence[float], *, fitted_on: str) -> Calibration:
    """Platt scaling on the logit of the raw score; raises ValueError if it would not be increasing."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    labels, probabilities = _as_arrays(y_true, scores)
    if not 0 < labels.sum() < labels.size:
        raise ValueError("Calibration needs melanoma and non-melanoma validation images.")
    x = np.array([logit(score) for score in probabilities]).reshape(-1, 1)
    model = LogisticRegression(C=1e6, max_iter=1000).fit(x, labels)  # effectively unregularised
    slope, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
    if slope <= 0:
        raise ValueError("The validation scores do not rise with melanoma; the model cannot be calibrated.")
    return Calibration(slope=slope, intercept=intercept, prevalence=float(labels.mean()), fitted_on=fitted_on)


def measure_levels(
    y_true: Sequence[int], scores: Sequence[float], *, moderate_from: float, high_from: float
) -> dict[str, LevelMeasurement]:
    labels, probabilities = _as_arrays(y_true, scores)
    levels = RiskLevels(moderate_from=moderate_from, high_from=high_from, rule="", measured_on="", measured={})
    assigned = np.array([levels.level(score) for score in probabilities])
    total_melanoma = int(labels.sum())
    measured = {}
    for name in LEVELS:
        in_level = assigned == name
        images, melanoma = int(in_level.sum()), int(labels[in_level].sum())
        measured[name] = LevelMeasurement(
            images=images,
            melanoma=melanoma,
            melanoma_share=melanoma / images if images else None,
            share_of_melanomas=melanoma / total_melanoma if total_melanoma else None,
        )
    return measured


def choose_risk_levels(
    y_true: Sequence[int],
    scores: Sequence[float],
    *,
    threshold: float,
    calibration: Calibration,
    measured_on: str,
    high_probability: float = HIGH_PROBABILITY,
) -> RiskLevels:
    """low below the referral threshold; high from the score whose calibrated probability is high_probability
    (never below the threshold); moderate between. Measured on the same validation scores."""
    high_from = max(threshold, calibration.score_for(high_probability))
    return RiskLevels(
        moderate_from=threshold,
        high_from=high_from,
        rule=(
            "low: raw score below the referral threshold (the verdict 'low_risk'); moderate: at or above it; "
            f"{HIGH}: raw score at or above the one whose calibrated probability is {high_probability:.2f} "
            f"(about {round(100 * high_probability)} in 100 melanoma at the calibration prevalence "
            f"{calibration.prevalence:.3f}; never below the threshold)"
        ),
        measured_on=measured_on,
        measured=measure_levels(y_true, scores, moderate_from=threshold, high_from=high_from),
    )


def save_reliability_diagram(
    y_true: Sequence[int], scores: Sequence[float], calibration: Calibration, path: Path, *, bins: int = 10
) -> Path:
    """Observed melanoma rate against predicted probability, raw score and calibrated, in equal-count bins."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    labels, raw = _as_arrays(y_true, scores)
    calibrated = np.array([calibration.probability(score) for score in raw])
    figure = Figure(figsize=(5, 5), dpi=100)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8, label="perfect calibration")
    for values, name, marker in ((raw, "raw score", "o"), (calibrated, "calibrated probability", "s")):
        order = np.argsort(values)
        chunks = [chunk for chunk in np.array_split(order, bins) if chunk.size]
        predicted = [float(values[chunk].mean()) for chunk in chunks]
        observed = [float(labels[chunk].mean()) for chunk in chunks]
        axes.plot(predicted, observed, marker=marker, label=name)
    axes.set_xlabel("predicted melanoma probability (bin mean)")
    axes.set_ylabel("observed melanoma share")
    axes.set_title(f"Reliability on validation: {labels.size} images, {int(labels.sum())} melanoma", fontsize=10)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
