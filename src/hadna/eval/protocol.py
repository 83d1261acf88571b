"""The evaluation protocol: for each seed, train (fine-tune or probe), select on validation, test once.

Per seed ``s`` of a task with a test split:

1. train/validation: the provided validation split as is, or a stratified ``val_fraction`` (10%) split
   of the training data drawn with seed ``s`` (the same split as ``TaskData.train_validation(s)``);
2. optional caps, each a stratified, deterministic subsample: ``max_train_samples`` and
   ``max_val_samples`` drawn with seed ``s``; ``max_test_samples`` drawn with the fixed seed 0, so
   every seed and every model sees the same test subset (tables say when it is not the whole set);
3. ``finetune``/``scratch``: for every (learning rate, batch size) of the grid a fresh model
   (initialised with seed ``s``) is fine-tuned with early stopping on the validation metric
   (:func:`hadna.eval.finetune.fine_tune`); the grid point with the best validation score wins
   (hyper-parameter search within each seed, on validation only). With ``lr``/``batch_size`` set,
   the "grid" is that single value. ``probe``: frozen pooled features, logistic regression with
   ``C`` chosen on validation (:mod:`hadna.eval.probe`);
4. the test set is evaluated exactly once, with the selected weights; metrics on the whole set.

Tasks without a test split are cross-validated: per seed, ``cv_folds`` stratified folds of the
(capped) data drawn with seed ``s`` (the folds of ``TaskData.folds(s)``); each fold's training part
is split 90/10 into train/validation as above and its test part evaluated once; the seed's metrics
are the means over folds (per-fold numbers in the JSON). ``max_train_samples`` then caps the pool
that is cross-validated (drawn with seed 0, the same pool for every seed).

Modes: ``finetune`` trains every weight starting from the model's weights; ``scratch`` trains the
same architecture from a random init (seeded by ``s``; for a ``preset:`` model the two are the same);
``probe`` never changes the encoder. A ``preset:`` model is probed with one fixed random network
(``probe_init_seed``, default 0) for every seed, so seeds vary the data splits and the probe only.

The run record (:class:`~hadna.eval.results.RunRecord`) is saved atomically after every seed; a
rerun with the same settings skips finished seeds, and refuses (ConfigError) when the settings that
change results differ from those recorded.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import ConfigError
from ..utils.device import resolve_device
from ..utils.logging import get_logger
from .finetune import EvalOutput, FinetuneConfig, HeadInit, Schedule, evaluate, fine_tune
from .inference import EmbeddingCache
from .task_data import Split, TaskData
from .metrics import compute_metrics
from .models import EvalModel, ModelSpec, load_eval_model
from .probe import DEFAULT_C_GRID, fit_probe
from .results import RunRecord, SeedResult
from .splits import stratified_kfold, stratified_split

log = get_logger("eval.protocol")

Mode = Literal["finetune", "probe", "scratch"]
MODES: tuple[str, ...] = ("finetune", "probe", "scratch")
TEST_SUBSAMPLE_SEED = 0  # the capped test set / CV pool is the same for every seed and model
# Settings that do not change results (excluded from the resume compatibility check).
_RUNTIME_KEYS = ("seeds", "device", "eval_batch_size", "embed_batch_size")


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
            keep, held = stratified_split(train.labels, spec.val_fraction, seed)
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
        keep, held = stratified_split(pool.labels[fold_tr], spec.val_fraction, seed)
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


def _get(base: dict[str, Split], ref: Ref) -> Split:
    return base[ref[0]].subset(ref[1])


# ------------------------------------------------------------------------------------------------
# Running units
# ------------------------------------------------------------------------------------------------

@dataclass
class UnitResult:
    test: dict[str, float]
    val: dict[str, float]
    timings: dict[str, float]
    nt_per_s: float | None
    epochs_run: int | None
    extra: dict[str, Any]


def evaluate_test(model: EvalModel, split: Split, num_classes: int, batch_size: int, rc_average: bool) -> EvalOutput:
    """The one evaluation of a unit's test set (a separate function so that tests can count calls)."""
    return evaluate(model, split, num_classes, batch_size, rc_average, desc="test")


