"""The protocol's plan: its settings (:class:`ProtocolConfig`) and the units each seed runs.

A unit is one (train, validation, test) triple, each given as indices into a named base split
(:func:`base_splits`: ``train``, ``validation``, ``test``; the cross-validated pool is capped there).
:func:`make_units` draws the units of a seed: one for a task with a test split, one per fold
otherwise; caps are stratified, deterministic subsamples (:func:`subsample`). :func:`estimate_cost`
counts the nucleotides a run will push through the model, :func:`fewest_steps` the optimiser steps of
its shortest fine-tune. Running the units is
:mod:`hadna.eval.protocol`'s part; the protocol itself is described there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..errors import ConfigError
from .finetune import FinetuneConfig, HeadInit, Schedule, optimiser_steps
from .options import MODES
from .probe import DEFAULT_C_GRID
from .splits import stratified_kfold, stratified_split
from .task_data import Split, TaskData

Mode = Literal["finetune", "probe", "scratch"]
TEST_SUBSAMPLE_SEED = 0  # the capped test set / CV pool is the same for every seed and model
#: a fine-tune with fewer optimiser steps than this is flagged (a warning in the log, a line in ``--dry-run``):
#: on the GB regulatory and OCR samples, every model's fine-tunes of 170 and 115 steps ended below the k-mer
#: probe on average (on regulatory also below each model's own probe), and on regulatory the same 5 epochs at
#: batch 8 (675 steps) above both (docs/results.md section 7)
FEW_STEPS = 200


@dataclass
class ProtocolConfig:
    """Everything the protocol needs besides the task and the model. ``None`` = the task's default."""

    mode: Mode = "finetune"
    seeds: list[int] | None = None
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    lr_grid: list[float] | None = None
    batch_size_grid: list[int] | None = None
    patience: int | None = 3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: Schedule = "cosine"
    grad_clip: float | None = 1.0
    rc_augment: bool = False
    rc_test: bool = False
    head_init: HeadInit = "random"
    backbone_lr_ratio: float = 1.0
    head_dropout: float | None = None  # None: the model's own with a random head, 0 with head_init="probe"
    max_train_samples: int | None = None
    max_val_samples: int | None = None
    max_test_samples: int | None = None
    cv_folds: int | None = None
    probe_c_grid: list[float] = field(default_factory=lambda: list(DEFAULT_C_GRID))
    probe_init_seed: int = 0
    eval_batch_size: int = 256
    embed_batch_size: int = 128
    device: str = "auto"

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise ConfigError(f"seeds must be a non-empty list without duplicates, got {self.seeds}")
        if self.seeds is not None and any(s < 0 for s in self.seeds):
            raise ConfigError(f"seeds must be >= 0 (they seed numpy and torch), got {self.seeds}")
        for name in ("epochs", "batch_size", "max_train_samples", "max_val_samples", "max_test_samples"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be >= 1, got {v}")
        if self.max_train_samples is not None and self.max_train_samples < 4:
            raise ConfigError(f"max_train_samples must be >= 4 (train and validation need samples of every "
                              f"class), got {self.max_train_samples}")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.lr is not None and self.lr_grid is not None:
            raise ConfigError("give either lr (a fixed value) or lr_grid, not both")
        if self.batch_size is not None and self.batch_size_grid is not None:
            raise ConfigError("give either batch_size (a fixed value) or batch_size_grid, not both")
        if self.lr_grid is not None and (not self.lr_grid or not all(lr > 0 for lr in self.lr_grid)):
            raise ConfigError(f"lr_grid must be a non-empty list of values > 0, got {self.lr_grid}")
        if self.batch_size_grid is not None and (not self.batch_size_grid or any(b < 1 for b in self.batch_size_grid)):
            raise ConfigError(f"batch_size_grid must be a non-empty list of values >= 1, got {self.batch_size_grid}")
        if self.mode == "probe" and (self.rc_augment or self.rc_test):
            raise ConfigError("rc_augment / rc_test apply to fine-tuning; the linear probe uses forward-strand features")
        if self.cv_folds is not None and self.cv_folds < 2:
            raise ConfigError(f"cv_folds must be >= 2, got {self.cv_folds}")
        self.finetune_config(1e-3, 8).validate()

    def finetune_config(self, lr: float, batch_size: int, epochs: int = 1) -> FinetuneConfig:
        return FinetuneConfig(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=self.weight_decay,
                              warmup_ratio=self.warmup_ratio, schedule=self.schedule, grad_clip=self.grad_clip,
                              patience=self.patience, rc_augment=self.rc_augment, rc_test=self.rc_test,
                              head_init=self.head_init, backbone_lr_ratio=self.backbone_lr_ratio,
                              head_dropout=self.head_dropout,
                              probe_c_grid=list(self.probe_c_grid),
                              eval_batch_size=self.eval_batch_size)

    def resolve(self, data: TaskData) -> dict[str, Any]:
        """The effective protocol for ``data`` (task defaults filled in), as recorded in the JSON."""
        spec = data.spec
        lrs = [self.lr] if self.lr is not None else list(self.lr_grid or spec.lr_grid)
        bss = [self.batch_size] if self.batch_size is not None else list(self.batch_size_grid or spec.batch_size_grid)
        out: dict[str, Any] = {
            "mode": self.mode,
            "seeds": list(self.seeds if self.seeds is not None else spec.seeds),
            "evaluation": "cv" if data.needs_cross_validation else "test",
            "cv_folds": (self.cv_folds or spec.cv_folds) if data.needs_cross_validation else None,
            "metric": spec.metric,
            "caps": {"max_train_samples": self.max_train_samples, "max_val_samples": self.max_val_samples,
                     "max_test_samples": None if data.needs_cross_validation else self.max_test_samples},
        }
        if self.mode == "probe":
            out["probe"] = {"c_grid": sorted(self.probe_c_grid), "selection": "C on validation",
                            "standardised": True}
        else:
            selection = "fixed" if len(lrs) * len(bss) == 1 else "grid search on validation within each seed"
            out["finetune"] = {**dataclasses.asdict(self.finetune_config(lrs[0], bss[0],
                                                                       self.epochs or spec.epochs)),
                               "lr_grid": lrs, "batch_size_grid": bss, "selection": selection}
            del out["finetune"]["lr"], out["finetune"]["batch_size"]
        return out


def protocol_defaults() -> dict[str, Any]:
    """Every ``ProtocolConfig`` setting's default (what a record written before a setting existed ran with)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(ProtocolConfig):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


# ------------------------------------------------------------------------------------------------
# Units: one (train, validation, test) triple given as indices into named base splits
# ------------------------------------------------------------------------------------------------

Ref = tuple[str, np.ndarray]  # (base split name, indices)


@dataclass
class Unit:
    label: str  # "test split" or "fold 2/5"
    train: Ref
    val: Ref
    test: Ref


def subsample(labels: np.ndarray, idx: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """A stratified, deterministic subsample of exactly ``n`` of ``idx`` (all of it when ``n`` is None or larger).

    Class proportions of ``labels[idx]`` are kept by largest-remainder rounding (ties: the smaller
    class id); every class keeps at least one sample when ``n`` allows. Returns sorted indices.
    """
    if n is None or n >= len(idx):
        return idx
    y = labels[idx]
    classes, counts = np.unique(y, return_counts=True)
    ideal = n * counts / counts.sum()
    alloc = np.floor(ideal).astype(np.int64)
    order = np.argsort(-(ideal - alloc), kind="stable")
    alloc[order[: n - int(alloc.sum())]] += 1
    if n >= len(classes):  # no class vanishes: take from the largest allocations
        while (alloc == 0).any():
            alloc[np.argmax(alloc)] -= 1
            alloc[np.flatnonzero(alloc == 0)[0]] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, alloc)]
    return idx[np.sort(np.concatenate(picked))]


def make_units(data: TaskData, cfg: ProtocolConfig, seed: int, base: dict[str, Split]) -> list[Unit]:
    """The train/validation/test triples of one seed (one, or one per fold)."""
    spec = data.spec
    if not data.needs_cross_validation:
        train = base["train"]
        all_train = np.arange(len(train))
        if "validation" in base:  # a provided validation split is used as is
            tr, va = ("train", all_train), ("validation", np.arange(len(base["validation"])))
        else:  # == TaskData.train_validation(seed)
            keep, held = stratified_split(train.labels, spec.val_fraction, seed,
                                          f"{train.source}: holding out a validation set")
            tr, va = ("train", keep), ("train", held)
        tr = (tr[0], subsample(base[tr[0]].labels, tr[1], cfg.max_train_samples, seed))
        va = (va[0], subsample(base[va[0]].labels, va[1], cfg.max_val_samples, seed))
        test_idx = subsample(base["test"].labels, np.arange(len(base["test"])), cfg.max_test_samples,
                             TEST_SUBSAMPLE_SEED)
        return [Unit("test split", tr, va, ("test", test_idx))]
    pool = base["train"]
    k = cfg.cv_folds or spec.cv_folds
    units = []
    for f, (fold_tr, fold_te) in enumerate(stratified_kfold(pool.labels, k, seed)):  # == TaskData.folds(seed)
        keep, held = stratified_split(pool.labels[fold_tr], spec.val_fraction, seed,
                                      f"{pool.source}, fold {f + 1}/{k}: holding out a validation set")
        va = subsample(pool.labels, fold_tr[held], cfg.max_val_samples, seed)
        units.append(Unit(f"fold {f + 1}/{k}", ("train", fold_tr[keep]), ("train", va), ("train", fold_te)))
    return units


def base_splits(data: TaskData, cfg: ProtocolConfig) -> tuple[dict[str, Split], list[str]]:
    """Named splits that units index into (the CV pool is capped here), and notes about them."""
    notes: list[str] = []
    base = {"train": data.train}
    if data.validation is not None:
        base["validation"] = data.validation
    if data.test is not None:
        base["test"] = data.test
    k = cfg.cv_folds or data.spec.cv_folds
    if data.needs_cross_validation:
        pool_idx = subsample(data.train.labels, np.arange(len(data.train)), cfg.max_train_samples, TEST_SUBSAMPLE_SEED)
        if len(pool_idx) < len(data.train):
            base["train"] = data.train.subset(pool_idx, f"{data.train.source} (stratified subsample "
                                                        f"of {len(pool_idx):,}, seed {TEST_SUBSAMPLE_SEED})")
            notes.append(f"cross-validated pool capped to a stratified subsample of {len(pool_idx):,} of "
                         f"{len(data.train):,} sequences (--max-train-samples)")
        notes.append(f"no test split: {k}-fold stratified cross-validation per seed (folds drawn with the seed); "
                     f"metrics are means over the {k} held-out folds")
    else:
        if cfg.max_train_samples is not None and cfg.max_train_samples < len(data.train):
            notes.append(f"training data capped to a stratified subsample of {cfg.max_train_samples:,} "
                         f"sequences per seed (--max-train-samples)")
        if cfg.max_test_samples is not None and cfg.max_test_samples < len(data.test):
            notes.append(f"TEST SET CAPPED: metrics on a stratified subsample of {cfg.max_test_samples:,} of "
                         f"{len(data.test):,} test sequences (same subset for every seed and model)")
    if cfg.max_val_samples is not None:
        n_val = len(make_units(data, dataclasses.replace(cfg, max_val_samples=None), 0, base)[0].val[1])
        if cfg.max_val_samples < n_val:
            notes.append(f"validation data capped to a stratified subsample of {cfg.max_val_samples:,} of "
                         f"{n_val:,} sequences per seed (--max-val-samples)")
    return base, notes


def split_of(base: dict[str, Split], ref: Ref) -> Split:
    """The split a reference names: ``base[name]`` restricted to the indices."""
    return base[ref[0]].subset(ref[1])


# ------------------------------------------------------------------------------------------------
# Cost
# ------------------------------------------------------------------------------------------------

def estimate_cost(data: TaskData, cfg: ProtocolConfig, base: dict[str, Split] | None = None) -> dict[str, int]:
    """Nucleotides the run will push through the model (for a log line before a long run).

    ``embed_nt`` (probe: every sequence used by some seed, once) or ``train_nt`` (fine-tuning: all epochs, grid points,
    folds and seeds, assuming no early stop) plus ``eval_nt`` (validation every epoch, test once). ``base``: the
    plan's :func:`base_splits`, when the caller has them.
    """
    eff = cfg.resolve(data)
    base = base if base is not None else base_splits(data, cfg)[0]
    seeds = eff["seeds"]
    units = make_units(data, cfg, seeds[0], base)

    def nt(ref: Ref) -> int:
        seqs = base[ref[0]].sequences
        return sum(len(seqs[i]) for i in ref[1])

    if cfg.mode == "probe":  # every sequence that some seed uses, once
        needed: dict[str, set[int]] = {}
        for s in seeds:
            for u in make_units(data, cfg, s, base):
                for name, idx in (u.train, u.val, u.test):
                    needed.setdefault(name, set()).update(idx.tolist())
        return {"embed_nt": sum(len(base[n].sequences[i]) for n, idx in needed.items() for i in idx)}
    ft = eff["finetune"]
    runs = len(ft["lr_grid"]) * len(ft["batch_size_grid"]) * len(seeds)
    return {"train_nt": runs * ft["epochs"] * sum(nt(u.train) for u in units),
            "eval_nt": runs * sum(ft["epochs"] * nt(u.val) for u in units) + len(seeds) * sum(nt(u.test) for u in units)}


def fewest_steps(data: TaskData, cfg: ProtocolConfig, base: dict[str, Split] | None = None) -> int | None:
    """The optimiser steps of the shortest fine-tuning run of this plan at its epoch cap: the smallest
    training unit (fold) at the largest batch size of the grid (early stopping only shortens it). ``None``
    for a probe. ``base``: the plan's :func:`base_splits`, when the caller has them."""
    if cfg.mode == "probe":
        return None
    eff = cfg.resolve(data)
    base = base if base is not None else base_splits(data, cfg)[0]
    ft = eff["finetune"]
    n = min(len(u.train[1]) for u in make_units(data, cfg, eff["seeds"][0], base))
    return optimiser_steps(n, max(ft["batch_size_grid"]), ft["epochs"])


def few_steps_hint(steps: int, mode: str = "finetune") -> str:
    """The advice that goes with a fine-tune of fewer than :data:`FEW_STEPS` optimiser steps."""
    choices = "a smaller --batch-size or more --epochs"
    if mode == "finetune":  # the from-scratch baseline is a control of its own: a probe does not replace it
        choices += ", or compare with --mode probe"
    return (f"the shortest fine-tuning run has at most {steps} optimiser steps (fewer than {FEW_STEPS}: on hadna's "
            f"small benchmark tasks, runs that short ended below a linear probe); consider {choices}")
