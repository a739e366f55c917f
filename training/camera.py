"""Phone close-ups simulated from dermoscopic images (issue 10, item 4).

No labelled camera-photo set can be shared, so what a phone photo does to a lesion is simulated on the labelled
dermoscopic images: the lesion smaller in a wider frame of skin of its own tone, unevenly lit, with or without a
flash's reflection (glare), mildly defocused, JPEG-compressed. Used three ways, so they measure and train on the
same thing:

- `evaluate_model --simulate camera|camera_far|camera_glare` scores a labelled folder with every image so transformed;
- the `camera` training view (training.features) teaches the head what such photos look like;
- bench/photo_check.py checks that the photo check lets them through.

NumPy and Pillow only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter


@dataclass(frozen=True)
class CameraConditions:
    scale: float = 0.55  # the dermoscopic field's side as a share of the photo's side
    defocus: float = 1.0  # Gaussian blur sigma in pixels at 224 px (scaled with the image)
    jpeg_quality: int = 85
    # Share of the frame under specular reflections (a flash or a lamp on the skin's surface oil), clipped white
    # at their cores. Phone photos are often taken with the flash on; a dermatoscope's polarised light has none.
    glare: float = 0.0


# The fixed conditions evaluate_model and the photo-check bench report. A reflection large enough to hide the lesion
# is another matter: the photo check refuses it as `glare`, and the person is asked to retake.
SIMULATIONS: dict[str, CameraConditions] = {
    "camera": CameraConditions(),
    "camera_far": CameraConditions(scale=0.4, defocus=1.2),
    "camera_glare": CameraConditions(glare=0.01),
}


def smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Standardised low-frequency noise (size x size): skin texture, uneven tone."""
    noise = Image.fromarray((rng.random((size, size)) * 255).astype(np.uint8), mode="L")
    smooth = np.asarray(noise.filter(ImageFilter.GaussianBlur(scale)), dtype=np.float32)
    return (smooth - smooth.mean()) / max(1e-3, float(smooth.std()))


def skin_tone(pixels: np.ndarray) -> np.ndarray:
    """The photo's skin colour: the median of its lighter half (a dermatoscope's dark vignette excluded)."""
    luminance = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    valid = luminance > 40
    lighter = valid & (luminance >= np.median(luminance[valid] if valid.any() else luminance))
    return np.median(pixels[lighter], axis=0) if lighter.any() else np.array([200, 160, 140], dtype=np.float32)


def camera_like(
    image: Image.Image, *, seed: int | np.random.Generator, conditions: CameraConditions | None = None
) -> Image.Image:
    """A phone close-up simulated from a dermoscopic image, as an RGB image of the input's size: the middle of the
    dermoscopic field (no black corners), shrunk to `scale` and faded into textured skin of its own tone, lit by a
    ramp from 70 % to 105 %, defocused, JPEG-compressed. Worked on as a square of the input's width, like the
    model's squashed input."""
    conditions = conditions or CameraConditions()
    rng = np.random.default_rng(seed)
    size = image.width
    square = image.convert("RGB")
    if square.size != (size, size):
        square = square.resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(square, dtype=np.float32)
    # Sizes below are fractions of the 224 px frame the simulation was first written for.
    unit = size / 224
    tone = skin_tone(pixels)
    canvas = tone * (1 + 0.03 * smooth_noise(rng, size, 6 * unit))[..., None] + rng.normal(0, 2.5, (size, size, 3))
    inner = max(8, int(size * conditions.scale))
    margin = round(28 * unit)
    patch = np.asarray(square.crop((margin, margin, size - margin, size - margin)).resize((inner, inner)), np.float32)
    yy, xx = np.mgrid[0:inner, 0:inner].astype(np.float32) / inner - 0.5
    alpha = np.clip((0.5 - np.sqrt(xx**2 + yy**2)) / 0.12, 0, 1)[..., None]
    top, left = rng.integers(size // 10, max(size // 10 + 1, size - inner - size // 10 + 1), 2)
    region = canvas[top : top + inner, left : left + inner]
    canvas[top : top + inner, left : left + inner] = alpha * patch + (1 - alpha) * region
    angle = rng.uniform(0, 2 * np.pi)
    rows, columns = np.mgrid[0:size, 0:size]
    ramp = (np.cos(angle) * columns + np.sin(angle) * rows) / size
    light = 0.7 + 0.35 * (ramp - ramp.min()) / max(1e-3, float(np.ptp(ramp)))
    canvas = canvas * light[..., None]
    if conditions.glare > 0:  # drawn last, so that without glare a seed gives the photo it always gave
        canvas = _with_glare(canvas, rng, share=conditions.glare, centre=(top + inner / 2, left + inner / 2))
    lit = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    lit = lit.filter(ImageFilter.GaussianBlur(conditions.defocus * unit))
    if lit.size != image.size:
        lit = lit.resize(image.size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    lit.save(buffer, format="JPEG", quality=conditions.jpeg_quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _with_glare(
    canvas: np.ndarray, rng: np.random.Generator, *, share: float, centre: tuple[float, float]
) -> np.ndarray:
    """One to three specular highlights covering about `share` of the frame, on and around the lesion (its raised
    surface catches the light): each pulls the pixels towards white with a Gaussian fall-off, clipped at its core."""
    size = canvas.shape[0]
    count = int(rng.integers(1, 4))
    weights = rng.dirichlet(np.ones(count))
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32)
    reflected = np.zeros((size, size), dtype=np.float32)
    for weight in weights:
        # The fall-off is 0.8 at the core's radius, where even a black pixel reaches white: the clipped core
        # covers this spot's part of `share` (more on lighter skin).
        core = np.sqrt(weight * share * size * size / np.pi)
        spread = core / np.sqrt(np.log(1.25))
        cy, cx = np.array(centre) + rng.normal(0, 0.12 * size, 2)
        reflected = np.maximum(reflected, np.exp(-((rows - cy) ** 2 + (columns - cx) ** 2) / spread**2))
    white = np.float32(255 / 0.8)  # at 0.8 of full strength a pixel of any colour reaches 255
    return canvas + (white - canvas) * reflected[..., None]


def random_camera(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A training view: camera conditions drawn from a range wider than the fixed SIMULATIONS (so the head does not
    learn the settings it is measured on): scale 0.35-0.85, defocus 0.3-1.6 px, JPEG quality 70-95, and for half of
    the photos a flash reflection over 0.2-2 % of the frame."""
    conditions = CameraConditions(
        scale=float(rng.uniform(0.35, 0.85)),
        defocus=float(rng.uniform(0.3, 1.6)),
        jpeg_quality=int(rng.integers(70, 96)),
        glare=float(rng.uniform(0.002, 0.02)) if rng.random() < 0.5 else 0.0,
    )
    return camera_like(image, seed=rng, conditions=conditions)
