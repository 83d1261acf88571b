"""Minimal BED reader: ``chrom start end`` intervals, 0-based half-open.

Only the first three columns are read (any further columns are ignored), except that ``split``
selects the rows whose 4th column is that value (or one of those values) (the HyenaDNA/Basenji
``chrom start end split`` BED, split one of train/valid/test). Blank lines and lines
starting with ``#``, ``track`` or ``browser`` are skipped. Plain or gzip files. Columns may be
separated by tabs or spaces. Zero-length intervals (``start == end``, legal in BED) are kept by the
parser but contribute no sequence.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import DataError
from ._files import GZIP_ERRORS, open_binary

_SKIP_PREFIXES = ("#", "track", "browser")


@dataclass(frozen=True)
class BedInterval:
    chrom: str
    start: int
    end: int


def read_bed(path: str | Path, record_lengths: Mapping[str, int] | None = None,
             split: str | Sequence[str] | None = None) -> list[BedInterval]:
    """Parse ``path`` into intervals, in file order (only rows whose 4th column is in ``split``, if given).

    If ``record_lengths`` (record id -> length) is given, every chrom must be one of its keys and
    every end must be within the record; otherwise a :class:`DataError` names the file and line
    (and, for an unknown chrom, a few known ids and the closest match).
    """
    path = Path(path)
    out: list[BedInterval] = []
    seen_splits: set[str] = set()
    wanted = None if split is None else ({split} if isinstance(split, str) else set(split))
    with open_binary(path, "BED file") as (stream, _, _):
        try:
            lines = stream.read().decode("utf-8", errors="replace").splitlines()
        except GZIP_ERRORS as exc:
            raise DataError(f"{path}: truncated or corrupt gzip ({exc})") from None
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith(_SKIP_PREFIXES):
            continue
        fields = text.split()
        where = f"{path}, line {lineno}"
        if len(fields) < 3:
            raise DataError(f"{where}: expected at least 3 columns (chrom start end), got {len(fields)}: {text!r}")
        if wanted is not None:
            if len(fields) < 4:
                raise DataError(f"{where}: selecting rows by split {split!r} needs a 4th column (chrom start end "
                                f"split), got {len(fields)} columns: {text!r}")
            seen_splits.add(fields[3])
            if fields[3] not in wanted:
                continue
        chrom = fields[0]
        try:
            start, end = int(fields[1]), int(fields[2])
        except ValueError:
            raise DataError(f"{where}: start and end must be integers, got {fields[1]!r} and {fields[2]!r}") from None
        if start < 0 or end < start:
            raise DataError(f"{where}: invalid interval {chrom}:{start}-{end} (need 0 <= start <= end)")
        if record_lengths is not None:
            if chrom not in record_lengths:
                raise DataError(f"{where}: {_unknown_chrom(chrom, record_lengths)}")
            if end > record_lengths[chrom]:
                raise DataError(f"{where}: interval {chrom}:{start}-{end} ends beyond record {chrom!r} "
                                f"(length {record_lengths[chrom]}); is the BED for another assembly?")
        out.append(BedInterval(chrom, start, end))
    if wanted is not None and not out:
        raise DataError(f"{path}: no row has split {split!r} in column 4 (values found: "
                        f"{', '.join(sorted(seen_splits)) or 'none'})")
    return out


def _unknown_chrom(chrom: str, record_lengths: Mapping[str, int]) -> str:
    names = list(record_lengths)
    shown = ", ".join(repr(n) for n in names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
    close = difflib.get_close_matches(chrom, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"chrom {chrom!r} is not a record of the FASTA (known ids: {shown}){hint}"
