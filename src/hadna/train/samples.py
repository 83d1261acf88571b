"""Training samples of HAD pre-training as pure functions of their index.

Sample ``i`` is: the window :meth:`GenomeWindows.sample_ids` draws for ``i`` (start, strand), its teacher
tokenisation (a :class:`~hadna.teachers.spans.SpanTokenizer`, NT 6-mers by default), and a two-stage
mask seeded by ``mask_seed(train_seed, i)``, as a :class:`MaskPlan` says. Nothing depends on which
batch, micro-batch, rank or process the sample lands in, so single-process, gradient-accumulating
and DDP runs see identical samples, and a feature cache can store sample ``i`` once.

Validation sample ``j`` is validation window ``j`` with a mask seeded by ``(train_seed, j)`` on a
separate stream, so validation masks never change during or between runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..data import GenomeWindows, counter_hash
from ..masking import MaskedBatch, two_stage_mask
from ..teachers import NT_TOKEN_TO_ID
from ..teachers.spans import KmerSpanTokenizer, SpanTokenizer


def _canonical_nt() -> KmerSpanTokenizer:
    return KmerSpanTokenizer(np.arange(len(NT_TOKEN_TO_ID), dtype=np.int64))


@dataclass
class MaskPlan:
    """How a window becomes a masked sample: the teacher's span tokenizer, the masked fraction of stage 1,
    its group size (used when the teacher has one token per nucleotide; 1 = single tokens) and what the
    teacher reads (``mask_token`` / ``n`` / ``causal_prefix``, :mod:`hadna.masking`)."""

    mask_ratio: float = 0.15
    spans: SpanTokenizer = field(default_factory=_canonical_nt)
    group_size: int = 1
    teacher_input: str = "mask_token"

    def describe(self) -> dict[str, Any]:
        """What determines the masks and the teacher's input (part of the feature-cache fingerprint)."""
        d = self.spans.describe()
        structure = {"family": d["family"], **{k: d[k] for k in ("prefix", "suffix", "padding_side") if k in d}}
        if "prefix" in structure:
            structure["prefix"], structure["suffix"] = len(structure["prefix"]), len(structure["suffix"])
        return {"mask_ratio": self.mask_ratio, "group_size": self.effective_group_size,
                "teacher_input": self.teacher_input, "tokens": structure}

    @property
    def effective_group_size(self) -> int:
        """``group_size`` for one-token-per-nucleotide teachers; 1 for k-mer / BPE tokens (already groups)."""
        return self.group_size if self.spans.family == "char" else 1

_TRAIN_MASK_TAG = 0x74726D61736B0001  # "trmask": keeps mask seeds apart from the window-sampling stream
_VAL_MASK_TAG = 0x76616D61736B0002    # "vamask"


def mask_seeds(train_seed: int, indices: np.ndarray, validation: bool = False) -> list[int]:
    """One 64-bit mask seed per sample index (a counter-based hash, platform independent)."""
    tag = _VAL_MASK_TAG if validation else _TRAIN_MASK_TAG
    words = counter_hash((int(train_seed) ^ tag) & ((1 << 64) - 1), np.asarray(indices, dtype=np.int64), 0)
    return [int(w) for w in words.tolist()]


def plan_for(masking, spans: SpanTokenizer | None = None, causal: bool = False) -> MaskPlan:
    """The :class:`MaskPlan` of a config's ``masking`` section (:class:`~hadna.train.config.MaskingSection`) for a
    teacher with these span tokens (None = NT 6-mers, canonical ids) that is (or is not) causal.

    ``teacher_input: auto`` = ``n`` for a causal teacher with one token per nucleotide, else ``mask_token``.
    """
    from ..errors import ConfigError

    spans = spans if spans is not None else _canonical_nt()
    mode = masking.teacher_input
    if mode == "auto":
        mode = "n" if causal and spans.n_token_id is not None else "mask_token"
    if mode == "mask_token" and spans.mask_token_id is None:
        raise ConfigError("the teacher has no mask token: set masking.teacher_input to n (one token per nucleotide) "
                          "or causal_prefix (causal teachers)")
    if mode == "n" and spans.n_token_id is None:
        raise ConfigError(f"masking.teacher_input n needs a teacher with one token per nucleotide; this teacher's "
                          f"tokens are {spans.family} (replacing bases by N would re-tokenise them)")
    if mode == "causal_prefix" and not causal:
        raise ConfigError("masking.teacher_input causal_prefix is for causal teachers only: a bidirectional teacher's "
                          "visible tokens would read the masked bases")
    return MaskPlan(masking.mask_ratio, spans, masking.group_size, mode)


def mask_windows(ids: torch.Tensor, seeds: Sequence[int], plan: MaskPlan) -> MaskedBatch:
    """ids: LongTensor ``[B, L]`` windows (no padding) -> their two-stage masked batch.

    The teacher side uses the plan's span tokenizer (the checkpoint's own ids). The masks depend only
    on the spans, the seeds, the ratio and the group size.
    """
    toks = plan.spans(ids)
    return two_stage_mask(ids, None, toks.input_ids, toks.attention_mask, toks.span_start, toks.span_len,
                          plan.spans.mask_token_id, list(seeds), plan.mask_ratio,
                          group_size=plan.effective_group_size, teacher_input=plan.teacher_input,
                          teacher_n_id=plan.spans.n_token_id)


def train_samples(windows: GenomeWindows, indices: np.ndarray, train_seed: int, plan: MaskPlan) -> MaskedBatch:
    """Masked batch of training samples ``indices`` (int64 ``[B]``)."""
    ids, _, _ = windows.sample_ids(indices)
    return mask_windows(torch.from_numpy(ids.astype(np.int64)), mask_seeds(train_seed, indices), plan)


def val_samples(windows: GenomeWindows, val_ids: torch.Tensor, indices: np.ndarray, train_seed: int,
                plan: MaskPlan) -> MaskedBatch:
    """Masked batch of validation windows ``indices`` (rows of ``val_ids`` = ``windows.val_windows()``)."""
    return mask_windows(val_ids[torch.from_numpy(np.asarray(indices, dtype=np.int64))],
                        mask_seeds(train_seed, indices, validation=True), plan)


def token_counts(windows: GenomeWindows, indices: np.ndarray, val_ids: torch.Tensor | None = None,
                 spans: SpanTokenizer | None = None) -> np.ndarray:
    """Teacher token counts (specials included; NT 6-mers by default) of training samples ``indices``
    (or of validation windows)."""
    if val_ids is None:
        ids, _, _ = windows.sample_ids(indices)
        ids_t = torch.from_numpy(ids.astype(np.int64))
    else:
        ids_t = val_ids[torch.from_numpy(np.asarray(indices, dtype=np.int64))]
    spans = spans if spans is not None else _canonical_nt()
    return spans(ids_t).attention_mask.sum(1).numpy().astype(np.int64)
