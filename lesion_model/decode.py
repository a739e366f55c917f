"""The one image decode path: file -> upright, 8-bit RGB, sRGB pixels.

Upload checking (classifier/images.py), the worker's preprocessing and the training data loader all go through
`open_image` + `decode`, so a photo means the same pixels to the model in training and in production.

Steps, in order: open by content (header only) -> decode (JPEG at a reduced scale when asked) -> EXIF
orientation -> 8-bit RGB -> sRGB through the embedded ICC profile.
"""

from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

try:  # Phones upload HEIC; pillow-heif is a runtime dependency but keep decoding JPEG/PNG without it.
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - depends on the environment
    pass

# Truncated files must fail loudly, not be padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False

ImageSource = bytes | bytearray | Path | str | IO[bytes]

# Formats libjpeg decodes; MPO is the JPEG variant many phone cameras write (its first frame is the photo).
JPEG_FORMATS = frozenset({"JPEG", "MPO"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# Pillow mode that holds pixels in an ICC profile's colour space.
_ICC_INPUT_MODES = {"RGB": "RGB", "CMYK": "CMYK", "GRAY": "L"}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


class ImageError(ValueError):
    """The file is not an image we can read (corrupt, truncated, unknown format, absurd size)."""


class ImageTooLarge(ImageError):
    """The image declares more pixels than allowed; found from the header, before any decoding."""

    def __init__(self, message: str, *, width: int | None = None, height: int | None = None) -> None:
        super().__init__(message)
        self.width = width
        self.height = height


class AnimatedImage(ImageError):
    """An animation: which frame shows the lesion is anybody's guess."""


def open_image(source: ImageSource, *, max_pixels: int | None = None) -> Image.Image:
    """Identify `source` by content and read its header; no pixels are decoded.

    max_pixels: refuse images declaring more (default Pillow's decompression-bomb limit, ~89 megapixels:
    nobody photographs a lesion that big, and a few-KB file can declare billions of pixels).
    """
    if isinstance(source, bytes | bytearray):
        if not source:
            raise ImageError("The file is empty.")
        stream: Any = io.BytesIO(source)
    elif isinstance(source, str | Path):
        stream = Path(source)
        if stream.is_file() and stream.stat().st_size == 0:
            raise ImageError("The file is empty.")
    else:
        stream = source
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; the declared size is checked below instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream)
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(f"The image declares too many pixels ({error}).") from error
    except UnidentifiedImageError as error:
        raise ImageError(f"Not a readable image ({error}).") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"Could not open the image: {error}") from error
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    width, height = image.size
    if limit is not None and width * height > limit:
        raise ImageTooLarge(
            f"The image is {width}x{height} pixels, over the {limit / 1e6:g} megapixel limit.",
            width=width,
            height=height,
        )
    if image.format in {"GIF", "PNG", "WEBP"} and getattr(image, "is_animated", False):
        raise AnimatedImage("Animated images are not supported; please use a single photo.")
    return image


def decode(image: Image.Image, *, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Decode an opened image into upright 8-bit sRGB RGB pixels.

    draft_size: the smallest (width, height) the caller needs, in stored (pre-EXIF) orientation. JPEGs are then
    decoded by libjpeg at 1/2, 1/4 or 1/8 scale, never below it: a 12 MP photo decodes in a fraction of the
    time and memory. Other formats decode at full size.
    Raises ImageError when the pixels cannot be read (truncated, corrupt).
    """
    try:
        if draft_size is not None and image.format in JPEG_FORMATS:
            image.draft("RGB", draft_size)
        icc_profile = image.info.get("icc_profile")
        image.load()
        return upright_srgb(image, icc_profile)
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(f"The image declares too many pixels ({error}).") from error
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, TypeError, EOFError) as error:
        raise ImageError(f"The image is corrupt or truncated: {error}") from error


def upright_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Loaded pixels -> upright 8-bit sRGB RGB. Turns `image` itself (no copy of a 12 MP photo that needs no
    turning); callers pass an image they own."""
    ImageOps.exif_transpose(image, in_place=True)
    return _to_srgb(image, icc_profile)


def decode_image(
    source: ImageSource, *, draft_size: tuple[int, int] | None = None, max_pixels: int | None = None
) -> Image.Image:
    """`open_image` then `decode`: any supported file -> upright sRGB RGB image."""
    return decode(open_image(source, max_pixels=max_pixels), draft_size=draft_size)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB. Transparency goes onto white, as a person would see it."""
    if image.mode in _SIXTEEN_BIT_MODES:
        # 16-bit greyscale (PNG, TIFF): 65535 is white. Pillow's own conversion clips at 255 instead, and
        # stretching each image's range to 0-255 would make a dim photo look like a bright one.
        pixels = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(pixels * (255.0 / 65535.0), 0, 255).round().astype(np.uint8), mode="L")
    elif image.mode == "F":
        # Floating-point pixels are conventionally 0.0 (black) to 1.0 (white).
        pixels = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(pixels * 255.0, 0, 255).round().astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """8-bit RGB in sRGB. Phones tag photos with wide-gamut profiles (Display P3); the model learnt sRGB colours."""
    found = _transform_to_srgb(icc_profile, image.mode) if icc_profile else None
    if found is None:
        return _to_rgb(image)
    space, transform = found
    source = image if image.mode == _ICC_INPUT_MODES[space] else _to_rgb(image)
    try:
        return ImageCms.applyTransform(source, transform) or source
    except (ImageCms.PyCMSError, OSError, ValueError):
        return _to_rgb(image)


@functools.lru_cache(maxsize=16)
def _transform_to_srgb(icc_profile: bytes, mode: str) -> tuple[str, ImageCms.ImageCmsTransform] | None:
    """A cached transform from the embedded profile to sRGB (building one costs more than applying it to 224 px).

    None when the profile is unreadable or does not describe these pixels (a greyscale profile on a palette
    image): the pixels are then kept as they are rather than the photo refused.
    """
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        space = profile.profile.xcolor_space.strip().upper()
        input_mode = _ICC_INPUT_MODES.get(space)
        # An RGB profile applies to anything that becomes RGB (palette, RGBA); CMYK and grey ones only to their mode.
        if input_mode is None or (input_mode != "RGB" and mode != input_mode):
            return None
        # NOCACHE: LittleCMS's one-pixel cache makes a shared transform unsafe across threads (evaluation
        # decodes on several).
        return space, ImageCms.buildTransform(profile, _SRGB, input_mode, "RGB", flags=ImageCms.Flags.NOCACHE)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
