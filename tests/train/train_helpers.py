"""Helpers shared by the training tests (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from hadna.config import from_dict
from hadna.train.config import PretrainConfig

REPO = Path(__file__).resolve().parents[2]
WINDOW = 64


def config_dict(genome_fasta: Path, teacher_dir: Path | None, out: Path, mode: str = "had", **train) -> dict:
    """A tiny pre-training config as a plain dict (what a YAML file would hold)."""
    return {
        "recipe": "pretrain",
        "model": {"preset": "had-tiny", "overrides": {"chunk_size": 16}},
        "data": {"fasta": [str(genome_fasta)], "window_length": WINDOW, "num_val_windows": 8, "val_fraction": 0.1,
                 "cache_dir": str(genome_fasta.parent / "genome-cache"), "seed": 3},
        "teacher": {"path": str(teacher_dir) if teacher_dir else None},
        "masking": {"mask_ratio": 0.15},
        "objective": {"mode": mode, "decoder_width": 32, "decoder_heads": 2},
        "optim": {"lr": 3e-3, "warmup_steps": 2, "min_lr_ratio": 0.1, "grad_clip": 1.0},
        "train": {"max_steps": 4, "batch_size": 8, "seed": 1, "log_every": 1, "val_every": 2, "save_every": 2,
                  "keep_last_checkpoints": 3, "output_dir": str(out), "device": "cpu", "precision": "fp32",
                  "num_threads": 1, **train},
    }


def make_config(*args, **kwargs) -> PretrainConfig:
    return from_dict(PretrainConfig, config_dict(*args, **kwargs))
