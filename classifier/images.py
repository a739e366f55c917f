"""Uploaded photos: check them by content, make them safe to keep, and produce what we store.

No Django models here. `image_prepare_upload` turns whatever a person uploaded into a clean photo to store, or
raises `ImageRejected` with a message a person can act on:

- a JPEG up to MELANOMA_KEEP_ORIGINAL_MAX_BYTES (what phones and dermatoscopes write) is kept as taken, its
  metadata removed without decoding it (`classifier.jpeg_metadata`); its thumbnail is made by the worker, which
  decodes the photo anyway. Decoding here cost two thirds of the web's CPU per upload (README, "Speed").
- anything else (PNG, HEIC, WebP, CMYK or very large JPEGs) is decoded by `lesion_model.decode` (upright, RGB,
  sRGB, the path the worker and training use too) into a downscaled, metadata-free JPEG and a thumbnail.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from PIL import Image, ImageStat

from classifier.jpeg_metadata import JpegStructureError, strip_jpeg_metadata
from lesion_model.decode import JPEG_FORMATS, AnimatedImage, ImageError, ImageTooLarge, decode, open_image

logger = logging.getLogger(__name__)

# Formats we accept, by what Pillow detects in the bytes. MPO is the JPEG variant many phone cameras write.
ACCEPTED_FORMATS = {"JPEG", "MPO", "PNG", "HEIF", "WEBP"}
ACCEPTED_FORMATS_TEXT = "JPEG, PNG, HEIC or WebP"
HEADER_SNIFF_BYTES = 64

# Defaults; each can be changed in settings.
DEFAULT_MAX_PIXELS = 64_000_000  # declared width x height above this is refused before any decoding
DEFAULT_STORED_MAX_SIDE = 1536  # the stored copy: plenty for the 224 px model and the result page
DEFAULT_THUMBNAIL_MAX_SIDE = 256
# A JPEG up to this size is stored as taken (minus its metadata): a 12 MP phone photo is 2-4 MB. A larger one is
# downscaled to the stored max side like every other format, so storage per check stays bounded.
DEFAULT_KEEP_ORIGINAL_MAX_BYTES = 4 * 1024 * 1024
# The colour spaces browsers and the worker decode from a JPEG without help: YCbCr/RGB and greyscale.
KEPT_JPEG_MODES = frozenset({"RGB", "L"})
EXIF_ORIENTATION = 0x0112
MIN_SIDE = 16
# A lesion photo is roughly square; a 64000x16 strip is a banner (stored as 1536x1) and scores as noise.
MAX_ASPECT_RATIO = 8
# No content: the largest per-channel standard deviation of the thumbnail's pixels (0-255) under this is one flat
# colour (a solid or blank picture; JPEG noise on one is ~1). The least varied of 600 dermoscopy photos
# (../shared/derm) measured 9.5.
MIN_CONTENT_STDDEV = 2.0
# Formats with no reduced-scale decoding hold the whole image at once, several copies of it: measured peaks of
# 15.5 bytes a pixel for WebP (libwebp's canvas, a bytes copy, Pillow's image) and 7.1 for HEIF, against ~4 for
# PNG (decoded, then reduced band by band) and JPEG (decoded at 1/2-1/8 scale). These limits keep decoding any
# accepted upload under ~300 MB (tests/classifier/test_decode_memory.py measures it).
MAX_PIXELS_BY_FORMAT = {"WEBP": 16_000_000, "HEIF": 36_000_000}
FORMAT_NAMES = {"WEBP": "WebP", "HEIF": "HEIC"}
# A progressive JPEG (or one whose first scan holds only some of its channels) is decoded through a whole-image
# buffer of DCT coefficients, 2 bytes a pixel per channel at that channel's resolution, even when libjpeg then
# decodes at 1/8 scale: a 10 KB progressive CMYK file declaring 8000x8000 made libjpeg touch 512 MB (atheris
# found the out-of-memory). 64 megapixels in 4:2:0, what cameras write, need 183 MiB.
MAX_JPEG_COEFFICIENT_BYTES = 200 * 1024 * 1024
_JPEG_BLOCK_BYTES = 64 * 2  # one 8x8 block of 16-bit coefficients
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})

# q85 with 4:2:0 chroma: ~30% smaller and ~3 ms faster to encode than q90 on a 1536 px photo, and its error against
# the decoded pixels is within 0.2 grey levels of q90's (bench/upload_path.py; README "Speed").
JPEG_QUALITY = 85
THUMBNAIL_QUALITY = 80


class ImageRejected(Exception):
    """An upload we will not process. `message` is shown to the person; `status_code` is 400 or 413."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True)
