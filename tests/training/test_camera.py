"""Simulated phone close-ups (training/camera.py): what evaluate_model --simulate and the camera view use."""

import numpy as np
import pytest
from PIL import Image

from training.camera import SIMULATIONS, CameraConditions, camera_like, random_camera


def _dermoscopic(size: int) -> Image.Image:
    """A dark round lesion filling most of a skin-coloured frame, as a dermatoscope shows it."""
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    pixels = np.empty((size, size, 3), dtype=np.float32)
    pixels[:] = (205, 160, 140)
    pixels[np.hypot(xx, yy) < 0.35] = (70, 45, 35)
    return Image.fromarray(pixels.astype(np.uint8))


def _dark_share(image: Image.Image) -> float:
    return float((np.asarray(image.convert("L")) < 110).mean())


@pytest.mark.parametrize("size", [224, 320])
def test_the_lesion_is_smaller_in_a_wider_frame_of_skin(size):
    image = _dermoscopic(size)
    photo = camera_like(image, seed=1)
    far = camera_like(image, seed=1, conditions=SIMULATIONS["camera_far"])

    assert photo.size == far.size == (size, size)
    assert photo.mode == "RGB"
    # The lesion covers ~38 % of the dermoscopic frame; at 55 % and 40 % of the side, much less.
    assert _dark_share(image) > 0.3
    assert 0.02 < _dark_share(far) < _dark_share(photo) < 0.2
    corners = np.asarray(photo)[: size // 12, : size // 12].reshape(-1, 3).mean(axis=0)
    assert corners[0] > corners[2] + 20  # skin-coloured surroundings, not black or grey


def test_a_seed_gives_the_same_photo_and_another_seed_another():
    image = _dermoscopic(224)
    first = np.asarray(camera_like(image, seed=5))
    assert np.array_equal(first, np.asarray(camera_like(image, seed=5)))
    assert not np.array_equal(first, np.asarray(camera_like(image, seed=6)))


def test_a_non_square_image_keeps_its_size():
    photo = camera_like(Image.new("RGB", (300, 200), (200, 150, 130)), seed=0)
    assert photo.size == (300, 200)


def test_random_camera_draws_conditions_from_the_generator():
    image = _dermoscopic(224)
    one = np.asarray(random_camera(image, np.random.default_rng(3)))
    assert np.array_equal(one, np.asarray(random_camera(image, np.random.default_rng(3))))
    assert not np.array_equal(one, np.asarray(random_camera(image, np.random.default_rng(4))))


def test_simulations_are_the_two_reported_conditions():
    assert set(SIMULATIONS) == {"camera", "camera_far"}
    assert SIMULATIONS["camera"] == CameraConditions(scale=0.55, defocus=1.0)
    assert SIMULATIONS["camera_far"].scale < SIMULATIONS["camera"].scale
