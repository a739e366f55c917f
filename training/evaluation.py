"""Metrics of an exported model folder on a labelled dataset (LiteRT, no TensorFlow; scikit-learn for metrics).

Evaluation goes through the same `MelanomaScorer` and preprocessing the Celery worker uses, so the figures
describe the model as it is served, not the Keras model it was exported from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lesion_model.model_card import ModelCardError
from lesion_model.scorer import NON_FINITE_SCORE, MelanomaScorer, ProgressCallback, score_files
from training.datasets import BadImage, Dataset, DatasetError, format_problems
from training.metrics import compute_metrics, save_roc_curve


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
    scorer = MelanomaScorer(Path(model_dir), num_threads=num_threads)
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
