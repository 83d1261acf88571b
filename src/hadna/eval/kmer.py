"""The k-mer baseline: normalised k-mer frequencies + logistic regression, the floor of every table.

A reviewer's first question about a DNA language model is whether it beats counting k-mers. The
model spec ``kmer`` (k = 1..6) or ``kmer:K`` / ``kmer:A-B`` / ``kmer:A,B,...`` turns a sequence into
the concatenation, for each k, of its k-mer frequencies: counts of the ``4**k`` k-mers over the
strand as given, divided by the number of k-mers that contain no ``N`` (a sequence shorter than k,
or all ``N``, gives zeros). The probe then standardises these features and fits scikit-learn's
logistic regression with ``C`` chosen on validation, exactly as for a neural model's pooled features
(:mod:`hadna.eval.probe`): same splits, caps, seeds and whole-test-set metrics.

The baseline has no encoder to fine-tune, so it runs in ``probe`` mode only: ``hadna finetune
--model kmer --mode finetune`` is an error, and ``hadna benchmark`` runs its probe row once and skips
its other modes with a note.

Counting is vectorised over a whole batch: the batch's sequences are joined into one code array, each
position's k-mer index is a rolling base-4 number, and one ``bincount`` over ``row * 4**k + index``
counts every row at once (no per-sequence Python loop).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..vocab import A_ID, ENCODE_LUT, INVALID, N_ID

DEFAULT_KS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
MAX_K = 8  # 4**8 = 65,536 features per k: beyond that the dense feature matrix stops being sensible


def parse_ks(text: str) -> tuple[int, ...]:
    """``""`` -> 1..6; ``"4"`` -> (4,); ``"3-6"`` -> (3, 4, 5, 6); ``"2,4"`` -> (2, 4)."""
    text = text.strip()
    if not text:
        return DEFAULT_KS
    ks: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None:
            raise ConfigError(f"kmer:{text}: cannot read k {part!r}; use kmer, kmer:K, kmer:A-B or kmer:A,B")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo > hi:
            raise ConfigError(f"kmer:{text}: the range {lo}-{hi} is empty")
        ks.update(range(lo, hi + 1))
    if min(ks) < 1 or max(ks) > MAX_K:
        raise ConfigError(f"kmer:{text}: k must lie in 1..{MAX_K}, got {sorted(ks)}")
    return tuple(sorted(ks))


def describe_ks(ks: Sequence[int]) -> str:
    """``(1, 2, 3)`` -> ``"1-3"``; ``(2, 4)`` -> ``"2,4"``."""
    ks = sorted(ks)
    if ks == list(range(ks[0], ks[-1] + 1)) and len(ks) > 1:
        return f"{ks[0]}-{ks[-1]}"
    return ",".join(map(str, ks))


def num_features(ks: Sequence[int]) -> int:
    return sum(4 ** k for k in ks)


def _codes(seqs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All sequences joined: base codes ``[L]`` (A C G T = 0..3, N = 4) and each position's row ``[L]``."""
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    joined = np.frombuffer("".join(seqs).encode("ascii", errors="replace"), dtype=np.uint8)
    ids = ENCODE_LUT[joined]
    if (ids == INVALID).any():
        pos = int(np.flatnonzero(ids == INVALID)[0])
        row = int(np.searchsorted(np.cumsum(lengths), pos, side="right"))
        col = pos - int(lengths[:row].sum())
        raise ConfigError(f"sequence {row}: invalid character {chr(joined[pos])!r} at position {col}")
    codes = ids.astype(np.int64) - A_ID  # A C G T N -> 0 1 2 3 4
    rows = np.repeat(np.arange(len(seqs), dtype=np.int64), lengths)
    return codes, rows


def kmer_frequencies(seqs: Sequence[str], ks: Sequence[int] = DEFAULT_KS) -> np.ndarray:
    """``[N, sum(4**k)]`` float32: per k (in the order given), the k-mer frequencies of each sequence.

    k-mer index: base-4 number of the k bases, first base most significant (``AA..A`` = 0,
    ``TT..T`` = ``4**k - 1``). k-mers containing ``N`` are not counted.
    """
    n = len(seqs)
    out = np.zeros((n, num_features(ks)), dtype=np.float32)
    if n == 0:
        return out
    codes, rows = _codes(seqs)
    is_n = codes == N_ID - A_ID
    base = np.where(is_n, 0, codes)
    offset = 0
    for k in ks:
        width = 4 ** k
        m = len(codes) - k + 1
        if m > 0:
            index = np.zeros(m, dtype=np.int64)
            has_n = np.zeros(m, dtype=bool)
            for j in range(k):  # rolling base-4 number over the k positions
                index = index * 4 + base[j:j + m]
                has_n |= is_n[j:j + m]
            valid = ~has_n & (rows[:m] == rows[k - 1:k - 1 + m])  # the k-mer lies inside one sequence
            counts = np.bincount(rows[:m][valid] * width + index[valid], minlength=n * width)
            counts = counts.reshape(n, width).astype(np.float64)
            totals = counts.sum(axis=1, keepdims=True)
            out[:, offset:offset + width] = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        offset += width
    return out
