"""bench.finetune_probe: the fold is train_model's cross-source fold, the left-out source is never trained on, only
the layers asked for are trained, and a run prints one line of figures per epoch. No AUC is asserted beyond its
range: the figures that matter come from the real data (docs/model.md)."""

from __future__ import annotations

import json
import math

import pytest

from bench.finetune_probe import build_network, fold_for, main, train_from
from tests.derm_fixtures import make_ham10000, make_isic2017
from training.datasets import DataFolder, load_datasets


@pytest.fixture
def two_sources(tmp_path):
    ham = make_ham10000(tmp_path / "ham", n_lesions=15, images_per_lesion=1)
    isic = make_isic2017(tmp_path / "isic2017", parts={"train": 12, "valid": 6, "test": 6})
    return ["--data", str(ham), "--data", f"{isic}:train,valid", "--val-fraction", "0.34"]


def test_the_fold_keeps_the_left_out_source_out_of_training(two_sources):
    folders = [DataFolder.parse(text) for text in two_sources[1:4:2]]
    samples = load_datasets(folders).samples

    fold = fold_for(samples, "isic2017", val_fraction=0.34, seed=0)

    assert {sample.source for sample in fold.held} == {"isic2017"}
    assert len(fold.held) == 18  # train + valid; the test part was not asked for
    assert {sample.part for sample in fold.held} == {"train", "valid"}
    assert {sample.source for sample in fold.train + fold.val} == {"ham"}
    assert len(fold.train) + len(fold.val) == 15
    with pytest.raises(ValueError, match=r"No source named 'isic2018'.*the sources are ham, isic2017"):
        fold_for(samples, "isic2018", val_fraction=0.34, seed=0)


def test_only_the_layers_from_the_first_trainable_one_up_are_trained():
    pytest.importorskip("tensorflow")
    from keras import layers

    network = build_network(image_size=64, weights="none")
    assert {layer.name for layer in network.layers if layer.trainable and layer.weights} == {"melanoma_logit"}

    train_from(network, "block_15")

    names = [layer.name for layer in network.layers]
    first = next(index for index, name in enumerate(names) if name.startswith("block_15"))
    trainable = {layer.name for layer in network.layers if layer.trainable and layer.weights}
    assert "melanoma_logit" in trainable
    assert "block_15_expand" in trainable
    assert not any(layer.trainable for layer in network.layers[:first] if layer.weights)
    assert not any(layer.trainable for layer in network.layers if isinstance(layer, layers.BatchNormalization))
    with pytest.raises(ValueError, match="No backbone layer starts with 'block_99'"):
        train_from(network, "block_99")


@pytest.mark.slow
def test_a_run_prints_one_line_of_figures_per_epoch(two_sources, capsys):
    pytest.importorskip("tensorflow")
    arguments = [*two_sources, "--left-out", "isic2017", "--image-size", "32", "--weights", "none"]

    assert main([*arguments, "--head-epochs", "1", "--epochs", "2", "--batch-size", "4"]) == 0

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert [row["trained"] for row in rows] == ["head", "from block_6", "from block_6"]
    for row in rows:
        assert math.isfinite(row["loss"])
        assert row["seconds"] > 0
        assert list(row["left_out"]) == ["isic2017"]
        assert 0.0 <= row["left_out"]["isic2017"] <= 1.0
        assert set(row["validation"]) == {"ham", "pooled"}


@pytest.mark.slow
def test_the_shipped_head_is_fitted_on_the_backbone_as_it_stands(two_sources, capsys):
    pytest.importorskip("tensorflow")
    pytest.importorskip("sklearn")
    arguments = [*two_sources, "--left-out", "isic2017", "--image-size", "64", "--weights", "none", "--shipped-head"]

    assert main([*arguments, "--epochs", "0"]) == 0  # the ImageNet (here: random) backbone, as the card's fold
    control = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main([*arguments, "--epochs", "1", "--batch-size", "4"]) == 0
    tuned = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert [row["trained"] for row in control] == ["shipped head on this backbone"]
    assert [row["trained"] for row in tuned] == ["from block_6", "shipped head on this backbone"]
    for row in (control[0], tuned[1]):
        assert 0.0 <= row["left_out"]["isic2017"] <= 1.0
        assert set(row["validation"]) == {"ham", "pooled"}


@pytest.mark.slow
def test_the_shipped_head_sees_the_backbone_it_is_given(two_sources):
    pytest.importorskip("tensorflow")
    pytest.importorskip("sklearn")
    import numpy as np

    from bench.finetune_probe import shipped_head_scores
    from training.recipes.base import model_inputs
    from training.train import TrainConfig, serving_normalisation

    folders = [DataFolder.parse(text) for text in two_sources[1:4:2]]
    fold = fold_for(load_datasets(folders).samples, "isic2017", val_fraction=0.34, seed=0)
    config = TrainConfig(data_dirs=[], image_size=64, weights="none", feature_views=("identity", "flip_horizontal"))
    normalisation = serving_normalisation(config)
    check_inputs = model_inputs(fold.val[:2], image_size=64, normalisation=normalisation)
    weights = np.ones(len(fold.train))
    network = build_network(image_size=64, weights="none")

    before = shipped_head_scores(network, fold, config, weights, check_inputs)
    rng = np.random.default_rng(0)
    layer = network.get_layer("block_3_expand")  # below every pooled layer: fine-tuning moves weights like this
    layer.set_weights([w + rng.normal(0.0, w.std(), w.shape) for w in layer.get_weights()])
    after = shipped_head_scores(network, fold, config, weights, check_inputs)

    assert [scores.shape for scores in before] == [(len(fold.val),), (len(fold.held),)]
    assert all(np.all((scores >= 0.0) & (scores <= 1.0)) for scores in before + after)
    assert not np.allclose(before[1], after[1])


def test_a_source_that_is_not_in_the_data_is_a_clear_error(two_sources, capsys):
    pytest.importorskip("tensorflow")

    assert main([*two_sources, "--left-out", "ph2", "--image-size", "32", "--weights", "none"]) == 2

    assert "No source named 'ph2' in --data: the sources are ham, isic2017." in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--epochs", "-1"], "--epochs and --head-epochs must be 0 or more"),
        (["--batch-size", "0"], "--batch-size at least 1"),
        (["--image-size", "16", "--shipped-head", "--epochs", "0"], "--image-size at least 32"),
        (["--epochs", "0"], "Nothing to do: give --epochs or --head-epochs, or --shipped-head for the control."),
    ],
)
def test_bad_numbers_are_refused_before_any_data_is_read(arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", "/nowhere", "--left-out", "x", *arguments])

    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_layer_name_that_is_not_in_the_backbone_is_a_clear_error(two_sources, capsys):
    pytest.importorskip("tensorflow")

    arguments = [*two_sources, "--left-out", "isic2017", "--image-size", "32", "--weights", "none"]
    assert main([*arguments, "--first-trainable", "block_99"]) == 2

    assert "No backbone layer starts with 'block_99'" in capsys.readouterr().err
