"""Offline loaders for labelled DNA classification tasks -> :class:`TaskData`.

Every loader reads local files only (the Hugging Face Hub path runs only when asked for explicitly,
see :func:`load_hf_task`). Formats, by :attr:`TaskSpec.layout`:

``genomic_benchmarks``
    * sequence directories written by the ``genomic-benchmarks`` package:
      ``<data-dir>/<task>/{train,test}/<class>/*.txt``, one sequence per file;
    * or the official coordinate files ``<data-dir>/<task>/{train,test}/<class>.csv.gz`` (columns
      ``id,region,start,end,strand``; 0-based, end-exclusive) plus a reference FASTA (``reference=``):
      each interval is sliced from the reference and reverse-complemented on ``-`` strands (an empty
      strand counts as ``+``, as in genomic-benchmarks). Region names are matched exactly first, then
      with ``chr`` added/removed (``1`` <-> ``chr1``, ``MT`` <-> ``chrM``) and with a ``.N`` version
      suffix dropped from FASTA ids (Ensembl cDNA ``ENST...1.3`` -> ``ENST...1``).
    Labels: index of the class name in **sorted** order (the genomic-benchmarks package uses
    directory-listing order, which is not guaranteed; sorted order matches metadata.yaml).
``split_files``
    One file per split in ``<data-dir>/<path>``, named in ``TaskSpec.files`` or found by name:
    ``train.*``; ``dev.*``/``val.*``/``valid.*``/``validation.*`` (a provided validation split);
    ``test.*``. Each file is one of:

    * FASTA (``.fna``/``.fa``/``.fasta``, optionally gzipped) whose headers end in ``|label``
      (``>seq123|1``), the Nucleotide Transformer task files;
    * parquet, CSV or TSV (optionally gzipped) with a ``sequence`` or ``seq`` column and a ``label``
      column (other columns such as NT's ``name`` are ignored): NT exports, GUE (``{train,dev,test}.csv``),
      our ``genomic_benchmarks_partial`` TSVs, any user table.

    Without a test file, ``TaskSpec.no_test`` decides: ``holdout`` splits off a stratified test set of
    ``test_fraction`` (default 20%) with a fixed split seed (``holdout_seed``, default 0: the test set
    must not change between training seeds); ``kfold`` leaves ``test`` empty and the protocol
    cross-validates (:meth:`TaskData.folds`).

Checks (each a :class:`~hadna.errors.DataError` or :class:`~hadna.errors.MissingFileError` naming
file and line/record): missing files (listing what was expected and what is there), missing columns
(listing the columns found), labels that are not non-negative integers, a single class, labels
``>= num_classes``, validation/test labels unseen in training, empty sequences, characters that are
not DNA (validated with :data:`hadna.vocab.ENCODE_LUT`; N, U and IUPAC ambiguity codes are accepted).
Sequences are stripped of surrounding whitespace and upper-cased.

Truncation: sequences longer than ``TaskSpec.max_length`` are cut, by ``truncation=``:
``"left"`` (default) keeps the first ``max_length`` nt, which is what Hugging Face tokenizers with
``truncation=True`` do in the HyenaDNA/Caduceus pipelines behind the published numbers; ``"center"``
keeps the middle ``max_length`` nt (start at ``(L - max_length) // 2``); ``"none"`` keeps everything.
Truncated sequences are counted per split in :attr:`TaskData.counters`.

Line numbers in messages count the header as line 1, so the first data row is line 2.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..data._files import GZIP_ERRORS
from ..data.fasta import iter_fasta
from ..errors import ConfigError, DataError, HadnaError, MissingFileError
from ..sequence import reverse_complement
from ..utils.logging import get_logger
from ..vocab import ENCODE_LUT, INVALID
from .splits import stratified_kfold, stratified_split
from .tasks import TaskSpec, get_task

log = get_logger("eval.loaders")

Truncation = Literal["left", "center", "none"]
TRUNCATION_MODES: tuple[str, ...] = ("left", "center", "none")

#: split role -> file stems looked for (in this order) when ``TaskSpec.files`` does not name the file.
SPLIT_FILE_STEMS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "validation": ("dev", "val", "valid", "validation"),
    "test": ("test",),
}
FASTA_SUFFIXES = (".fna", ".fa", ".fasta")
TABLE_SUFFIXES = (".csv", ".tsv")
SPLIT_FILE_SUFFIXES: tuple[str, ...] = tuple(
    s + gz for s in FASTA_SUFFIXES + TABLE_SUFFIXES for gz in ("", ".gz")) + (".parquet",)
SEQUENCE_COLUMNS = ("sequence", "seq")
LABEL_COLUMN = "label"
COORDINATE_COLUMNS = ("id", "region", "start", "end", "strand")


# ------------------------------------------------------------------------------------------------
# Containers
# ------------------------------------------------------------------------------------------------

@dataclass
class Split:
    """One split of a task: ``sequences`` (upper-case str) and ``labels`` [N] int64."""

    sequences: list[str]
    labels: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (len(self.sequences),):
            raise ValueError(f"{len(self.sequences)} sequences but labels of shape {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, idx: np.ndarray, source: str | None = None) -> "Split":
        """The samples at ``idx`` ([M] int indices), in that order."""
        return Split([self.sequences[i] for i in idx], self.labels[idx],
                     self.source if source is None else source)

    @property
    def num_nt(self) -> int:
        """Total nucleotides (for throughput numbers)."""
        return sum(map(len, self.sequences))

    def class_counts(self, num_classes: int) -> list[int]:
        return np.bincount(self.labels, minlength=num_classes).tolist()


@dataclass
class TaskData:
    """A loaded task: train split, optional provided validation split, optional test split.

    ``test is None`` means the task must be cross-validated (:meth:`folds`). ``counters`` holds
    per-split numbers (``train_sequences``, ``train_truncated``, ...); ``notes`` says what was done to
    the data beyond reading it (held-out test, training on dev, truncation).
    """

    spec: TaskSpec
    train: Split
    validation: Split | None
    test: Split | None
    class_names: tuple[str, ...]
    source: str
    counters: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def needs_cross_validation(self) -> bool:
        return self.test is None

    def train_validation(self, seed: int) -> tuple[Split, Split]:
        """(train, validation): the provided validation split, or a stratified ``val_fraction`` split of
        train that depends on ``seed`` (the Caduceus protocol re-splits 90/10 for every seed)."""
        if self.validation is not None:
            return self.train, self.validation
        keep, held = stratified_split(self.train.labels, self.spec.val_fraction, seed)
        return (self.train.subset(keep, f"{self.train.source} (train part, seed {seed})"),
                self.train.subset(held, f"{self.train.source} (validation part, seed {seed})"))

    def folds(self, seed: int = 0) -> list[tuple[Split, Split]]:
        """``spec.cv_folds`` stratified (train, test) folds of the training data."""
        out = []
        for f, (tr, te) in enumerate(stratified_kfold(self.train.labels, self.spec.cv_folds, seed)):
            out.append((self.train.subset(tr, f"{self.train.source} (fold {f} train)"),
                        self.train.subset(te, f"{self.train.source} (fold {f} test)")))
        return out

    def fingerprint(self) -> str:
        """sha256 of every split's rows (sequence and label, after truncation) and the class names: two
        loads give the same fingerprint exactly when they hold the same data."""
        import hashlib

        h = hashlib.sha256("\t".join(self.class_names).encode())
        for role, s in (("train", self.train), ("validation", self.validation), ("test", self.test)):
            if s is not None:
                h.update(f"\n#{role} {len(s)}\n".encode())
                h.update(s.labels.astype("<i8").tobytes())
                h.update("\n".join(s.sequences).encode())
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description for run records and logs."""
        k = self.num_classes
        splits = {name: {"n": len(s), "class_counts": s.class_counts(k), "source": s.source}
                  for name, s in (("train", self.train), ("validation", self.validation), ("test", self.test))
                  if s is not None}
        return {"task": self.name, "benchmark": self.spec.benchmark, "class_names": list(self.class_names),
                "source": self.source, "splits": splits, "counters": dict(self.counters),
                "notes": list(self.notes), "fingerprint": self.fingerprint()}


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

    name = path.name.lower().removesuffix(".gz")
    try:
        if name.endswith(".parquet"):
            df = pd.read_parquet(path)
        elif name.endswith(".csv") or name.endswith(".tsv"):
            df = pd.read_csv(path, sep="\t" if name.endswith(".tsv") else ",", dtype=str,
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
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(FASTA_SUFFIXES):
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


# --- Genomic Benchmarks coordinates + reference FASTA -------------------------------------------

def _region_aliases(record_id: str) -> list[str]:
    """Names under which a FASTA record may be referred to, best match first."""
    bases = [record_id]
    m = re.fullmatch(r"(.+)\.\d+", record_id)  # version suffix: ENST00000217185.6 -> ENST00000217185
    if m:
        bases.append(m.group(1))
    out: list[str] = []
    for b in bases:
        out.append(b)
        out.append(b[3:] if b.startswith("chr") else "chr" + b)
        if b in ("MT", "chrM", "chrMT", "M"):
            out += ["chrM", "MT"]
    return list(dict.fromkeys(out))


@dataclass
class _Coords:
    path: Path
    ids: list[str]
    regions: list[str]
    starts: np.ndarray
    ends: np.ndarray
    minus: np.ndarray  # [N] bool


def read_coordinates(path: Path) -> _Coords:
    """One ``<class>.csv.gz`` coordinate file (columns id,region,start,end,strand)."""
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, compression="infer")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read coordinate table: {exc}") from None
    cols = {str(c).strip().lower(): c for c in df.columns}
    missing = [c for c in ("region", "start", "end") if c not in cols]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected {list(COORDINATE_COLUMNS)}; "
                        f"columns found: {list(df.columns)}")
    n = len(df)
    if n == 0:
        raise DataError(f"{path}: no rows")
    ids = df[cols["id"]].tolist() if "id" in cols else [str(i) for i in range(n)]
    regions = [r.strip() for r in df[cols["region"]].tolist()]
    bounds = []
    for col in ("start", "end"):
        values = df[cols[col]].tolist()
        arr = np.empty(n, dtype=np.int64)
        for i, v in enumerate(values):
            if not re.fullmatch(r"\s*\d+\s*", v):
                raise DataError(f"{path}: line {i + 2}: {col} {v!r} is not a non-negative integer")
            arr[i] = int(v)
        bounds.append(arr)
    starts, ends = bounds
    strands = [s.strip() for s in df[cols["strand"]].tolist()] if "strand" in cols else [""] * n
    for i, (region, s, e, strand) in enumerate(zip(regions, starts, ends, strands)):
        if not region:
            raise DataError(f"{path}: line {i + 2}: empty region name")
        if e <= s:
            raise DataError(f"{path}: line {i + 2}: end {e} <= start {s} (coordinates are 0-based, end-exclusive)")
        if strand not in ("+", "-", "", "."):
            raise DataError(f"{path}: line {i + 2}: strand {strand!r} is not '+', '-' or empty")
    return _Coords(path, ids, regions, starts, ends, np.array([s == "-" for s in strands]))