def run_finetune_unit(spec: ModelSpec, data: TaskData, cfg: ProtocolConfig, eff: dict[str, Any], unit: Unit,
                      base: dict[str, Split], seed: int, device: Any, describe: dict[str, Any]) -> UnitResult:
    train, val, test = _get(base, unit.train), _get(base, unit.val), _get(base, unit.test)
    ft = eff["finetune"]
    metric, k = data.spec.metric, data.num_classes
    best_model: EvalModel | None = None
    best = None
    chosen: dict[str, Any] = {}
    grid: list[dict[str, Any]] = []
    t_train = t_val = 0.0
    nt = 0
    for lr in ft["lr_grid"]:
        for bs in ft["batch_size_grid"]:
            model = load_eval_model(spec, k, seed=seed, random_init=cfg.mode == "scratch", device=device)
            describe.setdefault("model", model.describe())
            fcfg = cfg.finetune_config(lr, bs, ft["epochs"])
            res = fine_tune(model, train, val, fcfg, metric=metric, num_classes=k, seed=seed,
                            desc=f"seed {seed} {unit.label} lr {lr:g} bs {bs}")
            t_train += res.train.seconds
            t_val += res.val_seconds
            nt += res.train.nucleotides
            grid.append({"lr": lr, "batch_size": bs, "best_epoch": res.best_epoch, "epochs_run": res.epochs_run,
                         "val": res.val_metrics, "val_loss": res.val_loss, "stopped_early": res.stopped_early,
                         "head_probe": res.head_probe, "weight_change": res.weight_change,
                         "history": res.history})
            if best is None or res.score(metric) > best.score(metric):
                best, best_model, chosen = res, model, grid[-1]
            else:
                del model  # only the selected grid point's weights are kept
    assert best is not None and best_model is not None
    out = evaluate_test(best_model, test, k, cfg.eval_batch_size, cfg.rc_test)
    extra = {"unit": unit.label, "n_train": len(train), "n_val": len(val), "n_test": len(test),
             "lr": chosen["lr"], "batch_size": chosen["batch_size"], "best_epoch": best.best_epoch,
             "test_loss": out.loss, "grid": grid}
    timings = {"train": t_train, "validation": t_val, "test": out.throughput.seconds}
    return UnitResult(out.metrics, best.val_metrics, timings, nt / t_train if t_train > 0 else None,
                      best.epochs_run, extra)


def run_probe_unit(model: EvalModel, cache: EmbeddingCache, data: TaskData, cfg: ProtocolConfig, unit: Unit,
                   base: dict[str, Split], seed: int) -> UnitResult:
    metric, k = data.spec.metric, data.num_classes
    before = cache.throughput.seconds
    x_tr, x_va = cache.get(*unit.train), cache.get(*unit.val)
    x_te = cache.get(*unit.test)
    embed_s = cache.throughput.seconds - before
    y_tr, y_va = base[unit.train[0]].labels[unit.train[1]], base[unit.val[0]].labels[unit.val[1]]
    y_te = base[unit.test[0]].labels[unit.test[1]]
    start = time.perf_counter()
    fit = fit_probe(x_tr, y_tr, x_va, y_va, metric=metric, num_classes=k, c_grid=cfg.probe_c_grid, seed=seed)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    test_metrics = compute_metrics(y_te, probs=fit.predict_proba(x_te), num_classes=k)  # the one test evaluation
    test_s = time.perf_counter() - start
    extra = {"unit": unit.label, "n_train": len(y_tr), "n_val": len(y_va), "n_test": len(y_te), "C": fit.C,
             "grid": fit.grid}
    return UnitResult(test_metrics, fit.val_metrics, {"embed": embed_s, "train": fit_s, "test": test_s},
                      cache.throughput.nt_per_s, None, extra)


def _mean_metrics(dicts: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in dicts[0] if all(k in d for d in dicts)]
    return {k: float(np.mean([d[k] for d in dicts])) for k in keys}


# ------------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------------

