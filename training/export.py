"""Keras -> LiteRT (.tflite, float32) export, checked against Keras on real inputs before it is kept."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lesion_model.litert import LiteRTModel
from lesion_model.model_card import TFLITE_FILENAME

# float32 export; LiteRT and Keras differ only by kernel rounding (measured ~1e-6 on probabilities).
MAX_ABS_DIFFERENCE = 1e-4


class ExportError(RuntimeError):
    """The LiteRT export does not reproduce the Keras model."""


def export_tflite(model: Any, model_dir: Path, *, image_size: int) -> Path:
    """Write `model_dir/model.tflite` with a fixed [1, size, size, 3] float32 input (batch 1 serving)."""
    import tensorflow as tf  # noqa: PLC0415 - training only

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    signature = tf.TensorSpec([1, image_size, image_size, 3], tf.float32, name="image")

    # Through a SavedModel: converting a tf.function over a Keras 3 model directly left the weights as
    # uninitialised resource variables (READ_VARIABLE ops) and the file scored NaN for every input.
    with tempfile.TemporaryDirectory(prefix="litert-export-") as saved_model_dir:
        model.export(saved_model_dir, format="tf_saved_model", input_signature=[signature], verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
        converter.optimizations = []  # float32: quantisation would shift the validated threshold
        tflite_bytes = converter.convert()
    target = model_dir / TFLITE_FILENAME
    partial = target.with_suffix(".tflite.partial")
    partial.write_bytes(tflite_bytes)
    partial.replace(target)
    return target


# Outputs that explain or screen a photo rather than score it (training.explain_heads), and their bound.
EXPLANATION_OUTPUTS = frozenset({"heatmap", "familiarity"})
EXPLANATION_TOLERANCE = 1e-2


def verify_tflite(model: Any, tflite_path: Path, inputs: np.ndarray, *, tolerance: float = MAX_ABS_DIFFERENCE) -> float:
    """Largest |Keras - LiteRT| over `inputs` (N x H x W x 3); raises ExportError beyond `tolerance`."""
    litert_model = LiteRTModel(tflite_path, num_threads=1)
    raw = model(inputs.astype(np.float32), training=False)
    # A graph with named outputs (training.explain_heads) is checked output by output.
    keras_outputs = {name: np.asarray(value) for name, value in raw.items()} if isinstance(raw, dict) else None
    worst = 0.0  # over the outputs the verdict rests on; explanation outputs are held to their own bound
    for row, model_input in enumerate(inputs):
        if keras_outputs is None:
            pairs = [("probabilities", litert_model(model_input), np.asarray(raw)[row])]
        else:
            litert_outputs = litert_model.outputs(model_input)
            pairs = [(name, litert_outputs[name], value[row]) for name, value in keras_outputs.items()]
        for name, litert_output, keras_output in pairs:
            if not np.all(np.isfinite(litert_output)):
                # max() and '>' are both False-y for NaN: without this, a NaN export would pass as a perfect match.
                raise ExportError("LiteRT output is not finite (NaN/inf): the weights did not make it into the file.")
            # Relative to the output's range: heatmap and familiarity values reach tens, probabilities 1.
            scale = max(1.0, float(np.max(np.abs(keras_output))))
            difference = float(np.max(np.abs(litert_output - keras_output))) / scale
            # The heatmap and the feature distance only explain and screen; float32 sums over thousands of
            # features (a whitened distance amplifies them) differ more than the probabilities do, harmlessly.
            bound = EXPLANATION_TOLERANCE if name in EXPLANATION_OUTPUTS else tolerance
            if difference > bound:
                raise ExportError(
                    f"LiteRT output {name!r} differs from Keras by {difference:.2e} (> {bound:.0e}); export rejected."
                )
            if name not in EXPLANATION_OUTPUTS:
                worst = max(worst, difference)
    return worst
