"""Run records (one JSON per task, model and mode) and their aggregation over seeds.

A :class:`RunRecord` is everything one benchmark run of one model on one task produced: the config,
and for every seed the test metrics (computed on the whole test set), validation metrics, timings,
throughput (nt/s) and epochs run. It is saved as JSON atomically after every seed, so an interrupted
run can resume with :meth:`RunRecord.remaining_seeds`. :func:`load_records` reads several, merging the
seeds of one run written to several files (seeds run in parallel processes or on other machines) when
:func:`merge_problems` finds nothing that would make averaging them wrong.

Aggregation over seeds (:func:`aggregate`): mean, **sample** standard deviation (``ddof=1``; absent
for a single seed) and range (max - min). The tables built from records are :mod:`hadna.eval.results`.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import from_dict, to_dict
from ..errors import ConfigError, DataError, MissingFileError
from ..utils.io import atomic_write_json
from .options import FINETUNE_SETTINGS_ADDED
from .tasks import TaskSpec

SCHEMA = "hadna.run/1"


# ------------------------------------------------------------------------------------------------
# Run records
# ------------------------------------------------------------------------------------------------

@dataclass
class SeedResult:
    """One seed (one fine-tuning/probing run) of a task.

    ``metrics``: on the whole test set (for cross-validated tasks: the mean over folds, with the
    per-fold numbers in ``extra``). ``timings``: seconds (``train``, ``eval``, ...). ``nt_per_s``:
    training throughput in nucleotides per second.
    """

    seed: int
    metrics: dict[str, float]
    val_metrics: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    nt_per_s: float | None = None
    epochs_run: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRecord:
    """All seeds of one (task, model, mode) run; ``metric`` is the task's primary metric."""

    task: str
    benchmark: str
    model: str
    mode: str
    metric: str
    config: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    results: list[SeedResult] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created: str = ""
    hadna_version: str = ""
    schema: str = SCHEMA
    group: str = ""  # the task's group (histone, promoter, ...): reports average per group

    @classmethod
    def for_task(cls, spec: TaskSpec, model: str, mode: str, config: dict[str, Any] | None = None,
                 seeds: list[int] | None = None, data: dict[str, Any] | None = None) -> "RunRecord":
        """A fresh record for ``spec`` (seeds default to the task's protocol seeds)."""
        from .. import __version__

        notes = [spec.notes] if spec.notes else []
        return cls(task=spec.name, benchmark=spec.benchmark, model=model, mode=mode, metric=spec.metric,
                   config=dict(config or {}), seeds=list(seeds if seeds is not None else spec.seeds),
                   data=dict(data or {}), notes=notes,
                   created=datetime.now(timezone.utc).isoformat(timespec="seconds"), hadna_version=__version__,
                   group=spec.group)

    @property
    def done_seeds(self) -> list[int]:
        return [r.seed for r in self.results]

    def remaining_seeds(self) -> list[int]:
        done = set(self.done_seeds)
        return [s for s in self.seeds if s not in done]

    def add(self, result: SeedResult) -> None:
        if result.seed in self.done_seeds:
            raise ValueError(f"seed {result.seed} of {self.task}/{self.model}/{self.mode} is already recorded")
        self.results.append(result)

    def values(self, metric: str | None = None) -> list[float]:
        """Per-seed values of ``metric`` (default: the primary metric), in seed order of recording."""
        metric = metric or self.metric
        out = []
        for r in self.results:
            if metric not in r.metrics:
                raise DataError(f"{self.task}/{self.model}/{self.mode}: seed {r.seed} has no {metric!r} metric "
                                f"(has {sorted(r.metrics)})")
            out.append(float(r.metrics[metric]))
        return out

    def aggregate(self, metric: str | None = None) -> "Aggregate":
        return aggregate(self.values(metric), metric or self.metric)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "run record") -> "RunRecord":
        if not isinstance(data, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(data).__name__}")
        schema = data.get("schema", SCHEMA)
        if schema != SCHEMA:
            raise DataError(f"{where}: unsupported schema {schema!r} (this hadna reads {SCHEMA!r})")
        missing = [k for k in ("task", "model", "mode") if k not in data]
        if missing:
            raise DataError(f"{where}: not a hadna run record (the JSON that finetune/benchmark write per task, model "
                            f"and mode); it lacks {', '.join(missing)} (keys found: {', '.join(sorted(data)[:8])})")
        try:
            record = from_dict(cls, data)
        except ConfigError as exc:
            raise DataError(f"{where}: {exc}") from None
        repeated = sorted({s for s in record.done_seeds if record.done_seeds.count(s) > 1})
        if repeated:
            raise DataError(f"{where}: seed{'s' if len(repeated) > 1 else ''} {', '.join(map(str, repeated))} "
                            f"recorded more than once; a seed must count once in the mean")
        return record

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically (a reader never sees a half-written file)."""
        atomic_write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "RunRecord":
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"run record not found: {path}")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not valid JSON: {exc}") from None
        except OSError as exc:  # unreadable (permissions, I/O error): named like any other bad record
            raise DataError(f"{path}: cannot be read: {exc.strerror or exc}") from None
        return cls.from_dict(data, str(path))


# Protocol settings that do not change results: runs that differ only in these are one run.
RUNTIME_KEYS = ("seeds", "device", "eval_batch_size", "embed_batch_size")


def protocol_differences(before: dict[str, Any], now: dict[str, Any],
                         defaults: dict[str, Any] | None = None) -> list[str]:
    """``"key: old -> new"`` for every protocol setting (a ``ProtocolConfig`` as a dict) that differs,
    :data:`RUNTIME_KEYS` left out; the probe's C grid counts only where a probe runs (probe mode, or a
    fine-tune whose head starts from the probe). ``defaults``: the value of a setting that a record written
    before the setting existed lacks (default: ``ProtocolConfig``'s)."""
    if defaults is None:
        from .plan import protocol_defaults  # imports torch: only when two protocols are compared

        defaults = protocol_defaults()
    before = {k: v for k, v in {**defaults, **before}.items() if k not in RUNTIME_KEYS}
    now = {k: v for k, v in {**defaults, **now}.items() if k not in RUNTIME_KEYS}
    if "probe" not in (now.get("mode"), now.get("head_init")) and "probe" not in (before.get("mode"),
                                                                                    before.get("head_init")):
        before.pop("probe_c_grid", None)
        now.pop("probe_c_grid", None)
    def shown(k: str, v: Any) -> str:  # for these keys None is the task's own value ("as run" lines say which)
        return "unset (the task's)" if v is None and k in _TASK_DEFAULT_WHEN_NONE else repr(v)
    return [f"{k}: {shown(k, before.get(k))} -> {shown(k, now.get(k))}" for k in sorted(set(before) | set(now))
            if _canonical(before.get(k)) != _canonical(now.get(k))]


#: ProtocolConfig keys whose None means "the task's default" (elsewhere None means none: no cap, no clipping)
_TASK_DEFAULT_WHEN_NONE = frozenset({"seeds", "epochs", "lr", "batch_size", "lr_grid", "batch_size_grid", "cv_folds"})


def effective_differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Differences of the protocols as run (task defaults filled in; ``ProtocolConfig.resolve``), seeds and
    runtime settings left out: two hadna versions with other task defaults ran other protocols. A fine-tuning
    setting a record lacks counts at :data:`FINETUNE_SETTINGS_ADDED`'s value."""
    def core(d: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in d.items() if k != "seeds"}
        if isinstance(out.get("finetune"), dict):
            out["finetune"] = {k: v for k, v in {**FINETUNE_SETTINGS_ADDED, **out["finetune"]}.items()
                               if k not in RUNTIME_KEYS}
            if out["finetune"].get("head_init") != "probe":  # the probe's C grid matters only where a probe runs
                out["finetune"].pop("probe_c_grid", None)
        return out
    if not before or not now:
        return []
    a, b = core(before), core(now)
    out = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):  # name the settings inside, e.g. "finetune.lr_grid"
            out += [f"as run, {k}.{j}: {x.get(j)!r} -> {y.get(j)!r}" for j in sorted(set(x) | set(y))
                    if _canonical(x.get(j)) != _canonical(y.get(j))]
        elif _canonical(x) != _canonical(y):
            out.append(f"as run, {k}: {x!r} -> {y!r}")
    return out


