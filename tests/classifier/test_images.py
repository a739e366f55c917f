"""classifier.images: accept real photos in every format and mode, refuse everything else with a reason."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageFile, ImageOps

from bench.synthetic import encode_image, lesion_pixels
from classifier.images import ImageRejected, image_prepare_upload


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _png_declaring(width: int, height: int) -> bytes:
    """A valid few-hundred-byte PNG header that declares width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + chunk(b"IEND", b"")
    )


def _animated_gif() -> bytes:
    frames = [Image.new("P", (64, 64), color) for color in (1, 2, 3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


# --- accepted --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("JPEG", "RGB"),
        ("JPEG", "L"),
        ("JPEG", "CMYK"),
        ("PNG", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "LA"),
        ("PNG", "P"),
        ("PNG", "L"),
        ("PNG", "I;16"),
        ("WEBP", "RGB"),
    ],
)
def test_accepts_formats_and_modes_and_outputs_jpeg(make_image_bytes, fmt, mode):
    if mode == "I;16":
        # Pillow's RGB -> I;16 keeps 0-255, which is black on a 16-bit scale (refused as one flat colour): use the
        # whole range, as a 16-bit camera or scanner does.
        grey = lesion_pixels().mean(axis=2) * 257.0
        content = encode_image(Image.fromarray(grey.astype(np.uint16)), fmt)
    else:
        content = make_image_bytes(fmt, mode=mode)
    prepared = image_prepare_upload(content)

    stored = _open(prepared.jpeg)
    assert stored.format == "JPEG"
    assert stored.size == (320, 240)
    if fmt == "JPEG" and mode in {"RGB", "L"}:
        # Kept as taken: the very same pixels, no thumbnail yet (the worker makes it).
        assert stored.mode == mode
        assert np.array_equal(np.asarray(stored), np.asarray(_open(content)))
        assert prepared.thumbnail is None
    else:
        assert stored.mode == "RGB"
        thumbnail = _open(prepared.thumbnail)
        assert thumbnail.format == "JPEG"
        assert max(thumbnail.size) <= 256
    # The picture survives the conversion: the dark mole stays darker than the skin around it.
    pixels = np.asarray(stored.convert("L"), dtype=np.float32)
    assert pixels[120, 160] < pixels[10, 10]


def test_sixteen_bit_png_is_scaled_not_clipped():
    image = Image.fromarray((np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16))
    prepared = image_prepare_upload(encode_image(image, "PNG"))
    stored = np.asarray(_open(prepared.jpeg))
    assert stored.min() < 20
    assert stored.max() > 200  # a plain convert would clip nearly everything to 255


def test_transparent_png_is_flattened_on_white():
    image = Image.fromarray(lesion_pixels(100, 100)).convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 50, 100))  # the left half fully transparent (black underneath)
    prepared = image_prepare_upload(encode_image(image, "PNG"))
    assert np.asarray(_open(prepared.jpeg))[:, :45].mean() > 250


def test_accepts_heic():
    pillow_heif = pytest.importorskip("pillow_heif")
    image = Image.fromarray(lesion_pixels(320, 240))
    try:
        heif = pillow_heif.from_pillow(image)
        buffer = io.BytesIO()
        heif.save(buffer, quality=90)
    except Exception as error:  # noqa: BLE001 - a build of pillow-heif without an HEVC encoder
        pytest.skip(f"pillow-heif cannot encode HEIC here: {error}")
    prepared = image_prepare_upload(buffer.getvalue())
    assert prepared.source_format == "HEIF"
    assert _open(prepared.jpeg).size == (320, 240)


def test_jpeg_over_the_keep_limit_is_downscaled(make_image_bytes, settings):
    settings.MELANOMA_STORED_IMAGE_MAX_SIDE = 400
    content = make_image_bytes("JPEG", width=1600, height=1200)
    settings.MELANOMA_KEEP_ORIGINAL_MAX_BYTES = len(content) - 1
    prepared = image_prepare_upload(content)
    assert (prepared.source_width, prepared.source_height) == (1600, 1200)
    assert _open(prepared.jpeg).size == (400, 300)
    assert (prepared.width, prepared.height) == (400, 300)


def test_full_size_pixels_are_never_decoded_or_resampled(make_image_bytes, settings, monkeypatch):
    """The web tier's speed levers for a JPEG over the keep limit: it decodes straight at the stored scale (draft
    mode) and the thumbnail is made from that reduced image, so no step ever touches the 1600x1200 pixels."""
    settings.MELANOMA_STORED_IMAGE_MAX_SIDE = 400
    settings.MELANOMA_KEEP_ORIGINAL_MAX_BYTES = 0
    settings.MELANOMA_THUMBNAIL_MAX_SIDE = 100
    seen: list[tuple[int, int]] = []

    def spy(method):
        def wrapped(self, *args, **kwargs):
            result = method(self, *args, **kwargs)
            seen.append(self.size)
            return result

        return wrapped

    for owner, name in ((ImageFile.ImageFile, "load"), (Image.Image, "resize"), (Image.Image, "reduce")):
        monkeypatch.setattr(owner, name, spy(getattr(owner, name)))
    prepared = image_prepare_upload(make_image_bytes("JPEG", width=1600, height=1200))
    assert (prepared.width, prepared.height) == (400, 300)
    assert _open(prepared.thumbnail).size == (100, 75)
    assert seen
    assert max(seen) == (400, 300)


