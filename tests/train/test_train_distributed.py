"""Data parallelism and gradient accumulation give the single-process, single-batch losses.

Losses are normalised by the GLOBAL counts of the step (masked nucleotides, visible teacher tokens),
so 2 ranks x 2 micro-batches must reproduce 1 process x 1 batch up to float summation order.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from hadna.train.metrics_log import read_csv
from hadna.train.pretrain import HadPretraining, run_pretrain
from train_helpers import REPO, config_dict, make_config

LOSS_COLUMNS = ("loss", "recon_loss", "distill_loss", "recon_acc", "masked_nt", "grad_norm", "lr")


def _columns(path: Path) -> dict[str, np.ndarray]:
    rows = read_csv(path)
    return {c: np.array([float(r[c]) for r in rows]) for c in LOSS_COLUMNS}


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray], rtol: float) -> None:
    for c in LOSS_COLUMNS:
        np.testing.assert_allclose(a[c], b[c], rtol=rtol, atol=1e-7, err_msg=c)


def test_samples_and_masks_do_not_depend_on_rank_or_micro_batch_placement(tmp_path, genome_fasta, teacher_dir):
    task = HadPretraining(make_config(genome_fasta, teacher_dir, tmp_path / "run"))
    whole = task.batch_fn(3, 0, 1, 1)[0]
    parts = [mb for r in range(2) for mb in task.batch_fn(3, r, 2, 2)]
    assert [len(p.indices) for p in parts] == [2, 2, 2, 2]
    assert np.concatenate([p.indices for p in parts]).tolist() == list(range(24, 32))
    for key in ("input_ids", "masked", "targets", "teacher_masked"):
        glued = [getattr(p.masked, key) for p in parts]
        width = max(g.shape[1] for g in glued)
        import torch

        glued = torch.cat([torch.nn.functional.pad(g, (0, width - g.shape[1])) for g in glued])
        ref = getattr(whole.masked, key)
        assert torch.equal(glued[:, :ref.shape[1]], ref), key


def test_gradient_accumulation_equals_one_big_batch(tmp_path, genome_fasta, teacher_dir):
    common = dict(max_steps=4, val_every=0, save_every=0)
    run_pretrain(make_config(genome_fasta, teacher_dir, tmp_path / "one", **common))
    run_pretrain(make_config(genome_fasta, teacher_dir, tmp_path / "four", grad_accum_steps=4, **common))
    _assert_same(_columns(tmp_path / "four" / "metrics.csv"), _columns(tmp_path / "one" / "metrics.csv"), 1e-5)


@pytest.mark.slow
def test_two_gloo_ranks_under_torchrun_equal_one_process(tmp_path, genome_fasta, teacher_dir):
    common = dict(max_steps=5, val_every=5, save_every=5)
    ref = run_pretrain(make_config(genome_fasta, teacher_dir, tmp_path / "single", **common))

    out = tmp_path / "ddp"
    cfg_file = tmp_path / "ddp.yaml"
    cfg_file.write_text(yaml.safe_dump(config_dict(genome_fasta, teacher_dir, out, grad_accum_steps=2, **common)))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "hadna.cli", "pretrain", "--config", str(cfg_file)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "rank 1/2 joined the gloo process group" in proc.stderr
    _assert_same(_columns(out / "metrics.csv"), _columns(tmp_path / "single" / "metrics.csv"), 1e-4)
    val = read_csv(out / "val_metrics.csv")[-1]
    for k, v in ref.val_metrics.items():
        assert float(val[k]) == pytest.approx(v, rel=1e-4), k
    # rank 0 alone wrote one checkpoint (with both ranks' RNG states) and the final model
    ckpt = out / "checkpoints" / "step-0000005"
    from safetensors.torch import load_file

    assert set(load_file(str(ckpt / "rng.safetensors"))) == {"rank0.cpu", "rank1.cpu"}
    assert (out / "final" / "model.safetensors").is_file()
