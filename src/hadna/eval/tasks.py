"""The task registry: what each downstream benchmark task is and how the field evaluates it.

A :class:`TaskSpec` says what a task is (classes, maximum length in nucleotides, primary metric),
how it is evaluated by default (seeds, epochs, learning-rate and batch-size grids) and where its
files live relative to a data root (``--data-dir``). The loaders in :mod:`hadna.eval.loaders` turn a
spec plus a data root into a :class:`~hadna.eval.task_data.TaskData`.

Registered benchmarks
---------------------
``genomic_benchmarks`` (Grešová et al. 2023), 8 tasks
    Protocol of Caduceus (Schiff et al. 2024, ``slurm_scripts/run_genomics_benchmark.sh``): top-1
    accuracy on the official test split, 5 seeds (1..5, each also seeding the 90/10 train/validation
    split), 10 epochs, learning rate in {1e-3, 2e-3}, batch size in {128, 256}.
    Data root: the directory the ``genomic-benchmarks`` package writes (``~/.genomic_benchmarks``,
    ``<task>/{train,test}/<class>/*.txt``), or its coordinate files (``<task>/{train,test}/<class>.csv.gz``)
    plus a reference FASTA.
``nucleotide_transformer`` (Dalla-Torre et al. 2023), 18 tasks
    Protocol of Caduceus (``run_nucleotide_transformer.sh``): 10 seeds (1..10), 20 epochs,
    learning rate in {1e-3, 2e-3}, batch size in {128, 512}; MCC for histone and enhancer tasks, F1
    (binary) for promoters and splice acceptors/donors, accuracy for ``splice_sites_all``.
    Data root: a directory with ``<task>/{train,test}.fna`` (the layout of the Hugging Face dataset
    ``InstaDeepAI/nucleotide_transformer_downstream_tasks``) or parquet/CSV exports of it.
``gue`` (DNABERT-2's GUE, Zhou et al. 2024), offline stand-ins
    Real data that is available offline (``../shared/data/benchmarks/gue``). Several tasks share their
    source with NT tasks, but splits and lengths differ: their numbers are GUE numbers, never NT
    numbers. GUE reports MCC. Where GUE ships no ``train.csv`` (EMP, splice) we train on ``dev.csv``
    and test on ``test.csv``. Seeds/epochs/grids for these are hadna's choice (see each spec).
``custom``
    Anything else: from a YAML file (:func:`task_from_yaml`) or command-line options (:func:`hadna.commands.options.task_from_args`).
    The registry also holds three custom tasks over the partial Genomic Benchmarks data available
    offline (not comparable with published GB numbers: different splits).

Lengths, class counts and grids below come from the sources named in the comments. Numbers marked
``UNCERTAIN`` were not checked against the original data files.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import from_dict, read_yaml
from ..errors import ConfigError

Benchmark = Literal["genomic_benchmarks", "nucleotide_transformer", "gue", "custom"]
Metric = Literal["accuracy", "mcc", "f1"]
#: ``genomic_benchmarks``: ``<path>/{train,test}/<class>/*.txt`` or ``<path>/{train,test}/<class>.csv.gz``
#: (coordinates; needs a reference FASTA). ``split_files``: one file per split in ``<path>`` (FASTA with
#: ``|label`` headers, parquet, CSV or TSV), found by name (``train.*``, ``dev.*``/``val.*``, ``test.*``)
#: or named explicitly in ``files``.
Layout = Literal["genomic_benchmarks", "split_files"]
#: What to do when a task has no test split: ``holdout`` splits off a stratified, seed-fixed test set
#: (``test_fraction``); ``kfold`` leaves ``test`` empty so the protocol cross-validates (``cv_folds``).
NoTestPolicy = Literal["holdout", "kfold"]

BENCHMARKS: tuple[str, ...] = ("genomic_benchmarks", "nucleotide_transformer", "gue", "custom")
METRICS: tuple[str, ...] = ("accuracy", "mcc", "f1")
#: the most classes a task may have (metrics build a num_classes x num_classes confusion matrix).
MAX_CLASSES = 10_000
SPLIT_ROLES: tuple[str, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class TaskSpec:
    """One downstream classification task.

    ``path`` is relative to the data root (``--data-dir``) unless absolute. ``files`` optionally names
    the file of each split role (``train``/``validation``/``test``), relative to ``path``.
    ``max_length`` (nt) is the length sequences are truncated to (``None``: no limit).
    ``num_classes`` ``None`` means "infer from the training labels" (custom tasks only).
    """

    name: str
    benchmark: Benchmark
    num_classes: int | None
    max_length: int | None
    metric: Metric
    class_names: tuple[str, ...] | None = None
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    epochs: int = 10
    lr_grid: tuple[float, ...] = (1e-3, 2e-3)
    batch_size_grid: tuple[int, ...] = (128, 256)
    layout: Layout = "split_files"
    path: str = ""
    files: dict[str, str] = field(default_factory=dict, hash=False)
    val_fraction: float = 0.1
    no_test: NoTestPolicy = "holdout"
    test_fraction: float = 0.2
    cv_folds: int = 5
    hf_dataset: str | None = None
    hf_config: str | None = None
    description: str = ""
    notes: str = ""
    #: what the task measures (histone, promoter, enhancer, splice, ...): reports average per group
    group: str = ""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot describe a task."""
        where = f"task {self.name!r}"
        if not self.name or "/" in self.name or "\\" in self.name:
            raise ConfigError(f"{where}: the name must be non-empty and contain no path separators")
        if self.benchmark not in BENCHMARKS:
            raise ConfigError(f"{where}: benchmark {self.benchmark!r} is not one of {list(BENCHMARKS)}")
        if self.metric not in METRICS:
            raise ConfigError(f"{where}: metric {self.metric!r} is not one of {list(METRICS)}")
        if self.num_classes is not None and self.num_classes < 2:
            raise ConfigError(f"{where}: num_classes must be >= 2, got {self.num_classes}")
        if self.num_classes is not None and self.num_classes > MAX_CLASSES:
            raise ConfigError(f"{where}: num_classes {self.num_classes:,} is more than hadna handles ({MAX_CLASSES:,}; "
                              f"its confusion matrix is num_classes^2): labels must be class indices 0..C-1")
        if self.class_names is not None:
            if self.num_classes is not None and len(self.class_names) != self.num_classes:
                raise ConfigError(f"{where}: {len(self.class_names)} class_names for num_classes={self.num_classes}")
            if len(set(self.class_names)) != len(self.class_names):
                raise ConfigError(f"{where}: class_names has duplicates: {list(self.class_names)}")
        if self.max_length is not None and self.max_length < 1:
            raise ConfigError(f"{where}: max_length must be >= 1 (nt), got {self.max_length}")
        if not self.seeds:
            raise ConfigError(f"{where}: seeds must not be empty")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"{where}: seeds has duplicates: {list(self.seeds)}")
        if self.epochs < 1:
            raise ConfigError(f"{where}: epochs must be >= 1, got {self.epochs}")
        if not self.lr_grid or any(lr <= 0 for lr in self.lr_grid):
            raise ConfigError(f"{where}: lr_grid must be non-empty and positive, got {list(self.lr_grid)}")
        if not self.batch_size_grid or any(b < 1 for b in self.batch_size_grid):
            raise ConfigError(f"{where}: batch_size_grid must be non-empty and >= 1, got {list(self.batch_size_grid)}")
        for key in self.files:
            if key not in SPLIT_ROLES:
                raise ConfigError(f"{where}: files has unknown split {key!r}; valid: {list(SPLIT_ROLES)}")
        if self.files and "train" not in self.files:
            raise ConfigError(f"{where}: files must name a 'train' file (got {sorted(self.files)})")
        for name, frac in (("val_fraction", self.val_fraction), ("test_fraction", self.test_fraction)):
            if not 0.0 < frac < 1.0:
                raise ConfigError(f"{where}: {name} must be in (0, 1), got {frac}")
        if self.cv_folds < 2:
            raise ConfigError(f"{where}: cv_folds must be >= 2, got {self.cv_folds}")

    def __post_init__(self) -> None:
        self.validate()

    @property
    def comparable_with_published(self) -> bool:
        """Whether published numbers of the same task name measure the same thing (GB and NT only)."""
        return self.benchmark in ("genomic_benchmarks", "nucleotide_transformer")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view (tuples become lists) for run records."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


