"""Reading labelled sequence files: FASTA with ``|label`` headers, CSV / TSV (optionally gzipped) and
parquet tables, genomic-benchmarks sequence directories; the sequence and label checks they share.

File formats are told apart by :func:`hadna.eval.formats.file_format` (the one suffix list).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..data._files import GZIP_ERRORS
from ..data.fasta import iter_fasta
from ..errors import ConfigError, DataError, HadnaError, MissingFileError
from ..vocab import ENCODE_LUT, INVALID
from .formats import file_format

Truncation = Literal["left", "center", "none"]
TRUNCATION_MODES: tuple[str, ...] = ("left", "center", "none")

SEQUENCE_COLUMNS = ("sequence", "seq")
LABEL_COLUMN = "label"


# ------------------------------------------------------------------------------------------------
# Sequence and label checks
# ------------------------------------------------------------------------------------------------

Locate = Callable[[int], str]


def clean_sequences(raw: list[str], locate: Locate) -> list[str]:
    """Strip, upper-case and validate sequences; ``locate(i)`` names row ``i`` in error messages.

    All sequences are checked with one lookup in :data:`ENCODE_LUT` over their concatenation, so
    this is fast for hundreds of thousands of rows.
    """
    seqs = [s.strip() for s in raw]  # validated before upper-casing, so errors show the original text
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        more = f" ({empty.size - 1} more empty rows)" if empty.size > 1 else ""
        raise DataError(f"{locate(int(empty[0]))}: empty sequence{more}")
    if not seqs:
        return seqs
    ends = np.cumsum(lengths)
    blob = "".join(seqs)
    try:
        codes = ENCODE_LUT[np.frombuffer(blob.encode("ascii"), dtype=np.uint8)]
        bad = np.flatnonzero(codes == INVALID)
    except UnicodeEncodeError as exc:  # non-ASCII: character index == byte index up to here
        bad = np.array([exc.start])
    if bad.size:
        pos = int(bad[0])
        row = int(np.searchsorted(ends, pos, side="right"))
        col = pos - int(ends[row] - lengths[row])
        n_rows = np.unique(np.searchsorted(ends, bad, side="right")).size
        more = f" ({n_rows - 1} more rows have invalid characters)" if n_rows > 1 else ""
        raise DataError(f"{locate(row)}: invalid character {blob[pos]!r} at position {col + 1} of the "
                        f"sequence (allowed: A C G T N, U and IUPAC ambiguity codes, any case){more}")
    return [x.upper() for x in seqs]


_INT_RE = re.compile(r"^[+-]?\d+(\.0*)?$")


def parse_labels(raw: list[Any], locate: Locate) -> np.ndarray:
    """Labels -> [N] int64; anything but a non-negative integer (``"1"``, ``1``, ``"1.0"``) is an error."""
    out = np.empty(len(raw), dtype=np.int64)
    for i, value in enumerate(raw):
        text = str(value).strip()
        if value is None or not _INT_RE.match(text):
            raise DataError(f"{locate(i)}: label {value!r} is not an integer (labels must be 0, 1, ...)")
        out[i] = int(float(text)) if "." in text else int(text)
        if out[i] < 0:
            raise DataError(f"{locate(i)}: label {out[i]} is negative (labels must be 0, 1, ...)")
    return out


def truncate(seq: str, max_length: int | None, mode: Truncation = "left") -> str:
    """Cut ``seq`` to ``max_length`` nt: ``left`` keeps the start, ``center`` the middle, ``none`` all."""
    if mode not in TRUNCATION_MODES:
        raise ConfigError(f"truncation must be one of {list(TRUNCATION_MODES)}, got {mode!r}")
    if max_length is None or mode == "none" or len(seq) <= max_length:
        return seq
    if mode == "left":
        return seq[:max_length]
    start = (len(seq) - max_length) // 2
    return seq[start:start + max_length]


# ------------------------------------------------------------------------------------------------
# Readers (each returns raw sequences + labels, already validated)
# ------------------------------------------------------------------------------------------------

def _open_text(path: Path):
    """Open a text file, gzipped or not (decided by the magic bytes, not the name)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="ascii", errors="replace")
    return open(path, encoding="ascii", errors="replace")