def _compatible(old: RunRecord, new_protocol: dict[str, Any], path: Path) -> None:
    # A setting added after the record was written counts as its default value there.
    defaults = {f.name: f.default for f in dataclasses.fields(ProtocolConfig) if f.default is not dataclasses.MISSING}
    before = {k: v for k, v in {**defaults, **old.config.get("protocol", {})}.items() if k not in _RUNTIME_KEYS}
    now = {k: v for k, v in new_protocol.items() if k not in _RUNTIME_KEYS}
    if now.get("mode") != "probe" and now.get("head_init") != "probe":
        before.pop("probe_c_grid", None)  # the probe's C grid changes nothing in a plain fine-tune
        now.pop("probe_c_grid", None)
    diff = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if diff:
        shown = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in diff[:4])
        hint = (f"; to resume it, pass --probe-c-grid {','.join(f'{c:g}' for c in before['probe_c_grid'])}"
                if diff == ["probe_c_grid"] and before.get("probe_c_grid") else "")
        raise ConfigError(f"{path} holds a run with other settings ({shown}); use another --output-dir, "
                          f"or --overwrite to start again{hint}")


def _same_data(old: RunRecord, data: TaskData, path: Path) -> None:
    """Seeds of one record must come from one data set: resuming on other data would average the two."""
    before, now = old.data.get("fingerprint"), data.fingerprint()
    if before is None:  # a record written before fingerprints: compare what it says about its splits
        same = {k: {f: v.get(f) for f in ("n", "class_counts", "source")} for k, v in old.data.get("splits", {}).items()} \
            == {k: {f: v[f] for f in ("n", "class_counts", "source")} for k, v in data.summary()["splits"].items()}
    else:
        same = before == now
    if not same:
        raise ConfigError(f"{path} holds seeds run on other data ({old.data.get('source', '?')}; data fingerprint "
                          f"{(before or 'not recorded')[:12]}) than this run's ({data.source}; {now[:12]}); their results "
                          f"must not be averaged: use another --output-dir, or --overwrite to start again")


def run_protocol(data: TaskData, spec: ModelSpec, cfg: ProtocolConfig, out_path: str | Path | None = None, *,
                 overwrite: bool = False) -> RunRecord:
    """Run (or resume) every seed of ``cfg`` for one task and one model; return the record.

    ``out_path``: the run JSON, written after every seed (``None``: keep in memory only).
    """
    cfg.validate()
    if spec.kind == "kmer" and cfg.mode != "probe":
        raise ConfigError(f"{spec.name}: the k-mer baseline has no encoder to {cfg.mode}; its only mode is probe "
                          f"(logistic regression on k-mer frequencies)")
    eff = cfg.resolve(data)
    seeds = eff["seeds"]
    protocol = dataclasses.asdict(cfg)
    out = Path(out_path) if out_path is not None else None
    base, data_notes = base_splits(data, cfg)
    record: RunRecord | None = None
    if out is not None and out.is_file() and not overwrite:
        record = RunRecord.load(out)
        if (record.task, record.model, record.mode) != (data.name, spec.name, cfg.mode):
            raise ConfigError(f"{out} holds {record.task}/{record.model}/{record.mode}, not "
                              f"{data.name}/{spec.name}/{cfg.mode}; use another --output-dir")
        _compatible(record, protocol, out)
        _same_data(record, data, out)
        record.seeds = record.seeds + [s for s in seeds if s not in record.seeds]
        if record.done_seeds:
            log.info("%s: resuming; seeds already done: %s", out, record.done_seeds)
    if record is None:
        import torch

        from .. import __version__

        config = {"protocol": protocol, "effective": eff, "model_spec": spec.to_dict(),
                  "environment": {"hadna": __version__, "torch": torch.__version__, "python": platform.python_version(),
                                  "device": str(resolve_device(cfg.device)), "torch_threads": torch.get_num_threads()}}
        record = RunRecord.for_task(data.spec, spec.name, cfg.mode, config=config, seeds=seeds, data=data.summary())
        record.notes = _fold_notes(record.notes + data.notes, data, cfg) + data_notes
        if cfg.mode == "probe":
            record.notes.append(f"linear probe: frozen {spec.pooling}-pooled features, standardised, logistic "
                                f"regression with C in {sorted(cfg.probe_c_grid)} chosen on validation")
        else:
            record.notes.append(f"fine-tuning: {eff['finetune']['epochs']} epoch(s) max, early stopping on validation "
                                f"{data.spec.metric} (patience {cfg.patience}); lr/batch size: "
                                f"{eff['finetune']['selection']} (lr {eff['finetune']['lr_grid']}, batch size "
                                f"{eff['finetune']['batch_size_grid']})")
    remaining = [s for s in seeds if s not in record.done_seeds]
    if not remaining:
        log.info("%s/%s/%s: all seeds %s already done", data.name, spec.name, cfg.mode, seeds)
        return record
    device = resolve_device(cfg.device)
    describe: dict[str, Any] = {}
    probe_model: EvalModel | None = None
    cache: EmbeddingCache | None = None
    if cfg.mode == "probe":
        init_seed = cfg.probe_init_seed
        probe_model = load_eval_model(spec, data.num_classes, seed=init_seed, device=device)
        describe["model"] = probe_model.describe()
        cache = EmbeddingCache(probe_model, {name: s.sequences for name, s in base.items()}, cfg.embed_batch_size)
    for seed in remaining:
        start = time.perf_counter()
        units = make_units(data, cfg, seed, base)
        results = []
        for unit in units:
            if cfg.mode == "probe":
                assert probe_model is not None and cache is not None
                results.append(run_probe_unit(probe_model, cache, data, cfg, unit, base, seed))
            else:
                results.append(run_finetune_unit(spec, data, cfg, eff, unit, base, seed, device, describe))
        wall = time.perf_counter() - start
        record.add(_seed_result(seed, results, wall))
        if "model" in describe and "model" not in record.config:
            record.config["model"] = describe["model"]
        if out is not None:
            record.save(out)
        r = record.results[-1]
        log.info("%s/%s/%s seed %d: test %s %.4f (accuracy %.4f) in %.1f s%s", data.name, spec.name, cfg.mode, seed,
                 data.spec.metric, r.metrics[data.spec.metric], r.metrics["accuracy"], wall,
                 f"; saved {out}" if out is not None else "")
    return record