def test_real_phone_photo_is_kept_as_taken_and_no_pixel_is_decoded(real_photo_bytes, monkeypatch):
    """The web's fast path: a JPEG under the keep limit is only parsed (header and segments), never decoded."""
    decoded: list[tuple[int, int]] = []
    original_load = ImageFile.ImageFile.load

    def spy(self):
        decoded.append(self.size)
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    prepared = image_prepare_upload(real_photo_bytes)
    assert decoded == []
    monkeypatch.undo()
    stored, source = _open(prepared.jpeg), _open(real_photo_bytes)
    assert stored.size == source.size
    assert (prepared.width, prepared.height) == source.size
    assert np.array_equal(np.asarray(stored), np.asarray(source))
    assert len(prepared.jpeg) <= len(real_photo_bytes)


def test_real_phone_photo_over_the_keep_limit(real_photo_bytes, settings):
    settings.MELANOMA_KEEP_ORIGINAL_MAX_BYTES = len(real_photo_bytes) - 1
    prepared = image_prepare_upload(real_photo_bytes)
    stored = _open(prepared.jpeg)
    assert max(stored.size) <= 1536
    assert stored.mode == "RGB"


# Orientation tag -> the transpose that turns the upright picture into what the camera stored.
_STORED_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("kept", [True, False], ids=["kept-as-taken", "re-encoded"])
@pytest.mark.parametrize("orientation", sorted(_STORED_AS))
def test_every_exif_orientation_ends_upright(orientation, kept, settings):
    if not kept:
        settings.MELANOMA_KEEP_ORIGINAL_MAX_BYTES = 0
    upright = np.zeros((80, 120, 3), dtype=np.uint8)
    upright[:] = (0, 160, 0)
    upright[:40, :60] = (230, 20, 20)  # a red top-left quadrant marks which way is up
    image = Image.fromarray(upright)
    if _STORED_AS[orientation] is not None:
        image = image.transpose(_STORED_AS[orientation])
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    prepared = image_prepare_upload(encode_image(image, "JPEG", quality=95, exif=exif))
    assert (prepared.width, prepared.height) == (120, 80)

    opened = _open(prepared.jpeg)
    # A kept photo carries its orientation (and nothing else); browsers and the worker turn it upright.
    assert dict(opened.getexif()) == ({ExifTags.Base.Orientation: orientation} if kept and orientation != 1 else {})
    stored = np.asarray(ImageOps.exif_transpose(opened)).astype(int)
    assert stored.shape == (80, 120, 3)
    # red: top-left
    assert stored[10, 10, 0] > 180
    assert stored[10, 10, 1] < 80
    # green: bottom-right
    assert stored[70, 110, 1] > 120
    assert stored[70, 110, 0] < 80


@pytest.mark.parametrize("kept", [True, False], ids=["kept-as-taken", "re-encoded"])
def test_all_metadata_and_gps_are_removed(make_image_bytes, kept, settings):
    if not kept:
        settings.MELANOMA_KEEP_ORIGINAL_MAX_BYTES = 0
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone 15"
    exif[ExifTags.Base.Orientation] = 1
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (52.0, 22.0, 31.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (4.0, 53.0, 12.0),
    }
    source = make_image_bytes("JPEG", exif=exif, comment=b"private note")
    assert _open(source).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the fixture really carries GPS

    prepared = image_prepare_upload(source)
    assert (prepared.thumbnail is None) == kept
    for data in (prepared.jpeg, prepared.thumbnail or b""):
        if not data:
            continue
        stored = _open(data)
        assert not stored.getexif()
        assert "exif" not in stored.info
        assert "comment" not in stored.info
        assert "icc_profile" not in stored.info
        assert b"Exif" not in data
        assert b"PhoneMaker" not in data


# --- rejected --------------------------------------------------------------------------------------