class PreparedImage:
    jpeg: bytes  # a JPEG without metadata: the original (EXIF orientation only), or upright with long side <= max
    thumbnail: bytes | None  # upright JPEG, long side <= thumbnail max side; None: the worker makes it
    width: int  # upright
    height: int
    source_format: str
    source_width: int
    source_height: int


def max_upload_bytes() -> int:
    return int(settings.MELANOMA_MAX_UPLOAD_BYTES)


def too_large_message(limit_bytes: int | None = None) -> str:
    limit_mb = (limit_bytes or max_upload_bytes()) / (1024 * 1024)
    return f"The file is too large. The limit is {limit_mb:g} MB; please upload a smaller photo."


def _too_many_pixels_message(
    max_pixels: int, width: int | None = None, height: int | None = None, source_format: str | None = None
) -> str:
    size = f" ({width}x{height} pixels)" if width and height else ""
    limit = f"The limit for {FORMAT_NAMES.get(source_format, source_format)} images" if source_format else "The limit"
    return f"The image is too big{size}. {limit} is {max_pixels / 1e6:g} megapixels; please upload a smaller photo."


def _check_shape(width: int, height: int, stored_max_side: int) -> None:
    """Refuse what cannot be a photo of a lesion, from the declared size (before any decoding)."""
    if min(width, height) < MIN_SIDE:
        raise ImageRejected(f"The image is too small ({width}x{height} pixels) to assess.")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageRejected(
            f"The image is a narrow strip ({width}x{height} pixels), not a photo of a skin lesion. Please upload "
            f"a photo with the lesion in the middle; its long side may be at most {MAX_ASPECT_RATIO} times its short "
            "side."
        )
    # What is stored (and scored) is the downscaled copy: it must be large enough too.
    stored_width, stored_height = _fit(width, height, stored_max_side)
    if min(stored_width, stored_height) < MIN_SIDE:
        raise ImageRejected(
            f"The image is too small to assess once scaled to {stored_width}x{stored_height} pixels. "
            "Please upload a photo with the lesion in the middle."
        )


def _check_content(thumbnail: Image.Image) -> None:
    if max(ImageStat.Stat(thumbnail).stddev) < MIN_CONTENT_STDDEV:
        raise ImageRejected(
            "The image shows nothing but one flat colour, so there is no lesion to assess. "
            "Please upload a photo of the skin lesion."
        )


def _read_all(upload: IO[bytes] | bytes) -> bytes:
    if isinstance(upload, bytes | bytearray | memoryview):
        return bytes(upload)
    if hasattr(upload, "seek"):
        upload.seek(0)
    if hasattr(upload, "chunks"):  # Django UploadedFile: may live in a temporary file
        return b"".join(upload.chunks())
    return upload.read()


def _upload_size(upload: IO[bytes] | bytes) -> int | None:
    if isinstance(upload, bytes | bytearray | memoryview):
        return len(upload)
    size = getattr(upload, "size", None)
    return int(size) if size is not None else None


def _reject_by_signature(head: bytes) -> None:
    """Name what people commonly upload by mistake, so the message says more than 'not an image'."""
    stripped = head.lstrip().lower()
    if head.startswith((b"GIF87a", b"GIF89a")):
        raise ImageRejected(f"GIF images are not supported. Please upload a photo as {ACCEPTED_FORMATS_TEXT}.")
    if stripped.startswith((b"<svg", b"<?xml")) or b"<svg" in stripped:
        raise ImageRejected(f"SVG drawings are not supported. Please upload a photo as {ACCEPTED_FORMATS_TEXT}.")
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        raise ImageRejected(f"This file is a web page, not a photo. Please upload {ACCEPTED_FORMATS_TEXT}.")
    if head.startswith(b"%PDF"):
        raise ImageRejected(f"PDF documents are not supported. Please upload a photo as {ACCEPTED_FORMATS_TEXT}.")


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def stored_sizes() -> tuple[int, int]:
    """(long side of the stored copy, long side of the thumbnail), from settings."""
    return (
        int(getattr(settings, "MELANOMA_STORED_IMAGE_MAX_SIDE", DEFAULT_STORED_MAX_SIDE)),
        int(getattr(settings, "MELANOMA_THUMBNAIL_MAX_SIDE", DEFAULT_THUMBNAIL_MAX_SIDE)),
    )


def draft_size(source_size: tuple[int, int], stored_max_side: int) -> tuple[int, int]:
    """The smallest decode size that still covers the stored copy: libjpeg picks the smallest 1/2, 1/4 or 1/8
    scale at least this big, so a 3072x2304 photo decodes straight at 1536x1152."""
    return _fit(*source_size, stored_max_side)


