"""Two-stage grouping mask: mask the teacher's tokens, then the student's nucleotides under them.

Stage 1 picks ``round(mask_ratio * n)`` of each sequence's ``n`` maskable teacher tokens (every real
token except ``<cls>``), uniformly at random. Stage 2 maps each picked token to the nucleotides its span
covers (6 for a 6-mer, 1 for an ``N`` or a remainder token) and masks exactly those in the student's
input. So the teacher and the student hide the same bases, and a visible teacher token always covers
visible nucleotides only, which is what the distillation branch relies on.

Teachers with one token per nucleotide (HyenaDNA, Caduceus, hadna models) would make stage 1 pick
single bases; with ``group_size = g > 1`` it picks groups of ``g`` consecutive maskable tokens instead
(``round(mask_ratio * n_groups)`` of them), so the student still hides whole groups of bases.

What the teacher reads (``teacher_input``; see docs/design.md, "Causal teachers and leakage"):

* ``mask_token``: masked teacher tokens are replaced by the teacher's mask token (MLM teachers);
* ``n``: masked teacher tokens are replaced by the teacher's ``N`` token (one-token-per-nucleotide
  teachers without a trained mask token, e.g. causal HyenaDNA: ``N`` is a base it has seen);
* ``causal_prefix``: the teacher (causal) reads the *unmasked* sequence, and only visible tokens that
  come before the row's first masked token are distillation targets (their receptive field holds no
  masked base).

In every mode no masked base reaches the student, and no distillation target depends on a masked base.

Randomness is per sequence, from a seed per sample, so the mask of a sample does not depend on which
batch, rank or process it lands in (needed for exact resume and DDP equivalence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch

from . import vocab

_MASK_STREAM = 0x6D61736B  # "mask": separates the masking RNG stream from other per-sample streams
TEACHER_INPUTS = ("mask_token", "n", "causal_prefix")
TeacherInput = Literal["mask_token", "n", "causal_prefix"]


@dataclass
class MaskedBatch:
    """Everything the objectives need about one masked batch.

    Student side, ``[B, L]``: ``input_ids`` (masked nucleotides replaced by ``[MASK]``), ``attention_mask``,
    ``targets`` (the original ids), ``masked`` (bool). Teacher side, ``[B, N]``: ``teacher_input_ids``
    (what the teacher reads, see the module docstring), ``teacher_attention_mask``, ``teacher_masked`` (bool),
    ``span_start``, ``span_len``, ``distill_tokens`` (bool: the tokens whose teacher features are
    distillation targets). ``token_index``: ``[B, L]``, the teacher token covering each nucleotide.
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
    distill_tokens: torch.Tensor

    @property
    def visible_tokens(self) -> torch.Tensor:
        """``[B, N]`` bool: the distillation targets: real, unmasked teacher tokens that cover nucleotides
        (no specials), restricted to those before the first masked token under ``causal_prefix``."""
        return self.distill_tokens

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
    scores = torch.from_numpy(scores).to(maskable.device).reshape(B, N)
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
    group_size: int = 1,
    teacher_input: TeacherInput = "mask_token",
    teacher_n_id: int | None = None,
) -> MaskedBatch:
    """Apply the two-stage grouping mask to a batch.

    student_ids, attention_mask: ``[B, L]``; teacher tensors ``[B, N]`` from the teacher's tokenisation
    of the same (unmasked) sequences (:class:`hadna.teachers.spans.SpanTokenizer`); sample_seeds: one int
    per sequence. group_size: stage 1 picks groups of this many consecutive maskable tokens (1 = single
    tokens, bit-identical to the ungrouped mask). teacher_input: what the teacher reads (module
    docstring); ``teacher_mask_id`` / ``teacher_n_id`` are used by ``mask_token`` / ``n``.
    """
    B, L = student_ids.shape
    if teacher_input not in TEACHER_INPUTS:
        raise ValueError(f"teacher_input must be one of {TEACHER_INPUTS}, got {teacher_input!r}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    valid = torch.ones_like(student_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    maskable = teacher_attention_mask.bool() & (span_len > 0)           # every real token but specials
    if group_size == 1:
        teacher_masked = sample_token_mask(maskable, mask_ratio, sample_seeds)
    else:
        N = maskable.shape[1]
        group = ((maskable.long().cumsum(1) - 1).clamp_min(0) // group_size)           # [B, N] group of each token
        G = -(-N // group_size)
        group_maskable = torch.zeros(B, G, dtype=torch.long, device=maskable.device).scatter_add_(
            1, group, maskable.long()) > 0
        teacher_masked = sample_token_mask(group_maskable, mask_ratio, sample_seeds).gather(1, group) & maskable
    token_index = token_index_of_positions(span_start, span_len, L)
    masked = teacher_masked.gather(1, token_index) & valid              # stage 2: whole spans
    distill_tokens = maskable & ~teacher_masked
    if teacher_input == "mask_token":
        if teacher_mask_id is None:
            raise ValueError("teacher_input 'mask_token' needs the teacher's mask token id (it has none)")
        seen = teacher_input_ids.masked_fill(teacher_masked, teacher_mask_id)
    elif teacher_input == "n":
        if teacher_n_id is None:
            raise ValueError("teacher_input 'n' needs a one-token-per-nucleotide teacher (its N token id)")
        if bool((span_len[teacher_masked] != 1).any()):
            raise ValueError("teacher_input 'n' replaces masked tokens by one N each: every token must cover one base")
        seen = teacher_input_ids.masked_fill(teacher_masked, teacher_n_id)
    else:  # causal_prefix: the teacher reads everything; only tokens before the first masked one are targets
        seen = teacher_input_ids
        distill_tokens = distill_tokens & (teacher_masked.long().cumsum(1) == 0)
    return MaskedBatch(
        input_ids=student_ids.masked_fill(masked, vocab.MASK_ID),
        attention_mask=valid.long(),
        targets=student_ids,
        masked=masked,
        teacher_input_ids=seen,
        teacher_attention_mask=teacher_attention_mask,
        teacher_masked=teacher_masked,
        span_start=span_start,
        span_len=span_len,
        token_index=token_index,
        distill_tokens=distill_tokens,
    )
