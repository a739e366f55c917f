"""The photo check that runs before the verdict: is this a sharp, well-exposed photo of skin with a lesion?

A model asked about any picture answers: a solid-colour square or a portrait would get "low risk". This module
measures a few things a person retaking the photo can fix (sharpness, exposure, glare, how much of the frame the
lesion fills) and whether the frame shows skin with a lesion at all, and names the first problem it finds.

NumPy and Pillow only (it runs in the worker), about 2-4 ms at the 224 px working size. The checks are a pipeline
of small functions over one `PhotoMeasures`, each returning an issue or None, so a later check (e.g. one that
reads the backbone's features: `unfamiliar`) is one more function. The thresholds were set on a development part
of the shared images and measured on held-out ones: `python -m bench.photo_check` (README, "Photo check").
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageFilter, ImageStat

# The model's own input size: what matters is whether the lesion is visible at the size the model sees it.
WORKING_SIZE = 224


class QualityIssue(enum.StrEnum):
    """Why a photo gets no verdict. The values are stored (classifier.models.Prediction.QualityIssue mirrors them)."""

    NOT_A_LESION = "not_a_lesion"
    BLURRY = "blurry"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    GLARE = "glare"
    TOO_SMALL = "too_small"
    TOO_CLOSE = "too_close"
    UNFAMILIAR = "unfamiliar"


@dataclass(frozen=True)
class Thresholds:
    """Where each check draws its line. Set on the development images of bench/photo_check.py, beyond the extremes
    of the development lesion photos by a margin (README, "Photo check", has the figures on held-out ones)."""

    # The long side over the short side: a strip or a banner is not a photo of a lesion.
    max_aspect_ratio: float = 4.0
    # Luminance standard deviation below which the frame is one flat colour.
    min_contrast: float = 4.0
    # 95th luminance percentile: the brightest part of a usable photo (skin) is well above this (lesions >= 121).
    too_dark_p95: float = 75.0
    # Share of the frame clipped to white: a washed-out photo (lesion photos <= 0.24, x3 overexposed >= 0.39).
    too_bright_clipped: float = 0.30
    # Share of the lesion hidden by clipped white: a reflection (flash, wet skin).
    glare_lesion_clipped: float = 0.20
    # Fine over coarse detail (`_sharpness`): lesions >= 0.08, camera-like (defocus 1.2 px) >= 0.046, sigma 4 <= 0.03.
    min_sharpness: float = 0.04
    # Not a photo of skin: greyscale, vivid, blue or green, too little of the frame skin-coloured, or busy.
    min_colourfulness: float = 3.0
    # Skin and lesions are never vivid. Was 0.60 until green ground (landscapes, saturation 0.62) had a check of
    # its own (`min_skin_redness`); at 0.65 development lesions refused fell from 2.0 % to 1.0 % with no
    # development non-lesion let through.
    max_skin_saturation: float = 0.65
    min_skin_warmth: float = -40.0
    # Skin and lesions are redder than green (development lesions >= -4; green ground, grass, leaves <= -41).
    min_skin_redness: float = -20.0
    min_skin_share: float = 0.35
    max_background_edges: float = 0.45
    # No lesion: the darker class hardly darker than the skin around it (luminance levels).
    min_lesion_contrast: float = 9.0
    # A faint darker region (lesion contrast below this) must also differ from the skin in colour: pigment shifts
    # chromaticity, shading and skin texture only brightness. Development lesions: chroma >= 0.0053 (>= 0.012 for
    # the faint ones); generated bare skin <= 0.0013 at contrast <= 11.6; camera-like close-ups whose Otsu split
    # follows the light fall-off (chroma down to 0.0003) all have contrast >= 20.
    faint_lesion_contrast: float = 16.0
    min_faint_lesion_chroma: float = 0.003
    # The lesion's share of the frame.
    min_lesion_share: float = 0.004
    # Share of the frame's outer band covered by the lesion: no skin visible around it.
    too_close_border: float = 0.95


@dataclass(frozen=True)
class PhotoMeasures:
    """What the checks read; every figure is computed on the decoded RGB photo squashed to WORKING_SIZE."""

    aspect_ratio: float
    contrast: float  # luminance standard deviation, 0-255
    luminance_p95: float
    clipped_share: float  # every channel >= 250, share of the frame
    sharpness: float
    colourfulness: float  # median chroma (0 for a greyscale picture), 0-255
    skin_share: float  # share of the frame whose colour is near the photo's own skin colour (`_skin_domain`)
    skin_saturation: float  # median saturation of those pixels, 0-1 (skin and lesions are never vivid)
    skin_warmth: float  # median (red - blue) of those pixels, -255..255 (casts allowed; blue or green is not skin)
    skin_redness: float  # median (red - green) of those pixels, -255..255 (green is not skin)
    background_edges: float  # share of the skin around the lesion crossed by strong edges (fur, gravel, text)
    separation: float  # Otsu's between-class variance over total variance on the lesion channel, 0-1
    lesion_contrast: float  # mean luminance of the skin around the lesion minus the lesion's, 0-255
    lesion_chroma: float  # chromaticity difference, lesion against the skin around it (|dr| + |db|, 0-2)
    lesion_share: float  # the darker class's share of the frame
    lesion_border_share: float  # share of the frame's outer band that is lesion
    lesion_clipped_share: float  # share of the lesion's area hidden by clipped white (`_hidden_share`)
    # Room for checks that need more than pixels (e.g. a feature distance for `unfamiliar`).
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PhotoCheck:
    """The check's answer: the first issue found (None: the photo may be scored) and what it measured."""

    issue: QualityIssue | None
    measures: PhotoMeasures

    @property
    def passed(self) -> bool:
        return self.issue is None