def _canonical(value: Any) -> Any:
    """Tuples and lists compare equal (a record read back from JSON holds lists)."""
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def same_data(before: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether two records' ``data`` summaries describe the same task data: equal fingerprints (sha256 of
    every split's rows), or for a record written before fingerprints, equal sizes, class counts and sources."""
    if before.get("fingerprint") is not None and now.get("fingerprint") is not None:
        return before["fingerprint"] == now["fingerprint"]

    def sizes(d: dict[str, Any]) -> dict[str, Any]:
        return {k: {f: v.get(f) for f in ("n", "class_counts", "source")} for k, v in d.get("splits", {}).items()}
    return sizes(before) == sizes(now)


def is_random_init(spec: dict[str, Any], mode: str) -> bool:
    """Whether a run's starting weights are drawn per seed (a preset, or ``scratch`` mode) rather than loaded."""
    return spec.get("kind") == "preset" or mode == "scratch"


def needs_weights_check(spec: dict[str, Any], mode: str) -> bool:
    """Whether a run starts from loaded weights that seeds added to it must share (not a random init, nor a
    model whose name is the model: a preset, the k-mer sizes)."""
    return spec.get("kind") not in ("preset", "kmer") and not is_random_init(spec, mode)


def weights_problem(spec: dict[str, Any], mode: str, before: dict[str, Any], now: dict[str, Any]) -> str | None:
    """Why two model descriptions (``EvalModel.describe()``) of one run did not start from the same weights, or
    ``None``: their encoder sha256 digests differ. Not asked of a random init (its weights follow the seed) nor of
    a model whose name is the model (a preset, the k-mer sizes: no weights to compare), nor when a digest is
    missing (records written before digests)."""
    if not needs_weights_check(spec, mode):
        return None
    digest_a, digest_b = before.get("encoder_sha256"), now.get("encoder_sha256")
    if digest_a and digest_b and digest_a != digest_b:
        return f"encoder weights: sha256 {digest_a[:12]} vs {digest_b[:12]}"
    return None


def merge_problems(a: RunRecord, b: RunRecord) -> list[str]:
    """Why the seeds of two records of one task, model and mode must not be averaged (empty: they may).

    They must agree on the benchmark and metric; the protocol, as configured (:func:`protocol_differences`)
    and as run (task defaults filled in); the task data (:func:`same_data`); the model's kind, pooling,
    class, size and width; its target where that is a name (a preset, the k-mer sizes); for loaded weights,
    the encoder's sha256 where both records have it (the target path otherwise); and they must hold
    different seeds.
    """
    problems = [f"{k}: {getattr(a, k)!r} vs {getattr(b, k)!r}" for k in ("benchmark", "metric")
                if getattr(a, k) != getattr(b, k)]
    problems += protocol_differences(a.config.get("protocol", {}), b.config.get("protocol", {}))
    problems += effective_differences(a.config.get("effective", {}), b.config.get("effective", {}))
    if not same_data(a.data, b.data):
        problems.append(f"task data: fingerprint {str(a.data.get('fingerprint'))[:12]} vs "
                        f"{str(b.data.get('fingerprint'))[:12]}")
    spec_a, spec_b = a.config.get("model_spec", {}), b.config.get("model_spec", {})
    model_a, model_b = a.config.get("model", {}), b.config.get("model", {})
    named = spec_a.get("kind") in ("preset", "kmer")  # the target is a name, the same on every machine
    problems += [f"model {k}: {spec_a[k]!r} vs {spec_b[k]!r}" for k in ("kind", "pooling") + (("target",) if named else ())
                 if k in spec_a and k in spec_b and spec_a[k] != spec_b[k]]
    problems += [f"model {k}: {model_a[k]!r} vs {model_b[k]!r}" for k in ("class", "encoder_parameters", "hidden_size")
                 if k in model_a and k in model_b and model_a[k] != model_b[k]]
    weights = weights_problem(spec_a, a.mode, model_a, model_b)
    if weights:
        problems.append(weights)
    elif (not named and not is_random_init(spec_a, a.mode)
          and not (model_a.get("encoder_sha256") and model_b.get("encoder_sha256"))
          and spec_a.get("target") != spec_b.get("target")):
        problems.append(f"model: {spec_a.get('target')!r} vs {spec_b.get('target')!r} (no weights digest recorded "
                        f"to show they are the same weights)")
    both = sorted(set(a.done_seeds) & set(b.done_seeds))
    if both:
        problems.append(f"seed{'s' if len(both) > 1 else ''} {', '.join(map(str, both))} in both")
    return problems


def merge_records(records: list[RunRecord], where: list[str] | None = None) -> RunRecord:
    """One record holding the seeds of several records of the same run (checked by :func:`merge_problems`;
    ``where`` names them in errors and in the merged record's notes). Seeds are kept in seed order; the
    first record's config and data are kept."""
    where = where or [f"record {i + 1}" for i in range(len(records))]
    first = records[0]
    for other, name in zip(records[1:], where[1:]):
        if (other.task, other.model, other.mode) != (first.task, first.model, first.mode):
            raise DataError(f"{name}: {other.task}/{other.model}/{other.mode} is not {first.task}/{first.model}/"
                            f"{first.mode}")
    merged = RunRecord.from_dict(first.to_dict(), where[0])
    for other, name in zip(records[1:], where[1:]):
        problems = merge_problems(merged, other)
        if problems:
            raise DataError(f"{name}: {first.task}/{first.model}/{first.mode} is also in {where[0]}, and their seeds "
                            f"must not be averaged: {'; '.join(problems[:4])}; give the runs different model or mode "
                            f"names, or report them separately")
        for result in other.results:
            merged.add(result)
        merged.notes += [n for n in other.notes if n not in merged.notes]
        if "model" not in merged.config and "model" in other.config:
            merged.config["model"] = other.config["model"]
    merged.results.sort(key=lambda r: r.seed)
    merged.seeds = sorted(set(merged.seeds) | {s for r in records for s in r.seeds})
    merged.notes.append(f"seeds {', '.join(map(str, merged.done_seeds))} merged from {len(records)} run files "
                        f"(the config shown is the first file's): " + "; ".join(
                            f"{name} (seeds {', '.join(map(str, r.done_seeds)) or 'none'}; "
                            f"{r.config.get('environment', {}).get('device', 'device not recorded')}, "
                            f"hadna {r.hadna_version or '?'})" for name, r in zip(where, records)))
    return merged


def _other_json(path: Path) -> bool:
    """True for a readable JSON object without a run record's keys (a broken file is left to RunRecord.load,
    which names the problem; run records are written atomically, so one never lacks its keys)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and not {"task", "model", "mode"} <= data.keys()  # RunRecord.from_dict's keys


def load_records(paths: list[str | Path]) -> list[RunRecord]:
    """Read several run JSONs (directories are searched for ``*.json``, leaving out the epoch checkpoints
    of unfinished fine-tuning seeds in ``*.partial`` directories and JSON objects that are not run records
    at all, such as a pipeline's ``DONE.json`` or a checkpoint's ``config.json``; a file named on its own
    must be a run record, and a broken JSON file is an error either way). Files holding the same task, model
    and mode are merged into one record when :func:`merge_problems` allows, and are an error otherwise."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*.json")
                            if not any(part.endswith(".partial") for part in (p.name, *f.relative_to(p).parts[:-1]))
                            and not _other_json(f))
        else:
            files.append(p)
    if not files:
        raise MissingFileError(f"no run JSON files in {[str(p) for p in paths]}")
    files = list({f.resolve(): f for f in files}.values())  # a file reached through two of the paths counts once
    groups: dict[tuple[str, str, str], list[tuple[Path, RunRecord]]] = {}
    for f in files:
        rec = RunRecord.load(f)
        groups.setdefault((rec.task, rec.model, rec.mode), []).append((f, rec))
    return [group[0][1] if len(group) == 1 else merge_records([r for _, r in group], [str(f) for f, _ in group])
            for group in groups.values()]


