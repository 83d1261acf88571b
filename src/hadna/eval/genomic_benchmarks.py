"""Genomic Benchmarks coordinate files (``<task>/{train,test}/<class>.csv.gz``: ``id,region,start,end,strand``,
0-based, end-exclusive) sliced from a reference FASTA, reverse-complemented on ``-`` strands.

The reference is read through the memory-mapped genome store (:class:`hadna.data.GenomeStore`, built
on first use and cached like every genome store), so whole chromosomes are never held as strings;
a slice is upper-case ``ACGTN`` (soft-masking folded, IUPAC ambiguity codes read as N).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import read_yaml
from ..data import GenomeStore
from ..errors import ConfigError, DataError, MissingFileError
from ..sequence import reverse_complement

COORDINATE_COLUMNS = ("id", "region", "start", "end", "strand")


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


@dataclass
class _Reference:
    """A reference FASTA as a memory-mapped :class:`~hadna.data.GenomeStore`, its records under every alias."""

    store: GenomeStore
    records: dict[str, str]  # region name (a record id or an alias of one) -> record id


def _load_reference(fasta: Path) -> _Reference:
    """Open (building it on first use) the genome store of ``fasta``; region names -> record ids.

    The store is cached where every genome store goes (:func:`hadna.data.default_cache_dir`:
    ``.hadna_cache`` next to the FASTA, or ``~/.cache/hadna``), so a reference is parsed once and
    later runs map it instead of reading whole chromosomes into memory. Exact names beat aliases.
    """
    if not fasta.is_file():
        raise MissingFileError(f"reference FASTA not found: {fasta}")
    store = GenomeStore.from_fasta(fasta)
    found: dict[str, tuple[int, str]] = {}  # region -> (alias rank, record id)
    for record_id in store.names:
        for rank, alias in enumerate(_region_aliases(record_id)):
            if alias not in found or rank < found[alias][0]:
                found[alias] = (rank, record_id)
    return _Reference(store, {region: rid for region, (_, rid) in found.items()})


def resolve_references(task_dir: Path, classes: tuple[str, ...],
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
                        cache: dict[Path, _Reference] | None = None) -> tuple[list[str], np.ndarray]:
    """Sequences of ``<split_dir>/<class>.csv.gz`` intervals cut from the class's reference FASTA.

    Sequences are upper-case ``ACGTN`` as the genome store decodes them (soft-masking folded, as the
    official Genomic Benchmarks sequences are; IUPAC ambiguity codes read as N). ``cache`` maps a
    reference path to its opened store, to share it between the splits of a task.
    """
    cache = {} if cache is None else cache
    coords = {cls: read_coordinates(split_dir / f"{cls}.csv.gz") for cls in classes}
    seqs: list[str] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        c, ref = coords[cls], refs[cls]
        if ref not in cache:
            cache[ref] = _load_reference(ref)
        genome = cache[ref]
        for i, region in enumerate(c.regions):
            where = f"{c.path}: line {i + 2} (id {c.ids[i]})"
            rid = genome.records.get(region)
            if rid is None:
                tried = ", ".join(a for a in dict.fromkeys([region, region[3:] if region.startswith("chr")
                                                            else "chr" + region]))
                raise DataError(f"{where}: region {region!r} not found in reference {ref} (tried {tried}; "
                                f"its first records are {genome.store.names[:8]})")
            s, e = int(c.starts[i]), int(c.ends[i])
            length = int(genome.store.lengths[genome.store.record_index(rid)])
            if e > length:
                raise DataError(f"{where}: {region}:{s}-{e} is out of range: record {rid!r} of {ref} is "
                                f"{length:,} bp (wrong reference assembly?)")
            piece = genome.store.fetch(rid, s, e)
            seqs.append(reverse_complement(piece) if c.minus[i] else piece)
            labels.append(label)
    return seqs, np.asarray(labels, dtype=np.int64)
