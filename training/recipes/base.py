"""The recipe interface: what every recipe receives, what it returns, and the input path they share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from lesion_model.preprocessing import Normalisation, load_image, to_model_input
from training.augment import AugmentConfig, augment
from training.datasets import Sample

if TYPE_CHECKING:  # train.py imports the recipes; the config is only an annotation here
    from training.train import TrainConfig

# (stage, done, total): stages are "load", "cross-source", "cache", "train", "export", "evaluate".
ProgressCallback = Callable[[str, int, int], None]

BINARY_CLASSES = ("not_melanoma", "melanoma")
PREPROCESS_THREADS = 2


@dataclass
class FitInputs:
    """What every recipe starts from: the split, the classes, and where progress and timings go."""

    config: TrainConfig
    train_samples: Sequence[Sample]
    val_samples: Sequence[Sample]
    val_labels: np.ndarray
    class_names: list[str]
    melanoma_indices: list[int]
    normalisation: Normalisation
    rng: np.random.Generator
    progress: ProgressCallback | None
    timings: dict[str, float]  # the recipe adds "cache_s" and "train_s"
    # Per training image (training.weighting, mean 1): sources and classes balanced as the config says.
    train_weights: np.ndarray | None = None
    # Shared by the fits of one train() call (cross-source folds, then the final fit): what a recipe can
    # reuse between them, e.g. the logistic recipe's per-image features.
    memo: dict[str, Any] = field(default_factory=dict)
    checkpoint_dir: Path | None = None  # where a recipe with epochs keeps its per-epoch checkpoint; None: none
    # A cross-source fold: only scored, never exported, so a recipe may skip what only the served model needs.
    fold: bool = False


@dataclass
class Fitted:
    """What a recipe hands back; train() thresholds, exports and documents it the same way for every recipe."""

    model: Any  # keras.Model: image -> class probabilities
    val_scores: np.ndarray  # melanoma probability per validation image
    architecture: str
    backbone_origin: str
    recipe: dict[str, Any]  # the recipe's settings, as the card's "recipe" shows them
    # Melanoma scores of other images with the fitted model, as val_scores were computed (cross-source).
    score_samples: Callable[[Sequence[Sample]], np.ndarray]
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch; empty for a closed-form fit
    # Card sections of the graph's extra outputs ("heatmap", "differential", "familiarity"); empty: none.
    card_extras: dict[str, Any] = field(default_factory=dict)
    # Calibrated differential probabilities (images x training.explain_heads codes) of other images (cross-source);
    # None: the recipe has no differential.
    differential_samples: Callable[[Sequence[Sample]], np.ndarray] | None = None
    # Melanoma scores of other images as simulated phone close-ups (training.camera.SIMULATIONS["camera"], the
    # images evaluate_model --simulate camera scores); None: the recipe cannot score them.
    score_simulated: Callable[[Sequence[Sample]], np.ndarray] | None = None


@dataclass(frozen=True)
class Recipe:
    name: str  # the `--head` value
    # What task="auto" trains when every image has a diagnosis: melanoma vs rest, or the diagnoses.
    auto_task: Literal["binary", "diagnosis"]
    fit: Callable[[FitInputs], Fitted]


def notify(progress: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


def class_targets(samples: Sequence[Sample], class_names: Sequence[str]) -> np.ndarray:
    """Class index per sample: the melanoma label for the binary task, else the diagnosis."""
    if list(class_names) == list(BINARY_CLASSES):
        return np.array([sample.label for sample in samples], dtype=np.int32)
    return np.array([class_names.index(str(sample.dx)) for sample in samples], dtype=np.int32)


def model_inputs(
    samples: Sequence[Sample],
    *,
    image_size: int,
    normalisation: Normalisation | str,
    rng: np.random.Generator | None = None,
    augment_config: AugmentConfig | None = None,
) -> np.ndarray:
    """The training path: load_image -> (random augmentation) -> to_model_input, for a batch of samples.

    With rng=None there is no augmentation and this is exactly what serving computes.
    """
    seeds = rng.integers(0, 2**32, size=len(samples)) if rng is not None else [None] * len(samples)

    def one(item: tuple[Sample, Any]) -> np.ndarray:
        sample, seed = item
        image = load_image(sample.path, image_size)
        if seed is not None:
            image = augment(image, np.random.default_rng(seed), augment_config)
        return to_model_input(image, normalisation)

    with ThreadPoolExecutor(max_workers=PREPROCESS_THREADS) as pool:
        return np.stack(list(pool.map(one, zip(samples, seeds, strict=True))))
