"""File names of labelled sequence files: the one list of format suffixes, and the split-file names.

Pure string work (no NumPy, no torch), so the command line can name tasks from file names quickly.
"""

from __future__ import annotations

from pathlib import Path

FASTA_SUFFIXES = (".fna", ".fa", ".fasta")
TABLE_SUFFIXES = (".csv", ".tsv")
PARQUET_SUFFIXES = (".parquet",)
#: every format suffix (each may be followed by ``.gz``; split files gzip only FASTA and tables).
FORMAT_SUFFIXES: tuple[str, ...] = FASTA_SUFFIXES + TABLE_SUFFIXES + PARQUET_SUFFIXES
#: every file name ending a split file may have (FASTA and tables optionally gzipped; parquet).
SPLIT_FILE_SUFFIXES: tuple[str, ...] = tuple(
    s + gz for s in FASTA_SUFFIXES + TABLE_SUFFIXES for gz in ("", ".gz")) + PARQUET_SUFFIXES
#: split role -> file stems looked for (in this order) when ``TaskSpec.files`` does not name the file.
SPLIT_FILE_STEMS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "validation": ("dev", "val", "valid", "validation"),
    "test": ("test",),
}


def file_format(path: str | Path) -> str | None:
    """"fasta", "csv", "tsv" or "parquet" from the file name (a ``.gz`` is looked through), else None."""
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith(FASTA_SUFFIXES):
        return "fasta"
    for suffix in TABLE_SUFFIXES + PARQUET_SUFFIXES:
        if name.endswith(suffix):
            return suffix[1:]
    return None


def file_stem(path: str | Path) -> str:
    """The file name without its format suffixes (``train.csv.gz`` -> ``train``), matched as
    :func:`file_format` matches them (any case, a ``.gz`` looked through)."""
    name = Path(path).name
    if name.lower().endswith(".gz"):
        name = name[:-len(".gz")]
    for suffix in FORMAT_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[:-len(suffix)]
    return name


def task_name_from_file(path: str | Path) -> str:
    """The name of a task given by its training file: the file's stem, or its folder's name when the stem
    only says which split it is (``data/promoters/train.csv`` -> ``promoters``)."""
    path = Path(path)
    stem = file_stem(path)
    if stem.lower() in {s for stems in SPLIT_FILE_STEMS.values() for s in stems}:
        stem = path.resolve().parent.name or stem
    return stem or "custom"
