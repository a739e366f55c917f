"""The one LiteRT interpreter wrapper: a `.tflite` file with one image input, run one image at a time.

Serving (`lesion_model.scorer`), training's feature extraction and the export check all run models through
it. No TensorFlow: LiteRT is the runtime the web process and the Celery worker install.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

# Measured by `make bench` on this 2-core host: MobileNetV2 224 takes ~12 ms with 1 thread and ~7 ms with 2, so 2
# threads shorten a single upload's wait. Under load with as many worker processes as cores, 1 thread each is
# better: with the 320 px model and the web on the same 2 cores (bench.load, 32 users, 2026-12-06) 25.1 verdicts/s
# and 47 ms of worker CPU per photo against 21.5 and 56 ms with 2. Set it per host (docs/deploy.md).
NUM_THREADS_ENV = "MELANOMA_INFERENCE_THREADS"
DEFAULT_NUM_THREADS = 2
PRIMARY_OUTPUT = "probabilities"


class ModelFileError(ValueError):
    """The file is not a LiteRT model we can run (missing, corrupt, or not the input shape expected)."""


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


class LiteRTModel:
    """Loads a `.tflite` file once; calling it maps one HxWxC float32 input to its output vector.

    The interpreter holds the file's contents after loading: the file may be deleted afterwards.
    """

    def __init__(
        self,
        tflite_path: Path,
        *,
        num_threads: int | None = None,
        input_shape: tuple[int, ...] | None = None,
    ) -> None:
        """input_shape: the (H, W, C) the caller will feed; a model built for another shape is refused here,
        not at the first image."""
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 - keeps importing this module cheap

        self.path = Path(tflite_path)
        try:
            self._interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads or default_num_threads())
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelFileError(f"{self.path} is not a loadable LiteRT model: {error}") from error
        input_detail = self._interpreter.get_input_details()[0]
        self.input_shape = tuple(int(side) for side in input_detail["shape"][1:])
        if input_shape is not None and self.input_shape != tuple(input_shape):
            raise ModelFileError(
                f"{self.path}: model input {(1, *self.input_shape)} does not match the expected {(1, *input_shape)}."
            )
        self._input_index = input_detail["index"]
        self.output_indices = _named_outputs(self._interpreter)
        # A graph with several outputs names them (training.recipes.logistic); "probabilities" is the primary.
        self._output_index = self.output_indices.get(PRIMARY_OUTPUT, self._interpreter.get_output_details()[0]["index"])
        # One interpreter is not re-entrant; a threaded worker pool must not interleave invoke() calls.
        self._lock = threading.Lock()

    def __call__(self, model_input: np.ndarray) -> np.ndarray:
        """The model's output (float32 vector) for one preprocessed input (no batch axis)."""
        batch = np.asarray(model_input, dtype=np.float32)[None]
        with self._lock:
            self._interpreter.set_tensor(self._input_index, batch)
            self._interpreter.invoke()
            # get_tensor returns a view into the interpreter's buffer: copy before the next invoke() reuses it.
            return np.array(self._interpreter.get_tensor(self._output_index)[0], dtype=np.float32)

    def outputs(self, model_input: np.ndarray) -> dict[str, np.ndarray]:
        """Every named output (batch axis removed) for one input; a single unnamed output is "probabilities"."""
        batch = np.asarray(model_input, dtype=np.float32)[None]
        with self._lock:
            self._interpreter.set_tensor(self._input_index, batch)
            self._interpreter.invoke()
            if not self.output_indices:
                return {PRIMARY_OUTPUT: np.array(self._interpreter.get_tensor(self._output_index)[0], dtype=np.float32)}
            return {
                name: np.array(self._interpreter.get_tensor(index)[0], dtype=np.float32)
                for name, index in self.output_indices.items()
            }


def _named_outputs(interpreter: Any) -> dict[str, int]:
    """Output name -> tensor index from the serving signature; {} for a graph with one output."""
    signatures = interpreter.get_signature_list()
    if len(signatures) != 1:
        return {}
    outputs = next(iter(signatures.values())).get("outputs", [])
    if len(outputs) < 2:
        return {}
    details = interpreter.get_signature_runner().get_output_details()
    return {str(name): int(detail["index"]) for name, detail in details.items()}
