"""Batches by length: the one batching helper of every path that embeds, predicts or fine-tunes on a CPU.

:func:`iter_batches_by_length` sorts by decreasing length and cuts batches under two bounds: a number of
sequences and a number of padded nucleotides (rows x the batch's longest). :data:`CPU_BATCH_NT` is the
nucleotide bound on a CPU (:func:`batch_nt_cap`): a batch of 128 sequences of 500 bp is 64k nucleotides
whose activations leave the caches, and the cap measured up to 1.15x faster (``docs/results.md`` section 1,
``benchmarks/cpu_batching.py``). On a GPU large batches are what it needs, so no cap there.
Used by the evaluation harness (probes, ``hadna embed``, t-SNE, validation and test predictions) and by
``HadPreTrainedModel.embed``; :func:`micro_batches` splits a fine-tuning batch the same way for gradient
accumulation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ConfigError
from .logging import get_logger

log = get_logger("utils.batching")

#: the most padded nucleotides per inference batch or fine-tuning micro-batch on a CPU (see the module notes).
CPU_BATCH_NT = 4096
#: a sequence this many times longer than the median is an outlier (warned about, batched on its own).
OUTLIER_FACTOR = 10
_WARNED_OUTLIERS: set[tuple[int, int, int, int]] = set()


def batch_nt_cap(device_type: str) -> int | None:
    """The nucleotide bound of a batch (inference) or micro-batch (fine-tuning) on ``device_type`` ("cpu", ...)."""
    return CPU_BATCH_NT if device_type == "cpu" else None


def iter_batches_by_length(lengths: Sequence[int] | np.ndarray, batch_size: int,
                           max_tokens: int | None = None) -> list[np.ndarray]:
    """Index batches for inference: a stable sort by decreasing length, then at most ``batch_size``
    sequences and at most a budget of padded nucleotides (rows x the batch's longest) per batch.

    The order changes no result (callers put each output back at its index). The budget is
    ``batch_size`` x the 95th-percentile length, lowered to ``max_tokens`` when given (never raised; e.g.
    :func:`batch_nt_cap`): homogeneous data gets full batches, while one 100 kb sequence among 200 nt
    ones is embedded alone instead of padding a whole batch to 100 kb; a batch always holds at least one
    sequence. Outliers (over ``OUTLIER_FACTOR`` x the median length) are logged once per data set.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return []
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError(f"max_tokens must be >= 1, got {max_tokens}")
    budget = batch_size * max(int(np.percentile(lengths, 95, method="higher")), 1)
    if max_tokens is not None:
        budget = min(budget, max_tokens)
    median = max(float(np.median(lengths)), 1.0)
    outliers = np.flatnonzero(lengths > OUTLIER_FACTOR * median)
    key = (lengths.size, int(median), int(lengths.max()), outliers.size)
    if outliers.size and key not in _WARNED_OUTLIERS:  # once per data set, not once per epoch
        _WARNED_OUTLIERS.add(key)
        longest = int(outliers[np.argmax(lengths[outliers])])
        log.warning("%d sequence(s) are over %dx the median length (%d nt), the longest %d nt (sequence %d); batches "
                    "hold at most %d padded nucleotides, so these run with fewer sequences, alone where longer than "
                    "that (use --max-length to truncate them)", outliers.size, OUTLIER_FACTOR, int(median),
                    int(lengths[longest]), longest + 1, budget)
    order = np.argsort(-lengths, kind="stable")
    batches, i = [], 0
    while i < len(order):
        size = max(1, min(batch_size, budget // max(int(lengths[order[i]]), 1)))
        batches.append(order[i:i + size])
        i += size
    return batches


def micro_batches(idx: np.ndarray, lengths: np.ndarray, max_nt: int | None) -> list[np.ndarray]:
    """Split one training batch ``idx`` (indices into ``lengths``) into near-equal micro-batches of about
    ``max_nt`` padded nucleotides each, longest first; the whole batch when it fits or ``max_nt`` is None.

    For gradient accumulation: the micro-batches' summed losses give the batch's gradient, while each
    forward/backward keeps its activations near the caches (``docs/results.md`` section 1). A part holds
    ``ceil(len(idx) / n)`` rows at most, so it may exceed ``max_nt`` by less than one row's length.
    """
    idx = np.asarray(idx, dtype=np.int64)
    if max_nt is not None and max_nt < 1:
        raise ConfigError(f"max_nt must be >= 1, got {max_nt}")
    if idx.size == 0:
        return []
    if max_nt is None or idx.size == 1:
        return [idx]
    sub = lengths[idx]
    n = -(-(idx.size * max(int(sub.max()), 1)) // max_nt)
    if n <= 1:
        return [idx]
    ordered = idx[np.argsort(-sub, kind="stable")]
    return np.array_split(ordered, min(n, idx.size))  # at most idx.size parts: none is empty


__all__ = ["CPU_BATCH_NT", "OUTLIER_FACTOR", "batch_nt_cap", "iter_batches_by_length", "micro_batches"]
