"""Run records (one JSON per task, model and mode) and their aggregation over seeds.

A :class:`RunRecord` is everything one benchmark run of one model on one task produced: the config,
and for every seed the test metrics (computed on the whole test set), validation metrics, timings,
throughput (nt/s) and epochs run. It is saved as JSON atomically after every seed, so an interrupted
run can resume with :meth:`RunRecord.remaining_seeds`. :func:`load_records` reads several.

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
            return from_dict(cls, data)
        except ConfigError as exc:
            raise DataError(f"{where}: {exc}") from None

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
        return cls.from_dict(data, str(path))


def load_records(paths: list[str | Path]) -> list[RunRecord]:
    """Read several run JSONs (directories are searched for ``*.json``, leaving out the epoch checkpoints
    of unfinished fine-tuning seeds in ``*.partial`` directories); duplicates are errors."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*.json")
                            if not any(part.endswith(".partial") for part in (p.name, *f.relative_to(p).parts[:-1])))
        else:
            files.append(p)
    if not files:
        raise MissingFileError(f"no run JSON files in {[str(p) for p in paths]}")
    records, seen = [], {}
    for f in files:
        rec = RunRecord.load(f)
        key = (rec.task, rec.model, rec.mode)
        if key in seen:
            raise DataError(f"{f}: {rec.task}/{rec.model}/{rec.mode} is also in {seen[key]}; give the runs "
                            f"different model or mode names")
        seen[key] = f
        records.append(rec)
    return records


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
