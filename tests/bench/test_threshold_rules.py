"""bench.threshold_rules: its `validation` rule is the shipped one (it reproduces the card of the run that filled the
cache), the cross-fitted rule reads every training image's out-of-fold score, and bad arguments are refused."""

from __future__ import annotations

import json

import pytest

from bench.threshold_rules import main

pytest.importorskip("sklearn")


@pytest.mark.slow
def test_the_validation_rule_reproduces_the_card_and_cross_fitting_reads_every_image(filled_cache, two_sources, capsys):
    cache, card = filled_cache
    capsys.readouterr()

    assert main(["--feature-cache", cache, *two_sources, "--folds", "2", "--draws", "30"]) == 0
    result = json.loads(capsys.readouterr().out)

    shipped = result["final"]["validation"]
    assert shipped["threshold"] == pytest.approx(card["threshold"], abs=1e-4)
    assert shipped["candidates"] == pytest.approx(card["threshold_candidates"], abs=1e-4)
    assert shipped["validation"]["pooled"]["sensitivity"] == pytest.approx(
        card["metrics"]["validation"]["sensitivity"], abs=1e-4
    )
    crossed = result["final"]["cross_fit"]
    assert set(crossed["candidates"]) == {"pooled", "ham", "isic2017"}
    assert crossed["threshold"] == pytest.approx(min(crossed["candidates"].values()), abs=1e-4)
    for source, figures in card["metrics"]["cross_source"].items():
        assert result["left_out"][source]["validation"]["threshold"] == pytest.approx(figures["threshold"], abs=1e-4)
        assert result["left_out"][source]["validation"]["sensitivity"] == pytest.approx(
            figures["sensitivity"], abs=1e-4
        )
        assert 0.0 <= result["left_out"][source]["cross_fit"]["specificity"] <= 1.0

    # A lower bound can only lower a source's candidate, so the bound rule refers at least as much.
    bound = result["final"]["cross_fit_bound"]
    assert bound["threshold"] <= crossed["threshold"] + 1e-9
    assert bound["candidates"]["pooled"] == pytest.approx(crossed["candidates"]["pooled"])

    # ISIC 2017: chosen on its `valid` part's size (6), then on all 18 images, point estimate and lower bound.
    draws = result["resampled"]["isic2017"]
    assert [(draw["size"], draw["bound"]) for draw in draws] == [(6, False), (18, False), (18, True)]
    assert draws[2]["sensitivity"]["mean"] >= draws[1]["sensitivity"]["mean"]
    for draws in result["resampled"].values():
        for draw in draws:
            for key in ("sensitivity", "specificity"):
                assert draw[key]["p5"] <= draw[key]["mean"] <= draw[key]["p95"]
    assert set(result["cross_fitted_auc"]) == {"ham", "isic2017", "pooled"}
    assert all(0.0 <= auc <= 1.0 for auc in result["cross_fitted_auc"].values())
    assert result["drift"]["median_abs_logit_shift"] >= 0.0


@pytest.mark.parametrize(
    "argument", [["--folds", "1"], ["--draws", "0"], ["--logistic-c", "0"], ["--source-weighting", "none"]]
)
def test_bad_arguments_are_refused_before_any_data_is_read(argument, tmp_path, capsys):
    with pytest.raises(SystemExit) as refused:
        main(["--feature-cache", str(tmp_path), "--data", str(tmp_path / "missing"), *argument])
    assert refused.value.code == 2
    assert argument[0] in capsys.readouterr().err


def test_an_empty_cache_names_the_command_that_fills_it(two_sources, tmp_path, capsys):
    assert main(["--feature-cache", str(tmp_path / "empty"), *two_sources]) == 2
    error = capsys.readouterr().err
    assert "Not in the feature cache:" in error
    assert "--val-fraction 0.34 --cross-source --feature-cache" in error
    assert error.rstrip().endswith("then run this again.")
