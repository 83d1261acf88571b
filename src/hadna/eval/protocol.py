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

The run record (:class:`~hadna.eval.records.RunRecord`) is saved atomically after every seed; a
rerun with the same settings skips finished seeds, and refuses (ConfigError) when the settings that
change results differ from those recorded. Within a seed, every fine-tuning run (unit and grid point)
saves its state after each epoch under ``<run JSON stem>.partial/seed-<s>/`` and a rerun resumes it at
its last finished epoch (:mod:`hadna.eval.finetune_checkpoint`); the seed's directory is deleted once the
seed is in the record. The ``.partial`` directory also holds the run's lock (one process per run JSON)
and is removed when the run ends with nothing left in it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, DirectoryInUseError, HadnaError
from ..utils.device import resolve_device
from ..utils.io import lock_directory, lock_holder
from ..utils.logging import get_logger
from .finetune import EvalOutput, evaluate, fine_tune
from .finetune_checkpoint import saved_progress
from .inference import EmbeddingCache
from .metrics import compute_metrics
from .models import EvalModel, ModelSpec, load_eval_model
from .plan import (FEW_STEPS, ProtocolConfig, Unit, base_splits, estimate_cost, few_steps_hint, fewest_steps,
                   make_units, protocol_defaults, split_of, subsample)
from .probe import fit_probe
from .records import (RunRecord, SeedResult, effective_differences, needs_weights_check, protocol_differences, same_data,
                      weights_problem)
from .task_data import Split, TaskData
from .tasks import CUSTOM_BATCH_SIZE_GRID, CUSTOM_LR_GRID

log = get_logger("eval.protocol")

# The plan (ProtocolConfig, units, cost estimate) lives in .plan; its public names are importable from here too.
__all__ = ["ProtocolConfig", "UnitResult", "base_splits", "estimate_cost", "evaluate_test", "make_units",
           "partial_dir", "plan_run", "RunPlan", "run_finetune_unit", "run_probe_unit", "run_protocol", "subsample"]


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


def partial_dir(out: Path) -> Path:
    """Where the per-epoch checkpoints of the run recorded in ``out`` go (``HAD.finetune.json`` ->
    ``HAD.finetune.partial``)."""
    return out.with_suffix(".partial")


def _seed_checkpoints(partial: Path, seed: int) -> Path:
    """The epoch checkpoints of one seed's fine-tuning runs, inside the run's ``.partial`` directory."""
    return partial / f"seed-{seed}"


def _run_dir_name(unit: Unit, lr: float, bs: int) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{unit.label}-lr{lr!r}-bs{bs}")  # repr: distinct lrs, distinct names


def run_finetune_unit(spec: ModelSpec, data: TaskData, cfg: ProtocolConfig, eff: dict[str, Any], unit: Unit,
                      base: dict[str, Split], seed: int, device: Any, describe: dict[str, Any],
                      checkpoint_root: Path | None = None, recorded_model: dict[str, Any] | None = None) -> UnitResult:
    """Fine-tune every grid point of one unit, keep the best on validation and test it once.

    ``checkpoint_root``: the seed's checkpoint directory (each grid point saves and resumes under it).
    ``recorded_model``: the model description of the seeds already in the run's record; weights that differ
    from it are refused before any training (:func:`_check_same_weights`).
    """
    train, val, test = split_of(base, unit.train), split_of(base, unit.val), split_of(base, unit.test)
    ft = eff["finetune"]
    metric, k = data.spec.metric, data.num_classes
    best_model: EvalModel | None = None
    best = None
    chosen: dict[str, Any] = {}
    grid: list[dict[str, Any]] = []
    t_train = t_val = t_restored = 0.0
    nt = 0
    for lr in ft["lr_grid"]:
        for bs in ft["batch_size_grid"]:
            model = load_eval_model(spec, k, seed=seed, random_init=cfg.mode == "scratch", device=device)
            if "model" not in describe:  # describe() hashes the weights: once per run, not per grid point
                describe["model"] = model.describe()
                _check_same_weights(spec, cfg, recorded_model, describe["model"])
            fcfg = cfg.finetune_config(lr, bs, ft["epochs"])
            ckpt = checkpoint_root / _run_dir_name(unit, lr, bs) if checkpoint_root is not None else None
            res = fine_tune(model, train, val, fcfg, metric=metric, num_classes=k, seed=seed,
                            desc=f"seed {seed} {unit.label} lr {lr:g} bs {bs}", checkpoint_dir=ckpt)
            t_train += res.train.seconds
            t_val += res.val_seconds
            t_restored += res.restored_seconds
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
    if t_restored:  # train/validation time spent by an earlier process, before a kill (restored from checkpoints)
        timings["restored"] = t_restored
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

