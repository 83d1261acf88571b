"""Checkpoints: atomic layout, verification and fallback, exact resume after SIGKILL, incompatible configs,
and non-finite losses."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import yaml

from hadna.errors import CheckpointError, ConfigError, TrainingError
from hadna.train.checkpoint import CheckpointManager, flatten_optimizer_state, unflatten_optimizer_state
from hadna.train.metrics_log import read_csv
from hadna.train.pretrain import HadPretraining, run_pretrain
from train_helpers import assert_same_run, config_dict, logged_losses, make_config, sigkill_then_resume

def _trained_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95))
    for _ in range(2):
        model(torch.randn(5, 4)).square().sum().backward()
        opt.step()
    return model, opt


def _save(mgr: CheckpointManager, step: int, model, opt) -> Path:
    tensors, meta = flatten_optimizer_state(opt.state_dict())
    return mgr.save(step, {"model": model.state_dict(), "optimizer": tensors, "rng": {"rank0.cpu": torch.get_rng_state()}},
                    {"optimizer": meta, "scheduler": {"step": step}}, {"samples_seen": step})


def test_layout_latest_pointer_and_pruning(tmp_path):
    model, opt = _trained_optimizer()
    mgr = CheckpointManager(tmp_path / "ckpt", keep_last=2)
    for step in (1, 2, 3):
        _save(mgr, step, model, opt)
    assert [s for s, _ in mgr.list()] == [2, 3]
    assert (tmp_path / "ckpt" / "latest").read_text().strip() == "step-0000003"
    files = sorted(p.name for p in (tmp_path / "ckpt" / "step-0000003").iterdir())
    assert files == ["model.safetensors", "optimizer.json", "optimizer.safetensors", "rng.safetensors",
                     "scheduler.json", "state.json"]  # nothing pickled
    ckpt = mgr.verify(tmp_path / "ckpt" / "step-0000003")
    assert ckpt.step == 3 and set(ckpt.state["files"]) == set(files) - {"state.json"}
    assert not [p for p in (tmp_path / "ckpt").iterdir() if p.name.startswith(".")]


def test_optimizer_state_round_trips(tmp_path):
    model, opt = _trained_optimizer()
    mgr = CheckpointManager(tmp_path)
    ckpt = mgr.verify(_save(mgr, 1, model, opt))
    fresh = torch.optim.AdamW(model.parameters(), lr=5.0)
    fresh.load_state_dict(unflatten_optimizer_state(ckpt.tensors("optimizer"), ckpt.json("optimizer")))
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for idx in a["state"]:
        for key in a["state"][idx]:
            torch.testing.assert_close(a["state"][idx][key], b["state"][idx][key], rtol=0, atol=0)


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


CORRUPTIONS = {
    "flipped-byte": ("model.safetensors", _flip_byte, "sha256 mismatch"),
    "truncated": ("optimizer.safetensors", lambda p: p.write_bytes(p.read_bytes()[:40]), "sha256 mismatch"),
    "missing-file": ("rng.safetensors", Path.unlink, "rng.safetensors is missing"),
    "no-state-json": ("state.json", Path.unlink, "no state.json"),
    "garbage-state-json": ("state.json", lambda p: p.write_text("{not json"), "unreadable"),
}


@pytest.mark.parametrize("name,corrupt,message", list(CORRUPTIONS.values()), ids=list(CORRUPTIONS))
def test_a_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog, name, corrupt, message):
    model, opt = _trained_optimizer()
    mgr = CheckpointManager(tmp_path)
    _save(mgr, 1, model, opt)
    newest = _save(mgr, 2, model, opt)
    corrupt(newest / name)
    with caplog.at_level(logging.ERROR, logger="hadna"):
        ckpt = mgr.find_resumable()
    assert ckpt is not None and ckpt.step == 1
    assert "step-0000002 is unusable" in caplog.text and message in caplog.text
    with pytest.raises(CheckpointError, match=message):
        mgr.verify(newest)


def test_no_checkpoint_and_all_damaged_are_told_apart(tmp_path):
    mgr = CheckpointManager(tmp_path / "none")
    assert mgr.find_resumable() is None
    model, opt = _trained_optimizer()
    mgr = CheckpointManager(tmp_path / "ckpt")
    for step in (1, 2):
        (_save(mgr, step, model, opt) / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="no valid checkpoint.*all 2 are damaged"):
        mgr.find_resumable()


def test_stale_temporary_directories_are_removed(tmp_path):
    mgr = CheckpointManager(tmp_path)
    (tmp_path / ".tmp-step-0000005-123").mkdir(parents=True)
    (tmp_path / ".tmp-step-0000005-123" / "model.safetensors").write_bytes(b"half")
    mgr.remove_stale_temporaries()
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- full runs
def test_sigkill_then_resume_logs_exactly_the_uninterrupted_losses(tmp_path, genome_fasta, teacher_dir):
    train = dict(max_steps=9, save_every=3, val_every=3)
    ref = run_pretrain(make_config(genome_fasta, teacher_dir, tmp_path / "ref", **train))
    assert ref.step == 9

    out = tmp_path / "killed"
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(config_dict(genome_fasta, teacher_dir, out, **train)))
    sigkill_then_resume("pretrain", cfg_file, out, kill_after_step=3)
    assert_same_run(out, tmp_path / "ref")
    assert [r["step"] for r in read_csv(out / "metrics.csv")] == [str(s) for s in range(1, 10)]


def test_resume_skips_a_corrupt_newest_checkpoint(tmp_path, genome_fasta, teacher_dir, caplog):
    out = tmp_path / "run"
    run_pretrain(make_config(genome_fasta, teacher_dir, out, max_steps=4, val_every=0))
    before = logged_losses(out / "metrics.csv")
    _flip_byte(out / "checkpoints" / "step-0000004" / "optimizer.safetensors")
    with caplog.at_level(logging.INFO, logger="hadna"):
        result = run_pretrain(make_config(genome_fasta, teacher_dir, out, max_steps=4, val_every=0), resume=True)
    assert result.resumed_from == 2
    assert "step-0000004 is unusable" in caplog.text and "sha256 mismatch" in caplog.text
    assert logged_losses(out / "metrics.csv") == before  # steps 3-4 recomputed identically


def test_resume_without_checkpoints_says_so_and_starts_fresh(tmp_path, genome_fasta, teacher_dir, caplog):
    with caplog.at_level(logging.INFO, logger="hadna"):
        result = run_pretrain(make_config(genome_fasta, teacher_dir, tmp_path / "run", max_steps=1, val_every=0),
                              resume=True)
    assert result.resumed_from is None and result.step == 1
    assert "no checkpoint under" in caplog.text
    # a fresh start is news, not a warning (`hadna run` resumes every stage)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "no checkpoint" in r.getMessage()]
    with pytest.raises(ConfigError, match="already holds checkpoints.*--resume"):
        run_pretrain(make_config(genome_fasta, teacher_dir, tmp_path / "run", max_steps=1))


@pytest.mark.parametrize("section,change,named", [
    ("model", {"overrides": {"chunk_size": 16, "num_gdn_layers": 1}}, "model.num_gdn_layers: 2 -> 1"),
    ("objective", {"distill_head": "mlp"}, "objective.distill_head: 'linear' -> 'mlp'"),
    ("train", {"batch_size": 4}, "global_batch_size: 8 -> 4"),
], ids=["model-shape", "objective", "batch-size"])
def test_resume_with_an_incompatible_config_is_a_checkpoint_error(tmp_path, genome_fasta, teacher_dir, section,
                                                                  change, named):
    out = tmp_path / "run"
    run_pretrain(make_config(genome_fasta, teacher_dir, out, max_steps=2, val_every=0))
    data = config_dict(genome_fasta, teacher_dir, out, max_steps=4, val_every=0)
    data[section].update(change)
    from hadna.config import from_dict
    from hadna.train.config import PretrainConfig

    with pytest.raises(CheckpointError, match="incompatible run.*" + named.replace("(", r"\(")):
        run_pretrain(from_dict(PretrainConfig, data), resume=True)


# ----------------------------------------------------------------------------- non-finite losses
def test_a_nan_loss_stops_with_the_step_and_terms_and_keeps_the_last_good_checkpoint(tmp_path, genome_fasta,
                                                                                      teacher_dir):
    cfg = make_config(genome_fasta, teacher_dir, tmp_path / "run", max_steps=6, save_every=2, val_every=0)
    task = HadPretraining(cfg)
    trainer = task.build_trainer()
    real_step = task.step_fn

    def poisoned(model, mb, totals):  # step 5 (index 4) produces a NaN distillation loss
        loss, metrics = real_step(model, mb, totals)
        if trainer.step == 4:
            nan = torch.tensor(float("nan"))
            loss, metrics = loss + nan, {**metrics, "distill_loss": metrics["distill_loss"] + nan}
        return loss, metrics

    trainer.step_fn = poisoned
    with pytest.raises(TrainingError, match=r"non-finite loss at step 5 \(.*distill_loss=nan.*recon_loss=[0-9.]+.*"
                                            r"last good checkpoint is .*step-0000004"):
        trainer.fit()
    mgr = CheckpointManager(tmp_path / "run" / "checkpoints")
    assert [s for s, _ in mgr.list()] == [2, 4]
    assert mgr.find_resumable().step == 4
    assert [r["step"] for r in read_csv(tmp_path / "run" / "metrics.csv")] == ["1", "2", "3", "4"]


def test_an_exploding_learning_rate_is_caught(tmp_path, genome_fasta, teacher_dir):
    data = config_dict(genome_fasta, teacher_dir, tmp_path / "run", max_steps=5, save_every=1, val_every=0)
    data["optim"].update(lr=1e35, warmup_steps=0, grad_clip=0.0)
    from hadna.config import from_dict
    from hadna.train.config import PretrainConfig

    with pytest.raises(TrainingError, match="non-finite .* at step [2-5]"):
        run_pretrain(from_dict(PretrainConfig, data))
    assert CheckpointManager(tmp_path / "run" / "checkpoints").find_resumable().step >= 1