def _load_reference(fasta: Path, needed: set[str]) -> dict[str, tuple[str, str]]:
    """Read only the records of ``fasta`` that match ``needed`` region names.

    Returns region -> (FASTA record id, sequence upper-case). Exact names beat aliases.
    """
    if not fasta.is_file():
        raise MissingFileError(f"reference FASTA not found: {fasta}")
    found: dict[str, tuple[int, str, str]] = {}  # region -> (alias rank, record id, seq)
    for record_id, seq in iter_fasta(fasta):
        for rank, alias in enumerate(_region_aliases(record_id)):
            if alias in needed and (alias not in found or rank < found[alias][0]):
                found[alias] = (rank, record_id, seq.upper())
    return {region: (rid, seq) for region, (_, rid, seq) in found.items()}


def _fasta_ids_sample(fasta: Path, limit: int = 8) -> list[str]:
    out = []
    for record_id, _ in iter_fasta(fasta):
        out.append(record_id)
        if len(out) >= limit:
            break
    return out


def _resolve_references(task_dir: Path, classes: tuple[str, ...],
                        reference: str | Path | Mapping[str, str | Path] | None) -> dict[str, Path]:
    """class -> reference FASTA path (one file for all, a directory + metadata.yaml, or a mapping)."""
    if reference is None:
        raise MissingFileError(
            f"{task_dir} holds Genomic Benchmarks coordinate files only: pass a reference FASTA "
            f"(--reference FILE, or a directory with the files named in {task_dir / 'metadata.yaml'}) "
            f"to cut the sequences out of")
    if isinstance(reference, Mapping):
        out = {}
        for cls in classes:
            if cls not in reference:
                raise ConfigError(f"no reference FASTA given for class {cls!r} (given for: {sorted(reference)})")
            out[cls] = Path(reference[cls])
        return out
    ref = Path(reference)
    if ref.is_file():
        return {cls: ref for cls in classes}
    if not ref.is_dir():
        raise MissingFileError(f"reference FASTA not found: {ref}")
    meta_path = task_dir / "metadata.yaml"
    if not meta_path.is_file():
        raise MissingFileError(f"--reference {ref} is a directory, which needs {meta_path} to name the "
                               f"FASTA of each class; pass a FASTA file instead")
    from ..config import read_yaml

    meta = read_yaml(meta_path).get("classes", {})
    out = {}
    for cls in classes:
        url = (meta.get(cls) or {}).get("url")
        if not url:
            raise DataError(f"{meta_path}: no 'classes.{cls}.url' entry naming the reference of class {cls!r}")
        path = ref / url.rsplit("/", 1)[-1]
        if not path.is_file():
            raise MissingFileError(f"reference for class {cls!r} not found: expected {path} (download {url})")
        out[cls] = path
    return out


