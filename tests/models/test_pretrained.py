"""Shipped students: pack a run's final/ into the package format, load it offline by name."""

from __future__ import annotations

import pytest
import torch

import hadna.models.pretrained as pretrained
from hadna.errors import ConfigError
from hadna.models import HadConfig, HadForMaskedLM, HadModel
from hadna.train.export import pack_pretrained


@pytest.fixture()
def shipped(tmp_path, monkeypatch):
    """A had-tiny masked-LM save packed as pretrained:tiny-test into a temporary resources directory."""
    torch.manual_seed(0)
    src = tmp_path / "run" / "final"
    mlm = HadForMaskedLM(HadConfig.preset("had-tiny"))
    mlm.save_pretrained(src)
    root = tmp_path / "pretrained"
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", root)
    pack_pretrained(src, root / "tiny-test", "# tiny-test\n\na model card\n")
    return mlm


def test_a_packed_student_loads_by_name_in_fp32_with_fp16_weights(shipped, tmp_path):
    assert pretrained.available_pretrained() == ["tiny-test"]
    d = tmp_path / "pretrained" / "tiny-test"
    assert sorted(p.name for p in d.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    model = HadModel.from_pretrained("pretrained:tiny-test")
    assert next(model.parameters()).dtype == torch.float32
    ref = shipped.had.state_dict()
    for name, p in model.state_dict().items():
        assert torch.equal(p, ref[name].half().float()), name  # exactly the fp16 rounding of the source
    ids = torch.randint(4, 8, (2, 50))
    with torch.no_grad():
        a = model(input_ids=ids).last_hidden_state
        b = shipped.had(input_ids=ids).last_hidden_state
    assert (a - b).abs().max() < 5e-2 * b.abs().max()


def test_unknown_names_list_what_is_shipped(shipped):
    with pytest.raises(ConfigError, match=r"unknown pre-trained model pretrained:nope; shipped: pretrained:tiny-test"):
        HadModel.from_pretrained("pretrained:nope")
    assert pretrained.resolve_model_path("some/dir") == "some/dir"
    assert pretrained.resolve_model_path("pretrained:tiny-test").endswith("tiny-test")


def test_the_eval_harness_takes_pretrained_specs(shipped):
    from hadna.eval.models import load_eval_model, parse_model_spec

    spec = parse_model_spec("pretrained:tiny-test")
    assert spec.kind == "hadna" and spec.name == "pretrained:tiny-test" and spec.target.endswith("tiny-test")
    assert parse_model_spec("mine=pretrained:tiny-test").name == "mine"
    model = load_eval_model(spec, 2, seed=0, device="cpu")
    assert model.encoder_parameters() == sum(p.numel() for p in shipped.had.parameters())
    with pytest.raises(ConfigError, match="shipped: pretrained:tiny-test"):
        parse_model_spec("pretrained:nope")
