"""End-to-end fine-tuning with online augmentation, measured on one leave-one-source-out fold.

    python -m bench.finetune_probe --data ../shared/derm/ham10000 --data ../shared/derm/isic2017:train,valid \\
        --data ../shared/derm/ph2 --left-out isic2017 --image-size 320 --first-trainable block_6 --epochs 8

Issue 10's open question: does training the backbone itself, on images augmented afresh every epoch, travel
better to a clinic it has never seen than the shipped recipe (frozen backbone, pooled features, logistic head)?
`--head finetune` cannot answer it: it trains only blocks 13-16, on activations cached for a few fixed views.

The fold is the one `train_model --cross-source` scores (training.splits.leave_one_source_out: the other sources
split as train() splits them, the left-out source whole), with the same per-image source weights
(training.weighting). Training images pass through the served colour constancy, then random flips, arbitrary
rotations, zoom (mostly out, as wider frames show the lesion smaller), brightness, contrast and a per-channel
gain; BatchNorm keeps its ImageNet statistics. Validation and left-out images go through serving's own input path
(training.recipes.base.model_inputs without a generator). After every epoch it prints one JSON line: the training
loss, the seconds the epoch took, the validation AUC per source and pooled, and the left-out source's AUC, to set
beside that source's row of the shipped card's `metrics.cross_source`. Test parts are read only if given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from lesion_model.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Normalisation, load_image, shades_of_gray
from training.datasets import DataFolder, Sample, load_datasets
from training.metrics import compute_metrics
from training.recipes.base import model_inputs
from training.splits import SourceFold, leave_one_source_out
from training.weighting import sample_weights

if TYPE_CHECKING:
    from training.train import TrainConfig

PRELOAD_THREADS = 4
# The head alone learns fast from a random start; the backbone's --learning-rate is far smaller.
HEAD_LEARNING_RATE = 1e-3
# build_network's layers after the backbone: train_from leaves them trainable whatever it freezes.
HEAD_LAYERS = ("pool", "centre", "centre_pool", "features", "head_dropout", "melanoma_logit")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.finetune_probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", required=True, help="a labelled folder, DIR or DIR:part,part")
    parser.add_argument("--left-out", required=True, help="the source scored, never trained on (a --data name)")
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument(
        "--first-trainable", default="block_6", help="the first backbone layer trained (a name prefix: block_6)"
    )
    parser.add_argument("--head-epochs", type=int, default=0, help="epochs of the head alone first (LP-FT)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs from --first-trainable up, after those")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="Adam's, cosine-decayed to 0")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    # Only weights with torchvision's input normalisation: the training batches are normalised in the graph.
    parser.add_argument("--weights", choices=("torchvision", "none"), default="torchvision", help="none: tests")
    parser.add_argument(
        "--shipped-head",
        action="store_true",
        help="at the end, fit the shipped recipe's head (pooled features, views, logistic C) on this backbone",
    )
    args = parser.parse_args(argv)
    if min(args.epochs, args.head_epochs) < 0 or args.batch_size < 1 or args.image_size < 32:
        parser.error("--epochs and --head-epochs must be 0 or more, --batch-size at least 1, --image-size at least 32.")
    if args.epochs + args.head_epochs == 0 and not args.shipped_head:
        # --epochs 0 --shipped-head is the control: the shipped head on the ImageNet backbone, the card's own fold.
        parser.error("Nothing to do: give --epochs or --head-epochs, or --shipped-head for the control.")
    return args


def fold_for(samples: Sequence[Sample], left_out: str, *, val_fraction: float, seed: int) -> SourceFold[Sample]:
    """The cross-source fold that leaves `left_out` out; a name that is no source is an error naming the sources."""
    for fold in leave_one_source_out(samples, val_fraction=val_fraction, seed=seed):
        if fold.left_out == left_out:
            return fold
    names = ", ".join(sorted({sample.source for sample in samples}))
    raise ValueError(f"No source named {left_out!r} in --data: the sources are {names}.")


def training_pixels(samples: Sequence[Sample], *, image_size: int, normalisation: Normalisation) -> np.ndarray:
    """uint8 images after the served colour constancy: augmentation then works on what serving would see."""

    def one(sample: Sample) -> np.ndarray:
        pixels = np.asarray(load_image(sample.path, image_size), dtype=np.float32)
        if normalisation.colour_constancy == "shades_of_gray":
            pixels = shades_of_gray(pixels, strength=normalisation.colour_constancy_strength)
        return np.round(pixels).astype(np.uint8)

    with ThreadPoolExecutor(max_workers=PRELOAD_THREADS) as pool:
        return np.stack(list(pool.map(one, samples)))


def build_network(*, image_size: int, weights: str) -> Any:
    """MobileNetV2, the top map pooled whole and over its centre (as served), one logit; only the head trainable."""
    import keras  # noqa: PLC0415

    from training.features import centre_margin  # noqa: PLC0415
    from training.weights import build_backbone  # noqa: PLC0415

    backbone = build_backbone(image_size, weights).model
    top = backbone.output
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(top)
    centre = keras.layers.GlobalAveragePooling2D(name="centre_pool")(
        keras.layers.Cropping2D(centre_margin(int(top.shape[1])), name="centre")(top)
    )
    features = keras.layers.Dropout(0.3, name="head_dropout")(
        keras.layers.Concatenate(name="features")([pooled, centre])
    )
    logit = keras.layers.Dense(1, kernel_regularizer=keras.regularizers.l2(1e-4), name="melanoma_logit")(features)
    network = keras.Model(backbone.input, logit, name="finetune_probe")
    train_from(network, None)
    return network


def train_from(network: Any, first_trainable: str | None) -> None:
    """Train the backbone from the first layer whose name starts with `first_trainable` up (None: the head only).

    BatchNorm always keeps its ImageNet statistics (training.model.freeze_batchnorm). Recompile afterwards.
    """
    from training.model import freeze_batchnorm  # noqa: PLC0415

    backbone = [layer for layer in network.layers if layer.name not in HEAD_LAYERS]
    first = len(backbone)
    if first_trainable is not None:
        names = [layer.name for layer in backbone]
        first = next((index for index, name in enumerate(names) if name.startswith(first_trainable)), -1)
        if first < 0:
            raise ValueError(f"No backbone layer starts with {first_trainable!r} (block_1 ... block_16, Conv_1).")
    for index, layer in enumerate(backbone):
        layer.trainable = index >= first
    freeze_batchnorm(network)


def augmentation(seed: int) -> Any:
    import keras  # noqa: PLC0415

    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal_and_vertical", seed=seed),
            keras.layers.RandomRotation(0.5, fill_mode="reflect", seed=seed + 1),
            # Positive factors zoom out: ISIC 2017 frames its lesions wider than HAM10000
            # (docs/model.md, "A zoomed-out training view").
            keras.layers.RandomZoom((-0.15, 0.35), fill_mode="reflect", seed=seed + 2),
            keras.layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed + 3),
            keras.layers.RandomContrast(0.2, seed=seed + 4),
        ],
        name="augmentation",
    )


def auc_by_source(labels: np.ndarray, scores: np.ndarray, sources: np.ndarray) -> dict[str, float | None]:
    """ROC AUC per source and pooled, as the card computes it (None where a source has one class only)."""

    def auc(selected: np.ndarray) -> float | None:
        # The threshold does not enter the AUC; 0 is the logit of a probability of 0.5.
        return compute_metrics(labels[selected], scores[selected], threshold=0.0)["roc_auc"]

    figures = {str(name): auc(sources == name) for name in sorted(set(sources.tolist()))}
    figures["pooled"] = auc(np.ones(labels.shape, dtype=bool))
    return figures


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from training.train import TrainConfig, serving_normalisation  # noqa: PLC0415

    keras.utils.set_random_seed(args.seed)
    dataset = load_datasets([DataFolder.parse(text) for text in args.data])
    fold = fold_for(dataset.samples, args.left_out, val_fraction=args.val_fraction, seed=args.seed)
    config = TrainConfig(data_dirs=[], image_size=args.image_size, weights=args.weights, seed=args.seed)
    normalisation = serving_normalisation(config)
    size = args.image_size
    network = build_network(image_size=size, weights=args.weights)
    train_from(network, args.first_trainable)  # a bad name fails here, not after minutes of loading images
    train_x = training_pixels(fold.train, image_size=size, normalisation=normalisation)
    train_y = np.array([sample.label for sample in fold.train], dtype=np.float32)
    train_w = sample_weights([s.label for s in fold.train], [s.source for s in fold.train]).astype(np.float32)
    val_x = model_inputs(fold.val, image_size=size, normalisation=normalisation)  # serving's path: no generator
    held_x = model_inputs(fold.held, image_size=size, normalisation=normalisation)

    mean = tf.constant(IMAGENET_MEAN, tf.float32) * 255.0
    std = tf.constant(IMAGENET_STD, tf.float32) * 255.0
    augment = augmentation(args.seed)

    def augmented(pixels: Any, label: Any, weight: Any) -> tuple[Any, Any, Any]:
        images = augment(tf.cast(pixels, tf.float32), training=True)
        gain = tf.random.uniform((tf.shape(images)[0], 1, 1, 3), 0.9, 1.1, seed=args.seed)  # a colour cast
        return (tf.clip_by_value(images * gain, 0.0, 255.0) - mean) / std, label, weight

    batches = (
        tf.data.Dataset.from_tensor_slices((train_x, train_y, train_w))
        .shuffle(len(train_x), seed=args.seed, reshuffle_each_iteration=True)
        .batch(args.batch_size, drop_remainder=len(train_x) >= args.batch_size)
        .map(augmented)
        .prefetch(2)
    )

    def compile_for(epochs: int, learning_rate: float) -> None:
        steps = epochs * max(1, len(train_x) // args.batch_size)
        network.compile(
            optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps)),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
        )

    val_y = np.array([sample.label for sample in fold.val])
    val_sources = np.array([sample.source for sample in fold.val], dtype=object)
    held_y = np.array([sample.label for sample in fold.held])
    held_sources = np.full(held_y.shape, args.left_out, dtype=object)
    # The head alone first (linear probing, then fine-tuning: LP-FT), so that the gradients of a random head do not
    # distort the pretrained features before the head makes sense of them.
    phases = [(None, args.head_epochs, HEAD_LEARNING_RATE), (args.first_trainable, args.epochs, args.learning_rate)]
    rows: list[dict[str, Any]] = []
    for first_trainable, epochs, learning_rate in phases:
        if not epochs:
            continue
        train_from(network, first_trainable)
        compile_for(epochs, learning_rate)
        for _ in range(epochs):
            started = time.perf_counter()
            history = network.fit(batches, epochs=1, shuffle=False, verbose=0)  # the dataset reshuffles
            seconds = time.perf_counter() - started
            val_scores = network.predict(val_x, batch_size=32, verbose=0).ravel()
            held_scores = network.predict(held_x, batch_size=32, verbose=0).ravel()
            row = {
                "epoch": len(rows) + 1,
                "trained": f"from {first_trainable}" if first_trainable else "head",
                "loss": round(float(history.history["loss"][-1]), 4),
                "seconds": round(seconds, 1),
                "validation": auc_by_source(val_y, val_scores, val_sources),
                "left_out": {args.left_out: auc_by_source(held_y, held_scores, held_sources)[args.left_out]},
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.shipped_head:
        val_scores, held_scores = shipped_head_scores(network, fold, config, train_w, val_x[:4])
        row = {
            "epoch": len(rows),
            "trained": "shipped head on this backbone",
            "validation": auc_by_source(val_y, val_scores, val_sources),
            "left_out": {args.left_out: auc_by_source(held_y, held_scores, held_sources)[args.left_out]},
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def shipped_head_scores(
    network: Any,
    fold: SourceFold[Sample],
    config: TrainConfig,
    train_weights: np.ndarray,
    check_inputs: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Melanoma scores of the validation and left-out images by the shipped recipe's head on `network`'s backbone.

    The same pooled layers (training.features.FEATURE_LAYERS), training views, source weights and C as
    training.recipes.logistic, extracted through LiteRT as there: with the ImageNet backbone (--epochs 0) this is
    the shipped card's cross-source fold.
    """
    from training.features import build_feature_model, export_runner, extract  # noqa: PLC0415
    from training.linear_head import fit_logistic_head  # noqa: PLC0415
    from training.train import serving_normalisation  # noqa: PLC0415

    normalisation = serving_normalisation(config)

    runner = export_runner(build_feature_model(network), image_size=config.image_size, check_inputs=check_inputs)

    def features(samples: Sequence[Sample], views: Sequence[str]) -> np.ndarray:
        return extract(
            runner, samples, image_size=config.image_size, normalisation=normalisation, views=views, seed=config.seed
        )

    train_features = features(fold.train, config.feature_views)
    n_views, count, dim = train_features.shape
    head = fit_logistic_head(
        train_features.reshape(n_views * count, dim),
        np.tile([sample.label for sample in fold.train], n_views),
        n_classes=2,
        c=config.logistic_c,
        sample_weight=np.tile(train_weights, n_views),
    )
    val_scores = head.probabilities(features(fold.val, ("identity",))[0])[:, 1]
    held_scores = head.probabilities(features(fold.held, ("identity",))[0])[:, 1]
    return val_scores, held_scores


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
