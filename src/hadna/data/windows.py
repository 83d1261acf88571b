"""Pre-training windows: a seekable training stream and a fixed validation set.

Training sample ``i`` is a pure function of ``(seed, i)``: its window start, its strand and any
redraws come from a counter-based hash of ``(seed, i, draw)`` (SplitMix64 finaliser, plain integer
arithmetic, identical on every platform and NumPy version). Nothing is stateful, so

* resuming at step ``s`` reproduces exactly the batches an uninterrupted run would have seen;
* the global batch of step ``s`` is samples ``s*B .. s*B+B-1`` and rank ``r`` of ``W`` takes the
  contiguous slice ``r*B/W .. (r+1)*B/W - 1``: concatenating the ranks' batches in rank order gives
  the single-process batch, so DDP training sees the same data as one process.

Window starts are uniform over all valid starts of the training region (every start whose window
of ``L`` bases lies inside one training interval). A window with more than ``max_n_fraction`` N is
rejected and redrawn with the sample's next draw, so accepted windows are uniform over the accepted
starts. The strand is drawn first (draw 0): reverse complement with probability ``rc_prob``.

The validation set is fixed: the held-out region is tiled with non-overlapping windows, tiles with
too many N are dropped, and ``num_val_windows`` tiles evenly spaced over the rest are kept
(all of them if there are fewer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..errors import ConfigError, DataError
from ..sequence import reverse_complement
from ..utils.logging import get_logger
from ..vocab import N_ID
from .config import GenomeDataConfig
from .genome import GenomeStore
from .regions import Regions, plan_regions

if TYPE_CHECKING:
    import torch

log = get_logger("data.windows")

#: a sample gives up (with a DataError) after this many rejected windows; with 5% of a genome in
#: N-gaps the chance of reaching it by bad luck is 0.05**1000.
MAX_DRAWS = 1000

_MASK64 = (1 << 64) - 1
_STREAM_TAG = 0x6861646E612D7472  # "hadna-tr": keeps this stream apart from other uses of the seed
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (a bijection with good avalanche)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def counter_hash(seed: int, index: np.ndarray, draw: int) -> np.ndarray:
    """uint64 [n] pseudo-random words, a pure function of (seed, index[k], draw)."""
    key = _mix64(np.array([(seed ^ _STREAM_TAG) & _MASK64], dtype=np.uint64))
    h = _mix64(key + np.asarray(index, dtype=np.uint64) * _GOLDEN)
    return _mix64(h + np.uint64(((draw + 1) * 0xD1B54A32D192ED03) & _MASK64))


@dataclass(frozen=True)
class WindowProvenance:
    """Where a window came from: ``record[start:start+length]``, reverse-complemented if strand is '-'."""

    record: str
    start: int
    length: int
    strand: str


class GenomeWindows:
    """Training stream and validation set of windows over a :class:`GenomeStore`.

    Args:
        store: the genome.
        train, val: disjoint regions (see :func:`~hadna.data.regions.plan_regions`); intervals
            shorter than ``window_length`` are ignored.
    """

    def __init__(self, store: GenomeStore, train: Regions, val: Regions, *, window_length: int = 1024,
                 max_n_fraction: float = 0.01, rc_prob: float = 0.5, seed: int = 0,
                 num_val_windows: int = 1024) -> None:
        self.store = store
        self.window_length = L = int(window_length)
        self.max_n = int(math.floor(max_n_fraction * L + 1e-9))  # accept iff (number of N) <= max_n
        self.rc_prob = float(rc_prob)
        self.seed = int(seed)
        self.train_regions, _ = train.split_by_length(L)
        self.val_regions, _ = val.split_by_length(L)
        if len(self.train_regions) == 0:
            raise DataError(f"no training interval is at least window_length={L} bases long")
        counts = self.train_regions.lengths - L + 1
        self._cum = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)  # [K + 1]
        self.num_train_starts = int(self._cum[-1])
        self._val_starts = self._pick_val_starts(int(num_val_windows))

    @classmethod
    def from_config(cls, cfg: GenomeDataConfig, store: GenomeStore | None = None) -> "GenomeWindows":
        """Build (or load the cached) genome store, split it and log what was kept."""
        cfg.validate()
        if store is None:
            store = GenomeStore.from_fasta(cfg.fasta, cfg.cache_dir, duplicate_ids=cfg.duplicate_ids)
        plan = plan_regions(store, window_length=cfg.window_length, bed=cfg.bed, val_fraction=cfg.val_fraction,
                            val_bed=cfg.val_bed, val_records=cfg.val_records, val_per_file=cfg.val_per_file,
                            short_record_policy=cfg.short_record_policy, bed_split=cfg.bed_split,
                            val_bed_split=cfg.val_bed_split)
        self = cls(store, plan.train, plan.val, window_length=cfg.window_length, max_n_fraction=cfg.max_n_fraction,
                   rc_prob=cfg.rc_prob if cfg.rc_augment else 0.0, seed=cfg.seed,
                   num_val_windows=cfg.num_val_windows)
        pct = 100.0 / max(plan.eligible_bases, 1)
        log.info("genome: %d records, %d bp; training: %d bp in %d intervals (%d window starts); "
                 "validation: %d bp in %d intervals -> %d windows of %d",
                 store.num_records, store.total_length, plan.train.total, len(plan.train), self.num_train_starts,
                 plan.val.total, len(plan.val), len(self._val_starts), cfg.window_length)
        if plan.skipped_pieces:
            log.info("skipped %d records/intervals shorter than window_length=%d (%d of them whole records): "
                     "%d bp, %.1f%% of eligible bases", plan.skipped_pieces, cfg.window_length, plan.short_records,
                     plan.skipped_bases, plan.skipped_bases * pct)
        return self

    # ------------------------------------------------------------------ training stream
    def _starts(self, index: np.ndarray, draw: int) -> np.ndarray:
        """Global window starts (int64 [n]) of the samples ``index`` at draw number ``draw``."""
        u = (counter_hash(self.seed, index, draw) % np.uint64(self.num_train_starts)).astype(np.int64)
        j = np.searchsorted(self._cum, u, side="right") - 1
        return self.train_regions.start[j] + (u - self._cum[j])

    def _gather(self, starts: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
        tokens, L = self.store.tokens, self.window_length
        for r, g in zip(rows.tolist(), starts[rows].tolist()):
            out[r] = tokens[g:g + L]

    def sample_ids(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Windows of training samples ``index`` (any order, any values >= 0).

        Returns ``(ids, starts, reverse)``: ids uint8 [n, L] (already reverse-complemented where
        ``reverse``), starts int64 [n] global forward-strand starts, reverse bool [n].
        """
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if index.size and index.min() < 0:
            raise ValueError("sample indices must be >= 0")
        n, L = index.shape[0], self.window_length
        uidx = index.astype(np.uint64)
        out = np.empty((n, L), dtype=np.uint8)
        starts = self._starts(uidx, 1)
        self._gather(starts, np.arange(n), out)
        pending = np.arange(n)
        draw = 1
        while self.max_n < L:
            bad = np.count_nonzero(out[pending] == N_ID, axis=1) > self.max_n
            pending = pending[bad]
            if pending.size == 0:
                break
            draw += 1
            if draw > MAX_DRAWS:
                raise DataError(f"sample {int(index[pending[0]])}: no window with at most {self.max_n} N in "
                                f"{L} bp found in {MAX_DRAWS} draws; the training region is almost all N "
                                "(raise max_n_fraction or choose other regions)")
            starts[pending] = self._starts(uidx[pending], draw)
            self._gather(starts, pending, out)
        reverse = (counter_hash(self.seed, uidx, 0) >> np.uint64(11)).astype(np.float64) * 2.0**-53 < self.rc_prob
        if reverse.any():
            out[reverse] = reverse_complement(out[reverse])
        return out, starts, reverse

    def train_batch(self, step: int, batch_size: int, rank: int = 0, world_size: int = 1,
                    return_provenance: bool = False):
        """This rank's share of the global batch of ``step``: LongTensor [batch_size // world_size, L].

        The global batch is samples ``step*batch_size .. step*batch_size + batch_size - 1``; rank
        ``r`` gets the ``r``-th contiguous slice. With ``return_provenance`` also returns a list of
        :class:`WindowProvenance`.
        """
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} / world_size {world_size}: need 0 <= rank < world_size")
        if batch_size < 1 or batch_size % world_size:
            raise ConfigError(f"batch_size {batch_size} must be a positive multiple of world_size {world_size}")
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        per = batch_size // world_size
        first = step * batch_size + rank * per
        ids, starts, reverse = self.sample_ids(np.arange(first, first + per, dtype=np.int64))
        batch = _to_long_tensor(ids)
        if return_provenance:
            return batch, self.provenance(starts, reverse)
        return batch

    # ------------------------------------------------------------------ validation set
    def _pick_val_starts(self, num: int) -> np.ndarray:
        """Global starts (int64 [<= num]) of the fixed validation windows."""
        L, tokens = self.window_length, self.store.tokens
        accepted: list[np.ndarray] = []
        for s, e in zip(self.val_regions.start.tolist(), self.val_regions.end.tolist()):
            n_tiles = (e - s) // L
            for c0 in range(0, n_tiles, 4096):  # chunks keep the temporary boolean array small
                c1 = min(n_tiles, c0 + 4096)
                tiles = tokens[s + c0 * L:s + c1 * L].reshape(c1 - c0, L)
                ok = np.count_nonzero(tiles == N_ID, axis=1) <= self.max_n
                accepted.append(s + L * (c0 + np.flatnonzero(ok)))
        starts = np.concatenate(accepted).astype(np.int64) if accepted else np.zeros(0, dtype=np.int64)
        if num < len(starts):
            starts = starts[np.unique(np.round(np.linspace(0, len(starts) - 1, num)).astype(np.int64))]
        return starts

    @property
    def num_val_windows(self) -> int:
        return int(self._val_starts.shape[0])

    def val_windows(self, return_provenance: bool = False):
        """The fixed validation set: LongTensor [num_val_windows, L], forward strand, in genome order."""
        L = self.window_length
        ids = np.empty((self.num_val_windows, L), dtype=np.uint8)
        self._gather(self._val_starts, np.arange(self.num_val_windows), ids)
        batch = _to_long_tensor(ids)
        if return_provenance:
            return batch, self.provenance(self._val_starts, np.zeros(self.num_val_windows, dtype=bool))
        return batch

    def val_batches(self, batch_size: int) -> Iterator["torch.Tensor"]:
        """The validation set in batches: LongTensor [<= batch_size, L] each."""
        full = self.val_windows()
        for i in range(0, full.shape[0], batch_size):
            yield full[i:i + batch_size]

    # ------------------------------------------------------------------ debugging
    def provenance(self, starts: np.ndarray, reverse: np.ndarray) -> list[WindowProvenance]:
        rec = np.searchsorted(self.store.offsets, starts, side="right") - 1
        local = starts - self.store.offsets[rec]
        return [WindowProvenance(self.store.names[r], s, self.window_length, "-" if rv else "+")
                for r, s, rv in zip(rec.tolist(), local.tolist(), np.asarray(reverse).tolist())]


def _to_long_tensor(ids: np.ndarray) -> "torch.Tensor":
    import torch  # imported lazily so building a genome store does not pay for torch

    # Widen in NumPy and wrap without a copy: measured here, torch's own ``.long()`` of a 256x1024
    # batch spent ~8 ms page-faulting a fresh 2 MB buffer each call, NumPy's allocator ~0.06 ms.
    return torch.from_numpy(ids.astype(np.int64))
