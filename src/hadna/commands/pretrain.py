"""``hadna pretrain``: HAD pre-training of the student (single process or under torchrun)."""

from __future__ import annotations

import argparse

from ._training import add_training_arguments, load_recipe_config, report_training

HELP = "pre-train the student by HAD (or an ablation) from a YAML config; works under torchrun"
DESCRIPTION = """Pre-train the HAD student.

  hadna pretrain --config configs/tiny.yaml
  hadna pretrain --config configs/had_1m_ntv2.yaml train.batch_size=128 optim.lr=2e-3
  torchrun --nproc_per_node=8 -m hadna.cli pretrain --config configs/had_1m_ntv2.yaml
  hadna pretrain --config configs/had_1m_ntv2.yaml --resume      # continue from the newest intact checkpoint

Overrides are dotted key=value pairs applied on top of the YAML file. Outputs go to train.output_dir:
metrics.csv, val_metrics.csv, checkpoints/step-*/ and, at the end, final/ (the student as a Hugging
Face model directory)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_training_arguments(p, "pretrain", "configs/tiny.yaml")


def load_pretrain_config(path: str, overrides: list[str]):
    from hadna.train.config import PretrainConfig

    return load_recipe_config(PretrainConfig, "pretrain", path, overrides)


def run(args: argparse.Namespace) -> int:
    from hadna.train.pretrain import run_pretrain

    cfg = load_pretrain_config(args.config, args.overrides)
    return report_training(run_pretrain(cfg, resume=args.resume, output_dir=args.output_dir), "student")
