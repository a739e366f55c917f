"""Train / validation splits grouped by lesion or patient and stratified by the melanoma label.

HAM10000 holds several images of one lesion: splitting by image puts near-copies on both sides and inflates
every validation metric, so a group (lesion / patient id) always lands wholly on one side.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold


class _Labelled(Protocol):
    # Read-only, so frozen dataclasses (training.datasets.Sample) match.
    @property
    def label(self) -> int: ...
    @property
    def group(self) -> str: ...


SampleT = TypeVar("SampleT", bound=_Labelled)


def grouped_stratified_split(
    samples: Sequence[SampleT], *, val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[SampleT], list[SampleT]]:
    """Split into (train, validation); the same samples and seed always give the same split.

    The validation share is 1 / round(1 / val_fraction) of the groups (0.2 -> one fold of five), balanced so
    each side has about the same melanoma rate.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie between 0 and 1, got {val_fraction}.")
    n_folds = max(2, round(1.0 / val_fraction))
    groups = [sample.group for sample in samples]
    n_groups = len(set(groups))
    if n_groups < n_folds:
        raise ValueError(
            f"Cannot hold out {val_fraction:.0%} of {n_groups} lesion/patient groups: need at least {n_folds} groups."
        )
    fold_of = grouped_stratified_folds(samples, n_folds=n_folds, seed=seed)
    train = [sample for sample, fold in zip(samples, fold_of, strict=True) if fold != 0]
    return train, [sample for sample, fold in zip(samples, fold_of, strict=True) if fold == 0]


def grouped_stratified_folds(samples: Sequence[SampleT], *, n_folds: int, seed: int = 0) -> np.ndarray:
    """The fold (0 .. n_folds - 1) of each sample: groups whole, each fold with about the same melanoma rate.

    Fold 0 is `grouped_stratified_split`'s validation side; all of them cross-fit (bench.threshold_rules).
    """
    labels = np.array([sample.label for sample in samples])
    groups = [sample.group for sample in samples]
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of = np.empty(len(samples), dtype=int)
    with warnings.catch_warnings():
        # A class rarer than n_folds only warns; the split stays valid (grouped), just less balanced.
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, held) in enumerate(splitter.split(np.zeros(len(samples)), labels, groups)):
            fold_of[held] = fold
    return fold_of


VALIDATION_PART = "valid"


class _Sourced(_Labelled, Protocol):
    # Read-only like _Labelled's members: a frozen dataclass has no settable attributes.
    @property
    def source(self) -> str: ...
    @property
    def part(self) -> str | None: ...


SourcedT = TypeVar("SourcedT", bound=_Sourced)


def split_by_source(
    samples: Sequence[SourcedT], *, val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[SourcedT], list[SourcedT]]:
    """Train / validation, decided per source, so every source is represented on both sides.

    A source with its own split column and a `valid` part (ISIC 2017) keeps its challenge split: `valid` is
    validation, every other part it was given is training. Any other source is split by
    `grouped_stratified_split` on its own samples. With one source and no split column this is exactly
    `grouped_stratified_split(samples)`, so the split of a single-source card is reproduced unchanged.
    """
    by_source: dict[str, list[SourcedT]] = {}
    for sample in samples:
        by_source.setdefault(sample.source, []).append(sample)
    train: list[SourcedT] = []
    val: list[SourcedT] = []
    for source_samples in by_source.values():
        if any(sample.part == VALIDATION_PART for sample in source_samples):
            train += [sample for sample in source_samples if sample.part != VALIDATION_PART]
            val += [sample for sample in source_samples if sample.part == VALIDATION_PART]
        else:
            source_train, source_val = grouped_stratified_split(source_samples, val_fraction=val_fraction, seed=seed)
            train += source_train
            val += source_val
    return train, val


@dataclass(frozen=True)
class SourceFold(Generic[SourcedT]):
    """One leave-one-source-out fold: the others split as train() splits them, the left-out source whole."""

    left_out: str
    train: list[SourcedT]
    val: list[SourcedT]
    held: list[SourcedT]  # every image of the left-out source (the parts it was given); nothing of it is fitted


def leave_one_source_out(
    samples: Sequence[SourcedT], *, val_fraction: float = 0.2, seed: int = 0
) -> Iterator[SourceFold[SourcedT]]:
    """Each source left out in turn, in name order; the others are split by `split_by_source`."""
    for left_out in sorted({sample.source for sample in samples}):
        others = [sample for sample in samples if sample.source != left_out]
        held = [sample for sample in samples if sample.source == left_out]
        train, val = split_by_source(others, val_fraction=val_fraction, seed=seed)
        yield SourceFold(left_out=left_out, train=train, val=val, held=held)


def describe_split(val_fraction: float, seed: int) -> str:
    """The card's data.split text; evaluate_model reads val_fraction and seed back from it."""
    return (
        f"per source: a source's own '{VALIDATION_PART}' part when its split column has one, otherwise grouped by "
        f"lesion/patient, stratified, val_fraction {val_fraction}, seed {seed}"
    )