def _fasta_headers(path: Path) -> list[tuple[str, int]]:
    """(whole header line without '>', line number) of every record, in file order.

    :func:`hadna.data.fasta.iter_fasta` (which validates the file) yields only the record id (the
    first word of the header), but an NT task header keeps its label after the *last* ``|`` of the
    whole line, so the labels are read from this cheap second pass over the header lines.
    """
    out = []
    with _open_text(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            if line.startswith(">"):
                out.append((line[1:].strip(), line_no))
    return out


def read_labelled_fasta(path: Path) -> tuple[list[str], np.ndarray]:
    """NT task FASTA: headers end in ``|label`` (``>name|1``). Returns (sequences, labels [N])."""
    seqs = [seq for _, seq in iter_fasta(path)]  # validates: nucleotide codes, empty records, gzip
    found = _fasta_headers(path)
    if len(found) != len(seqs):  # pragma: no cover - both passes read the same '>' lines
        raise DataError(f"{path}: found {len(found)} header lines but {len(seqs)} FASTA records")
    headers = [h for h, _ in found]
    lines = [n for _, n in found]

    def locate(i: int) -> str:
        return f"{path}: record {i + 1} (line {lines[i]}, >{headers[i][:60]})"

    raw_labels = []
    for i, header in enumerate(headers):
        if "|" not in header:
            raise DataError(f"{locate(i)}: the header has no '|label' suffix (expected e.g. >seq123|1)")
        raw_labels.append(header.rsplit("|", 1)[1])
    return clean_sequences(seqs, locate), parse_labels(raw_labels, locate)


def find_column(columns: list[Any], wanted: tuple[str, ...], where: str, ordered: bool = False) -> Any | None:
    """The one column named like ``wanted`` (case-insensitive), or None; several candidates are an error.

    Candidates: every column whose name is one of ``wanted`` (``sequence`` and ``seq`` together are
    ambiguous), and pandas' renamed repeats of a header (``label.1`` for a second ``label`` column).
    ``ordered``: ``wanted`` is a preference order instead (ids: ``id`` before ``name``); only a repeated
    header of the chosen name is an error.
    """
    if ordered:
        for name in wanted:
            found = find_column(columns, (name,), where)
            if found is not None:
                return found
        return None
    alternatives = "|".join(map(re.escape, wanted))
    hits = [c for c in columns if re.fullmatch(rf"(?:{alternatives})(?:\.\d+)?", str(c).strip().lower())]
    if len(hits) > 1:
        raise DataError(f"{where}: {len(hits)} columns could hold the {wanted[0]}s ({', '.join(repr(str(c)) for c in hits)}); "
                        f"keep exactly one (a repeated header is read as NAME.1)")
    return hits[0] if hits and str(hits[0]).strip().lower() in wanted else None


def columns_to_split(columns: Mapping[str, list[Any]], where: str,
                     line_offset: int = 2) -> tuple[list[str], np.ndarray]:
    """Validated (sequences, labels) from a column mapping with ``sequence``/``seq`` and ``label``.

    ``line_offset``: added to the 0-based row index to name a row (2 for a file with a header line;
    0 gives 0-based row numbers for in-memory tables such as Hub datasets).
    """
    names = list(columns)
    seq_col = find_column(names, SEQUENCE_COLUMNS, where)
    label_col = find_column(names, (LABEL_COLUMN,), where)
    missing = [w for w, c in (("'sequence' or 'seq'", seq_col), ("'label'", label_col)) if c is None]
    if missing:
        raise DataError(f"{where}: missing column {' and '.join(missing)}; columns found: {names}")
    row_word = "line" if line_offset else "row"

    def locate(i: int) -> str:
        return f"{where}: {row_word} {i + line_offset}"

    raw_seqs = list(columns[seq_col])
    for i, s in enumerate(raw_seqs):
        if s is None or (isinstance(s, float) and np.isnan(s)):
            raise DataError(f"{locate(i)}: missing sequence")
        if not isinstance(s, str):
            raise DataError(f"{locate(i)}: sequence is a {type(s).__name__}, not text")
    if not raw_seqs:
        raise DataError(f"{where}: no rows")
    raw_labels = [None if (isinstance(v, float) and np.isnan(v)) else v for v in columns[label_col]]
    return clean_sequences(raw_seqs, locate), parse_labels(raw_labels, locate)


def read_table(path: Path) -> tuple[list[str], np.ndarray]:
    """CSV / TSV (optionally gzipped) or parquet with sequence and label columns."""
    import pandas as pd

    kind = file_format(path)
    try:
        if kind == "parquet":
            df = pd.read_parquet(path)
        elif kind in ("csv", "tsv"):
            df = pd.read_csv(path, sep="\t" if kind == "tsv" else ",", dtype=str,
                             keep_default_na=False, na_filter=False, compression="infer")
        else:
            raise DataError(f"{path}: unknown table format (expected .csv, .tsv, .parquet, optionally .gz)")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError,
            *GZIP_ERRORS) as exc:
        if isinstance(exc, HadnaError):
            raise
        raise DataError(f"{path}: cannot read as a table: {exc}") from None
    return columns_to_split({c: df[c].tolist() for c in df.columns}, str(path))


def read_split_file(path: Path) -> tuple[list[str], np.ndarray]:
    """Dispatch on the file name: FASTA with ``|label`` headers, or a table."""
    if file_format(path) == "fasta":
        return read_labelled_fasta(path)
    return read_table(path)


def read_gb_directory(split_dir: Path) -> tuple[list[str], np.ndarray, tuple[str, ...]]:
    """``<split_dir>/<class>/*.txt`` (genomic-benchmarks layout) -> (sequences, labels, classes).

    Labels index the sorted class names; files are read in sorted order.
    """
    classes = tuple(sorted(p.name for p in split_dir.iterdir() if p.is_dir()))
    if not classes:
        raise MissingFileError(f"{split_dir}: no class directories (expected {split_dir}/<class>/*.txt)")
    seqs, labels, files = [], [], []
    for label, cls in enumerate(classes):
        class_files = sorted((split_dir / cls).glob("*.txt"))
        if not class_files:
            raise MissingFileError(f"{split_dir / cls}: no .txt sequence files")
        for f in class_files:
            seqs.append(f.read_text(encoding="ascii", errors="replace"))
            labels.append(label)
            files.append(f)
    seqs = clean_sequences(seqs, lambda i: str(files[i]))
    return seqs, np.asarray(labels, dtype=np.int64), classes