Check = Callable[[PhotoMeasures, Thresholds], QualityIssue | None]


# --- measuring ----------------------------------------------------------------------------------------------


def _working_image(image: Image.Image) -> Image.Image:
    """RGB at WORKING_SIZE x WORKING_SIZE, squashed like the model's input."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (WORKING_SIZE, WORKING_SIZE):
        image = image.resize((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


def _mean_difference(grey: Image.Image, blurred: Image.Image) -> float:
    return float(ImageStat.Stat(ImageChops.difference(grey, blurred)).mean[0])


def _sharpness(grey: Image.Image) -> float:
    """Fine detail (what a 3x3 mean removes) over coarse detail (what an 8 px Gaussian blur removes).

    A ratio of two detail energies of the same photo, so it does not depend on its contrast or brightness: a
    defocused photo keeps its coarse structure but loses the fine one. Measured on real lesions at 224 px: as they
    are >= 0.19, blurred with sigma 1 px >= 0.09, sigma 4 px <= 0.03 (bench/photo_check.py).
    """
    fine = _mean_difference(grey, grey.filter(ImageFilter.BoxBlur(1)))
    coarse = _mean_difference(grey, grey.filter(ImageFilter.GaussianBlur(8)))
    return fine / coarse if coarse > 0.05 else 0.0


def _percentile(histogram: list[int], share: float) -> float:
    cumulative = np.cumsum(histogram)
    return float(np.searchsorted(cumulative, share * cumulative[-1]))


def _chromaticity(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Red's and blue's share of each pixel's brightness: colour without intensity (shading leaves it alone)."""
    total = red + green + blue + np.float32(1e-3)
    return red / total, blue / total


def _skin_domain(r: np.ndarray, b: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Pixels whose chromaticity is near the photo's own median: skin and lesion under whatever colour cast the
    camera gave them, without stickers, rulers' colour marks, sky or clothes. Lesions differ from skin by a few
    hundredths of chromaticity; a blue sticker by a few tenths."""
    if not usable.any():
        return usable
    median_r, median_b = float(np.median(r[usable])), float(np.median(b[usable]))
    return usable & (np.abs(r - median_r) + np.abs(b - median_b) < 0.12)


def _otsu(values: np.ndarray) -> tuple[float, float]:
    """Otsu's threshold on 0-255 values and its between-class share of the total variance (0-1)."""
    counts = np.bincount(np.clip(values, 0, 255).astype(np.int64), minlength=256).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0, 0.0
    levels = np.arange(256, dtype=np.float64)
    weight_low = np.cumsum(counts)
    sum_low = np.cumsum(counts * levels)
    mean_all = sum_low[-1] / total
    variance_all = (counts * (levels - mean_all) ** 2).sum() / total
    weight_high = total - weight_low
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean_all * weight_low - sum_low) ** 2 / (weight_low * weight_high)
    between = np.nan_to_num(between, nan=0.0, posinf=0.0)
    best = int(np.argmax(between))
    separation = float(between[best] / variance_all) if variance_all > 0 else 0.0
    return float(best), separation


def _border_band(size: int, width: int) -> np.ndarray:
    band = np.zeros((size, size), dtype=bool)
    band[:width, :] = band[-width:, :] = True
    band[:, :width] = band[:, -width:] = True
    return band


