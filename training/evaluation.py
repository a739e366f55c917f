"""Metrics of an exported model folder on a labelled dataset (LiteRT, no TensorFlow; scikit-learn for metrics).

Evaluation goes through the same `MelanomaScorer` and preprocessing the Celery worker uses, so the figures
describe the model as it is served, not the Keras model it was exported from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from lesion_model.model_card import ModelCardError
from lesion_model.scorer import NON_FINITE_SCORE, ImageTransform, MelanomaScorer, ProgressCallback, score_files
from training.camera import SIMULATIONS, camera_like
from training.datasets import BadImage, Dataset, DatasetError, format_problems
from training.metrics import compute_metrics, save_roc_curve
from training.seeds import image_seed


def evaluate_model_dir(
    model_dir: Path,
    dataset: Dataset,
    *,
    threshold: float | None = None,
    roc_curve_path: Path | None = None,
    progress: ProgressCallback | None = None,
    num_threads: int | None = None,
    simulate: str | None = None,
) -> dict[str, Any]:
    """Metrics of the model in `model_dir` on `dataset`, at the card's threshold unless one is given; with
    `simulate` (a name in training.camera.SIMULATIONS), on every image turned into a simulated phone close-up.

    An image that passed the dataset checks but fails to decode fully (a truncated JPEG) is an error:
    leaving it out would quietly change the figures.
    """
    scorer = MelanomaScorer(Path(model_dir), num_threads=num_threads)
    transform = simulation(simulate) if simulate else None
    paths = [sample.path for sample in dataset.samples]
    scored = score_files(scorer, paths, progress=progress, transform=transform)
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
    metrics = compute_metrics(labels, scores, operating_threshold, intervals=True)
    if roc_curve_path is not None and metrics["roc_auc"] is not None:
        save_roc_curve(labels, scores, roc_curve_path, threshold=operating_threshold)
    return {
        **metrics,
        "version": scorer.version,
        "data": {source: str(root) for source, root in dataset.roots.items()},
        "layouts": dict(dataset.layouts),
        "skipped_images": len(dataset.skipped),
        **({"simulate": simulate} if simulate else {}),
    }


def simulation(name: str) -> ImageTransform:
    """The image transform for `evaluate_model --simulate NAME`: each image's own seed (from its path), so a rerun
    and every model see the same simulated photos."""
    if name not in SIMULATIONS:
        raise ValueError(f"Unknown simulation {name!r}: use one of {', '.join(SIMULATIONS)}.")
    conditions = SIMULATIONS[name]

    def transform(path: Path, image: Image.Image) -> Image.Image:
        return camera_like(image, seed=image_seed(path, 0), conditions=conditions)

    return transform


MASK_SUFFIX = "_lesion.png"  # PH2: masks/IMD002_lesion.png for jpeg/IMD002.jpg


def mask_for(image_path: Path, mask_dirs: list[Path]) -> Path | None:
    """The expert lesion mask of an image (`<dir>/<stem>_lesion.png`), or None when no folder has one."""
    for folder in mask_dirs:
        candidate = folder / f"{image_path.stem}{MASK_SUFFIX}"
        if candidate.is_file():
            return candidate
    return None


def evaluate_heatmaps(
    model_dir: Path, dataset: Dataset, mask_dirs: list[Path], *, num_threads: int | None = None
) -> dict[str, Any]:
    """Pointing game and share of heat inside the lesion, over the images that have a mask.

    `heatmap_pointing`: share of images whose hottest point (heatmap brought to the mask's size) lies in the
    lesion; `heatmap_in_lesion`: mean share of the normalised heat inside it; `heatmap_mask_area`: mean share
    of the frame the lesion covers (what a map spread evenly would score on both); the centre baseline: the
    share of images whose middle pixel is lesion.
    """
    import numpy as np  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    from lesion_model.explain import heat_in_mask, pointing_hit  # noqa: PLC0415

    scorer = MelanomaScorer(Path(model_dir), num_threads=num_threads)
    hits: list[bool] = []
    shares: list[float] = []
    areas: list[float] = []
    centres: list[bool] = []
    for sample in dataset.samples:
        mask_path = mask_for(sample.path, mask_dirs)
        if mask_path is None:
            continue
        analysis = scorer.analyse_array(scorer.preprocess(sample.path))
        if analysis.heatmap is None:
            raise ModelCardError(f"{model_dir}: this model has no heatmap output.")
        with Image.open(mask_path) as mask_image:
            mask = np.asarray(mask_image.convert("L")) > 127
        hits.append(pointing_hit(analysis.heatmap, mask))
        shares.append(heat_in_mask(analysis.heatmap, mask))
        areas.append(float(mask.mean()))
        centres.append(bool(mask[mask.shape[0] // 2, mask.shape[1] // 2]))
    if not hits:
        raise DatasetError(f"No image has a mask named <image>{MASK_SUFFIX} in {', '.join(map(str, mask_dirs))}.")
    return {
        "heatmap_images": len(hits),
        "heatmap_pointing": round(float(np.mean(hits)), 4),
        "heatmap_in_lesion": round(float(np.mean(shares)), 4),
        "heatmap_mask_area": round(float(np.mean(areas)), 4),
        # What "always point at the middle" scores: a dataset of centred lesions makes pointing easy.
        "heatmap_pointing_centre_baseline": round(float(np.mean(centres)), 4),
    }