def _existing_record(data: TaskData, spec: ModelSpec, protocol: dict[str, Any], effective: dict[str, Any],
                     out: Path) -> RunRecord | None:
    """The record at ``out`` that this run would resume (None: there is none), or ConfigError saying why it
    must not be resumed: another task/model/mode, other settings, other data, another kind of model."""
    if not out.is_file():
        return None
    record = RunRecord.load(out)
    if (record.task, record.model, record.mode) != (data.name, spec.name, protocol["mode"]):
        raise ConfigError(f"{out} holds {record.task}/{record.model}/{record.mode}, not "
                          f"{data.name}/{spec.name}/{protocol['mode']}; use another --output-dir")
    _compatible(record, protocol, effective, out)
    _same_data(record, data, out)
    _same_model(record, spec, out)
    return record


@dataclass
class RunPlan:
    """What :func:`run_protocol` would do for one run, found without loading a model or writing anything.

    ``cost``: :func:`~hadna.eval.plan.estimate_cost` of the seeds still to run; ``seconds_per_seed``: the
    mean time of the seeds already recorded (measured; None when there are none); ``estimate_s``: the time
    the seeds still to run would take at the recorded pace (fine-tuning: seconds per seed; probe: the
    recorded embedding nt/s, since a probe's later seeds reuse the embeddings of its first); ``checkpoints``:
    seed -> the last saved epoch of each of its unfinished fine-tuning runs (units and grid points, in
    directory order); ``running``: the process that holds the run's lock now, if one does; ``problem``: why
    the run would refuse to start; ``steps``: :func:`~hadna.eval.plan.fewest_steps` where seeds are left.
    Planning checks what the record says (task, settings, data, kind of model and pooling) and, given
    ``weights_digest``, whether loaded weights are still those of the recorded seeds.
    """

    seeds: list[int]
    done: list[int]
    cost: dict[str, int]
    seconds_per_seed: float | None = None
    estimate_s: float | None = None
    checkpoints: dict[int, list[int]] = dataclasses.field(default_factory=dict)
    running: str | None = None
    problem: str | None = None
    steps: int | None = None

    @property
    def remaining(self) -> list[int]:
        return [s for s in self.seeds if s not in self.done]


def plan_run(data: TaskData, spec: ModelSpec, cfg: ProtocolConfig, out_path: str | Path | None = None, *,
             overwrite: bool = False, weights_digest: Callable[[ModelSpec], str] | None = None) -> RunPlan:
    """The plan of ``run_protocol(data, spec, cfg, out_path, overwrite=overwrite)`` (``hadna benchmark --dry-run``).

    ``weights_digest``: the encoder sha256 of a model spec (:meth:`EvalModel.encoder_digest`), asked only
    where seeds remain to be added to recorded seeds of loaded weights; without it, other starting weights
    show only when the run loads the model.
    """
    cfg.validate()
    eff = cfg.resolve(data)
    seeds = eff["seeds"]
    out = Path(out_path) if out_path is not None else None
    record, problem = None, None
    try:
        _check_mode(spec, cfg)
        if out is not None and not overwrite:
            record = _existing_record(data, spec, dataclasses.asdict(cfg), eff, out)
    except HadnaError as exc:  # settings, data or model differ; an unreadable record
        problem = str(exc)
    finished = [r for r in (record.results if record is not None else []) if r.seed in seeds]
    done = [r.seed for r in finished]
    remaining = [s for s in seeds if s not in done]
    recorded = record.config.get("model") if record is not None and record.done_seeds else None
    if (problem is None and remaining and weights_digest is not None and recorded
            and recorded.get("encoder_sha256") and needs_weights_check(spec.to_dict(), cfg.mode)):
        try:
            _check_same_weights(spec, cfg, recorded, {"encoder_sha256": weights_digest(spec)})
        except HadnaError as exc:  # other weights now, or the model no longer loads
            problem = str(exc)
    cost, steps = {}, None
    if remaining:
        base = base_splits(data, cfg)[0]  # built once for both estimates
        cost = estimate_cost(data, dataclasses.replace(cfg, seeds=remaining), base)
        steps = fewest_steps(data, cfg, base)
    totals = [r.timings["total"] for r in finished if "total" in r.timings]
    rates = [r.nt_per_s for r in finished if r.nt_per_s]
    per_seed = float(np.mean(totals)) if totals else None
    estimate = None
    if remaining and cfg.mode == "probe" and rates:
        estimate = cost["embed_nt"] / float(np.mean(rates))
    elif remaining and cfg.mode != "probe" and per_seed is not None:
        estimate = per_seed * len(remaining)
    checkpoints: dict[int, list[int]] = {}
    running = None
    if out is not None:
        partial = partial_dir(out)
        running = lock_holder(partial)
        if not overwrite and cfg.mode != "probe":
            for s in remaining:
                runs = sorted(p for p in _seed_checkpoints(partial, s).glob("*") if p.is_dir())
                epochs = [saved[0] for saved in map(saved_progress, runs) if saved is not None and not saved[1]]
                if epochs:
                    checkpoints[s] = epochs
    return RunPlan(seeds=list(seeds), done=done, cost=cost, seconds_per_seed=per_seed, estimate_s=estimate,
                   checkpoints=checkpoints, running=running, problem=problem, steps=steps)