# A reflection's halo: near a clipped pixel (within HALO_RADIUS at the half working size) and this many luminance
# levels above the frame's 90th percentile. Set on the development part: simulated flash close-ups refused as
# `too_close` 13 % -> 0 %; development lesions and non-lesions unchanged for margins 20, 30 and 40.
HALO_MARGIN = 30.0
HALO_RADIUS = 12
# Colour and shape are read at half size: a quarter of the work, and the lesion is no less visible.
_SEGMENT_SIZE = WORKING_SIZE // 2
_BAND = _border_band(_SEGMENT_SIZE, _SEGMENT_SIZE // 14)
# Outside the inscribed circle: where a dermatoscope's round field leaves the frame dark.
_GRID = (np.mgrid[0:_SEGMENT_SIZE, 0:_SEGMENT_SIZE] + 0.5) / _SEGMENT_SIZE - 0.5
_CORNERS = np.hypot(_GRID[0], _GRID[1]) > 0.5


def measure(image: Image.Image) -> PhotoMeasures:
    """Everything the checks read, from one decoded photo (any size; RGB or convertible)."""
    width, height = image.size
    aspect_ratio = max(width, height) / max(1, min(width, height))
    working = _working_image(image)
    grey = working.convert("L")
    histogram = grey.histogram()

    small = working.reduce(2)
    red, green, blue = (np.asarray(band, dtype=np.float32) for band in small.split())
    brightest, darkest = np.maximum(np.maximum(red, green), blue), np.minimum(np.minimum(red, green), blue)
    clipped = darkest >= 250
    luminance = np.float32(0.299) * red + np.float32(0.587) * green + np.float32(0.114) * blue
    # A dermatoscope's round field leaves dark corners, and glare is white: neither is skin nor lesion.
    usable = (luminance > 20) & ~clipped
    if usable.any():
        usable &= ~(_CORNERS & (luminance < 0.6 * float(np.median(luminance[usable]))))
    if usable.any() and clipped.any():
        usable &= ~_halo(clipped, luminance, usable)
    r, b = _chromaticity(red, green, blue)
    skin = _skin_domain(r, b, usable)
    skin_count = int(skin.sum())

    # Lesions are darker and browner than skin: low green+blue separates them from skin of any tone.
    lesion_channel = np.float32(0.5) * (green + blue)
    threshold, separation = _otsu(lesion_channel[skin]) if skin_count else (0.0, 0.0)
    lesion = skin & (lesion_channel <= threshold)
    lesion_count = int(lesion.sum())
    around = skin & ~lesion
    saturation = (brightest - darkest) / np.maximum(brightest, 1.0)
    return PhotoMeasures(
        aspect_ratio=float(aspect_ratio),
        contrast=float(ImageStat.Stat(grey).stddev[0]),
        luminance_p95=_percentile(histogram, 0.95),
        clipped_share=float(clipped.mean()),
        sharpness=_sharpness(grey),
        colourfulness=float(np.median((brightest - darkest)[usable])) if usable.any() else 0.0,
        skin_share=float(skin_count / skin.size),
        skin_saturation=float(np.median(saturation[skin])) if skin_count else 0.0,
        skin_warmth=float(np.median((red - blue)[skin])) if skin_count else 0.0,
        skin_redness=float(np.median((red - green)[skin])) if skin_count else 0.0,
        background_edges=_edge_share(luminance, around, lesion),
        separation=separation,
        lesion_contrast=_class_difference(luminance, around, lesion),
        lesion_chroma=_class_difference(r, around, lesion, absolute=True)
        + _class_difference(b, around, lesion, absolute=True),
        lesion_share=float(lesion_count / lesion.size),
        lesion_border_share=float(lesion[_BAND].mean()),
        lesion_clipped_share=_hidden_share(clipped, lesion, lesion_count),
    )


def _halo(clipped: np.ndarray, luminance: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """The bright fringe around clipped reflections: neither skin nor lesion. Left in, Otsu splits the fringe from
    everything else and the "lesion" fills the frame (a flash photo becomes `too_close`). Only near clipped pixels:
    a lesion that fills most of the frame leaves brighter skin in the corners, which is skin."""
    near = Image.fromarray(clipped.astype(np.uint8) * 255, mode="L").filter(ImageFilter.BoxBlur(HALO_RADIUS))
    brighter = luminance > float(np.percentile(luminance[usable], 90)) + HALO_MARGIN
    return (np.asarray(near) > 0) & brighter


def _class_difference(values: np.ndarray, around: np.ndarray, lesion: np.ndarray, *, absolute: bool = False) -> float:
    """The skin around the lesion's mean minus the lesion's (0 when either class is empty)."""
    if not around.any() or not lesion.any():
        return 0.0
    difference = float(values[around].mean() - values[lesion].mean())
    return abs(difference) if absolute else difference


def _edge_share(luminance: np.ndarray, around: np.ndarray, lesion: np.ndarray) -> float:
    """Share of the skin around the lesion with a step of at least half the lesion's contrast to its neighbour.

    Skin around a mole is smooth next to the mole's own edge; fur, gravel, text and clutter are not."""
    if not around.any() or not lesion.any():
        return 1.0
    contrast = max(8.0, _class_difference(luminance, around, lesion))
    step = np.zeros_like(luminance)
    step[:, 1:] = np.abs(np.diff(luminance, axis=1))
    step[1:, :] += np.abs(np.diff(luminance, axis=0))
    return float(((step > 0.5 * contrast) & around).sum() / around.sum())


def _hidden_share(clipped: np.ndarray, lesion: np.ndarray, lesion_count: int) -> float:
    """The share of the lesion's area that is clipped white: a reflection on a mole is white, so the darker class
    never holds it; it leaves a hole. Clipped pixels within about the lesion's radius of it count as hidden."""
    if lesion_count == 0:
        return 0.0
    radius = max(2, int(0.7 * np.sqrt(lesion_count / np.pi)))
    spread = Image.fromarray(lesion.astype(np.uint8) * 255, mode="L").filter(ImageFilter.BoxBlur(radius))
    hidden = int((clipped & (np.asarray(spread) > 0)).sum())
    return hidden / (lesion_count + hidden)


# --- checking -----------------------------------------------------------------------------------------------


def check_shape(measures: PhotoMeasures, thresholds: Thresholds) -> QualityIssue | None:
    # Flat: one colour all over. A small lesion on plain skin is flat too, but for the lesion.
    flat = measures.contrast < thresholds.min_contrast and measures.lesion_contrast < thresholds.min_lesion_contrast
    if measures.aspect_ratio > thresholds.max_aspect_ratio or flat:
        return QualityIssue.NOT_A_LESION
    return None


def check_dark(measures: PhotoMeasures, thresholds: Thresholds) -> QualityIssue | None:
    return QualityIssue.TOO_DARK if measures.luminance_p95 < thresholds.too_dark_p95 else None


def check_bright(measures: PhotoMeasures, thresholds: Thresholds) -> QualityIssue | None:
    return QualityIssue.TOO_BRIGHT if measures.clipped_share > thresholds.too_bright_clipped else None


def check_glare(measures: PhotoMeasures, thresholds: Thresholds) -> QualityIssue | None:
    return QualityIssue.GLARE if measures.lesion_clipped_share > thresholds.glare_lesion_clipped else None


def check_sharpness(measures: PhotoMeasures, thresholds: Thresholds) -> QualityIssue | None:
    return QualityIssue.BLURRY if measures.sharpness < thresholds.min_sharpness else None


def check_skin(measures: PhotoMeasures, thresholds: Thresholds) -> QualityIssue | None:
    not_skin = (
        measures.colourfulness < thresholds.min_colourfulness
        or measures.skin_saturation > thresholds.max_skin_saturation
        or measures.skin_warmth < thresholds.min_skin_warmth
        or measures.skin_redness < thresholds.min_skin_redness
        or measures.skin_share < thresholds.min_skin_share
        or measures.background_edges > thresholds.max_background_edges
    )
    return QualityIssue.NOT_A_LESION if not_skin else None


def check_lesion(measures: PhotoMeasures, thresholds: Thresholds) -> QualityIssue | None:
    faint = measures.lesion_contrast < thresholds.faint_lesion_contrast
    # Faint and the skin's own colour: a shadow or skin texture, not pigment.
    shading = faint and measures.lesion_chroma < thresholds.min_faint_lesion_chroma
    if measures.lesion_contrast < thresholds.min_lesion_contrast or shading:
        return QualityIssue.NOT_A_LESION
    return None


def check_size(measures: PhotoMeasures, thresholds: Thresholds) -> QualityIssue | None:
    if measures.lesion_share < thresholds.min_lesion_share:
        return QualityIssue.TOO_SMALL
    if measures.lesion_border_share > thresholds.too_close_border:
        return QualityIssue.TOO_CLOSE
    return None


# Order matters: a photo too dark to see is "too dark", not "flat" or "not a lesion"; exposure before sharpness
# (a black frame has no detail either), and whether there is a lesion before how big it is.
PIXEL_CHECKS: tuple[Check, ...] = (
    check_dark,
    check_bright,
    check_shape,
    check_sharpness,
    check_skin,
    check_lesion,
    check_glare,
    check_size,
)


def run_checks(
    measures: PhotoMeasures, *, thresholds: Thresholds | None = None, checks: Sequence[Check] = PIXEL_CHECKS
) -> QualityIssue | None:
    """The first issue the checks find, in order; None when the photo may be scored."""
    limits = thresholds or Thresholds()
    for check in checks:
        issue = check(measures, limits)
        if issue is not None:
            return issue
    return None


def check_photo(
    image: Image.Image, *, thresholds: Thresholds | None = None, checks: Sequence[Check] = PIXEL_CHECKS
) -> PhotoCheck:
    """Measure a decoded photo and run the checks on it."""
    measures = measure(image)
    return PhotoCheck(issue=run_checks(measures, thresholds=thresholds, checks=checks), measures=measures)


def with_extra(measures: PhotoMeasures, **extra: float) -> PhotoMeasures:
    """The same measures with more figures for later checks (a feature distance computed by the scorer)."""
    return replace(measures, extra={**measures.extra, **extra})
