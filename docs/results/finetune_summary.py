"""The fine-tuning summary of docs/results.md section 7: the shipped HAD student fine-tuned, against the
k-mer 1-6 and HyenaDNA-tiny probes and the MLM and random-init fine-tunes, over every shared task that has
3 fine-tuning seeds for all three students.

    python docs/results/finetune_summary.py            # from the repository root

Where the numbers come from (nothing is typed in except H4's seed 1, see below):
- run JSONs under docs/results/runs (every run from 2026-12-01 on), merged across folders by hadna's
  load_records, which checks that the merged seeds share protocol, data and starting weights;
- for runs older than that, whose folders were lost, the snapshot docs/results/shared_eval.csv (a report of
  those folders, seed means rounded to 4 digits, so a cell here can differ by 0.001 from the Markdown
  report where the 4th digit is 5: H3's k-mer probe, 0.5975 in the snapshot, prints 0.598 here and 0.597
  in docs/results.md, whose report rounded 0.59749...): the probes of all 18 tasks and the fine-tunes of the four promoter
  tasks and H3;
- H4: seeds 2-3 from the run JSONs; seed 1 from docs/results.md's H4 table (its folder was lost).
A task enters the summary only when HAD, MLM and random init each have 3 fine-tuning seeds. The GB regulatory
and OCR samples enter cross-validated (their `_cv` variants, fine-tunes and probes from the run JSONs) in
place of their 20% holdout once those fine-tunes have 3 seeds of every student.
"""

from __future__ import annotations

import csv
import statistics as st
from pathlib import Path

from hadna.eval.records import load_records
from hadna.eval.results import sign_test_p
from hadna.eval.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
STUDENTS = ("HAD", "MLM", "random")
PROBES = ("k-mer 1-6", "HyenaDNA-tiny")
H4_SEED1 = {"HAD": 0.715, "MLM": 0.743, "random": 0.741}  # docs/results.md, "H4" table (folder lost)


def load() -> dict[str, dict[str, float]]:
    """task -> {column: mean test MCC} for the tasks with 3 fine-tuning seeds of every student."""
    with open(ROOT / "docs/results/shared_eval.csv", newline="") as fh:
        snapshot = {r["task"]: r for r in csv.DictReader(fh)}
    seeds: dict[tuple[str, str], list[float]] = {}
    cv_probes: dict[str, dict[str, float]] = {}
    for rec in load_records([ROOT / "docs/results/runs"]):
        if rec.mode == "finetune" and rec.model in STUDENTS:
            seeds[(rec.task, rec.model)] = rec.values("mcc")
            if rec.task == "gue_emp_H4" and 1 not in rec.done_seeds:  # typed in only while its record is lost
                seeds[(rec.task, rec.model)].insert(0, H4_SEED1[rec.model])
        elif rec.mode == "probe" and rec.model in PROBES and rec.task.endswith("_cv") and len(rec.values("mcc")) >= 3:
            cv_probes.setdefault(rec.task, {})[rec.model] = st.mean(rec.values("mcc"))
    # a cross-validated variant (docs/results/probe_summary.py) takes its holdout task's place, in place, once
    # every student has 3 fine-tuning seeds of it and both probes ran
    for task, probes in cv_probes.items():
        held_out = task.removesuffix("_cv")
        if len(probes) == len(PROBES) and all(len(seeds.get((task, m), [])) >= 3 for m in STUDENTS):
            snapshot = {(task if t == held_out else t): ({**r, **{f"{p} / probe mean": v for p, v in probes.items()}}
                                                       if t == held_out else r) for t, r in snapshot.items()}
    table = {}
    for task, row in snapshot.items():
        cells = {}
        for model in STUDENTS:
            if (task, model) in seeds:
                values = seeds[(task, model)]
                cells[model] = st.mean(values) if len(values) >= 3 else None
            elif row.get(f"{model} / finetune n") == "3":
                cells[model] = float(row[f"{model} / finetune mean"])
            else:
                cells[model] = None
        if all(v is not None for v in cells.values()):
            cells.update({p: float(row[f"{p} / probe mean"]) for p in PROBES})
            table[task] = cells
    return table


def main() -> None:
    table = load()
    if not table:
        raise SystemExit("no task has 3 fine-tuning seeds of HAD, MLM and random init")
    cols = [*STUDENTS, *PROBES]
    print("| task | group | " + " | ".join(f"{c} ({'fine-tuned' if c in STUDENTS else 'probe'})" for c in cols)
          + " |")
    print("|---|---|" + "---:|" * len(cols))
    for task, cells in table.items():
        print(f"| {task} | {get_task(task).group} | " + " | ".join(f"{cells[c]:.3f}" for c in cols) + " |")
    print(f"| mean over {len(table)} | | " + " | ".join(f"{st.mean(v[c] for v in table.values()):.3f}"
                                                     for c in cols) + " |")
    print()
    print("| shipped HAD student fine-tuned vs | tasks | mean MCC difference | ahead / behind | sign-test p |")
    print("|---|---:|---:|---:|---:|")
    for other in ("k-mer 1-6", "HyenaDNA-tiny", "random", "MLM"):
        d = [v["HAD"] - v[other] for v in table.values()]
        ahead, behind = sum(x > 0 for x in d), sum(x < 0 for x in d)
        label = other + (" probe" if other in PROBES else ", fine-tuned")
        print(f"| {label} | {len(d)} | {st.mean(d):+.3f} | {ahead} / {behind} | {sign_test_p(ahead, behind):.2g} |")
    print()
    groups: dict[str, list[str]] = {}
    for task in table:
        groups.setdefault(get_task(task).group, []).append(task)
    print("| group | tasks | " + " | ".join(cols) + " |")
    print("|---|---:|" + "---:|" * len(cols))
    for group, tasks in groups.items():
        print(f"| {group} | {len(tasks)} | "
              + " | ".join(f"{st.mean(table[t][c] for t in tasks):.3f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
