"""Result tables (CSV / Markdown) of run records, with published reference numbers.

The records and their aggregation over seeds are :mod:`hadna.eval.records` (:class:`RunRecord`,
:func:`aggregate`: mean, **sample** standard deviation with ``ddof=1``, range); their names are
importable from here too. Tables say so: Markdown cells read ``mean ± sd`` with the
number of seeds in the column header ("mean ± sd (n=5 seeds)") or, where it differs, in the cell; CSV
columns are ``<column> mean``, ``<column> sd``, ``<column> range``, ``<column> n``.

Tables (:func:`build_table`): rows = tasks (registry order, then others), columns = model/mode pairs,
each row on the task's primary metric. Several run JSONs merge into one side-by-side table
(:func:`load_records`). Published numbers from a reference CSV (columns
``benchmark,task,metric,model,params,value,source``, e.g. ``../shared/reference/published_results.csv``)
become extra columns headed ``<model> (published)``, each cell with a footnote number that points to
its source. They are matched only for Genomic Benchmarks and Nucleotide Transformer tasks with the
same metric: GUE stand-ins and custom tasks never get published columns.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError, MissingFileError
from ..utils.io import atomic_write_text
from .options import MODES
from .records import SCHEMA, Aggregate, RunRecord, SeedResult, aggregate, load_records
from .tasks import TASKS

PUBLISHED_COLUMNS = ("benchmark", "task", "metric", "model", "params", "value", "source")

# ------------------------------------------------------------------------------------------------
# Published reference numbers
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PublishedResult:
    benchmark: str
    task: str
    metric: str
    model: str
    params: str
    value: float
    source: str


def load_published(path: str | Path) -> list[PublishedResult]:
    """Read a reference CSV with columns benchmark,task,metric,model,params,value,source."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"published-results CSV not found: {path}")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        found = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in PUBLISHED_COLUMNS if c not in found]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; columns found: {found}")
        out = []
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            try:
                value = float(row["value"])
            except ValueError:
                raise DataError(f"{path}: line {line}: value {row['value']!r} is not a number") from None
            if not math.isfinite(value):
                raise DataError(f"{path}: line {line}: value {row['value']!r} is not finite")
            out.append(PublishedResult(**{c: row[c] for c in PUBLISHED_COLUMNS if c != "value"}, value=value))
    return out


# ------------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    task: str
    benchmark: str
    metric: str
    is_mean: bool = False  # a benchmark-mean row ("MEAN8"): mean of the per-task means
    group: str = ""  # histone, promoter, ... (TaskSpec.group); "" for mean rows and ungrouped tasks


@dataclass
class ResultsTable:
    """Rows = tasks; ``run_columns`` = (model, mode); ``published_models`` = extra published columns."""

    rows: list[Row]
    run_columns: list[tuple[str, str]]
    cells: dict[tuple[str, tuple[str, str]], Aggregate]
    published_models: list[str] = field(default_factory=list)
    published: dict[tuple[str, str], PublishedResult] = field(default_factory=dict)
    derived_published: set[tuple[str, str]] = field(default_factory=set)  # computed means, not copied
    notes: list[str] = field(default_factory=list)

    @staticmethod
    def column_label(col: tuple[str, str]) -> str:
        return f"{col[0]} / {col[1]}"

    def seeds_in_column(self, col: tuple[str, str]) -> set[int]:
        return {agg.n for (task, c), agg in self.cells.items() if c == col}

    def sources(self) -> list[str]:
        """Distinct sources of the published cells, in order of first use (footnote numbers = index + 1)."""
        out: list[str] = []
        for row in self.rows:
            for model in self.published_models:
                p = self.published.get((row.task, model))
                if p is not None and (row.task, model) not in self.derived_published and p.source not in out:
                    out.append(p.source)
        return out


def _task_order(task: str) -> int:
    names = list(TASKS)
    return names.index(task) if task in names else len(names)


