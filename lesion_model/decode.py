"""The one image decode path: file -> upright, 8-bit RGB, sRGB pixels.

Upload checking (classifier/images.py), the worker's preprocessing and the training data loader all go through
`open_image` + `decode`, so a photo means the same pixels to the model in training and in production.

Steps, in order: open by content (header only) -> decode (JPEG at a reduced scale when asked) -> 8-bit RGB ->
sRGB through the embedded ICC profile, band by band, reduced by a whole factor when asked -> EXIF orientation.
"""

from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageFile, UnidentifiedImageError

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
# Pixels widened to RGB (and to float for 16-bit) at a time: 16 MB of float64 at most, whatever the image size.
BAND_PIXELS = 1 << 20
# EXIF orientation -> the transpose that makes the stored pixels upright (as PIL.ImageOps.exif_transpose).
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


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
    time and memory. Other formats decode at full size and are then reduced by a whole factor, never below it,
    band by band as they are widened to 8-bit RGB: a full-size RGB (4 bytes a pixel) or float copy of a 64 MP
    image would cost 256 MB to 1.5 GB (an 8000x8000 16-bit PNG is a 175 KB file).
    Raises ImageError when the pixels cannot be read (truncated, corrupt).
    """
    try:
        if draft_size is not None and image.format in JPEG_FORMATS:
            image.draft("RGB", draft_size)
        icc_profile = image.info.get("icc_profile")
        image.load()
        return upright_srgb(image, icc_profile, factor=_reduction_factor(image.size, draft_size))
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(f"The image declares too many pixels ({error}).") from error
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, TypeError, EOFError, MemoryError) as error:
        raise ImageError(f"The image is corrupt or truncated: {error}") from error


def upright_srgb(image: Image.Image, icc_profile: bytes | None, *, factor: int = 1) -> Image.Image:
    """Loaded pixels -> upright 8-bit sRGB RGB, reduced `factor` times (band by band: see `_to_srgb`)."""
    # Read before the pixels are replaced: the reduced RGB copy carries no metadata.
    orientation = _ORIENTATION_TRANSPOSE.get(image.getexif().get(ExifTags.Base.Orientation, 1))
    rgb = _to_srgb(image, icc_profile, factor=factor)
    # Colour conversion is per pixel and a box reduction by the same factor both ways commutes with
    # rotations and flips, so turning the small copy upright gives the pixels of upright-then-convert.
    return rgb.transpose(orientation) if orientation is not None else rgb


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


def _reduction_factor(size: tuple[int, int], draft_size: tuple[int, int] | None) -> int:
    """The largest whole factor that keeps the image at least draft_size (1: keep the full size)."""
    if draft_size is None:
        return 1
    width, height = size
    wanted_width, wanted_height = (max(1, side) for side in draft_size)
    return max(1, min(width // wanted_width, height // wanted_height))


def _band_rows(width: int, factor: int) -> int:
    rows = max(1, BAND_PIXELS // max(1, width))
    return max(factor, rows - rows % factor)  # whole blocks per band: band by band equals all at once


def _to_srgb(image: Image.Image, icc_profile: bytes | None, *, factor: int = 1) -> Image.Image:
    """8-bit RGB in sRGB, reduced `factor` times. Phones tag photos with wide-gamut profiles (Display P3); the model
    learnt sRGB colours.

    Converted band by band into one output image, so that no full-size widened copy (RGB, premultiplied alpha,
    float for 16-bit) exists next to the decoded pixels: the extra memory is the output and one band.
    """
    transform = _transform_to_srgb(icc_profile, image.mode) if icc_profile else None
    try:
        return _convert_in_bands(image, transform, factor)
    except (ImageCms.PyCMSError, OSError, ValueError):
        if transform is None:
            raise
        return _convert_in_bands(image, None, factor)


def _convert_in_bands(
    image: Image.Image, transform: tuple[str, ImageCms.ImageCmsTransform] | None, factor: int
) -> Image.Image:
    width, height = image.size
    if factor == 1 and image.mode == "RGB" and transform is None:
        return image  # nothing to convert or reduce
    output = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    band_rows = _band_rows(width, factor)
    for top in range(0, height, band_rows):
        band = _band_to_srgb(image.crop((0, top, width, min(height, top + band_rows))), transform)
        if factor > 1:
            band = band.reduce(factor)
        output.paste(band, (0, top // factor))
    return output


def _band_to_srgb(band: Image.Image, transform: tuple[str, ImageCms.ImageCmsTransform] | None) -> Image.Image:
    if transform is None:
        return _to_rgb(band)
    space, cms_transform = transform
    source = band if band.mode == _ICC_INPUT_MODES[space] else _to_rgb(band)
    return ImageCms.applyTransform(source, cms_transform) or source


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
