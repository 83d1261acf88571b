"""Result reports: the side-by-side table of :mod:`hadna.eval.results` plus what each run actually did.

A benchmark number means little without its protocol, so every Markdown report has these parts:

1. the results table (``mean ± sd`` over seeds, sample sd, with the max - min range; published
   columns marked "(published)" with their sources), from :func:`hadna.eval.results.to_markdown`;
2. a protocol table, one row per run: how it was evaluated (test split or k-fold cross-validation),
   sample counts and caps, epochs, how the learning rate / batch size were chosen, seeds done, the
   time of its seeds summed (compute, not elapsed time: seeds may have run in parallel) and throughput,
   model size;
3. for fine-tuning runs, how training went: epochs, the best epoch and whether the epoch cap was
   binding, training loss, validation vs test metric, and how far each block's weights moved;
4. the notes of the runs (data provenance, held-out or cross-validated splits, capped test sets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..utils.io import atomic_write_text
from ..utils.logging import format_duration
from .records import RunRecord, load_records
from .results import (build_table, comparisons_markdown, group_markdown, load_published, paired_comparisons, to_csv,
                      to_markdown)


def _fmt_n(values: list[int]) -> str:
    if not values:
        return "—"
    lo, hi = min(values), max(values)
    return f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"


def _units(rec: RunRecord) -> list[dict[str, Any]]:
    """Per-unit extras of every seed (a seed has one unit, or one per fold)."""
    out = []
    for r in rec.results:
        out += r.extra.get("folds", [r.extra])
    return out


def protocol_row(rec: RunRecord) -> dict[str, str]:
    """What one run did, as table cells."""
    eff = rec.config.get("effective", {})
    units = _units(rec)
    if eff.get("evaluation") == "cv":
        evaluation = f"{eff.get('cv_folds')}-fold CV (no test split)"
    else:
        evaluation = "test split"
        cap = (eff.get("caps") or {}).get("max_test_samples")
        if cap is not None and units and units[0].get("n_test") is not None:
            full = rec.data.get("splits", {}).get("test", {}).get("n")
            if full is not None and units[0]["n_test"] < full:
                evaluation = f"CAPPED test subset ({units[0]['n_test']:,} of {full:,})"
    if rec.mode == "probe":
        probe = eff.get("probe", {})
        training = f"logistic regression, C ∈ {probe.get('c_grid')} on validation"
        chosen = sorted({u.get("C") for u in units if u.get("C") is not None})
        selected = "C = " + ", ".join(f"{c:g}" for c in chosen) if chosen else "—"
    else:
        ft = eff.get("finetune", {})
        epochs_run = [r.epochs_run for r in rec.results if r.epochs_run is not None]
        training = (f"≤{ft.get('epochs')} epochs (ran {_fmt_n(epochs_run)}), patience {ft.get('patience')}, "
                    f"{ft.get('schedule')} schedule" + "".join(f", {t}" for t in _recipe_options(ft)))
        if ft.get("selection") == "fixed":
            selected = f"fixed lr {ft['lr_grid'][0]:g}, batch {ft['batch_size_grid'][0]}"
        else:
            picks = sorted({(u.get("lr"), u.get("batch_size")) for u in units})
            selected = (f"grid lr {ft.get('lr_grid')} × batch {ft.get('batch_size_grid')} on validation; chose "
                        + ", ".join(f"{lr:g}/{bs}" for lr, bs in picks))
    caps = eff.get("caps") or {}
    names = {"max_train_samples": "pool" if eff.get("evaluation") == "cv" else "train",
             "max_val_samples": "val", "max_test_samples": "test"}
    cap_text = ", ".join(f"{names.get(k, k)} ≤ {v:,}" for k, v in caps.items() if v)
    seed_time = sum(r.timings.get("total", 0.0) for r in rec.results)  # compute: seeds may have run in parallel
    rates = [r.nt_per_s for r in rec.results if r.nt_per_s]
    rate_kind = "embed" if rec.mode == "probe" else "train"
    params = (rec.config.get("model") or {}).get("encoder_parameters")
    return {
        "task": rec.task, "run": f"{rec.model} / {rec.mode}", "evaluation": evaluation,
        "n train / val / test": " / ".join(_fmt_n([u[k] for u in units if k in u])
                                           for k in ("n_train", "n_val", "n_test")),
        "caps": cap_text or "none", "training": training, "selection": selected,
        "seeds": f"{len(rec.results)} of {len(rec.seeds)}: {rec.done_seeds}",
        "time (sum of seeds)": format_duration(seed_time), "nt/s": f"{np.mean(rates):,.0f} ({rate_kind})" if rates else "—",
        "encoder params": f"{params:,}" if params else "—",
    }


def _rows_markdown(rows: list[dict[str, str]]) -> str:
    """Rows of cells (the first row's keys are the headers) as a Markdown table; "" for no rows."""
    if not rows:
        return ""
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row[h] for h in headers) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def protocol_markdown(records: list[RunRecord]) -> str:
    return _rows_markdown([protocol_row(r) for r in records])


