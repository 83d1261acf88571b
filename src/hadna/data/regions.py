"""Sets of genome intervals, and the train / validation split of a genome.

A :class:`Regions` is a sorted list of disjoint half-open intervals, each inside one record, in the
*global* coordinates of a :class:`~hadna.data.genome.GenomeStore` (``store.offsets[r] + position``).
Windows are only ever cut from inside one interval, so keeping intervals of different records apart
(never merging across a record boundary) guarantees that no window spans two records.

The split (:func:`plan_regions`):

* eligible region ``E``: the BED intervals if a BED is given, else all records;
* ``E`` keeps only pieces of at least ``window_length`` bases (``short_record_policy``);
* validation ``V``: the named records (``val_records``), or the intervals of ``val_bed``, or by
  default the last ``val_fraction`` of ``E``'s bases in file order (a contiguous stretch of the
  genome; the record at the boundary is cut in two), or with ``val_per_file`` the last
  ``round(val_fraction x records)`` whole records of each FASTA file (the same alignment blocks in
  every species when the files are aligned block for block). ``V`` is intersected with ``E``: a ``bed``
  restricts validation windows as well as training windows;
* training ``T = E - V``. Training and validation windows therefore never overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..errors import DataError
from ..utils.logging import get_logger
from .bed import BedInterval, read_bed
from .genome import GenomeStore

log = get_logger("data.regions")

_I64 = np.int64


@dataclass(frozen=True)
class Regions:
    """Disjoint intervals, sorted by global start.

    record: int64 [K] record index of each interval; start, end: int64 [K] global coordinates.
    """

    record: np.ndarray
    start: np.ndarray
    end: np.ndarray

    # ---------------------------------------------------------------- constructors
    @classmethod
    def empty(cls) -> "Regions":
        z = np.zeros(0, dtype=_I64)
        return cls(z, z.copy(), z.copy())

    @classmethod
    def _from_lists(cls, rec: Sequence[int], start: Sequence[int], end: Sequence[int]) -> "Regions":
        return cls(np.asarray(rec, dtype=_I64), np.asarray(start, dtype=_I64), np.asarray(end, dtype=_I64))

    @classmethod
    def whole_records(cls, store: GenomeStore, records: Iterable[int] | None = None) -> "Regions":
        idx = np.arange(store.num_records) if records is None else np.unique(np.fromiter(records, dtype=_I64))
        idx = idx[store.lengths[idx] > 0]
        return cls(idx.astype(_I64), store.offsets[idx].copy(), store.offsets[idx] + store.lengths[idx])

    @classmethod
    def from_local(cls, store: GenomeStore, record: Sequence[int], start: Sequence[int],
                   end: Sequence[int]) -> "Regions":
        """From per-record coordinates (any order, may overlap): sorted, merged, empty ones dropped."""
        rec = np.asarray(record, dtype=_I64)
        gs = store.offsets[rec] + np.asarray(start, dtype=_I64)
        ge = store.offsets[rec] + np.asarray(end, dtype=_I64)
        keep = ge > gs
        rec, gs, ge = rec[keep], gs[keep], ge[keep]
        order = np.lexsort((ge, gs))
        out_r: list[int] = []
        out_s: list[int] = []
        out_e: list[int] = []
        for r, s, e in zip(rec[order].tolist(), gs[order].tolist(), ge[order].tolist()):
            if out_r and out_r[-1] == r and s <= out_e[-1]:  # overlapping or touching, same record
                out_e[-1] = max(out_e[-1], e)
            else:
                out_r.append(r)
                out_s.append(s)
                out_e.append(e)
        return cls._from_lists(out_r, out_s, out_e)

    @classmethod
    def from_bed(cls, store: GenomeStore, intervals: Sequence[BedInterval]) -> "Regions":
        rec = [store.index[iv.chrom] for iv in intervals]  # chroms were checked by read_bed
        return cls.from_local(store, rec, [iv.start for iv in intervals], [iv.end for iv in intervals])

    # ---------------------------------------------------------------- properties
    def __len__(self) -> int:
        return int(self.record.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        return self.end - self.start

    @property
    def total(self) -> int:
        return int(self.lengths.sum())

    # ---------------------------------------------------------------- set operations
    def intersect(self, other: "Regions") -> "Regions":
        a_r, a_s, a_e = self.record.tolist(), self.start.tolist(), self.end.tolist()
        b_s, b_e = other.start.tolist(), other.end.tolist()
        out_r, out_s, out_e = [], [], []
        i = j = 0
        while i < len(a_s) and j < len(b_s):
            lo, hi = max(a_s[i], b_s[j]), min(a_e[i], b_e[j])
            if lo < hi:
                out_r.append(a_r[i])
                out_s.append(lo)
                out_e.append(hi)
            if a_e[i] < b_e[j]:
                i += 1
            else:
                j += 1
        return self._from_lists(out_r, out_s, out_e)

    def subtract(self, other: "Regions") -> "Regions":
        a_r, a_s, a_e = self.record.tolist(), self.start.tolist(), self.end.tolist()
        b_s, b_e = other.start.tolist(), other.end.tolist()
        out_r, out_s, out_e = [], [], []
        j = 0
        for r, s, e in zip(a_r, a_s, a_e):
            while j < len(b_s) and b_e[j] <= s:  # b intervals entirely before this one
                j += 1
            cur, k = s, j
            while k < len(b_s) and b_s[k] < e:
                if b_s[k] > cur:
                    out_r.append(r)
                    out_s.append(cur)
                    out_e.append(b_s[k])
                cur = max(cur, b_e[k])
                k += 1
            if cur < e:
                out_r.append(r)
                out_s.append(cur)
                out_e.append(e)
        return self._from_lists(out_r, out_s, out_e)

    def tail(self, n_bases: int) -> "Regions":
        """The last ``n_bases`` bases (in global order); the first interval kept may be cut."""
        if n_bases <= 0 or len(self) == 0:
            return Regions.empty()
        from_end = np.cumsum(self.lengths[::-1])
        k = int(np.searchsorted(from_end, n_bases))  # intervals K-1-k .. K-1 are (partly) kept
        if k >= len(self):
            return self
        first = len(self) - 1 - k
        start = self.start[first:].copy()
        before = int(from_end[k - 1]) if k > 0 else 0
        start[0] = self.end[first] - (n_bases - before)
        return Regions(self.record[first:].copy(), start, self.end[first:].copy())

    def split_by_length(self, min_length: int) -> tuple["Regions", "Regions"]:
        """(intervals of at least ``min_length`` bases, the shorter ones)."""
        ok = self.lengths >= min_length
        return (Regions(self.record[ok], self.start[ok], self.end[ok]),
                Regions(self.record[~ok], self.start[~ok], self.end[~ok]))

    def to_local(self, store: GenomeStore) -> list[tuple[str, int, int]]:
        """``[(record_name, start, end), ...]`` in per-record coordinates (for logs and tests)."""
        off = store.offsets[self.record]
        return [(store.names[r], s, e) for r, s, e in
                zip(self.record.tolist(), (self.start - off).tolist(), (self.end - off).tolist())]


@dataclass
class RegionPlan:
    """The result of :func:`plan_regions`, with the numbers worth logging."""

    train: Regions
    val: Regions
    eligible_bases: int
    skipped_pieces: int = 0
    skipped_bases: int = 0
    short_records: int = 0


def plan_regions(store: GenomeStore, *, window_length: int, bed: str | None = None, val_fraction: float = 0.1,
                 val_bed: str | None = None, val_records: Sequence[str] | None = None,
                 short_record_policy: str = "skip", bed_split: str | Sequence[str] | None = None,
                 val_bed_split: str | None = None, val_per_file: bool = False) -> RegionPlan:
    """Split ``store`` into training and validation regions (see the module docstring)."""
    L = window_length
    lengths = store.record_lengths()
    eligible = Regions.from_bed(store, read_bed(bed, lengths, bed_split)) if bed else Regions.whole_records(store)
    if len(eligible) == 0:
        raise DataError(f"{bed}: the BED file selects no sequence" if bed else "the genome is empty")

    touched = np.unique(eligible.record)
    short = touched[store.lengths[touched] < L]
    if len(short) and short_record_policy == "error":
        shown = ", ".join(f"{store.names[r]!r} ({store.lengths[r]} bp)" for r in short[:5].tolist())
        raise DataError(f"{len(short)} record(s) are shorter than window_length={L}: {shown}"
                        f"{', ...' if len(short) > 5 else ''} (set short_record_policy: skip to leave them out)")
    usable, dropped = eligible.split_by_length(L)
    skipped_pieces, skipped_bases = len(dropped), dropped.total
    if len(usable) == 0:
        raise DataError(f"no record{' / BED interval' if bed else ''} is at least window_length={L} bases long "
                        f"(longest: {int(eligible.lengths.max())} bp); lower window_length")

    if val_records:
        missing = [n for n in val_records if n not in store.index]
        if missing:
            store.record_index(missing[0])  # raises a DataError listing known ids
        val = Regions.whole_records(store, (store.index[n] for n in val_records)).intersect(usable)
    elif val_bed:
        val = Regions.from_bed(store, read_bed(val_bed, lengths, val_bed_split)).intersect(usable)
    elif val_per_file:
        bounds = np.cumsum([0] + list(store.file_records))
        held = []
        for f, (lo, hi) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist())):
            k = math.floor(val_fraction * (hi - lo) + 0.5)  # round half up (Python's round() goes to even)
            if k == 0 and val_fraction > 0:
                source = store.sources[f]["path"] if f < len(store.sources) else f"file {f + 1}"
                raise DataError(f"{source}: val_per_file holds out round({val_fraction} x {hi - lo} records) = 0 "
                                "records of this file; raise val_fraction, or hold out a region with val_bed")
            held.append(np.arange(hi - k, hi))
        val = Regions.whole_records(store, np.concatenate(held).astype(_I64)).intersect(usable)
    else:
        val = usable.tail(int(round(val_fraction * usable.total)))

    train, cut = usable.subtract(val).split_by_length(L)
    skipped_pieces += len(cut)
    skipped_bases += cut.total
    val, val_cut = val.split_by_length(L)
    skipped_pieces += len(val_cut)
    skipped_bases += val_cut.total
    if len(train) == 0:
        raise DataError(f"no training sequence is left after holding out validation ({val.total} bp) and "
                        f"dropping pieces shorter than window_length={L}")
    if (val_records or val_bed or val_fraction > 0) and len(val) == 0:
        raise DataError(f"the validation region has no piece of at least window_length={L} bases inside the "
                        "eligible sequence (a BED given as `bed` restricts validation too); raise val_fraction "
                        "or give longer val_records / val_bed intervals")
    return RegionPlan(train=train, val=val, eligible_bases=eligible.total, skipped_pieces=skipped_pieces,
                      skipped_bases=skipped_bases, short_records=len(short))
