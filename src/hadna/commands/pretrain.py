"""``hadna pretrain``: HAD pre-training of the student (single process or under torchrun)."""

from __future__ import annotations

import argparse

from ._training import TrainingCommand

HELP = "pre-train the student by HAD (or an ablation) from a YAML config; works under torchrun"
DESCRIPTION = """Pre-train the HAD student.

  hadna pretrain --config configs/tiny.yaml
  hadna pretrain --config configs/had_1m_ntv2.yaml train.batch_size=128 optim.lr=2e-3
  torchrun --nproc_per_node=8 -m hadna.cli pretrain --config configs/had_1m_ntv2.yaml
  hadna pretrain --config configs/had_1m_ntv2.yaml --resume      # continue from the newest intact checkpoint
  hadna pretrain --config configs/had_1m_primates.yaml model.init_from=pretrained:had-1m-primates \\
      objective.mode=mlm 'data.fasta=[my_genome.fa.gz]'           # continued pre-training of a shipped student

Overrides are dotted key=value pairs applied on top of the YAML file. Outputs go to train.output_dir:
metrics.csv, val_metrics.csv, checkpoints/step-*/ and, at the end, final/ (the student as a Hugging
Face model directory)."""


COMMAND = TrainingCommand(recipe="pretrain", example_config="configs/tiny.yaml", product="student")
add_arguments = COMMAND.add_arguments


def run(args: argparse.Namespace) -> int:
    from hadna.train.pretrain import run_pretrain

    return COMMAND.run(args, run_pretrain)
