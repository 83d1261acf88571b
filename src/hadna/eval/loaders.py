"""Offline loaders for labelled DNA classification tasks -> :class:`TaskData`.

Every loader reads local files only (the Hugging Face Hub path runs only when asked for explicitly,
see :func:`load_hf_task`). Formats, by :attr:`TaskSpec.layout`:

``genomic_benchmarks``
    * sequence directories written by the ``genomic-benchmarks`` package:
      ``<data-dir>/<task>/{train,test}/<class>/*.txt``, one sequence per file;
    * or the official coordinate files ``<data-dir>/<task>/{train,test}/<class>.csv.gz`` (columns
      ``id,region,start,end,strand``; 0-based, end-exclusive) plus a reference FASTA (``reference=``):
      each interval is sliced from the reference and reverse-complemented on ``-`` strands (an empty
      strand counts as ``+``, as in genomic-benchmarks). The reference is read through the memory-mapped
      genome store (:class:`hadna.data.GenomeStore`, cached in ``.hadna_cache`` next to the FASTA or in
      ``~/.cache/hadna``), so it is parsed once and never held in memory as strings. Region names are matched exactly first, then
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, HadnaError, MissingFileError
from ..utils.io import list_directory
from ..utils.logging import get_logger
from .genomic_benchmarks import read_gb_coordinates, resolve_references
from .formats import SPLIT_FILE_STEMS, SPLIT_FILE_SUFFIXES
from .readers import (TRUNCATION_MODES, Truncation, columns_to_split, read_gb_directory,
                      read_split_file, truncate)
from .splits import stratified_split
from .task_data import Split, TaskData
from .tasks import TaskSpec, get_task

log = get_logger("eval.loaders")



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
        keep, held = stratified_split(splits["train"].labels, spec.test_fraction, holdout_seed,
                                      f"{splits['train'].source}: holding out a test set")
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
                                       f"(in {path.parent}: {list_directory(path.parent)})")
        else:
            path = _find_split_file(task_dir, role) if not spec.files else None
            if path is None:
                if role == "train":
                    expected = ", ".join(f"train{s}" for s in SPLIT_FILE_SUFFIXES)
                    raise MissingFileError(f"task {spec.name!r}: no training file in {task_dir}: expected one of "
                                           f"{expected}; found: {list_directory(task_dir)}")
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
            f"(found in {task_dir}: {list_directory(task_dir)})")
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
        refs = resolve_references(task_dir, classes, reference)
        splits_present = [d for d in (train_dir, test_dir) if d.is_dir()]
        for d in splits_present[1:]:
            extra = sorted({p.name.removesuffix(".csv.gz") for p in d.glob("*.csv.gz")} - set(classes))
            if extra:
                raise DataError(f"{d}: test classes {extra} never occur in the training data ({train_dir})")
        cache: dict = {}  # reference path -> its genome store, opened once for both splits
        seqs, labels = read_gb_coordinates(train_dir, refs, classes, cache)
        raw["train"] = (seqs, labels, str(train_dir))
        if test_dir.is_dir():
            test_classes = tuple(c for c in classes if (test_dir / f"{c}.csv.gz").is_file())
            t_seqs, t_labels = read_gb_coordinates(test_dir, refs, test_classes, cache)
            remap = np.array([classes.index(c) for c in test_classes], dtype=np.int64)
            raw["test"] = (t_seqs, remap[t_labels], str(test_dir))
        kind = "coordinates + " + ", ".join(sorted({str(p) for p in refs.values()}))
    else:
        raise MissingFileError(f"task {spec.name!r}: {train_dir} has neither class directories (<class>/*.txt) "
                               f"nor coordinate files (<class>.csv.gz); found: {list_directory(train_dir)}")
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


def with_max_length(spec: TaskSpec, max_length: int | None) -> TaskSpec:
    """A copy of ``spec`` with another ``max_length`` (for a CLI override)."""
    return dataclasses.replace(spec, max_length=max_length)
