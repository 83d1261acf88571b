"""Teacher-feature cache: cached and live losses agree, fingerprints guard it, builds resume, training cycles."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from hadna.cli import main as cli_main
from hadna.errors import ConfigError, DataError, MissingFileError
from hadna.teachers import Teacher
from hadna.train.feature_cache import FeatureCache, build_feature_cache, cache_fingerprint
from hadna.train.pretrain import HadPretraining, run_pretrain
from train_helpers import config_dict, make_config

NUM = 16  # cached training samples (two steps of batch 8)


@pytest.fixture(scope="module")
def caches(tmp_path_factory, genome_fasta, teacher_dir):
    """Float32 and float16 caches of the first 16 samples, built once."""
    root = tmp_path_factory.mktemp("caches")
    cfg = make_config(genome_fasta, teacher_dir, root / "run")
    task = HadPretraining(cfg)
    out = {}
    for dtype in ("float32", "float16"):
        out[dtype] = build_feature_cache(cfg, root / dtype, NUM, task.teacher, task.windows, dtype=dtype, batch_size=5)
    return out


def _loss_on_step0(cfg, teacher=None) -> tuple[float, dict]:
    task = HadPretraining(cfg, teacher=teacher)  # same seed -> same initial weights
    mb = task.batch_fn(0, 0, 1, 1)[0]
    with torch.no_grad():
        loss, metrics = task.step_fn(task.model, mb, task.count_fn(mb))
    return float(loss), {k: float(v) for k, v in metrics.items()}


@pytest.mark.parametrize("dtype,rtol", [("float32", 0.0), ("float16", 2e-3)], ids=["float32", "float16"])
def test_cached_and_live_teacher_give_the_same_loss(tmp_path, genome_fasta, teacher_dir, caches, dtype, rtol):
    live_loss, live = _loss_on_step0(make_config(genome_fasta, teacher_dir, tmp_path / "live"))
    data = config_dict(genome_fasta, teacher_dir, tmp_path / "cached")
    data["teacher"]["cache"] = str(caches[dtype])
    from hadna.config import from_dict
    from hadna.train.config import PretrainConfig

    cached_loss, cached = _loss_on_step0(from_dict(PretrainConfig, data))
    assert cached["recon_loss"] == live["recon_loss"]  # the student side is identical
    assert cached_loss == pytest.approx(live_loss, rel=rtol)
    assert cached["distill_loss"] == pytest.approx(live["distill_loss"], rel=rtol)
    if dtype == "float16":
        assert cached["distill_loss"] != live["distill_loss"]  # really read from the fp16 file


def test_the_index_records_shapes_counts_and_fingerprint(caches, genome_fasta, teacher_dir, tmp_path):
    index = json.loads((caches["float16"] / "index.json").read_text())
    assert index["num_samples"] == NUM and index["dtype"] == "float16" and index["hidden_size"] == 32
    assert len(index["train"]["token_counts"]) == NUM and len(index["val"]["token_counts"]) == 8
    assert index["fingerprint"] == json.loads(json.dumps(cache_fingerprint(make_config(genome_fasta, teacher_dir,
                                                                                       tmp_path))))
    arr = np.load(caches["float16"] / "train.npy", mmap_mode="r")
    assert arr.dtype == np.float16 and arr.shape == (sum(index["train"]["token_counts"]), 32)
    assert not list(caches["float16"].glob("*.partial")) and not (caches["float16"] / "progress.json").exists()


@pytest.mark.parametrize("key,value,named", [
    (("masking", "mask_ratio"), 0.2, "mask_ratio"),
    (("train", "seed"), 5, "train_seed"),
    (("data", "window_length"), 48, "window_length"),
    (("teacher", "layer"), 1, "teacher.layer"),
], ids=["mask-ratio", "seed", "window", "teacher-layer"])
def test_a_fingerprint_mismatch_is_a_clear_error(tmp_path, genome_fasta, teacher_dir, caches, key, value, named):
    data = config_dict(genome_fasta, teacher_dir, tmp_path / "run")
    data[key[0]][key[1]] = value
    from hadna.config import from_dict
    from hadna.train.config import PretrainConfig

    with pytest.raises(ConfigError, match=f"built for different samples.*{named}"):
        FeatureCache.open(caches["float32"], cache_fingerprint(from_dict(PretrainConfig, data)))


def test_training_cycles_over_the_cached_samples(tmp_path, genome_fasta, teacher_dir, caches):
    data = config_dict(genome_fasta, teacher_dir, tmp_path / "run", max_steps=3, val_every=3, save_every=0)
    data["teacher"]["cache"] = str(caches["float16"])
    from hadna.config import from_dict
    from hadna.train.config import PretrainConfig

    cfg = from_dict(PretrainConfig, data)
    task = HadPretraining(cfg)
    assert task.teacher is None  # never loaded
    assert task.sample_indices(2, 0, 1).tolist() == list(range(8))  # samples 16..23 -> 0..7
    assert task.sample_indices(1, 1, 2).tolist() == list(range(12, 16))
    result = run_pretrain(cfg)
    assert result.step == 3 and "distill_mse" in result.val_metrics


def test_an_interrupted_build_is_never_used_and_resumes(tmp_path, genome_fasta, teacher_dir, caches, monkeypatch):
    cfg = make_config(genome_fasta, teacher_dir, tmp_path / "run")
    teacher = Teacher.from_pretrained(teacher_dir)
    task = HadPretraining(cfg, teacher=teacher)
    out = tmp_path / "cache"
    build_feature_cache(cfg, out, NUM, teacher, task.windows, dtype="float32", batch_size=5, max_chunks=2)
    assert json.loads((out / "progress.json").read_text())["train_done"] == 10
    with pytest.raises(DataError, match="incomplete .*10 samples"):
        FeatureCache.open(out, cache_fingerprint(cfg))
    calls = []
    real = teacher.features
    monkeypatch.setattr(teacher, "features", lambda *a: calls.append(a[0].shape[0]) or real(*a))
    build_feature_cache(cfg, out, NUM, teacher, task.windows, dtype="float32", batch_size=5)
    assert calls == [5, 1, 5, 3]  # train 10..14, 15; val 0..4, 5..7: the first 10 were not recomputed
    for split in ("train", "val"):
        np.testing.assert_array_equal(np.load(out / f"{split}.npy"), np.load(caches["float32"] / f"{split}.npy"))
    FeatureCache.open(out, cache_fingerprint(cfg))


def test_a_missing_cache_names_the_command(tmp_path):
    with pytest.raises(MissingFileError, match="hadna cache-teacher"):
        FeatureCache.open(tmp_path / "nothing")


def test_cache_teacher_cli(tmp_path, genome_fasta, teacher_dir, caches, capsys):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(config_dict(genome_fasta, teacher_dir, tmp_path / "run")))
    rc = cli_main(["cache-teacher", "--config", str(cfg_file), "--num-samples", str(NUM), "--out",
                   str(tmp_path / "c"), "--batch-size", "8"])
    assert rc == 0 and "teacher.cache=" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(tmp_path / "c" / "train.npy"), np.load(caches["float16"] / "train.npy"))
    rc = cli_main(["cache-teacher", "--config", str(cfg_file), "teacher.path=" + str(tmp_path / "absent"),
                   "--num-samples", "4", "--out", str(tmp_path / "d")])
    assert rc == 2 and "teacher checkpoint directory not found" in capsys.readouterr().err
