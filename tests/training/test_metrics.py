import numpy as np
import pytest
from PIL import Image

from training.metrics import (
    auc_difference,
    choose_threshold,
    compute_metrics,
    confidence_intervals,
    expected_calibration_error,
    format_metrics_table,
    melanomas_needed,
    save_roc_curve,
    wilson_lower_bound,
)

# Four benign, four melanoma; worked out by hand below.
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 1]
SCORES = [0.1, 0.2, 0.6, 0.3, 0.4, 0.7, 0.8, 0.9]


def test_metrics_on_known_arrays():
    metrics = compute_metrics(Y_TRUE, SCORES, threshold=0.5)

    # 16 melanoma/benign pairs; only (0.4 vs 0.6) is ranked wrongly.
    assert metrics["roc_auc"] == pytest.approx(15 / 16)
    # Ranked: 0.9 0.8 0.7 are melanoma (precision 1, 1, 1), 0.6 benign, 0.4 melanoma (precision 4/5).
    assert metrics["pr_auc"] == pytest.approx((1 + 1 + 1 + 4 / 5) / 4)
    assert (metrics["tn"], metrics["fp"], metrics["fn"], metrics["tp"]) == (3, 1, 1, 3)
    assert metrics["sensitivity"] == pytest.approx(0.75)
    assert metrics["specificity"] == pytest.approx(0.75)
    assert metrics["balanced_accuracy"] == pytest.approx(0.75)
    assert metrics["ppv"] == pytest.approx(0.75)
    # Squared errors: .01 .04 .36 .09 | .36 .09 .04 .01 -> 1.0 / 8.
    assert metrics["brier"] == pytest.approx(0.125)
    # One score per bin, each |p - y|: .1 .2 .3 .6 (0.4, melanoma) .6 (0.6, benign) .3 .2 .1 -> 2.4 / 8.
    assert metrics["ece"] == pytest.approx(0.3)
    assert (metrics["n_images"], metrics["n_melanoma"], metrics["threshold"]) == (8, 4, 0.5)


def test_intervals_of_the_known_arrays():
    metrics = compute_metrics(Y_TRUE, SCORES, threshold=0.5, intervals=True)

    # Wilson, two-sided 95 % (z = 1.96), 3 of 4: (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n).
    assert metrics["sensitivity_ci"] == pytest.approx([0.3006, 0.9544], abs=1e-4)
    assert metrics["specificity_ci"] == pytest.approx([0.3006, 0.9544], abs=1e-4)
    low, high = metrics["roc_auc_ci"]
    assert 0.0 <= low <= metrics["roc_auc"] <= high <= 1.0
    assert low < 0.8  # four of each class: the bootstrap must not pretend 15/16 is settled
    # Seeded: the same scores give the same interval.
    assert confidence_intervals(Y_TRUE, SCORES, 0.5) == confidence_intervals(Y_TRUE, SCORES, 0.5)
    assert "roc_auc_ci" not in compute_metrics(Y_TRUE, SCORES, threshold=0.5)  # only when asked: it costs seconds


