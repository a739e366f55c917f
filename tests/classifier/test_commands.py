"""The model commands through `call_command`, with a real LiteRT model and generated images."""

import csv
import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from classifier.models import ModelVersion
from classifier.services.model_versions import model_version_register
from tests.derm_fixtures import make_class_folders, make_ham10000, write_image
from training.datasets import load_dataset
from training.splits import grouped_stratified_split

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def tiny_model_template(tiny_model, tmp_path_factory) -> Path:
    """The suite's tiny model, with the validation split a trained model's card records."""
    template = Path(shutil.copytree(tiny_model, tmp_path_factory.mktemp("models") / "tiny-test"))
    card = json.loads((template / "model_card.json").read_text())
    card["split"] = {"seed": 0, "val_fraction": 0.5}
    (template / "model_card.json").write_text(json.dumps(card))
    return template


@pytest.fixture
def tiny_model_dir(tiny_model_template, tmp_path) -> Path:
    """A per-test copy, so a test may break it without touching the others."""
    return Path(shutil.copytree(tiny_model_template, tmp_path / "model"))


@pytest.fixture
def active_model(tiny_model_dir) -> ModelVersion:
    return model_version_register(model_dir=tiny_model_dir, activate=True)


def run(*args: str) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command(*args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


# evaluate_model ---------------------------------------------------------------------------------------------------


def test_evaluate_model_json(active_model, tmp_path):
    data = make_class_folders(tmp_path / "data", classes={"melanoma": 3, "nevus": 5})

    stdout, _ = run("evaluate_model", "--data", str(data), "--json")

    result = json.loads(stdout)
    assert result["version"] == "tiny-test"
    assert (result["n_images"], result["n_melanoma"]) == (8, 3)
    assert result["threshold"] == pytest.approx(0.5)
    # The tiny model scores dark (melanoma) fixture images high and pale ones low.
    assert result["roc_auc"] == pytest.approx(1.0)
    assert result["sensitivity"] == pytest.approx(1.0)
    assert result["specificity"] == pytest.approx(1.0)
    assert (result["tn"], result["fp"], result["fn"], result["tp"]) == (5, 0, 0, 3)
    # With its interval: perfect ranking in every bootstrap draw; 3 of 3 and 5 of 5 only pin down so much.
    assert result["roc_auc_ci"] == pytest.approx([1.0, 1.0])
    assert result["sensitivity_ci"][0] == pytest.approx(0.4385, abs=1e-3)
    assert result["specificity_ci"][0] == pytest.approx(0.5655, abs=1e-3)
    assert result["sensitivity_ci"][1] == result["specificity_ci"][1] == pytest.approx(1.0)


def test_evaluate_model_uses_the_rows_threshold(active_model, tmp_path):
    ModelVersion.objects.filter(pk=active_model.pk).update(threshold=1.0)
    data = make_class_folders(tmp_path / "data", classes={"melanoma": 2, "nevus": 2})

    result = json.loads(run("evaluate_model", "--data", str(data), "--json")[0])

    assert result["threshold"] == 1.0
    assert result["sensitivity"] == 0.0


def test_evaluate_model_table_and_roc_curve(active_model, tmp_path):
    data = make_class_folders(tmp_path / "data", classes={"malignant": 2, "benign": 3})
    roc = tmp_path / "roc.png"

    stdout, _ = run("evaluate_model", "--data", str(data), "--roc-curve", str(roc))

    assert "Model tiny-test on data (class-folders): 5 images, 2 melanoma" in stdout
    for text in ("ROC AUC", "sensitivity", "specificity", "Brier score", "confusion matrix", "(95 % CI"):
        assert text in stdout
    assert roc.read_bytes().startswith(b"\x89PNG")


def test_evaluate_model_simulated_camera_photos(active_model, tmp_path):
    """--simulate scores every image as a phone close-up: the same images, other pixels, so other scores."""
    data = make_class_folders(tmp_path / "data", classes={"melanoma": 3, "nevus": 5})

    plain = json.loads(run("evaluate_model", "--data", str(data), "--json")[0])
    simulated = json.loads(run("evaluate_model", "--data", str(data), "--simulate", "camera", "--json")[0])
    again = json.loads(run("evaluate_model", "--data", str(data), "--simulate", "camera", "--json")[0])

    assert simulated["simulate"] == "camera"
    assert "simulate" not in plain
    assert simulated["n_images"] == plain["n_images"] == 8
    assert simulated["brier"] != plain["brier"]  # the scores changed
    assert again["brier"] == simulated["brier"]  # each image's simulation is seeded by its path
    table, _ = run("evaluate_model", "--data", str(data), "--simulate", "camera_far")
    assert "simulated: camera_far" in table


def test_evaluate_model_simulation_is_never_recorded_as_a_test_figure(active_model, tiny_model_dir, tmp_path):
    data = make_class_folders(tmp_path / "data", classes={"melanoma": 1, "nevus": 1})
    card_before = (tiny_model_dir / "model_card.json").read_text()

    with pytest.raises(CommandError, match="--simulate cannot be combined"):
        run("evaluate_model", "--data", str(data), "--simulate", "camera", "--record-test", "x")
    with pytest.raises(CommandError, match="--simulate cannot be combined"):
        run("evaluate_model", "--data", str(data), "--simulate", "camera", "--masks")
    assert (tiny_model_dir / "model_card.json").read_text() == card_before


def test_evaluate_model_records_the_camera_figures_the_result_page_quotes(active_model, tiny_model_dir, tmp_path):
    data = make_ham10000(tmp_path / "ham", n_lesions=10, images_per_lesion=2)
    args = ("evaluate_model", "--data", str(data), "--split", "val", "--simulate", "camera", "--record-camera")
    with pytest.raises(CommandError, match="no validation figures"):  # the tiny card has none to compare with
        run(*args)
    card = json.loads((tiny_model_dir / "model_card.json").read_text())
    validation = {"roc_auc": 0.91, "sensitivity": 0.95, "specificity": 0.6}
    card["metrics"] = {**card.get("metrics", {}), "validation": validation}
    (tiny_model_dir / "model_card.json").write_text(json.dumps(card))

    with pytest.raises(CommandError, match="--record-camera needs --simulate and --split val"):
        run("evaluate_model", "--data", str(data), "--simulate", "camera", "--record-camera")
    with pytest.raises(CommandError, match="leave out --threshold"):
        run(*args, "--threshold", "0.5")
    assert "camera_photos" not in json.loads((tiny_model_dir / "model_card.json").read_text())

    result = json.loads(run(*args, "--json")[0])

    recorded = json.loads((tiny_model_dir / "model_card.json").read_text())["camera_photos"]
    assert recorded["roc_auc"] == pytest.approx(result["roc_auc"], abs=1e-4)
    assert recorded["sensitivity"] == pytest.approx(result["sensitivity"], abs=1e-4)
    assert recorded["dermoscopic_roc_auc"] == 0.91
    assert recorded["simulation"] == "camera"
    assert "validation split" in recorded["data"]


def test_evaluate_model_named_version(active_model, tiny_model_template, tmp_path):
    other_dir = shutil.copytree(tiny_model_template, tmp_path / "other")
    card = json.loads((other_dir / "model_card.json").read_text())
    (other_dir / "model_card.json").write_text(json.dumps({**card, "version": "other", "threshold": 0.9}))
    model_version_register(model_dir=other_dir)
    data = make_class_folders(tmp_path / "data", classes={"melanoma": 1, "nevus": 1})

    result = json.loads(run("evaluate_model", "--data", str(data), "--version", "other", "--json")[0])

    assert (result["version"], result["threshold"]) == ("other", 0.9)


def test_evaluate_model_validation_split_reproduces_the_grouped_split(active_model, tmp_path):
    data = make_ham10000(tmp_path / "ham", n_lesions=10, images_per_lesion=2)
    _, expected_val = grouped_stratified_split(load_dataset(data).samples, val_fraction=0.5, seed=0)

    # Seed and fraction come from the model card's "split".
    result = json.loads(run("evaluate_model", "--data", str(data), "--split", "val", "--json")[0])

    assert result["split"] == "val"
    assert result["n_images"] == len(expected_val)
    assert result["n_melanoma"] == sum(sample.label for sample in expected_val)


def test_unknown_version_lists_the_known_ones(active_model, tmp_path):
    data = make_class_folders(tmp_path / "data")

    with pytest.raises(CommandError, match=r"Unknown model version 'v9'\. Known versions: .*tiny-test"):
        run("evaluate_model", "--data", str(data), "--version", "v9")


def test_no_active_model(tmp_path):
    ModelVersion.objects.update(is_active=False)
    data = make_class_folders(tmp_path / "data")

    with pytest.raises(CommandError, match="No model is active"):
        run("evaluate_model", "--data", str(data))
    with pytest.raises(CommandError, match="No model is active"):
        run("predict_images", str(data))


def test_model_folder_without_a_card(active_model, tiny_model_dir, tmp_path):
    (tiny_model_dir / "model_card.json").unlink()
    data = make_class_folders(tmp_path / "data")

    with pytest.raises(CommandError, match="tiny-test cannot be used: .* has no model_card.json"):
        run("evaluate_model", "--data", str(data))
    with pytest.raises(CommandError, match="has no model_card.json"):
        run("evaluate_model", "--data", str(data), "--model-dir", str(tiny_model_dir))


def test_evaluate_model_empty_folder(active_model, tmp_path):
    (tmp_path / "empty").mkdir()

    with pytest.raises(CommandError, match="is empty"):
        run("evaluate_model", "--data", str(tmp_path / "empty"))


def test_evaluate_model_unknown_layout(active_model, tmp_path):
    write_image(tmp_path / "loose" / "a.jpg", seed=1)

    with pytest.raises(CommandError, match="(?s)Unknown dataset layout .*HAM10000.*ISIC 2020.*class folders") as error:
        run("evaluate_model", "--data", str(tmp_path / "loose"))
    assert "Traceback" not in str(error.value)


def test_evaluate_model_missing_and_corrupt_images(active_model, tmp_path):
    data = make_ham10000(tmp_path / "ham", n_lesions=6, images_per_lesion=1)
    (data / "HAM10000_images_part_2" / "ISIC_0000010.jpg").unlink()
    (data / "HAM10000_images_part_1" / "ISIC_0000020.jpg").write_bytes(b"not an image")

    with pytest.raises(CommandError) as error:
        run("evaluate_model", "--data", str(data), "--json")
    assert "2 bad images" in str(error.value)
    assert "ISIC_0000010: missing" in str(error.value)
    assert "ISIC_0000020.jpg: unreadable" in str(error.value)

    stdout, stderr = run("evaluate_model", "--data", str(data), "--json", "--skip-bad")
    assert json.loads(stdout)["n_images"] == 4
    assert json.loads(stdout)["skipped_images"] == 2
    assert "Skipped 2 bad images" in stderr


# predict_images ---------------------------------------------------------------------------------------------------


def test_predict_images_files_and_folders_to_csv(active_model, tmp_path):
    folder = make_class_folders(tmp_path / "photos", classes={"melanoma": 2, "nevus": 2})
    (folder / "notes.txt").write_text("not an image, not a candidate")
    no_suffix = write_image(tmp_path / "photo.png", seed=5, melanoma=True).rename(tmp_path / "camera_upload")
    out = tmp_path / "out" / "scores.csv"

    stdout, _ = run("predict_images", str(folder), str(no_suffix), "--csv", str(out))

    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(row["path"]).name for row in rows] == [
        "img_0.png",
        "img_1.png",
        "img_0.png",
        "img_1.png",
        "camera_upload",
    ]
    assert [row["label"] for row in rows] == ["refer", "refer", "low_risk", "low_risk", "refer"]
    assert all(0.0 <= float(row["melanoma_probability"]) <= 1.0 for row in rows)
    assert all(row["error"] == "" for row in rows)
    assert "5 scored (3 refer, 2 low_risk), 0 failed" in stdout


