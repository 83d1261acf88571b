"""The probe summary of docs/results.md section 7 over the 18 shared tasks as configs/benchmark_shared.yaml
lists them now: the GB regulatory and OCR samples cross-validated (their `_cv` variants), every other task
as in the 18-task probe table.

    python docs/results/probe_summary.py            # from the repository root

Where the numbers come from (nothing is typed in): the snapshot docs/results/shared_eval.csv (a report of
the 18-task probe runs, whose folders were lost; seed means and sds rounded to 4 digits) for the sixteen
tasks without a `_cv` variant, and the run JSONs under docs/results/runs for the `_cv` tasks (merged by
hadna's load_records, which checks that merged seeds share protocol, data and starting weights). A `_cv`
task replaces its holdout variant only when every column has 3 probe seeds of it.
"""

from __future__ import annotations

import csv
import statistics as st
from pathlib import Path

from hadna.eval.records import load_records
from hadna.eval.results import sign_test_p
from hadna.eval.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ("HAD", "MLM", "random", "k-mer 1-6", "HyenaDNA-tiny")


def load() -> dict[str, dict[str, tuple[float, float]]]:
    """task -> {column: (mean, sd) of the test MCC over 3 probe seeds}."""
    with open(ROOT / "docs/results/shared_eval.csv", newline="") as fh:
        table = {r["task"]: {c: (float(r[f"{c} / probe mean"]), float(r[f"{c} / probe sd"])) for c in COLUMNS}
                 for r in csv.DictReader(fh)}
    cv: dict[str, dict[str, tuple[float, float]]] = {}
    for rec in load_records([ROOT / "docs/results/runs"]):
        if rec.mode == "probe" and rec.task.endswith("_cv") and rec.model in COLUMNS:
            values = rec.values("mcc")
            if len(values) >= 3:
                cv.setdefault(rec.task, {})[rec.model] = (st.mean(values), st.stdev(values))
    for task, cells in cv.items():
        held_out = task.removesuffix("_cv")
        if len(cells) == len(COLUMNS) and held_out in table:  # in place, so the task order stays the table's
            table = {(task if t == held_out else t): (cells if t == held_out else v) for t, v in table.items()}
    return table


def main() -> None:
    table = load()
    print("| task | group | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---:|" * len(COLUMNS))
    for task, cells in table.items():
        print(f"| {task} | {get_task(task).group} | "
              + " | ".join(f"{cells[c][0]:.3f} ± {cells[c][1]:.3f}" for c in COLUMNS) + " |")
    print(f"| mean over {len(table)} | | "
          + " | ".join(f"{st.mean(v[c][0] for v in table.values()):.3f}" for c in COLUMNS) + " |")
    print()
    print("| shipped HAD student's probe vs | tasks | mean MCC difference | ahead / behind | sign-test p "
          "| on par (ahead, or behind by no more than the larger seed sd) |")
    print("|---|---:|---:|---:|---:|---:|")
    for other in COLUMNS[1:]:
        d = [v["HAD"][0] - v[other][0] for v in table.values()]
        ahead, behind = sum(x > 0 for x in d), sum(x < 0 for x in d)
        par = sum(v["HAD"][0] >= v[other][0] - max(v["HAD"][1], v[other][1]) for v in table.values())
        print(f"| {other} | {len(d)} | {st.mean(d):+.3f} | {ahead} / {behind} | {sign_test_p(ahead, behind):.2g} "
              f"| {par} |")


if __name__ == "__main__":
    main()