def read_gb_coordinates(split_dir: Path, refs: dict[str, Path], classes: tuple[str, ...],
                        cache: dict[Path, dict[str, tuple[str, str]]] | None = None,
                        needed: dict[Path, set[str]] | None = None) -> tuple[list[str], np.ndarray]:
    """Sequences of ``<split_dir>/<class>.csv.gz`` intervals cut from the class's reference FASTA."""
    cache = {} if cache is None else cache
    coords = {cls: read_coordinates(split_dir / f"{cls}.csv.gz") for cls in classes}
    for cls, c in coords.items():
        ref = refs[cls]
        if ref not in cache:
            want = set(c.regions) if needed is None else needed[ref]
            cache[ref] = _load_reference(ref, want)
    seqs: list[str] = []
    labels: list[int] = []
    locs: list[str] = []
    for label, cls in enumerate(classes):
        c, ref = coords[cls], refs[cls]
        genome = cache[ref]
        for i, region in enumerate(c.regions):
            where = f"{c.path}: line {i + 2} (id {c.ids[i]})"
            if region not in genome:
                tried = ", ".join(a for a in dict.fromkeys([region, region[3:] if region.startswith("chr")
                                                            else "chr" + region]))
                raise DataError(f"{where}: region {region!r} not found in reference {ref} (tried {tried}; "
                                f"its first records are {_fasta_ids_sample(ref)})")
            rid, chrom = genome[region]
            s, e = int(c.starts[i]), int(c.ends[i])
            if e > len(chrom):
                raise DataError(f"{where}: {region}:{s}-{e} is out of range: record {rid!r} of {ref} is "
                                f"{len(chrom):,} bp (wrong reference assembly?)")
            piece = chrom[s:e]
            seqs.append(reverse_complement(piece) if c.minus[i] else piece)
            labels.append(label)
            locs.append(where)
    seqs = clean_sequences(seqs, lambda i: locs[i])
    return seqs, np.asarray(labels, dtype=np.int64)


