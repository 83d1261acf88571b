"""``report.md`` of a pipeline run: configuration, stage times and throughput, pre-training validation
losses, the results table and the t-SNE panel with its silhouette scores. Every number is read from the
files the stages wrote."""

from __future__ import annotations

import csv
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..config import to_dict
from ..utils.io import atomic_write_text

if TYPE_CHECKING:
    from .runner import Pipeline


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _num(v: Any, digits: int = 4) -> str:
    try:
        return f"{float(v):.{digits}f}"
    except (TypeError, ValueError):
        return "-"


def stage_table(p: "Pipeline") -> str:
    rows = ["| stage | status | wall time | throughput | notes |", "|---|---|---|---|---|"]
    for name, e in p.state.get("stages", {}).items():
        thr = e.get("throughput_nt_per_s")
        notes = []
        if "steps" in e:
            notes.append(f"{e['steps']} steps")
        if "summary" in e:
            s = e["summary"]
            notes.append(f"train {s['train']['non_repeat']}+{s['train']['repeat']}, "
                         f"test {s['test']['non_repeat']}+{s['test']['repeat']} windows")
        if "runs" in e:
            notes.append(f"{e['runs']} runs")
        rows.append(f"| {name} | {e.get('status', '-')} | {_fmt_s(e.get('seconds'))} | "
                    f"{f'{thr:,.0f} nt/s' if thr else '-'} | {'; '.join(notes)} |")
    total = sum(e.get("seconds", 0) for e in p.state.get("stages", {}).values())
    rows.append(f"| **total (stages run)** | | **{_fmt_s(total)}** | | |")
    return "\n".join(rows)


def training_table(out_dirs: dict[str, Path]) -> str:
    """First and last validation metrics of each trained model (from val_metrics.csv)."""
    rows = []
    for name, out in out_dirs.items():
        val = _read_csv(out / "val_metrics.csv")
        train = _read_csv(out / "metrics.csv")
        if not val and not train:
            continue
        keys = [k for k in (val[0] if val else {}) if k not in ("step", "elapsed_s")]
        first, last = (val[0], val[-1]) if val else ({}, {})
        loss_key = "loss"
        t0, t1 = (train[0], train[-1]) if train else ({}, {})
        rows.append((name, t0.get("step", "-"), t1.get("step", "-"), _num(t0.get(loss_key)), _num(t1.get(loss_key)),
                     "; ".join(f"{k} {_num(first.get(k))} -> {_num(last.get(k))}" for k in keys)
                     + (f" (steps {first.get('step')} -> {last.get('step')})" if val else "")))
    if not rows:
        return "(no training stage in this run)"
    out = ["| model | first step | last step | train loss first | train loss last | validation (first -> last) |",
           "|---|---|---|---|---|---|"]
    out += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} |" for r in rows]
    return "\n".join(out)


def tsne_section(run_dir: Path) -> str:
    js = run_dir / "tsne" / "tsne.json"
    if not js.is_file():
        return ""
    info = json.loads(js.read_text())
    lines = ["## t-SNE of pooled embeddings", "",
             f"{info.get('n', '?')} sequences of task `{info.get('task', '?')}` "
             f"({', '.join(f'{c}: {n}' for c, n in zip(info.get('class_names', []), info.get('class_counts', [])))}), "
             "one panel per model, coloured by class. Silhouette scores (higher = classes better separated; "
             "\"2-D\" on the t-SNE map, \"raw\" on the pooled embeddings):", "",
             "| model | silhouette 2-D | silhouette raw |", "|---|---|---|"]
    for pnl in info.get("panels", []):
        lines.append(f"| {pnl['model']} | {_num(pnl.get('silhouette_2d'), 3)} | {_num(pnl.get('silhouette_raw'), 3)} |")
    lines += ["", f"![t-SNE](tsne/{info.get('files', {}).get('png', 'tsne.png')})", ""]
    return "\n".join(lines)


def results_section(run_dir: Path) -> str:
    md = run_dir / "benchmark" / "results.md"
    if not md.is_file():
        return ""
    text = md.read_text()
    # demote the benchmark report's headings by one level so they nest under ours
    text = "\n".join(("##" + ln) if ln.startswith("#") else ln for ln in text.splitlines())
    return "## Results (hadna benchmark)\n\n" + text + "\n"


def write_pipeline_report(p: "Pipeline") -> Path:
    import torch

    import hadna

    run_dir = p.run_dir
    cfg = p.cfg
    trained: dict[str, Path] = {}
    if "teacher" in p.recipes:
        trained["teacher"] = p.teacher_dir().parent
    for name in cfg.students:
        trained[name] = p.student_dir(name).parent
    parts = [f"# hadna run: {cfg.name}", ""]
    if cfg.description:
        parts += [cfg.description.strip(), ""]
    if cfg.note:
        parts += [f"> {cfg.note.strip()}", ""]
    parts += [f"hadna {hadna.__version__}, torch {torch.__version__}, Python {platform.python_version()}, "
              f"{platform.machine()} with {torch.get_num_threads()} torch threads. Run directory: `{run_dir}`.", "",
              "## Stages", "", stage_table(p), "",
              "Stages marked \"done (earlier run)\" were completed by an earlier invocation; their time is "
              "not counted again.", "",
              "## Pre-training", "", training_table(trained), ""]
    res = results_section(run_dir)
    if res:
        parts += [res]
    ts = tsne_section(run_dir)
    if ts:
        parts += [ts]
    parts += ["## Configuration", "", "```yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False).strip(), "```", ""]
    for key, rc in p.recipes.items():
        parts += [f"<details><summary>{key} (resolved recipe config)</summary>", "", "```yaml",
                  yaml.safe_dump(to_dict(rc), sort_keys=False).strip(), "```", "</details>", ""]
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(parts))
    return path
