"""Issue 10's training machinery without TensorFlow: folder parts, per-source split and weights, the threshold
that holds on every source, calibration and risk levels."""

import math
from pathlib import Path

import numpy as np
import pytest

from lesion_model.calibration import HIGH, LOW, MODERATE, Calibration, RiskLevels, interpret
from tests.derm_fixtures import make_ham10000, make_isic2017
from training.calibration import choose_risk_levels, fit_platt
from training.datasets import DataFolder, DatasetError, load_dataset, load_datasets, select_part
from training.metrics import choose_threshold_by_source
from training.splits import split_by_source
from training.weighting import sample_weights, source_shares

# Folder parts -----------------------------------------------------------------------------------------------------


def test_data_folder_parses_parts_and_leaves_plain_paths_alone(tmp_path):
    assert DataFolder.parse("../shared/derm/isic2017:train,valid") == DataFolder(
        Path("../shared/derm/isic2017"), ("train", "valid")
    )
    assert DataFolder.parse("data/ham10000") == DataFolder(Path("data/ham10000"))
    odd = tmp_path / "a:b"  # an existing folder whose name has a colon stays a path
    odd.mkdir()
    assert DataFolder.parse(str(odd)) == DataFolder(odd)


def test_parts_keep_only_the_named_rows(tmp_path):
    root = make_isic2017(tmp_path / "isic2017", parts={"train": 6, "valid": 3, "test": 3})

    dataset = load_datasets([DataFolder(root, ("train", "valid"))])

    assert len(dataset) == 9
    assert {sample.part for sample in dataset.samples} == {"train", "valid"}
    assert dataset.parts == {"isic2017": ("train", "valid")}
    assert "isic2017:train,valid" in dataset.summary()
    assert {sample.part for sample in load_dataset(root).samples} == {"train", "valid", "test"}


def test_parts_on_a_folder_without_a_split_column_are_refused(tmp_path):
    ham = make_ham10000(tmp_path / "ham", n_lesions=5, images_per_lesion=1)
    with pytest.raises(DatasetError, match="has no split column"):
        load_datasets([DataFolder(ham, ("train",))])


def test_an_unknown_part_is_named(tmp_path):
    root = make_isic2017(tmp_path / "isic2017")
    with pytest.raises(DatasetError, match="no part named val; this folder has test, train, valid"):
        load_datasets([DataFolder(root, ("val",))])


def test_select_part(tmp_path):
    root = make_isic2017(tmp_path / "isic2017", parts={"train": 6, "valid": 3, "test": 4})
    subset = select_part(load_dataset(root), "test")
    assert len(subset) == 4
    assert {sample.part for sample in subset.samples} == {"test"}
    with pytest.raises(DatasetError, match="no image is in that part; the data has test, train, valid"):
        select_part(load_dataset(root), "holdout")
    with pytest.raises(DatasetError, match="no split column"):
        select_part(load_dataset(make_ham10000(tmp_path / "ham", n_lesions=5, images_per_lesion=1)), "test")


# Split and weights ------------------------------------------------------------------------------------------------


def test_split_by_source_uses_a_valid_part_and_splits_the_others_by_lesion(tmp_path):
    ham = make_ham10000(tmp_path / "ham", n_lesions=10, images_per_lesion=2)
    isic = make_isic2017(tmp_path / "isic2017", parts={"train": 6, "valid": 3})
    dataset = load_datasets([ham, isic])

    train, val = split_by_source(dataset.samples, val_fraction=0.2, seed=0)

    isic_val = [sample for sample in val if sample.source == "isic2017"]
    assert len(isic_val) == 3
    assert all(sample.part == "valid" for sample in isic_val)
    assert all(sample.part == "train" for sample in train if sample.source == "isic2017")
    ham_val_groups = {sample.group for sample in val if sample.source == "ham"}
    assert ham_val_groups
    assert not ham_val_groups & {sample.group for sample in train}


def test_sqrt_source_class_weights():
    labels = [0] * 90 + [1] * 10 + [0] * 8 + [1] * 2
    sources = ["big"] * 100 + ["small"] * 10

    weights = sample_weights(labels, sources, "sqrt_source_class")

    assert weights.mean() == pytest.approx(1.0)
    # Total weight of a source proportional to sqrt(size): 10 : sqrt(10).
    assert source_shares(weights, sources)["big"] == pytest.approx(10 / (10 + math.sqrt(10)), abs=1e-3)
    # Classes balanced within each source.
    big_mel = weights[90:100].sum()
    assert big_mel == pytest.approx(weights[:90].sum())
    assert source_shares(sample_weights(labels, sources, "source_class"), sources)["big"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="Unknown source weighting"):
        sample_weights(labels, sources, "equal")


# Threshold --------------------------------------------------------------------------------------------------------


