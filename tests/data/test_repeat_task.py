"""The repeat vs non-repeat task built from soft-masking."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from hadna.data.repeat_task import build_repeat_task
from hadna.errors import DataError


def write_genome(path, n_records=10, seed=0):
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for r in range(n_records):
            parts = []
            for _ in range(6):  # alternate 100-bp blocks: upper, lower, mixed
                block = "".join(rng.choice(list("ACGT"), 100))
                kind = rng.integers(3)
                parts.append(block if kind == 0 else block.lower() if kind == 1 else block[:50] + block[50:].lower())
            fh.write(f">r{r}\n{''.join(parts)}\n")


def read(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_labels_follow_soft_masking_and_sequences_are_uppercase(tmp_path):
    fa = tmp_path / "g.fa"
    write_genome(fa)
    summary = build_repeat_task(fa, tmp_path / "task", window=100, test_fraction=0.3, seed=1)
    train, test = read(tmp_path / "task" / "train.csv"), read(tmp_path / "task" / "test.csv")
    assert summary.train_counts[0] == summary.train_counts[1] == sum(r["label"] == "1" for r in train)
    assert len(test) == sum(summary.test_counts)
    raw = fa.read_text()
    for row in train + test:
        seq = row["sequence"]
        assert seq == seq.upper() and len(seq) == 100
        # the window appears in the genome in exactly the case its label says
        assert (seq.lower() in raw) == (row["label"] == "1")
        assert (seq in raw) == (row["label"] == "0")
    assert not {r["sequence"] for r in train} & {r["sequence"] for r in test}


def test_deterministic_and_seeded(tmp_path):
    fa = tmp_path / "g.fa"
    write_genome(fa, n_records=20)
    build_repeat_task(fa, tmp_path / "a", window=100, seed=3)
    build_repeat_task(fa, tmp_path / "b", window=100, seed=3)
    assert (tmp_path / "a" / "train.csv").read_text() == (tmp_path / "b" / "train.csv").read_text()


def test_too_little_sequence_is_a_clear_error(tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(">a\nacgtacgtac\n>b\nACGTACGTAC\n")
    with pytest.raises(DataError, match="no windows of one class"):
        build_repeat_task(fa, tmp_path / "t", window=10, test_fraction=0.5)