# ------------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------------

TASKS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec, *, overwrite: bool = False) -> TaskSpec:
    """Add ``spec`` to the registry (a name can be registered once unless ``overwrite``)."""
    if spec.name in TASKS and not overwrite:
        raise ConfigError(f"task {spec.name!r} is already registered")
    TASKS[spec.name] = spec
    return spec


def get_task(name: str) -> TaskSpec:
    """The registered task called ``name``; the error suggests close names."""
    try:
        return TASKS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(TASKS), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown task {name!r}{hint}; `hadna info --tasks` lists the {len(TASKS)} registered "
                          f"tasks (hadna.eval.tasks.list_tasks() in Python), or give your own with --train-file or "
                          f"a task YAML file") from None


def list_tasks(benchmark: str | None = None) -> list[TaskSpec]:
    """Registered tasks in registration order, optionally of one benchmark."""
    if benchmark is not None and benchmark not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {benchmark!r}; valid: {list(BENCHMARKS)}")
    return [t for t in TASKS.values() if benchmark is None or t.benchmark == benchmark]


# --- Genomic Benchmarks -------------------------------------------------------------------------
# Classes: the keys of metadata.yaml in the official coordinate files; label = index in sorted class
# order (the genomic-benchmarks package itself uses directory-listing order, which is not guaranteed
# to be sorted; we fix it to sorted order).
# Lengths: measured from the official coordinate files (end - start). max_length: the per-task
# `max_length` of the Caduceus/HyenaDNA `configs/dataset/genomic_benchmark.yaml`, so that published
# numbers are comparable (longer sequences are truncated; see loaders.truncate).
# Sizes (train/test) counted from the coordinate files.
_GB_COMMON: dict[str, Any] = dict(
    benchmark="genomic_benchmarks", metric="accuracy", seeds=(1, 2, 3, 4, 5), epochs=10,
    lr_grid=(1e-3, 2e-3), batch_size_grid=(128, 256), layout="genomic_benchmarks",
)
_GB_TASKS: list[tuple[str, tuple[str, ...], int, str]] = [
    # name, sorted class names, max_length, description
    ("dummy_mouse_enhancers_ensembl", ("negative", "positive"), 1024,
     "mouse enhancers (Ensembl) vs random genome; 331-4,776 bp (median ~2.4 kb), 968/242 train/test; "
     "max_length 1024 as in HyenaDNA/Caduceus, so most sequences are truncated"),
    ("demo_coding_vs_intergenomic_seqs", ("coding_seqs", "intergenomic_seqs"), 200,
     "human coding (cDNA, GRCh38 r97 transcriptome) vs intergenomic sequences; 200 bp, 75,000/25,000"),
    ("demo_human_or_worm", ("human", "worm"), 200,
     "human (GRCh38) vs C. elegans (WBcel235) random sequences; 200 bp, 75,000/25,000"),
    ("human_enhancers_cohn", ("negative", "positive"), 500,
     "human enhancers (Cohn et al.) vs negatives; 500 bp, 20,843/6,948"),
    ("human_enhancers_ensembl", ("negative", "positive"), 512,
     "human enhancers (Ensembl/FANTOM) vs negatives; 2-573 bp (median 269), 123,872/30,970"),
    ("human_ensembl_regulatory", ("enhancer", "ocr", "promoter"), 512,
     "human Ensembl regulatory build: enhancer / open chromatin region / promoter; 71-802 bp "
     "(median ~400), 231,348/57,713; enhancers longer than 512 bp are truncated"),
    ("human_nontata_promoters", ("negative", "positive"), 251,
     "human non-TATA promoters (EPD) vs negatives; 251 bp, 27,097/9,034"),
    ("human_ocr_ensembl", ("negative", "positive"), 512,
     "human open chromatin regions (Ensembl) vs negatives; 71-593 bp (median 315), 139,804/34,952"),
]
_GB_GROUPS = {"dummy_mouse_enhancers_ensembl": "enhancer", "demo_coding_vs_intergenomic_seqs": "coding",
              "demo_human_or_worm": "species", "human_enhancers_cohn": "enhancer",
              "human_enhancers_ensembl": "enhancer", "human_ensembl_regulatory": "regulatory",
              "human_nontata_promoters": "promoter", "human_ocr_ensembl": "open chromatin"}
