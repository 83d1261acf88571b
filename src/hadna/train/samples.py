"""Training samples of HAD pre-training as pure functions of their index.

Sample ``i`` is: the window :meth:`GenomeWindows.sample_ids` draws for ``i`` (start, strand), its NT
tokenisation, and a two-stage mask seeded by ``mask_seed(train_seed, i)``. Nothing depends on which
batch, micro-batch, rank or process the sample lands in, so single-process, gradient-accumulating
and DDP runs see identical samples, and a feature cache can store sample ``i`` once.

Validation sample ``j`` is validation window ``j`` with a mask seeded by ``(train_seed, j)`` on a
separate stream, so validation masks never change during or between runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from ..data import GenomeWindows, counter_hash
from ..masking import MaskedBatch, two_stage_mask
from ..teachers import NT_MASK_ID, nt_tokenize_batch

if TYPE_CHECKING:
    from ..teachers import Teacher

_TRAIN_MASK_TAG = 0x74726D61736B0001  # "trmask": keeps mask seeds apart from the window-sampling stream
_VAL_MASK_TAG = 0x76616D61736B0002    # "vamask"


def mask_seeds(train_seed: int, indices: np.ndarray, validation: bool = False) -> list[int]:
    """One 64-bit mask seed per sample index (a counter-based hash, platform independent)."""
    tag = _VAL_MASK_TAG if validation else _TRAIN_MASK_TAG
    words = counter_hash((int(train_seed) ^ tag) & ((1 << 64) - 1), np.asarray(indices, dtype=np.int64), 0)
    return [int(w) for w in words.tolist()]


def mask_windows(ids: torch.Tensor, seeds: Sequence[int], mask_ratio: float,
                 teacher: "Teacher | None" = None) -> MaskedBatch:
    """ids: LongTensor ``[B, L]`` windows (no padding) -> their two-stage masked batch.

    With a live ``teacher`` the teacher side uses the checkpoint's own token ids and mask id;
    otherwise NT's canonical ids. The masks are the same either way: they depend only on the spans.
    """
    if teacher is not None:
        toks = teacher.tokenize_batch(ids)
        mask_id = teacher.mask_token_id
    else:
        toks = nt_tokenize_batch(ids)
        mask_id = NT_MASK_ID
    return two_stage_mask(ids, None, toks.input_ids, toks.attention_mask, toks.span_start, toks.span_len,
                          mask_id, list(seeds), mask_ratio)


def train_samples(windows: GenomeWindows, indices: np.ndarray, train_seed: int, mask_ratio: float,
                  teacher: "Teacher | None" = None) -> MaskedBatch:
    """Masked batch of training samples ``indices`` (int64 ``[B]``)."""
    ids, _, _ = windows.sample_ids(indices)
    return mask_windows(torch.from_numpy(ids.astype(np.int64)), mask_seeds(train_seed, indices), mask_ratio, teacher)


def val_samples(windows: GenomeWindows, val_ids: torch.Tensor, indices: np.ndarray, train_seed: int,
                mask_ratio: float, teacher: "Teacher | None" = None) -> MaskedBatch:
    """Masked batch of validation windows ``indices`` (rows of ``val_ids`` = ``windows.val_windows()``)."""
    return mask_windows(val_ids[torch.from_numpy(np.asarray(indices, dtype=np.int64))],
                        mask_seeds(train_seed, indices, validation=True), mask_ratio, teacher)


def token_counts(windows: GenomeWindows, indices: np.ndarray, val_ids: torch.Tensor | None = None) -> np.ndarray:
    """NT token counts (``<cls>`` included) of training samples ``indices`` (or of validation windows)."""
    if val_ids is None:
        ids, _, _ = windows.sample_ids(indices)
        ids_t = torch.from_numpy(ids.astype(np.int64))
    else:
        ids_t = val_ids[torch.from_numpy(np.asarray(indices, dtype=np.int64))]
    return nt_tokenize_batch(ids_t).attention_mask.sum(1).numpy().astype(np.int64)
