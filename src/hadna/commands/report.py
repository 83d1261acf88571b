"""``hadna report``: merge run JSONs into one side-by-side table, with published columns if asked."""

from __future__ import annotations

import argparse

HELP = "merge run JSONs (files or directories) into one Markdown/CSV table, optionally with published numbers"
DESCRIPTION = """\
Tabulates run records written by hadna finetune / benchmark side by side: rows = tasks, columns =
model / mode, cells = mean ± sample sd over seeds (max-min range in parentheses), followed by the
protocol of every run and its notes. Seeds of one task, model and mode found in several files (run in
parallel, or on other machines) are merged into one cell when their protocol, task data and starting weights
agree, and refused with what differs otherwise. With --published, numbers from a reference CSV (columns
benchmark,task,metric,model,params,value,source) become extra columns marked "(published)"; they are
matched only for Genomic Benchmarks / Nucleotide Transformer tasks with the same metric.

With --compare A B (repeatable), a "Paired comparisons" section gives A - B over the tasks both ran:
mean difference, tasks ahead / behind, ahead by more than A's seed sd, and a sign-test p. A and B are
model names as in the table (every mode both ran) or <model>/<mode> (e.g. "HAD/finetune").

examples:
  hadna report runs/eval/smoke --published ../shared/reference/published_results.csv --out results.md
  hadna report ~/hadna-runs/eval-shared --metric mcc --compare HAD MLM --compare HAD/finetune "k-mer 1-6/probe"
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN_JSON_OR_DIR", help="run JSON files or directories (searched recursively)")
    p.add_argument("--published", default=None, metavar="CSV", help="published-results CSV")
    p.add_argument("--published-models", default=None, metavar="LIST",
                   help="only these published models (comma-separated; default: all that match)")
    p.add_argument("--metric", default=None, choices=("accuracy", "mcc", "f1"),
                   help="one metric for every row (default: each task's primary metric)")
    p.add_argument("--compare", nargs=2, action="append", default=None, metavar=("A", "B"),
                   help="add paired differences A - B over shared tasks (repeatable; A, B: model or model/mode)")
    p.add_argument("--title", default=None, help="heading of the Markdown report")
    p.add_argument("--out", default=None, metavar="MD", help="write Markdown here (default: print it)")
    p.add_argument("--csv", default=None, metavar="CSV", help="also write the numbers as CSV")


def run(args: argparse.Namespace) -> int:
    from hadna.eval.options import parse_list
    from hadna.eval.report import report_from_paths
    from hadna.utils.io import atomic_write_text

    models = parse_list(args.published_models, str, "--published-models") if args.published_models else None
    md, csv_text = report_from_paths(args.runs, published_csv=args.published, published_models=models,
                                     metric=args.metric, title=args.title,
                                     compare=[tuple(pair) for pair in args.compare] if args.compare else None)
    if args.out:
        atomic_write_text(args.out, md)
        print(f"wrote {args.out}")
    else:
        print(md)
    if args.csv:
        atomic_write_text(args.csv, csv_text)
        print(f"wrote {args.csv}")
    return 0