for _name, _classes, _max_len, _desc in _GB_TASKS:
    register(TaskSpec(
        name=_name, num_classes=len(_classes), class_names=_classes, max_length=_max_len, path=_name,
        description=_desc, group=_GB_GROUPS[_name],
        # Hub copies uploaded by a GB author (columns `seq`, `label`); which splits each copy holds is
        # UNCERTAIN (some cards list only `train`). Used only with an explicit --hf option.
        hf_dataset=f"katarinagresova/Genomic_Benchmarks_{_name}",
        **_GB_COMMON,
    ))

# --- Nucleotide Transformer downstream tasks ----------------------------------------------------
# Source for max_length, classes and metric: the Caduceus/HyenaDNA `configs/dataset/
# nucleotide_transformer.yaml` (max_length = the task's sequence length in the NT paper; the file sizes
# of the Hub dataset agree: e.g. splice_sites_donors/train.fna 12.3 MB for 19,775 x 600 bp).
# Train sizes in the descriptions are from the same config (`train_len`).
# Labels: 1 = positive (mark present / promoter / enhancer / splice site) for the binary tasks; the
# label meaning of the 3-class tasks is UNCERTAIN, so their class names are left unset ("0", "1", "2").
_NT_COMMON: dict[str, Any] = dict(
    benchmark="nucleotide_transformer", seeds=tuple(range(1, 11)), epochs=20,
    lr_grid=(1e-3, 2e-3), batch_size_grid=(128, 512), layout="split_files",
    hf_dataset="InstaDeepAI/nucleotide_transformer_downstream_tasks",
)
_BINARY = ("negative", "positive")
_NT_TASKS: list[tuple[str, int, int, str, tuple[str, ...] | None, str]] = [
    # name, classes, max_length, metric, class names, description
    *[(mark, 2, 500, "mcc", _BINARY, f"yeast {mark} occupancy/modification (Pokholok et al.); 500 bp, {n:,} train")
      for mark, n in [("H3", 13_468), ("H3K14ac", 29_743), ("H3K36me3", 31_392), ("H3K4me1", 28_509),
                      ("H3K4me2", 27_614), ("H3K4me3", 33_119), ("H3K79me3", 25_953), ("H3K9ac", 25_003),
                      ("H4", 13_140), ("H4ac", 30_685)]],
    ("enhancers", 2, 200, "mcc", _BINARY, "human enhancer vs non-enhancer (iEnhancer); 200 bp, 14,968 train"),
    ("enhancers_types", 3, 200, "mcc", None,
     "human enhancer type (iEnhancer: non-enhancer / strong / weak; label order UNCERTAIN); 200 bp, 14,968 train"),
    ("promoter_all", 2, 300, "f1", _BINARY, "human promoters (DeePromoter, TATA + non-TATA); 300 bp, 53,276 train"),
    # train size: 47,767 in the config's task table, 47,759 in its comment (UNCERTAIN which is right)
    ("promoter_no_tata", 2, 300, "f1", _BINARY, "human non-TATA promoters (DeePromoter); 300 bp, ~47,767 train"),
    ("promoter_tata", 2, 300, "f1", _BINARY, "human TATA promoters (DeePromoter); 300 bp, 5,517 train"),
    ("splice_sites_all", 3, 400, "accuracy", None,
     "human splice sites: donor / acceptor / none (label order UNCERTAIN); 400 bp, 27,000 train"),
    ("splice_sites_acceptors", 2, 600, "f1", _BINARY, "human splice acceptor vs not; 600 bp, 19,961 train"),
    ("splice_sites_donors", 2, 600, "f1", _BINARY, "human splice donor vs not; 600 bp, 19,775 train"),
]
for _name, _k, _max_len, _metric, _classes, _desc in _NT_TASKS:
    register(TaskSpec(
        name=_name, num_classes=_k, class_names=_classes, max_length=_max_len, metric=_metric, path=_name,
        hf_config=_name, description=_desc, **_NT_COMMON,
        group=("histone" if _name.startswith("H") else _name.split("_")[0].replace("enhancers", "enhancer")),
    ))