# ------------------------------------------------------------------------------------------------
# Aggregation
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Aggregate:
    """Summary of per-seed values: mean, sample sd (ddof=1; None for n=1), min, max, range."""

    metric: str
    values: tuple[float, ...]
    mean: float
    sd: float | None
    min: float
    max: float

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def range(self) -> float:
        return self.max - self.min

    def cell(self, digits: int = 3, show_n: bool = False, show_range: bool = False) -> str:
        """``"0.873 ± 0.012"`` (``"0.873"`` for one seed), optionally with ``(n=3)``/range."""
        text = f"{self.mean:.{digits}f}"
        if self.sd is not None:
            text += f" ± {self.sd:.{digits}f}"
        extras = []
        if show_n:
            extras.append(f"n={self.n}")
        if show_range and self.n > 1:
            extras.append(f"range {self.range:.{digits}f}")
        return text + (f" ({', '.join(extras)})" if extras else "")


def aggregate(values: list[float], metric: str = "") -> Aggregate:
    """Mean, sample standard deviation (ddof=1) and range of per-seed ``values``."""
    vals = tuple(float(v) for v in values)
    if not vals:
        raise DataError(f"no values to aggregate for {metric or 'the metric'}")
    sd = statistics.stdev(vals) if len(vals) > 1 else None
    return Aggregate(metric=metric, values=vals, mean=statistics.fmean(vals), sd=sd, min=min(vals), max=max(vals))