def build_table(records: list[RunRecord], published: list[PublishedResult] | None = None, *,
                published_models: list[str] | None = None, metric: str | None = None,
                benchmark_means: bool = True) -> ResultsTable:
    """Side-by-side table of run records (+ published columns).

    ``metric``: one metric for every row (default: each task's primary metric, as recorded).
    ``published_models``: which published models to show (default: every model with a matching
    number). ``benchmark_means``: add a ``MEAN<n>`` row per benchmark whose registered tasks share one
    metric (Genomic Benchmarks: ``MEAN8``, the mean of the 8 per-task means, as HAD reports), filled
    only for columns that have all ``n`` tasks, and present only if at least one column has them all.
    """
    if not records:
        raise DataError("no run records to tabulate")
    rows: dict[str, Row] = {}
    cells: dict[tuple[str, tuple[str, str]], Aggregate] = {}
    columns: list[tuple[str, str]] = []
    first_seen: dict[str, int] = {}
    for i, rec in enumerate(records):
        m = metric or rec.metric
        row = rows.get(rec.task)
        if row is not None and row.metric != m:
            raise DataError(f"task {rec.task}: runs disagree on the primary metric ({row.metric} vs {m}); "
                            f"pass metric= to compare on one metric")
        group = rec.group or (TASKS[rec.task].group if rec.task in TASKS else "")  # records before groups existed
        rows.setdefault(rec.task, Row(rec.task, rec.benchmark, m, group=group))
        first_seen.setdefault(rec.task, i)
        col = (rec.model, rec.mode)
        if col not in columns:
            columns.append(col)
        if rec.results:
            cells[(rec.task, col)] = rec.aggregate(m)
    ordered = sorted(rows.values(), key=lambda r: (_task_order(r.task), first_seen[r.task]))

    notes: list[str] = []
    final_rows: list[Row] = []
    for bench in dict.fromkeys(r.benchmark for r in ordered):
        block = [r for r in ordered if r.benchmark == bench]
        final_rows += block
        registered = [t for t in TASKS.values() if t.benchmark == bench]
        if not (benchmark_means and bench in ("genomic_benchmarks", "nucleotide_transformer") and registered):
            continue
        metrics = {t.metric for t in registered}
        if len(metrics) != 1 or (metric is not None and metric not in metrics):
            continue
        n = len(registered)
        mean_row = Row(f"MEAN{n}", bench, metrics.pop(), is_mean=True)
        for col in columns:
            per_task = [cells.get((t.name, col)) for t in registered]
            if all(a is not None for a in per_task):
                cells[(mean_row.task, col)] = aggregate([a.mean for a in per_task], mean_row.metric)
        if not any((mean_row.task, col) in cells for col in columns):
            continue  # no column ran the whole benchmark: a mean row would be empty
        final_rows.append(mean_row)
        notes.append(f"{mean_row.task}: mean over the {n} {bench} tasks of the per-task means "
                     f"(shown only where all {n} tasks were run).")
    if any(r.benchmark == "gue" for r in final_rows):
        notes.append("gue_* rows: GUE offline stand-ins (DNABERT-2's GUE data); not Nucleotide Transformer "
                     "benchmark numbers.")

    table = ResultsTable(rows=final_rows, run_columns=columns, cells=cells, notes=notes)
    if published:
        _add_published(table, published, published_models)
    return table


def _add_published(table: ResultsTable, published: list[PublishedResult], models: list[str] | None) -> None:
    comparable = ("genomic_benchmarks", "nucleotide_transformer")
    by_key = {(p.benchmark, p.task, p.metric, p.model): p for p in published}
    chosen: list[str] = []
    for p in published:
        if models is not None and p.model not in models:
            continue
        for row in table.rows:
            if row.benchmark in comparable and (row.benchmark, row.task, row.metric, p.model) in by_key:
                if p.model not in chosen:
                    chosen.append(p.model)
    if models is not None:
        unknown = [m for m in models if m not in {p.model for p in published}]
        if unknown:
            raise ConfigError(f"published models {unknown} are not in the reference CSV "
                              f"(it has {sorted({p.model for p in published})})")
        chosen = [m for m in models if m in chosen]
    table.published_models = chosen
    for row in table.rows:
        if row.benchmark not in comparable:
            continue
        for model in chosen:
            p = by_key.get((row.benchmark, row.task, row.metric, model))
            if p is not None:
                table.published[(row.task, model)] = p
            elif row.is_mean:
                # A published per-task mean that the source does not print itself: derive and mark it.
                tasks = [t.name for t in TASKS.values() if t.benchmark == row.benchmark]
                vals = [by_key.get((row.benchmark, t, row.metric, model)) for t in tasks]
                if all(v is not None for v in vals):
                    mean = statistics.fmean(v.value for v in vals)
                    table.published[(row.task, model)] = PublishedResult(
                        row.benchmark, row.task, row.metric, model, vals[0].params, mean,
                        "computed here: mean of the published per-task values")
                    table.derived_published.add((row.task, model))


