"""Head variants of the logistic recipe, compared on features a `train_model --feature-cache` run left behind.

    python -m bench.head_variants --feature-cache DIR --data ../shared/derm/ham10000 \\
        --data ../shared/derm/isic2017:train,valid --data ../shared/derm/ph2 --image-size 320 \\
        logistic logistic:0.000125 l2_blocks no_max lda pca:256 source_projection source_bag mlp_bag:3

    # a two-input-size ensemble: the features of a second cache (another --image-size) beside the first
    python -m bench.head_variants --feature-cache DIR320 --also-cache DIR224:224 ... logistic size_pair

    # hand-made lesion measures (python -m bench.lesion_features) alone, and beside the shipped head
    python -m bench.head_variants --feature-cache DIR --extra-features FILE.npz ... extra late:0.5

Every variant is fitted as `train_model --cross-source` fits the shipped head: the same leave-one-source-out folds
and validation split (training.splits), source weights (training.weighting), training views and threshold rule
(training.metrics.choose_threshold_by_source). It prints, per variant, each left-out source's AUC with its 95 %
interval and, for every variant after the first, its difference from the first on the same images (a paired
bootstrap: two heads on the same images are correlated, so their separate intervals overlap where the difference is
clear), sensitivity and specificity at that fold's threshold, the specificity a threshold set on the left-out
source itself would give at the target sensitivity (the best any rule could do), its AUC as simulated phone
close-ups, and the validation split's AUC per source: the figures docs/model.md's "How the recipe was chosen"
compares. The `logistic` row reproduces the card of the run that filled the cache exactly. Test sets are never read.

Nothing is extracted: a feature missing from the cache is an error naming the command that fills it (the same
data, --image-size, --views and --seed, with --cross-source). Seconds per variant, not minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Channels of each pooled MobileNetV2 (alpha 1.0) layer, to find a layer's block of the concatenated features.
LAYER_CHANNELS = {
    "out_relu": 1280,
    "block_13_expand_relu": 576,
    "block_12_add": 96,
    "block_9_add": 64,
    "block_6_expand_relu": 192,
}
DEFAULT_C = 0.00025

Scorer = Callable[[np.ndarray], np.ndarray]


class CacheMiss(Exception):
    pass


class ExtraMiss(Exception):
    pass


@dataclass(frozen=True)
class Variant:
    """A head fitted on (features, targets, weights, sources) that returns a melanoma scorer."""

    name: str
    parameter: float | None

    @classmethod
    def parse(cls, text: str) -> Variant:
        name, _, value = text.partition(":")
        if name not in VARIANTS and name not in PER_CACHE and name not in WITH_EXTRA:
            raise ValueError(f"Unknown variant {name!r}: use {', '.join(ALL_VARIANTS)}.")
        try:
            return cls(name, float(value) if value else None)
        except ValueError:
            raise ValueError(f"{text!r}: the part after ':' must be a number.") from None

    def fit(
        self, x: np.ndarray, y: np.ndarray, weights: np.ndarray, sources: np.ndarray, caches: int = 1, extra: int = 0
    ) -> Scorer:
        """`caches`: how many feature caches' vectors lie side by side in x (--also-cache adds to the first);
        `extra`: for a variant in WITH_EXTRA, how many --extra-features columns end x."""
        if self.name in WITH_EXTRA:
            return WITH_EXTRA[self.name](x, y, weights, sources, self.parameter, extra)
        if self.name in PER_CACHE:
            return PER_CACHE[self.name](x, y, weights, sources, self.parameter, caches)
        return VARIANTS[self.name](x, y, weights, sources, self.parameter)

    def __str__(self) -> str:
        return self.name if self.parameter is None else f"{self.name}:{self.parameter:g}"


def _blocks() -> list[slice]:
    """Where each entry of training.features.FEATURE_LAYERS lies in the concatenated vector."""
    from training.features import FEATURE_LAYERS  # noqa: PLC0415

    blocks, start = [], 0
    for layer, _ in FEATURE_LAYERS:
        blocks.append(slice(start, start + LAYER_CHANNELS[layer]))
        start += LAYER_CHANNELS[layer]
    return blocks


def _logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float | None) -> Scorer:
    from training.linear_head import fit_logistic_head  # noqa: PLC0415

    head = fit_logistic_head(x, y, n_classes=2, c=c or DEFAULT_C, sample_weight=w)
    return lambda z: head.probabilities(z)[:, 1]


def logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, _: np.ndarray, c: float | None) -> Scorer:
    """The shipped head (training.linear_head), at C (default the shipped 0.00025)."""
    return _logistic(x, y, w, c)


def l2_blocks(x: np.ndarray, y: np.ndarray, w: np.ndarray, _: np.ndarray, c: float | None) -> Scorer:
    """Each pooled layer's block scaled to unit length (times sqrt of its size) before the logistic head: a
    clinic's overall contrast or exposure then moves no layer's features as a whole."""
    blocks = _blocks()

    def normalise(z: np.ndarray) -> np.ndarray:
        parts = [z[:, b] / (np.linalg.norm(z[:, b], axis=1, keepdims=True) + 1e-6) for b in blocks]
        return np.concatenate([p * np.sqrt(p.shape[1]) for p in parts], axis=1)

    score = _logistic(normalise(x), y, w, c)
    return lambda z: score(normalise(z))


def no_max(x: np.ndarray, y: np.ndarray, w: np.ndarray, _: np.ndarray, c: float | None) -> Scorer:
    """The max-pooled blocks left out (a single hot cell - a ruler mark, a bubble - moves a max, not an average)."""
    from training.features import FEATURE_LAYERS  # noqa: PLC0415

    keep = np.concatenate(
        [np.arange(b.start, b.stop) for b, (_, pool) in zip(_blocks(), FEATURE_LAYERS, strict=True) if pool != "max"]
    )
    score = _logistic(x[:, keep], y, w, c)
    return lambda z: score(z[:, keep])


def source_projection(x: np.ndarray, y: np.ndarray, w: np.ndarray, sources: np.ndarray, c: float | None) -> Scorer:
    """The directions along which the training sources differ within a class (their class means, on
    standardised features) projected out before the logistic head: what tells clinics apart cannot be used."""
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    scaler = StandardScaler().fit(x)
    standard = scaler.transform(x)
    directions = []
    for label in (0, 1):
        means = [
            standard[(sources == source) & (y == label)].mean(axis=0)
            for source in sorted(set(sources.tolist()))
            if np.any((sources == source) & (y == label))
        ]
        directions += [mean - means[0] for mean in means[1:]]
    if not directions:
        raise ValueError("source_projection needs at least two training sources.")
    basis, _ = np.linalg.qr(np.stack(directions, axis=1))

    def project(z: np.ndarray) -> np.ndarray:
        s = scaler.transform(z)
        return s - (s @ basis) @ basis.T

    score = _logistic(project(x), y, w, c)
    return lambda z: score(project(z))


def pca(x: np.ndarray, y: np.ndarray, w: np.ndarray, _: np.ndarray, components: float | None) -> Scorer:
    """The logistic head on the top `components` (default 256) principal components of the standardised features:
    what varies little across the training images (a clinic's quirks among them) is dropped. A linear projection,
    so it would fold into the served Dense layer."""
    from sklearn.decomposition import PCA  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    scaler = StandardScaler().fit(x)
    projection = PCA(n_components=min(int(components or 256), *x.shape), random_state=0).fit(scaler.transform(x))
    score = _logistic(projection.transform(scaler.transform(x)), y, w, None)
    return lambda z: score(projection.transform(scaler.transform(z)))


def lda(x: np.ndarray, y: np.ndarray, _: np.ndarray, __: np.ndarray, shrinkage: float | None) -> Scorer:
    """Shrinkage linear discriminant analysis on standardised features (Ledoit-Wolf shrinkage unless given); it
    takes no sample weights, so sources are weighted by their size."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    scaler = StandardScaler().fit(x)
    model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto" if shrinkage is None else shrinkage)
    model.fit(scaler.transform(x), y)
    return lambda z: model.predict_proba(scaler.transform(z))[:, 1]


# Small ensembles (issue 10's last recipe candidate). Heads on the same frozen features average to almost one
# linear head, so these differ in what each member sees: a different set of training sources, a non-linear head
# with a different seed, or a second input size (a second backbone pass at serving).


def source_bag(x: np.ndarray, y: np.ndarray, w: np.ndarray, sources: np.ndarray, c: float | None) -> Scorer:
    """The mean probability of logistic heads fitted with each training source left out in turn, plus one on all:
    each member has had to do without one clinic, as the served model will have to with the next. With a single
    training source (a fold of a two-source run) it is the plain head."""
    names = sorted(set(sources.tolist()))
    members = [_logistic(x, y, w, c)]
    for name in names if len(names) > 1 else []:
        keep = sources != name
        if np.unique(y[keep]).size == 2:
            members.append(_logistic(x[keep], y[keep], w[keep], c))
    return lambda z: np.mean([member(z) for member in members], axis=0)


def mlp_bag(x: np.ndarray, y: np.ndarray, w: np.ndarray, _: np.ndarray, count: float | None) -> Scorer:
    """The mean probability of `count` (default 3) one-hidden-layer networks, Dense(64, relu) as in the seed
    demo's head, each from another seed, on standardised features with the source weights and strong L2."""
    from sklearn.neural_network import MLPClassifier  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    scaler = StandardScaler().fit(x)
    standard = scaler.transform(x).astype(np.float32)
    members = []
    for seed in range(int(count or 3)):
        # 20 epochs of Adam, a probe of whether a non-linear head travels better rather than a tuned one: sklearn
        # warns that it has not converged, and `logistic source_bag mlp_bag:3` already took 20 minutes on two
        # cores (2026-12-07). With alpha=1.0 the validation AUC was the shipped head's (0.916 against 0.912).
        model = MLPClassifier(
            hidden_layer_sizes=(64,), alpha=1.0, max_iter=20, batch_size=min(256, len(x)), random_state=seed
        )
        model.fit(standard, y, sample_weight=w)
        members.append(model)
    return lambda z: np.mean([m.predict_proba(scaler.transform(z).astype(np.float32))[:, 1] for m in members], axis=0)


def size_pair(x: np.ndarray, y: np.ndarray, w: np.ndarray, _: np.ndarray, c: float | None, caches: int) -> Scorer:
    """Input sizes (--also-cache): a logistic head on each size's features, their probabilities averaged. The
    caches' vectors lie side by side, the same layers each, so each equal part of x is one size."""
    if caches < 2:  # main() refuses size_pair without --also-cache; this guards other callers of measure()
        raise ValueError("size_pair needs a second cache of the same layers at another input size.")
    parts = [slice(i * x.shape[1] // caches, (i + 1) * x.shape[1] // caches) for i in range(caches)]
    members = [(part, _logistic(x[:, part], y, w, c)) for part in parts]
    return lambda z: np.mean([member(z[:, part]) for part, member in members], axis=0)


VARIANTS: dict[str, Callable[..., Scorer]] = {
    "logistic": logistic,
    "l2_blocks": l2_blocks,
    "no_max": no_max,
    "source_projection": source_projection,
    "lda": lda,
    "pca": pca,
    "source_bag": source_bag,
    "mlp_bag": mlp_bag,
}
# Variants that also need to know how many caches' features x holds.
PER_CACHE: dict[str, Callable[..., Scorer]] = {"size_pair": size_pair}


# Hand-made lesion measures (bench.lesion_features, --extra-features): do they travel between clinics better than the
# network's features, and do they add to them? Measured 2026-12-07 (docs/model.md, "Hand-made lesion measures").
EXTRA_C = 0.1  # 32 measures, not 5,664 features: far less regularisation (C = 0.01: within 0.011 left out)


def extra(x: np.ndarray, y: np.ndarray, w: np.ndarray, _: np.ndarray, c: float | None, count: int) -> Scorer:
    """A logistic head on the extra features alone (C default EXTRA_C)."""
    score = _logistic(x[:, -count:], y, w, c or EXTRA_C)
    return lambda z: score(z[:, -count:])


def late(x: np.ndarray, y: np.ndarray, w: np.ndarray, _: np.ndarray, weight: float | None, count: int) -> Scorer:
    """The shipped head on the network's features plus `weight` (default 0.5) times the `extra` head's logit."""
    from scipy.special import expit, logit  # noqa: PLC0415

    network = _logistic(x[:, :-count], y, w, None)
    measures = _logistic(x[:, -count:], y, w, EXTRA_C)
    share = 0.5 if weight is None else weight

    def log_odds(p: np.ndarray) -> np.ndarray:
        return logit(np.clip(p, 1e-7, 1 - 1e-7))  # a head's 0 or 1 would add an infinity

    return lambda z: expit(log_odds(network(z[:, :-count])) + share * log_odds(measures(z[:, -count:])))


# Variants whose x ends with the --extra-features columns (told how many).
WITH_EXTRA: dict[str, Callable[..., Scorer]] = {"extra": extra, "late": late}
ALL_VARIANTS = (*VARIANTS, *PER_CACHE, *WITH_EXTRA)


class CachedFeatures:
    """(views, images, features) arrays read from training.feature_cache.FeatureCache folders, kept in memory;
    with several caches (one per input size) an image's vectors are concatenated in their order."""

    def __init__(self, caches: Sequence[Any]) -> None:
        self.caches = list(caches)
        self.vectors: dict[tuple[Path, str], np.ndarray] = {}

    def __call__(self, samples: Sequence[Any], views: Sequence[str]) -> np.ndarray:
        for sample in samples:
            for view in views:
                key = (sample.path, view)
                if key not in self.vectors:
                    parts = [cache.get(sample.path, view) for cache in self.caches]
                    if any(part is None for part in parts):
                        raise CacheMiss(f"{sample.path} ({view} view)")
                    self.vectors[key] = np.concatenate(parts)
        return np.stack([np.stack([self.vectors[(s.path, view)] for s in samples]) for view in views])


class ExtraFeatures:
    """Per-image, per-view vectors from a bench.lesion_features file, looked up as CachedFeatures looks up its own."""

    def __init__(self, path: Path) -> None:
        with np.load(path) as loaded:
            self.views = [str(view) for view in loaded["views"]]
            self.features = loaded["features"]
            self.row = {str(image): index for index, image in enumerate(loaded["paths"])}

    @property
    def count(self) -> int:
        return int(self.features.shape[-1])

    def __call__(self, samples: Sequence[Any], views: Sequence[str]) -> np.ndarray:
        for view in views:
            for sample in samples:
                if view not in self.views or str(sample.path) not in self.row:
                    raise ExtraMiss(f"{sample.path} ({view} view)")
        rows = [self.row[str(sample.path)] for sample in samples]
        return np.stack([self.features[rows, self.views.index(view)] for view in views])


def _with_extra(cached: CachedFeatures, extra: ExtraFeatures) -> Callable[[Sequence[Any], Sequence[str]], np.ndarray]:
    return lambda samples, views: np.concatenate([cached(samples, views), extra(samples, views)], axis=2)


def training_rows(
    features: Callable[[Sequence[Any], Sequence[str]], np.ndarray], config: Any, samples: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, labels, weights, sources), one row per sample and training view, weighted as train_model weights them."""
    from training.weighting import sample_weights  # noqa: PLC0415

    labels = np.array([s.label for s in samples])
    sources = np.array([s.source for s in samples], dtype=object)
    weights = sample_weights(labels.tolist(), sources.tolist(), config.source_weighting)
    x = features(samples, config.feature_views)
    n_views = x.shape[0]
    return x.reshape(-1, x.shape[-1]), np.tile(labels, n_views), np.tile(weights, n_views), np.tile(sources, n_views)


def measure(
    config: Any, variants: Sequence[Variant], also: Sequence[tuple[Path, int]] = (), extra: ExtraFeatures | None = None
) -> dict[str, dict[str, Any]]:
    """Per variant: {"left_out": {source: figures}, "validation": {source: AUC, "pooled": AUC, ...}}. `also`:
    (cache folder, input size) of further caches whose features go beside config.feature_cache's; `extra`: the
    vectors that end x for the variants in WITH_EXTRA."""
    from training.datasets import load_datasets  # noqa: PLC0415
    from training.feature_cache import FeatureCache, fingerprint  # noqa: PLC0415
    from training.features import CENTRE_FRACTION, FEATURE_LAYERS  # noqa: PLC0415
    from training.metrics import (  # noqa: PLC0415
        auc_difference,
        choose_threshold,
        choose_threshold_by_source,
        compute_metrics,
    )
    from training.splits import SourceFold, leave_one_source_out, split_by_source  # noqa: PLC0415
    from training.train import serving_normalisation  # noqa: PLC0415

    dataset = load_datasets(list(config.data_dirs))

    def cache(folder: Path, image_size: int) -> FeatureCache:
        return FeatureCache(
            folder,
            fingerprint(
                image_size=image_size,
                weights=config.weights,
                normalisation=serving_normalisation(config),
                seed=config.seed,
                layers=FEATURE_LAYERS,
                centre_fraction=CENTRE_FRACTION,
            ),
        )

    cached = CachedFeatures(
        [cache(config.feature_cache, config.image_size), *(cache(folder, size) for folder, size in also)]
    )
    final_train, final_val = split_by_source(dataset.samples, val_fraction=config.val_fraction, seed=config.seed)
    folds = [
        *leave_one_source_out(dataset.samples, val_fraction=config.val_fraction, seed=config.seed),
        SourceFold(left_out="", train=final_train, val=final_val, held=[]),  # the validation split's own fit
    ]
    results: dict[str, dict[str, Any]] = {}
    first_scores: dict[str, np.ndarray] = {}  # the first variant's left-out scores, which the others are set against
    for variant in variants:
        result: dict[str, Any] = {"left_out": {}, "validation": {}}
        features = _with_extra(cached, extra) if extra is not None and variant.name in WITH_EXTRA else cached
        for fold in folds:
            score = variant.fit(
                *training_rows(features, config, fold.train), caches=1 + len(also),
                extra=extra.count if extra is not None else 0,
            )  # fmt: skip
            val_labels = np.array([s.label for s in fold.val])
            val_sources = [s.source for s in fold.val]
            val_scores = score(features(fold.val, ("identity",))[0])
            threshold, _ = choose_threshold_by_source(
                val_labels, val_scores, val_sources, target_sensitivity=config.target_sensitivity,
                confidence=config.threshold_confidence,
            )  # fmt: skip
            if fold.left_out:
                held_labels = [s.label for s in fold.held]
                held_scores = score(features(fold.held, ("identity",))[0])
                baseline = first_scores.setdefault(fold.left_out, held_scores)
                held = compute_metrics(held_labels, held_scores, threshold, intervals=True)
                # The best this head could do on the left-out source had its threshold been set there: what any
                # threshold rule is up against.
                best = compute_metrics(
                    held_labels, held_scores,
                    choose_threshold(held_labels, held_scores, target_sensitivity=config.target_sensitivity),
                )  # fmt: skip
                camera = compute_metrics(held_labels, score(features(fold.held, ("simulated_camera",))[0]), threshold)
                result["left_out"][fold.left_out] = {
                    **{key: held[key] for key in ("roc_auc", "roc_auc_ci", "sensitivity", "specificity", "threshold")},
                    # Against the first variant on the same images (a paired bootstrap): [difference, low, high].
                    # The first variant against itself is 0 by definition, without 2,000 draws of zeros.
                    "roc_auc_vs_first": (
                        [0.0, 0.0, 0.0]
                        if baseline is held_scores
                        else auc_difference(held_labels, held_scores, baseline)
                    ),
                    "camera_roc_auc": camera["roc_auc"],
                    "specificity_at_target": best["specificity"],
                    # Beside the fold's own threshold: how far a new clinic moves the scores (docs/model.md,
                    # "How far a new clinic moves the threshold").
                    "threshold_at_target": best["threshold"],
                }
            else:
                names = np.asarray(val_sources, dtype=object)
                pooled = compute_metrics(val_labels, val_scores, threshold)
                result["validation"] = {
                    **{s: compute_metrics(val_labels[names == s], val_scores[names == s], threshold)["roc_auc"]
                       for s in sorted(set(val_sources))},
                    "pooled": pooled["roc_auc"],
                    "sensitivity": pooled["sensitivity"],
                    "specificity": pooled["specificity"],
                }  # fmt: skip
        results[str(variant)] = result
    return results


def format_table(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    first = next(iter(results), "")
    for name, result in results.items():
        left = " / ".join(
            f"{s} {m['roc_auc']:.3f} ({m['roc_auc_ci'][0]:.3f}-{m['roc_auc_ci'][1]:.3f})"
            if m["roc_auc_ci"]
            else f"{s} {m['roc_auc']:.3f}"
            for s, m in result["left_out"].items()
        )
        against = " / ".join(
            f"{s} {m['roc_auc_vs_first'][0]:+.3f} ({m['roc_auc_vs_first'][1]:+.3f} to {m['roc_auc_vs_first'][2]:+.3f})"
            for s, m in result["left_out"].items()
            if m["roc_auc_vs_first"]
        )
        camera = " / ".join(f"{m['camera_roc_auc']:.3f}" for m in result["left_out"].values())
        held = " / ".join(f"{m['sensitivity']:.2f}-{m['specificity']:.2f}" for m in result["left_out"].values())
        best = " / ".join(
            f"{m['specificity_at_target']:.2f} (at {m['threshold_at_target']:.4f}, fold {m['threshold']:.4f})"
            for m in result["left_out"].values()
        )
        validation = " / ".join(
            f"{s} {v:.3f}" for s, v in result["validation"].items() if s not in ("sensitivity", "specificity")
        )
        lines.append(
            f"{name}\n  left out AUC (95 % interval): {left}\n"
            + (f"  left out AUC against {first}: {against}\n" if name != first and against else "")
            + f"  left out sensitivity-specificity: {held}\n"
            f"  left out specificity at the target sensitivity, threshold set on it: {best}\n"
            f"  left out as phone close-ups AUC: {camera}\n  validation AUC: {validation}"
        )
    return "\n".join(lines)


def cache_miss_message(error: CacheMiss, args: argparse.Namespace) -> str:
    """What is missing and the train_model command that fills the cache with it (the same data and settings)."""
    data = " ".join(f"--data {text}" for text in args.data)
    return (
        f"Not in the feature cache: {error}. Fill it with `python manage.py train_model {data} --image-size "
        f"{args.image_size} --seed {args.seed} --val-fraction {args.val_fraction} --cross-source "
        f"--feature-cache {args.feature_cache}`"
    )


def _cache_and_size(text: str) -> tuple[Path, int]:
    folder, _, size = text.rpartition(":")
    if not folder or not size.isdigit():
        raise ValueError(f"--also-cache {text!r}: give the folder and its input size, as DIR:224.")
    return Path(folder), int(size)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.head_variants", description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", metavar="VARIANT[:NUMBER]", help=", ".join(ALL_VARIANTS))
    parser.add_argument("--feature-cache", required=True, type=Path, metavar="DIR")
    parser.add_argument(
        "--also-cache", action="append", default=[], metavar="DIR:SIZE",
        help="a second cache, filled at input size SIZE; its features go beside the first's (for size_pair)",
    )  # fmt: skip
    parser.add_argument(
        "--extra-features", type=Path, metavar="FILE.npz",
        help="per-image vectors from python -m bench.lesion_features, for the variants extra and late",
    )  # fmt: skip
    parser.add_argument("--data", action="append", required=True, metavar="DIR[:PARTS]")
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument("--views", help="training views (default: the shipped recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--target-sensitivity", type=float, default=0.90,
        help="as given to train_model (default 0.90): the threshold rule's target, and the column set on the source",
    )  # fmt: skip
    parser.add_argument("--val-fraction", type=float, default=0.2, help="as given to train_model (default 0.2)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    args = parser.parse_args(argv)
    try:
        variants = [Variant.parse(text) for text in args.variants]
        also = [_cache_and_size(text) for text in args.also_cache]
    except ValueError as error:
        parser.error(str(error))
    if not also and (paired := [str(v) for v in variants if v.name in PER_CACHE]):
        # Checked before the data and caches are read: the mistake should not cost a dataset scan.
        needs = "needs --also-cache: a second cache of the same layers at another input size."
        print(f"{', '.join(paired)} {needs}", file=sys.stderr)
        return 2
    if not args.extra_features and (wanting := [str(v) for v in variants if v.name in WITH_EXTRA]):
        needs = "needs --extra-features: a file written by python -m bench.lesion_features."
        print(f"{', '.join(wanting)} {needs}", file=sys.stderr)
        return 2
    try:
        extra = ExtraFeatures(args.extra_features) if args.extra_features else None
    except (OSError, KeyError, ValueError) as error:
        print(f"--extra-features {args.extra_features}: not a bench.lesion_features file ({error}).", file=sys.stderr)
        return 2

    from training.datasets import DataFolder, DatasetError  # noqa: PLC0415
    from training.train import TrainConfig  # noqa: PLC0415

    config = TrainConfig(
        data_dirs=[DataFolder.parse(text) for text in args.data], image_size=args.image_size, seed=args.seed,
        val_fraction=args.val_fraction, feature_cache=args.feature_cache, target_sensitivity=args.target_sensitivity,
    )  # fmt: skip
    if args.views:
        config.feature_views = tuple(view.strip() for view in args.views.split(",") if view.strip())
    try:
        results = measure(config, variants, also, extra)
    except CacheMiss as error:
        print(
            f"{cache_miss_message(error, args)} (the same --views too; for an --also-cache, its own --image-size and "
            "folder), then run this again.",
            file=sys.stderr,
        )
        return 2
    except ExtraMiss as error:
        data = " ".join(f"--data {text}" for text in args.data)
        print(
            f"Not in {args.extra_features}: {error}. Compute it with `python -m bench.lesion_features {data} "
            f"--image-size {args.image_size} --out {args.extra_features}` (the same --views), then run this again.",
            file=sys.stderr,
        )
        return 2
    except DatasetError as error:
        print(str(error), file=sys.stderr)
        return 2
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
