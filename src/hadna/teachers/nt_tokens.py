"""Nucleotide Transformer (NT) 6-mer tokenisation of student sequences, with nucleotide spans.

The teacher reads 6-mers, the student reads single nucleotides. To distil, every teacher token must
know which student positions it covers. This module reproduces exactly how NT checkpoints tokenise
(they load with ``transformers.EsmTokenizer`` and a ``vocab.txt``) and returns, per token, its
``span_start`` and ``span_len`` in the student's coordinates.

Where the rule comes from: ``EsmTokenizer`` registers *every* vocabulary entry as a no-split token
and cuts the text with a trie that takes, at the leftmost position, the longest vocabulary entry
that matches. NT's vocabulary holds all 4,096 6-mers over A/C/G/T and the five single nucleotides
A, T, C, G, N, and nothing of length 2..5. So, reading left to right:

* if the next 6 characters exist and are all A/C/G/T, they form one 6-mer token;
* otherwise the next character is a single-nucleotide token.

Equivalently, each maximal run of A/C/G/T of length ``r`` gives ``r // 6`` 6-mers followed by
``r % 6`` single nucleotides, and every ``N`` is its own token (the 6-mer grouping restarts after
it). Spans are 6 or 1 long and tile the sequence. ``<cls>`` is prepended (span length 0); NT adds
no end token. This is *not* ``i // 6``: an ``N`` shifts the grouping of everything after it.

Canonical vocabulary order (:data:`NT_VOCAB`) is NTv2's published ``vocab.txt``: the 6 specials,
the 4,096 6-mers in ``itertools.product("ATCG", repeat=6)`` order, then A, T, C, G, N. That order
only matters for vocab files *we* write (:func:`write_nt_vocab`, random test teachers); a real
checkpoint ships its own ``vocab.txt`` and :class:`hadna.teachers.Teacher` maps token *strings*
through it, so a different order there is harmless.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hadna.errors import InvalidSequenceError
from hadna.vocab import A_ID, C_ID, G_ID, N_ID, T_ID

NT_KMER = 6
#: alphabet order of NT's 6-mers (base-4 digits 0..3); see the module docstring on why it matters.
NT_KMER_ALPHABET = "ATCG"
NT_SPECIAL_TOKENS = ("<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>")
NT_KMERS = tuple("".join(p) for p in itertools.product(NT_KMER_ALPHABET, repeat=NT_KMER))
NT_SINGLE_TOKENS = ("A", "T", "C", "G", "N")
NT_VOCAB = NT_SPECIAL_TOKENS + NT_KMERS + NT_SINGLE_TOKENS
NT_TOKEN_TO_ID = {tok: i for i, tok in enumerate(NT_VOCAB)}
NT_VOCAB_SIZE = len(NT_VOCAB)  # 4107

NT_UNK_ID, NT_PAD_ID, NT_MASK_ID, NT_CLS_ID, NT_EOS_ID, NT_BOS_ID = range(6)
NT_KMER_OFFSET = len(NT_SPECIAL_TOKENS)  # 6
NT_SINGLE_OFFSET = NT_KMER_OFFSET + len(NT_KMERS)  # 4102

_MISSING = -1
# student id -> base-4 digit of the nucleotide in NT_KMER_ALPHABET order (-1: not A/C/G/T).
_DIGIT_LUT = np.full(256, _MISSING, dtype=np.int64)
# student id -> canonical NT id of the single-nucleotide token (-1: not a nucleotide id).
_SINGLE_LUT = np.full(256, _MISSING, dtype=np.int64)
for _base, _sid in zip("ACGTN", (A_ID, C_ID, G_ID, T_ID, N_ID)):
    if _base != "N":
        _DIGIT_LUT[_sid] = NT_KMER_ALPHABET.index(_base)
    _SINGLE_LUT[_sid] = NT_TOKEN_TO_ID[_base]


def window_token_bound(window_length: int, max_n_fraction: float) -> int:
    """The most NT tokens (``<cls>`` included) a window of ``window_length`` bases with at most
    ``floor(max_n_fraction * window_length)`` N's can tokenise to.

    ``k`` N's split the A/C/G/T bases into at most ``k + 1`` runs; a run of ``r`` bases gives
    ``r // 6 + r % 6 <= (r + 25) / 6`` tokens, so the total is at most ``1 + k + (L - k + 25 (k + 1)) / 6``
    = ``1 + (L + 30 k + 25) / 6``: about L / 6 plus a margin that grows with the allowed N's.
    """
    k = math.floor(max_n_fraction * window_length + 1e-9)  # as GenomeWindows rounds it
    return 1 + (window_length + 30 * k + 25) // 6


def write_nt_vocab(path: str | Path) -> Path:
    """Write an NT-format ``vocab.txt`` (one token per line, :data:`NT_VOCAB` order); returns the path."""
    from hadna.utils.io import atomic_write_text

    path = Path(path)
    atomic_write_text(path, "\n".join(NT_VOCAB) + "\n")
    return path


@dataclass
class NTTokens:
    """A padded batch of canonical NT tokens (all int64 tensors ``[B, N_max]``).

    ``input_ids`` are ids in :data:`NT_VOCAB` order, padded with ``<pad>``; ``attention_mask`` is 1 on
    real tokens (``<cls>`` included); ``span_start``/``span_len`` give the student positions (columns
    of the input ``[B, L]``) each token covers; ``<cls>`` and padding have ``span_len`` 0.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    span_start: torch.Tensor
    span_len: torch.Tensor


