"""Model versions in the object store: registering uploads the folder; a worker with no copy on its disk
downloads it once into a cache keyed by SHA-256, verifies it and loads it; a tampered object is refused with a
reason, never loaded."""

from __future__ import annotations

import shutil

import pytest

from classifier.inference import clear_cache
from classifier.models import Prediction
from classifier.services.model_artifacts import VERIFIED_MARKER
from classifier.services.model_versions import model_version_register
from classifier.services.prediction_runs import MODEL_UNAVAILABLE_REASON, prediction_run
from classifier.services.prediction_writes import prediction_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored_model(s3_storage, settings, model_dir, tmp_path):
    """A copy of the test model registered with object storage on, then removed from the disk: the worker can
    only get it from the bucket."""
    settings.MELANOMA_MODEL_CACHE_DIR = tmp_path / "model-cache"
    folder = tmp_path / "model-to-register"
    shutil.copytree(model_dir, folder)
    clear_cache()
    model_version = model_version_register(model_dir=folder, activate=True)
    shutil.rmtree(folder)
    yield model_version
    clear_cache()


def test_registering_uploads_the_folder_with_checksums(stored_model, s3_storage, model_dir):
    artifact = stored_model.artifact
    assert set(artifact["files"]) == {path.name for path in model_dir.iterdir() if path.is_file()}
    assert artifact["prefix"] == f"models/{stored_model.version}/{artifact['sha256']}"
    assert s3_storage.keys("models/") == sorted(f"{artifact['prefix']}/{name}" for name in artifact["files"])


def test_worker_downloads_once_verifies_and_predicts(stored_model, settings, alice, make_upload):
    done = prediction_run(prediction_id=prediction_create(user=alice, upload=make_upload()).pk)
    assert done.status == Prediction.Status.DONE, done.error
    cached = settings.MELANOMA_MODEL_CACHE_DIR / stored_model.artifact["sha256"]
    assert (cached / VERIFIED_MARKER).is_file()
    assert [path.name for path in settings.MELANOMA_MODEL_CACHE_DIR.iterdir()] == [cached.name]  # no leftovers

    # A fresh process (cleared scorer cache) loads from the verified folder without downloading again.
    clear_cache()
    (cached / "model_card.json").touch()
    before = {path.name: path.stat().st_mtime_ns for path in cached.iterdir()}
    again = prediction_run(prediction_id=prediction_create(user=alice, upload=make_upload(seed=1)).pk)
    assert again.status == Prediction.Status.DONE
    assert {path.name: path.stat().st_mtime_ns for path in cached.iterdir()} == before


def test_tampered_object_is_refused_with_a_reason(stored_model, s3_storage, settings, alice, make_upload, caplog):
    key = f"{stored_model.artifact['prefix']}/model.tflite"
    s3_storage.server.client().put_object(Bucket=s3_storage.name, Key=key, Body=b"not the model we registered")
    failed = prediction_run(prediction_id=prediction_create(user=alice, upload=make_upload()).pk)
    assert failed.status == Prediction.Status.FAILED
    assert failed.error == MODEL_UNAVAILABLE_REASON  # the person reads a plain reason...
    assert "SHA-256" in caplog.text  # ...the operator's log says what is wrong
    assert stored_model.version in caplog.text
    assert not (settings.MELANOMA_MODEL_CACHE_DIR / stored_model.artifact["sha256"]).exists()


def test_healthz_checks_the_stored_model(stored_model, s3_storage, client, settings):
    settings.MELANOMA_HEALTHZ_TOKEN = "probe-token"  # the details are for a probe with the token (or staff)
    probe = {"HTTP_AUTHORIZATION": "Bearer probe-token"}
    body = client.get("/healthz", **probe).json()
    assert body["checks"]["model"] == "ok"
    assert body["details"]["model"] == {
        "ok": True,
        "version": stored_model.version,
        "threshold": stored_model.threshold,
        "stored": True,
    }
    s3_storage.server.client().delete_object(
        Bucket=s3_storage.name, Key=f"{stored_model.artifact['prefix']}/model.tflite"
    )
    body = client.get("/healthz", **probe).json()
    assert body["checks"]["model"] == "unavailable"
    assert "missing" in body["details"]["model"]["error"]