def _check_mode(spec: ModelSpec, cfg: ProtocolConfig) -> None:
    if spec.kind == "kmer" and cfg.mode != "probe":
        raise ConfigError(f"{spec.name}: the k-mer baseline has no encoder to {cfg.mode}; its only mode is probe "
                          f"(logistic regression on k-mer frequencies)")


def _compatible(old: RunRecord, new_protocol: dict[str, Any], effective: dict[str, Any], path: Path) -> None:
    # A setting added after the record was written counts as its default value there. The protocol as run is
    # compared too: the same settings can run otherwise (other task defaults; LP-FT's head dropout before
    # head_dropout existed).
    defaults = protocol_defaults()
    before = {**defaults, **old.config.get("protocol", {})}  # kept whole for the hint below
    diff = protocol_differences(before, new_protocol, defaults) or effective_differences(
        old.config.get("effective", {}), effective)
    if diff:
        hint = ""
        if all(d.startswith("probe_c_grid:") for d in diff) and before.get("probe_c_grid"):
            hint = f"; to resume it, pass --probe-c-grid {','.join(f'{c:g}' for c in before['probe_c_grid'])}"
        elif all(d.startswith(("as run, finetune.lr_grid:", "as run, finetune.batch_size_grid:")) for d in diff):
            hint = (f"; if this is a task of your own recorded before such tasks fine-tuned at one lr and batch (lr "
                    f"{CUSTOM_LR_GRID[0]:g}, batch {CUSTOM_BATCH_SIZE_GRID[0]}) by default, its seeds ran the grid "
                    f"above and new seeds would not be comparable with them: start a new --output-dir with the "
                    f"grid's --lr-grid and --batch-size-grid, or this default")
        raise ConfigError(f"{path} holds a run with other settings ({'; '.join(diff[:4])}); use another --output-dir, "
                          f"or --overwrite to start again{hint}")


def _same_data(old: RunRecord, data: TaskData, path: Path) -> None:
    """Seeds of one record must come from one data set: resuming on other data would average the two."""
    if not same_data(old.data, data.summary()):
        raise ConfigError(f"{path} holds seeds run on other data ({old.data.get('source', '?')}; data fingerprint "
                          f"{(old.data.get('fingerprint') or 'not recorded')[:12]}) than this run's ({data.source}; "
                          f"{data.fingerprint()[:12]}); their results must not be averaged: use another --output-dir, "
                          f"or --overwrite to start again")


def _same_model(old: RunRecord, spec: ModelSpec, path: Path) -> None:
    """Seeds of one record must come from one kind of model and pooling (the path may move; the weights
    are checked per fine-tuning run by its epoch checkpoints)."""
    before = old.config.get("model_spec", {})
    diff = [f"{k}: {before[k]!r} -> {getattr(spec, k)!r}" for k in ("kind", "pooling")
            if k in before and before[k] != getattr(spec, k)]
    if diff:
        raise ConfigError(f"{path} holds seeds of another model setting ({'; '.join(diff)}); their results must not "
                          f"be averaged: use another --output-dir or model name, or --overwrite to start again")


