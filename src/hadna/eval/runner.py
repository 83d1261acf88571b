"""Runs of (task, model, mode) triples with their files: run JSON, per-run table, benchmark tables.

Layout under an output directory::

    <output_dir>/<task>/<model-slug>.<mode>.json   run record (saved after every seed; resumable)
    <output_dir>/<task>/<model-slug>.<mode>.md     that run's table + protocol + notes
    <output_dir>/<task>/<model-slug>.<mode>.csv    that run's aggregated numbers (mean, sd, range, n)
    <output_dir>/results.md, results.csv           every run of a benchmark side by side

A benchmark config (YAML, :class:`BenchmarkConfig`) lists tasks, models and modes; ``protocol``
holds :class:`~hadna.eval.plan.ProtocolConfig` fields for all runs, and ``mode_overrides`` /
``task_overrides`` change them per mode or per task (task overrides win); inside a task's overrides a
mode's name holds settings for that mode of that task only (``{splice: {finetune: {epochs: 15}}}``),
which win over everything. A task is a registered name or the path of a task YAML file
(:func:`hadna.eval.tasks.task_from_yaml`); overrides are keyed by the task's name.
"""

from __future__ import annotations

import dataclasses
import difflib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..config import from_dict
from ..errors import ConfigError
from ..utils.logging import format_duration, get_logger
from .loaders import load_task
from .options import MODES, seeds_for, slug
from .task_data import TaskData
from .models import ModelSpec, load_eval_model, parse_model_spec
from .plan import FEW_STEPS, ProtocolConfig, estimate_cost, few_steps_hint
from .protocol import plan_run, run_protocol
from .report import write_report
from .records import RunRecord
from .tasks import TaskSpec, get_task, task_from_yaml

log = get_logger("eval.runner")


def resolve_task(name: str) -> TaskSpec:
    """A registered task, or a custom task from a YAML file (names ending in .yaml/.yml)."""
    if name.endswith((".yaml", ".yml")):
        return task_from_yaml(name)
    return get_task(name)


def run_path(output_dir: str | Path, task: str, model_name: str, mode: str) -> Path:
    return Path(output_dir) / task / f"{slug(model_name)}.{mode}.json"


def run_and_report(data: TaskData, spec: ModelSpec, cfg: ProtocolConfig, output_dir: str | Path, *,
                   overwrite: bool = False, published_csv: str | Path | None = None) -> tuple[RunRecord, Path]:
    """Run (or resume) one task/model/mode; write its JSON and its own Markdown/CSV table."""
    path = run_path(output_dir, data.name, spec.name, cfg.mode)
    cost = estimate_cost(data, cfg)
    log.info("%s / %s / %s -> %s (%s)", data.name, spec.name, cfg.mode, path,
             ", ".join(f"{k} {v:,}" for k, v in cost.items()))
    start = time.perf_counter()
    record = run_protocol(data, spec, cfg, path, overwrite=overwrite)
    log.info("%s / %s / %s done in %.1f min", data.name, spec.name, cfg.mode, (time.perf_counter() - start) / 60)
    if record.results:
        write_report([record], path.with_suffix(".md"), path.with_suffix(".csv"), published_csv=published_csv)
    return record, path


#: pairs of settings where setting one replaces the other (a fixed value replaces a grid, and back)
_PARTNERS = {"lr": "lr_grid", "lr_grid": "lr", "batch_size": "batch_size_grid", "batch_size_grid": "batch_size"}
#: settings of fine-tuning only: given for every mode, the probe leaves them out
_FINETUNE_ONLY = ("rc_augment", "rc_test")