def test_predict_images_reports_bad_files_and_fails(active_model, tmp_path):
    good = write_image(tmp_path / "good.jpg", seed=1)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "scores.csv"

    stdout = StringIO()
    with pytest.raises(CommandError, match="2 of 3 files could not be scored"):
        call_command("predict_images", str(good), str(corrupt), str(tmp_path / "gone.jpg"), csv=str(out), stdout=stdout)

    with out.open() as handle:
        rows = {Path(row["path"]).name: row for row in csv.DictReader(handle)}
    assert rows["good.jpg"]["label"] == "low_risk"
    assert rows["corrupt.jpg"]["label"] == "failed"
    assert rows["corrupt.jpg"]["error"]
    assert rows["gone.jpg"]["error"] == "no such file or folder"
    assert "corrupt.jpg" in stdout.getvalue()
    assert "failed:" in stdout.getvalue()


def test_predict_images_empty_folder(active_model, tmp_path):
    (tmp_path / "empty").mkdir()

    with pytest.raises(CommandError, match="No image files found"):
        run("predict_images", str(tmp_path / "empty"))


def test_validation_split_settings_from_a_trained_models_card(active_model, tiny_model_dir, tmp_path):
    """train() writes the seed under recipe and the fraction in words; --data defaults to the training folders."""
    data = make_ham10000(tmp_path / "ham", n_lesions=10, images_per_lesion=2)
    card_path = tiny_model_dir / "model_card.json"
    card = json.loads(card_path.read_text())
    del card["split"]
    card["recipe"] = {"seed": 3}
    card["data"] = {
        "sources": {"ham": {"folder": str(data), "layout": "ham10000"}},
        "split": "grouped by lesion/patient, stratified, val_fraction 0.5, seed 3",
    }
    card_path.write_text(json.dumps(card))
    _, expected_val = grouped_stratified_split(load_dataset(data).samples, val_fraction=0.5, seed=3)

    result = json.loads(run("evaluate_model", "--split", "val", "--json")[0])

    assert result["n_images"] == len(expected_val)
    assert result["data"] == {"ham": str(data)}