# ------------------------------------------------------------------------------------------------
# Task-level loading
# ------------------------------------------------------------------------------------------------

def task_directory(spec: TaskSpec, data_dir: str | Path | None) -> Path:
    """Where the task's files live: ``spec.path`` if absolute, else ``data_dir / spec.path``."""
    if spec.path and Path(spec.path).is_absolute():
        return Path(spec.path)
    if data_dir is None:
        if spec.files and all(Path(p).is_absolute() for p in spec.files.values()):
            return Path(".")
        raise ConfigError(f"task {spec.name!r}: no data directory given (--data-dir); its files are "
                          f"expected under <data-dir>/{spec.path or spec.name}")
    return Path(data_dir).expanduser() / spec.path


def _find_split_file(task_dir: Path, role: str) -> Path | None:
    hits = [task_dir / f"{stem}{suffix}" for stem in SPLIT_FILE_STEMS[role] for suffix in SPLIT_FILE_SUFFIXES]
    hits = [h for h in hits if h.is_file()]
    if len(hits) > 1:
        raise DataError(f"{task_dir}: several {role} files ({', '.join(h.name for h in hits)}); name one in "
                        f"the task's files.{role}")
    return hits[0] if hits else None


def _listing(directory: Path, limit: int = 12) -> str:
    if not directory.is_dir():
        return "(directory does not exist)"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir())
    if not names:
        return "(empty directory)"
    return ", ".join(names[:limit]) + (f", ... ({len(names)} entries)" if len(names) > limit else "")


