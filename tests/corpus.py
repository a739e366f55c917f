"""A corpus of hostile, broken and awkward uploads, generated on the fly (no files in the repository).

Each `Case` says what a person might send (file name and bytes) and what the service must do with it:
accept it (and, for the EXIF orientation cases, store these upright pixels) or reject it with a status code
and words the message must contain. tests/classifier/test_bad_input.py runs every case through the upload
form, the JSON API and the `predict_images` command.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import ExifTags, Image

from bench.synthetic import encode_image, lesion_pixels

# The upload limit the tests set (MELANOMA_MAX_UPLOAD_BYTES); the over-limit case is several times larger.
TEST_UPLOAD_LIMIT_BYTES = 200_000
ENTRY_POINTS = ("form", "api", "command")
UPLOAD_ENTRY_POINTS = ("form", "api")


@dataclass(frozen=True)
class Case:
    id: str
    filename: str
    make: Callable[[], bytes]
    accept: bool
    status: int = 400  # for rejected cases: 400 or 413 (accepted ones ignore it)
    words: str = ""  # the rejection message contains these (case-insensitive)
    upright: Callable[[], np.ndarray] | None = None  # the pixels the stored image must show
    entry_points: tuple[str, ...] = ENTRY_POINTS
    # What the predict_images command reports (its reasons come from the training preprocessing).
    command_words: str = ""
    notes: str = field(default="", compare=False)


# --- pictures -------------------------------------------------------------------------------------


def lesion_array(width: int = 240, height: int = 180, seed: int = 0) -> np.ndarray:
    """The suite's synthetic lesion (bench/synthetic.py), at the corpus' size."""
    return lesion_pixels(width, height, seed)


encode = encode_image


def jpeg(**params) -> bytes:
    return encode(Image.fromarray(lesion_array()), "JPEG", quality=90, **params)


def png_rgba() -> bytes:
    rgba = np.dstack([lesion_array(), np.tile(np.linspace(40, 255, 240, dtype=np.uint8), (180, 1))])
    return encode(Image.fromarray(rgba, "RGBA"), "PNG")


def png_16bit() -> bytes:
    grey = lesion_array().mean(axis=2) * 257.0  # use the whole 16-bit range
    return encode(Image.fromarray(grey.astype(np.uint16)), "PNG")


def png_palette() -> bytes:
    return encode(Image.fromarray(lesion_array()).convert("P", palette=Image.Palette.ADAPTIVE), "PNG")


def png_grey() -> bytes:
    return encode(Image.fromarray(lesion_array()).convert("L"), "PNG")


def jpeg_cmyk() -> bytes:
    return encode(Image.fromarray(lesion_array()).convert("CMYK"), "JPEG", quality=90)


def truncated_jpeg() -> bytes:
    data = encode(Image.fromarray(lesion_array(640, 480)), "JPEG", quality=95)
    return data[: len(data) * 6 // 10]


def animated_gif() -> bytes:
    frames = [Image.fromarray(lesion_array(seed=seed)).convert("P") for seed in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG of a few KB whose header declares width x height pixels: a decompression bomb (30000 x 30000
    RGB would be 2.7 GB decoded)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 64, 9)  # the first rows of zeros; compresses to a few KB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def oversized_jpeg() -> bytes:
    """A real photo several times the test limit (noise does not compress)."""
    noise = np.random.default_rng(7).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "JPEG", quality=95)
    assert len(data) > 4 * TEST_UPLOAD_LIMIT_BYTES
    return data


# --- EXIF orientation -----------------------------------------------------------------------------

# Orientation tag -> the transpose that turns the upright picture into what the camera wrote to the file.
STORED_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright_array() -> np.ndarray:
    """An asymmetric picture (no rotation or mirror of it equals another): four coloured quadrants of different
    sizes on a 240 x 160 landscape frame. Flat colours keep the JPEG error small next to a wrong orientation."""
    pixels = np.zeros((160, 240, 3), dtype=np.uint8)
    pixels[:] = (40, 160, 40)  # green
    pixels[:60, :100] = (230, 30, 30)  # red, top-left
    pixels[:60, 100:] = (30, 30, 220)  # blue, top-right
    pixels[120:, :60] = (240, 240, 240)  # white, bottom-left
    return pixels


def oriented_jpeg(orientation: int) -> bytes:
    image = Image.fromarray(upright_array())
    if STORED_AS[orientation] is not None:
        image = image.transpose(STORED_AS[orientation])
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return encode(image, "JPEG", quality=95, exif=exif)


def jpeg_with_gps() -> bytes:
    """A phone-like photo whose EXIF carries a camera make, GPS coordinates and a comment."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMakerXYZ"
    exif[ExifTags.Base.Model] = "Phone 15"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (52.0, 22.0, 31.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (4.0, 53.0, 12.0),
    }
    return encode(Image.fromarray(lesion_array()), "JPEG", quality=90, exif=exif, comment=b"home address")


