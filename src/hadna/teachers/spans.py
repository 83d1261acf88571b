"""Teacher tokens as nucleotide spans, whatever the teacher's tokenizer.

HAD's masking and span pooling need, for every teacher token of a batch, the student positions
(nucleotides) it covers. A *span tokenizer* turns a padded batch of student ids ``[B, L]`` into
:class:`TeacherInputs` ``[B, N]``: the teacher's own ids, its attention mask, and per token
``span_start``/``span_len`` (columns of the student batch; ``span_len`` 0 for special tokens and
padding). One class per tokenizer family:

* :class:`KmerSpanTokenizer` (``kmer``): NT / NTv2 and the teachers ``teacher-train`` makes; NT's
  known rule (:mod:`hadna.teachers.nt_tokens`), ids mapped through the checkpoint's vocabulary.
* :class:`CharSpanTokenizer` (``char``): one token per nucleotide (HyenaDNA, Caduceus, hadna models),
  optional prefix tokens (``[CLS]``/``[BOS]``) and suffix tokens (``[SEP]``/``<eos>``), left or right
  padding; a known rule, vectorised.
* :class:`OffsetSpanTokenizer` (``offsets``): any Hugging Face *fast* tokenizer (BPE such as DNABERT-2
  and GROVER, or anything else), spans from its character offsets; checked to tile each sequence.

Every family guarantees the invariant the tests check: each real nucleotide lies in exactly one real
token's span, special tokens and padding cover none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from hadna.errors import CheckpointError
from hadna.teachers.nt_tokens import NT_MASK_ID, check_nucleotides, nt_tokenize_batch, row_bounds
from hadna.vocab import A_ID, N_ID

FAMILIES = ("kmer", "char", "offsets")
_BASES = "ACGTN"  # student ids A_ID..N_ID in this order


@dataclass
class TeacherInputs:
    """Teacher tokens for a student batch; all int64 ``[B, N]``.

    ``input_ids`` use the checkpoint's own ids; ``attention_mask`` is 1 on real tokens (specials
    included); token ``j`` of row ``b`` covers student positions
    ``span_start[b, j] : span_start[b, j] + span_len[b, j]`` (``span_len`` 0 for specials/padding).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    span_start: torch.Tensor
    span_len: torch.Tensor

    def to(self, device: torch.device | str) -> "TeacherInputs":
        return TeacherInputs(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.span_start, self.span_len)))


def _valid_grid(first: np.ndarray, count: np.ndarray, L: int) -> np.ndarray:
    cols = np.arange(L)[None, :]
    return (cols >= first[:, None]) & (cols < (first + count)[:, None])


