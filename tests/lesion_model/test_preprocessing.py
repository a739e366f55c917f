"""The one preprocessing path: decoding, orientation, colour modes, errors, normalisation."""

import io

import numpy as np
import pytest
from PIL import Image

from lesion_model.decode import ImageError
from lesion_model.preprocessing import (
    Normalisation,
    load_image,
    preprocess_image,
    shades_of_gray,
    to_model_input,
)


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _lesion_like(width: int = 64, height: int = 48) -> Image.Image:
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.stack([200 - xx, 150 + 0 * xx, 100 + yy], axis=-1).clip(0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="RGB")


def test_exif_orientation_is_applied():
    # Left half red, right half blue; orientation 6 = "rotate 90 degrees clockwise to display".
    pixels = np.zeros((40, 80, 3), dtype=np.uint8)
    pixels[:, :40] = (255, 0, 0)
    pixels[:, 40:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95)

    image = np.asarray(load_image(data, 32), dtype=np.int32)

    assert image.shape == (32, 32, 3)
    # top is red after rotating, bottom is blue
    assert image[2, 16, 0] > 200
    assert image[2, 16, 2] < 60
    assert image[29, 16, 2] > 200
    assert image[29, 16, 0] < 60


@pytest.mark.parametrize(
    "make",
    [
        lambda: _lesion_like().convert("CMYK"),
        lambda: _lesion_like().convert("RGBA"),
        lambda: _lesion_like().convert("L"),
        lambda: _lesion_like().convert("LA"),
        lambda: _lesion_like().convert("P"),
        lambda: Image.fromarray((np.arange(48 * 64).reshape(48, 64) * 20).astype(np.uint16)),
    ],
    ids=["cmyk", "rgba", "grayscale", "grayscale-alpha", "palette", "16-bit"],
)
@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_every_colour_mode_becomes_rgb(make, fmt):
    image = make()
    if fmt == "PNG" and image.mode == "CMYK":
        pytest.skip("PNG cannot hold CMYK")
    loaded = load_image(_encode(image, fmt), 24)
    assert loaded.mode == "RGB"
    assert loaded.size == (24, 24)


def test_16_bit_range_is_scaled_not_clipped():
    ramp = (np.arange(64 * 8).reshape(8, 64) * 128).astype(np.uint16)  # 0..65408
    loaded = np.asarray(load_image(_encode(Image.fromarray(ramp), "PNG"), 8))
    assert loaded.min() < 20
    assert loaded.max() > 230
    # 65535 is white whatever else is in the picture: a dim image stays dim (a stretch would make it white).
    dim = np.full((8, 8), 16384, dtype=np.uint16)
    assert np.asarray(load_image(_encode(Image.fromarray(dim), "PNG"), 8)).max() == 64


def test_cmyk_jpeg_is_read():
    loaded = load_image(_encode(_lesion_like().convert("CMYK"), "JPEG"), 16)
    assert loaded.mode == "RGB"


def test_large_jpeg_decodes_to_requested_size():
    big = Image.fromarray(np.full((1200, 1600, 3), 120, dtype=np.uint8))
    loaded = load_image(_encode(big, "JPEG"), 224)
    assert loaded.size == (224, 224)
    assert abs(int(np.asarray(loaded)[100, 100, 0]) - 120) <= 2


@pytest.mark.parametrize(
    "data",
    [b"", b"this is not an image", _encode(_lesion_like(), "JPEG")[:200]],
    ids=["empty", "text", "truncated-jpeg"],
)
def test_unreadable_images_raise_image_error(data):
    with pytest.raises(ImageError) as error:
        load_image(data, 32)
    assert isinstance(error.value, ValueError)
    assert str(error.value)


def test_missing_file_raises_image_error(tmp_path):
    with pytest.raises(ImageError):
        load_image(tmp_path / "nope.jpg", 32)


def test_torch_normalisation_values():
    white = np.full((2, 2, 3), 255, dtype=np.uint8)
    result = to_model_input(white, "imagenet_torch")
    expected = (1.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert result.dtype == np.float32
    np.testing.assert_allclose(result[0, 0], expected, rtol=1e-6)


def test_shades_of_gray_removes_a_colour_cast():
    rng = np.random.default_rng(0)
    scene = rng.uniform(40, 200, size=(32, 32, 3)).astype(np.float32)
    cast = scene * np.array([1.0, 0.7, 0.5], dtype=np.float32)
    corrected = shades_of_gray(cast)
    reference = shades_of_gray(scene)
    # The illuminant is divided out: up to overall brightness, the cast and the neutral scene end up alike.
    np.testing.assert_allclose(corrected / corrected.mean(), reference / reference.mean(), atol=0.02)
    assert np.abs(cast / cast.mean() - reference / reference.mean()).max() > 0.2


def test_normalisation_round_trips_through_the_card():
    spec = Normalisation(name="imagenet_torch", colour_constancy="shades_of_gray")
    assert Normalisation.from_card(spec.to_card()) == spec
    assert Normalisation.from_card("imagenet_torch") == Normalisation()
    with pytest.raises(ValueError, match="Unknown normalisation 'bogus'"):
        Normalisation.from_card({"name": "bogus"})


def test_bytes_and_path_give_identical_model_input(tmp_path):
    data = _encode(_lesion_like(300, 200), "JPEG", quality=90)
    path = tmp_path / "lesion.jpg"
    path.write_bytes(data)
    spec = Normalisation(colour_constancy="shades_of_gray")
    from_bytes = preprocess_image(data, size=96, normalisation=spec)
    from_path = preprocess_image(path, size=96, normalisation=spec)
    np.testing.assert_array_equal(from_bytes, from_path)
