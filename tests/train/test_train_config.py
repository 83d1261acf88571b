"""Pre-training configs: every shipped YAML loads, bad values are clear ConfigErrors; LR schedule; decay groups;
BED split selection."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from train_helpers import REPO, config_dict
from hadna.config import from_dict, load_config, read_yaml
from hadna.data import read_bed
from hadna.errors import ConfigError, DataError
from hadna.models import HadConfig, HadModel
from hadna.objectives import HadPretrainingModel, ObjectiveConfig
from hadna.train.config import RECIPES, PretrainConfig, check_recipe, config_recipe, recipe_config_class
from hadna.train.schedule import build_optimizer, lr_at

SHIPPED = sorted((REPO / "configs").glob("*.yaml"))


def test_the_pretraining_configs_are_shipped():
    names = {p.name for p in SHIPPED}
    assert {"tiny.yaml", "had_1m_ntv2.yaml", "had_1m_reconstruction.yaml", "had_1m_distillation_ntv2.yaml",
            "had_1m_mlm.yaml", "had_1m_noattn_ntv2.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_config_loads(path: Path):
    """Dispatch on the top-level ``recipe:`` key (or a registered file-name pattern); configs of recipes this
    checkout does not register are skipped, so configs of recipes added later do not break this test."""
    data = read_yaml(path)
    recipe = config_recipe(path, data)
    assert recipe in RECIPES, f"{path.name}: recipe {recipe!r} is not registered in hadna.train.config.RECIPES"
    first = path.read_text().splitlines()[0]
    assert first.startswith("#") and "hadna " in first, "the first line must give the command that runs it"
    if recipe == "pipeline":  # also loads every recipe config it refers to
        from hadna.pipeline import load_pipeline_config
        from hadna.pipeline.runner import Pipeline

        Pipeline(load_pipeline_config(path)).prepare()
        return
    cfg = load_config(recipe_config_class(recipe), path)
    if recipe == "pretrain":
        cfg.model.build()
        assert cfg.train.max_steps >= 1


def test_paper_config_matches_the_paper_setting():
    cfg = load_config(PretrainConfig, REPO / "configs" / "had_1m_ntv2.yaml")
    assert cfg.model.preset == "had-1m" and cfg.objective.mode == "had"
    assert cfg.data.window_length == 1024 and cfg.train.max_steps == 10000 and cfg.data.rc_augment
    assert cfg.teacher.trust_remote_code is False and "nucleotide-transformer-v2-500m" in cfg.teacher.path
    assert cfg.data.val_bed_split == "valid" and "test" not in cfg.data.bed_split
    modes = {p.name: load_config(PretrainConfig, p).objective.mode for p in SHIPPED if p.name.startswith("had_1m")}
    assert set(modes.values()) == {"had", "reconstruction", "distillation", "mlm"}
    noattn = load_config(PretrainConfig, REPO / "configs" / "had_1m_noattn_ntv2.yaml")
    assert noattn.model.build().num_attention_layers == 0


def test_overrides_apply(tmp_path):
    cfg = load_config(PretrainConfig, REPO / "configs" / "tiny.yaml",
                      ["train.max_steps=7", "optim.lr=1e-4", "model.overrides.chunk_size=32"])
    assert cfg.train.max_steps == 7 and cfg.optim.lr == 1e-4 and cfg.model.build().chunk_size == 32


def test_home_paths_in_configs_are_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_config(PretrainConfig, REPO / "configs" / "tiny.yaml",
                      ["train.output_dir=~/runs/x", "data.cache_dir=~/cache", "data.fasta=[~/g.fa, a~/b.fa]"])
    assert cfg.train.output_dir == str(tmp_path / "runs" / "x") and cfg.data.cache_dir == str(tmp_path / "cache")
    assert cfg.data.fasta == [str(tmp_path / "g.fa"), "a~/b.fa"]  # only a leading ~/ is the home directory


BAD = {
    "accum-does-not-divide-batch": (["train", "grad_accum_steps"], 3, "multiple of train.grad_accum_steps"),
    "mask-ratio-1": (["masking", "mask_ratio"], 1.0, "mask_ratio"),
    "unknown-preset": (["model", "preset"], "had-9m", "unknown preset"),
    "unknown-model-field": (["model", "overrides"], {"hidden_sise": 8}, "did you mean hidden_size"),
    "invalid-model-value": (["model", "overrides"], {"pooling": "sum"}, "pooling"),
    "negative-lr": (["optim", "lr"], -1.0, "optim.lr"),
    "bad-betas": (["optim", "betas"], [0.9], "optim.betas"),
    "bf16-typo": (["train", "precision"], "fp16", "precision"),
    "keep-zero": (["train", "keep_last_checkpoints"], 0, "keep_last_checkpoints"),
    "bed-split-without-bed": (["data", "bed_split"], "train", "bed_split"),
    "unknown-hint": (["hints"], {"genome": "x"}, "hints"),
}


@pytest.mark.parametrize("key,value,message", list(BAD.values()), ids=list(BAD))
def test_bad_values_are_config_errors(tmp_path, genome_fasta, key, value, message):
    data = config_dict(genome_fasta, tmp_path / "teacher", tmp_path / "run")
    node = data
    for k in key[:-1]:
        node = node[k]
    node[key[-1]] = value
    with pytest.raises(ConfigError, match=message):
        from_dict(PretrainConfig, data)


def test_teacher_modes_need_a_teacher(tmp_path, genome_fasta):
    with pytest.raises(ConfigError, match="teacher.path"):
        from_dict(PretrainConfig, config_dict(genome_fasta, None, tmp_path / "run", mode="distillation"))
    from_dict(PretrainConfig, config_dict(genome_fasta, None, tmp_path / "run", mode="mlm"))  # fine without


def test_recipe_dispatch(monkeypatch):
    from hadna.train import config as config_mod

    assert config_recipe("x.yaml", {"recipe": "pretrain"}) == "pretrain"
    assert config_recipe("benchmark_cpu.yaml", {}) == "benchmark"  # a registered file-name pattern
    assert config_recipe("other.yaml", {}) is None
    monkeypatch.setitem(config_mod.RECIPE_FILE_PATTERNS, "other*.yaml", "pretrain")
    assert config_recipe("other.yaml", {}) == "pretrain"


def test_a_config_of_another_recipe_is_named(tmp_path):
    with pytest.raises(ConfigError, match="recipe 'teacher-train'.*hadna teacher-train"):
        check_recipe({"recipe": "teacher-train"}, "pretrain", "x.yaml")
    with pytest.raises(ConfigError, match="unknown recipe"):
        recipe_config_class("nope")


# ----------------------------------------------------------------------------- schedule and weight decay
def test_lr_schedule_warms_up_then_decays_to_the_floor():
    lrs = [lr_at(s, 1.0, 4, 20, 0.1) for s in range(25)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert lrs[4] == pytest.approx(1.0) and lrs[19] == pytest.approx(0.1) and lrs[24] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    assert lr_at(11, 1.0, 4, 20, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 7 / 15)))


def test_no_weight_decay_on_norms_biases_and_gdn_gates():
    model = HadPretrainingModel(HadModel(HadConfig.preset("had-tiny")), ObjectiveConfig(decoder_width=32, decoder_heads=2),
                                teacher_dim=16)
    opt = build_optimizer(model, from_dict(PretrainConfig, {"data": {"fasta": ["x.fa"]},
                                                            "teacher": {"path": "t"}}).optim)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    plain = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    assert decayed and plain and not decayed & plain
    assert len(decayed) + len(plain) == len(names)
    assert any(n.endswith("A_log") for n in plain) and any(n.endswith("dt_bias") for n in plain)
    assert not any(n.endswith(("A_log", "dt_bias", ".bias")) or "norm" in n for n in decayed)
    assert all(p.ndim >= 2 for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"])


# ----------------------------------------------------------------------------- BED split column
def _split_bed(path: Path) -> Path:
    path.write_text("chr1\t0\t100\ttrain\nchr1\t100\t200\tvalid\nchr1\t200\t300\ttest\nchr2\t0\t50\ttrain\n")
    return path


@pytest.mark.parametrize("split,expected", [("train", [(0, 100), (0, 50)]), ("valid", [(100, 200)]),
                                            (["train", "valid"], [(0, 100), (100, 200), (0, 50)])],
                         ids=["train", "valid", "train+valid"])
def test_bed_rows_are_selected_by_split(tmp_path, split, expected):
    rows = read_bed(_split_bed(tmp_path / "s.bed"), split=split)
    assert [(r.start, r.end) for r in rows] == expected


def test_bed_split_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="no row has split 'validation'.*test, train, valid"):
        read_bed(_split_bed(tmp_path / "s.bed"), split="validation")
    three = tmp_path / "three.bed"
    three.write_text("chr1\t0\t100\n")
    with pytest.raises(DataError, match="line 1: .*4th column"):
        read_bed(three, split="train")
    assert len(read_bed(three)) == 1  # without a split the 4th column is not needed


def test_split_bed_gives_disjoint_train_and_validation(tmp_path):
    from hadna.data import GenomeDataConfig, GenomeWindows

    rng = torch.Generator().manual_seed(0)
    seq = "".join("ACGT"[i] for i in torch.randint(0, 4, (400,), generator=rng).tolist())
    fa = tmp_path / "g.fa"
    fa.write_text(f">chr1\n{seq}\n>chr2\n{seq[:60]}\n")
    bed = _split_bed(tmp_path / "s.bed")
    cfg = GenomeDataConfig(fasta=[str(fa)], bed=str(bed), bed_split=["train", "valid"], val_bed=str(bed),
                           val_bed_split="valid", window_length=40, num_val_windows=10, cache_dir=str(tmp_path / "c"))
    w = GenomeWindows.from_config(cfg)
    assert w.train_regions.to_local(w.store) == [("chr1", 0, 100), ("chr2", 0, 50)]
    assert w.val_regions.to_local(w.store) == [("chr1", 100, 200)]