@dataclass
class BenchmarkConfig:
    """A benchmark: every task x model x mode, one run each."""

    tasks: list[str]
    models: list[str]
    modes: list[str] = field(default_factory=lambda: ["probe"])
    data_dir: str | None = None
    output_dir: str = "runs/eval/benchmark"
    truncation: str = "left"
    seeds: int | list[int] | None = None  # N = the task's first N seeds, or a list
    pooling: str = "mean"
    trust_remote_code: bool = False
    published: str | None = None
    protocol: dict[str, Any] = field(default_factory=dict)
    mode_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.tasks or not self.models or not self.modes:
            raise ConfigError("a benchmark needs at least one task, one model and one mode")
        for m in self.modes:
            if m not in MODES:
                raise ConfigError(f"modes: {m!r} is not one of {list(MODES)}")
        for m in self.mode_overrides:
            if m not in MODES:
                raise ConfigError(f"mode_overrides: {m!r} is not one of {list(MODES)}")
        names = [resolve_task(t).name for t in self.tasks]  # unknown tasks fail before anything runs
        settings = {f.name for f in dataclasses.fields(ProtocolConfig)} - {"mode"}
        for t, over in self.task_overrides.items():
            if t not in names:
                # a registered task outside this run (--tasks narrowed the config's list): its overrides are
                # unused; anything else is a typo and fails before anything runs
                try:
                    get_task(t)
                except ConfigError as e:
                    raise ConfigError(f"task_overrides: {t!r} is not one of the benchmark's tasks {names}, "
                                      f"nor a registered task: {e}") from None
                log.debug("task_overrides: %r is not among this run's tasks %s; its overrides are unused", t, names)
            if "mode" in over or any("mode" in over[m] for m in MODES if isinstance(over.get(m), dict)):
                raise ConfigError(f"task_overrides: {t}: 'mode' is not a setting (give settings for one mode under "
                                  f"its name: {{{t}: {{finetune: {{...}}}}}})")
            for key, value in over.items():
                if key in MODES and not isinstance(value, dict):
                    raise ConfigError(f"task_overrides: {t}.{key} must map settings to values (settings for the "
                                      f"{key} mode of {t} only), got {value!r}")
                if key not in settings and key not in MODES:
                    close = difflib.get_close_matches(str(key), [*MODES, *settings], n=3)
                    raise ConfigError(f"task_overrides: {t}.{key} is neither a protocol setting nor a mode "
                                      f"({', '.join(MODES)}: settings for that mode only)"
                                      + (f"; did you mean {', '.join(close)}?" if close else ""))
        for key in ("mode", "seeds"):
            if key in self.protocol:
                raise ConfigError(f"protocol.{key}: set it at the top level ({key}s / seeds), not in protocol")
        for m, over in self.mode_overrides.items():
            if "mode" in over:
                raise ConfigError(f"mode_overrides: {m}: 'mode' is not a setting (the key {m!r} is the mode)")
        # every task's protocol in every mode it may run builds now, not when its run comes up hours later
        modes = {*self.modes, *self.mode_overrides, *(m for o in self.task_overrides.values() for m in MODES if m in o)}
        for t in sorted({*names, *self.task_overrides}):
            for m in sorted(modes):
                try:
                    self.protocol_for(t, m, (1,)).validate()
                except ConfigError as exc:
                    raise ConfigError(f"protocol of {t}/{m}: {exc}") from None

    def override_everywhere(self, settings: dict[str, Any]) -> None:
        """Set protocol ``settings`` for every run, over every mode and task override (the command line's
        options: they win over the config file at every level). ``seeds`` is the top-level seeds."""
        replaced = {*settings, *(_PARTNERS[k] for k in settings if k in _PARTNERS)}  # a fixed lr replaces a grid
        for over in [self.protocol, *self.mode_overrides.values(), *self.task_overrides.values(),
                     *(o[m] for o in self.task_overrides.values() for m in MODES if isinstance(o.get(m), dict))]:
            for key in replaced:
                over.pop(key, None)
        seeds = settings.get("seeds")
        self.protocol.update({k: v for k, v in settings.items() if k != "seeds"})
        if seeds is not None:
            self.seeds = seeds

    def protocol_for(self, task: str, mode: str, task_seeds: tuple[int, ...]) -> ProtocolConfig:
        """The protocol of ``task`` in ``mode``: ``protocol``, then ``mode_overrides[mode]``, then the task's
        overrides, then the task's overrides for ``mode``, each level winning over the ones before; a level
        that sets one of lr / lr_grid (batch_size / batch_size_grid) replaces the other one too. The
        fine-tuning-only settings rc_augment / rc_test, given for every mode (``protocol`` or a task's
        overrides for all its modes), do not reach the probe; given for the probe itself, they are refused."""
        task_over = self.task_overrides.get(task, {})
        general = {k: v for k, v in task_over.items() if k not in MODES}
        merged: dict[str, Any] = {}
        for level, for_every_mode in ((self.protocol, True), (self.mode_overrides.get(mode, {}), False),
                                      (general, True), (task_over.get(mode, {}), False)):
            for key in level:
                if key in _PARTNERS:
                    merged.pop(_PARTNERS[key], None)
            merged.update(level)
            if mode == "probe" and for_every_mode:
                for key in _FINETUNE_ONLY:
                    merged.pop(key, None)
        merged["mode"] = mode
        # seeds: top-level, or per mode (e.g. fewer seeds for the expensive fine-tune than for the probe)
        seeds = merged.pop("seeds", self.seeds)
        count, explicit = (seeds, None) if isinstance(seeds, int) else (None, seeds)
        merged["seeds"] = seeds_for(task_seeds, count, explicit)
        cfg = from_dict(ProtocolConfig, merged)
        return cfg


