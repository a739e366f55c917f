"""What the model's extra outputs mean: the heatmap, the differential and the distance to the training data.

The shipped graph (training.recipes.logistic) has, besides the melanoma probabilities, named outputs:

- `heatmap` (G x G): the melanoma logit's share per position. The head is linear on average-pooled feature
  maps, so the logit of melanoma against the rest is exactly the mean over positions of sum_k w_k A_k(x, y)
  (each layer's map brought to the common grid by nearest upsampling, which keeps its mean; a layer pooled over
  its centre only counts there, scaled by the grid's area over the centre's), plus the max-pooled features'
  part and the bias, which have no spread over the image and are left out.
- `differential` (7): calibrated probabilities of the seven HAM10000 diagnoses (a second head).
- `familiarity` (k): the pooled features whitened on the training images' first k principal components;
  its length is their Mahalanobis distance, compared with the card's threshold for `unfamiliar`.

NumPy and Pillow only: the worker imports no TensorFlow.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

# Code -> label, in the order of the differential head's outputs.
DIAGNOSES: dict[str, str] = {
    "nv": "Melanocytic nevus",
    "mel": "Melanoma",
    "bkl": "Benign keratosis",
    "bcc": "Basal cell carcinoma",
    "akiec": "Actinic keratosis / intraepithelial carcinoma",
    "vasc": "Vascular lesion",
    "df": "Dermatofibroma",
}
# What a person reads on their own page: everyday words, never a diagnosis.
PLAIN_WORDS: dict[str, str] = {
    "nv": "an ordinary mole",
    "mel": "a mole that needs a doctor's look",
    "bkl": "a harmless age spot or wart-like growth",
    "bcc": "a slow-growing skin growth a doctor should see",
    "akiec": "a rough sun-damage patch a doctor should see",
    "vasc": "a small blood-vessel spot",
    "df": "a harmless firm skin bump",
}
# Other sources' diagnoses mapped onto the seven (ISIC 2017, PH2); anything else is left out of the fit.
DIAGNOSIS_ALIASES: dict[str, str] = {
    "melanoma": "mel",
    "nevus": "nv",
    "common_nevus": "nv",
    "atypical_nevus": "nv",
    "seborrheic_keratosis": "bkl",
    "seborrheic keratosis": "bkl",
}
DIFFERENTIAL_TOP = 3


def diagnosis_code(dx: str | None) -> str | None:
    """One of DIAGNOSES for a dataset's diagnosis, or None when it has no place among them."""
    if not dx:
        return None
    code = DIAGNOSIS_ALIASES.get(dx.lower(), dx.lower())
    return code if code in DIAGNOSES else None


def top_differential(
    probabilities: Sequence[float], codes: Sequence[str], top: int = DIFFERENTIAL_TOP
) -> list[dict[str, Any]]:
    """The `top` most likely diagnoses: [{"code", "label", "probability"}], most likely first."""
    values = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if values.size != len(codes):
        raise ValueError(f"{values.size} differential outputs for {len(codes)} diagnoses.")
    order = np.argsort(-values, kind="stable")[:top]
    return [
        {"code": codes[i], "label": DIAGNOSES.get(codes[i], codes[i]), "probability": round(float(values[i]), 3)}
        for i in order
    ]


def familiarity_distance(whitened: np.ndarray) -> float:
    """Mahalanobis distance (on the training PCA) from the graph's whitened `familiarity` output."""
    return float(np.sqrt(np.sum(np.square(np.asarray(whitened, dtype=np.float64)))))


@dataclass(frozen=True)
class Familiarity:
    """The card's `familiarity`: a distance above `threshold` is `unfamiliar`."""

    threshold: float
    components: int

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> Familiarity | None:
        section = card.get("familiarity")
        if not section:
            return None
        return cls(threshold=float(section["threshold"]), components=int(section["components"]))


# The outer cells of every feature map see mostly the convolutions' zero padding (and dermoscopy's dark corners):
# on PH2 the raw map's hottest point lay there for 99 % of images. The rim, 3 of 28 cells (24 px of 224) on each
# side, is set to the map's coldest value. Chosen on the odd-numbered half of PH2 (pointing 0.01 raw, 0.80 with
# 2 cells, 0.95 with 3); README gives the other half's figures.
EDGE_SHARE = 3 / 28