# --- GUE offline stand-ins ----------------------------------------------------------------------
# Files and lengths: ../shared/data/README.md and the CSVs themselves (checked: EMP 500 bp except a
# handful of shorter rows, prom_core 70 bp, prom_300 300 bp, splice 400 bp with 3 labels).
# Protocol numbers (5 seeds, 20 epochs, Caduceus-style grids) are hadna's choice for these stand-ins,
# not DNABERT-2's fine-tuning recipe. Metric: MCC, as GUE reports.
_GUE_COMMON: dict[str, Any] = dict(
    benchmark="gue", metric="mcc", seeds=(1, 2, 3, 4, 5), epochs=20, lr_grid=(1e-3, 2e-3),
    batch_size_grid=(128, 256), layout="split_files",
)
_GUE_NOT_NT = "GUE offline stand-in: never report these numbers as Nucleotide Transformer benchmark numbers."
for _mark in ("H3", "H3K14ac", "H3K36me3", "H3K4me1", "H3K4me2", "H3K4me3", "H3K79me3", "H3K9ac", "H4", "H4ac"):
    register(TaskSpec(
        name=f"gue_emp_{_mark}", num_classes=2, class_names=_BINARY, max_length=500, path=f"gue/EMP/{_mark}",
        files={"train": "dev.csv", "test": "test.csv"},
        description=f"GUE EMP {_mark}: yeast histone mark, 500 bp (same source as NT's {_mark})", group="histone",
        notes="GUE ships only dev and test for EMP: we train on dev (validation split off it) and test on "
              "test. " + _GUE_NOT_NT,
        **_GUE_COMMON,
    ))
