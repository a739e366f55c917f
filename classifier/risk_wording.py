"""The risk level and what it meant when the model was tested, in words a person can act on.

No bare percentage: "about 12 in 100" is understood more reliably than "12 %" (natural frequencies), and the
figures are measurements on test images, not a personal risk. The low level never calls a lesion benign:
the model only failed to find the features it looks for in this photo.
"""

from __future__ import annotations

from typing import Any

TITLES = {
    "low": "Low: the photo did not show the features the model looks for",
    "moderate": "Moderate: have this lesion checked by a dermatologist",
    "high": "High: have this lesion checked by a dermatologist soon",
}


def in_100(share: float | None) -> str | None:
    """0.123 -> "about 12 in 100"; tiny shares are not rounded to zero."""
    if share is None:
        return None
    count = round(100 * float(share))
    if count == 0:
        return "fewer than 1 in 100" if share > 0 else "none of 100"
    if count >= 100 and share < 1:
        return "more than 99 in 100"
    return f"about {count} in 100"


def level_meaning(level: str | None, measured: dict[str, Any] | None) -> str:
    """One or two sentences: the melanoma share in this level and, for low, how many melanomas landed there."""
    if not level:
        return ""
    if not measured or measured.get("melanoma_share") is None:
        return "This model version has no measurement of what this level meant in tests."
    share = in_100(measured.get("melanoma_share"))
    text = f"In our tests, {share} lesions with this result were melanoma."
    missed = in_100(measured.get("share_of_melanomas"))
    if level == "low" and missed is not None:
        text += f" {missed[0].upper()}{missed[1:]} melanomas also got this result, so watch the spot for change."
    return text