RawSplits = dict[str, tuple[list[str], np.ndarray, str]]  # role -> (sequences, labels [N], source)


def _check_labels(spec: TaskSpec, class_names: tuple[str, ...] | None, splits: RawSplits,
                  notes: list[str]) -> tuple[str, ...]:
    """Validate label sets across splits; return the class names."""
    train_labels = splits["train"][1]
    train_src = splits["train"][2]
    present = np.unique(train_labels)
    if present.size < 2:
        raise DataError(f"{train_src}: the training data has a single class ({int(present[0])}); "
                        f"classification needs at least 2")
    num_classes = spec.num_classes
    if num_classes is None and not class_names and int(present.max()) >= present.size:
        # Inferred class count: labels must be 0..C-1, all present (labels 0 and 1000000 are not 1000001 classes).
        bad = int(present[present >= present.size][0])
        first = int(np.flatnonzero(train_labels == bad)[0])
        raise DataError(f"{train_src}: label {bad} (sample {first + 1} of this split): the training data has "
                        f"{present.size} distinct labels {_shown_labels(present)}, so labels must be "
                        f"0..{present.size - 1}; renumber them (or give the task's num_classes)")
    if num_classes is None:
        num_classes = len(class_names) if class_names else int(present.max()) + 1
    for role, (_, labels, src) in splits.items():
        if role != "train":  # checked first: the more telling message for an inferred class count
            unseen = sorted(set(np.unique(labels).tolist()) - set(present.tolist()))
            if unseen:
                first = int(np.flatnonzero(labels == unseen[0])[0])
                raise DataError(f"{src}: {role} labels {unseen} never occur in the training data "
                                f"(first at sample {first + 1} of this split)")
        over = np.flatnonzero(labels >= num_classes)
        if over.size:
            raise DataError(f"{src}: label {int(labels[over[0]])} (sample {int(over[0]) + 1} of this split) "
                            f"is >= the number of classes ({num_classes}); labels must be 0..{num_classes - 1}")
    absent = sorted(set(range(num_classes)) - set(present.tolist()))
    if absent:
        msg = f"classes {absent} have no training samples"
        log.warning("%s: %s", spec.name, msg)
        notes.append(msg)
    if class_names is None:
        class_names = spec.class_names or tuple(str(i) for i in range(num_classes))
    if len(class_names) != num_classes:
        raise DataError(f"{train_src}: {len(class_names)} class names {list(class_names)} for {num_classes} classes")
    return tuple(class_names)


def _shown_labels(values: np.ndarray, limit: int = 6) -> str:
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return "{" + shown + (", ...}" if len(values) > limit else "}")