def _fold_notes(notes: list[str], data: TaskData, cfg: ProtocolConfig) -> list[str]:
    """Task/loader notes, corrected when ``cv_folds`` overrides the task's fold count."""
    if not data.needs_cross_validation:
        return notes
    notes = [n for n in notes if not n.startswith("no test split:")]  # base_splits states the real protocol
    default, k = data.spec.cv_folds, cfg.cv_folds or data.spec.cv_folds
    if k != default:
        notes = [n.replace(f"{default}-fold", f"{k}-fold (task default {default}, overridden)") for n in notes]
    return notes


def _seed_result(seed: int, results: list[UnitResult], wall: float) -> SeedResult:
    timings: dict[str, float] = {}
    for r in results:
        for k, v in r.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    timings["total"] = wall
    rates = [r.nt_per_s for r in results if r.nt_per_s is not None]
    epochs = [r.epochs_run for r in results if r.epochs_run is not None]
    if len(results) == 1:
        r = results[0]
        return SeedResult(seed=seed, metrics=r.test, val_metrics=r.val, timings=timings, nt_per_s=r.nt_per_s,
                          epochs_run=r.epochs_run, extra=r.extra)
    extra = {"folds": [{"test": r.test, "val": r.val, "timings": r.timings, **r.extra} for r in results],
             "aggregation": f"mean over {len(results)} folds"}
    return SeedResult(seed=seed, metrics=_mean_metrics([r.test for r in results]),
                      val_metrics=_mean_metrics([r.val for r in results]), timings=timings,
                      nt_per_s=float(np.mean(rates)) if rates else None,
                      epochs_run=max(epochs) if epochs else None, extra=extra)


def estimate_cost(data: TaskData, cfg: ProtocolConfig) -> dict[str, int]:
    """Nucleotides the run will push through the model (for a log line before a long run).

    ``embed_nt`` (probe: every sequence used by some seed, once) or ``train_nt`` (fine-tuning: all epochs, grid points,
    folds and seeds, assuming no early stop) plus ``eval_nt`` (validation every epoch, test once).
    """
    eff = cfg.resolve(data)
    base, _ = base_splits(data, cfg)
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
