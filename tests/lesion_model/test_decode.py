"""lesion_model.decode: the one decode path (open by content -> decode -> upright -> RGB -> sRGB)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lesion_model.decode import AnimatedImage, ImageError, ImageTooLarge, decode, decode_image, open_image
from tests.lesion_model.icc import srgb_profile, swapped_primaries_profile

RED = (220, 30, 30)


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _centre(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int32)[image.height // 2, image.width // 2]


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("RGB", "JPEG"), ("RGB", "PNG"), ("RGBA", "PNG"), ("P", "PNG"), ("RGB", "WEBP")],
)
def test_icc_profile_is_converted_to_srgb(mode, fmt):
    image = Image.new("RGB", (40, 30), RED).convert(mode)
    decoded = decode_image(_encode(image, fmt, icc_profile=swapped_primaries_profile()))
    assert decoded.mode == "RGB"
    red, _, blue = _centre(decoded)
    # stored red under a red<->blue profile is blue in sRGB
    assert blue > 180
    assert red < 60


def test_srgb_profile_keeps_the_pixels():
    image = Image.new("RGB", (40, 30), RED)
    decoded = decode_image(_encode(image, "PNG", icc_profile=srgb_profile()))
    np.testing.assert_allclose(_centre(decoded), RED, atol=1)


def test_unreadable_profile_keeps_the_pixels():
    decoded = decode_image(_encode(Image.new("RGB", (40, 30), RED), "PNG", icc_profile=b"not a profile" * 20))
    np.testing.assert_array_equal(_centre(decoded), RED)


def test_float_pixels_are_zero_to_one():
    decoded = decode_image(_encode(Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)), "TIFF"))
    assert tuple(_centre(decoded)) == (128, 128, 128)


def test_jpeg_draft_decodes_at_reduced_scale_never_below_the_size_asked():
    data = _encode(Image.new("RGB", (1600, 1200), RED), "JPEG")
    assert decode(open_image(data), draft_size=(300, 300)).size == (400, 300)  # 1/4: 1/8 would be 150 px high
    assert decode(open_image(data)).size == (1600, 1200)


def test_declared_size_over_the_limit_is_refused_before_decoding():
    data = _encode(Image.new("RGB", (200, 100)), "PNG")
    with pytest.raises(ImageTooLarge) as error:
        open_image(data, max_pixels=10_000)
    assert (error.value.width, error.value.height) == (200, 100)
    assert open_image(data, max_pixels=20_000).size == (200, 100)


def test_animation_is_refused():
    frames = [Image.new("RGB", (32, 32), colour) for colour in (RED, (0, 0, 255))]
    data = _encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    with pytest.raises(AnimatedImage):
        open_image(data)
    assert issubclass(AnimatedImage, ImageError)
    assert issubclass(ImageTooLarge, ImageError)