def _fmt(x: float | None, digits: int) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def to_csv(table: ResultsTable, digits: int = 6) -> str:
    """CSV text: task, benchmark, metric, then per run column mean/sd/range/n, then published columns.

    Six digits by default: the CSV is read by scripts that round again for display, and a 4-digit mean
    such as 0.5975 (of 0.597499...) would print as 0.598 where the Markdown report says 0.597."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["task", "benchmark", "metric"]
    for col in table.run_columns:
        label = table.column_label(col)
        header += [f"{label} mean", f"{label} sd", f"{label} range", f"{label} n"]
    for model in table.published_models:
        header += [f"{model} (published)", f"{model} (published) source"]
    w.writerow(header)
    for row in table.rows:
        line = [row.task, row.benchmark, row.metric]
        for col in table.run_columns:
            agg = table.cells.get((row.task, col))
            if agg is None:
                line += ["", "", "", ""]
            elif row.is_mean:
                line += [_fmt(agg.mean, digits), "", "", ""]
            else:
                line += [_fmt(agg.mean, digits), _fmt(agg.sd, digits), _fmt(agg.range, digits), str(agg.n)]
        for model in table.published_models:
            p = table.published.get((row.task, model))
            line += ["", ""] if p is None else [_fmt(p.value, digits), p.source]
        w.writerow(line)
    return buf.getvalue()


def to_markdown(table: ResultsTable, digits: int = 3, show_range: bool = False) -> str:
    """Markdown table with a legend: mean ± sd (n seeds), published columns with source footnotes."""
    headers = ["task", "metric"]
    uniform_n: dict[tuple[str, str], int | None] = {}
    for col in table.run_columns:
        ns = {agg.n for (task, c), agg in table.cells.items()
              if c == col and not any(r.is_mean and r.task == task for r in table.rows)}
        uniform_n[col] = ns.pop() if len(ns) == 1 else None
        n_text = f"n={uniform_n[col]} seeds" if uniform_n[col] is not None else "n seeds per cell"
        headers.append(f"{table.column_label(col)}: mean ± sd ({n_text})")
    sources = table.sources()
    headers += [f"{m} (published)" for m in table.published_models]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(headers) - 2)) + "|"]
    for row in table.rows:
        cells = [f"**{row.task}**" if row.is_mean else row.task, row.metric]
        for col in table.run_columns:
            agg = table.cells.get((row.task, col))
            if agg is None:
                cells.append("—")
            elif row.is_mean:
                cells.append(f"{agg.mean:.{digits}f}")
            else:
                cells.append(agg.cell(digits, show_n=uniform_n[col] is None, show_range=show_range))
        for model in table.published_models:
            p = table.published.get((row.task, model))
            if p is None:
                cells.append("—")
            elif (row.task, model) in table.derived_published:
                cells.append(f"{p.value:.{digits}f}*")
            else:
                cells.append(f"{p.value:.{digits}f} [{sources.index(p.source) + 1}]")
        lines.append("| " + " | ".join(cells) + " |")
    legend = ["", "Cells: mean ± sd over seeds, where sd is the sample standard deviation (ddof=1) "
                  "and n is the number of seeds" + (" (max - min range in parentheses)" if show_range else "")
              + "; a single seed shows its value only. — = not run (published columns: not reported)."]
    if table.published_models:
        legend.append("Published columns are numbers reported in the literature, not re-run here; sources:")
        legend += [f"[{i}] {s}" for i, s in enumerate(sources, start=1)]
        if table.derived_published:
            legend.append("\\* computed here as the mean of the published per-task values.")
    legend += table.notes
    return "\n".join(lines) + "\n" + "\n\n".join(legend) + "\n"


def group_means(table: ResultsTable) -> list[tuple[str, str, list[str], dict[tuple[str, str], list[float]]]]:
    """Per (task group, metric): the group's tasks and, per run column, the per-task means it has.

    Groups come from :attr:`TaskSpec.group` (``other`` where a task has none), in order of first row;
    a group whose tasks use different metrics is split by metric, since an accuracy and an MCC do not
    average. Benchmark-mean rows are left out.
    """
    order: dict[tuple[str, str], list[str]] = {}
    for row in table.rows:
        if not row.is_mean:
            order.setdefault((row.group or "other", row.metric), []).append(row.task)
    out = []
    for (group, metric), tasks in order.items():
        per_col = {col: [table.cells[(t, col)].mean for t in tasks if (t, col) in table.cells]
                   for col in table.run_columns}
        out.append((group, metric, tasks, per_col))
    return out


def group_markdown(table: ResultsTable, digits: int = 3) -> str:
    """Markdown summary by task group: the mean of the per-task means of each column, with how many of
    the group's tasks it covers where that is not all of them."""
    groups = group_means(table)
    headers = ["group", "metric", "tasks", *(table.column_label(c) for c in table.run_columns)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(headers) - 2)) + "|"]
    for group, metric, tasks, per_col in groups:
        cells = [group, metric, str(len(tasks))]
        for col in table.run_columns:
            vals = per_col[col]
            if not vals:
                cells.append("—")
            else:
                text = f"{statistics.fmean(vals):.{digits}f}"
                cells.append(text if len(vals) == len(tasks) else f"{text} ({len(vals)} of {len(tasks)})")
        lines.append("| " + " | ".join(cells) + " |")
    legend = ("Cells: the mean over the group's tasks of each task's mean over seeds; \"(k of n)\" where a "
              "column ran only k of the group's n tasks, so such cells are not comparable with full ones.")
    return "\n".join(lines) + "\n\n" + legend + "\n"