def _nt_tokenize_2d(ids: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, ...]:
    """Vectorised core. ids, valid: [B, L] -> (tok_ids, span_start, span_len, tok_mask): [B, N_max].

    Padding (``valid`` False) acts like an N that emits no token, so a row's real positions must be
    contiguous (checked by the callers). No Python loop over positions: a few cumulative scans.
    Positions are int32 (half the memory traffic of int64); outputs are int64.
    """
    B, L = ids.shape
    raw = ids
    ids = np.where(valid, ids, 0)  # padding may hold anything (PAD=0, -100, ...)
    if ids.size and (ids.min() < 0 or ids.max() >= _SINGLE_LUT.size):
        ids = np.where((ids < 0) | (ids >= _SINGLE_LUT.size), _SINGLE_LUT.size - 1, ids)  # must not wrap
    digit = _DIGIT_LUT[ids]  # [B, L], -1 at N and padding
    single = _SINGLE_LUT[ids]
    check_nucleotides(raw, valid, "NT-tokenise")  # == valid & (single == _MISSING)
    pos = np.arange(L, dtype=np.int32)
    is_break = digit == _MISSING  # an N or padding ends a run of A/C/G/T
    # nearest break at-or-before / at-or-after each position (-1 / L when there is none)
    prev_break = np.maximum.accumulate(np.where(is_break, pos, np.int32(-1)), axis=1)
    next_break = np.minimum.accumulate(np.where(is_break, pos, np.int32(L))[:, ::-1], axis=1)[:, ::-1]
    offset = pos - prev_break - 1  # position inside its A/C/G/T run (meaningless at breaks)
    run_len = next_break - prev_break - 1
    kmer_cover = run_len - run_len % NT_KMER  # the run's prefix tiled by whole 6-mers
    in_run = ~is_break
    kmer_start = in_run & (offset < kmer_cover) & (offset % NT_KMER == 0)
    single_tok = (in_run & (offset >= kmer_cover)) | (valid & is_break)
    starts = kmer_start | single_tok  # [B, L]

    n_tok = starts.sum(axis=1) + 1  # + <cls>
    n_max = int(n_tok.max()) if B else 1
    rows, cols = np.nonzero(starts)  # row-major, so columns ascend within each row
    slot = np.cumsum(starts, axis=1, dtype=np.int32)[rows, cols]  # 1-based rank in the row; 0 is <cls>

    # base-4 code of the 6 nucleotides starting at every position (garbage where that is no 6-mer;
    # only 6-mer starts are read, and their 6 digits are all valid by construction).
    n_win = max(L - NT_KMER + 1, 0)
    code = np.zeros((B, n_win), dtype=np.int64)
    for j in range(NT_KMER if n_win else 0):
        code = code * len(NT_KMER_ALPHABET) + digit[:, j : j + n_win]
    is_kmer = kmer_start[rows, cols]
    tok = single[rows, cols]
    tok[is_kmer] = NT_KMER_OFFSET + code[rows[is_kmer], cols[is_kmer]]

    tok_ids = np.full((B, n_max), NT_PAD_ID, dtype=np.int64)
    span_start = np.zeros((B, n_max), dtype=np.int64)
    span_len = np.zeros((B, n_max), dtype=np.int64)
    tok_mask = np.arange(n_max)[None, :] < n_tok[:, None]
    tok_ids[:, 0] = NT_CLS_ID
    tok_ids[rows, slot] = tok
    span_start[rows, slot] = cols
    span_len[rows, slot] = np.where(is_kmer, NT_KMER, 1)
    return tok_ids, span_start, span_len, tok_mask


