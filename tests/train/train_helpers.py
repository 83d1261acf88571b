"""Helpers shared by the training tests (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


# -- kill-and-resume: shared by the pretrain and teacher-train tests ---------------------------------------
TIMING_COLUMNS = {"nt_per_s", "elapsed_s"}


def logged_losses(path: Path) -> list[dict[str, str]]:
    """A metrics CSV without its timing columns (what must be identical between two runs)."""
    from hadna.train.metrics_log import read_csv

    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in read_csv(path)]


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hadna.cli", *args]


def sigkill_then_resume(command: str, cfg_file: Path, out: Path, kill_after_step: int) -> None:
    """Run ``hadna <command> --config cfg_file``, SIGKILL it once checkpoint ``kill_after_step`` exists,
    check it died mid-run, then resume it with ``--resume`` to completion."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(cli_command(command, "--config", str(cfg_file)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = out / "checkpoints" / f"step-{kill_after_step:07d}" / "state.json"
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]  # killed mid-run, not finished
    assert not (out / "final").exists()

    resumed = subprocess.run(cli_command(command, "--config", str(cfg_file), "--resume"), env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr


def assert_same_run(out: Path, ref: Path) -> None:
    """Two finished runs logged the same losses and saved bit-identical final weights."""
    import torch
    from safetensors.torch import load_file

    assert logged_losses(out / "metrics.csv") == logged_losses(ref / "metrics.csv")
    assert logged_losses(out / "val_metrics.csv") == logged_losses(ref / "val_metrics.csv")
    a = load_file(str(out / "final" / "model.safetensors"))
    b = load_file(str(ref / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
