"""Scoring images with an exported model folder through LiteRT — no TensorFlow import.

The web process and the Celery worker import this module; TensorFlow must never be loaded there
(it is slow to import, large in memory, and hangs Celery's forked workers).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from training.model_card import TFLITE_FILENAME, ModelCardError, read_model_card
from training.preprocessing import ImageSource, Normalisation, preprocess_image

# Measured by `make bench` on this 2-core host: MobileNetV2 224 takes ~12 ms with 1 thread and ~7 ms with 2,
# and two worker processes x 2 threads kept the same throughput as x 1 (XNNPACK's pool yields when idle).
# So 2 threads halve a single upload's wait at no cost under load. Override per host.
NUM_THREADS_ENV = "MELANOMA_INFERENCE_THREADS"
DEFAULT_NUM_THREADS = 2


def default_num_threads() -> int:
    raw = os.environ.get(NUM_THREADS_ENV, "").strip()
    if not raw:
        return DEFAULT_NUM_THREADS
    try:
        value = int(raw)
    except ValueError as error:
        raise ValueError(f"{NUM_THREADS_ENV} must be a positive integer; got {raw!r}") from error
    if value < 1:
        raise ValueError(f"{NUM_THREADS_ENV} must be a positive integer; got {raw!r}")
    return value


class LiteRTScorer:
    """Loads `model.tflite` + `model_card.json` once; `score_bytes` returns the melanoma probability."""

    def __init__(self, model_dir: Path, *, num_threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 - keeps module import cheap

        self.model_dir = Path(model_dir)
        self.card: dict[str, Any] = read_model_card(self.model_dir)
        try:
            self.input_size = int(self.card["input_size"])
            self.threshold = float(self.card["threshold"])
            self.normalisation = Normalisation.from_card(self.card["normalisation"])
            self.melanoma_index = int(self.card.get("melanoma_index", 1))
        except (TypeError, ValueError) as error:
            raise ModelCardError(f"{self.model_dir}: unusable model card: {error}") from error
        self.version = str(self.card["version"])
        try:
            self._interpreter = Interpreter(
                model_path=str(self.model_dir / TFLITE_FILENAME), num_threads=num_threads or default_num_threads()
            )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelCardError(
                f"{self.model_dir / TFLITE_FILENAME} is not a loadable LiteRT model: {error}"
            ) from error
        input_detail = self._interpreter.get_input_details()[0]
        expected = (1, self.input_size, self.input_size, 3)
        if tuple(input_detail["shape"]) != expected:
            raise ModelCardError(
                f"{self.model_dir}: model input {tuple(input_detail['shape'])} does not match the card's {expected}."
            )
        self._input_index = input_detail["index"]
        self._output_index = self._interpreter.get_output_details()[0]["index"]
        # One interpreter is not re-entrant; a threaded worker pool must not interleave invoke() calls.
        self._lock = threading.Lock()

    def score_array(self, model_input: np.ndarray) -> float:
        """Melanoma probability for one preprocessed HxWx3 float32 input."""
        with self._lock:
            self._interpreter.set_tensor(self._input_index, model_input[None].astype(np.float32, copy=False))
            self._interpreter.invoke()
            output = self._interpreter.get_tensor(self._output_index)[0]
        probability = self._melanoma_probability(output)
        if not np.isfinite(probability):
            # A broken export (weights missing) yields NaN; never turn that into a "low risk" verdict.
            raise ModelCardError(f"{self.model_dir}: the model produced a non-finite score; the export is broken.")
        return float(np.clip(probability, 0.0, 1.0))

    def _melanoma_probability(self, output: np.ndarray) -> float:
        output = np.asarray(output, dtype=np.float64).reshape(-1)
        if output.size == 1:  # a single sigmoid unit
            return float(output[0])
        indices = self.card.get("melanoma_indices") or [self.melanoma_index]
        return float(output[list(indices)].sum())

    def score_bytes(self, image_bytes: bytes) -> float:
        """Melanoma probability for an encoded image; raises training.preprocessing.ImageError if unreadable."""
        return self.score_array(self.preprocess(image_bytes))

    def score_file(self, source: ImageSource) -> float:
        return self.score_array(self.preprocess(source))

    def preprocess(self, source: ImageSource) -> np.ndarray:
        return preprocess_image(source, size=self.input_size, normalisation=self.normalisation)