def nt_tokenize_ids(student_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokenise ONE unpadded sequence of student ids the way NT does.

    student_ids: [L] ints in {A=4, C=5, G=6, T=7, N=8} (:mod:`hadna.vocab`).
    Returns ``(nt_ids, span_start, span_len)``, each int64 ``[N_tok]`` with ``<cls>`` first
    (span 0, length 0); ``nt_ids`` are in canonical :data:`NT_VOCAB` order.
    """
    ids = np.asarray(student_ids)
    if ids.ndim != 1:
        raise ValueError(f"nt_tokenize_ids expects one 1-D sequence, got shape {ids.shape}")
    ids = ids.astype(np.int64, copy=False)[None, :]
    tok, start, length, _ = _nt_tokenize_2d(ids, np.ones(ids.shape, dtype=bool))
    return tok[0], start[0], length[0]


def check_nucleotides(ids: np.ndarray, valid: np.ndarray, action: str) -> None:
    """Raise (naming sequence and position) if a ``valid`` position of ``ids [B, L]`` is not A C G T N."""
    bad = valid & ((ids < A_ID) | (ids > N_ID))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InvalidSequenceError(
            f"cannot {action}: student id {int(ids[row, col])} at sequence {int(row)}, position {int(col)} "
            f"is not a nucleotide (expected ids {A_ID}..{N_ID}: A C G T N; masked or special tokens must be "
            f"replaced by the original nucleotides before the teacher sees them)"
        )


def row_bounds(student_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids int64 ``[B, L]``, first real column ``[B]``, real count ``[B]``) as NumPy; checks contiguity."""
    if student_ids.ndim != 2:
        raise ValueError(f"student_ids must be [B, L], got shape {tuple(student_ids.shape)}")
    ids = student_ids.detach().to("cpu", torch.int64).numpy()
    if attention_mask is None:
        valid = np.ones(ids.shape, dtype=bool)
    else:
        if attention_mask.shape != student_ids.shape:
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} != student_ids shape "
                             f"{tuple(student_ids.shape)}")
        valid = attention_mask.detach().to("cpu").numpy().astype(bool)
    check_contiguous(valid)
    count = valid.sum(1).astype(np.int64)
    first = np.where(count > 0, valid.argmax(1), 0).astype(np.int64)
    return ids, first, count


def check_contiguous(valid: np.ndarray) -> None:
    """Each row's real positions (``valid`` ``[B, L]`` bool) must form one block (left or right padding)."""
    if valid.size == 0:
        return
    rises = valid[:, :1].astype(np.int8) + (np.diff(valid.astype(np.int8), axis=1) == 1).sum(1, keepdims=True)
    if (rises > 1).any():
        row = int(np.nonzero(rises[:, 0] > 1)[0][0])
        raise ValueError(f"attention_mask row {row} has a gap: real positions must be contiguous")


def nt_tokenize_batch(student_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> NTTokens:
    """Tokenise a padded batch. student_ids: [B, L] long; attention_mask: [B, L] (1 = real) or None.

    Each row's real positions must be one contiguous block (right or left padding); spans are column
    indices into ``student_ids``. Returns :class:`NTTokens` on ``student_ids.device``.
    """
    ids, _, _ = row_bounds(student_ids, attention_mask)  # shape checks; real positions contiguous per row
    valid = np.ones(ids.shape, dtype=bool) if attention_mask is None else \
        attention_mask.detach().to("cpu").numpy().astype(bool)
    tok, start, length, mask = _nt_tokenize_2d(ids, valid)
    dev = student_ids.device
    return NTTokens(
        input_ids=torch.from_numpy(tok).to(dev),
        attention_mask=torch.from_numpy(mask.astype(np.int64)).to(dev),
        span_start=torch.from_numpy(start).to(dev),
        span_len=torch.from_numpy(length).to(dev),
    )


def nt_token_spans_reference(seq: str) -> list[tuple[str, int, int]]:
    """Plain-Python statement of the rule, for tests: ``[(token, start, length), ...]`` incl. ``<cls>``.

    seq: uppercase A/C/G/T/N. At each position take the 6-mer if the next 6 characters are all
    A/C/G/T, else the single character (longest vocabulary match, as EsmTokenizer's trie does).
    """
    if set(seq) - set("ACGTN"):
        raise InvalidSequenceError(f"nt_token_spans_reference: sequence has characters other than ACGTN: {seq!r}")
    out = [("<cls>", 0, 0)]
    i = 0
    while i < len(seq):
        chunk = seq[i : i + NT_KMER]
        if len(chunk) == NT_KMER and "N" not in chunk:
            out.append((chunk, i, NT_KMER))
            i += NT_KMER
        else:
            out.append((seq[i], i, 1))
            i += 1
    return out
