"""The one preprocessing path shared by training, evaluation and serving.

`load_image` decodes any supported file (bytes or path) through `lesion_model.decode` (upright, RGB, sRGB) and
squashes it to `size` x `size`; `to_model_input` turns it into the float32 array the network sees. Training
inserts its random augmentation between the two; serving and evaluation call `preprocess_image`, which is
exactly `to_model_input(load_image(...))`. Keeping one copy means the model sees in production the same
pixels it was trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from lesion_model.decode import ImageError, ImageSource, decode_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Shades-of-gray colour constancy (Finlayson & Trezzi 2004), the Minkowski norm used by ISIC challenge winners.
SHADES_OF_GRAY_POWER = 6


@dataclass(frozen=True)
class Normalisation:
    """How RGB pixels become model input; stored in the model card so serving repeats it exactly.

    name: "imagenet_torch" - (x/255 - mean)/std with ImageNet mean/std (torchvision's weights);
          "keras_mobilenet" - x/127.5 - 1 (Keras's own ImageNet weights).
    colour_constancy: "none" or "shades_of_gray" (applied before normalising).
    colour_constancy_strength: how much of the shades-of-gray correction to apply (gains ** strength);
        1 divides the estimated illuminant out fully, 0.5 goes halfway.
    """

    name: str = "imagenet_torch"
    colour_constancy: str = "none"
    colour_constancy_strength: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in ("imagenet_torch", "keras_mobilenet"):
            raise ValueError(f"Unknown normalisation {self.name!r}.")
        if self.colour_constancy not in ("none", "shades_of_gray"):
            raise ValueError(f"Unknown colour constancy {self.colour_constancy!r}.")
        if not 0.0 <= self.colour_constancy_strength <= 1.0:
            raise ValueError("colour_constancy_strength must be between 0 and 1.")

    def to_card(self) -> dict[str, Any]:
        card = asdict(self)
        if self.name == "imagenet_torch":
            card.update(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), formula="(x/255 - mean) / std")
        else:
            card.update(formula="x/127.5 - 1")
        if self.colour_constancy == "shades_of_gray":
            card["shades_of_gray_power"] = SHADES_OF_GRAY_POWER
        return card

    @classmethod
    def from_card(cls, value: str | dict[str, Any] | Normalisation) -> Normalisation:
        if isinstance(value, Normalisation):
            return value
        if isinstance(value, str):
            return cls(name=value)
        if isinstance(value, dict) and "name" in value:
            return cls(
                name=value["name"],
                colour_constancy=value.get("colour_constancy", "none"),
                colour_constancy_strength=float(value.get("colour_constancy_strength", 1.0)),
            )
        raise ValueError(f"Unreadable normalisation in model card: {value!r}")


def load_image(source: ImageSource, size: int) -> Image.Image:
    """Decode `source` into an upright sRGB RGB `size` x `size` image (aspect squashed).

    Squashing rather than cropping matches HAM10000, whose images were squashed to 224x224.
    """
    if size <= 0:
        raise ValueError("size must be positive")
    image = decode_image(source, draft_size=(size, size))
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return image


def _shades_of_gray_gains(illuminant: np.ndarray, strength: float = 1.0) -> np.ndarray | None:
    norm = float(np.sqrt(np.sum(illuminant**2)))
    if norm <= 0:
        return None
    gains = norm / (np.sqrt(3.0) * np.maximum(illuminant, 1e-6))
    return np.power(gains, strength).astype(np.float32)


def shades_of_gray(pixels: np.ndarray, power: int = SHADES_OF_GRAY_POWER, strength: float = 1.0) -> np.ndarray:
    """Estimate the illuminant per image and divide it out; float32 HxWx3 in [0, 255] in and out."""
    illuminant = np.power(np.mean(np.power(pixels, power), axis=(0, 1)), 1.0 / power)
    gains = _shades_of_gray_gains(illuminant, strength)
    if gains is None:
        return pixels
    return np.clip(pixels * gains, 0.0, 255.0)


def _normalise(pixels: np.ndarray, spec: Normalisation) -> np.ndarray:
    if spec.name == "imagenet_torch":
        mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
        std = np.asarray(IMAGENET_STD, dtype=np.float32)
        return ((pixels / np.float32(255.0) - mean) / std).astype(np.float32)
    return (pixels / np.float32(127.5) - np.float32(1.0)).astype(np.float32)


_LEVELS = np.repeat(np.arange(256, dtype=np.float32)[:, None], 3, axis=1)  # (value, channel)
_LEVEL_POWERS = np.arange(256, dtype=np.float64) ** SHADES_OF_GRAY_POWER


def _to_model_input_uint8(image: Image.Image, spec: Normalisation) -> np.ndarray:
    """The same arithmetic on the 256 possible values per channel, then a table lookup per pixel.

    Serving measured it (bench/): whole-image float passes cost 1-3 ms per 224 image on this CPU (NumPy's
    broadcasting over a trailing axis of 3 is slow) and the shades-of-gray power mean 3-7 ms, more than the
    model. Here Pillow computes the histogram and splits the bands in C, and each band is one contiguous
    table lookup: ~0.6 ms in all. Identical output without colour constancy; with it, the illuminant comes
    from the histogram in float64 (differs from the float32 mean by ~1e-7 relative).
    """
    levels = _LEVELS
    if spec.colour_constancy == "shades_of_gray":
        counts = np.asarray(image.histogram(), dtype=np.float64).reshape(3, 256)
        illuminant = np.power(counts @ _LEVEL_POWERS / max(1, image.width * image.height), 1 / SHADES_OF_GRAY_POWER)
        gains = _shades_of_gray_gains(illuminant.astype(np.float32), spec.colour_constancy_strength)
        if gains is not None:
            levels = np.clip(levels * gains, 0.0, 255.0)
    table = _normalise(levels, spec)
    model_input = np.empty((image.height, image.width, 3), dtype=np.float32)
    for channel, band in enumerate(image.split()):
        model_input[..., channel] = table[:, channel][np.asarray(band)]
    return model_input


def to_model_input(image: Image.Image | np.ndarray, normalisation: Normalisation | str | dict) -> np.ndarray:
    """RGB image (PIL or uint8/float HxWx3 array in [0, 255]) -> float32 HxWx3 model input."""
    spec = Normalisation.from_card(normalisation)
    if isinstance(image, Image.Image) and image.mode == "RGB":  # every decoded image (serving, evaluation)
        return _to_model_input_uint8(image, spec)
    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ImageError(f"Expected an RGB image, got an array of shape {pixels.shape}.")
    if pixels.dtype == np.uint8:  # training views (flipped, colour-constant arrays)
        return _to_model_input_uint8(Image.fromarray(np.ascontiguousarray(pixels)), spec)
    pixels = pixels.astype(np.float32, copy=False)
    if spec.colour_constancy == "shades_of_gray":
        pixels = shades_of_gray(pixels, strength=spec.colour_constancy_strength)
    return _normalise(pixels, spec)


def preprocess_image(source: ImageSource, *, size: int, normalisation: Normalisation | str | dict) -> np.ndarray:
    """Serving and evaluation: file -> model input, with no augmentation."""
    return to_model_input(load_image(source, size), normalisation)
