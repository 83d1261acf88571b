"""Two-stage grouping mask: mask the teacher's tokens, then the student's nucleotides under them.

Stage 1 picks ``round(mask_ratio * n)`` of each sequence's ``n`` maskable teacher tokens (every real
token except ``<cls>``), uniformly at random. Stage 2 maps each picked token to the nucleotides its span
covers (6 for a 6-mer, 1 for an ``N`` or a remainder token) and masks exactly those in the student's
input. So the teacher and the student hide the same bases, and a visible teacher token always covers
visible nucleotides only, which is what the distillation branch relies on.

Randomness is per sequence, from a seed per sample, so the mask of a sample does not depend on which
batch, rank or process it lands in (needed for exact resume and DDP equivalence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from . import vocab

_MASK_STREAM = 0x6D61736B  # "mask": separates the masking RNG stream from other per-sample streams


@dataclass
class MaskedBatch:
    """Everything the objectives need about one masked batch.

    Student side, ``[B, L]``: ``input_ids`` (masked nucleotides replaced by ``[MASK]``), ``attention_mask``,
    ``targets`` (the original ids), ``masked`` (bool). Teacher side, ``[B, N]``: ``teacher_input_ids``
    (masked tokens replaced by the teacher's mask id), ``teacher_attention_mask``, ``teacher_masked`` (bool),
    ``span_start``, ``span_len``. ``token_index``: ``[B, L]``, the teacher token covering each nucleotide.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    targets: torch.Tensor
    masked: torch.Tensor
    teacher_input_ids: torch.Tensor
    teacher_attention_mask: torch.Tensor
    teacher_masked: torch.Tensor
    span_start: torch.Tensor
    span_len: torch.Tensor
    token_index: torch.Tensor

    @property
    def visible_tokens(self) -> torch.Tensor:
        """``[B, N]`` bool: real, unmasked teacher tokens that cover nucleotides (excludes ``<cls>``)."""
        return self.teacher_attention_mask.bool() & ~self.teacher_masked & (self.span_len > 0)

    @property
    def visible(self) -> torch.Tensor:
        """``[B, L]`` bool: real, unmasked nucleotides."""
        return self.attention_mask.bool() & ~self.masked

    def to(self, device: torch.device | str) -> "MaskedBatch":
        return MaskedBatch(**{k: v.to(device) for k, v in self.__dict__.items()})


def token_index_of_positions(span_start: torch.Tensor, span_len: torch.Tensor, length: int) -> torch.Tensor:
    """``[B, N]`` spans that tile each row -> ``[B, L]`` index of the token covering each position.

    Positions outside every span (padding) get 0, or the last token's index after it; callers combine
    with the attention mask.
    """
    B, N = span_start.shape
    marks = torch.zeros(B, length, dtype=torch.long, device=span_start.device)
    has_span = span_len > 0
    tok = torch.arange(N, device=span_start.device).expand(B, N)
    rows = torch.arange(B, device=span_start.device)[:, None].expand(B, N)
    marks[rows[has_span], span_start[has_span]] = tok[has_span]
    return marks.cummax(dim=1).values  # token ids increase with position, so a running max fills spans


def sample_token_mask(maskable: torch.Tensor, mask_ratio: float, sample_seeds: Sequence[int]) -> torch.Tensor:
    """Stage 1. maskable: ``[B, N]`` bool -> ``[B, N]`` bool with ``round(mask_ratio * n_b)`` tokens per row.

    At least one maskable token of a row stays visible (the decoder needs something to attend to).
    """
    B, N = maskable.shape
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    if len(sample_seeds) != B:
        raise ValueError(f"need one seed per sequence: got {len(sample_seeds)} seeds for {B} sequences")
    scores = np.stack([np.random.default_rng([int(s) & 0xFFFFFFFFFFFFFFFF, _MASK_STREAM]).random(N)
                       for s in sample_seeds]) if B else np.zeros((0, N))
    scores = torch.from_numpy(scores).to(maskable.device)
    scores = scores.masked_fill(~maskable, 2.0)                         # never chosen
    n = maskable.sum(1)
    k = torch.floor(n.double() * mask_ratio + 0.5).long()               # round half up
    k = torch.minimum(k, (n - 1).clamp_min(0))
    rank = scores.argsort(dim=1).argsort(dim=1)                         # 0 = smallest score
    return (rank < k[:, None]) & maskable


def two_stage_mask(
    student_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    teacher_input_ids: torch.Tensor,
    teacher_attention_mask: torch.Tensor,
    span_start: torch.Tensor,
    span_len: torch.Tensor,
    teacher_mask_id: int,
    sample_seeds: Sequence[int],
    mask_ratio: float = 0.15,
) -> MaskedBatch:
    """Apply the two-stage grouping mask to a batch.

    student_ids, attention_mask: ``[B, L]``; teacher tensors ``[B, N]`` from the teacher's tokenisation
    of the same (unmasked) sequences (:meth:`hadna.teacher.Teacher.tokenize_batch` or
    :func:`hadna.teacher.nt_tokenize_batch`); sample_seeds: one int per sequence.
    """
    B, L = student_ids.shape
    valid = torch.ones_like(student_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    maskable = teacher_attention_mask.bool() & (span_len > 0)           # every real token but <cls>
    teacher_masked = sample_token_mask(maskable, mask_ratio, sample_seeds)
    token_index = token_index_of_positions(span_start, span_len, L)
    masked = teacher_masked.gather(1, token_index) & valid              # stage 2: whole spans
    return MaskedBatch(
        input_ids=student_ids.masked_fill(masked, vocab.MASK_ID),
        attention_mask=valid.long(),
        targets=student_ids,
        masked=masked,
        teacher_input_ids=teacher_input_ids.masked_fill(teacher_masked, teacher_mask_id),
        teacher_attention_mask=teacher_attention_mask,
        teacher_masked=teacher_masked,
        span_start=span_start,
        span_len=span_len,
        token_index=token_index,
    )
