"""MelanomaScorer and the LiteRT wrapper under it: load a model folder once, score bytes, refuse broken folders
with a clear reason."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from lesion_model.decode import ImageError
from lesion_model.litert import LiteRTModel, ModelFileError, default_num_threads
from lesion_model.model_card import ModelCardError
from lesion_model.preprocessing import preprocess_image
from lesion_model.scorer import MelanomaScorer
from training.model_card import write_model_card


@pytest.fixture(scope="module")
def tflite_file(tiny_model):
    """The suite's tiny softmax model (dark pictures score high), built in a subprocess: serving never imports TF."""
    return tiny_model / "model.tflite"


def _model_dir(tmp_path, tflite_file, **card):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(tflite_file.read_bytes())
    base = {"version": "tiny-1", "input_size": 32, "threshold": 0.5, "normalisation": "imagenet_torch", "metrics": {}}
    write_model_card(folder, {**base, **card})
    return folder


def _jpeg(colour, size=(120, 90)):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_scores_bytes_with_card_settings(tmp_path, tflite_file):
    scorer = MelanomaScorer(_model_dir(tmp_path, tflite_file, melanoma_index=1))
    assert scorer.version == "tiny-1"
    assert scorer.threshold == 0.5
    assert scorer.input_size == 32
    dark = scorer.score_bytes(_jpeg((60, 40, 30)))
    pale = scorer.score_bytes(_jpeg((220, 190, 170)))
    assert 0.0 <= pale < 0.5 < dark <= 1.0


def test_score_matches_the_shared_preprocessing(tmp_path, tflite_file):
    scorer = MelanomaScorer(_model_dir(tmp_path, tflite_file))
    data = _jpeg((180, 120, 90))
    model_input = preprocess_image(data, size=32, normalisation="imagenet_torch")
    np.testing.assert_array_equal(scorer.preprocess(data), model_input)
    assert scorer.score_bytes(data) == scorer.score_array(model_input)


def test_unreadable_image_raises_image_error(tmp_path, tflite_file):
    scorer = MelanomaScorer(_model_dir(tmp_path, tflite_file))
    with pytest.raises(ImageError):
        scorer.score_bytes(b"GIF89a broken")


def test_folder_without_card_is_refused(tmp_path, tflite_file):
    folder = tmp_path / "nocard"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(tflite_file.read_bytes())
    with pytest.raises(ModelCardError, match="model_card.json"):
        MelanomaScorer(folder)


def test_corrupt_tflite_is_refused(tmp_path, tflite_file):
    folder = _model_dir(tmp_path, tflite_file)
    (folder / "model.tflite").write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(ModelCardError, match="LiteRT"):
        MelanomaScorer(folder)


def test_card_input_size_must_match_the_model(tmp_path, tflite_file):
    with pytest.raises(ModelCardError, match="does not match"):
        MelanomaScorer(_model_dir(tmp_path, tflite_file, input_size=64))


def test_unusable_card_values_are_refused(tmp_path, tflite_file):
    folder = _model_dir(tmp_path, tflite_file)
    card = json.loads((folder / "model_card.json").read_text())
    card["normalisation"] = {"name": "unknown"}
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError):
        MelanomaScorer(folder)


def test_thread_setting(monkeypatch):
    monkeypatch.delenv("MELANOMA_INFERENCE_THREADS", raising=False)
    assert default_num_threads() == 2
    monkeypatch.setenv("MELANOMA_INFERENCE_THREADS", "1")
    assert default_num_threads() == 1
    monkeypatch.setenv("MELANOMA_INFERENCE_THREADS", "two")
    with pytest.raises(ValueError, match="MELANOMA_INFERENCE_THREADS"):
        default_num_threads()


def test_litert_model_returns_its_own_output_vector(tflite_file):
    model = LiteRTModel(tflite_file, num_threads=1, input_shape=(32, 32, 3))
    dark = model(np.full((32, 32, 3), -1.5, dtype=np.float32))  # normalised inputs: below the ImageNet mean
    pale = model(np.full((32, 32, 3), 1.5, dtype=np.float32))
    assert dark.shape == (2,)
    assert dark.dtype == np.float32
    # A copy, not a view into the interpreter's buffer that the next call overwrites.
    assert dark[1] > 0.5 > pale[1]
    with pytest.raises(ModelFileError, match="does not match"):
        LiteRTModel(tflite_file, input_shape=(64, 64, 3))
