"""classifier.jpeg_metadata: a JPEG kept as taken loses every metadata segment and keeps every pixel."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from bench.synthetic import lesion_pixels
from classifier.jpeg_metadata import JpegStructureError, strip_jpeg_metadata


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _with_segments(jpeg: bytes, *segments: bytes) -> bytes:
    """`jpeg` with `segments` inserted right after its start-of-image marker."""
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def _jpeg(quality: int = 90, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(lesion_pixels(160, 120)).save(buffer, format="JPEG", quality=quality, **options)
    return buffer.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def _gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (52.0, 22.0, 31.0)}
    return exif


PRIVATE = [b"PhoneMaker", b"x:xmpmeta", b"Photoshop 3.0", b"private note", b"MPF\x00", b"FlashPix"]


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="baseline"),
        pytest.param({"progressive": True}, id="progressive"),
        pytest.param({"restart_marker_blocks": 1}, id="restart-markers"),
        pytest.param({"subsampling": 0}, id="4:4:4"),
    ],
)
def test_every_metadata_segment_goes_and_every_pixel_stays(options):
    source = _with_segments(
        _jpeg(exif=_gps_exif(), comment=b"private note", **options),
        _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><exif:GPSLatitude>52</exif:GPSLatitude>"),
        _segment(0xED, b"Photoshop 3.0\x008BIM caption"),
        _segment(0xE2, b"MPF\x00II*\x00"),
        _segment(0xE2, b"FlashPix\x00data"),
    )
    assert all(marker in source for marker in PRIVATE)

    stripped = strip_jpeg_metadata(source)

    assert not any(marker in stripped for marker in PRIVATE)
    assert b"Exif" not in stripped
    with Image.open(io.BytesIO(stripped)) as image:
        assert not image.getexif()
        assert "comment" not in image.info
    assert np.array_equal(_pixels(stripped), _pixels(source))


def test_the_colour_profile_and_the_orientation_are_kept():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = _jpeg(icc_profile=profile, exif=_gps_exif())

    stripped = strip_jpeg_metadata(source, orientation=6)

    with Image.open(io.BytesIO(stripped)) as image:
        assert image.info["icc_profile"] == profile
        assert dict(image.getexif()) == {ExifTags.Base.Orientation: 6}
    assert b"PhoneMaker" not in stripped


def test_the_jfif_thumbnail_is_dropped_and_the_header_kept():
    source = _jpeg()
    assert source[2:4] == b"\xff\xe0"  # Pillow writes a JFIF APP0 first
    length = int.from_bytes(source[4:6], "big")
    header = bytearray(source[6 : 4 + length])
    header[12:14] = b"\x02\x01"  # a 2 x 1 embedded thumbnail
    thumbnail = b"\x11\x22\x33" * 2
    source = source[:2] + _segment(0xE0, bytes(header) + thumbnail) + source[4 + length :]

    stripped = strip_jpeg_metadata(source)

    assert thumbnail not in stripped
    assert stripped[2:4] == b"\xff\xe0"
    assert stripped[6:11] == b"JFIF\x00"
    assert np.array_equal(_pixels(stripped), _pixels(source))


def test_only_the_first_image_of_a_multi_picture_file_is_kept():
    first, second = _jpeg(), _jpeg(quality=50)
    stripped = strip_jpeg_metadata(first + second + b"appended bytes")
    assert stripped == strip_jpeg_metadata(first)
    assert stripped.endswith(b"\xff\xd9")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated-in-the-image-data"),
        pytest.param(lambda data: data[:-2], id="no-end-marker"),
        pytest.param(lambda data: data[:40], id="truncated-in-a-segment"),
        pytest.param(lambda data: data[:2] + b"\x00\x00" + data[2:], id="segments-do-not-chain"),
        pytest.param(lambda data: b"\x89PNG" + data[4:], id="not-a-jpeg"),
    ],
)
def test_an_incomplete_jpeg_is_refused(damage):
    with pytest.raises(JpegStructureError):
        strip_jpeg_metadata(damage(_jpeg()))


def test_stuffed_bytes_and_fill_bytes_are_image_data_not_markers():
    """0xFF 0x00 in a scan is a stuffed 0xFF, 0xFF 0xD0-0xD7 a restart marker; 0xFF 0xFF is fill before a marker.
    A megabyte of stuffed bytes is walked by one regex search, not byte by byte."""
    scan_header = _segment(0xDA, bytes([1, 1, 0, 0, 63, 0]))
    scan = b"\xff\x00" * 500_000 + b"\x12\xff\xd3\x34"
    source = b"\xff\xd8" + _segment(0xFE, b"comment") + scan_header + scan + b"\xff\xff\xd9"
    assert strip_jpeg_metadata(source) == b"\xff\xd8" + scan_header + scan + b"\xff\xd9"