def test_evaluate_model_needs_data(active_model):
    with pytest.raises(CommandError, match="Name a labelled folder with --data"):
        run("evaluate_model")


# train_model ------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_model_end_to_end(tmp_path):
    """Few images, small size, one epoch: the command registers a row whose LiteRT artifact serving can score."""
    from lesion_model.scorer import MelanomaScorer

    data = make_ham10000(tmp_path / "ham", n_lesions=10, images_per_lesion=2)
    out = tmp_path / "models"

    stdout, _ = run(
        "train_model",
        "--data", str(data),
        "--epochs", "1",
        "--image-size", "96",
        "--batch-size", "8",
        "--val-fraction", "0.5",
        "--version", "tiny-e2e",
        "--out", str(out),
        "--activate",
    )  # fmt: skip

    model_version = ModelVersion.objects.get(version="tiny-e2e")
    assert model_version.is_active
    model_dir = out / "tiny-e2e"
    assert Path(model_version.path) == model_dir.resolve()
    card = json.loads((model_dir / "model_card.json").read_text())
    assert model_version.threshold == pytest.approx(card["threshold"])
    assert model_version.metrics["validation"]["n_images"] == 10
    assert "ROC AUC" in stdout
    assert "Registered version tiny-e2e and activated it." in stdout

    scorer = MelanomaScorer(model_dir)
    probability = scorer.score_file(next((data / "HAM10000_images_part_1").glob("*.jpg")))
    assert 0.0 <= probability <= 1.0

    photos = make_class_folders(tmp_path / "photos", classes={"melanoma": 1, "nevus": 1})
    predict_stdout, _ = run("predict_images", str(photos))
    assert "2 scored" in predict_stdout
    assert "0 failed" in predict_stdout


