"""A real labelled task derived from a soft-masked genome: repeat vs non-repeat windows.

Soft-masked assemblies write RepeatMasker/TRF/Dust repeats in lowercase. Cutting a held-out stretch of
genome into non-overlapping windows and labelling each by how much of it is lowercase gives a real,
balanced binary task that needs no other data:

* label 1 (repeat): at least ``min_repeat_fraction`` of the window is lowercase;
* label 0 (non-repeat): at most ``max_nonrepeat_fraction`` is lowercase;
* windows in between, or containing N, are dropped.

Sequences are written in uppercase, so a model can only solve the task from sequence content, never
from case. The split is by position: windows from the first ``1 - test_fraction`` of the records (file
order = genome order) are for training, the rest for testing, so no test window neighbours a training
window. Classes are balanced by a seeded subsample. The FASTA used here must not be part of pre-training
(the shipped demo keeps it in a separate file).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..utils.io import atomic_path
from .fasta import iter_fasta


@dataclass
class RepeatTaskSummary:
    train_counts: tuple[int, int]
    test_counts: tuple[int, int]
    windows_seen: int
    windows_ambiguous: int
    windows_with_n: int

    def to_dict(self) -> dict:
        return {"train": {"non_repeat": self.train_counts[0], "repeat": self.train_counts[1]},
                "test": {"non_repeat": self.test_counts[0], "repeat": self.test_counts[1]},
                "windows_seen": self.windows_seen, "windows_ambiguous": self.windows_ambiguous,
                "windows_with_n": self.windows_with_n}


def _windows(fasta: str | Path, window: int):
    """Yield (record_index, sequence, lowercase_fraction, has_n) per non-overlapping window."""
    for rec_idx, (_, seq) in enumerate(iter_fasta(fasta)):
        raw = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
        lower = (raw >= ord("a")) & (raw <= ord("z"))
        is_n = (raw == ord("N")) | (raw == ord("n"))
        for start in range(0, len(seq) - window + 1, window):
            sl = slice(start, start + window)
            yield rec_idx, seq[sl].upper(), float(lower[sl].mean()), bool(is_n[sl].any())


def build_repeat_task(fasta: str | Path, out_dir: str | Path, window: int = 200, test_fraction: float = 0.2,
                      min_repeat_fraction: float = 0.9, max_nonrepeat_fraction: float = 0.1,
                      max_per_class: int | None = None, seed: int = 0) -> RepeatTaskSummary:
    """Write ``out_dir/{train,test}.csv`` (columns ``sequence,label``) and return the class counts."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_records = sum(1 for _ in iter_fasta(fasta))
    if n_records < 2:
        raise DataError(f"{fasta}: need at least 2 records to split train/test by position, found {n_records}")
    first_test_record = int(round(n_records * (1 - test_fraction)))
    pools: dict[str, dict[int, list[str]]] = {"train": {0: [], 1: []}, "test": {0: [], 1: []}}
    seen = ambiguous = with_n = 0
    for rec_idx, seq, frac, has_n in _windows(fasta, window):
        seen += 1
        if has_n:
            with_n += 1
            continue
        label = 1 if frac >= min_repeat_fraction else 0 if frac <= max_nonrepeat_fraction else None
        if label is None:
            ambiguous += 1
            continue
        pools["test" if rec_idx >= first_test_record else "train"][label].append(seq)

    rng = np.random.default_rng(seed)
    counts = {}
    out_dir = Path(out_dir)
    for split, by_label in pools.items():
        n = min(len(by_label[0]), len(by_label[1]))
        if max_per_class is not None:
            n = min(n, max_per_class if split == "train" else max(1, int(max_per_class * test_fraction / (1 - test_fraction))))
        if n == 0:
            raise DataError(f"{fasta}: the {split} part has no windows of one class "
                            f"(non-repeat {len(by_label[0])}, repeat {len(by_label[1])}); use more sequence")
        rows = []
        for label in (0, 1):
            keep = np.sort(rng.choice(len(by_label[label]), size=n, replace=False))
            rows += [(by_label[label][i], label) for i in keep]
        order = rng.permutation(len(rows))
        with atomic_path(out_dir / f"{split}.csv") as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["sequence", "label"])
            writer.writerows(rows[i] for i in order)
        counts[split] = (n, n)
    return RepeatTaskSummary(counts["train"], counts["test"], seen, ambiguous, with_n)
