"""The words for each answer, defined once: pages, the history badge, the API's `verdict_text`, the landing
page and any e-mail read them from here, so a person never sees the same result worded two ways.

An answer is chosen by the check's risk level (low / moderate / high) when it has one, else by its stored
verdict ("refer" reads as moderate, "low_risk" as low: what a model without calibration can say). Keyed by
the stored values, not by Prediction's choices, so that models and templates can both import this module
without a cycle. Tone: calm; never "you have cancer", never "this is benign" (tests check every wording).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    level: str  # low, moderate or high: the risk level this answer stands for
    level_label: str  # "Moderate": shown as "<label> risk level"
    title: str  # the answer itself: the result page's heading, the history badge, the API's verdict_text
    explanation: str  # one or two sentences under the heading
    css: str  # the colour family of the result card and badge


HIGH = Answer(
    level="high",
    level_label="High",
    title="Have this lesion checked by a dermatologist soon",
    explanation=(
        "The model found features that can be seen in melanoma, more clearly than in most photos. It is not a "
        "diagnosis, but a dermatologist should look at this spot soon: make an appointment in the next two weeks."
    ),
    css="refer",
)
MODERATE = Answer(
    level="moderate",
    level_label="Moderate",
    title="Have this lesion checked by a dermatologist",
    explanation=(
        "The model found features that can be seen in melanoma. It is not a diagnosis: many spots with this "
        "answer turn out to be harmless, but a dermatologist should look at this one. Make an appointment."
    ),
    css="refer",
)
LOW = Answer(
    level="low",
    level_label="Low",
    title="The photo did not show the features the model looks for",
    explanation=(
        "This does not mean the spot is harmless: the model can miss melanoma. Watch it for change. If it grows, "
        "changes shape or colour, itches or bleeds, see a dermatologist even so."
    ),
    css="low",
)
ANSWERS: dict[str, Answer] = {"high": HIGH, "moderate": MODERATE, "low": LOW}
_BY_VERDICT: dict[str, Answer] = {"refer": MODERATE, "low_risk": LOW}


def answer_for(verdict: str | None, risk_level: str | None = None) -> Answer | None:
    """The answer for a stored verdict (and risk level, when the check has one); None while there is none
    (queued, running, failed) or for a verdict that is not a melanoma answer."""
    if not verdict or str(verdict) not in _BY_VERDICT:
        return None
    return ANSWERS.get(str(risk_level)) if risk_level in ANSWERS else _BY_VERDICT[str(verdict)]


def answer_for_prediction(prediction: Any) -> Answer | None:
    return answer_for(getattr(prediction, "verdict", None), getattr(prediction, "risk_level", None))


# A photo the check refused has no melanoma answer; the API still words its verdict (as Prediction.Verdict does).
RETAKE_TEXT = "Retake the photo"


def verdict_text(verdict: str | None, risk_level: str | None = None) -> str:
    if verdict == "retake":
        return RETAKE_TEXT
    answer = answer_for(verdict, risk_level)
    return answer.title if answer else ""
