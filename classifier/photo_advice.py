"""What the result page tells a person whose photo the check refused: what was wrong, and how to retake it.

Keyed by Prediction.QualityIssue (lesion_model/quality.py decides which); templates/classifier/_retake.html shows it.
Also the note on camera photos (templates/classifier/_camera_note.html), with the model card's figures when it has them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetakeAdvice:
    title: str  # what was wrong, in words
    explanation: str
    tips: tuple[str, ...]  # how to take a better photo


_GENERAL_TIPS = (
    "Hold the phone 10-15 cm from the skin, straight above the spot, with the spot in the middle.",
    "Use daylight or a bright room; no flash, and keep the phone's shadow off the spot.",
    "Tap the spot on the screen to focus, then hold still.",
)

ADVICE: dict[str, RetakeAdvice] = {
    "not_a_lesion": RetakeAdvice(
        "This does not look like a photo of a skin spot",
        "We could not find skin with a mole or spot on it in this picture, so the model was not asked about it.",
        (
            "Photograph one spot on your skin, close up, so that the spot and some skin around it fill the picture.",
            *_GENERAL_TIPS[1:],
        ),
    ),
    "blurry": RetakeAdvice(
        "The photo is blurry",
        "The spot's edges and pattern are not sharp enough to judge.",
        (
            "Tap the spot on the screen to focus and wait for the camera to sharpen before you take it.",
            "Hold the phone steady with both hands, or rest your elbows; take two or three and keep the sharpest.",
            "Do not come closer than your camera can focus (usually about 10 cm).",
        ),
    ),
    "too_dark": RetakeAdvice(
        "The photo is too dark",
        "There is not enough light to see the spot's colours.",
        ("Move to daylight or a bright room.", "Keep your phone's shadow off the spot; do not use the flash."),
    ),
    "too_bright": RetakeAdvice(
        "The photo is too bright",
        "Much of the picture is washed out to white, so the spot's colours are lost.",
        ("Avoid direct sunlight and the flash.", "Try indirect daylight, e.g. near a window but not in the sun."),
    ),
    "glare": RetakeAdvice(
        "There is a bright reflection on the spot",
        "A white glare (flash, lamp or shiny skin) hides part of the spot.",
        (
            "Turn the flash off and tilt the phone slightly so that the light does not reflect into the camera.",
            "Dry the skin if it is wet or oily.",
        ),
    ),
    "too_small": RetakeAdvice(
        "The spot is too small in the picture",
        "The spot takes up too little of the photo for the model to see its details.",
        (
            "Come closer (about 10 cm) or zoom in 2x, so that the spot fills much of the picture.",
            "Keep some normal skin around the spot.",
        ),
    ),
    "too_close": RetakeAdvice(
        "The photo is too close",
        "The spot fills the whole picture: the model needs to see its edges and some skin around it.",
        ("Move the phone a little further away, so that there is normal skin on every side of the spot.",),
    ),
    "unfamiliar": RetakeAdvice(
        "This photo is unlike the ones the model learnt from",
        "The model would be guessing, so it gives no answer.",
        ("Photograph the spot close up, in focus and in good light, with only skin around it.", *_GENERAL_TIPS[1:]),
    ),
}

_FALLBACK = RetakeAdvice(
    "We could not use this photo",
    "The photo check could not judge this picture, so the model was not asked about it.",
    _GENERAL_TIPS,
)


def retake_advice(quality_issue: str) -> RetakeAdvice:
    return ADVICE.get(quality_issue, _FALLBACK)


# --- camera photos ------------------------------------------------------------------------------------------

# Where the model card keeps the measured figures for camera (non-dermoscopic) photos, when it has them
# (evaluate_model --split val --simulate camera --record-camera):
#   "camera_photos": {"roc_auc": 0.86, "dermoscopic_roc_auc": 0.89,        # any of these keys, all optional
#                     "sensitivity": 0.98, "dermoscopic_sensitivity": 0.98,
#                     "specificity": 0.30, "dermoscopic_specificity": 0.55, "data": "how it was measured"}
CAMERA_CARD_KEY = "camera_photos"


@dataclass(frozen=True)
class CameraFigures:
    """The card's camera-photo figures, as fractions; None where the card does not give one."""

    sensitivity: float | None
    dermoscopic_sensitivity: float | None
    roc_auc: float | None
    dermoscopic_roc_auc: float | None
    data: str
    specificity: float | None = None
    dermoscopic_specificity: float | None = None

    @property
    def has_sensitivity(self) -> bool:
        return self.sensitivity is not None and self.dermoscopic_sensitivity is not None

    @property
    def has_specificity(self) -> bool:
        return self.specificity is not None and self.dermoscopic_specificity is not None

    @property
    def has_auc(self) -> bool:
        return self.roc_auc is not None and self.dermoscopic_roc_auc is not None


def _fraction(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if 0.0 <= number <= 1.0 else None


def camera_figures(card: object) -> CameraFigures | None:
    """The camera-photo figures of a model card, or None when it has none (the page then says it in words)."""
    section = card.get(CAMERA_CARD_KEY) if isinstance(card, dict) else None
    if not isinstance(section, dict):
        return None
    figures = CameraFigures(
        sensitivity=_fraction(section.get("sensitivity")),
        dermoscopic_sensitivity=_fraction(section.get("dermoscopic_sensitivity")),
        roc_auc=_fraction(section.get("roc_auc")),
        dermoscopic_roc_auc=_fraction(section.get("dermoscopic_roc_auc")),
        data=str(section.get("data", "")),
        specificity=_fraction(section.get("specificity")),
        dermoscopic_specificity=_fraction(section.get("dermoscopic_specificity")),
    )
    return figures if figures.has_sensitivity or figures.has_auc else None
