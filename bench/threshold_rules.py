"""The referral threshold chosen on the validation split alone, or on it plus cross-fitted training scores.

    python -m bench.threshold_rules --feature-cache DIR --data ../shared/derm/ham10000 \\
        --data ../shared/derm/isic2017:train,valid --data ../shared/derm/ph2 --image-size 320 [--folds 5]

The shipped rule (training.metrics.choose_threshold_by_source) takes the lowest of a pooled candidate and one per
validation source. ISIC 2017's validation is its own `valid` part, 108 images with 19 melanomas, so its candidate is
the second-lowest of 19 melanoma scores: where it falls is luck. Cross-fitting gives every training image a score
from a head that did not see it (K grouped, stratified folds per source, the shipped head refitted on the rest), so
each source's candidate can be read off hundreds of melanomas instead.

Printed (JSON), for the shipped rule on the validation split (`validation`), the same rule on validation + cross-fitted
scores (`cross_fit`), and that with every source's candidate a 95 % lower confidence bound too (`cross_fit_bound`):
- the candidates and the threshold of the final split's fit, with the validation split's figures at it;
- each left-out source's sensitivity and specificity at the threshold its fold's rule chose (the same folds as
  `train_model --cross-source`, the rule applied inside the fold);
- per source, how a threshold chosen on N of that source's images drawn with replacement does on all of them
  (every image scored by heads that did not see it), for N its validation share and all of it, point estimate and
  lower bound: the spread is the rule's luck;
- per source, the cross-fitted AUC of the training split: in-source ranking measured on every training image
  instead of a validation share (ISIC 2017's is 108 images); `--logistic-c` and `--source-weighting` vary the head;
- how far the cross-fitted heads' scores sit from the final head's on the same validation images (a head fitted on
  fewer images is regularised relatively harder: C is scaled by the training share to keep it equal).

Features come from a `train_model --feature-cache` run, as for bench.head_variants; nothing is extracted and no
test set is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.head_variants import CachedFeatures, CacheMiss, cache_miss_message, logistic, training_rows
from training.weighting import SCHEMES


def cross_fitted_scores(
    features: CachedFeatures, config: Any, train: Sequence[Any], folds: int, *, also: Sequence[Any] = ()
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each training image's score from a head fitted without its fold; and those heads' scores of `also`.

    Folds are drawn per source (training.splits.grouped_stratified_folds), so each holds a share of every source.
    """
    from training.splits import grouped_stratified_folds  # noqa: PLC0415

    out = np.empty(len(train))
    also_scores: list[np.ndarray] = []
    sources = np.array([s.source for s in train], dtype=object)
    fold_of = np.empty(len(train), dtype=int)
    for source in sorted(set(sources.tolist())):
        index = np.flatnonzero(sources == source)
        fold_of[index] = grouped_stratified_folds([train[i] for i in index], n_folds=folds, seed=config.seed)
    for fold in range(folds):
        fit_on = [s for s, f in zip(train, fold_of, strict=True) if f != fold]
        score = fit_head(features, config, fit_on, c=config.logistic_c * len(train) / len(fit_on))
        held = np.flatnonzero(fold_of == fold)
        out[held] = score([train[i] for i in held])
        if also:
            also_scores.append(score(also))
    return out, also_scores


def fit_head(features: CachedFeatures, config: Any, samples: Sequence[Any], *, c: float | None = None) -> Any:
    """The shipped head (training views, source weights, C) fitted on `samples`: a scorer of other samples."""
    x, labels, weights, _ = training_rows(features, config, samples)
    score = logistic(x, labels, weights, None, c or config.logistic_c)
    return lambda part: score(features(part, ("identity",))[0])


def _rule(
    labels: np.ndarray, scores: np.ndarray, sources: Sequence[str], config: Any, *, bound: bool = False
) -> tuple[float, dict]:
    """The shipped rule; with `bound`, each source's candidate too meets the target as a lower confidence bound."""
    from training.metrics import choose_threshold, choose_threshold_by_source  # noqa: PLC0415

    threshold, candidates = choose_threshold_by_source(
        labels, scores, sources, target_sensitivity=config.target_sensitivity, confidence=config.threshold_confidence
    )
    if not bound:
        return threshold, candidates
    names = np.asarray(sources, dtype=object)
    for source in candidates:
        if source != "pooled":
            selected = names == source
            candidates[source] = choose_threshold(
                labels[selected], scores[selected], target_sensitivity=config.target_sensitivity,
                confidence=config.threshold_confidence,
            )  # fmt: skip
    return min(candidates.values()), candidates


