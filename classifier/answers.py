"""The words for each answer, defined once: pages, the history badge, the API's `verdict_text`, the landing
page and any e-mail read them from here, so a person never sees the same result worded two ways.

Keyed by the stored verdict value ("refer", "low_risk"), not by Prediction.Verdict, so that models and
templates can both import this module without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    title: str  # the answer itself: the result page's heading, the history badge, the API's verdict_text
    explanation: str  # one or two sentences under the heading
    css: str  # the colour family of the result card and badge


REFER = Answer(
    title="Have this lesion checked by a dermatologist",
    explanation=(
        "The model found features that can be seen in melanoma. It is not a diagnosis: many spots with this "
        "answer turn out to be harmless, but a dermatologist should look at this one. Make an appointment soon."
    ),
    css="refer",
)
LOW_RISK = Answer(
    title="Low risk: keep an eye on it and re-check if it changes",
    explanation="If it grows, changes shape or colour, itches or bleeds, see a dermatologist even so.",
    css="low",
)
ANSWERS: dict[str, Answer] = {"refer": REFER, "low_risk": LOW_RISK}


def answer_for(verdict: str | None) -> Answer | None:
    """The answer for a stored verdict; None while there is none (queued, running, failed)."""
    return ANSWERS.get(str(verdict)) if verdict else None


def verdict_text(verdict: str | None) -> str:
    answer = answer_for(verdict)
    return answer.title if answer else ""
