"""Scoring labelled datasets and loose image files with an exported model folder (LiteRT, no TensorFlow).

Evaluation goes through the same `LiteRTScorer` and preprocessing the Celery worker uses, so the figures
describe the model as it is served, not the Keras model it was exported from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from training.datasets import IMAGE_SUFFIXES, BadImage, Dataset, DatasetError, format_problems
from training.metrics import compute_metrics, save_roc_curve
from training.model_card import ModelCardError
from training.preprocessing import ImageError
from training.serving import LiteRTScorer

ProgressCallback = Callable[[int, int], None]  # (images done, images in all)
# Decoding and resizing dominate (a 512 px JPEG decodes slower than MobileNetV2 runs), and Pillow releases
# the GIL while decoding, so a few threads preprocess while the interpreter scores.
PREPROCESS_THREADS = 4
SCORING_CHUNK = 64
NON_FINITE_SCORE = "the model returned a non-finite score (a broken model file, not a bad image)"


@dataclass(frozen=True)
class ScoredFile:
    path: Path
    melanoma_probability: float | None
    error: str | None = None


def score_files(
    scorer: LiteRTScorer, paths: Sequence[Path], *, progress: ProgressCallback | None = None
) -> list[ScoredFile]:
    """Score every file; a file that cannot be read gets its reason instead of a probability."""
    results: list[ScoredFile] = []

    def prepare(path: Path) -> tuple[Path, Any]:
        try:
            return path, scorer.preprocess(path)
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


def _score_one(scorer: LiteRTScorer, path: Path, model_input: Any) -> ScoredFile:
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


def evaluate_model_dir(
    model_dir: Path,
    dataset: Dataset,
    *,
    threshold: float | None = None,
    roc_curve_path: Path | None = None,
    progress: ProgressCallback | None = None,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Metrics of the model in `model_dir` on `dataset`, at the card's threshold unless one is given.

    An image that passed the dataset checks but fails to decode fully (a truncated JPEG) is an error:
    leaving it out would quietly change the figures.
    """
    scorer = LiteRTScorer(Path(model_dir), num_threads=num_threads)
    scored = score_files(scorer, [sample.path for sample in dataset.samples], progress=progress)
    broken = sum(1 for result in scored if result.error == NON_FINITE_SCORE)
    if broken:
        raise ModelCardError(
            f"{model_dir}: the model returned NaN/inf for {broken} of {len(scored)} images; re-export model.tflite."
        )
    failed = [BadImage(str(result.path), result.error or "") for result in scored if result.error is not None]
    if failed:
        raise DatasetError(format_problems(failed, heading=f"{len(failed)} images could not be scored"), failed)
    operating_threshold = scorer.threshold if threshold is None else float(threshold)
    labels = [sample.label for sample in dataset.samples]
    scores = [result.melanoma_probability for result in scored]
    metrics = compute_metrics(labels, scores, operating_threshold)
    if roc_curve_path is not None and metrics["roc_auc"] is not None:
        save_roc_curve(labels, scores, roc_curve_path, threshold=operating_threshold)
    return {
        **metrics,
        "version": scorer.version,
        "data": {source: str(root) for source, root in dataset.roots.items()},
        "layouts": dict(dataset.layouts),
        "skipped_images": len(dataset.skipped),
    }


def collect_image_files(paths: Iterable[Path]) -> tuple[list[Path], list[BadImage]]:
    """Files named directly, plus every image below named folders (recognised by content, not by name).

    Inside a folder, a file that is neither an image by content nor by suffix (a CSV, a README) is left out;
    a file with an image suffix that does not open is kept, so scoring reports it as bad.
    Returns (files to score, paths that do not exist).
    """
    files: list[Path] = []
    missing: list[BadImage] = []
    seen: set[Path] = set()
    for path in paths:
        path = Path(path)
        if path.is_dir():
            candidates = [found for found in _walk_files(path) if _looks_like_image(found)]
        elif path.exists():
            candidates = [path]
        else:
            missing.append(BadImage(str(path), "no such file or folder"))
            continue
        for candidate in candidates:
            if candidate.resolve() not in seen:
                seen.add(candidate.resolve())
                files.append(candidate)
    return files, missing


def _walk_files(folder: Path) -> Iterator[Path]:
    for directory, subdirs, names in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        yield from (Path(directory) / name for name in sorted(names) if not name.startswith("."))


def _looks_like_image(path: Path) -> bool:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with Image.open(path):  # reads the header only
            return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False