# --- the corpus -----------------------------------------------------------------------------------

_HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
_SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200">'
    b'<script>alert(document.cookie)</script><circle cx="100" cy="100" r="50"/></svg>'
)
# Names that only exist in an HTTP upload: a path cannot hold '/' or NUL, nor a 2,000-character name.
_UPLOAD_ONLY = UPLOAD_ENTRY_POINTS

CASES: list[Case] = [
    # rejected
    Case("zero-byte", "empty.jpg", lambda: b"", accept=False, status=400, words="empty", command_words="empty"),
    Case("text-as-jpg", "notes.jpg", lambda: b"Dear doctor, my mole...\n" * 40, accept=False, words="not a photo"),
    Case("html-as-jpg", "page.jpg", lambda: _HTML, accept=False, words="web page"),
    Case("html-as-png", "page.png", lambda: _HTML, accept=False, words="web page"),
    Case("svg-as-jpg", "drawing.jpg", lambda: _SVG, accept=False, words="SVG"),
    Case("svg-as-png", "drawing.png", lambda: _SVG, accept=False, words="SVG"),
    Case("truncated-jpeg", "cut.jpg", truncated_jpeg, accept=False, words="incomplete or damaged"),
    Case("animated-gif", "moving.gif", animated_gif, accept=False, words="GIF", command_words="animated"),
    Case(
        "decompression-bomb",
        "bomb.png",
        lambda: png_declaring(30000, 30000),
        accept=False,
        status=413,
        words="too big",
        command_words="decompression bomb",
    ),
    Case(
        "over-size-limit",
        "huge.jpg",
        oversized_jpeg,
        accept=False,
        status=413,
        words="too large",
        entry_points=_UPLOAD_ONLY,
        notes="the command reads local files chosen by an operator; it has no upload limit",
    ),
    # accepted (converted to upright 8-bit RGB JPEG)
    Case("jpeg-named-png", "photo.png", jpeg, accept=True),
    Case("png-rgba", "alpha.png", png_rgba, accept=True),
    Case("png-16bit", "deep.png", png_16bit, accept=True),
    Case("png-palette", "palette.png", png_palette, accept=True),
    Case("png-greyscale", "grey.png", png_grey, accept=True),
    Case("jpeg-cmyk", "print.jpg", jpeg_cmyk, accept=True),
    *[
        Case(
            f"exif-orientation-{orientation}",
            f"oriented-{orientation}.jpg",
            lambda orientation=orientation: oriented_jpeg(orientation),
            accept=True,
            upright=upright_array,
        )
        for orientation in sorted(STORED_AS)
    ],
    Case("name-path-traversal", "../../../etc/cron.d/evil.jpg", jpeg, accept=True, entry_points=_UPLOAD_ONLY),
    Case("name-nul-byte", "mole\x00.php.jpg", jpeg, accept=True, entry_points=_UPLOAD_ONLY),
    # As long as a file system allows (255 bytes): accepted, the name is never used.
    Case("name-very-long", "a" * 251 + ".jpg", jpeg, accept=True),
    # Longer than any real file name: Django refuses multipart part headers over 1 KB. A readable 400.
    Case(
        "name-over-1kb",
        "a" * 2000 + ".jpg",
        jpeg,
        accept=False,
        words="file name is too long",
        entry_points=_UPLOAD_ONLY,
    ),
    Case("name-non-ascii", "Muttermal-Rücken-ほくろ-😀.jpg", jpeg, accept=True),
]
CASES_BY_ID = {case.id: case for case in CASES}


def multipart_body(*, filename: str, content: bytes, fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body written by hand: Django's test client would sanitise the file name (basename,
    no NUL) before sending, and a hostile client does not. Returns (body, content type)."""
    boundary = "----corpus-boundary-7d1f6a2b"
    parts: list[bytes] = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    header = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    )
    parts.append(header.encode("utf-8", "surrogatepass") + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