for _name, _len, _desc in [
    ("prom_core_all", 70, "human core promoters (TATA + non-TATA), 70 bp; 47,356/5,920/5,920"),
    ("prom_core_notata", 70, "human non-TATA core promoters, 70 bp; 42,452/5,307/5,307"),
    ("prom_core_tata", 70, "human TATA core promoters, 70 bp; 4,904/613/613"),
    ("prom_300_tata", 300, "human TATA promoters, 300 bp (the NT promoter_tata family); 4,904/613/613"),
]:
    register(TaskSpec(
        name=f"gue_{_name}", num_classes=2, class_names=_BINARY, max_length=_len, path=f"gue/prom/{_name}",
        files={"train": "train.csv", "validation": "dev.csv", "test": "test.csv"},
        description=f"GUE {_name}: {_desc}", notes="dev.csv is the validation split. " + _GUE_NOT_NT,
        group="promoter",
        **_GUE_COMMON,
    ))
register(TaskSpec(
    name="gue_splice_reconstructed", num_classes=3, class_names=None, max_length=400,
    path="gue/splice/reconstructed", files={"train": "dev.csv", "test": "test.csv"},
    description="GUE splice/reconstructed: 3-class splice-site classification, 400 bp", group="splice",
    notes="GUE ships only dev and test for splice: we train on dev and test on test. " + _GUE_NOT_NT,
    **_GUE_COMMON,
))

# --- partial Genomic Benchmarks data available offline (custom: not the GB protocol) --------------
_GB_PARTIAL_NOTE = ("Partial Genomic Benchmarks data (../shared/data/benchmarks/genomic_benchmarks_partial); "
                    "splits differ from the official protocol, so numbers are not comparable with "
                    "published Genomic Benchmarks results.")