def _modes_of(spec: ModelSpec, modes: list[str]) -> list[str]:
    """The k-mer baseline runs once, as a probe, whatever the modes (it has no encoder to fine-tune)."""
    if spec.kind == "kmer":
        if modes != ["probe"]:
            log.info("%s: the k-mer baseline runs in probe mode only (its classifier is the probe's logistic "
                     "regression); modes %s -> [probe]", spec.name, modes)
        return ["probe"]
    return modes


def _specs(bench: BenchmarkConfig, allow_download: bool) -> list[ModelSpec]:
    specs = [parse_model_spec(m, pooling=bench.pooling, trust_remote_code=bench.trust_remote_code,
                              allow_download=allow_download) for m in bench.models]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"two models share a name in {names}; name them with NAME=SPEC")
    return specs


def _runs(bench: BenchmarkConfig, specs: list[ModelSpec],
          device: str | None) -> Iterator[tuple[TaskData, ModelSpec, ProtocolConfig]]:
    """Every (task data, model, protocol) of the benchmark, task by task (each task's data loaded once)."""
    for task in bench.tasks:
        data = load_task(resolve_task(task), bench.data_dir, truncation=bench.truncation)  # type: ignore[arg-type]
        for spec in specs:
            for mode in _modes_of(spec, bench.modes):
                cfg = bench.protocol_for(data.name, mode, data.spec.seeds)
                yield data, spec, (dataclasses.replace(cfg, device=device) if device is not None else cfg)


def plan_benchmark(bench: BenchmarkConfig, *, overwrite: bool = False,
                   allow_download: bool = False) -> list[dict[str, Any]]:
    """What :func:`run_benchmark` would run, without running or writing anything (``--dry-run``).

    One row per run: task, model, mode, its path, and the :class:`~hadna.eval.protocol.RunPlan` (seeds
    done and to run, nucleotides of the seeds to run, measured seconds per finished seed, interrupted
    fine-tunes' epoch checkpoints, and why it would refuse to start, if it would). Task data are loaded (the
    nucleotide counts need them) and model specs parsed, so a typo in either fails here as it would there.
    A model is loaded, on the CPU and once, only where seeds are to be added to recorded seeds of loaded
    weights: to find weights retrained under the same path before the run does, hours into a benchmark.
    """
    bench.validate()
    digests: dict[str, str] = {}

    def digest(spec: ModelSpec) -> str:
        if spec.name not in digests:
            digests[spec.name] = load_eval_model(spec, 2, device="cpu").encoder_digest()
        return digests[spec.name]

    rows = []
    for data, spec, cfg in _runs(bench, _specs(bench, allow_download), None):
        path = run_path(bench.output_dir, data.name, spec.name, cfg.mode)
        rows.append({"task": data.name, "model": spec.name, "mode": cfg.mode, "path": path,
                     "plan": plan_run(data, spec, cfg, path, overwrite=overwrite, weights_digest=digest)})
    return rows


def _md_cell(text: str) -> str:
    return str(text).replace("|", r"\|")


def _nt_text(cost: dict[str, int]) -> str:
    """``{"train_nt": 1200, "eval_nt": 300}`` -> ``train 1,200, eval 300`` (empty when there is nothing)."""
    return ", ".join(f"{k.removesuffix('_nt')} {v:,}" for k, v in cost.items())