def downscale(image: Image.Image, max_side: int, *, thumbnail: bool = False) -> Image.Image:
    """`image` with its long side at most `max_side` (the same image when it already fits).

    The stored copy (what the model sees) is resampled with Lanczos, in place. The thumbnail is a new image made
    from the stored copy by an integer box reduction first (reducing_gap=1), without copying the stored copy: 2 ms
    instead of 6 for 1536 -> 256 px, 0.65 grey levels RMS from a Lanczos resize of the full photo against 0.52 for
    reducing_gap=2.
    """
    if max(image.size) <= max_side:
        return image
    if thumbnail:
        return image.resize(_fit(*image.size, max_side), Image.Resampling.LANCZOS, reducing_gap=1.0)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image


def thumbnail_jpeg(image: Image.Image, max_side: int) -> bytes:
    """The history thumbnail the worker makes for a photo kept as taken, as the upload's re-encoding path makes it:
    long side at most `max_side`."""
    return encode_jpeg(downscale(image, max_side, thumbnail=True), THUMBNAIL_QUALITY)


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG, no optimize pass (it costs ~25% more time for ~5% fewer bytes). Only what is passed here is
    written: `image.info` must be empty (image_prepare_upload clears it), as JPEG save falls back to it for the
    comment."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=False, progressive=False)
    return buffer.getvalue()


def _read_checked_bytes(upload: IO[bytes] | bytes) -> bytes:
    """The upload's bytes, refused before reading when its declared size is over the limit."""
    limit = max_upload_bytes()
    size = _upload_size(upload)
    if size is not None and size > limit:
        raise ImageRejected(too_large_message(limit), status_code=413)
    data = _read_all(upload)
    if len(data) > limit:
        raise ImageRejected(too_large_message(limit), status_code=413)
    if not data:
        raise ImageRejected("The file is empty. Please choose a photo.")
    _reject_by_signature(data[:HEADER_SNIFF_BYTES])
    return data


def _jpeg_first_scan_channels(data: bytes) -> int | None:
    """How many channels the first scan (SOS) of a JPEG interleaves; None when the markers cannot be walked."""
    position = 2  # after SOI
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_STANDALONE_MARKERS:
            position += 2
            continue
        if marker == 0xDA:
            return data[position + 4] if position + 4 < len(data) else None
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return None


def _jpeg_coefficient_bytes(image: Image.Image, data: bytes) -> int:
    """Bytes of the whole-image coefficient buffer libjpeg allocates (and zeroes) to decode this JPEG; 0 when it
    decodes one interleaved scan row by row. Counted as libjpeg does: per channel, blocks at the channel's
    sampling, padded to whole MCUs."""
    layers = getattr(image, "layer", None) or []  # (id, horizontal sampling, vertical sampling, table)
    if not layers:
        return 0
    progressive = bool(image.info.get("progressive") or image.info.get("progression"))
    scan_channels = _jpeg_first_scan_channels(data)
    if not progressive and scan_channels is not None and scan_channels >= len(layers):
        return 0
    width, height = image.size
    max_h = max(max(1, layer[1]) for layer in layers)
    max_v = max(max(1, layer[2]) for layer in layers)
    total = 0
    for _, h_sampling, v_sampling, _ in layers:
        h, v = max(1, h_sampling), max(1, v_sampling)
        blocks_wide = _ceil_div(_ceil_div(width * h, max_h), 8)
        blocks_high = _ceil_div(_ceil_div(height * v, max_v), 8)
        total += _ceil_div(blocks_wide, h) * h * _ceil_div(blocks_high, v) * v * _JPEG_BLOCK_BYTES
    return total


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _check_jpeg_buffer(image: Image.Image, data: bytes, source_format: str) -> None:
    """Refuse, from the header, a JPEG whose coefficient buffer alone would cost more than the decode budget."""
    if source_format not in {"JPEG", "MPO"}:
        return
    needed = _jpeg_coefficient_bytes(image, data)
    if needed <= MAX_JPEG_COEFFICIENT_BYTES:
        return
    width, height = image.size
    max_pixels = int(width * height * MAX_JPEG_COEFFICIENT_BYTES / needed)
    raise ImageRejected(
        f"The image is too big ({width}x{height} pixels) for a progressive JPEG of its kind: the limit is "
        f"{max_pixels / 1e6:.0f} megapixels. Please upload a smaller photo, or save it as a standard "
        "(baseline) JPEG.",
        status_code=413,
    )


