"""Fixtures of the training tests: a small real-DNA genome, a random NT teacher, one CPU thread."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from hadna.resources import GENOME_SAMPLE_PRETRAIN


def _genome_slice(n_records: int = 40) -> str:
    """The first records of the shipped chr22 sample (~100 kb of real human DNA) as FASTA text."""
    out, count = [], 0
    with gzip.open(GENOME_SAMPLE_PRETRAIN, "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                count += 1
                if count > n_records:
                    break
            out.append(line)
    return "".join(out)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is ~100x faster than two spinning ones."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def genome_fasta(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("genome") / "chr22_slice.fa"
    path.write_text(_genome_slice())
    return path


@pytest.fixture(scope="session")
def teacher_dir(tmp_path_factory) -> Path:
    from hadna.teachers import make_random_nt_teacher

    return make_random_nt_teacher(tmp_path_factory.mktemp("teacher") / "nt-tiny", hidden_size=32, num_layers=2,
                                  num_heads=2, intermediate_size=64, max_length_nt=256, seed=0)