def _finish(spec: TaskSpec, raw: RawSplits, class_names: tuple[str, ...] | None,
            source: str, notes: list[str], truncation: Truncation, holdout_seed: int) -> TaskData:
    """Label checks, test hold-out, truncation and counters -> TaskData."""
    if truncation not in TRUNCATION_MODES:
        raise ConfigError(f"truncation must be one of {list(TRUNCATION_MODES)}, got {truncation!r}")
    class_names = _check_labels(spec, class_names, raw, notes)
    splits = {role: Split(seqs, labels, src) for role, (seqs, labels, src) in raw.items()}
    if "test" not in splits and spec.no_test == "holdout":
        keep, held = stratified_split(splits["train"].labels, spec.test_fraction, holdout_seed)
        src = splits["train"].source
        splits["test"] = splits["train"].subset(
            held, f"{src} (held-out test, {spec.test_fraction:.0%}, seed {holdout_seed})")
        splits["train"] = splits["train"].subset(keep, f"{src} (train part)")
        notes.append(f"no test file: held out a stratified {spec.test_fraction:.0%} test set "
                     f"(split seed {holdout_seed}, {len(held)} sequences)")
    elif "test" not in splits:
        notes.append(f"no test split: evaluate by {spec.cv_folds}-fold stratified cross-validation")
    counters: dict[str, int] = {}
    total_truncated = 0
    for role in ("train", "validation", "test"):
        s = splits.get(role)
        if s is None:
            continue
        cut = [truncate(x, spec.max_length, truncation) for x in s.sequences]
        n_cut = sum(len(a) != len(b) for a, b in zip(cut, s.sequences))
        s.sequences = cut
        counters[f"{role}_sequences"] = len(s)
        counters[f"{role}_truncated"] = n_cut
        total_truncated += n_cut
    counters["truncated"] = total_truncated
    if total_truncated:
        notes.append(f"{total_truncated} sequences longer than {spec.max_length} nt truncated ({truncation})")
        log.info("%s: truncated %d sequences to %s nt (%s)", spec.name, total_truncated, spec.max_length, truncation)
    return TaskData(spec=spec, train=splits["train"], validation=splits.get("validation"), test=splits.get("test"),
                    class_names=class_names, source=source, counters=counters, notes=notes)


def load_split_files(spec: TaskSpec, data_dir: str | Path | None = None, *, truncation: Truncation = "left",
                     holdout_seed: int = 0) -> TaskData:
    """Load a ``split_files`` task (NT FASTA/parquet/CSV, GUE CSV, TSV, user tables)."""
    task_dir = task_directory(spec, data_dir)
    raw: RawSplits = {}
    notes: list[str] = []
    for role in ("train", "validation", "test"):
        if role in spec.files:
            path = task_dir / spec.files[role]
            if path.is_dir():
                raise DataError(f"task {spec.name!r}: {role} file {path} is a directory; pass a file")
            if not path.is_file():
                raise MissingFileError(f"task {spec.name!r}: {role} file not found: {path} "
                                       f"(in {path.parent}: {_listing(path.parent)})")
        else:
            path = _find_split_file(task_dir, role) if not spec.files else None
            if path is None:
                if role == "train":
                    expected = ", ".join(f"train{s}" for s in SPLIT_FILE_SUFFIXES)
                    raise MissingFileError(f"task {spec.name!r}: no training file in {task_dir}: expected one of "
                                           f"{expected}; found: {_listing(task_dir)}")
                continue
        seqs, labels = read_split_file(path)
        raw[role] = (seqs, labels, str(path))
    if spec.files.get("train", "").startswith("dev."):
        notes.append(f"trained on {spec.files['train']} (the source has no train split)")
    source = f"{task_dir}: " + ", ".join(f"{role}={Path(src).name} ({len(s):,})" for role, (s, _, src) in raw.items())
    return _finish(spec, raw, None, source, notes, truncation, holdout_seed)