def _at(labels: Sequence[int], scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Sensitivity and specificity at `threshold` (referred at or above it, as served)."""
    labels, referred = np.asarray(labels), np.asarray(scores) >= threshold
    return {
        "sensitivity": round(float(referred[labels == 1].mean()), 4),
        "specificity": round(float(1 - referred[labels == 0].mean()), 4),
    }


def resampled(
    labels: np.ndarray, scores: np.ndarray, size: int, *, target: float, confidence: float | None, draws: int, seed: int
) -> dict[str, Any]:
    """The rule's luck: a threshold chosen on `size` images drawn with replacement (stratified by label) from these,
    scored on all of them (the clinic as a whole). Mean and 5-95 % range over `draws` draws."""
    from training.metrics import choose_threshold  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    melanoma, benign = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    n_melanoma = max(1, round(size * melanoma.size / labels.size))
    rows = []
    for _ in range(draws):
        chosen = np.concatenate([rng.choice(melanoma, n_melanoma), rng.choice(benign, size - n_melanoma)])
        threshold = choose_threshold(labels[chosen], scores[chosen], target_sensitivity=target, confidence=confidence)
        figures = _at(labels, scores, threshold)
        rows.append((figures["sensitivity"], figures["specificity"]))
    table = np.array(rows)
    return {
        "size": size,
        "melanomas": n_melanoma,
        "bound": confidence is not None,
        **{
            name: {
                "mean": round(float(table[:, i].mean()), 3),
                "p5": round(float(np.percentile(table[:, i], 5)), 3),
                "p95": round(float(np.percentile(table[:, i], 95)), 3),
            }
            for i, name in enumerate(("sensitivity", "specificity"))
        },
    }


def measure(config: Any, folds: int, draws: int) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    from training.datasets import load_datasets  # noqa: PLC0415
    from training.feature_cache import FeatureCache, fingerprint  # noqa: PLC0415
    from training.features import CENTRE_FRACTION, FEATURE_LAYERS  # noqa: PLC0415
    from training.splits import leave_one_source_out, split_by_source  # noqa: PLC0415
    from training.train import serving_normalisation  # noqa: PLC0415

    dataset = load_datasets(list(config.data_dirs))
    cache = FeatureCache(
        config.feature_cache,
        fingerprint(
            image_size=config.image_size, weights=config.weights, normalisation=serving_normalisation(config),
            seed=config.seed, layers=FEATURE_LAYERS, centre_fraction=CENTRE_FRACTION,
        ),
    )  # fmt: skip
    features = CachedFeatures([cache])
    result: dict[str, Any] = {"final": {}, "cross_fitted_auc": {}, "left_out": {}, "resampled": {}, "drift": {}}

    train, val = split_by_source(dataset.samples, val_fraction=config.val_fraction, seed=config.seed)
    val_labels = np.array([s.label for s in val])
    val_sources = [s.source for s in val]
    val_scores = fit_head(features, config, train)(val)
    oof, fold_val_scores = cross_fitted_scores(features, config, train, folds, also=val)
    both_labels = np.concatenate([val_labels, [s.label for s in train]])
    both_scores = np.concatenate([val_scores, oof])
    both_sources = val_sources + [s.source for s in train]
    for name, (labels, scores, sources, bound) in {
        "validation": (val_labels, val_scores, val_sources, False),
        "cross_fit": (both_labels, both_scores, both_sources, False),
        "cross_fit_bound": (both_labels, both_scores, both_sources, True),
    }.items():
        threshold, candidates = _rule(labels, scores, sources, config, bound=bound)
        names = np.array(val_sources, dtype=object)
        result["final"][name] = {
            "threshold": round(threshold, 4),
            "candidates": {key: round(value, 4) for key, value in candidates.items()},
            "validation": {
                "pooled": _at(val_labels, val_scores, threshold),
                **{s: _at(val_labels[names == s], val_scores[names == s], threshold) for s in sorted(set(val_sources))},
            },
        }
    from scipy.special import logit  # noqa: PLC0415

    final_logit = logit(np.clip(val_scores, 1e-7, 1 - 1e-7))
    shifts = [logit(np.clip(s, 1e-7, 1 - 1e-7)) - final_logit for s in fold_val_scores]
    train_labels = np.array([s.label for s in train])
    train_sources = np.array([s.source for s in train], dtype=object)
    result["cross_fitted_auc"] = {
        **{
            source: round(float(roc_auc_score(train_labels[train_sources == source], oof[train_sources == source])), 4)
            for source in sorted(set(train_sources.tolist()))
        },
        "pooled": round(float(roc_auc_score(train_labels, oof)), 4),
    }
    result["drift"] = {
        "mean_logit_shift": round(float(np.mean([s.mean() for s in shifts])), 3),
        "median_abs_logit_shift": round(float(np.median(np.abs(np.concatenate(shifts)))), 3),
    }

    all_labels = np.array([s.label for s in train] + val_labels.tolist())
    all_scores = np.concatenate([oof, np.mean(fold_val_scores, axis=0)])  # every image scored by heads that missed it
    all_sources = np.array([s.source for s in train] + val_sources, dtype=object)
    for source in sorted(set(all_sources.tolist())):
        selected = all_sources == source
        n_val = int(sum(1 for s in val_sources if s == source))
        result["resampled"][source] = [
            resampled(
                all_labels[selected],
                all_scores[selected],
                size,
                target=config.target_sensitivity,
                confidence=confidence,
                draws=draws,
                seed=config.seed,
            )  # fmt: skip
            for size, confidence in ((n_val, None), (int(selected.sum()), None), (int(selected.sum()), 0.95))
        ]

    for fold in leave_one_source_out(dataset.samples, val_fraction=config.val_fraction, seed=config.seed):
        score = fit_head(features, config, fold.train)
        fold_val_labels = np.array([s.label for s in fold.val])
        fold_val_sources = [s.source for s in fold.val]
        fold_val_scores = score(fold.val)
        fold_oof, _ = cross_fitted_scores(features, config, fold.train, folds)
        held_labels = [s.label for s in fold.held]
        held_scores = score(fold.held)
        fold_both = (
            np.concatenate([fold_val_labels, [s.label for s in fold.train]]),
            np.concatenate([fold_val_scores, fold_oof]),
            fold_val_sources + [s.source for s in fold.train],
        )
        rules = {
            "validation": _rule(fold_val_labels, fold_val_scores, fold_val_sources, config)[0],
            "cross_fit": _rule(*fold_both, config)[0],
            "cross_fit_bound": _rule(*fold_both, config, bound=True)[0],
        }
        result["left_out"][fold.left_out] = {
            name: {"threshold": round(threshold, 4), **_at(held_labels, held_scores, threshold)}
            for name, threshold in rules.items()
        }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.threshold_rules", description=__doc__.split("\n")[0])
    parser.add_argument("--feature-cache", required=True, type=Path, metavar="DIR")
    parser.add_argument("--data", action="append", required=True, metavar="DIR[:PARTS]")
    parser.add_argument("--image-size", type=int, default=320)
    parser.add_argument("--folds", type=int, default=5, help="cross-fitting folds per source (default 5)")
    parser.add_argument("--draws", type=int, default=500, help="random draws per resampled size (default 500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.2, help="as given to train_model (default 0.2)")
    parser.add_argument("--logistic-c", type=float, help="the head's C (default: the shipped recipe's)")
    parser.add_argument("--source-weighting", choices=SCHEMES, help="as given to train_model (default: the shipped)")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be at least 2.")
    if args.draws < 1:
        parser.error("--draws must be at least 1.")
    if args.logistic_c is not None and not args.logistic_c > 0:
        parser.error("--logistic-c must be above 0.")

    from training.datasets import DataFolder, DatasetError  # noqa: PLC0415
    from training.train import TrainConfig  # noqa: PLC0415

    config = TrainConfig(
        data_dirs=[DataFolder.parse(text) for text in args.data], image_size=args.image_size, seed=args.seed,
        val_fraction=args.val_fraction, feature_cache=args.feature_cache,
    )  # fmt: skip
    if args.logistic_c is not None:
        config.logistic_c = args.logistic_c
    if args.source_weighting is not None:
        config.source_weighting = args.source_weighting
    try:
        result = measure(config, args.folds, args.draws)
    except CacheMiss as error:
        print(f"{cache_miss_message(error, args)}, then run this again.", file=sys.stderr)
        return 2
    except DatasetError as error:
        print(str(error), file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
