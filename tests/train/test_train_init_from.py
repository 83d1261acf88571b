"""Continued pre-training (``model.init_from``): the backbone starts from a saved model, the heads do not;
wrong architectures, partial or missing weights and a changed start on resume are refused with one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from hadna.cli import main as cli_main
from hadna.config import from_dict
from hadna.errors import CheckpointError, ConfigError
from hadna.models import HadConfig, HadModel
from hadna.train.config import ModelSection, PretrainConfig
from hadna.train.pretrain import HadPretraining, initial_backbone, run_pretrain
from train_helpers import config_dict


def _saved_backbone(tmp_path, name: str, seed: int, **overrides) -> str:
    """A random had-tiny backbone (the test configs' architecture) saved as hadna saves one."""
    torch.manual_seed(seed)
    model = HadModel(HadConfig.preset("had-tiny", chunk_size=16, **overrides))
    out = tmp_path / name
    model.save_pretrained(out, safe_serialization=True)
    return str(out)


def _config(genome_fasta, out, init_from, mode="mlm", **train) -> PretrainConfig:
    data = config_dict(genome_fasta, None, out, mode=mode, **train)
    data["model"]["init_from"] = init_from
    return from_dict(PretrainConfig, data)


def test_the_backbone_starts_from_the_saved_weights_and_the_heads_as_without(tmp_path, genome_fasta):
    src = _saved_backbone(tmp_path, "src", seed=5)
    task = HadPretraining(_config(genome_fasta, tmp_path / "a", src))
    plain = HadPretraining(_config(genome_fasta, tmp_path / "b", None))
    saved = load_file(f"{src}/model.safetensors")
    student = task.model.student.state_dict()
    assert set(saved) == set(student)
    for k, v in saved.items():
        assert torch.equal(student[k], v), k
    assert not torch.equal(student["embeddings.weight"], plain.model.student.state_dict()["embeddings.weight"])
    heads = {k: v for k, v in task.model.state_dict().items() if not k.startswith("student.")}
    plain_heads = {k: v for k, v in plain.model.state_dict().items() if not k.startswith("student.")}
    assert heads and set(heads) == set(plain_heads)
    for k in heads:
        assert torch.equal(heads[k], plain_heads[k]), k
    assert "init_weights_sha256" in task.compat() and "init_weights_sha256" not in plain.compat()


def test_a_continued_run_trains_and_records_its_start(tmp_path, genome_fasta):
    src = _saved_backbone(tmp_path, "src", seed=5)
    out = tmp_path / "run"
    result = run_pretrain(_config(genome_fasta, out, src, max_steps=2, val_every=0, save_every=2))
    assert result.step == 2
    summary = json.loads((out / "final" / "training_summary.json").read_text())
    assert summary["init_from"]["source"] == src and len(summary["init_from"]["weights_sha256"]) == 64
    card = (out / "final" / "README.md").read_text()
    assert f"continued from `{src}`" in card and summary["init_from"]["weights_sha256"][:16] in card
    trained = load_file(str(out / "final" / "model.safetensors"))
    start = load_file(f"{src}/model.safetensors")
    assert not torch.equal(trained["embeddings.weight"], start["embeddings.weight"])  # it did train


def test_a_random_start_says_so_in_the_card(tmp_path, genome_fasta):
    out = tmp_path / "run"
    run_pretrain(_config(genome_fasta, out, None, max_steps=1, val_every=0, save_every=0))
    summary = json.loads((out / "final" / "training_summary.json").read_text())
    assert summary["init_from"] is None
    assert "| initial weights | random (seed 1) |" in (out / "final" / "README.md").read_text()


def test_resuming_with_other_initial_weights_is_refused(tmp_path, genome_fasta):
    a = _saved_backbone(tmp_path, "a", seed=5)
    b = _saved_backbone(tmp_path, "b", seed=6)
    out = tmp_path / "run"
    run_pretrain(_config(genome_fasta, out, a, max_steps=2, val_every=0, save_every=1))
    with pytest.raises(CheckpointError, match="init_weights_sha256"):
        run_pretrain(_config(genome_fasta, out, b, max_steps=3, val_every=0, save_every=1), resume=True)
    # the same weights under another path resume (the record is the weights, not the name)
    import shutil

    shutil.copytree(a, tmp_path / "a-copy")
    result = run_pretrain(_config(genome_fasta, out, str(tmp_path / "a-copy"), max_steps=3, val_every=0,
                                  save_every=1), resume=True)
    assert result.resumed_from == 2 and result.step == 3


def test_a_different_architecture_is_named_field_by_field(tmp_path, genome_fasta):
    src = _saved_backbone(tmp_path, "wide", seed=5, hidden_size=64, intermediate_size=128)
    section = ModelSection(preset="had-tiny", overrides={"chunk_size": 16}, init_from=src)
    with pytest.raises(ConfigError, match=r"hidden_size 64 \(this config: 32\).*intermediate_size 128"):
        initial_backbone(section, section.build())


def test_partial_weights_are_refused(tmp_path):
    src = _saved_backbone(tmp_path, "part", seed=5)
    weights = load_file(f"{src}/model.safetensors")
    dropped = sorted(k for k in weights if k.startswith("layers.0."))[0]
    del weights[dropped]
    save_file(weights, f"{src}/model.safetensors", metadata={"format": "pt"})
    section = ModelSection(preset="had-tiny", overrides={"chunk_size": 16}, init_from=src)
    with pytest.raises(CheckpointError, match=f"lacks backbone weights.*{dropped}"):
        initial_backbone(section, section.build())


def test_the_shipped_student_continues_under_its_preset():
    section = ModelSection(preset="had-1m", init_from="pretrained:had-1m-primates")
    state, digest = initial_backbone(section, section.build())
    from hadna.models.pretrained import pretrained_path

    shipped = load_file(str(pretrained_path("had-1m-primates") / "model.safetensors"))  # fp16 on disk
    assert set(shipped) == set(state) and sum(v.numel() for v in shipped.values()) == 1_096_480
    for k, v in shipped.items():
        assert state[k].dtype == torch.float32 and torch.equal(state[k], v.float()), k
    assert len(digest) == 64
    with pytest.raises(ConfigError, match="hidden_size 128 \\(this config: 32\\)"):
        tiny = ModelSection(preset="had-tiny", init_from="pretrained:had-1m-primates")
        initial_backbone(tiny, tiny.build())


@pytest.mark.parametrize("where, expected", [
    ("nowhere", "model.init_from: .*nowhere is not a saved hadna model"),
    ("pretrained:no-such-model", "unknown pre-trained model pretrained:no-such-model; shipped: .*had-1m-primates"),
])
def test_a_missing_start_is_a_one_line_error_before_any_work(tmp_path, genome_fasta, capsys, where, expected):
    import re

    import yaml

    data = config_dict(genome_fasta, None, tmp_path / "run", mode="mlm", max_steps=1)
    data["model"]["init_from"] = str(tmp_path / where) if where == "nowhere" else where
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(data))
    rc = cli_main(["pretrain", "--config", str(cfg)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("hadna: error:")]
    assert len(lines) == 1 and re.search(expected, lines[0]), lines
    assert not (tmp_path / "run").exists()


def test_fine_tuned_and_masked_lm_saves_give_their_backbone(tmp_path):
    from hadna.models import HadForMaskedLM, HadForSequenceClassification

    config = HadConfig.preset("had-tiny", chunk_size=16)
    section = ModelSection(preset="had-tiny", overrides={"chunk_size": 16})
    for cls, kwargs in ((HadForSequenceClassification, {"num_labels": 3}), (HadForMaskedLM, {})):
        torch.manual_seed(7)
        model = cls(HadConfig.preset("had-tiny", chunk_size=16, **kwargs))
        out = tmp_path / cls.__name__
        model.save_pretrained(out, safe_serialization=True)
        section.init_from = str(out)
        state, _ = initial_backbone(section, config)
        for k, v in model.had.state_dict().items():
            assert torch.equal(state[k], v), (cls.__name__, k)


def test_chunk_size_and_the_spelling_of_the_layout_do_not_count_as_architecture(tmp_path):
    src = _saved_backbone(tmp_path, "chunk16", seed=5)  # attention_position "last" = 2 of had-tiny's 3 blocks
    section = ModelSection(preset="had-tiny", overrides={"chunk_size": 32, "attention_position": 2}, init_from=src)
    state, _ = initial_backbone(section, section.build())
    assert torch.equal(state["embeddings.weight"], load_file(f"{src}/model.safetensors")["embeddings.weight"])
    section.overrides["attention_position"] = 0  # a different layout is refused
    with pytest.raises(ConfigError, match=r"block_types \['gdn', 'gdn', 'attention'\] \(this config: \['attention'"):
        initial_backbone(section, section.build())


def test_weights_that_disagree_with_their_config_are_refused(tmp_path):
    src = _saved_backbone(tmp_path, "edited", seed=5, intermediate_size=128)
    cfg = json.loads((tmp_path / "edited" / "config.json").read_text())
    cfg["intermediate_size"] = HadConfig.preset("had-tiny").intermediate_size  # hand-edited: weights are 128 wide
    (tmp_path / "edited" / "config.json").write_text(json.dumps(cfg))
    section = ModelSection(preset="had-tiny", overrides={"chunk_size": 16}, init_from=src)
    with pytest.raises(CheckpointError, match=r"model.init_from: .*lacks backbone weights \(\d+ missing or mis-shaped"):
        initial_backbone(section, section.build())


def test_a_directory_of_another_model_type_is_named(tmp_path):
    (tmp_path / "esm").mkdir()
    (tmp_path / "esm" / "config.json").write_text(json.dumps({"model_type": "esm"}))
    section = ModelSection(preset="had-tiny", init_from=str(tmp_path / "esm"))
    with pytest.raises(ConfigError, match="holds a 'esm' model, not a hadna student"):
        section.init_path()


def test_resuming_without_init_from_says_what_to_do(tmp_path, genome_fasta):
    src = _saved_backbone(tmp_path, "a", seed=5)
    out = tmp_path / "run"
    run_pretrain(_config(genome_fasta, out, src, max_steps=2, val_every=0, save_every=1))
    with pytest.raises(CheckpointError, match="init_weights_sha256: .* -> '<absent>'.*model.init_from must name the "
                                              "weights the run started from"):
        run_pretrain(_config(genome_fasta, out, None, max_steps=3, val_every=0, save_every=1), resume=True)


def test_a_config_naming_a_model_not_yet_written_still_loads(tmp_path, genome_fasta):
    cfg = _config(genome_fasta, tmp_path / "run", str(tmp_path / "later" / "final"))  # validate() passes
    with pytest.raises(ConfigError, match="is not a saved hadna model"):
        run_pretrain(cfg)


def test_the_readme_override_continues_the_shipped_student_from_the_command_line(tmp_path, genome_fasta, capsys):
    """``model.init_from=pretrained:NAME objective.mode=mlm`` as the README writes it (a colon in the value)."""
    import yaml

    data = config_dict(genome_fasta, None, tmp_path / "ignored", mode="had")
    data["model"] = {"preset": "had-tiny"}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(data))
    rc = cli_main(["pretrain", "--config", str(cfg), "model.preset=had-1m", "model.init_from=pretrained:had-1m-primates",
                   "objective.mode=mlm", "train.max_steps=1", "train.val_every=0", "--output-dir", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "final" / "training_summary.json").read_text())
    assert summary["init_from"]["source"] == "pretrained:had-1m-primates" and summary["student_parameters"] == 1_096_480
