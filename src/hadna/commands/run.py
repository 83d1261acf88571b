"""``hadna run``: the whole pipeline from one config, resumable stage by stage."""

from __future__ import annotations

import argparse

HELP = "run the whole pipeline (teacher-train -> pretrain -> benchmark -> t-SNE -> report) from one config"
DESCRIPTION = """\
Chains the stages a config lists, in one run directory (runs/<name>/ by default): building labelled
tasks, training a teacher, pre-training students (HAD and baselines), benchmarking them (linear probe /
fine-tuning), t-SNE maps, and report.md with every stage's wall time and throughput, the validation
losses, the results table and the t-SNE panel with silhouette scores.

Re-running the same command resumes: finished stages are skipped, unfinished training continues from its
newest checkpoint and an unfinished benchmark from its last finished seed.

  hadna run configs/demo.yaml                     # the offline CPU demo (about 12 minutes on 2 cores)
  hadna run configs/had_1m_ntv2.yaml              # a single pre-training config works too
  hadna run configs/demo.yaml threads=1           # dotted overrides of the pipeline config
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="pipeline YAML (recipe: pipeline), or a pretrain / teacher-train config")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides of the pipeline config")
    p.add_argument("--output-dir", default=None, help="run directory (default runs/<name>)")


def run(args: argparse.Namespace) -> int:
    from hadna.pipeline import load_pipeline_config, run_pipeline

    cfg = load_pipeline_config(args.config, args.overrides)
    if args.output_dir:
        cfg.output_dir = args.output_dir
    report = run_pipeline(cfg)
    print(f"report: {report}")
    return 0
