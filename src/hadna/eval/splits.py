"""Stratified, seed-deterministic splits: train/validation (or train/test) and k-fold.

Both functions work on label arrays only and return index arrays, so they apply to any dataset.
The same ``seed`` always gives the same split (NumPy's PCG64 generator, independent of global
state); different seeds give different splits.

Allocation rule of :func:`stratified_split`: the held-out part gets ``round(fraction * N)`` samples
in total, shared between classes in proportion to their size (largest-remainder rounding), then
adjusted so that every class with at least 2 samples has at least one sample on each side (taking the
extra samples back from the classes most over their share). A class with a single sample stays on
the training side. Only when there are more small classes than held-out places does the held-out
part grow beyond ``round(fraction * N)``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError


def _as_labels(labels) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise DataError(f"labels must be a 1-D array, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"labels must be integers, got dtype {y.dtype}")
    return y.astype(np.int64, copy=False)


def stratified_split(labels, fraction: float = 0.1, seed: int = 0, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, held_out), stratified by label (``where`` names the data in errors).

    labels: [N] integer class labels. Returns two sorted int64 index arrays that partition
    ``range(N)``; ``held_out`` has about ``fraction * N`` samples (see the module docstring).
    The default 0.1 is the 90/10 train/validation split of the Caduceus protocol.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"split fraction must be in (0, 1), got {fraction}")
    prefix = f"{where}: " if where else ""
    y = _as_labels(labels)
    n = y.size
    if n < 2:
        raise DataError(f"{prefix}cannot split {n} sample(s) into two non-empty parts")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)

    # Largest-remainder allocation of round(fraction * n) held-out samples across classes.
    target = int(round(fraction * n))
    ideal = fraction * counts
    alloc = np.floor(ideal).astype(np.int64)
    remainder = target - int(alloc.sum())
    if remainder > 0:
        order = np.argsort(-(ideal - alloc), kind="stable")
        alloc[order[:remainder]] += 1
    # Every class with >= 2 samples on both sides; singletons stay in the kept part.
    floor = np.where(counts >= 2, 1, 0)
    alloc = np.where(counts >= 2, np.clip(alloc, 1, counts - 1), 0)
    # Raising rare classes to one sample may overshoot the target: give the excess back from the
    # classes that are most over their proportional share (never below their floor).
    excess = int(alloc.sum()) - target
    while excess > 0:
        room = np.flatnonzero(alloc > floor)
        if room.size == 0:
            break
        worst = room[np.argmax((alloc - ideal)[room])]
        alloc[worst] -= 1
        excess -= 1
    if alloc.sum() == 0:
        raise DataError(f"{prefix}cannot hold out any sample: every class has a single sample")

    held: list[np.ndarray] = []
    for cls, k in zip(classes, alloc):
        idx = np.flatnonzero(y == cls)
        held.append(rng.permutation(idx)[:k])
    held_out = np.sort(np.concatenate(held))
    mask = np.ones(n, dtype=bool)
    mask[held_out] = False
    return np.flatnonzero(mask), held_out


def stratified_kfold(labels, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` stratified folds: a list of (train_idx, test_idx), each test part used exactly once.

    labels: [N] integer class labels. Within each class the samples are shuffled and dealt to folds
    round-robin, starting where the previous class stopped, so fold sizes differ by at most one and
    each class is spread as evenly as possible (a class with fewer than ``k`` samples is absent from
    some test folds). Used when a task has a single split (e.g. only human_enhancers_cohn's test
    split is available offline): cross-validate within it.
    """
    if k < 2:
        raise ConfigError(f"k-fold needs k >= 2, got {k}")
    y = _as_labels(labels)
    n = y.size
    if n < k:
        raise DataError(f"cannot make {k} folds from {n} samples")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(n, dtype=np.int64)
    offset = 0
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        fold_of[idx] = (offset + np.arange(idx.size)) % k
        offset = (offset + idx.size) % k
    # Which fold is "first" is itself random, so fold 0 is not always the one with the extra samples.
    relabel = rng.permutation(k)
    fold_of = relabel[fold_of]
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]
