"""``hadna pretrain``: HAD pre-training of the student (single process or under torchrun)."""

from __future__ import annotations

import argparse

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
    p.add_argument("--config", required=True, help="YAML config (recipe: pretrain), e.g. configs/tiny.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.max_steps=100")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest intact checkpoint in the output directory")
    p.add_argument("--output-dir", default=None, help="override train.output_dir")


def load_pretrain_config(path: str, overrides: list[str]):
    from hadna.config import load_config, read_yaml
    from hadna.train.config import PretrainConfig, check_recipe

    check_recipe(read_yaml(path), "pretrain", path)
    return load_config(PretrainConfig, path, overrides)


def run(args: argparse.Namespace) -> int:
    from hadna.train.pretrain import run_pretrain

    cfg = load_pretrain_config(args.config, args.overrides)
    result = run_pretrain(cfg, resume=args.resume, output_dir=args.output_dir)
    if result.val_metrics:
        print("final validation: " + ", ".join(f"{k} {v:.4f}" for k, v in result.val_metrics.items()))
    print(f"done: {result.step} steps; student written to {result.output_dir / 'final'}")
    return 0
