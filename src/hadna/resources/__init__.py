"""Data shipped with hadna (a small real human DNA sample for the offline demo)."""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent
GENOME_SAMPLE_PRETRAIN = RESOURCES / "genome" / "hsap_chr22_sample.pretrain.fa.gz"
GENOME_SAMPLE_TASK = RESOURCES / "genome" / "hsap_chr22_sample.task.fa.gz"
