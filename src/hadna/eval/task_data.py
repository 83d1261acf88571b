"""The task data model: :class:`Split` (sequences + labels) and :class:`TaskData` (a loaded task's splits).

Loaders (:mod:`hadna.eval.loaders`) build them; the protocol and fine-tuning consume them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .splits import stratified_kfold, stratified_split
from .tasks import TaskSpec


@dataclass
class Split:
    """One split of a task: ``sequences`` (upper-case str) and ``labels`` [N] int64."""

    sequences: list[str]
    labels: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (len(self.sequences),):
            raise ValueError(f"{len(self.sequences)} sequences but labels of shape {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, idx: np.ndarray, source: str | None = None) -> "Split":
        """The samples at ``idx`` ([M] int indices), in that order."""
        return Split([self.sequences[i] for i in idx], self.labels[idx],
                     self.source if source is None else source)

    def hash_into(self, h: Any, role: str) -> None:
        """Feed this split's rows (count, labels, sequences) to the hashlib object ``h`` under ``role``."""
        h.update(f"\n#{role} {len(self)}\n".encode())
        h.update(self.labels.astype("<i8").tobytes())
        h.update("\n".join(self.sequences).encode())

    def fingerprint(self) -> str:
        """sha256 of the rows: equal exactly when two splits hold the same sequences and labels in the same order."""
        import hashlib

        h = hashlib.sha256()
        self.hash_into(h, "split")
        return h.hexdigest()

    @property
    def num_nt(self) -> int:
        """Total nucleotides (for throughput numbers)."""
        return sum(map(len, self.sequences))

    def class_counts(self, num_classes: int) -> list[int]:
        return np.bincount(self.labels, minlength=num_classes).tolist()


@dataclass
class TaskData:
    """A loaded task: train split, optional provided validation split, optional test split.

    ``test is None`` means the task must be cross-validated (:meth:`folds`). ``counters`` holds
    per-split numbers (``train_sequences``, ``train_truncated``, ...); ``notes`` says what was done to
    the data beyond reading it (held-out test, training on dev, truncation).
    """

    spec: TaskSpec
    train: Split
    validation: Split | None
    test: Split | None
    class_names: tuple[str, ...]
    source: str
    counters: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def needs_cross_validation(self) -> bool:
        return self.test is None

    def train_validation(self, seed: int) -> tuple[Split, Split]:
        """(train, validation): the provided validation split, or a stratified ``val_fraction`` split of
        train that depends on ``seed`` (the Caduceus protocol re-splits 90/10 for every seed)."""
        if self.validation is not None:
            return self.train, self.validation
        keep, held = stratified_split(self.train.labels, self.spec.val_fraction, seed,
                                      f"{self.train.source}: holding out a validation set")
        return (self.train.subset(keep, f"{self.train.source} (train part, seed {seed})"),
                self.train.subset(held, f"{self.train.source} (validation part, seed {seed})"))

    def folds(self, seed: int = 0) -> list[tuple[Split, Split]]:
        """``spec.cv_folds`` stratified (train, test) folds of the training data."""
        out = []
        for f, (tr, te) in enumerate(stratified_kfold(self.train.labels, self.spec.cv_folds, seed)):
            out.append((self.train.subset(tr, f"{self.train.source} (fold {f} train)"),
                        self.train.subset(te, f"{self.train.source} (fold {f} test)")))
        return out

    def fingerprint(self) -> str:
        """sha256 of every split's rows (sequence and label, after truncation) and the class names: two
        loads give the same fingerprint exactly when they hold the same data."""
        import hashlib

        h = hashlib.sha256("\t".join(self.class_names).encode())
        for role, s in (("train", self.train), ("validation", self.validation), ("test", self.test)):
            if s is not None:
                s.hash_into(h, role)
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description for run records and logs."""
        k = self.num_classes
        splits = {name: {"n": len(s), "class_counts": s.class_counts(k), "source": s.source}
                  for name, s in (("train", self.train), ("validation", self.validation), ("test", self.test))
                  if s is not None}
        return {"task": self.name, "benchmark": self.spec.benchmark, "class_names": list(self.class_names),
                "source": self.source, "splits": splits, "counters": dict(self.counters),
                "notes": list(self.notes), "fingerprint": self.fingerprint()}
