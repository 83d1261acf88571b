"""``hadna teacher-train``: MLM masking statistics, training and validation, exact resume after SIGKILL,
DDP/accumulation equivalence, the exported final/ (hadna Teacher and transformers Auto classes), the CLI and configs."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hadna.cli import main as cli_main
from hadna.config import from_dict, load_config
from hadna.errors import ConfigError
from hadna.teachers import NT_CLS_ID, NT_MASK_ID, NT_PAD_ID, Teacher, nt_tokenize_batch
from hadna.teachers.nt_tokens import NT_KMER_OFFSET, NT_SINGLE_OFFSET, window_token_bound
from hadna.train.config import MlmSection, PretrainConfig, TeacherTrainConfig
from hadna.train.metrics_log import read_csv
from hadna.train.teacher_train import IGNORE_INDEX, TeacherTraining, mlm_mask, run_teacher_train
from hadna.vocab import A_ID, N_ID, T_ID
from train_helpers import REPO, WINDOW, assert_same_run, sigkill_then_resume



def teacher_config_dict(genome_fasta: Path, out: Path, **train) -> dict:
    """A tiny teacher-training config as a plain dict (what a YAML file would hold)."""
    return {
        "recipe": "teacher-train",
        "model": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64},
        "data": {"fasta": [str(genome_fasta)], "window_length": WINDOW, "num_val_windows": 8, "val_fraction": 0.1,
                 "cache_dir": str(genome_fasta.parent / "genome-cache"), "seed": 3},
        "mlm": {"mask_ratio": 0.15, "mask_token_prob": 0.8, "random_token_prob": 0.1},
        "optim": {"lr": 3e-3, "warmup_steps": 2, "min_lr_ratio": 0.1, "grad_clip": 1.0},
        "train": {"max_steps": 4, "batch_size": 8, "seed": 1, "log_every": 1, "val_every": 2, "save_every": 2,
                  "keep_last_checkpoints": 3, "output_dir": str(out), "device": "cpu", "precision": "fp32",
                  "num_threads": 1, **train},
    }


def make_teacher_config(*args, **kwargs) -> TeacherTrainConfig:
    return from_dict(TeacherTrainConfig, teacher_config_dict(*args, **kwargs))


def _student_ids(seq: str) -> torch.Tensor:
    lut = {"A": A_ID, "C": A_ID + 1, "G": A_ID + 2, "T": T_ID, "N": N_ID}
    return torch.tensor([[lut[c] for c in seq]], dtype=torch.long)


def _random_windows(n: int, length: int, seed: int, n_rate: float = 0.0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    ids = rng.integers(A_ID, T_ID + 1, size=(n, length))
    ids[rng.random((n, length)) < n_rate] = N_ID
    return torch.from_numpy(ids)


# ----------------------------------------------------------------------------- masking
def _masked(windows: torch.Tensor, seeds, mlm: MlmSection | None = None):
    toks = nt_tokenize_batch(windows)
    ids, labels = mlm_mask(toks.input_ids, toks.attention_mask, list(seeds), mlm or MlmSection())
    return toks, ids, labels


def test_targets_are_15_percent_of_real_tokens_and_never_cls_or_padding():
    windows = _random_windows(64, 300, seed=0, n_rate=0.02)  # N's give rows of different token counts: padding
    toks, ids, labels = _masked(windows, range(64))
    real = toks.attention_mask.bool() & (toks.input_ids != NT_CLS_ID)
    assert (~toks.attention_mask.bool()).any(), "the batch should have padded rows"
    target = labels != IGNORE_INDEX
    n_real = real.sum(1)
    expected = torch.clamp(torch.floor(0.15 * n_real.double() + 0.5).long(), min=1)
    assert torch.equal(target.sum(1), expected)
    assert not (target & ~real).any()                        # never <cls> or padding
    assert torch.equal(labels[target], toks.input_ids[target])  # labels are the original tokens
    assert torch.equal(ids[~target], toks.input_ids[~target])  # nothing else is touched
    assert (ids[:, 0] == NT_CLS_ID).all() and (ids[~toks.attention_mask.bool()] == NT_PAD_ID).all()


def test_replacements_are_80_10_10_over_many_tokens():
    toks, ids, labels = _masked(_random_windows(400, 1024, seed=1), range(400))  # ~10k targets
    target = labels != IGNORE_INDEX
    new, old = ids[target], toks.input_ids[target]
    n = target.sum().item()
    assert n > 9000
    masked = (new == NT_MASK_ID).float().mean().item()
    swapped = new != old
    random_tok = (swapped & (new != NT_MASK_ID)).float().mean().item()
    unchanged = (~swapped).float().mean().item()
    tol = 4 * math.sqrt(0.1 * 0.9 / n)  # 4 standard errors of a 10% proportion
    assert abs(masked - 0.8) < 4 * math.sqrt(0.8 * 0.2 / n)
    assert abs(random_tok - 0.1) < tol and abs(unchanged - 0.1) < tol
    randoms = new[swapped & (new != NT_MASK_ID)]
    assert ((randoms >= NT_KMER_OFFSET) & (randoms < NT_SINGLE_OFFSET)).all()  # random tokens are 6-mers
    assert randoms.unique().numel() > 500  # spread over the 4,096 6-mers


@pytest.mark.parametrize("mask_p,random_p,check", [
    (1.0, 0.0, lambda new, old: (new == NT_MASK_ID).all()),
    (0.0, 0.0, lambda new, old: torch.equal(new, old)),
    (0.0, 1.0, lambda new, old: ((new >= NT_KMER_OFFSET) & (new < NT_SINGLE_OFFSET)).all()),
], ids=["mask-only", "unchanged-only", "random-only"])
def test_replacement_proportions_are_a_config_option(mask_p, random_p, check):
    toks, ids, labels = _masked(_random_windows(8, 256, seed=2), range(8), MlmSection(0.15, mask_p, random_p))
    target = labels != IGNORE_INDEX
    assert check(ids[target], toks.input_ids[target])


def test_masks_are_deterministic_per_sample_whatever_the_batch():
    windows = _random_windows(6, 200, seed=3, n_rate=0.01)
    seeds = [11, 12, 13, 14, 15, 16]
    toks, ids, labels = _masked(windows, seeds)
    again = _masked(windows, seeds)
    assert torch.equal(ids, again[1]) and torch.equal(labels, again[2])
    for row in (0, 4):  # alone in its batch, the sample gets the same mask
        _, one_ids, one_labels = _masked(windows[row:row + 1], seeds[row:row + 1])
        width = one_ids.shape[1]
        assert torch.equal(one_ids[0], ids[row, :width]) and torch.equal(one_labels[0], labels[row, :width])
    other = _masked(windows, [s + 100 for s in seeds])
    assert not torch.equal(labels, other[2])


@pytest.mark.parametrize("seq,n_targets", [
    ("A", 1), ("ACGTA", 1), ("N" * 40, 6), ("ACGTAC" * 2, 1), ("ACGTACN" * 10, 3),
], ids=["one-base", "shorter-than-a-6mer", "all-N", "two-6mers", "N-every-7th"])
def test_awkward_windows(seq, n_targets):
    toks, ids, labels = _masked(_student_ids(seq), [5])
    target = labels != IGNORE_INDEX
    n_real = int(toks.attention_mask.sum()) - 1
    assert n_targets == max(1, math.floor(0.15 * n_real + 0.5)) == int(target.sum())
    assert not target[0, 0]


@pytest.mark.parametrize("length,max_n", [(128, 0.01), (1024, 0.01), (64, 0.1), (30, 0.0)],
                         ids=["L128", "L1024", "many-N", "no-N"])
def test_the_token_bound_holds_for_adversarial_and_random_windows(length, max_n):
    bound = window_token_bound(length, max_n)
    k = math.floor(max_n * length + 1e-9)
    worst = ("AAAAA" + "N") * k + "A" * (length - 6 * k)  # every N after a 5-base remainder
    rows = [_student_ids(worst[:length])[0]]
    rng = np.random.default_rng(0)
    for _ in range(200):
        w = rng.integers(A_ID, T_ID + 1, size=length)
        w[rng.choice(length, size=rng.integers(0, k + 1), replace=False)] = N_ID
        rows.append(torch.from_numpy(w))
    counts = nt_tokenize_batch(torch.stack(rows)).attention_mask.sum(1)
    assert int(counts.max()) <= bound
    assert bound <= math.ceil(length / 6) + 1 + 5 * k + 5  # about L/6 plus a small margin


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory, genome_fasta):
    out = tmp_path_factory.mktemp("teacher") / "run"
    result = run_teacher_train(make_teacher_config(genome_fasta, out, max_steps=4))
    return out, result


def test_a_tiny_teacher_trains_with_finite_losses_and_validates_from_step_0(teacher_run):
    out, result = teacher_run
    rows = read_csv(out / "metrics.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    assert {"loss", "mlm_acc", "mlm_tokens", "lr", "grad_norm", "nt_per_s"} <= set(rows[0])
    for r in rows:
        assert math.isfinite(float(r["loss"])) and 0.0 <= float(r["mlm_acc"]) <= 1.0
    assert float(rows[0]["loss"]) == pytest.approx(math.log(4107), abs=0.5)  # near uniform at the start
    val = read_csv(out / "val_metrics.csv")
    assert [r["step"] for r in val] == ["0", "2", "4"]
    assert set(val[0]) == {"step", "val_loss", "mlm_acc", "freq_baseline_loss"}
    assert len({r["freq_baseline_loss"] for r in val}) == 1  # a property of the data, not of the model
    assert result.val_metrics["val_loss"] == pytest.approx(float(val[-1]["val_loss"]))
    assert yaml.safe_load((out / "config.yaml").read_text())["recipe"] == "teacher-train"


def test_frequency_baseline_is_the_cross_entropy_of_training_token_frequencies(tmp_path, genome_fasta):
    task = TeacherTraining(make_teacher_config(genome_fasta, tmp_path / "run"))
    n = 64
    ids, _, _ = task.windows.sample_ids(np.arange(n, dtype=np.int64))
    toks = nt_tokenize_batch(torch.from_numpy(ids.astype(np.int64)))
    counts = {}
    for row, keep in zip(toks.input_ids.tolist(), toks.attention_mask.tolist()):
        for t, k in zip(row[1:], keep[1:]):  # <cls> first
            if k:
                counts[t] = counts.get(t, 0) + 1
    total = sum(counts.values()) + 0.5 * 4107
    gold = [t for mb in task.val_batches() for t in mb.labels[mb.labels != -100].tolist()]
    expected = -sum(math.log((counts.get(t, 0) + 0.5) / total) for t in gold) / len(gold)
    got = task.frequency_baseline(num_windows=n)
    assert got == pytest.approx(expected, rel=1e-9)
    assert got < math.log(4107)


def test_validation_is_deterministic_and_exact(tmp_path, genome_fasta):
    task = TeacherTraining(make_teacher_config(genome_fasta, tmp_path / "run", val_batch_size=3))
    task.model.eval()
    with torch.no_grad():
        first, again = task.val_fn(task.model), task.val_fn(task.model)
    assert first == again
    fresh = TeacherTraining(make_teacher_config(genome_fasta, tmp_path / "run2"))  # other batching, same masks
    with torch.no_grad():
        whole = fresh.val_fn(fresh.model)
    assert whole["val_loss"] == pytest.approx(first["val_loss"], rel=1e-5)
    assert whole["mlm_acc"] == pytest.approx(first["mlm_acc"])


def test_samples_do_not_depend_on_rank_or_micro_batch(tmp_path, genome_fasta):
    task = TeacherTraining(make_teacher_config(genome_fasta, tmp_path / "run"))
    whole = task.batch_fn(3, 0, 1, 1)[0]
    parts = [mb for r in range(2) for mb in task.batch_fn(3, r, 2, 2)]
    assert np.concatenate([p.indices for p in parts]).tolist() == list(range(24, 32))
    for key in ("input_ids", "labels", "attention_mask"):
        glued = [getattr(p, key) for p in parts]
        width = max(g.shape[1] for g in glued)
        glued = torch.cat([torch.nn.functional.pad(g, (0, width - g.shape[1]), value=-7) for g in glued])
        ref = getattr(whole, key)
        assert torch.equal(glued[:, :ref.shape[1]], ref), key


def test_gradient_accumulation_equals_one_big_batch(tmp_path, genome_fasta):
    common = dict(max_steps=3, val_every=0, save_every=0)
    run_teacher_train(make_teacher_config(genome_fasta, tmp_path / "one", **common))
    run_teacher_train(make_teacher_config(genome_fasta, tmp_path / "four", grad_accum_steps=4, **common))
    for a, b in zip(read_csv(tmp_path / "one" / "metrics.csv"), read_csv(tmp_path / "four" / "metrics.csv")):
        for key in ("loss", "mlm_acc", "mlm_tokens", "grad_norm"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-5), key


def test_sigkill_then_resume_logs_exactly_the_uninterrupted_losses(tmp_path, genome_fasta):
    train = dict(max_steps=24, save_every=4, val_every=4)
    run_teacher_train(make_teacher_config(genome_fasta, tmp_path / "ref", **train))

    out = tmp_path / "killed"
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(teacher_config_dict(genome_fasta, out, **train)))
    sigkill_then_resume("teacher-train", cfg_file, out, kill_after_step=4)
    assert_same_run(out, tmp_path / "ref")
    assert [r["step"] for r in read_csv(out / "val_metrics.csv")][0] == "0"


@pytest.mark.slow
def test_two_gloo_ranks_under_torchrun_equal_one_process(tmp_path, genome_fasta):
    common = dict(max_steps=3, val_every=3, save_every=3)
    ref = run_teacher_train(make_teacher_config(genome_fasta, tmp_path / "single", **common))
    out = tmp_path / "ddp"
    cfg_file = tmp_path / "ddp.yaml"
    cfg_file.write_text(yaml.safe_dump(teacher_config_dict(genome_fasta, out, grad_accum_steps=2, **common)))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "hadna.cli", "teacher-train", "--config", str(cfg_file)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for a, b in zip(read_csv(tmp_path / "single" / "metrics.csv"), read_csv(out / "metrics.csv")):
        for key in ("loss", "mlm_acc", "mlm_tokens", "grad_norm"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-4), key
    val = read_csv(out / "val_metrics.csv")[-1]
    assert float(val["val_loss"]) == pytest.approx(ref.val_metrics["val_loss"], rel=1e-4)


# ----------------------------------------------------------------------------- the exported teacher
def test_final_loads_as_a_hadna_teacher(teacher_run, genome_fasta):
    out, result = teacher_run
    final = out / "final"
    names = {p.name for p in final.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "README.md",
            "training_summary.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl"))]
    assert "auto_map" not in json.loads((final / "config.json").read_text())
    teacher = Teacher.from_pretrained(final)
    assert teacher.hidden_size == 32 and teacher.num_layers == 2
    ids = _random_windows(2, WINDOW, seed=4)
    inputs, feats = teacher.encode(ids)
    assert feats.shape == (2, inputs.input_ids.shape[1], 32) and torch.isfinite(feats).all()
    # the exported weights are the trained ones of the last checkpoint (transformers may rename keys on disk)
    from safetensors.torch import load_file
    from transformers import EsmForMaskedLM

    ckpt = load_file(str(result.checkpoint / "model.safetensors"))
    loaded = EsmForMaskedLM.from_pretrained(final).state_dict()
    assert {f"mlm.{k}" for k in loaded} == set(ckpt)
    for k, v in loaded.items():
        torch.testing.assert_close(v, ckpt[f"mlm.{k}"], rtol=0, atol=0)


def test_final_loads_with_transformers_auto_classes(teacher_run):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    final = teacher_run[0] / "final"
    tok = AutoTokenizer.from_pretrained(final)
    assert tok.eos_token is None and tok.model_max_length == window_token_bound(WINDOW, 0.01)
    seqs = ["ACGTACGTNNACGGGATCAAT", "GGGATTACA"]
    enc = tok(seqs, padding=True, return_tensors="pt")
    ref = nt_tokenize_batch(torch.cat([torch.nn.functional.pad(_student_ids(s), (0, 21 - len(s))) for s in seqs]),
                            torch.tensor([[1] * 21, [1] * 9 + [0] * 12]))
    assert torch.equal(enc["input_ids"], ref.input_ids) and torch.equal(enc["attention_mask"], ref.attention_mask)
    clf = AutoModelForSequenceClassification.from_pretrained(final, num_labels=2)
    assert clf(**enc).logits.shape == (2, 2)


def test_model_card_and_summary(teacher_run):
    out, result = teacher_run
    card = (out / "final" / "README.md").read_text()
    for needle in ("EsmForMaskedLM", "4,107", "rotary", "80%", "random 6-mer", "Intended use", "Licence",
                   "before training", "after training", "val_loss"):
        assert needle in card, needle
    summary = json.loads((out / "final" / "training_summary.json").read_text())
    assert summary["recipe"] == "teacher-train" and summary["steps"] == 4
    assert summary["final_val_metrics"] == result.val_metrics
    assert set(summary["initial_val_metrics"]) == {"val_loss", "mlm_acc", "freq_baseline_loss"}
    from transformers import EsmForMaskedLM

    assert summary["parameters"] == sum(p.numel() for p in EsmForMaskedLM.from_pretrained(out / "final").parameters())


# ----------------------------------------------------------------------------- configs and CLI
TEACHER_CONFIGS = ["teacher_tiny.yaml", "teacher_small.yaml"]


@pytest.mark.parametrize("name", TEACHER_CONFIGS)
def test_shipped_teacher_configs_load_and_build(name):
    from hadna.train.teacher_train import teacher_esm_config

    cfg = load_config(TeacherTrainConfig, REPO / "configs" / name)
    assert cfg.recipe == "teacher-train" and cfg.train.max_steps >= 1
    esm = teacher_esm_config(cfg)
    assert esm.vocab_size == 4107 and esm.position_embedding_type == "rotary" and esm.eos_token_id is None


def test_teacher_tiny_is_the_teacher_tiny_yaml_expects():
    teacher = load_config(TeacherTrainConfig, REPO / "configs" / "teacher_tiny.yaml")
    student = load_config(PretrainConfig, REPO / "configs" / "tiny.yaml")
    assert Path(teacher.train.output_dir) / "final" == Path(student.teacher.path)
    assert teacher.data.fasta == student.data.fasta and teacher.data.window_length == student.data.window_length
    assert teacher.data.val_fraction == student.data.val_fraction  # the same hold-out region
    assert "configs/teacher_tiny.yaml" in (student.teacher.missing_hint or "")


BAD = {
    "probs-above-1": (["mlm", "random_token_prob"], 0.3, "mask_token_prob \\+ mlm.random_token_prob"),
    "mask-ratio-0": (["mlm", "mask_ratio"], 0.0, "mlm.mask_ratio"),
    "heads-do-not-divide": (["model", "num_heads"], 3, "multiple of model.num_heads"),
    "odd-head-dim": (["model", "hidden_size"], 30, "must be even"),
    "max-tokens-too-small": (["model", "max_tokens"], 5, "below the"),
    "unknown-key": (["model", "hidden"], 8, "did you mean hidden_size"),
}


@pytest.mark.parametrize("key,value,message", list(BAD.values()), ids=list(BAD))
def test_bad_values_are_config_errors(tmp_path, genome_fasta, key, value, message):
    data = teacher_config_dict(genome_fasta, tmp_path / "run")
    node = data
    for k in key[:-1]:
        node = node[k]
    node[key[-1]] = value
    with pytest.raises(ConfigError, match=message):
        from_dict(TeacherTrainConfig, data)


def _write(tmp_path, data) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_cli_runs_and_overrides_apply(tmp_path, genome_fasta, capsys):
    cfg = _write(tmp_path, teacher_config_dict(genome_fasta, tmp_path / "ignored"))
    rc = cli_main(["teacher-train", "--config", cfg, "train.max_steps=1", "train.val_every=0",
                   "--output-dir", str(tmp_path / "out")])
    assert rc == 0 and "done: 1 steps; teacher written to" in capsys.readouterr().out
    assert (tmp_path / "out" / "final" / "model.safetensors").is_file() and not (tmp_path / "ignored").exists()


@pytest.mark.parametrize("what", ["fasta", "checkpoints", "other-recipe", "bad-override"])
def test_cli_errors_are_one_line(tmp_path, genome_fasta, capsys, what):
    data = teacher_config_dict(genome_fasta, tmp_path / "run", max_steps=1)
    extra = []
    expected = {
        "fasta": "FASTA file not found: .*absent.fa; put it there",
        "checkpoints": "already holds checkpoints .*--resume",
        "other-recipe": "recipe 'pretrain', not 'teacher-train'.*hadna pretrain",
        "bad-override": "mlm.mask_ratio must be in",
    }[what]
    if what == "fasta":
        data["data"]["fasta"] = [str(tmp_path / "absent.fa")]
        data["hints"] = {"fasta": "put it there"}
    elif what == "checkpoints":
        (tmp_path / "run" / "checkpoints" / "step-0000001").mkdir(parents=True)
    elif what == "other-recipe":
        data = {"recipe": "pretrain"}
    else:
        extra = ["mlm.mask_ratio=1.5"]
    rc = cli_main(["teacher-train", "--config", _write(tmp_path, data), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("hadna: error:")]
    assert len(lines) == 1 and re.search(expected, lines[0]), err
