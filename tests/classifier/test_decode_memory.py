"""Decoding an accepted upload costs at most ~300 MB, whatever the file declares (issue 11, item 3).

A 175 KB PNG of 8000x8000 16-bit grey pixels used to cost 1.5 GiB in the web process (widened to float64 at full
size). Each file is checked in a fresh interpreter: ru_maxrss is a high-water mark, so the peak of the upload
check minus the peak before it is what decoding cost.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from PIL import Image

from classifier import images
from classifier.images import ImageRejected, image_prepare_upload

PEAK_LIMIT_MB = 300
SIDE = 8000  # 64 megapixels: the largest accepted upload

PEAK_SCRIPT = """
import json, os, resource, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_site.settings.development")
import django
django.setup()
from django.test.utils import override_settings
from classifier.images import ImageRejected, image_prepare_upload
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    with override_settings(MELANOMA_MAX_UPLOAD_BYTES=len(data) + 1):
        prepared = image_prepare_upload(data)
    outcome = f"accepted {prepared.width}x{prepared.height}"
except ImageRejected as error:
    outcome = f"rejected {error.status_code}: {error.message}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"extra_mb": (peak - before) / 1024, "outcome": outcome}))
"""


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def streamed_png(width: int, height: int, *, bit_depth: int, colour_type: int, row: Callable[[int], bytes]) -> bytes:
    """A real, fully decodable PNG written row by row: the test never holds the decoded image itself.
    row(y) -> the unfiltered bytes of row y."""
    compressor = zlib.compressobj(6)
    idat = [compressor.compress(b"\x00" + row(y)) for y in range(height)]
    idat.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(idat)) + _chunk(b"IEND", b"")


def _banded_rows(width: int, channels: int, dtype: type) -> Callable[[int], bytes]:
    """Horizontal bands of a repeating pattern: compresses to little, yet not one flat colour."""
    cache: dict[int, bytes] = {}
    top = np.iinfo(dtype).max

    def row(y: int) -> bytes:
        band = y // 500
        if band not in cache:
            values = (np.arange(width * channels) % 251) * (top // 251) // (1 + band % 3)
            if channels in (2, 4):  # alpha: half transparent
                values.reshape(width, channels)[:, -1] = top // 2
            cache[band] = values.astype(dtype).astype(np.dtype(dtype).newbyteorder(">")).tobytes()
        return cache[band]

    return row


def grey16_png() -> bytes:
    return streamed_png(SIDE, SIDE, bit_depth=16, colour_type=0, row=_banded_rows(SIDE, 1, np.uint16))


def rgba_png() -> bytes:
    return streamed_png(SIDE, SIDE, bit_depth=8, colour_type=6, row=_banded_rows(SIDE, 4, np.uint8))


def grey_alpha_png() -> bytes:
    return streamed_png(SIDE, SIDE, bit_depth=8, colour_type=4, row=_banded_rows(SIDE, 2, np.uint8))


def rgb16_png() -> bytes:
    return streamed_png(SIDE, SIDE, bit_depth=16, colour_type=2, row=_banded_rows(SIDE, 3, np.uint16))


def webp_at_its_limit() -> bytes:
    side = int(images.MAX_PIXELS_BY_FORMAT["WEBP"] ** 0.5)
    pixels = np.tile((np.arange(side, dtype=np.uint16) % 251).astype(np.uint8)[None, :, None], (side, 1, 3))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="WEBP", lossless=True, method=0)
    return buffer.getvalue()


def _peak(path: Path) -> dict:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", PEAK_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(grey16_png, id="png-16bit-grey-8000x8000"),
        pytest.param(rgb16_png, id="png-16bit-rgb-8000x8000"),
        pytest.param(rgba_png, id="png-rgba-8000x8000"),
        pytest.param(grey_alpha_png, id="png-grey-alpha-8000x8000"),
        pytest.param(webp_at_its_limit, id="webp-at-the-webp-limit"),
    ],
)
def test_decoding_the_largest_accepted_image_peaks_below_300_mb(make, tmp_path):
    path = tmp_path / "upload.bin"
    path.write_bytes(make())
    measured = _peak(path)
    assert measured["outcome"].startswith("accepted"), measured
    assert measured["extra_mb"] < PEAK_LIMIT_MB, measured


def test_the_reported_file_is_small(tmp_path):
    assert len(grey16_png()) < 1_000_000  # a few hundred KB, far under the upload limit


@pytest.mark.parametrize(("source_format", "fmt"), [("WEBP", "WEBP"), ("HEIF", "HEIF")])
def test_formats_decoded_whole_have_a_lower_pixel_limit(source_format, fmt, monkeypatch):
    """WebP and HEIF cannot be decoded at a reduced scale: over their own limit they are refused from the
    header, before any pixel is decoded."""
    if fmt == "HEIF":
        pytest.importorskip("pillow_heif")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (KeyError, OSError, ValueError) as error:
        pytest.skip(f"cannot encode {fmt} here: {error}")
    monkeypatch.setitem(images.MAX_PIXELS_BY_FORMAT, source_format, 160 * 120 - 1)

    def fail_load(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", fail_load)
    with pytest.raises(ImageRejected) as caught:
        image_prepare_upload(buffer.getvalue())
    assert caught.value.status_code == 413
    assert "160x120 pixels" in caught.value.message
    assert f"limit for {images.FORMAT_NAMES[source_format]} images" in caught.value.message


def _with_declared_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header (SOF) declaring width x height: a few KB that libjpeg sizes its buffers by."""
    data = bytearray(jpeg)
    position = 2
    while data[position + 1] not in (0xC0, 0xC1, 0xC2):
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    data[position + 5 : position + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def small_jpeg(mode: str, *, progressive: bool, subsampling: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(
        buffer, format="JPEG", progressive=progressive, subsampling=subsampling, quality=90
    )
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("mode", "progressive", "subsampling", "refused"),
    [
        # 4 channels at full resolution, 2 bytes a pixel each: 512 MB before the fix.
        pytest.param("CMYK", True, 0, True, id="progressive-cmyk-8000x8000"),
        pytest.param("RGB", True, 0, True, id="progressive-4:4:4-8000x8000"),
        # What cameras write: 183 MiB of coefficients at the pixel limit, accepted.
        pytest.param("RGB", True, 2, False, id="progressive-4:2:0-8000x8000"),
        pytest.param("CMYK", False, 0, False, id="baseline-cmyk-8000x8000"),
    ],
)
def test_a_jpeg_header_cannot_make_libjpeg_allocate_past_the_budget(mode, progressive, subsampling, refused, tmp_path):
    """A progressive JPEG is decoded through a whole-image coefficient buffer whatever the reduced scale; a few-KB
    file declaring 64 megapixels in 4 full-resolution channels is refused from its header (413)."""
    path = tmp_path / "upload.jpg"
    jpeg = small_jpeg(mode, progressive=progressive, subsampling=subsampling)
    path.write_bytes(_with_declared_size(jpeg, SIDE, SIDE))
    measured = _peak(path)
    assert measured["extra_mb"] < PEAK_LIMIT_MB, measured
    assert measured["outcome"].startswith("rejected 413") == refused, measured
    if refused:
        assert "progressive JPEG" in measured["outcome"]


def test_the_first_scan_is_read_from_the_markers():
    baseline = small_jpeg("RGB", progressive=False, subsampling=2)
    assert images._jpeg_first_scan_channels(baseline) == 3
    assert images._jpeg_first_scan_channels(b"\xff\xd8garbage") is None
    opened = Image.open(io.BytesIO(baseline))
    assert images._jpeg_coefficient_bytes(opened, baseline) == 0  # one interleaved scan: decoded row by row