def _truncated_jpeg() -> bytes:
    data = encode_image(Image.fromarray(lesion_pixels(640, 480)), "JPEG", quality=95)
    return data[: len(data) * 6 // 10]


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b"", 400, "empty"),
        (b"just some text, saved as photo.jpg\n", 400, "not a photo"),
        (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", 400, "web page"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 400, "SVG"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', 400, "SVG"),
        (b"%PDF-1.7\n%...", 400, "PDF"),
        (pytest.param("gif", id="animated-gif"), 400, "GIF"),
        (pytest.param("truncated", id="truncated-jpeg"), 400, "incomplete or damaged"),
        (pytest.param("bomb", id="decompression-bomb"), 413, "too big"),
        (pytest.param("bomb-medium", id="over-pixel-limit"), 413, "megapixels"),
        (pytest.param("tiny", id="too-small"), 400, "too small"),
    ],
)
def test_rejects_with_reason(content, status, words):
    if not isinstance(content, bytes):
        kind = content.values[0]
        content = {
            "gif": _animated_gif,
            "truncated": _truncated_jpeg,
            "bomb": lambda: _png_declaring(30000, 30000),
            "bomb-medium": lambda: _png_declaring(9000, 9000),
            "tiny": lambda: encode_image(Image.new("RGB", (4, 4)), "PNG"),
        }[kind]()
    with pytest.raises(ImageRejected) as caught:
        image_prepare_upload(content)
    assert caught.value.status_code == status
    assert words.lower() in caught.value.message.lower()


def test_decompression_bomb_is_small_and_never_decoded(monkeypatch):
    bomb = _png_declaring(30000, 30000)
    assert len(bomb) < 10_000

    def fail_load(self):
        raise AssertionError("the bomb's pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", fail_load)
    with pytest.raises(ImageRejected) as caught:
        image_prepare_upload(bomb)
    assert caught.value.status_code == 413


def test_file_over_size_limit_is_413(make_image_bytes, settings):
    settings.MELANOMA_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(ImageRejected) as caught:
        image_prepare_upload(make_image_bytes("PNG"))
    assert caught.value.status_code == 413
    assert "too large" in caught.value.message


def test_animated_png_is_refused_like_everywhere_else():
    """The worker and training refuse animations (lesion_model.decode); the upload says so first."""
    frames = [Image.fromarray(lesion_pixels(64, 64, seed)) for seed in (0, 1)]
    with pytest.raises(ImageRejected) as caught:
        image_prepare_upload(encode_image(frames[0], "PNG", save_all=True, append_images=frames[1:]))
    assert caught.value.status_code == 400
    assert "animated" in caught.value.message.lower()


# --- not a photo of a lesion (issue 11, item 11) ----------------------------------------------------


def _solid_png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    from tests.classifier.test_decode_memory import streamed_png

    row = bytes(colour) * width
    return streamed_png(width, height, bit_depth=8, colour_type=2, row=lambda _y: row)


@pytest.mark.parametrize(
    ("width", "height"),
    [pytest.param(64000, 16, id="64000x16-stored-as-1536x1"), (16, 200), (900, 100)],
)
def test_strip_is_refused_with_a_readable_reason(width, height):
    with pytest.raises(ImageRejected) as caught:
        image_prepare_upload(_solid_png(width, height, (180, 120, 100)))
    assert caught.value.status_code == 400
    assert f"narrow strip ({width}x{height} pixels)" in caught.value.message
    assert "8 times" in caught.value.message


def test_aspect_ratio_of_8_is_still_accepted():
    prepared = image_prepare_upload(encode_image(Image.fromarray(lesion_pixels(800, 100)), "PNG"))
    assert (prepared.width, prepared.height) == (800, 100)


def test_minimum_size_applies_to_the_stored_copy(settings):
    """A 640x80 photo is fine as uploaded, but stored at 64 px on its long side it would be 64x8."""
    settings.MELANOMA_STORED_IMAGE_MAX_SIDE = 64
    with pytest.raises(ImageRejected) as caught:
        image_prepare_upload(encode_image(Image.fromarray(lesion_pixels(640, 80)), "PNG"))
    assert caught.value.status_code == 400
    assert "too small to assess once scaled to 64x8 pixels" in caught.value.message


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: _solid_png(8000, 8000, (200, 160, 140)), id="solid-png-8000x8000"),
        pytest.param(lambda: encode_image(Image.new("RGB", (640, 480), (214, 168, 140)), "JPEG"), id="solid-jpeg"),
        pytest.param(lambda: encode_image(Image.new("RGBA", (300, 300), (0, 0, 0, 0)), "PNG"), id="transparent"),
        pytest.param(lambda: encode_image(Image.new("L", (300, 300), 0), "PNG"), id="black"),
    ],
)
def test_image_with_no_content_is_refused(make, settings):
    # A JPEG kept as taken is never decoded here: its flat colour is refused by the worker's photo check instead
    # (tests/classifier/test_retake.py). Decoded uploads are refused straight away.
    settings.MELANOMA_KEEP_ORIGINAL_MAX_BYTES = 0
    with pytest.raises(ImageRejected) as caught:
        image_prepare_upload(make())
    assert caught.value.status_code == 400
    assert "one flat colour" in caught.value.message


def test_plain_skin_with_a_small_lesion_is_accepted():
    """The flat-colour check must not refuse a real photo: a small mole on smooth skin has content."""
    pixels = np.full((480, 640, 3), (214, 168, 140), np.uint8)
    pixels[220:260, 300:340] = (92, 58, 44)
    prepared = image_prepare_upload(encode_image(Image.fromarray(pixels), "JPEG", quality=90))
    assert prepared.width == 640