def plan_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`plan_benchmark` as a Markdown table plus totals and the runs that would not start."""
    lines = ["| task | model | mode | seeds done | to run | nucleotides to run | per seed (measured) | estimate | "
             "unfinished fine-tunes (seed: epochs saved) |", "|---|---|---|---|---|---:|---:|---:|---|"]
    total_nt: dict[str, int] = {}
    estimate, unmeasured, problems = 0.0, 0, []
    for row in rows:
        plan = row["plan"]
        left = plan.remaining
        name = f"{row['task']} / {row['model']} / {row['mode']}"
        if plan.problem:
            guess = "refuses"
            problems.append(f"- {name} would not start: {plan.problem}")
        elif plan.running:
            guess = "running now"
            problems.append(f"- {name} is running now ({plan.running}): a second process would stop at it")
        elif not left:
            guess = "done"
        elif plan.estimate_s is None:
            guess, unmeasured = "—", unmeasured + 1
        else:
            estimate += plan.estimate_s
            guess = format_duration(plan.estimate_s)
        if not plan.problem and not plan.running:  # neither would run in this benchmark
            for k, v in plan.cost.items():
                total_nt[k] = total_nt.get(k, 0) + v
        per_seed = "—" if plan.seconds_per_seed is None else format_duration(plan.seconds_per_seed)
        unfinished = "; ".join(f"{s}: {', '.join(map(str, e))}" for s, e in plan.checkpoints.items()) or "—"
        nt = _nt_text(plan.cost) or "—"
        lines.append("| " + " | ".join(_md_cell(c) for c in (
            row["task"], row["model"], row["mode"], f"{len(plan.done)} of {len(plan.seeds)}",
            ",".join(map(str, left)) or "—", nt, per_seed, guess, unfinished)) + " |")
    to_start = sum(1 for r in rows if r["plan"].remaining and not r["plan"].problem and not r["plan"].running)
    lines += ["", f"{to_start} of {len(rows)} runs have seeds to run; nucleotides to run: "
              + (_nt_text(total_nt) or "none")
              + " (fine-tuning counted at the epoch cap, before early stopping; runs that would refuse or are "
                "running now left out)."]
    if estimate:
        lines.append("Time, at the pace of the seeds already finished in these run files (same machine and load "
                     f"assumed): {format_duration(estimate)}" + (f", plus {unmeasured} run(s) with no finished seed to "
                                                         f"time them by" if unmeasured else "") + ".")
    elif unmeasured:
        lines.append("No run with seeds to run has a finished seed to time the rest by: the nucleotides above over "
                     "your machine's nt/s (`python benchmarks/cpu_speed.py`) give the order of magnitude.")
    if problems:
        lines += ["", "Problems (the benchmark stops at the first run that refuses; the runs after it do not run):",
                  *problems]
    short = [f"- {r['task']} / {r['model']} / {r['mode']}: {few_steps_hint(r['plan'].steps, r['mode'])}" for r in rows
             if r["plan"].steps is not None and r["plan"].steps < FEW_STEPS and r["plan"].remaining
             and not r["plan"].problem and not r["plan"].running]
    if short:
        lines += ["", "Short fine-tunes (these run, but may end below a linear probe):", *short]
    return "\n".join(lines) + "\n"


def run_benchmark(bench: BenchmarkConfig, *, overwrite: bool = False,
                  device: str | None = None, allow_download: bool = False) -> tuple[list[RunRecord], Path]:
    """Run every task x model x mode (resuming finished seeds) and write ``results.md``/``.csv``."""
    bench.validate()
    specs = _specs(bench, allow_download)
    records: list[RunRecord] = []
    out_dir = Path(bench.output_dir)
    start = time.perf_counter()
    for data, spec, cfg in _runs(bench, specs, device):
        record, _ = run_and_report(data, spec, cfg, out_dir, overwrite=overwrite, published_csv=bench.published)
        records.append(record)
    done = [r for r in records if r.results]
    md = out_dir / "results.md"
    if done:
        write_report(done, md, out_dir / "results.csv", published_csv=bench.published,
                        title="hadna benchmark: " + ", ".join(dict.fromkeys(r.task for r in done)))
    log.info("benchmark finished in %.1f min; tables: %s", (time.perf_counter() - start) / 60, md)
    return records, md