def test_train_model_bad_data_is_a_command_error(tmp_path):
    (tmp_path / "empty").mkdir()
    rows_before = set(ModelVersion.objects.values_list("version", flat=True))  # the shipped model, if any

    with pytest.raises(CommandError, match="is empty"):
        run("train_model", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "models"))
    assert set(ModelVersion.objects.values_list("version", flat=True)) == rows_before
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    ("views", "message"),
    [("identity,sideways", "unknown view sideways"), ("identity,identity", "named twice"), (" , ", "none given")],
)
def test_train_model_bad_views_are_a_command_error(tmp_path, views, message):
    data = make_ham10000(tmp_path / "ham", n_lesions=4, images_per_lesion=1)

    with pytest.raises(CommandError, match=message):
        run("train_model", "--data", str(data), "--views", views, "--out", str(tmp_path / "models"))
    assert not (tmp_path / "models").exists()


# register_models --------------------------------------------------------------------------------------------------


def test_register_models_registers_and_activates_the_shipped_folders(tiny_model_template, tmp_path, settings):
    shipped = tmp_path / "models"
    shutil.copytree(tiny_model_template, shipped / "tiny-test")
    settings.MELANOMA_MODELS_DIR = shipped
    ModelVersion.objects.all().delete()

    stdout, _ = run("register_models")

    assert "Registered tiny-test" in stdout
    assert "Active model: tiny-test" in stdout
    assert list(ModelVersion.objects.filter(is_active=True).values_list("version", flat=True)) == ["tiny-test"]
    run("register_models")  # again, as every `make run` does: nothing doubles
    assert ModelVersion.objects.count() == 1


