"""The recipe end to end on a tiny generated HAM10000 folder; the artifact loads in the serving path."""

import json

import numpy as np
import pytest

from tests.derm_fixtures import make_ham10000

pytest.importorskip("tensorflow")


def test_augmented_views_differ_but_keep_shape(tmp_path):
    from training.datasets import load_dataset
    from training.train import model_inputs

    samples = load_dataset(make_ham10000(tmp_path / "ham", n_lesions=2, images_per_lesion=1)).samples
    plain = model_inputs(samples, image_size=40, normalisation="imagenet_torch")
    augmented = model_inputs(samples, image_size=40, normalisation="imagenet_torch", rng=np.random.default_rng(0))
    assert augmented.shape == plain.shape
    assert augmented.dtype == np.float32
    assert not np.array_equal(augmented, plain)


@pytest.mark.slow
@pytest.mark.parametrize("head", ["logistic", "finetune"])
def test_tiny_training_run_produces_a_servable_model(tmp_path, head):
    from lesion_model.scorer import MelanomaScorer
    from training.card import ModelCard
    from training.train import TrainConfig, train

    data = make_ham10000(tmp_path / "ham", n_lesions=15, images_per_lesion=1)
    external = make_ham10000(tmp_path / "external", n_lesions=5, images_per_lesion=1, seed=7)
    stages = []
    result = train(
        TrainConfig(
            data_dirs=[data],
            eval_dirs=[external],
            out_dir=tmp_path / "models",
            epochs=1,
            val_fraction=0.34,
            image_size=64,
            batch_size=8,
            views=1,
            head=head,
            colour_constancy="shades_of_gray",
            version="tiny-test",
        ),
        progress=lambda stage, done, total: stages.append(stage),
    )

    assert result.model_dir == tmp_path / "models" / "tiny-test"
    assert {path.name for path in result.model_dir.iterdir()} >= {
        "model.tflite",
        "model_card.json",
        "roc.png",
        "model.keras",
    }
    card = json.loads((result.model_dir / "model_card.json").read_text())
    assert card["version"] == "tiny-test"
    assert card["input_size"] == 64
    if head == "finetune":  # learns the diagnoses
        assert card["class_names"] == ["bcc", "bkl", "mel", "nv"]
        assert card["melanoma_indices"] == [2]
        assert card["recipe"]["epochs"] == 1
    else:  # melanoma vs rest: the image, its colour-constant view, its mirror image, a phone-like photo, a half turn
        assert card["class_names"] == ["not_melanoma", "melanoma"]
        assert card["melanoma_indices"] == [1]
        assert card["recipe"]["training_views"] == [
            "identity", "shades_of_gray", "flip_horizontal", "camera", "rotate_180",
        ]  # fmt: skip
        assert card["recipe"]["centre_fraction"] == 0.4
        # The validation split scored again as simulated phone close-ups, beside its own figures.
        camera = card["camera_photos"]
        assert camera["simulation"] == "camera"
        assert camera["dermoscopic_roc_auc"] == pytest.approx(card["metrics"]["validation"]["roc_auc"], abs=1e-4)
        assert 0.0 <= camera["specificity"] <= 1.0
        assert "cross_source" not in camera  # no --cross-source in this run
    assert card["recipe"]["head"] == head
    assert card["threshold"] == result.threshold
    assert result.card.to_dict() == card
    assert ModelCard.from_dict(card) == result.card
    assert card["data"]["train_images"] + card["data"]["validation_images"] == 15
    assert card["metrics"]["validation"]["n_melanoma"] >= 1
    assert card["metrics"]["external"]["external"]["n_images"] == 5
    assert "CC BY-NC 4.0" in json.dumps(card["licences"]) or card["licences"]["model"]
    assert "not a diagnosis" in card["intended_use"]
    assert card["normalisation"]["colour_constancy"] == "shades_of_gray"
    assert set(stages) >= {"load", "cache", "train", "export", "evaluate"}
    assert result.timings["training_total_s"] > 0

    scorer = MelanomaScorer(result.model_dir)
    probability = scorer.score_file(sorted(data.rglob("*.jpg"))[0])
    assert 0.0 <= probability <= 1.0
    if head == "logistic":  # issue 12: where it looked, the differential, the distance to the training images
        assert card["heatmap"]["output"] == "heatmap"
        assert card["differential"]["codes"] == ["nv", "mel", "bkl", "bcc", "akiec", "vasc", "df"]
        validation = card["differential"]["validation"]
        assert set(validation) == {
            "images", "balanced_accuracy", "recall", "log_loss",
            "melanoma_auc_of_differential", "melanoma_auc_of_melanoma_output",
        }  # fmt: skip
        assert validation["balanced_accuracy"] == pytest.approx(np.mean(list(validation["recall"].values())), abs=1e-3)
        assert validation["melanoma_auc_of_melanoma_output"] == pytest.approx(
            card["metrics"]["validation"]["roc_auc"], abs=1e-4
        )
        assert card["familiarity"]["threshold"] > 0
        analysis = scorer.analyse_array(scorer.preprocess(sorted(data.rglob("*.jpg"))[0]))
        grid = card["heatmap"]["grid"]
        assert analysis.heatmap is not None
        assert analysis.heatmap.shape == (grid, grid)
        assert np.isfinite(analysis.heatmap).all()
        assert analysis.score == pytest.approx(probability, abs=1e-6)
        assert analysis.differential is not None
        assert len(analysis.differential) == 3
        assert analysis.distance is not None
        assert analysis.distance >= 0