def _trained_units(rec: RunRecord) -> list[tuple[dict[str, Any], dict[str, float]]]:
    """(grid point chosen on validation, test metrics) of every trained unit: a seed, or a fold of one."""
    out = []
    for r in rec.results:
        folds = r.extra.get("folds")
        for unit, test in ([(f, f.get("test", {})) for f in folds] if folds else [(r.extra, r.metrics)]):
            grid = unit.get("grid") or []
            chosen = [g for g in grid if (g.get("lr"), g.get("batch_size")) == (unit.get("lr"), unit.get("batch_size"))]
            if chosen and chosen[0].get("history"):
                out.append((chosen[0], test))
    return out


def _recipe_options(ft: dict[str, Any]) -> list[str]:
    """The fine-tuning options a run set away from the default recipe, in words (for the protocol table)."""
    out = []
    if ft.get("head_init") == "probe":
        out.append("head from the probe (LP-FT)")
    if ft.get("head_dropout") is not None:
        out.append(f"head dropout {ft['head_dropout']:g}")
    if ft.get("backbone_lr_ratio", 1.0) != 1.0:
        out.append(f"encoder lr × {ft['backbone_lr_ratio']:g}")
    if ft.get("rc_augment"):
        out.append("RC augmentation")
    if ft.get("rc_test"):
        out.append("RC-averaged predictions")
    return out


def dynamics_row(rec: RunRecord, metric: str | None = None) -> dict[str, str] | None:
    """How the fine-tuning runs of ``rec`` trained, averaged over its units; None if nothing to show.

    Cells: units (seeds x folds), best epoch of each unit and how many of them peaked at the epoch cap
    (more epochs might have helped), early stops, mean training loss at the first and last epoch, the
    validation metric at the best epoch next to the test metric (the gap is the selection optimism plus
    the split's noise), and the mean relative weight change ``|w_end - w_start| / |w_start|`` per block.
    """
    units = _trained_units(rec)
    if rec.mode == "probe" or not units:
        return None
    metric = metric or rec.metric
    cap = (rec.config.get("effective", {}).get("finetune") or {}).get("epochs")
    best = [g["best_epoch"] for g, _ in units]
    at_cap = sum(b == cap for b in best) if cap else None
    first = np.mean([g["history"][0]["train_loss"] for g, _ in units])
    last = np.mean([g["history"][-1]["train_loss"] for g, _ in units])
    val = [g["val"][metric] for g, _ in units if metric in g.get("val", {})]
    test = [t[metric] for _, t in units if metric in t]
    blocks: dict[str, list[float]] = {}
    for g, _ in units:
        for name, v in (g.get("weight_change") or {}).items():
            blocks.setdefault(name, []).append(v)
    prefix = _common_prefix(list(blocks))
    moved = ", ".join(f"{name.removeprefix(prefix)} {np.mean(v):.2f}" for name, v in blocks.items())
    return {
        "task": rec.task, "run": f"{rec.model} / {rec.mode}", "units": str(len(units)),
        "best epoch": ", ".join(map(str, best)) + (f" (cap {cap}: {at_cap} at cap)" if cap else ""),
        "early stops": str(sum(bool(g.get("stopped_early")) for g, _ in units)),
        "train loss, first → last epoch": f"{first:.3f} → {last:.3f}",
        f"val {metric} (best epoch) / test {metric}": (f"{np.mean(val):.3f} / {np.mean(test):.3f}"
                                                      if val and test else "—"),
        "weight change per block": moved or "—",
    }


