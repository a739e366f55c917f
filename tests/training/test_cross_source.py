"""Issue 10 end to end on tiny generated data: cross-source mode, evaluate_model --subset, and resuming an
interrupted fine-tuning run."""

import json

import numpy as np
import pytest

from tests.derm_fixtures import make_ham10000, make_isic2017

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.slow


@pytest.fixture
def two_sources(tmp_path):
    ham = make_ham10000(tmp_path / "ham", n_lesions=15, images_per_lesion=1)
    isic = make_isic2017(tmp_path / "isic2017", parts={"train": 12, "valid": 6, "test": 6})
    return ham, isic


@pytest.mark.django_db
def test_cross_source_training_and_test_subset(two_sources, tmp_path, capsys):
    from io import StringIO

    from django.core.management import call_command

    ham, isic = two_sources
    out = StringIO()
    call_command(
        "train_model", "--data", str(ham), "--data", f"{isic}:train,valid", "--out", str(tmp_path / "models"),
        "--version", "tiny-multi", "--image-size", "64", "--val-fraction", "0.34", "--cross-source", "--activate",
        stdout=out,
    )  # fmt: skip
    printed = out.getvalue()
    assert "Cross-source" in printed
    assert "isic2017" in printed
    model_dir = tmp_path / "models" / "tiny-multi"
    card = json.loads((model_dir / "model_card.json").read_text())

    # The isic2017 test part was never read for training.
    assert card["data"]["sources"]["isic2017"]["parts"] == ["train", "valid"]
    assert card["data"]["sources"]["isic2017"]["images"] == 18
    assert card["data"]["source_weighting"] == "sqrt_source_class"
    # Validation: isic2017's own valid part, ham's lesion-grouped share.
    assert card["metrics"]["validation_by_source"]["isic2017"]["n_images"] == 6
    # Each source left out: scored on all of its (given) images.
    cross = card["metrics"]["cross_source"]
    assert set(cross) == {"ham", "isic2017"}
    assert (cross["ham"]["n_images"], cross["isic2017"]["n_images"]) == (15, 18)
    assert all(0.0 <= cross[name]["roc_auc"] <= 1.0 for name in cross)
    # The differential is measured on each left-out source too, beside the melanoma output on the same images.
    differential = card["differential"]["cross_source"]
    assert set(differential) == {"ham", "isic2017"}
    for name, figures in differential.items():
        assert figures["images"] == cross[name]["n_images"]
        assert set(figures["recall"]) <= set(card["differential"]["codes"])
        assert figures["balanced_accuracy"] == pytest.approx(np.mean(list(figures["recall"].values())), abs=1e-3)
        assert figures["melanoma_auc_of_melanoma_output"] == pytest.approx(cross[name]["roc_auc"], abs=1e-4)
    # ... and as simulated phone close-ups, at the fold's threshold like the row above.
    camera = card["camera_photos"]
    assert set(camera["cross_source"]) == {"ham", "isic2017"}
    for name, figures in camera["cross_source"].items():
        assert figures["n_images"] == cross[name]["n_images"]
        assert figures["threshold"] == pytest.approx(cross[name]["threshold"])
        assert figures["brier"] != cross[name]["brier"]  # other pixels, other scores
    assert "every validation source" in card["threshold_rule"]
    assert card["calibration"]["method"] == "platt"
    assert 0 < card["calibration"]["prevalence"] < 1
    assert card["risk_levels"]["boundaries"]["moderate_from"] == card["threshold"]
    assert (model_dir / "reliability.png").stat().st_size > 0
    assert (model_dir / "roc.png").is_file()

    out = StringIO()
    call_command(
        "evaluate_model", "--data", str(isic), "--subset", "test", "--json", "--record-test", "isic2017-test",
        stdout=out,
    )  # fmt: skip
    result = json.loads(out.getvalue())
    assert (result["n_images"], result["subset"]) == (6, "test")
    recorded = json.loads((model_dir / "model_card.json").read_text())["metrics"]["test"]["isic2017-test"]
    assert recorded["n_images"] == 6
    assert recorded["roc_auc"] == result["roc_auc"]
    # A figure on 6 images is recorded with its interval, which says how little it settles.
    assert recorded["sensitivity_ci"] == result["sensitivity_ci"]
    assert recorded["sensitivity_ci"][1] - recorded["sensitivity_ci"][0] > 0.3
    for name, figures in cross.items():  # and so is every left-out source's row of the card
        low, high = figures["sensitivity_ci"]
        assert low <= figures["sensitivity"] <= high, name

    from lesion_model.scorer import MelanomaScorer

    scorer = MelanomaScorer(model_dir)
    score = scorer.score_file(sorted((isic / "jpeg").glob("*.jpg"))[0])
    interpretation = scorer.interpret(score)
    assert 0.0 <= interpretation.melanoma_probability <= 1.0
    assert interpretation.risk_level in {"low", "moderate", "high"}


