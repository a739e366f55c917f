import math

from django import template

from classifier.risk_wording import level_meaning

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
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


@register.simple_tag
def risk_meaning(prediction) -> str:
    """What the prediction's risk level meant in tests, in words ("In our tests, about 12 in 100 ...")."""
    return level_meaning(prediction.risk_level, prediction.risk_level_measurement)