# ------------------------------------------------------------------------------------------------
# Paired comparisons of two columns over the tasks both ran
# ------------------------------------------------------------------------------------------------

def resolve_columns(table: ResultsTable, name: str) -> list[tuple[str, str]]:
    """The run columns that ``name`` means: a model name exactly as in the table (every mode it ran), or
    ``<model>/<mode>`` for one mode. Raises :class:`ConfigError` naming the columns there are."""
    exact = [c for c in table.run_columns if c[0] == name]
    if exact:
        return exact
    model, _, mode = name.rpartition("/")
    if mode in MODES and (model, mode) in table.run_columns:
        return [(model, mode)]
    known = ", ".join(sorted({c[0] for c in table.run_columns}))
    raise ConfigError(f"--compare: no column {name!r} in these runs; models: {known} "
                      f"(a model name, or <model>/<mode> with mode in {list(MODES)})")


@dataclass(frozen=True)
class PairedComparison:
    """Column ``a`` minus column ``b`` over the tasks (not mean rows) where both have a result.

    ``ahead_beyond_sd``: tasks where ``a`` leads by more than ``a``'s own seed sd (0 where ``a`` has one
    seed). ``sign_p``: two-sided exact sign test of "ahead" against "behind" (ties dropped), i.e. how
    surprising this many tasks ahead would be if neither column were better.
    """

    a: tuple[str, str]
    b: tuple[str, str]
    metric: str
    tasks: tuple[str, ...]
    diffs: tuple[float, ...]
    ahead: int
    behind: int
    ahead_beyond_sd: int
    sign_p: float

    @property
    def mean_diff(self) -> float:
        return statistics.fmean(self.diffs)