class SpanTokenizer:
    """Base class. ``family``; ``mask_token_id`` (None: the teacher has no mask token); ``n_token_id``
    (the id of a one-nucleotide ``N`` token, for ``masking.teacher_input: n``; None when replacing a
    masked base by N would change the tokenisation)."""

    family: str = ""
    mask_token_id: int | None = None
    n_token_id: int | None = None

    def __call__(self, student_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> TeacherInputs:
        """student_ids ``[B, L]`` (A C G T N; anything where attention_mask is 0) -> :class:`TeacherInputs` ``[B, N]``."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-able description (part of the feature-cache fingerprint)."""
        return {"family": self.family}


class KmerSpanTokenizer(SpanTokenizer):
    """NT's 6-mer tokenisation (``<cls>`` first, non-overlapping 6-mers, N and remainders single), ids
    mapped through ``lookup`` (canonical NT id -> checkpoint id, see :func:`hadna.teachers.wrapper._nt_lookup`)."""

    family = "kmer"

    def __init__(self, lookup: np.ndarray | torch.Tensor):

        self.lookup = torch.as_tensor(np.asarray(lookup), dtype=torch.int64)
        self.mask_token_id = int(self.lookup[NT_MASK_ID])
        self.n_token_id = None  # an N breaks the 6-mer grouping: replacing bases by N re-tokenises

    def __call__(self, student_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> TeacherInputs:

        toks = nt_tokenize_batch(student_ids, attention_mask)
        ids = self.lookup.to(toks.input_ids.device)[toks.input_ids]
        return TeacherInputs(ids, toks.attention_mask, toks.span_start, toks.span_len)

    def describe(self) -> dict[str, Any]:
        return {"family": self.family, "kmer": 6, "mask_token_id": self.mask_token_id}


@dataclass
class CharSpanTokenizer(SpanTokenizer):
    """One token per nucleotide. ``base_ids``: teacher id of each of A C G T N; ``prefix``/``suffix``:
    special ids added before/after every sequence; ``padding_side``: where a row's padding goes."""

    base_ids: Mapping[str, int]
    pad_token_id: int
    mask_token_id: int | None = None
    prefix: Sequence[int] = ()
    suffix: Sequence[int] = ()
    padding_side: str = "right"
    family: str = field(default="char", init=False)

    def __post_init__(self):
        missing = [b for b in _BASES if b not in self.base_ids]
        if missing:
            raise CheckpointError(f"character teacher vocabulary lacks {', '.join(missing)} (needs A C G T N)")
        if self.padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {self.padding_side!r}")
        self.prefix, self.suffix = tuple(int(i) for i in self.prefix), tuple(int(i) for i in self.suffix)
        self._lut = np.array([int(self.base_ids[b]) for b in _BASES], dtype=np.int64)
        self.n_token_id = int(self.base_ids["N"])

    def __call__(self, student_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> TeacherInputs:
        ids, first, count = row_bounds(student_ids, attention_mask)
        B, L = ids.shape
        check_nucleotides(ids, _valid_grid(first, count, L), "tokenise for a character-level teacher")
        P, S = len(self.prefix), len(self.suffix)
        n_tok = P + count + S                                                # [B]
        N = int(n_tok.max()) if B else P + S
        start = N - n_tok if self.padding_side == "left" else np.zeros(B, dtype=np.int64)
        k = np.arange(N)[None, :] - start[:, None]                           # position within the row's tokens
        real = (k >= 0) & (k < n_tok[:, None])
        is_nt = real & (k >= P) & (k < (P + count)[:, None])
        col = np.clip(first[:, None] + k - P, 0, max(L - 1, 0))              # student column of nucleotide tokens
        tok = np.full((B, N), self.pad_token_id, dtype=np.int64)
        if L:
            tok[is_nt] = self._lut[np.clip(np.take_along_axis(ids, col, 1)[is_nt] - A_ID, 0, 4)]
        for j, sid in enumerate(self.prefix):
            tok[real & (k == j)] = sid
        for j, sid in enumerate(self.suffix):
            tok[real & (k == (P + count + j)[:, None])] = sid
        span_start = np.where(is_nt, col, 0)
        dev = student_ids.device
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(dev)  # noqa: E731
        return TeacherInputs(as_t(tok), as_t(real), as_t(span_start), as_t(is_nt))

    def describe(self) -> dict[str, Any]:
        return {"family": self.family, "base_ids": dict(self.base_ids), "prefix": list(self.prefix),
                "suffix": list(self.suffix), "padding_side": self.padding_side, "mask_token_id": self.mask_token_id}


class OffsetSpanTokenizer(SpanTokenizer):
    """Any Hugging Face fast tokenizer: the student rows are decoded to ``ACGTN`` strings, tokenised with
    ``return_offsets_mapping``, and each token's character offsets become its span. Tokens the tokenizer
    marks special get no span. Raises :class:`CheckpointError` if the spans of a row do not tile it
    exactly (a tokenizer that drops, normalises away or duplicates characters cannot drive HAD's masks).
    """

    family = "offsets"

    def __init__(self, tokenizer, name: str = "<tokenizer>"):
        if not getattr(tokenizer, "is_fast", False):
            raise CheckpointError(f"teacher tokenizer {name} is not a fast (Rust) tokenizer, so it has no character "
                                  "offsets; use teacher.tokenizer: kmer or char if its rule is one of those")
        self.tokenizer, self.name = tokenizer, name
        self.mask_token_id = tokenizer.mask_token_id
        self.n_token_id = None
        self.padding_side = tokenizer.padding_side
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def __call__(self, student_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> TeacherInputs:
        ids, first, count = row_bounds(student_ids, attention_mask)
        B, L = ids.shape
        check_nucleotides(ids, _valid_grid(first, count, L), f"tokenise for teacher tokenizer {self.name}")
        letters = np.frombuffer(_BASES.encode(), dtype=np.uint8)
        texts = [letters[ids[b, first[b]:first[b] + count[b]] - A_ID].tobytes().decode() for b in range(B)]
        enc = self.tokenizer(texts, add_special_tokens=True, padding=True, return_offsets_mapping=True,
                             return_special_tokens_mask=True, return_attention_mask=True, truncation=False)
        tok = np.asarray(enc["input_ids"], dtype=np.int64).reshape(B, -1)
        att = np.asarray(enc["attention_mask"], dtype=np.int64).reshape(B, -1)
        off = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(B, -1, 2)
        special = np.asarray(enc["special_tokens_mask"], dtype=bool).reshape(B, -1)
        covers = (att == 1) & ~special
        span_len = np.where(covers, off[..., 1] - off[..., 0], 0)
        span_start = np.where(covers, first[:, None] + off[..., 0], 0)
        for b in range(B):  # the spans of a row must tile it, in order
            lens, starts = span_len[b][covers[b]], off[b, :, 0][covers[b]]
            ends = starts + lens
            ok = (len(lens) == 0 and count[b] == 0) or (
                len(lens) > 0 and (lens > 0).all() and starts[0] == 0 and ends[-1] == count[b]
                and (starts[1:] == ends[:-1]).all())
            if not ok:
                raise CheckpointError(
                    f"teacher tokenizer {self.name} does not split sequence {b} ({count[b]} nt) into consecutive "
                    "non-empty character spans (offsets must tile the sequence); it cannot drive HAD's masking")
        dev = student_ids.device
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(dev)  # noqa: E731
        return TeacherInputs(as_t(tok), as_t(att), as_t(span_start), as_t(span_len))

    def describe(self) -> dict[str, Any]:
        return {"family": self.family, "vocab_size": len(self.tokenizer), "padding_side": self.padding_side,
                "mask_token_id": self.mask_token_id, "class": type(self.tokenizer).__name__}