register(TaskSpec(
    name="human_enhancers_cohn_testcv", benchmark="custom", num_classes=2, class_names=("negative", "positive"),
    max_length=500, metric="accuracy", layout="split_files",
    path="genomic_benchmarks_partial/human_enhancers_cohn", files={"train": "test.tsv"}, no_test="kfold",
    cv_folds=5, description="human_enhancers_cohn official TEST split only (6,948 x 500 bp): 5-fold CV within it",
    group="enhancer",
    notes="No train split is available offline: results are 5-fold cross-validation within the official "
          "test split. " + _GB_PARTIAL_NOTE,
))
for _name, _classes, _group in [("human_ensembl_regulatory_sample", ("enhancer", "ocr", "promoter"), "regulatory"),
                                ("human_ocr_ensembl_sample", ("negative", "positive"), "open chromatin")]:
    register(TaskSpec(
        name=_name, benchmark="custom", num_classes=len(_classes), class_names=_classes, max_length=512,
        group=_group,
        metric="accuracy", layout="split_files", path=f"genomic_benchmarks_partial/{_name}",
        files={"train": "train.tsv"}, no_test="holdout", test_fraction=0.2,
        description=f"500-per-class subsample of the official {_name.removesuffix('_sample')} train split",
        notes="Only a train subsample is available offline: a stratified 20% test set is held out "
              "(fixed split seed). " + _GB_PARTIAL_NOTE,
    ))
    # the same rows, every one of them tested once: 5-fold stratified CV (folds drawn with the seed); a
    # 300-sequence holdout measures MCC with a sampling sd of ~0.05 per seed, the whole 1,000-1,500 about half
    register(TaskSpec(
        name=f"{_name}_cv", benchmark="custom", num_classes=len(_classes), class_names=_classes, max_length=512,
        group=_group,
        metric="accuracy", layout="split_files", path=f"genomic_benchmarks_partial/{_name}",
        files={"train": "train.tsv"}, no_test="kfold", cv_folds=5,
        description=f"500-per-class subsample of the official {_name.removesuffix('_sample')} train split: "
                    "5-fold stratified CV over all of it",
        notes="Only a train subsample is available offline: results are 5-fold cross-validation within it "
              "(the mean over folds is the seed's number). " + _GB_PARTIAL_NOTE,
    ))


# ------------------------------------------------------------------------------------------------
# Custom tasks: YAML files and CLI options
# ------------------------------------------------------------------------------------------------

#: fine-tuning defaults of a task read from a file or the command line (the shared benchmark's recipe)
CUSTOM_LR_GRID: tuple[float, ...] = (1e-3,)
CUSTOM_BATCH_SIZE_GRID: tuple[int, ...] = (32,)


def task_from_dict(data: dict[str, Any], *, base_dir: str | Path | None = None, where: str = "") -> TaskSpec:
    """Build a custom :class:`TaskSpec` from a mapping (unknown keys and bad types are ConfigErrors).

    Defaults for a custom task: benchmark ``custom``, metric ``accuracy``, no length limit, classes
    inferred from the data, fine-tuning at lr :data:`CUSTOM_LR_GRID` and batch :data:`CUSTOM_BATCH_SIZE_GRID`
    (one grid point: hadna's benchmark lr and batch, not the published benchmarks' grids), also for a YAML
    that names a registry ``benchmark``: every task read here is one of the user's own. A relative ``path``
    (and relative ``files``) are resolved against ``base_dir`` when given (the YAML file's directory), so a
    task file can sit next to its data.
    """
    data = dict(data)
    data.setdefault("benchmark", "custom")
    data.setdefault("num_classes", None)
    data.setdefault("max_length", None)
    data.setdefault("metric", "accuracy")
    # hadna's own fine-tuning recipe rather than the published benchmarks' grids (docs/design.md section 9)
    data.setdefault("lr_grid", list(CUSTOM_LR_GRID))
    data.setdefault("batch_size_grid", list(CUSTOM_BATCH_SIZE_GRID))
    if base_dir is not None:
        base = Path(base_dir)
        path = data.get("path", "")
        if not isinstance(path, str):
            raise ConfigError(f"{where or 'task'}: path must be a string, got {path!r}")
        data["path"] = str(base / path) if not Path(path).is_absolute() else path
    try:
        return from_dict(TaskSpec, data, where)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None


def task_from_yaml(path: str | Path) -> TaskSpec:
    """Read a custom task from YAML. Example::

        name: my_promoters
        num_classes: 2          # optional: inferred from the training labels
        class_names: [background, promoter]
        max_length: 300         # optional: no truncation when absent
        metric: mcc             # accuracy | mcc | f1
        path: data/promoters    # relative to this YAML file
        files: {train: train.csv, test: test.csv}   # optional: found by name otherwise
        seeds: [1, 2, 3]
    """
    path = Path(path)
    return task_from_dict(read_yaml(path), base_dir=path.resolve().parent, where=str(path))
