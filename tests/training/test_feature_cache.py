"""train_model --feature-cache: features kept on disk are reused only when nothing that made them changed."""

import json
import os
from io import StringIO

import numpy as np
import pytest

from lesion_model.preprocessing import Normalisation
from tests.derm_fixtures import make_ham10000, make_isic2017
from training.feature_cache import FeatureCache, fingerprint

SETTINGS = {
    "image_size": 64,
    "weights": "torchvision",
    "normalisation": Normalisation(name="imagenet_torch", colour_constancy="shades_of_gray"),
    "seed": 0,
    "layers": (("out_relu", "avg"),),
    "centre_fraction": 0.6,
}


def test_a_stored_vector_comes_back_until_its_image_changes(tmp_path):
    image = tmp_path / "lesion.jpg"
    image.write_bytes(b"first version")
    cache = FeatureCache(tmp_path / "cache", "abc")
    vector = np.arange(5, dtype=np.float32)

    assert cache.get(image, "identity") is None
    cache.put(image, "identity", vector)
    np.testing.assert_array_equal(cache.get(image, "identity"), vector)
    assert cache.get(image, "camera") is None  # another view of the same image is another vector
    assert FeatureCache(tmp_path / "cache", "other").get(image, "identity") is None  # another fingerprint
    assert not list((tmp_path / "cache").rglob("*.partial"))  # written whole, then renamed

    image.write_bytes(b"replaced in place")
    os.utime(image, ns=(1, 1))
    assert cache.get(image, "identity") is None


def test_a_missing_image_or_an_unreadable_file_is_a_miss(tmp_path):
    cache = FeatureCache(tmp_path / "cache", "abc")
    cache.put(tmp_path / "gone.jpg", "identity", np.zeros(3))  # nothing to key it on: not stored
    assert cache.get(tmp_path / "gone.jpg", "identity") is None
    assert not (tmp_path / "cache").exists()

    image = tmp_path / "lesion.jpg"
    image.write_bytes(b"x")
    cache.put(image, "identity", np.zeros(3))
    (stored,) = (tmp_path / "cache").rglob("*.npy")
    stored.write_bytes(b"not a numpy file")
    assert cache.get(image, "identity") is None


@pytest.mark.parametrize(
    "change",
    [
        {"image_size": 96},
        {"seed": 1},
        {"weights": "none"},
        {"normalisation": Normalisation(name="imagenet_torch", colour_constancy="none")},
        {"layers": (("out_relu", "max"),)},
        {"centre_fraction": 0.5},
    ],
)
def test_the_fingerprint_changes_with_anything_that_reaches_the_features(change):
    assert fingerprint(**SETTINGS) == fingerprint(**SETTINGS)
    assert fingerprint(**{**SETTINGS, **change}) != fingerprint(**SETTINGS)


@pytest.mark.slow
@pytest.mark.django_db
def test_a_second_run_with_another_c_reuses_every_feature(tmp_path):
    pytest.importorskip("tensorflow")
    from django.core.management import call_command

    ham = make_ham10000(tmp_path / "ham", n_lesions=15, images_per_lesion=1)
    isic = make_isic2017(tmp_path / "isic2017", parts={"train": 12, "valid": 6})
    cache = tmp_path / "features"

    def run(version: str, *extra: str) -> dict:
        call_command(
            "train_model", "--data", str(ham), "--data", str(isic), "--out", str(tmp_path / "models"),
            "--version", version, "--image-size", "64", "--val-fraction", "0.34", "--cross-source",
            "--feature-cache", str(cache), *extra, stdout=StringIO(),
        )  # fmt: skip
        return json.loads((tmp_path / "models" / version / "model_card.json").read_text())

    first = run("first")
    files = {path: path.stat().st_mtime_ns for path in cache.rglob("*.npy")}
    # Every image is scored as it is and as a simulated phone photo; training images add their training views.
    assert len(files) > 33 * 2
    assert first["recipe"]["ms_per_image_view"] > 0

    same = run("same")
    assert {path: path.stat().st_mtime_ns for path in cache.rglob("*.npy")} == files  # nothing extracted again
    assert same["recipe"]["ms_per_image_view"] == 0
    assert same["metrics"] == first["metrics"]
    assert same["threshold"] == first["threshold"]

    other = run("other-c", "--logistic-c", "0.01")
    assert other["recipe"]["logistic_c"] == 0.01
    assert {path: path.stat().st_mtime_ns for path in cache.rglob("*.npy")} == files
    assert other["metrics"]["validation"]["roc_auc"] is not None


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_c_that_is_not_positive_is_refused(value, tmp_path):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--logistic-c must be a positive number"):
        call_command("train_model", "--data", str(tmp_path), "--logistic-c", value, stdout=StringIO())
