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


def test_simulations_are_the_reported_conditions():
    from classifier.management.commands.evaluate_model import SIMULATION_NAMES

    assert tuple(SIMULATIONS) == SIMULATION_NAMES == ("camera", "camera_far", "camera_glare")
    assert SIMULATIONS["camera"] == CameraConditions(scale=0.55, defocus=1.0)
    assert SIMULATIONS["camera_far"].scale < SIMULATIONS["camera"].scale
    assert SIMULATIONS["camera_glare"] == CameraConditions(glare=0.01)


def _clipped(image: Image.Image) -> np.ndarray:
    return np.asarray(image).min(axis=2) >= 250


def test_glare_adds_clipped_reflections_and_leaves_the_rest_of_the_photo_as_it_was():
    image = _dermoscopic(224)
    plain = camera_like(image, seed=5)
    flashed = camera_like(image, seed=5, conditions=SIMULATIONS["camera_glare"])

    assert not _clipped(plain).any()
    assert 0.005 < _clipped(flashed).mean() < 0.03  # about 1 % of the frame, more on lighter skin
    far_from_it = np.abs(np.asarray(flashed, np.int16) - np.asarray(plain, np.int16)).max(axis=2) <= 3
    assert far_from_it.mean() > 0.8  # reflections, not a brighter photo


def test_the_training_view_has_glare_on_about_half_of_the_photos():
    image = _dermoscopic(224)
    with_glare = [_clipped(random_camera(image, np.random.default_rng(seed))).any() for seed in range(40)]
    assert 10 <= sum(with_glare) <= 30