def test_register_models_keeps_the_active_version_an_admin_chose(active_model, tiny_model_template, tmp_path, settings):
    shipped = tmp_path / "models"
    card = json.loads((tiny_model_template / "model_card.json").read_text())
    shutil.copytree(tiny_model_template, shipped / "newer")
    card.update(version="newer", created="2999-01-01T00:00:00+00:00")
    (shipped / "newer" / "model_card.json").write_text(json.dumps(card))
    settings.MELANOMA_MODELS_DIR = shipped

    stdout, _ = run("register_models")

    assert "Registered newer" in stdout
    assert ModelVersion.objects.get(is_active=True).version == active_model.version


def test_register_models_with_nothing_shipped(tmp_path, settings):
    settings.MELANOMA_MODELS_DIR = tmp_path / "empty"
    ModelVersion.objects.all().delete()

    stdout, _ = run("register_models")

    assert "No model folders under" in stdout
    assert "Active model: none" in stdout


def test_evaluate_model_subset_selects_one_part_of_the_split_column(active_model, tmp_path):
    from tests.derm_fixtures import make_isic2017

    data = make_isic2017(tmp_path / "isic2017", parts={"train": 6, "valid": 3, "test": 5})

    result = json.loads(run("evaluate_model", "--data", str(data), "--subset", "test", "--json")[0])

    assert (result["n_images"], result["subset"]) == (5, "test")
    with pytest.raises(CommandError, match="no image is in that part; the data has test, train, valid"):
        run("evaluate_model", "--data", str(data), "--subset", "holdout")
    ham = make_ham10000(tmp_path / "ham", n_lesions=5, images_per_lesion=1)
    with pytest.raises(CommandError, match="no split column"):
        run("evaluate_model", "--data", str(ham), "--subset", "test")
