"""End-to-end pre-training: logs, validation, the exported final/ model, every mode, and the CLI's errors."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from hadna.cli import main as cli_main
from hadna.config import from_dict
from hadna.models import HadForSequenceClassification, HadModel
from hadna.tokenization import HadTokenizer
from hadna.train.config import PretrainConfig
from hadna.train.metrics_log import read_csv
from hadna.train.pretrain import HadPretraining, run_pretrain
from train_helpers import config_dict, make_config


@pytest.fixture(scope="module")
def had_run(tmp_path_factory, genome_fasta, teacher_dir):
    out = tmp_path_factory.mktemp("had") / "run"
    result = run_pretrain(make_config(genome_fasta, teacher_dir, out, max_steps=4))
    return out, result


def test_metrics_are_logged_every_step_and_validation_at_its_cadence(had_run):
    out, result = had_run
    rows = read_csv(out / "metrics.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    assert {"lr", "loss", "recon_loss", "distill_loss", "recon_acc", "grad_norm", "nt_per_s", "elapsed_s"} <= set(rows[0])
    for r in rows:
        assert float(r["loss"]) == pytest.approx(float(r["recon_loss"]) + float(r["distill_loss"]), rel=1e-6)
        assert 0.0 <= float(r["recon_acc"]) <= 1.0 and float(r["nt_per_s"]) > 0
    val = read_csv(out / "val_metrics.csv")
    assert [r["step"] for r in val] == ["0", "2", "4"]  # step 0 = the untrained model
    assert {"val_loss", "recon_loss", "recon_acc", "distill_mse"} == set(val[0]) - {"step"}
    assert result.val_metrics["recon_acc"] == pytest.approx(float(val[-1]["recon_acc"]))
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["max_steps"] == 4


def test_validation_is_deterministic(tmp_path, genome_fasta, teacher_dir):
    task = HadPretraining(make_config(genome_fasta, teacher_dir, tmp_path / "run"))
    task.model.eval()
    with torch.no_grad():
        first, again = task.val_fn(task.model), task.val_fn(task.model)
    assert first == again
    fresh = HadPretraining(make_config(genome_fasta, teacher_dir, tmp_path / "run2"))
    a, b = task.val_batches()[0].masked, fresh.val_batches()[0].masked
    assert torch.equal(a.masked, b.masked) and torch.equal(a.input_ids, b.input_ids)


def test_final_directory_loads_as_backbone_and_classifier(had_run):
    out, result = had_run
    final = out / "final"
    names = {p.name for p in final.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "training_summary.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl"))]
    model = HadModel.from_pretrained(final)
    assert model.config.preset == "had-tiny"
    clf = HadForSequenceClassification.from_pretrained(final, num_labels=2)
    tok = HadTokenizer.from_pretrained(final)
    enc = tok(["ACGTACGTNNAC", "GGGATTACA"], padding=True, return_tensors="pt")
    assert clf(**enc).logits.shape == (2, 2)
    torch.testing.assert_close(clf.had.embeddings.weight, model.embeddings.weight)
    # the backbone equals the trained student of the last checkpoint; the heads stay in the checkpoint
    from safetensors.torch import load_file

    ckpt = load_file(str(result.checkpoint / "model.safetensors"))
    assert any(k.startswith("decoder.") for k in ckpt) and any(k.startswith("distill_head.") for k in ckpt)
    final_weights = load_file(str(final / "model.safetensors"))
    assert not any(k.startswith(("decoder", "distill_head")) for k in final_weights)
    torch.testing.assert_close(final_weights["embeddings.weight"], ckpt["student.embeddings.weight"])


def test_model_card_and_summary(had_run):
    out, result = had_run
    card = (out / "final" / "README.md").read_text()
    for needle in ("Gated DeltaNet", "Intended use", "CC-BY-NC-SA-4.0", "recon_acc", "had-tiny", "Licence"):
        assert needle in card, needle
    summary = json.loads((out / "final" / "training_summary.json").read_text())
    assert summary["steps"] == 4 and summary["student_parameters"] == sum(
        p.numel() for p in HadModel.from_pretrained(out / "final").parameters())
    assert summary["final_val_metrics"] == result.val_metrics


@pytest.mark.parametrize("mode,val_keys", [
    ("reconstruction", {"val_loss", "recon_loss", "recon_acc"}),
    ("distillation", {"val_loss", "distill_mse"}),
    ("mlm", {"val_loss", "mlm_loss", "mlm_acc"}),
], ids=["reconstruction", "distillation", "mlm"])
def test_every_mode_trains(tmp_path, genome_fasta, teacher_dir, mode, val_keys):
    teacher = teacher_dir if mode == "distillation" else None
    result = run_pretrain(make_config(genome_fasta, teacher, tmp_path / "run", mode=mode, max_steps=2,
                                      save_every=0, val_every=0))
    assert set(result.val_metrics) == val_keys
    card = (tmp_path / "run" / "final" / "README.md").read_text()
    assert ("no teacher licence applies" in card) == (teacher is None)


def test_noattn_student_trains(tmp_path, genome_fasta, teacher_dir):
    data = config_dict(genome_fasta, teacher_dir, tmp_path / "run", max_steps=1, save_every=0, val_every=0)
    data["model"]["preset"] = "had-1m-noattn"
    data["model"]["overrides"] = {"hidden_size": 32, "head_k_dim": 8, "intermediate_size": 64, "chunk_size": 16}
    run_pretrain(from_dict(PretrainConfig, data))
    assert HadModel.from_pretrained(tmp_path / "run" / "final").config.num_attention_layers == 0


# ----------------------------------------------------------------------------- CLI
def _write(tmp_path, data) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_cli_runs_and_overrides_apply(tmp_path, genome_fasta, teacher_dir, capsys):
    cfg = _write(tmp_path, config_dict(genome_fasta, teacher_dir, tmp_path / "ignored"))
    rc = cli_main(["pretrain", "--config", cfg, "train.max_steps=1", "train.val_every=0",
                   "--output-dir", str(tmp_path / "out")])
    assert rc == 0 and "done: 1 steps" in capsys.readouterr().out
    assert (tmp_path / "out" / "final" / "model.safetensors").is_file() and not (tmp_path / "ignored").exists()


@pytest.mark.parametrize("what", ["teacher", "fasta", "checkpoints", "other-recipe"])
def test_cli_errors_are_one_line(tmp_path, genome_fasta, teacher_dir, capsys, what):
    data = config_dict(genome_fasta, teacher_dir, tmp_path / "run", max_steps=1)
    expected = {
        "teacher": "teacher checkpoint directory not found: .*nowhere; run `hadna teacher-train",
        "fasta": "FASTA file not found: .*absent.fa; download it to there",
        "checkpoints": "already holds checkpoints .*--resume",
        "other-recipe": "recipe 'teacher-train', not 'pretrain'",
    }[what]
    if what == "teacher":
        data["teacher"].update(path=str(tmp_path / "nowhere"),
                               missing_hint="run `hadna teacher-train --config configs/teacher_tiny.yaml` first")
    elif what == "fasta":
        data["data"]["fasta"] = [str(tmp_path / "absent.fa")]
        data["hints"] = {"fasta": "download it to there"}
    elif what == "checkpoints":
        (tmp_path / "run" / "checkpoints" / "step-0000001").mkdir(parents=True)
    else:
        data = {"recipe": "teacher-train"}
    rc = cli_main(["pretrain", "--config", _write(tmp_path, data)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("hadna: error:")]
    assert len(lines) == 1
    import re

    assert re.search(expected, lines[0]), lines[0]


def test_tensorboard_is_optional(tmp_path, genome_fasta, teacher_dir, caplog):
    import importlib.util
    import logging

    with caplog.at_level(logging.WARNING, logger="hadna"):
        run_pretrain(make_config(genome_fasta, teacher_dir, tmp_path / "run", max_steps=1, val_every=0,
                                 tensorboard=True))
    if importlib.util.find_spec("tensorboard") is None:
        assert "tensorboard is not installed" in caplog.text
    else:
        assert list((tmp_path / "run" / "tensorboard").glob("events.*"))