def trim_edges(heat: np.ndarray) -> np.ndarray:
    rim = max(1, round(heat.shape[0] * EDGE_SHARE)), max(1, round(heat.shape[1] * EDGE_SHARE))
    if heat.shape[0] <= 2 * rim[0] or heat.shape[1] <= 2 * rim[1]:
        return heat
    inner = heat[rim[0] : -rim[0], rim[1] : -rim[1]]
    trimmed = np.full_like(heat, inner.min())
    trimmed[rim[0] : -rim[0], rim[1] : -rim[1]] = inner
    return trimmed


# The finest layer in the map (stride 8) puts single-cell peaks on hairs, bubbles and a lesion's sharp edge; the
# evidence that matters is where the map is hot over an area. A Gaussian of 0.05 of the map's side (2 cells of 40
# at 320 px) is applied before the hottest point is taken and before display. Chosen on the odd-numbered half of
# PH2 with the 320 px model (pointing 0.84 unsmoothed, 0.95 / 0.99 / 0.99 / 0.98 at 1 / 1.5 / 2 / 3 cells); the
# even half, not used for the choice, went from 0.88 to 0.92.
SMOOTHING_SHARE = 0.05


def smooth(heat: np.ndarray, share: float = SMOOTHING_SHARE) -> np.ndarray:
    """`heat` blurred by a separable Gaussian of sigma = share x its side (edges extended, so the mean is kept
    away from the rim)."""
    sigma = share * max(heat.shape)
    if sigma < 0.5:
        return heat
    radius = int(np.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    padded = np.pad(heat, radius, mode="edge")
    # Rows then columns: two 1-D passes as sliding dot products.
    rows = np.lib.stride_tricks.sliding_window_view(padded, kernel.size, axis=0) @ kernel
    return np.lib.stride_tricks.sliding_window_view(rows, kernel.size, axis=1) @ kernel


def normalise_heatmap(heat: np.ndarray) -> np.ndarray:
    """Evidence for melanoma, smoothed and scaled to 0..1 (max 1; all zero for a flat map), the frame's rim left
    cold."""
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float64).squeeze(), nan=0.0, posinf=0.0, neginf=0.0)
    if heat.ndim != 2:
        raise ValueError(f"A heatmap is 2-D; got shape {heat.shape}.")
    heat = smooth(trim_edges(heat))
    # Relative to the map's own range: what matters is where it looked, not how strongly.
    shifted = heat - heat.min()
    top = shifted.max()
    return shifted / top if top > 0 else np.zeros_like(shifted)


def upsample(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A 0..1 map resized bilinearly to (width, height)."""
    image = Image.fromarray(np.asarray(heat, dtype=np.float32), mode="F")
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float64)


def heatmap_png(heat: np.ndarray, size: tuple[int, int] | None = None) -> bytes:
    """The normalised heatmap as a colour PNG with alpha (transparent where cold), for an overlay."""
    values = normalise_heatmap(heat)
    if size is not None:
        values = np.clip(upsample(values, size), 0.0, 1.0)
    # A red-yellow ramp; alpha follows the heat so the photo shows through where the model did not look.
    red = np.full(values.shape, 255.0)
    green = 255.0 * np.clip(values * 1.5 - 0.5, 0.0, 1.0)
    blue = np.zeros(values.shape)
    alpha = 200.0 * np.clip(values * 2.0 - 1.0, 0.0, 1.0)  # only the upper half of the range shows
    rgba = np.stack([red, green, blue, alpha], axis=-1).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def pointing_hit(heat: np.ndarray, mask: np.ndarray) -> bool:
    """Pointing game: does the hottest point (of the map brought to the mask's size) lie inside the mask?"""
    mask = np.asarray(mask, dtype=bool)
    values = upsample(normalise_heatmap(heat), (mask.shape[1], mask.shape[0]))
    y, x = np.unravel_index(int(np.argmax(values)), values.shape)
    return bool(mask[y, x])


def heat_in_mask(heat: np.ndarray, mask: np.ndarray) -> float:
    """Share of the (normalised, non-negative) heat that lies inside the mask; 0 for an empty map."""
    mask = np.asarray(mask, dtype=bool)
    values = upsample(normalise_heatmap(heat), (mask.shape[1], mask.shape[0])).clip(0.0, None)
    total = values.sum()
    return float(values[mask].sum() / total) if total > 0 else 0.0