def test_threshold_reaches_the_target_on_every_source():
    rng = np.random.default_rng(0)
    # Source a: melanomas score high; source b: melanomas score lower - a pooled threshold would miss them.
    a_labels = np.array([1] * 50 + [0] * 450)
    a_scores = np.where(a_labels == 1, rng.uniform(0.6, 1.0, 500), rng.uniform(0.0, 0.7, 500))
    b_labels = np.array([1] * 10 + [0] * 40)
    b_scores = np.where(b_labels == 1, rng.uniform(0.2, 0.6, 50), rng.uniform(0.0, 0.4, 50))
    labels = np.concatenate([a_labels, b_labels])
    scores = np.concatenate([a_scores, b_scores])
    sources = ["a"] * 500 + ["b"] * 50

    threshold, candidates = choose_threshold_by_source(labels, scores, sources, target_sensitivity=0.9, confidence=0.95)

    assert threshold == min(candidates.values())
    assert set(candidates) == {"pooled", "a", "b"}
    for source, source_labels, source_scores in (("a", a_labels, a_scores), ("b", b_labels, b_scores)):
        caught = np.mean(source_scores[source_labels == 1] >= threshold)
        assert caught >= 0.9, source


# Calibration and levels -------------------------------------------------------------------------------------------


def _validation(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.uniform(size=2000) < 0.1).astype(int)
    # Balanced-weight scores: inflated, melanomas higher on average.
    scores = 1 / (1 + np.exp(-(rng.normal(0, 1.2, 2000) + 2.0 * labels + 0.5)))
    return labels, scores


def test_calibration_is_monotone_and_stays_in_unit_interval():
    labels, scores = _validation()
    calibration = fit_platt(labels, scores, fitted_on="synthetic")

    grid = np.concatenate([[0.0, 1e-12], np.linspace(0, 1, 1001), [1 - 1e-12, 1.0]])
    probabilities = np.array([calibration.probability(score) for score in np.sort(grid)])
    assert np.all(np.diff(probabilities) >= 0)
    assert probabilities.min() >= 0.0
    assert probabilities.max() <= 1.0
    assert calibration.prevalence == pytest.approx(labels.mean())
    # Calibrated: the mean probability matches the melanoma rate it was fitted on; the raw score does not.
    calibrated = np.array([calibration.probability(score) for score in scores])
    assert calibrated.mean() == pytest.approx(labels.mean(), abs=0.01)
    assert scores.mean() > labels.mean() + 0.2
    assert calibration.score_for(calibration.probability(0.7)) == pytest.approx(0.7, abs=1e-6)
    assert Calibration.from_card(calibration.to_card()) == calibration


def test_a_decreasing_mapping_is_refused():
    with pytest.raises(ValueError, match="do not rise with melanoma"):
        fit_platt([1, 1, 0, 0, 1, 0], [0.1, 0.2, 0.8, 0.9, 0.15, 0.85], fitted_on="x")
    with pytest.raises(ValueError, match="positive slope"):
        Calibration(slope=-1.0, intercept=0.0, prevalence=0.1, fitted_on="x")


def test_levels_follow_the_card_boundaries():
    labels, scores = _validation(1)
    calibration = fit_platt(labels, scores, fitted_on="synthetic")
    threshold = 0.6
    levels = choose_risk_levels(labels, scores, threshold=threshold, calibration=calibration, measured_on="synthetic")
    card = levels.to_card()
    again = RiskLevels.from_card(card)
    assert again == levels
    moderate_from, high_from = card["boundaries"]["moderate_from"], card["boundaries"]["high_from"]
    assert moderate_from == threshold <= high_from
    assert calibration.probability(high_from) == pytest.approx(0.30, abs=1e-6) or high_from == threshold

    for score in (0.0, threshold - 1e-9, threshold, (threshold + high_from) / 2, high_from, 1.0):
        expected = LOW if score < moderate_from else HIGH if score >= high_from else MODERATE
        assert again.level(score) == expected
        result = interpret(score, threshold=threshold, calibration=calibration, levels=again)
        assert result.risk_level == expected
        assert result.melanoma_probability == calibration.probability(score)

    # What each level meant: counts add up; the melanoma share rises with the level.
    measured = card["levels"]
    assert sum(item["images"] for item in measured.values()) == labels.size
    assert sum(item["share_of_melanomas"] for item in measured.values()) == pytest.approx(1.0)
    assert (
        measured["low"]["melanoma_share"] < measured["moderate"]["melanoma_share"] < measured["high"]["melanoma_share"]
    )


def test_without_calibration_there_is_no_probability_and_the_level_comes_from_the_threshold():
    assert interpret(0.2, threshold=0.5, calibration=None, levels=None).risk_level == LOW
    result = interpret(0.9, threshold=0.5, calibration=None, levels=None)
    assert (result.risk_level, result.melanoma_probability, result.score) == (MODERATE, None, 0.9)
