"""Batched inference of a model under evaluation: logits and pooled embeddings of many sequences.

Sequences are batched by length (longest first), which changes no result: every output row goes
back to its input index, and padding is masked inside the models. A batch holds at most ``batch_size``
sequences and, for a neural model on a CPU, at most :data:`~hadna.utils.batching.CPU_BATCH_NT` padded
nucleotides (the model's ``batch_nt_cap``). Outputs are written into one preallocated array (optionally a
memory-mapped ``.npy``), so memory stays at one batch of activations plus the ``[N, K]`` / ``[N, D]`` result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..utils.logging import progress
from ..utils.batching import iter_batches_by_length
from .models import EvalModel


@dataclass
class Throughput:
    """Nucleotides processed and seconds spent (``nt_per_s`` = their ratio)."""

    nucleotides: int = 0
    seconds: float = 0.0

    @property
    def nt_per_s(self) -> float | None:
        return self.nucleotides / self.seconds if self.seconds > 0 else None

    def add(self, other: "Throughput") -> None:
        self.nucleotides += other.nucleotides
        self.seconds += other.seconds


@torch.no_grad()
def predict_logits(model: EvalModel, seqs: Sequence[str], batch_size: int = 256, rc_average: bool = False,
                   desc: str = "predicting", show_progress: bool | None = None) -> tuple[np.ndarray, Throughput]:
    """Logits ``[N, K]`` float32 of ``seqs`` in input order, with the model in eval mode.

    ``rc_average``: average each sequence's logits with its reverse complement's (test-time
    augmentation). The model's previous train/eval mode is restored afterwards.
    """
    was_training = model.module.training
    model.eval()
    out = np.empty((len(seqs), model.num_labels), dtype=np.float32)
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    start = time.perf_counter()
    try:
        batches = iter_batches_by_length(lengths, batch_size, model.batch_nt_cap)
        for idx in progress(batches, desc=desc, disable=_off(show_progress)):
            logits = model.logits([seqs[i] for i in idx], rc_average=rc_average)
            out[idx] = logits.float().cpu().numpy()
    finally:
        model.train(was_training)
    return out, Throughput(int(lengths.sum()), time.perf_counter() - start)


@torch.no_grad()
def embed_sequences(model: EvalModel, seqs: Sequence[str], batch_size: int = 128, out: np.ndarray | None = None,
                    desc: str = "embedding", show_progress: bool | None = None) -> tuple[np.ndarray, Throughput]:
    """Pooled features ``[N, D]`` float32 of ``seqs`` (frozen encoder, eval mode), in input order.

    ``out``: an array to fill (e.g. ``np.lib.format.open_memmap``) instead of a new one.
    """
    n = len(seqs)
    if out is None:
        out = np.empty((n, model.hidden_size), dtype=np.float32)
    elif out.shape != (n, model.hidden_size):
        raise ValueError(f"out has shape {out.shape}, expected {(n, model.hidden_size)}")
    was_training = model.module.training
    model.eval()
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=n)
    start = time.perf_counter()
    try:
        batches = iter_batches_by_length(lengths, batch_size, model.batch_nt_cap)
        for idx in progress(batches, desc=desc, disable=_off(show_progress)):
            out[idx] = model.features([seqs[i] for i in idx]).float().cpu().numpy()
    finally:
        model.train(was_training)
    return out, Throughput(int(lengths.sum()), time.perf_counter() - start)


def _off(show: bool | None) -> bool | None:
    """progress() decides by itself (tty or not) unless told explicitly."""
    return None if show is None else not show


class EmbeddingCache:
    """Embeddings of the rows of several named splits, each row computed at most once.

    ``get(name, idx)`` returns ``[len(idx), D]``, embedding only rows not seen before (in one batched
    pass). Used by the linear probe: seeds and folds re-use the same frozen features.
    """

    def __init__(self, model: EvalModel, splits: dict[str, Sequence[str]], batch_size: int = 128):
        self.model = model
        self.splits = splits
        self.batch_size = batch_size
        self.arrays = {k: np.zeros((len(v), model.hidden_size), dtype=np.float32) for k, v in splits.items()}
        self.done = {k: np.zeros(len(v), dtype=bool) for k, v in splits.items()}
        self.throughput = Throughput()

    def get(self, name: str, idx: np.ndarray | None = None) -> np.ndarray:
        seqs = self.splits[name]
        idx = np.arange(len(seqs)) if idx is None else np.asarray(idx, dtype=np.int64)
        todo = np.unique(idx[~self.done[name][idx]])
        if todo.size:
            feats, tp = embed_sequences(self.model, [seqs[i] for i in todo], self.batch_size,
                                        desc=f"embedding {name} ({todo.size:,})")
            self.arrays[name][todo] = feats
            self.done[name][todo] = True
            self.throughput.add(tp)
        return self.arrays[name][idx]
