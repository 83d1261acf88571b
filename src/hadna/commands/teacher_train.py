"""``hadna teacher-train``: train an NT-style 6-mer teacher by masked language modelling (works under torchrun)."""

from __future__ import annotations

import argparse

from ._training import TrainingCommand

HELP = "train an NT-style 6-mer teacher (ESM masked LM) on genome windows from a YAML config; works under torchrun"
DESCRIPTION = """Train an NT-style teacher for HAD distillation: a transformers EsmForMaskedLM over the Nucleotide
Transformer's 6-mer vocabulary, trained by BERT-style masked language modelling on genome windows.

  hadna teacher-train --config configs/teacher_tiny.yaml     # -> runs/teacher-tiny/final, used by configs/tiny.yaml
  hadna teacher-train --config configs/teacher_small.yaml data.fasta=[my_genome.fa.gz] --output-dir runs/my-teacher
  torchrun --nproc_per_node=8 -m hadna.cli teacher-train --config configs/teacher_small.yaml
  hadna teacher-train --config configs/teacher_small.yaml --resume   # continue from the newest intact checkpoint

Overrides are dotted key=value pairs applied on top of the YAML file. Outputs go to train.output_dir:
metrics.csv, val_metrics.csv (step 0 = before training), checkpoints/step-*/ and, at the end, final/
(loads with hadna.teachers.Teacher.from_pretrained and with transformers' Auto classes, no remote code).
Distil a student from it with `hadna pretrain --config ... teacher.path=<output_dir>/final`."""


COMMAND = TrainingCommand(recipe="teacher-train", example_config="configs/teacher_tiny.yaml", product="teacher")
add_arguments = COMMAND.add_arguments


def run(args: argparse.Namespace) -> int:
    from hadna.train.teacher_train import run_teacher_train

    return COMMAND.run(args, run_teacher_train)
