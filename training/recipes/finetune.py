"""Fine-tuning the top of MobileNetV2 on cached activations; not the default.

The frozen lower backbone (up to `block_12_add`) runs once per augmented view; blocks 13-16 + Conv_1 +
softmax head are trained on the cached activations with BatchNorm frozen. Measured on HAM10000 it did not
beat the logistic recipe on either validation or isic-sample AUC, at 3-6 times the time.

Long runs: progress goes to train()'s callback every step (train_model shows it as a tqdm bar); after every
epoch the trainable weights, the optimizer state and the random generator are saved to the run's checkpoint
folder, and `resume` continues after the last saved epoch (the activation cache is rebuilt: it is
deterministic for the seed). The checkpoint is deleted once training has finished.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lesion_model.preprocessing import Normalisation
from training.datasets import Sample
from training.metrics import compute_metrics
from training.model import build_model
from training.recipes.base import (
    FitInputs,
    Fitted,
    ProgressCallback,
    Recipe,
    class_targets,
    model_inputs,
    notify,
)

if TYPE_CHECKING:
    from training.train import TrainConfig


def fit(run: FitInputs) -> Fitted:
    config, train_samples, val_samples = run.config, run.train_samples, run.val_samples
    normalisation, progress, timings = run.normalisation, run.progress, run.timings
    class_names, melanoma_indices = run.class_names, run.melanoma_indices
    phase = time.perf_counter()
    classifier = build_model(
        image_size=config.image_size,
        n_classes=len(class_names),
        weights=config.weights,
        dropout=config.dropout,
        cut_layer=config.cut_layer,
    )
    total_cache = len(train_samples) * config.views + len(val_samples)
    train_cache = _cache_activations(
        classifier.lower, train_samples, views=config.views, config=config, normalisation=normalisation,
        rng=run.rng, progress=progress, done_offset=0, total=total_cache,
    )  # fmt: skip
    val_cache = _cache_activations(
        classifier.lower, val_samples, views=1, config=config, normalisation=normalisation,
        rng=None, progress=progress, done_offset=len(train_samples) * config.views, total=total_cache,
    )[0]  # fmt: skip
    timings["cache_s"] = time.perf_counter() - phase

    phase = time.perf_counter()
    targets = class_targets(train_samples, class_names)
    if run.train_weights is not None:  # training.weighting: melanoma vs rest balanced within each source
        weights = np.asarray(run.train_weights, dtype=np.float32)
    else:
        weights = _class_weights(targets, len(class_names))[targets]
    history = _train_upper(
        classifier.upper, train_cache, targets, weights, n_classes=len(class_names),
        melanoma_indices=melanoma_indices, config=config, rng=run.rng, progress=progress,
        val_cache=val_cache, val_labels=run.val_labels, checkpoint_dir=run.checkpoint_dir,
    )  # fmt: skip
    del train_cache
    if run.checkpoint_dir is not None and run.checkpoint_dir.exists():
        shutil.rmtree(run.checkpoint_dir)  # finished: the model folder keeps only what serving and people need
    timings["train_s"] = time.perf_counter() - phase

    def score_samples(samples: Sequence[Sample]) -> np.ndarray:
        cache = _cache_activations(
            classifier.lower, samples, views=1, config=config, normalisation=normalisation, rng=None,
            progress=None, done_offset=0, total=len(samples),
        )[0]  # fmt: skip
        return _melanoma_scores(classifier.upper, cache, melanoma_indices)

    return Fitted(
        model=classifier.model,
        val_scores=_melanoma_scores(classifier.upper, val_cache, melanoma_indices),
        architecture="MobileNetV2 (alpha 1.0) + global average pooling + dropout + softmax",
        backbone_origin=classifier.backbone.origin,
        recipe={
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "views": config.views,
            "learning_rate": config.learning_rate,
            "weight_decay": config.weight_decay,
            "label_smoothing": config.label_smoothing,
            "dropout": config.dropout,
            "trained_layers": f"after {config.cut_layer} (blocks 13-16, Conv_1, head); BatchNorm frozen",
            "sample_weights": config.source_weighting if run.train_weights is not None else "1/sqrt(class frequency)",
            "epochs_run": len(history),
        },
        score_samples=score_samples,
        history=history,
    )


def _cache_activations(
    lower: Any,
    samples: Sequence[Sample],
    *,
    views: int,
    config: TrainConfig,
    normalisation: Normalisation,
    rng: np.random.Generator | None,
    progress: ProgressCallback | None,
    done_offset: int,
    total: int,
) -> np.ndarray:
    """Lower-backbone activations, float16, shape (views, N, h, w, c)."""
    import tensorflow as tf  # noqa: PLC0415

    forward = tf.function(lambda batch: lower(batch, training=False), reduce_retracing=True)
    chunk = 32
    out: np.ndarray | None = None
    done = done_offset
    for view in range(views):
        for start in range(0, len(samples), chunk):
            batch = model_inputs(
                samples[start : start + chunk],
                image_size=config.image_size,
                normalisation=normalisation,
                rng=rng,
                augment_config=config.augment,
            )
            activations = forward(tf.constant(batch)).numpy().astype(np.float16)
            if out is None:
                out = np.empty((views, len(samples), *activations.shape[1:]), dtype=np.float16)
            out[view, start : start + len(batch)] = activations
            done += len(batch)
            notify(progress, "cache", done, total)
    assert out is not None  # noqa: S101 - samples is never empty here
    return out


def _class_weights(targets: np.ndarray, n_classes: int) -> np.ndarray:
    """1/sqrt(frequency), mean 1: melanoma (8 % of HAM) counts more without drowning the others."""
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
    weights *= len(targets) / np.sum(weights * counts)
    return weights.astype(np.float32)


def _train_upper(
    upper: Any,
    cache: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    *,
    n_classes: int,
    melanoma_indices: Sequence[int],
    config: TrainConfig,
    rng: np.random.Generator,
    progress: ProgressCallback | None,
    val_cache: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    checkpoint_dir: Path | None = None,
) -> list[dict[str, float]]:
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    views, count = cache.shape[:2]
    steps_per_epoch = math.ceil(count / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=total_steps, warmup_target=None, alpha=0.02
    )
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing, reduction="none")
    trainable = upper.trainable_variables

    @tf.function(reduce_retracing=True)
    def train_step(batch, labels, batch_weights):
        with tf.GradientTape() as tape:
            probabilities = upper(batch, training=True)
            per_image = loss_fn(tf.one_hot(labels, n_classes), probabilities)
            loss = tf.reduce_mean(per_image * batch_weights)
        gradients = tape.gradient(loss, trainable)
        optimizer.apply_gradients(zip(gradients, trainable, strict=True))
        return loss

    history: list[dict[str, float]] = []
    first_epoch = 0
    if checkpoint_dir is not None and config.resume:
        first_epoch, history = _load_checkpoint(checkpoint_dir, upper, optimizer, rng, config)
    step = first_epoch * steps_per_epoch
    for epoch in range(first_epoch, config.epochs):
        order = rng.permutation(count)
        view_of = rng.integers(0, views, size=count)
        losses = []
        for start in range(0, count, config.batch_size):
            index = order[start : start + config.batch_size]
            batch = cache[view_of[index], index].astype(np.float32)
            # Activation maps of a flipped/rotated lesion are (nearly) the flipped/rotated maps: free symmetry.
            symmetry = int(rng.integers(0, 8))
            if symmetry & 1:
                batch = batch[:, :, ::-1]
            batch = np.rot90(batch, k=symmetry >> 1, axes=(1, 2))
            losses.append(
                float(
                    train_step(
                        tf.constant(np.ascontiguousarray(batch)),
                        tf.constant(targets[index]),
                        tf.constant(weights[index], dtype=tf.float32),
                    )
                )
            )
            step += 1
            notify(progress, "train", step, total_steps)
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
        if val_cache is not None and val_labels is not None and os.environ.get("MELANOMA_TRAIN_VERBOSE"):
            scores = _melanoma_scores(upper, val_cache, melanoma_indices)
            record["val_roc_auc"] = compute_metrics(val_labels, scores, 0.5)["roc_auc"] or float("nan")
            print(record, flush=True)  # noqa: T201 - opt-in diagnostics while tuning the recipe
        history.append(record)
        if checkpoint_dir is not None:
            _save_checkpoint(checkpoint_dir, upper, optimizer, rng, history, config)
    return history


CHECKPOINT_STATE = "state.json"
CHECKPOINT_WEIGHTS = "weights.npz"


def _checkpoint_key(config: TrainConfig) -> dict[str, Any]:
    """What must match for a checkpoint to continue this run (a different recipe would resume nonsense)."""
    return {
        "seed": config.seed,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "views": config.views,
        "learning_rate": config.learning_rate,
        "image_size": config.image_size,
        "cut_layer": config.cut_layer,
    }


def _save_checkpoint(
    folder: Path, upper: Any, optimizer: Any, rng: np.random.Generator, history: list, config: TrainConfig
) -> None:
    """Weights, optimizer state and generator state after an epoch; written atomically (temp file, rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    # variables, not get_weights(): they include the dropout layers' seed-generator state, without which a
    # resumed run draws other dropout masks than an uninterrupted one.
    arrays = {f"model_{i}": np.asarray(v.numpy()) for i, v in enumerate(upper.variables)}
    arrays.update({f"optimizer_{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)})
    temporary = folder / f".{CHECKPOINT_WEIGHTS}"
    with temporary.open("wb") as handle:
        np.savez(handle, **arrays)
    temporary.replace(folder / CHECKPOINT_WEIGHTS)
    state = {"epoch": len(history), "history": history, "rng": rng.bit_generator.state, "run": _checkpoint_key(config)}
    temporary = folder / f".{CHECKPOINT_STATE}"
    temporary.write_text(json.dumps(state), encoding="utf-8")
    temporary.replace(folder / CHECKPOINT_STATE)


def _load_checkpoint(
    folder: Path, upper: Any, optimizer: Any, rng: np.random.Generator, config: TrainConfig
) -> tuple[int, list[dict[str, float]]]:
    """Restore the last saved epoch; returns (epochs done, their history). Nothing saved: start from 0."""
    if not (folder / CHECKPOINT_STATE).is_file():
        raise ValueError(f"Nothing to resume: {folder} holds no checkpoint (no epoch finished yet).")
    state = json.loads((folder / CHECKPOINT_STATE).read_text(encoding="utf-8"))
    if state["run"] != _checkpoint_key(config):
        raise ValueError(
            f"The checkpoint in {folder} is from a run with other settings ({state['run']}); "
            "resume with the same settings or start afresh without --resume."
        )
    with np.load(folder / CHECKPOINT_WEIGHTS) as arrays:
        for i, variable in enumerate(upper.variables):
            variable.assign(arrays[f"model_{i}"])
        optimizer.build(upper.trainable_variables)
        for i, variable in enumerate(optimizer.variables):
            variable.assign(arrays[f"optimizer_{i}"])
    rng.bit_generator.state = state["rng"]
    return int(state["epoch"]), list(state["history"])


def _melanoma_scores(upper: Any, cache: np.ndarray, melanoma_indices: Sequence[int]) -> np.ndarray:
    scores = []
    for start in range(0, cache.shape[0], 128):
        probabilities = np.asarray(upper(cache[start : start + 128].astype(np.float32), training=False))
        scores.append(probabilities[:, list(melanoma_indices)].sum(axis=1))
    return np.concatenate(scores).astype(np.float64)


# "auto" learns the diagnoses when every image has one (melanoma probability = P(mel)).
RECIPE = Recipe(name="finetune", auto_task="diagnosis", fit=fit)