def _common_prefix(names: list[str]) -> str:
    """The leading ``name.`` every dotted block name shares (``had.``), dropped to keep the table narrow;
    undotted names (the ``classifier`` head) do not count."""
    dotted = [n for n in names if "." in n]
    heads = {n.split(".", 1)[0] for n in dotted}
    return heads.pop() + "." if len(dotted) >= 2 and len(heads) == 1 else ""


def dynamics_markdown(records: list[RunRecord], metric: str | None = None) -> str:
    """The :func:`dynamics_row` of every fine-tuning run as a Markdown table ("" when there is none)."""
    return _rows_markdown([row for rec in records if (row := dynamics_row(rec, metric)) is not None])


def notes_markdown(records: list[RunRecord]) -> str:
    """Run notes, each note once per task (with the runs it applies to when not all of them)."""
    by_task: dict[str, dict[str, list[str]]] = {}
    for rec in records:
        for note in dict.fromkeys(rec.notes):
            by_task.setdefault(rec.task, {}).setdefault(note, []).append(f"{rec.model} / {rec.mode}")
    lines = []
    for task, notes in by_task.items():
        n_runs = sum(1 for r in records if r.task == task)
        for note, runs in notes.items():
            scope = "" if len(runs) == n_runs else f" ({'; '.join(runs)})"
            lines.append(f"- **{task}**{scope}: {note}")
    return "\n".join(lines) + "\n"


def render_report(records: list[RunRecord], published_csv: str | Path | None = None,
                  published_models: list[str] | None = None, metric: str | None = None,
                  title: str | None = None, compare: list[tuple[str, str]] | None = None) -> tuple[str, str]:
    """(Markdown, CSV) of ``records`` side by side, with published columns when a CSV is given.

    ``compare``: pairs ``(a, b)`` of a model name or ``<model>/<mode>``; each adds rows to a "Paired
    comparisons" section (``a - b`` over the tasks both ran, see :func:`paired_comparisons`).
    """
    published = load_published(published_csv) if published_csv is not None else None
    table = build_table(records, published, published_models=published_models, metric=metric)
    md = [f"# {title}\n" if title else "", to_markdown(table, show_range=True),
          "\n## By task group\n\n", group_markdown(table),
          *(["\n## Paired comparisons\n\n",
             comparisons_markdown([c for a, b in compare for c in paired_comparisons(table, a, b)], table)]
            if compare else []),
          "\n## Protocol of each run\n\n", protocol_markdown(records),
          *(["\n## How each fine-tuning run trained\n\n", dynamics] if (dynamics := dynamics_markdown(
              records, metric)) else []),
          "\n## Notes\n\n", notes_markdown(records)]
    return "".join(md), to_csv(table)


def write_report(records: list[RunRecord], md_path: str | Path, csv_path: str | Path | None = None,
                 **kwargs: Any) -> tuple[Path, Path | None]:
    md, csv_text = render_report(records, **kwargs)
    atomic_write_text(md_path, md)
    if csv_path is not None:
        atomic_write_text(csv_path, csv_text)
    return Path(md_path), Path(csv_path) if csv_path is not None else None


def report_from_paths(paths: list[str | Path], **kwargs: Any) -> tuple[str, str]:
    """Load run JSONs (files or directories searched recursively) and render them."""
    return render_report(load_records(list(paths)), **kwargs)
