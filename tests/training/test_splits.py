from pathlib import Path

import pytest

from training.datasets import Sample
from training.splits import grouped_stratified_folds, grouped_stratified_split


def make_samples(n_groups: int = 50, *, images_per_group: int = 3, melanoma_every: int = 5) -> list[Sample]:
    """Groups of several images each (like HAM10000 lesions); every `melanoma_every`-th group is melanoma."""
    return [
        Sample(
            path=Path(f"/data/g{group}_{copy}.jpg"),
            label=int(group % melanoma_every == 0),
            dx="mel" if group % melanoma_every == 0 else "nv",
            group=f"ham/lesion{group}",
            source="ham",
        )
        for group in range(n_groups)
        for copy in range(1 + group % images_per_group)
    ]


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_no_group_on_both_sides(seed):
    samples = make_samples()

    train, val = grouped_stratified_split(samples, val_fraction=0.2, seed=seed)

    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    assert sorted(map(str, (s.path for s in train + val))) == sorted(map(str, (s.path for s in samples)))


def test_stratified_and_about_the_requested_size():
    samples = make_samples(n_groups=100)

    train, val = grouped_stratified_split(samples, val_fraction=0.2, seed=0)

    val_groups = {s.group for s in val}
    assert 15 <= len(val_groups) <= 25  # 20 % of 100 groups
    melanoma_groups_in_val = {s.group for s in val if s.label == 1}
    assert 3 <= len(melanoma_groups_in_val) <= 5  # 20 % of the 20 melanoma groups
    assert any(s.label == 1 for s in train)


def test_same_seed_same_split_other_seed_other_split():
    samples = make_samples()

    first = grouped_stratified_split(samples, seed=3)
    again = grouped_stratified_split(list(samples), seed=3)
    other = grouped_stratified_split(samples, seed=4)

    assert first == again
    assert {s.group for s in first[1]} != {s.group for s in other[1]}


def test_too_few_groups_is_a_clear_error():
    samples = make_samples(n_groups=3)

    with pytest.raises(ValueError, match="need at least 5 groups"):
        grouped_stratified_split(samples, val_fraction=0.2)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_fraction_must_be_a_share(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        grouped_stratified_split(make_samples(), val_fraction=fraction)


def test_every_fold_keeps_groups_whole_and_fold_0_is_the_split():
    samples = make_samples(n_groups=100)

    fold_of = grouped_stratified_folds(samples, n_folds=5, seed=3)

    assert sorted(set(fold_of.tolist())) == [0, 1, 2, 3, 4]
    for group in {s.group for s in samples}:
        assert len({fold for s, fold in zip(samples, fold_of, strict=True) if s.group == group}) == 1
    melanoma_per_fold = [sum(s.label for s, f in zip(samples, fold_of, strict=True) if f == fold) for fold in range(5)]
    assert max(melanoma_per_fold) - min(melanoma_per_fold) <= 2  # stratified: the melanomas spread evenly
    _, val = grouped_stratified_split(samples, val_fraction=0.2, seed=3)
    assert [s.path for s in val] == [s.path for s, fold in zip(samples, fold_of, strict=True) if fold == 0]
