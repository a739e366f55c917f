"""Scoring images with an exported model folder (`model.tflite` + `model_card.json`): melanoma scores.

`score_*` return the model's raw melanoma score (what the threshold and ROC figures are about);
`interpret` turns one into the calibrated probability and risk level of the card (lesion_model.calibration).

The Celery worker (classifier.inference), `manage.py predict_images` and evaluation all score through
`MelanomaScorer`, so the figures evaluation reports describe the model as it is served.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lesion_model.calibration import Interpretation, calibration_from_card, interpret, risk_levels_from_card
from lesion_model.decode import ImageError, ImageSource
from lesion_model.explain import Familiarity, familiarity_distance, top_differential
from lesion_model.litert import PRIMARY_OUTPUT, LiteRTModel, ModelFileError
from lesion_model.model_card import TFLITE_FILENAME, ModelCardError, read_model_card
from lesion_model.preprocessing import Normalisation, load_image, preprocess_image, to_model_input

ProgressCallback = Callable[[int, int], None]  # (images done, images in all)
# Decoding and resizing dominate (a 512 px JPEG decodes slower than MobileNetV2 runs), and Pillow releases
# the GIL while decoding, so a few threads preprocess while the interpreter scores.
PREPROCESS_THREADS = 4
SCORING_CHUNK = 64
NON_FINITE_SCORE = "the model returned a non-finite score (a broken model file, not a bad image)"


class MelanomaScorer:
    """Loads a model folder once; `score_bytes` / `score_file` return the melanoma probability."""

    def __init__(self, model_dir: Path, *, num_threads: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.card: dict[str, Any] = read_model_card(self.model_dir)
        try:
            self.input_size = int(self.card["input_size"])
            self.threshold = float(self.card["threshold"])
            self.normalisation = Normalisation.from_card(self.card["normalisation"])
            self.melanoma_index = int(self.card.get("melanoma_index", 1))
            self.calibration = calibration_from_card(self.card)
            self.risk_levels = risk_levels_from_card(self.card)
            self.familiarity = Familiarity.from_card(self.card)
        except (TypeError, ValueError, KeyError) as error:
            raise ModelCardError(f"{self.model_dir}: unusable model card: {error}") from error
        self.version = str(self.card["version"])
        try:
            self._model = LiteRTModel(
                self.model_dir / TFLITE_FILENAME,
                num_threads=num_threads,
                input_shape=(self.input_size, self.input_size, 3),
            )
        except ModelFileError as error:
            raise ModelCardError(f"{self.model_dir}: {error}") from error

    def interpret(self, score: float, *, threshold: float | None = None) -> Interpretation:
        """Calibrated probability (None when the card has no calibration) and risk level of a raw score."""
        return interpret(
            score,
            threshold=self.threshold if threshold is None else threshold,
            calibration=self.calibration,
            levels=self.risk_levels,
        )

    def score_array(self, model_input: np.ndarray) -> float:
        """Melanoma probability for one preprocessed HxWx3 float32 input."""
        probability = self._melanoma_probability(self._model(model_input))
        if not np.isfinite(probability):
            # A broken export (weights missing) yields NaN; never turn that into a "low risk" verdict.
            raise ModelCardError(f"{self.model_dir}: the model produced a non-finite score; the export is broken.")
        return float(np.clip(probability, 0.0, 1.0))

    def analyse_array(self, model_input: np.ndarray) -> Analysis:
        """Score, heatmap, differential and feature distance from one run of the graph (None: not in this model)."""
        outputs = self._model.outputs(model_input)
        probability = self._melanoma_probability(outputs[PRIMARY_OUTPUT])
        if not np.isfinite(probability):
            raise ModelCardError(f"{self.model_dir}: the model produced a non-finite score; the export is broken.")
        differential = None
        codes = (self.card.get("differential") or {}).get("codes")
        if "differential" in outputs and codes:
            differential = top_differential(outputs["differential"].tolist(), codes)
        heatmap = outputs.get("heatmap")
        return Analysis(
            score=float(np.clip(probability, 0.0, 1.0)),
            heatmap=None if heatmap is None else np.asarray(heatmap, dtype=np.float32),
            differential=differential,
            distance=familiarity_distance(outputs["familiarity"]) if "familiarity" in outputs else None,
        )

    def _melanoma_probability(self, output: np.ndarray) -> float:
        output = np.asarray(output, dtype=np.float64).reshape(-1)
        if output.size == 1:  # a single sigmoid unit
            return float(output[0])
        indices = self.card.get("melanoma_indices") or [self.melanoma_index]
        return float(output[list(indices)].sum())

    def score_bytes(self, image_bytes: bytes) -> float:
        """Melanoma probability for an encoded image; raises lesion_model.decode.ImageError if unreadable."""
        return self.score_array(self.preprocess(image_bytes))

    def score_file(self, source: ImageSource) -> float:
        return self.score_array(self.preprocess(source))

    def preprocess(self, source: ImageSource) -> np.ndarray:
        return preprocess_image(source, size=self.input_size, normalisation=self.normalisation)


@dataclass(frozen=True)
class Analysis:
    score: float  # raw melanoma score, as score_array returns it
    heatmap: np.ndarray | None  # (G, G) melanoma logit per position (lesion_model.explain)
    differential: list[dict[str, Any]] | None  # top diagnoses: code, label, probability
    distance: float | None  # Mahalanobis distance of the features to the training images

    def unfamiliar(self, familiarity: Familiarity | None) -> bool:
        return familiarity is not None and self.distance is not None and self.distance > familiarity.threshold


@dataclass(frozen=True)
class ScoredFile:
    path: Path
    melanoma_probability: float | None
    error: str | None = None


# Changes a decoded image (model-size square, RGB) before scoring: evaluation's simulated conditions.
ImageTransform = Callable[[Path, Image.Image], Image.Image]


def score_files(
    scorer: MelanomaScorer,
    paths: Sequence[Path],
    *,
    progress: ProgressCallback | None = None,
    transform: ImageTransform | None = None,
) -> list[ScoredFile]:
    """Score every file; a file that cannot be read gets its reason instead of a probability. With `transform`,
    each image is decoded at the model's size, transformed, then scored."""
    results: list[ScoredFile] = []

    def prepare(path: Path) -> tuple[Path, Any]:
        try:
            if transform is None:
                return path, scorer.preprocess(path)
            image = transform(path, load_image(path, scorer.input_size))
            return path, to_model_input(image, scorer.normalisation)
        except (ImageError, OSError) as error:
            return path, error

    with ThreadPoolExecutor(max_workers=PREPROCESS_THREADS) as pool:
        # Chunks bound memory: Executor.map submits everything at once, and 6,000 preprocessed 224 px inputs
        # would hold 3.6 GB if preprocessing outran the interpreter.
        for start in range(0, len(paths), SCORING_CHUNK):
            for path, model_input in pool.map(prepare, paths[start : start + SCORING_CHUNK]):
                results.append(_score_one(scorer, path, model_input))
                if progress is not None:
                    progress(len(results), len(paths))
    return results


def _score_one(scorer: MelanomaScorer, path: Path, model_input: Any) -> ScoredFile:
    if isinstance(model_input, Exception):
        return ScoredFile(path=path, melanoma_probability=None, error=_reason(model_input))
    probability = scorer.score_array(model_input)
    if not math.isfinite(probability):
        return ScoredFile(path=path, melanoma_probability=None, error=NON_FINITE_SCORE)
    return ScoredFile(path=path, melanoma_probability=probability)


def _reason(error: Exception) -> str:
    if isinstance(error, OSError) and not isinstance(error, ImageError):
        return f"cannot read the file: {error.strerror or error}"
    return str(error)
