"""The heatmap's normalisation and overlay, the pointing game on synthetic masks, the differential's shape and
the familiarity distance (lesion_model/explain.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lesion_model.explain import (
    DIAGNOSES,
    Familiarity,
    diagnosis_code,
    familiarity_distance,
    heat_in_mask,
    heatmap_png,
    normalise_heatmap,
    pointing_hit,
    smooth,
    top_differential,
)


def _peak(grid: int, y: int, x: int) -> np.ndarray:
    heat = np.zeros((grid, grid), dtype=np.float32) - 3.0  # negative evidence everywhere else
    heat[y, x] = 5.0
    return heat


def test_normalised_heatmap_spans_zero_to_one():
    heat = normalise_heatmap(np.array([[-2.0, 0.0], [1.0, 6.0]]))
    assert heat.min() == 0.0
    assert heat.max() == 1.0
    assert heat[1, 1] == 1.0


def test_flat_or_broken_heatmap_is_all_cold():
    assert not normalise_heatmap(np.full((4, 4), 2.5)).any()
    assert not normalise_heatmap(np.full((4, 4), np.nan)).any()
    with pytest.raises(ValueError, match="2-D"):
        normalise_heatmap(np.zeros((2, 2, 2)))


def test_overlay_png_has_the_asked_size_and_is_transparent_where_cold():
    png = heatmap_png(_peak(28, 3, 20), (224, 224))
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"
        assert image.size == (224, 224)
        alpha = np.asarray(image)[..., 3]
    assert alpha[3 * 8 + 4, 20 * 8 + 4] > 150  # at the peak
    assert alpha[200, 10] == 0  # far from it


def test_pointing_game_on_a_synthetic_mask():
    mask = np.zeros((450, 600), dtype=bool)  # a PH2-like frame, not square: the map is stretched onto it
    mask[100:250, 300:500] = True
    inside = _peak(28, int(175 / 450 * 28), int(400 / 600 * 28))
    outside = _peak(28, 25, 2)
    assert pointing_hit(inside, mask)
    assert not pointing_hit(outside, mask)
    assert heat_in_mask(inside, mask) > 0.9
    assert heat_in_mask(outside, mask) < 0.1
    assert heat_in_mask(np.zeros((28, 28)), mask) == 0.0


def test_differential_is_the_top_three_most_likely_first():
    probabilities = [0.05, 0.6, 0.2, 0.1, 0.02, 0.02, 0.01]
    top = top_differential(probabilities, list(DIAGNOSES))
    assert [item["code"] for item in top] == ["mel", "bkl", "bcc"]
    assert top[0] == {"code": "mel", "label": "Melanoma", "probability": 0.6}
    with pytest.raises(ValueError, match="7 diagnoses"):
        top_differential([0.5, 0.5], list(DIAGNOSES))


def test_other_sources_map_onto_the_seven_diagnoses():
    assert diagnosis_code("seborrheic_keratosis") == "bkl"
    assert diagnosis_code("atypical_nevus") == "nv"
    assert diagnosis_code("MEL") == "mel"
    assert diagnosis_code("scc") is None
    assert diagnosis_code(None) is None


def test_familiarity_distance_and_card_threshold():
    assert familiarity_distance(np.array([3.0, 4.0])) == pytest.approx(5.0)
    familiarity = Familiarity.from_card({"familiarity": {"threshold": 9.5, "components": 32}})
    assert familiarity == Familiarity(threshold=9.5, components=32)
    assert Familiarity.from_card({}) is None


def test_the_frames_rim_is_left_cold():
    """Zero padding makes the outer cells of the feature maps hot whatever the photo shows: they never win."""
    heat = _peak(28, 14, 14)
    heat[0, 0] = 50.0  # a corner hotter than the lesion
    values = normalise_heatmap(heat)
    assert values[0, 0] == 0.0
    assert np.unravel_index(values.argmax(), values.shape) == (14, 14)
    mask = np.zeros((28, 28), dtype=bool)
    mask[10:18, 10:18] = True
    assert pointing_hit(heat, mask)


def test_a_broad_hot_area_beats_a_single_hot_cell():
    """A one-cell spike (a hair, a bubble) is not where the model looked; an area of evidence is."""
    heat = np.zeros((40, 40))
    heat[10, 10] = 6.0
    heat[24:31, 24:31] = 4.0
    values = normalise_heatmap(heat)
    y, x = np.unravel_index(values.argmax(), values.shape)
    assert 24 <= y < 31
    assert 24 <= x < 31
    mask = np.zeros((40, 40), dtype=bool)
    mask[24:31, 24:31] = True
    assert pointing_hit(heat, mask)


def test_smoothing_keeps_a_flat_map_flat_and_the_level_of_a_ramp():
    assert np.allclose(smooth(np.full((40, 40), 3.0)), 3.0)
    ramp = np.tile(np.arange(40, dtype=np.float64), (40, 1))
    smoothed = smooth(ramp)
    assert smoothed.shape == ramp.shape
    assert np.allclose(smoothed[:, 10:30], ramp[:, 10:30])  # a linear slope is its own blur away from the edges
    assert np.array_equal(smooth(np.eye(4)), np.eye(4))  # a 4-cell map is too small to blur
