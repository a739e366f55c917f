import math

from django import template

from classifier.answers import ANSWERS, Answer, answer_for, answer_for_prediction
from classifier.risk_wording import in_100, level_meaning
from lesion_model.explain import PLAIN_WORDS

register = template.Library()


@register.simple_tag
def answer(prediction_or_verdict) -> Answer | None:
    """The one wording of an answer (classifier/answers.py): `{% answer prediction as result %}` (by its risk
    level, else its verdict), `{% answer "high" as result %}` (a level) or `{% answer "refer" as result %}`."""
    if isinstance(prediction_or_verdict, str):
        return ANSWERS.get(prediction_or_verdict) or answer_for(prediction_or_verdict)
    return answer_for_prediction(prediction_or_verdict)


@register.filter
def percent(value: float | str | None, digits: int = 1) -> str:
    """0.1234 -> "12.3%"; an empty string for a missing value (a result not computed yet)."""
    if value is None or value == "":
        return ""
    percentage = float(value) * 100
    if not math.isfinite(percentage):
        return "not available"
    smallest = 10 ** -int(digits)
    # "0.0%" would read as "impossible"; the model only ever says "very unlikely".
    if 0 < percentage < smallest:
        return f"< {smallest:.{int(digits)}f}%"
    if 100 - smallest < percentage < 100:
        return f"> {100 - smallest:.{int(digits)}f}%"
    return f"{percentage:.{int(digits)}f}%"


@register.filter(name="in_100")
def in_100_filter(value: float | None) -> str:
    """0.976 -> "about 98 in 100": the person's page gives shares as natural frequencies, never as bare %."""
    return in_100(value) or ""


@register.simple_tag(takes_context=True)
def next_steps(context, prediction) -> str:
    """The "what to do next" block for this check's risk level (classifier/risk.py picks the template)."""
    from django.template.loader import render_to_string

    from classifier.risk import next_steps_for

    steps = next_steps_for(prediction)
    if steps is None:
        return ""
    return render_to_string(steps.template, {"prediction": prediction, "steps": steps}, request=context.get("request"))


@register.filter
def risk_label(prediction) -> str:
    from classifier.risk import next_steps_for

    if getattr(prediction, "verdict", "") == "retake":  # the photo check refused it: no risk to label
        return "Retake photo"
    steps = next_steps_for(prediction)
    return steps.label if steps else ""


@register.simple_tag
def risk_meaning(prediction) -> str:
    """What the prediction's risk level meant in tests, in words ("In our tests, about 12 in 100 ...")."""
    return level_meaning(prediction.risk_level, prediction.risk_level_measurement)


@register.simple_tag
def retake_advice(prediction):
    """What was wrong with a refused photo and how to retake it (classifier/photo_advice.py)."""
    from classifier.photo_advice import retake_advice as advice_for

    return advice_for(prediction.quality_issue)


@register.simple_tag
def camera_figures(prediction):
    """The active model card's figures on camera (non-dermoscopic) photos, or None."""
    from classifier.photo_advice import camera_figures as figures_of

    model_version = prediction.model_version
    return figures_of(model_version.card) if model_version is not None else None


@register.simple_tag
def other_possibilities(prediction) -> list[str]:
    """The differential in everyday words for the person's own page: no codes, no percentages, no diagnosis.

    Melanoma is left out: the verdict above already speaks to it.
    """
    words = [PLAIN_WORDS.get(str(item.get("code")), "") for item in prediction.differential or []]
    return [
        phrase
        for phrase, item in zip(words, prediction.differential or [], strict=True)
        if phrase and item.get("code") != "mel"
    ]
