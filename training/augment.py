"""Random augmentation for training views (pixel space): lesions have no "up", and photos differ in colour and zoom.

Applied between `preprocessing.load_image` and `preprocessing.to_model_input`, so serving never sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance


@dataclass(frozen=True)
class AugmentConfig:
    min_crop_area: float = 0.55  # random resized crop: fraction of the image area kept
    max_aspect_change: float = 1.25
    zoom_out_probability: float = 0.3  # shrink the lesion inside the frame (other sources frame it wider)
    max_zoom_out: float = 0.75  # smallest scale of the shrunk image
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    hue: float = 0.04  # fraction of the hue circle
    channel_gain: float = 0.10  # per-channel multiplicative colour cast
    gamma: float = 0.25


def augment(image: Image.Image, rng: np.random.Generator, config: AugmentConfig | None = None) -> Image.Image:
    """A random view of `image` of the same size and mode (RGB)."""
    config = config or AugmentConfig()
    size = image.size
    image = _random_resized_crop(image, rng, config)
    if rng.random() < config.zoom_out_probability:
        image = _zoom_out(image, rng, config)
    transpose = rng.integers(0, 8)  # the 8 symmetries of the square
    if transpose & 1:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for _ in range(int(transpose >> 1)):
        image = image.transpose(Image.Transpose.ROTATE_90)
    result = jitter_colour(image, rng, config)
    return result if result.size == size else result.resize(size, Image.Resampling.BILINEAR)


def jitter_colour(image: Image.Image, rng: np.random.Generator, config: AugmentConfig | None = None) -> Image.Image:
    """Random brightness, contrast, saturation, hue, colour cast and gamma: cameras and lighting differ."""
    config = config or AugmentConfig()
    image = ImageEnhance.Brightness(image).enhance(1 + rng.uniform(-config.brightness, config.brightness))
    image = ImageEnhance.Contrast(image).enhance(1 + rng.uniform(-config.contrast, config.contrast))
    image = ImageEnhance.Color(image).enhance(1 + rng.uniform(-config.saturation, config.saturation))
    pixels = np.asarray(image, dtype=np.float32)
    if config.hue:
        pixels = _shift_hue(pixels, rng.uniform(-config.hue, config.hue))
    gains = 1 + rng.uniform(-config.channel_gain, config.channel_gain, size=3).astype(np.float32)
    gamma = float(np.exp(rng.uniform(-config.gamma, config.gamma)))
    pixels = 255.0 * np.power(np.clip(pixels * gains / 255.0, 0, 1), gamma)
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), mode="RGB")


def _random_resized_crop(image: Image.Image, rng: np.random.Generator, config: AugmentConfig) -> Image.Image:
    width, height = image.size
    for _ in range(10):
        area = width * height * rng.uniform(config.min_crop_area, 1.0)
        aspect = float(np.exp(rng.uniform(-np.log(config.max_aspect_change), np.log(config.max_aspect_change))))
        crop_w = round(np.sqrt(area * aspect))
        crop_h = round(np.sqrt(area / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            left = int(rng.integers(0, width - crop_w + 1))
            top = int(rng.integers(0, height - crop_h + 1))
            return image.resize(
                (width, height), Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h)
            )
    return image


def _zoom_out(image: Image.Image, rng: np.random.Generator, config: AugmentConfig) -> Image.Image:
    """Shrink the image to a random place in its frame, so the lesion covers less of it."""
    width, height = image.size
    scale = float(rng.uniform(config.max_zoom_out, 1.0))
    inner_w, inner_h = max(1, round(width * scale)), max(1, round(height * scale))
    offset = (int(rng.integers(0, width - inner_w + 1)), int(rng.integers(0, height - inner_h + 1)))
    return zoom_out(image, scale, offset=offset)


def zoom_out(image: Image.Image, scale: float, *, offset: tuple[int, int] | None = None) -> Image.Image:
    """`image` shrunk to `scale` of its size at `offset` (left, top; default centred), the border filled by mirroring
    it, so the lesion covers less of a frame of the same size and the skin around it goes on."""
    if not 0 < scale <= 1:
        raise ValueError("scale must be in (0, 1].")
    width, height = image.size
    inner_w, inner_h = max(1, round(width * scale)), max(1, round(height * scale))
    pad_left, pad_top = offset if offset is not None else ((width - inner_w) // 2, (height - inner_h) // 2)
    small = np.asarray(image.convert("RGB").resize((inner_w, inner_h), Image.Resampling.BILINEAR))
    padded = np.pad(
        small,
        ((pad_top, height - inner_h - pad_top), (pad_left, width - inner_w - pad_left), (0, 0)),
        # A border wider than the shrunk image would mirror the mirror: the edge is repeated instead.
        mode="reflect" if min(inner_w, inner_h) > max(width - inner_w, height - inner_h) else "edge",
    )
    return Image.fromarray(padded, mode="RGB")


def _shift_hue(pixels: np.ndarray, shift: float) -> np.ndarray:
    """Rotate hue by `shift` of the circle (YIQ rotation: cheap and close to an HSV hue shift)."""
    angle = 2 * np.pi * shift
    cos, sin = np.cos(angle), np.sin(angle)
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=np.float32)
    rotate = np.array([[1, 0, 0], [0, cos, -sin], [0, sin, cos]], dtype=np.float32)
    matrix = np.linalg.inv(to_yiq) @ rotate @ to_yiq
    return pixels @ matrix.T.astype(np.float32)
