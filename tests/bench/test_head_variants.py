"""bench.head_variants: the shipped head's row reproduces the card of the run that filled the feature cache, and a
cache that lacks a feature says which command fills it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.head_variants import main
from bench.lesion_features import main as lesion_features

pytest.importorskip("sklearn")


@pytest.mark.slow
def test_the_logistic_row_reproduces_the_cross_source_card(filled_cache, two_sources, tmp_path, capsys):
    cache, card = filled_cache
    capsys.readouterr()

    variants = ["logistic", "no_max", "l2_blocks:0.01", "source_bag", "mlp_bag:2", "pca:8"]
    assert main(["--json", "--feature-cache", cache, *two_sources, *variants]) == 0
    results = json.loads(capsys.readouterr().out)

    assert list(results) == variants
    shipped = results["logistic"]
    for source, figures in card["metrics"]["cross_source"].items():
        for key in ("roc_auc", "sensitivity", "specificity", "threshold"):
            assert shipped["left_out"][source][key] == pytest.approx(figures[key], abs=1e-6), (source, key)
        assert shipped["left_out"][source]["camera_roc_auc"] == pytest.approx(
            card["camera_photos"]["cross_source"][source]["roc_auc"], abs=1e-6
        )
    for source, figures in card["metrics"]["validation_by_source"].items():
        assert shipped["validation"][source] == pytest.approx(figures["roc_auc"], abs=1e-6)
    assert shipped["validation"]["pooled"] == pytest.approx(card["metrics"]["validation"]["roc_auc"], abs=1e-6)
    for name in variants[1:]:
        assert set(results[name]["left_out"]) == {"ham", "isic2017"}
        assert all(0.0 <= figures["roc_auc"] <= 1.0 for figures in results[name]["left_out"].values())
    _assert_set_against_the_first(results)
    for figures in shipped["left_out"].values():  # a threshold set on the source itself does at least as well
        assert figures["specificity_at_target"] >= figures["specificity"] or figures["sensitivity"] < 0.9

    # size_pair averages one head per cache: given the same cache twice, both heads are the shipped one.
    assert main(["--json", "--feature-cache", cache, "--also-cache", f"{cache}:64", *two_sources, "size_pair"]) == 0
    pair = json.loads(capsys.readouterr().out)["size_pair"]
    for source, figures in shipped["left_out"].items():
        assert pair["left_out"][source]["roc_auc"] == pytest.approx(figures["roc_auc"], abs=1e-9)
        assert pair["left_out"][source]["threshold"] == pytest.approx(figures["threshold"], abs=1e-9)
    assert pair["validation"]["pooled"] == pytest.approx(shipped["validation"]["pooled"], abs=1e-9)

    # A lower target sensitivity lets a threshold set on the left-out source refer fewer benign lesions.
    assert main(["--json", "--feature-cache", cache, *two_sources, "--target-sensitivity", "0.5", "logistic"]) == 0
    lenient = json.loads(capsys.readouterr().out)["logistic"]
    for source, figures in shipped["left_out"].items():
        assert lenient["left_out"][source]["specificity_at_target"] >= figures["specificity_at_target"]
        # by a higher threshold, reported beside it
        assert lenient["left_out"][source]["threshold_at_target"] >= figures["threshold_at_target"]
        assert lenient["left_out"][source]["roc_auc"] == pytest.approx(figures["roc_auc"], abs=1e-9)

    # Hand-made lesion measures beside the network's features. With weight 0 the measures' logit adds nothing, so
    # `late:0` is the shipped head's row; `extra` is a head on the measures alone.
    lesions = tmp_path / "lesions.npz"
    assert lesion_features([*two_sources[:4], "--image-size", "64", "--out", str(lesions)]) == 0
    capsys.readouterr()
    assert (
        main(["--json", "--feature-cache", cache, "--extra-features", str(lesions), *two_sources, "late:0", "extra"])
        == 0
    )
    with_measures = json.loads(capsys.readouterr().out)
    for source, figures in shipped["left_out"].items():
        for key in ("roc_auc", "threshold", "camera_roc_auc"):
            assert with_measures["late:0"]["left_out"][source][key] == pytest.approx(figures[key], abs=1e-6)
        assert 0.0 <= with_measures["extra"]["left_out"][source]["roc_auc"] <= 1.0
    # its scores are its own, not the network head's: the thresholds they give differ
    assert [m["threshold"] for m in with_measures["extra"]["left_out"].values()] != pytest.approx(
        [m["threshold"] for m in shipped["left_out"].values()], abs=1e-6
    )

    # A file without a view the recipe trains on names the command that computes it.
    with np.load(lesions) as saved:
        np.savez(
            tmp_path / "partial.npz", **{**saved, "views": saved["views"][:1], "features": saved["features"][:, :1]}
        )
    assert (
        main(["--feature-cache", cache, "--extra-features", str(tmp_path / "partial.npz"), *two_sources, "extra"]) == 2
    )
    error = capsys.readouterr().err
    assert "view)" in error
    assert "python -m bench.lesion_features --data" in error

    # Without a second cache there is nothing to pair: a sentence, not a traceback.
    assert main(["--feature-cache", cache, *two_sources, "size_pair"]) == 2
    assert "size_pair needs --also-cache" in capsys.readouterr().err


def _assert_set_against_the_first(results: dict) -> None:
    """Every left-out AUC comes with its interval, and each variant after the first with its paired difference."""
    first, *others = results.values()
    for figures in first["left_out"].values():
        assert figures["roc_auc_vs_first"] == [0.0, 0.0, 0.0]  # the first against itself
        low, high = figures["roc_auc_ci"]
        assert low <= figures["roc_auc"] <= high
    for result in others:
        for source, figures in result["left_out"].items():
            difference, low, high = figures["roc_auc_vs_first"]
            assert difference == pytest.approx(figures["roc_auc"] - first["left_out"][source]["roc_auc"])
            assert low <= difference <= high


@pytest.mark.parametrize(
    ("arguments", "message"),
    [([], "needs --extra-features"), (["--extra-features", "x.npz"], "not a bench.lesion_features file")],
)
def test_extra_features_must_be_given_and_readable(arguments, message, two_sources, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.npz").write_bytes(b"not numpy")
    assert main(["--feature-cache", str(tmp_path / "features"), *arguments, *two_sources, "late:0.5"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "features").exists()


def test_an_empty_cache_names_the_command_that_fills_it(two_sources, tmp_path, capsys):
    assert main(["--feature-cache", str(tmp_path / "empty"), *two_sources, "logistic"]) == 2
    error = capsys.readouterr().err
    assert "Not in the feature cache:" in error
    assert "python manage.py train_model --data" in error
    assert "--cross-source --feature-cache" in error


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["ridge"], "Unknown variant 'ridge'"),
        (["lda:x"], "must be a number"),
        (["--also-cache", "features", "size_pair"], "give the folder and its input size, as DIR:224"),
    ],
)
def test_an_unknown_variant_is_refused(arguments, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--feature-cache", str(tmp_path), "--data", str(tmp_path), *arguments])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