def _accepted_format(image: Image.Image) -> str:
    source_format = (image.format or "").upper()
    if source_format == "GIF":
        raise ImageRejected(f"GIF images are not supported. Please upload a photo as {ACCEPTED_FORMATS_TEXT}.")
    if source_format not in ACCEPTED_FORMATS:
        raise ImageRejected(
            f"{source_format or 'This'} files are not supported. Please upload a {ACCEPTED_FORMATS_TEXT} image."
        )
    return source_format


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8; 1 when absent or unreadable): how the stored pixels are turned to be upright."""
    try:
        value = int(image.getexif().get(EXIF_ORIENTATION, 1))
    except (AttributeError, TypeError, ValueError, OSError, SyntaxError):  # a damaged EXIF block: shown as stored
        return 1
    return value if 1 <= value <= 8 else 1


def _keeps_original(image: Image.Image, data: bytes, source_format: str) -> bool:
    limit = int(getattr(settings, "MELANOMA_KEEP_ORIGINAL_MAX_BYTES", DEFAULT_KEEP_ORIGINAL_MAX_BYTES))
    return source_format in JPEG_FORMATS and image.mode in KEPT_JPEG_MODES and len(data) <= limit


def _original_without_metadata(image: Image.Image, data: bytes, source_format: str) -> PreparedImage:
    orientation = exif_orientation(image)
    try:
        jpeg = strip_jpeg_metadata(data, orientation=orientation)
    except JpegStructureError as error:
        logger.info("Upload is not a complete JPEG: %s", error)
        raise ImageRejected(
            "The image file is incomplete or damaged and could not be read. Please upload it again."
        ) from error
    width, height = image.size
    if orientation >= 5:  # 5-8 turn the picture by a quarter: it is shown (and analysed) the other way round
        width, height = height, width
    return PreparedImage(
        jpeg=jpeg,
        thumbnail=None,
        width=width,
        height=height,
        source_format=source_format,
        source_width=image.width,
        source_height=image.height,
    )


def image_prepare_upload(upload: IO[bytes] | bytes) -> PreparedImage:
    """Validate an uploaded photo by its content and return the clean copies to store.

    Raises ImageRejected (400, or 413 when the file is over MELANOMA_MAX_UPLOAD_BYTES).
    """
    data = _read_checked_bytes(upload)
    max_pixels = int(getattr(settings, "MELANOMA_MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS))
    stored_max_side, thumbnail_max_side = stored_sizes()

    try:
        # Reads the header only. The declared width x height is checked before any decoding: a few-KB file can
        # declare billions of pixels.
        image = open_image(data, max_pixels=max_pixels)
    except ImageTooLarge as error:
        raise ImageRejected(_too_many_pixels_message(max_pixels, error.width, error.height), status_code=413) from error
    except AnimatedImage as error:
        raise ImageRejected(str(error)) from error
    except ImageError as error:
        raise ImageRejected(
            f"This file is not a photo we can read. Please upload a {ACCEPTED_FORMATS_TEXT} image."
        ) from error

    source_format = _accepted_format(image)
    source_width, source_height = image.size
    format_max_pixels = MAX_PIXELS_BY_FORMAT.get(source_format)
    if format_max_pixels is not None and source_width * source_height > min(max_pixels, format_max_pixels):
        raise ImageRejected(
            _too_many_pixels_message(
                min(max_pixels, format_max_pixels), source_width, source_height, source_format=source_format
            ),
            status_code=413,
        )
    _check_shape(source_width, source_height, stored_max_side)
    _check_jpeg_buffer(image, data, source_format)
    if _keeps_original(image, data, source_format):
        return _original_without_metadata(image, data, source_format)

    try:
        # A JPEG decodes straight at 1/2, 1/4 or 1/8 scale when the stored copy is that much smaller. Upright and
        # sRGB: the EXIF tag and the ICC profile are dropped from the stored copy below.
        image = decode(image, draft_size=draft_size(image.size, stored_max_side))
    except ImageTooLarge as error:
        raise ImageRejected(_too_many_pixels_message(max_pixels), status_code=413) from error
    except ImageError as error:
        logger.info("Upload could not be decoded: %s", error)
        raise ImageRejected(
            "The image file is incomplete or damaged and could not be read. Please upload it again."
        ) from error

    # Nothing of the upload's metadata (EXIF, GPS, XMP, ICC, comments) may ride along into the stored files; the
    # thumbnail is made from this image, so it starts empty too.
    image.info = {}
    image = downscale(image, stored_max_side)
    thumbnail = downscale(image, thumbnail_max_side, thumbnail=True)
    _check_content(thumbnail)

    return PreparedImage(
        jpeg=encode_jpeg(image, JPEG_QUALITY),
        thumbnail=encode_jpeg(thumbnail, THUMBNAIL_QUALITY),
        width=image.width,
        height=image.height,
        source_format=source_format,
        source_width=source_width,
        source_height=source_height,
    )
