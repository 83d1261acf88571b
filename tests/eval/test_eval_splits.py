"""Stratified split and k-fold: partition, stratification, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from hadna.errors import ConfigError, DataError
from hadna.eval.splits import stratified_kfold, stratified_split

LABELS = np.repeat([0, 1, 2], [60, 30, 10])


def test_split_partitions_and_is_stratified():
    keep, held = stratified_split(LABELS, 0.1, seed=0)
    assert sorted(np.concatenate([keep, held]).tolist()) == list(range(100))
    assert len(held) == 10
    assert np.bincount(LABELS[held]).tolist() == [6, 3, 1]
    assert np.bincount(LABELS[keep]).tolist() == [54, 27, 9]


def test_split_same_seed_same_split_different_seed_different_split():
    a = stratified_split(LABELS, 0.1, seed=1)
    b = stratified_split(LABELS, 0.1, seed=1)
    c = stratified_split(LABELS, 0.1, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    assert np.bincount(LABELS[c[1]]).tolist() == [6, 3, 1]  # still stratified


def test_split_does_not_depend_on_global_random_state():
    np.random.seed(0)
    a = stratified_split(LABELS, 0.2, seed=3)
    np.random.seed(123)
    b = stratified_split(LABELS, 0.2, seed=3)
    assert np.array_equal(a[1], b[1])


@pytest.mark.parametrize("labels,expect_held", [
    (np.repeat([0, 1], [18, 2]), [1, 1]),    # the rare class still gets one held-out sample
    (np.repeat([0, 1], [19, 1]), [2, 0]),    # a singleton class stays on the training side
    (np.repeat([0, 1, 2], [5, 5, 2]), [1, 1, 1]),
], ids=["rare-class", "singleton", "tiny"])
def test_every_class_on_both_sides_when_possible(labels, expect_held):
    keep, held = stratified_split(labels, 0.1, seed=0)
    assert np.bincount(labels[held], minlength=len(expect_held)).tolist() == expect_held
    for c in np.unique(labels):
        if (labels == c).sum() >= 2:
            assert (labels[keep] == c).any() and (labels[held] == c).any()


def test_split_errors():
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        stratified_split(LABELS, 1.0)
    with pytest.raises(DataError, match="cannot split 1"):
        stratified_split([0], 0.5)
    with pytest.raises(DataError, match="single sample"):
        stratified_split([0, 1, 2], 0.5)
    with pytest.raises(DataError, match="integers"):
        stratified_split([0.5, 1.0], 0.5)


def test_kfold_partitions_each_sample_once_and_stratifies():
    folds = stratified_kfold(LABELS, k=5, seed=0)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(100))
    for tr, te in folds:
        assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 100
        assert np.bincount(LABELS[te], minlength=3).tolist() == [12, 6, 2]


def test_kfold_uneven_sizes_and_determinism():
    labels = np.repeat([0, 1], [23, 9])
    folds = stratified_kfold(labels, k=5, seed=4)
    sizes = sorted(len(te) for _, te in folds)
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 32
    for _, te in folds:
        assert (labels[te] == 1).sum() in (1, 2)
    again = stratified_kfold(labels, k=5, seed=4)
    other = stratified_kfold(labels, k=5, seed=5)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(folds, other))


def test_kfold_errors():
    with pytest.raises(ConfigError, match="k >= 2"):
        stratified_kfold(LABELS, k=1)
    with pytest.raises(DataError, match="5 folds from 3"):
        stratified_kfold([0, 1, 0], k=5)