def load_genomic_benchmark(spec: TaskSpec, data_dir: str | Path | None = None, *,
                           reference: str | Path | Mapping[str, str | Path] | None = None,
                           truncation: Truncation = "left", holdout_seed: int = 0) -> TaskData:
    """Load a Genomic Benchmarks task from sequence directories or coordinates + reference FASTA."""
    task_dir = task_directory(spec, data_dir)
    train_dir, test_dir = task_dir / "train", task_dir / "test"
    if not train_dir.is_dir():
        raise MissingFileError(
            f"task {spec.name!r}: {train_dir} not found; expected the genomic-benchmarks layout "
            f"{task_dir}/{{train,test}}/<class>/*.txt or coordinate files {task_dir}/{{train,test}}/<class>.csv.gz "
            f"(found in {task_dir}: {_listing(task_dir)})")
    coord_files = sorted(train_dir.glob("*.csv.gz"))
    class_dirs = [p for p in train_dir.iterdir() if p.is_dir()]
    raw: RawSplits = {}
    notes: list[str] = []
    if class_dirs:
        seqs, labels, classes = read_gb_directory(train_dir)
        raw["train"] = (seqs, labels, str(train_dir))
        if test_dir.is_dir():
            test_classes = tuple(sorted(p.name for p in test_dir.iterdir() if p.is_dir()))
            extra = sorted(set(test_classes) - set(classes))
            if extra:
                raise DataError(f"{test_dir}: test classes {extra} never occur in the training data ({train_dir})")
            t_seqs, t_labels, _ = read_gb_directory(test_dir)
            # Re-map: the test directory may lack a class, which shifts its sorted indices.
            remap = np.array([classes.index(c) for c in test_classes], dtype=np.int64)
            raw["test"] = (t_seqs, remap[t_labels], str(test_dir))
        kind = "sequence directories"
    elif coord_files:
        classes = tuple(sorted(p.name.removesuffix(".csv.gz") for p in coord_files))
        refs = _resolve_references(task_dir, classes, reference)
        splits_present = [d for d in (train_dir, test_dir) if d.is_dir()]
        for d in splits_present[1:]:
            extra = sorted({p.name.removesuffix(".csv.gz") for p in d.glob("*.csv.gz")} - set(classes))
            if extra:
                raise DataError(f"{d}: test classes {extra} never occur in the training data ({train_dir})")
        # Collect every region of every split first, so each reference FASTA is read once.
        needed: dict[Path, set[str]] = {}
        for d in splits_present:
            for cls in classes:
                f = d / f"{cls}.csv.gz"
                if f.is_file():
                    needed.setdefault(refs[cls], set()).update(read_coordinates(f).regions)
        cache: dict[Path, dict[str, tuple[str, str]]] = {}
        seqs, labels = read_gb_coordinates(train_dir, refs, classes, cache, needed)
        raw["train"] = (seqs, labels, str(train_dir))
        if test_dir.is_dir():
            test_classes = tuple(c for c in classes if (test_dir / f"{c}.csv.gz").is_file())
            t_seqs, t_labels = read_gb_coordinates(test_dir, refs, test_classes, cache, needed)
            remap = np.array([classes.index(c) for c in test_classes], dtype=np.int64)
            raw["test"] = (t_seqs, remap[t_labels], str(test_dir))
        kind = "coordinates + " + ", ".join(sorted({str(p) for p in refs.values()}))
    else:
        raise MissingFileError(f"task {spec.name!r}: {train_dir} has neither class directories (<class>/*.txt) "
                               f"nor coordinate files (<class>.csv.gz); found: {_listing(train_dir)}")
    if spec.class_names is not None and tuple(spec.class_names) != classes:
        raise DataError(f"{train_dir}: classes {list(classes)} differ from the task's class names "
                        f"{list(spec.class_names)}")
    source = (f"Genomic Benchmarks {kind} in {task_dir}: "
              + ", ".join(f"{role} {len(s):,}" for role, (s, _, _) in raw.items())
              + "; label = index of the sorted class name")
    return _finish(spec, raw, classes, source, notes, truncation, holdout_seed)