def test_cross_source_needs_two_sources(tmp_path):
    from training.train import TrainConfig, train

    ham = make_ham10000(tmp_path / "ham", n_lesions=10, images_per_lesion=1)
    with pytest.raises(ValueError, match="at least two data folders"):
        train(TrainConfig(data_dirs=[ham], out_dir=tmp_path / "m", image_size=64, cross_source=True))


class Interrupted(Exception):
    pass


def test_finetune_resumes_after_an_interrupted_epoch(tmp_path):
    from training.recipes.finetune import CHECKPOINT_STATE
    from training.train import TrainConfig, train

    data = make_ham10000(tmp_path / "ham", n_lesions=15, images_per_lesion=1)

    def config(out: str, **overrides) -> TrainConfig:
        return TrainConfig(
            data_dirs=[data], out_dir=tmp_path / out, version="ft", head="finetune", epochs=3, batch_size=4,
            image_size=64, val_fraction=0.34, views=1, save_keras=False, **overrides,
        )  # fmt: skip

    reference = train(config("whole"))

    steps = []

    def interrupt_in_second_epoch(stage: str, done: int, total: int) -> None:
        if stage == "train":
            steps.append(done)
            if done > total // 3 + 1:  # an epoch is total // 3 steps: this is inside the second one
                raise Interrupted

    with pytest.raises(Interrupted):
        train(config("broken"), progress=interrupt_in_second_epoch)
    checkpoint = tmp_path / "broken" / "ft" / "checkpoint"
    assert json.loads((checkpoint / CHECKPOINT_STATE).read_text())["epoch"] == 1

    resumed_steps = []
    resumed = train(
        config("broken", resume=True), progress=lambda s, done, total: resumed_steps.append(done) if s == "train" else 0
    )

    assert resumed.card.recipe["epochs_run"] == 3
    history = json.loads((resumed.model_dir / "training_history.json").read_text())
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert min(resumed_steps) > max(resumed_steps) // 3  # epoch 1 was not trained again
    assert not checkpoint.exists()  # cleaned up once finished
    # Same end state as the run that was never interrupted.
    assert resumed.card.threshold == pytest.approx(reference.card.threshold, abs=1e-4)
    assert resumed.card.metrics.validation.roc_auc == pytest.approx(reference.card.metrics.validation.roc_auc)
    assert np.allclose(
        [record["loss"] for record in history],
        [record["loss"] for record in json.loads((reference.model_dir / "training_history.json").read_text())],
        atol=1e-4,
    )


def test_resume_without_a_version_or_checkpoint_is_refused(tmp_path):
    from training.train import TrainConfig, train

    data = make_ham10000(tmp_path / "ham", n_lesions=10, images_per_lesion=1)
    with pytest.raises(ValueError, match="needs the version"):
        train(TrainConfig(data_dirs=[data], head="finetune", resume=True))
