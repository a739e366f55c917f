"""Risk levels as the pages, the change flag and the reports read them.

Today a finished check has a two-way verdict (`refer` / `low_risk`); a later model may store a graded risk level
(`low` / `moderate` / `high`) instead. Everything that reads "how worrying is this check" goes through here, so
adding a level means adding a row to these tables (and, if its advice differs, a template under
templates/classifier/next_steps/), nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NextSteps:
    template: str  # under templates/, rendered with {"prediction", "steps"}
    see_within: str  # how soon to be seen, in words; "" for low
    label: str  # the short badge text


_SEE_SOMEONE = "classifier/next_steps/see_someone.html"
_LOW = "classifier/next_steps/low.html"

# Keyed by the risk level (or, for a check from before risk levels, its verdict). The short label names the
# level the way the result page does ("<Level> risk level", classifier/answers.py).
NEXT_STEPS: dict[str, NextSteps] = {
    "refer": NextSteps(_SEE_SOMEONE, "the next few weeks", "Moderate risk level"),
    "high": NextSteps(_SEE_SOMEONE, "the next two weeks", "High risk level"),
    "moderate": NextSteps(_SEE_SOMEONE, "the next few weeks", "Moderate risk level"),
    "low_risk": NextSteps(_LOW, "", "Low risk level"),
    "low": NextSteps(_LOW, "", "Low risk level"),
}

# Higher is more worrying; the spot page flags a check whose rank is above the one before it.
RISK_RANK: dict[str, int] = {"low_risk": 0, "low": 0, "moderate": 1, "refer": 2, "high": 2}


def risk_key(prediction) -> str:
    """The graded risk level when the model stores one, else the verdict; "" for an unfinished check."""
    return getattr(prediction, "risk_level", "") or prediction.verdict or ""


def risk_rank(prediction) -> int | None:
    return RISK_RANK.get(risk_key(prediction))


def next_steps_for(prediction) -> NextSteps | None:
    return NEXT_STEPS.get(risk_key(prediction))
