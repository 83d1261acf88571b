"""``hadna finetune``: fine-tune, probe or train from scratch one model on one task, over several seeds."""

from __future__ import annotations

import argparse

HELP = "fine-tune / linear-probe / train-from-scratch one model on one task (several seeds, resumable)"
DESCRIPTION = """\
Evaluate one model on one task with the benchmark protocol: per seed a stratified 90/10
train/validation split (or the task's own validation split), training with early stopping on the
validation metric, and one evaluation of the test set with the best weights (k-fold
cross-validation for tasks without a test split). Writes <output-dir>/<task>/<model>.<mode>.json
after every seed (a rerun resumes) plus a Markdown and CSV table.

Cheap first look on a CPU: --mode probe (frozen encoder, logistic regression).

examples:
  hadna finetune --model preset:had-1m --task gue_prom_core_all --data-dir ../shared/data/benchmarks \\
      --mode probe --seeds 3 --max-train-samples 5000
  hadna finetune --model runs/pretrain/final --task human_enhancers_cohn --data-dir ~/.genomic_benchmarks
  hadna finetune --model pretrained:had-1m-primates --train-file train.csv --test-file test.csv --seeds 3
      # a file of your own: lr 1e-3, batch 32, up to 10 epochs (--lr-grid/--batch-size-grid for a grid)
  hadna finetune --model hf:path/to/nt-checkpoint --train-file train.csv --test-file test.csv --epochs 3
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from hadna.commands.options import add_model_arguments, add_protocol_arguments, add_task_arguments

    add_model_arguments(p)
    add_task_arguments(p)
    add_protocol_arguments(p)
    g = p.add_argument_group("output")
    g.add_argument("--output-dir", default="runs/eval", help="where run JSONs and tables go (default runs/eval)")
    g.add_argument("--overwrite", action="store_true", help="start again instead of resuming a run with the same name")
    g.add_argument("--published", default=None, metavar="CSV",
                   help="reference CSV of published numbers to add as columns (e.g. ../shared/reference/published_results.csv)")


def run(args: argparse.Namespace) -> int:
    from hadna.config import from_dict
    from hadna.errors import ConfigError
    from hadna.commands.options import apply_threads, load_task_from_args, protocol_overrides, task_from_args
    from hadna.eval.loaders import with_max_length
    from hadna.eval.options import parse_seeds, seeds_for
    from hadna.eval.models import parse_model_spec
    from hadna.eval.plan import ProtocolConfig
    from hadna.eval.report import render_report
    from hadna.eval.runner import run_and_report

    specs = task_from_args(args)
    if len(specs) != 1:
        raise ConfigError(f"hadna finetune runs one task, got {len(specs)} ({', '.join(s.name for s in specs)}); "
                          f"use hadna benchmark for several")
    task = specs[0]
    if args.max_length is not None and args.train_file is None:
        task = with_max_length(task, args.max_length)
    model = parse_model_spec(args.model, pooling=args.pooling, trust_remote_code=args.trust_remote_code,
                             allow_download=args.allow_download)
    count, explicit = parse_seeds(args.seeds) if args.seeds else (None, None)
    fields = protocol_overrides(args)
    fields["seeds"] = seeds_for(task.seeds, count, explicit)
    cfg = from_dict(ProtocolConfig, fields, "command line")
    apply_threads(args)
    data = load_task_from_args(task, args)
    record, path = run_and_report(data, model, cfg, args.output_dir, overwrite=args.overwrite,
                                  published_csv=args.published)
    md, _ = render_report([record], published_csv=args.published)
    print(md)
    print(f"run record: {path}\ntables: {path.with_suffix('.md')}, {path.with_suffix('.csv')}")
    return 0