def sign_test_p(ahead: int, behind: int) -> float:
    """Two-sided exact binomial sign test, p = P(|X - n/2| >= |ahead - n/2|), X ~ Bin(n, 1/2)."""
    n = ahead + behind
    if n == 0:
        return 1.0
    k = min(ahead, behind)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_comparisons(table: ResultsTable, a: str, b: str) -> list[PairedComparison]:
    """Paired differences of ``a`` against ``b`` (names as :func:`resolve_columns`), one per metric and
    column pair: where both name several modes, mode with mode (probe vs probe, finetune vs finetune);
    where one side is a single column (e.g. a k-mer probe), every column of the other against it."""
    cols_a, cols_b = resolve_columns(table, a), resolve_columns(table, b)
    if len(cols_a) == 1 or len(cols_b) == 1:
        pairs = [(ca, cb) for ca in cols_a for cb in cols_b]
    else:
        pairs = [(ca, cb) for ca in cols_a for cb in cols_b if ca[1] == cb[1]]
    out = []
    for ca, cb in pairs:
        if ca == cb:
            raise ConfigError(f"--compare: {a!r} and {b!r} are the same column")
        by_metric: dict[str, list[Row]] = {}
        for row in table.rows:
            if not row.is_mean and (row.task, ca) in table.cells and (row.task, cb) in table.cells:
                by_metric.setdefault(row.metric, []).append(row)
        for metric, rows in by_metric.items():
            diffs = [table.cells[(r.task, ca)].mean - table.cells[(r.task, cb)].mean for r in rows]
            sds = [table.cells[(r.task, ca)].sd or 0.0 for r in rows]
            ahead, behind = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
            out.append(PairedComparison(
                a=ca, b=cb, metric=metric, tasks=tuple(r.task for r in rows), diffs=tuple(diffs),
                ahead=ahead, behind=behind, ahead_beyond_sd=sum(d > s for d, s in zip(diffs, sds) if s > 0),
                sign_p=sign_test_p(ahead, behind)))
    if not out:
        raise ConfigError(f"--compare {a} {b}: no task has results in both")
    return out


def comparisons_markdown(comparisons: list[PairedComparison], table: ResultsTable, digits: int = 3) -> str:
    """Markdown table of paired comparisons (one row each)."""
    lines = ["| comparison | metric | tasks | mean difference | ahead | behind | ahead beyond 1 sd | sign test p |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for c in comparisons:
        label = f"{table.column_label(c.a)} − {table.column_label(c.b)}"
        lines.append(f"| {label} | {c.metric} | {len(c.tasks)} | {c.mean_diff:+.{digits}f} | {c.ahead} | "
                     f"{c.behind} | {c.ahead_beyond_sd} | {c.sign_p:.3g} |")
    legend = ("Over the tasks where both columns have a result (benchmark-mean rows left out): the mean of the "
              "per-task differences of the seed means; ahead / behind: tasks where the first column's mean is "
              "higher / lower; ahead beyond 1 sd: by more than the first column's seed sd; sign test p: "
              "two-sided exact binomial test of ahead against behind (ties dropped). Tasks are not "
              "independent draws from one population, so read p as a yardstick, not a guarantee.")
    return "\n".join(lines) + "\n\n" + legend + "\n"


def write_csv(table: ResultsTable, path: str | Path, digits: int = 4) -> Path:
    atomic_write_text(path, to_csv(table, digits))
    return Path(path)


def write_markdown(table: ResultsTable, path: str | Path, digits: int = 3, show_range: bool = False) -> Path:
    atomic_write_text(path, to_markdown(table, digits, show_range))
    return Path(path)


def merge_runs(paths: list[str | Path], published_csv: str | Path | None = None, **kwargs: Any) -> ResultsTable:
    """Load run JSONs (files or directories) and an optional reference CSV into one table."""
    published = load_published(published_csv) if published_csv is not None else None
    return build_table(load_records(paths), published, **kwargs)


__all__ = [
    "SCHEMA", "SeedResult", "RunRecord", "load_records", "Aggregate", "aggregate", "PublishedResult",
    "load_published", "Row", "ResultsTable", "build_table", "to_csv", "to_markdown", "write_csv",
    "write_markdown", "merge_runs", "PairedComparison", "paired_comparisons", "comparisons_markdown",
    "resolve_columns", "sign_test_p",
]