def test_the_auc_interval_narrows_with_more_images_and_holds_the_auc():
    rng = np.random.default_rng(3)

    def sample(n_melanoma: int, n_benign: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.r_[np.ones(n_melanoma, dtype=int), np.zeros(n_benign, dtype=int)]
        return labels, np.r_[rng.normal(1.2, 1.0, n_melanoma), rng.normal(0.0, 1.0, n_benign)]

    widths = []
    for n_melanoma, n_benign in ((20, 80), (400, 1600)):
        labels, scores = sample(n_melanoma, n_benign)
        metrics = compute_metrics(labels, scores, threshold=0.5, intervals=True)
        low, high = metrics["roc_auc_ci"]
        assert low < metrics["roc_auc"] < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 3  # 20x the images: about sqrt(20) = 4.5x narrower


def test_a_paired_auc_difference_sees_what_two_overlapping_intervals_hide():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    labels = np.r_[np.ones(300, dtype=int), np.zeros(1200, dtype=int)]
    baseline = np.r_[rng.normal(1.2, 1.0, 300), rng.normal(0.0, 1.0, 1200)]
    degraded = baseline + rng.normal(0.0, 0.4, labels.size)  # the same ranking, blurred: a little worse

    difference, low, high = auc_difference(labels, degraded, baseline)
    assert difference == pytest.approx(roc_auc_score(labels, degraded) - roc_auc_score(labels, baseline))
    assert low <= difference <= high < 0  # paired: the loss is clear ...
    separate = [confidence_intervals(labels, scores, 0.5)["roc_auc_ci"] for scores in (degraded, baseline)]
    assert separate[0][1] > separate[1][0]  # ... though the two separate intervals overlap

    assert auc_difference(labels, baseline, baseline) == [0.0, 0.0, 0.0]
    assert auc_difference([1, 0, 0], [0.9, 0.1, 0.2], [0.8, 0.3, 0.1]) is None  # one melanoma: no resampling


def test_intervals_are_none_where_they_cannot_be_had():
    one_melanoma = confidence_intervals([1, 0, 0, 0], [0.9, 0.1, 0.2, 0.3], 0.5)
    assert one_melanoma["roc_auc_ci"] is None  # a class of one cannot be resampled
    assert one_melanoma["sensitivity_ci"] is not None

    benign_only = confidence_intervals([0, 0, 0], [0.1, 0.6, 0.2], 0.5)
    assert benign_only["roc_auc_ci"] is None
    assert benign_only["sensitivity_ci"] is None
    assert benign_only["specificity_ci"] is not None


def test_a_score_equal_to_the_threshold_is_referred():
    metrics = compute_metrics([1, 0], [0.4, 0.39], threshold=0.4)

    assert (metrics["tp"], metrics["tn"]) == (1, 1)


def test_single_class_leaves_undefined_figures_empty():
    metrics = compute_metrics([0, 0, 0], [0.1, 0.6, 0.2], threshold=0.5)

    assert metrics["roc_auc"] is None
    assert metrics["pr_auc"] is None
    assert metrics["sensitivity"] is None
    assert metrics["balanced_accuracy"] is None
    assert metrics["specificity"] == pytest.approx(2 / 3)
    assert "n/a" in format_metrics_table(metrics)


def test_perfectly_calibrated_scores_have_no_calibration_error():
    # In bin [0.2, 0.3) one of five is melanoma at p=0.2; in [0.8, 0.9) four of five at p=0.8.
    y_true = [1, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    scores = [0.2] * 5 + [0.8] * 5

    assert expected_calibration_error(y_true, scores) == pytest.approx(0.0)


# Critical melanoma scores 0.4 / 0.7 / 0.8 / 0.9; the threshold sits halfway to the next lower score.
@pytest.mark.parametrize(("target", "expected"), [(0.9, 0.35), (0.75, 0.65), (0.5, 0.75), (0.25, 0.85), (1.0, 0.35)])
def test_choose_threshold_is_the_highest_meeting_the_target(target, expected):
    assert choose_threshold(Y_TRUE, SCORES, target_sensitivity=target) == pytest.approx(expected)


def test_chosen_threshold_meets_the_target_and_nothing_higher_does():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, size=200)
    scores = np.clip(rng.normal(0.3 + 0.3 * y_true, 0.2), 0, 1)

    threshold = choose_threshold(y_true, scores, target_sensitivity=0.9)

    chosen = compute_metrics(y_true, scores, threshold)
    assert chosen["sensitivity"] >= 0.9
    # The critical score is the lowest melanoma score at or above the threshold: just above it, the target fails.
    critical = min(score for score, label in zip(scores, y_true, strict=True) if label == 1 and score >= threshold)
    assert compute_metrics(y_true, scores, np.nextafter(critical, 2))["sensitivity"] < 0.9
    # Same decisions as thresholding at the critical score itself, with a margin on both sides.
    at_critical = compute_metrics(y_true, scores, critical)
    assert (chosen["tp"], chosen["fp"]) == (at_critical["tp"], at_critical["fp"])
    assert threshold < critical


def test_exact_target_is_not_lost_to_rounding():
    # 0.9 * 10 is 9.000000000000002 in floating point: still nine of ten melanomas, not ten.
    y_true = [1] * 10
    scores = [i / 10 for i in range(1, 11)]

    assert choose_threshold(y_true, scores, target_sensitivity=0.9) == pytest.approx(0.15)


def test_threshold_with_nothing_below_is_the_critical_score():
    assert choose_threshold([1, 1, 0], [0.2, 0.9, 0.5], target_sensitivity=1.0) == pytest.approx(0.2)


def test_choose_threshold_needs_melanoma():
    with pytest.raises(ValueError, match="without any melanoma"):
        choose_threshold([0, 0], [0.1, 0.2])


def test_mismatched_or_bad_inputs():
    with pytest.raises(ValueError, match="2 labels but 3 scores"):
        compute_metrics([0, 1], [0.1, 0.2, 0.3], threshold=0.5)
    with pytest.raises(ValueError, match="No images"):
        compute_metrics([], [], threshold=0.5)
    with pytest.raises(ValueError, match="0 \\(not melanoma\\) or 1"):
        compute_metrics([0, 2], [0.1, 0.2], threshold=0.5)


def test_roc_curve_png(tmp_path):
    path = save_roc_curve(Y_TRUE, SCORES, tmp_path / "plots" / "roc.png", threshold=0.5)

    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (500, 500)


def test_table_shows_the_clinical_figures_and_confusion_matrix():
    table = format_metrics_table(compute_metrics(Y_TRUE, SCORES, threshold=0.5))

    for text in ("ROC AUC", "0.9375", "sensitivity", "specificity", "Brier", "confusion matrix", "actual melanoma"):
        assert text in table
    assert "95 % CI" not in table  # no interval computed, none shown

    with_intervals = format_metrics_table(compute_metrics(Y_TRUE, SCORES, threshold=0.5, intervals=True))
    assert "sensitivity (melanoma caught)" in with_intervals
    assert "0.7500  (95 % CI 0.301-0.954)" in with_intervals


def test_wilson_lower_bound_matches_the_textbook_value():
    # 95 of 99 at one-sided 95 %: (p + z^2/2n - z*sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), z = 1.645
    assert wilson_lower_bound(95, 99, confidence=0.95) == pytest.approx(0.9130, abs=1e-4)
    assert wilson_lower_bound(0, 10, confidence=0.95) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("n_melanoma", "confidence", "expected"),
    [(99, None, 90), (99, 0.95, 95), (10, None, 9), (3, 0.95, 3), (1000, 0.95, 916)],
)
def test_melanomas_needed_for_a_confident_sensitivity(n_melanoma, confidence, expected):
    assert melanomas_needed(n_melanoma, 0.90, confidence) == expected


def test_confident_threshold_is_lower_and_catches_more():
    rng = np.random.default_rng(0)
    y_true = np.r_[np.ones(99, dtype=int), np.zeros(900, dtype=int)]
    scores = np.r_[rng.uniform(0.2, 1.0, 99), rng.uniform(0.0, 0.6, 900)]
    point = choose_threshold(y_true, scores, target_sensitivity=0.9)
    confident = choose_threshold(y_true, scores, target_sensitivity=0.9, confidence=0.95)
    assert confident < point
    assert int((scores[:99] >= point).sum()) == 90
    assert int((scores[:99] >= confident).sum()) == 95


def test_confidence_must_be_a_probability():
    with pytest.raises(ValueError, match="confidence"):
        choose_threshold([1, 0], [0.9, 0.1], confidence=1.5)
