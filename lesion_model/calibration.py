"""From the model's raw score to what a person is told: a calibrated probability and a risk level.

The raw score is not a probability: the head is trained with balanced class weights, which inflates it
(a validation score of 0.5 was melanoma about one time in ten). Training fits a Platt mapping on the
validation scores and stores it in the card with the prevalence it assumes (the validation melanoma rate);
the card's risk levels split the raw score at the referral threshold and at a "high" boundary, and record
what each level meant on validation. Cards without them (older models) get no probability, and a level
from the threshold alone. Only numpy: this runs in the web process and the worker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LOW, MODERATE, HIGH = "low", "moderate", "high"
LEVELS = (LOW, MODERATE, HIGH)
# Platt works on the log-odds of the score; scores are clipped away from 0 and 1 so that it stays finite.
_EPSILON = 1e-6


def logit(score: float) -> float:
    p = min(max(float(score), _EPSILON), 1.0 - _EPSILON)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class Calibration:
    """Platt scaling: probability = sigmoid(slope * logit(score) + intercept), slope > 0 (monotone)."""

    slope: float
    intercept: float
    prevalence: float  # melanoma share of the data it was fitted on: the probability means this much base rate
    fitted_on: str
    method: str = "platt"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.slope) and self.slope > 0 and math.isfinite(self.intercept)):
            raise ValueError(f"A calibration needs a finite positive slope, got {self.slope}, {self.intercept}.")

    def probability(self, score: float) -> float:
        z = self.slope * logit(score) + self.intercept
        # Stable in both tails; stays within [0, 1].
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def score_for(self, probability: float) -> float:
        """The raw score whose calibrated probability is `probability` (inverse mapping)."""
        z = (logit(probability) - self.intercept) / self.slope
        return 1.0 / (1.0 + math.exp(-z))

    def to_card(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "slope": self.slope,
            "intercept": self.intercept,
            "prevalence": self.prevalence,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_card(cls, values: Mapping[str, Any]) -> Calibration:
        if values.get("method", "platt") != "platt":
            raise ValueError(f"Unknown calibration method {values.get('method')!r}.")
        return cls(
            slope=float(values["slope"]),
            intercept=float(values["intercept"]),
            prevalence=float(values["prevalence"]),
            fitted_on=str(values.get("fitted_on", "")),
        )


@dataclass(frozen=True)
class LevelMeasurement:
    """What a level meant on the data it was measured on."""

    images: int
    melanoma: int
    melanoma_share: float | None  # of the lesions in this level, the share that were melanoma
    share_of_melanomas: float | None  # of all melanomas, the share that fell in this level

    def to_card(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "melanoma": self.melanoma,
            "melanoma_share": self.melanoma_share,
            "share_of_melanomas": self.share_of_melanomas,
        }

    @classmethod
    def from_card(cls, values: Mapping[str, Any]) -> LevelMeasurement:
        return cls(
            images=int(values["images"]),
            melanoma=int(values["melanoma"]),
            melanoma_share=values.get("melanoma_share"),
            share_of_melanomas=values.get("share_of_melanomas"),
        )


@dataclass(frozen=True)
class RiskLevels:
    """low: score < moderate_from (the referral threshold); high: score >= high_from; moderate between."""

    moderate_from: float
    high_from: float
    rule: str
    measured_on: str
    measured: dict[str, LevelMeasurement]

    def __post_init__(self) -> None:
        if not self.moderate_from <= self.high_from:
            raise ValueError(f"The high boundary {self.high_from} lies below the threshold {self.moderate_from}.")

    def level(self, score: float) -> str:
        if score >= self.high_from:
            return HIGH
        return MODERATE if score >= self.moderate_from else LOW

    def to_card(self) -> dict[str, Any]:
        return {
            "boundaries": {"moderate_from": self.moderate_from, "high_from": self.high_from},
            "rule": self.rule,
            "measured_on": self.measured_on,
            "levels": {name: measurement.to_card() for name, measurement in self.measured.items()},
        }

    @classmethod
    def from_card(cls, values: Mapping[str, Any]) -> RiskLevels:
        return cls(
            moderate_from=float(values["boundaries"]["moderate_from"]),
            high_from=float(values["boundaries"]["high_from"]),
            rule=str(values.get("rule", "")),
            measured_on=str(values.get("measured_on", "")),
            measured={name: LevelMeasurement.from_card(item) for name, item in values.get("levels", {}).items()},
        )


@dataclass(frozen=True)
class Interpretation:
    """A scored image as a person is told: score (raw), calibrated probability (None without calibration)."""

    score: float
    melanoma_probability: float | None
    risk_level: str


def calibration_from_card(card: Mapping[str, Any]) -> Calibration | None:
    values = card.get("calibration")
    return Calibration.from_card(values) if isinstance(values, Mapping) else None


def risk_levels_from_card(card: Mapping[str, Any]) -> RiskLevels | None:
    values = card.get("risk_levels")
    return RiskLevels.from_card(values) if isinstance(values, Mapping) else None


def interpret(
    score: float, *, threshold: float, calibration: Calibration | None, levels: RiskLevels | None
) -> Interpretation:
    """The one rule for every reader. Without the card's levels (an older model) the level comes from the
    threshold alone: below it low, at or above it moderate - nothing was measured that could say "high"."""
    probability = calibration.probability(score) if calibration is not None else None
    level = levels.level(score) if levels is not None else (MODERATE if score >= threshold else LOW)
    return Interpretation(score=float(score), melanoma_probability=probability, risk_level=level)