def load_task(task: TaskSpec | str, data_dir: str | Path | None = None, *,
              reference: str | Path | Mapping[str, str | Path] | None = None,
              truncation: Truncation = "left", holdout_seed: int = 0) -> TaskData:
    """Load a task (a :class:`TaskSpec` or a registered name) from local files under ``data_dir``.

    ``reference``: FASTA for Genomic Benchmarks coordinate files (a file, a directory holding the
    files named in metadata.yaml, or a class -> file mapping). Never touches the network; for the
    Hugging Face Hub use :func:`load_hf_task` explicitly.
    """
    spec = get_task(task) if isinstance(task, str) else task
    if spec.layout == "genomic_benchmarks":
        return load_genomic_benchmark(spec, data_dir, reference=reference, truncation=truncation,
                                      holdout_seed=holdout_seed)
    if reference is not None:
        raise ConfigError(f"task {spec.name!r}: a reference FASTA only applies to Genomic Benchmarks coordinate files")
    return load_split_files(spec, data_dir, truncation=truncation, holdout_seed=holdout_seed)


def load_hf_task(task: TaskSpec | str, *, dataset: str | None = None, config: str | None = None,
                 revision: str | None = None, cache_dir: str | None = None, trust_remote_code: bool = False,
                 truncation: Truncation = "left", holdout_seed: int = 0) -> TaskData:
    """Load a task from the Hugging Face Hub (only when the user asks for it explicitly).

    ``dataset``/``config`` default to the spec's ``hf_dataset``/``hf_config``. Needs the optional
    ``datasets`` package (``pip install 'hadna[hub]'``), imported here and nowhere else. Splits:
    ``train``; ``validation``/``dev``/``valid`` if present; ``test`` if present. Columns as for tables.
    ``trust_remote_code`` is always passed explicitly (False unless the user asked for it), so the
    dataset's own loading script never runs, and no "run the custom code? [y/N]" prompt appears.
    """
    spec = get_task(task) if isinstance(task, str) else task
    repo = dataset or spec.hf_dataset
    if not repo:
        raise ConfigError(f"task {spec.name!r} has no Hugging Face dataset; pass one explicitly")
    try:
        import datasets  # noqa: F401  (optional dependency)
    except ImportError:
        raise HadnaError("loading from the Hugging Face Hub needs the optional 'datasets' package: "
                         "pip install 'hadna[hub]' (or use local files with --data-dir)") from None
    kwargs: dict[str, Any] = {"revision": revision, "cache_dir": cache_dir,
                              "trust_remote_code": bool(trust_remote_code)}
    name = config if config is not None else spec.hf_config
    try:
        ds = datasets.load_dataset(repo, name, **kwargs)
    except Exception as exc:  # the Hub raises many types; report them as one user-facing error
        raise DataError(f"cannot load Hugging Face dataset {repo!r} (config {name!r}): {exc}") from None
    available = list(ds.keys())
    roles = {"train": ("train",), "validation": ("validation", "dev", "valid"), "test": ("test",)}
    raw: RawSplits = {}
    for role, keys in roles.items():
        key = next((k for k in keys if k in available), None)
        if key is None:
            if role == "train":
                raise MissingFileError(f"Hugging Face dataset {repo!r} (config {name!r}) has no 'train' split; "
                                       f"splits: {available}")
            continue
        part = ds[key]
        where = f"hf://{repo}/{name or ''}[{key}]"
        seqs, labels = columns_to_split({c: part[c] for c in part.column_names}, where, line_offset=0)
        raw[role] = (seqs, labels, where)
    source = f"Hugging Face dataset {repo} (config {name}, revision {revision or 'default'}): " + \
        ", ".join(f"{role} {len(s):,}" for role, (s, _, _) in raw.items())
    return _finish(spec, raw, None, source, [], truncation, holdout_seed)


def load_task_from_args(spec: TaskSpec, args: Any) -> TaskData:
    """Load ``spec`` with the options of :func:`hadna.eval.tasks.add_task_arguments`."""
    if getattr(args, "from_hub", False):
        return load_hf_task(spec, revision=getattr(args, "hub_revision", None), truncation=args.truncation)
    return load_task(spec, args.data_dir, reference=args.reference, truncation=args.truncation)


def with_max_length(spec: TaskSpec, max_length: int | None) -> TaskSpec:
    """A copy of ``spec`` with another ``max_length`` (for a CLI override)."""
    return dataclasses.replace(spec, max_length=max_length)