def _check_same_weights(spec: ModelSpec, cfg: ProtocolConfig, recorded: dict[str, Any] | None,
                        now: dict[str, Any]) -> None:
    """Seeds added to a record must start from the weights its earlier seeds started from (a checkpoint
    retrained under the same path would otherwise be averaged with the old one's seeds)."""
    problem = weights_problem(spec.to_dict(), cfg.mode, recorded, now) if recorded is not None else None
    if problem:
        raise ConfigError(f"{spec.name} ({spec.target}): its weights are not those of the seeds already recorded for "
                          f"this run ({problem}, recorded vs now); their results must not be averaged: use another "
                          f"--output-dir or model name, or --overwrite to start again")


def run_protocol(data: TaskData, spec: ModelSpec, cfg: ProtocolConfig, out_path: str | Path | None = None, *,
                 overwrite: bool = False) -> RunRecord:
    """Run (or resume) every seed of ``cfg`` for one task and one model; return the record.

    ``out_path``: the run JSON, written after every seed (``None``: keep in memory only). While the run
    reads and writes it, its ``.partial`` directory is locked: a second process asking for the same run
    gets :class:`~hadna.errors.DirectoryInUseError` instead of overwriting its seeds.
    """
    if out_path is None:
        return _run_protocol(data, spec, cfg, None, overwrite)
    out = Path(out_path)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(lock_directory(partial_dir(out), what=f"the lock directory of run {out.name},",
                                               remove_when_empty=True))
        except DirectoryInUseError as exc:
            raise DirectoryInUseError(f"{exc}; to run other seeds of it at the same time, give them another "
                                      f"--output-dir: hadna report merges the seeds of one run from several "
                                      f"folders") from None
        return _run_protocol(data, spec, cfg, out, overwrite)


def _run_protocol(data: TaskData, spec: ModelSpec, cfg: ProtocolConfig, out: Path | None,
                  overwrite: bool) -> RunRecord:
    cfg.validate()
    _check_mode(spec, cfg)
    eff = cfg.resolve(data)
    seeds = eff["seeds"]
    protocol = dataclasses.asdict(cfg)
    base, data_notes = base_splits(data, cfg)
    record: RunRecord | None = None
    partial = partial_dir(out) if out is not None and cfg.mode != "probe" else None
    if partial is not None and overwrite:
        for stale in partial.glob("seed-*"):
            shutil.rmtree(stale, ignore_errors=True)
    if out is not None and not overwrite:
        record = _existing_record(data, spec, protocol, eff, out)
    if record is not None:
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
    if partial is not None:  # seeds recorded by a run killed before it deleted their checkpoints
        for s in record.done_seeds:
            shutil.rmtree(_seed_checkpoints(partial, s), ignore_errors=True)
    remaining = [s for s in seeds if s not in record.done_seeds]
    if not remaining:
        log.info("%s/%s/%s: all seeds %s already done", data.name, spec.name, cfg.mode, seeds)
        return record
    steps = fewest_steps(data, cfg, base)
    if steps is not None and steps < FEW_STEPS:
        log.warning("%s/%s/%s: %s", data.name, spec.name, cfg.mode, few_steps_hint(steps, cfg.mode))
    device = resolve_device(cfg.device)
    describe: dict[str, Any] = {}
    recorded = record.config.get("model") if record.done_seeds else None
    probe_model: EvalModel | None = None
    cache: EmbeddingCache | None = None
    if cfg.mode == "probe":
        init_seed = cfg.probe_init_seed
        probe_model = load_eval_model(spec, data.num_classes, seed=init_seed, device=device)
        describe["model"] = probe_model.describe()
        _check_same_weights(spec, cfg, recorded, describe["model"])
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
                results.append(run_finetune_unit(spec, data, cfg, eff, unit, base, seed, device, describe,
                                                 _seed_checkpoints(partial, seed) if partial is not None else None,
                                                 recorded_model=recorded))
        wall = time.perf_counter() - start
        record.add(_seed_result(seed, results, wall))
        if "model" in describe and "model" not in record.config:
            record.config["model"] = describe["model"]
        if out is not None:
            record.save(out)
        if partial is not None:  # the seed is in the record: its epoch checkpoints are no longer needed
            shutil.rmtree(_seed_checkpoints(partial, seed), ignore_errors=True)
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
    timings["total"] = wall + timings.get("restored", 0.0)  # a resumed seed's earlier process counts too
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
