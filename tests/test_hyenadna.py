"""hadna's native HyenaDNA port: causal long convolution, padding, strict loading, no remote code, and
equivalence with HyenaDNA's own modelling code on real HyenaDNA-tiny weights (when available).

The real checkpoint ships in the GPL-3.0 ``anticapt`` wheel (``pip download --no-deps anticapt``); the
equivalence test finds it through ``HADNA_HYENADNA_PATH`` (a HyenaDNA folder with its remote code) or the
installed ``anticapt`` package, and is skipped otherwise. hadna never copies or imports that code itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from hadna.errors import CheckpointError, ConfigError
from hadna.teachers import Teacher
from hadna.teachers.hyenadna import (
    HyenaDNAConfig,
    HyenaDNAModel,
    causal_long_conv,
    load_hyenadna,
    make_random_hyenadna,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_random_hyenadna(tmp_path_factory.mktemp("hyena") / "tiny", d_model=16, n_layer=2, max_seq_len=64)


def _ids(B: int, N: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(7, 12, (B, N), generator=g)


def test_long_convolution_is_the_causal_sum():
    g = torch.Generator().manual_seed(0)
    u, h, skip = torch.randn(2, 3, 9, generator=g), torch.randn(3, 9, generator=g), torch.randn(3, generator=g)
    ref = torch.zeros_like(u)
    for i in range(9):
        for j in range(i + 1):
            ref[..., i] += h[:, j] * u[..., i - j]
    ref += u * skip[:, None]
    torch.testing.assert_close(causal_long_conv(u, h, skip), ref, atol=1e-5, rtol=1e-5)


def test_outputs_are_causal_and_left_padding_changes_nothing(tiny):
    model = load_hyenadna(tiny)
    ids = _ids(2, 20)
    with torch.no_grad():
        base = model(ids, output_hidden_states=True)
        changed = ids.clone()
        changed[:, 12] = 7 + (changed[:, 12] - 6) % 5                      # another base at position 12
        after = model(changed).last_hidden_state
        assert torch.equal(after[:, :12], base.last_hidden_state[:, :12])   # earlier tokens never read it
        assert not torch.allclose(after[:, 12:], base.last_hidden_state[:, 12:])
        padded = torch.cat([torch.full((2, 5), 4), ids], 1)                  # 5 [PAD] on the left
        mask = torch.cat([torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 20, dtype=torch.long)], 1)
        left = model(padded, attention_mask=mask, output_hidden_states=True)
        right = model(torch.cat([ids, torch.full((2, 5), 4)], 1))
    torch.testing.assert_close(left.last_hidden_state[:, 5:], base.last_hidden_state, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(right.last_hidden_state[:, :20], base.last_hidden_state, atol=1e-6, rtol=1e-5)
    assert len(base.hidden_states) == 3                                      # embeddings, block 1, normalised block 2
    assert torch.equal(base.hidden_states[-1], base.last_hidden_state)


def test_too_long_inputs_are_a_clear_error(tiny):
    with pytest.raises(ConfigError, match="at most 64 tokens"):
        load_hyenadna(tiny)(_ids(1, 65))


def test_strict_loading(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(tiny / "model.safetensors"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((tiny / "config.json").read_text())
    save_file({k: v for k, v in state.items() if "fc1.weight" not in k}, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing backbone.layers.0.mlp.fc1.weight"):
        load_hyenadna(bad)
    cfg = json.loads((tiny / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "d_inner": 24}))
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_hyenadna(bad)
    # the causal-LM checkpoints' "hyena." prefix and their heads are accepted
    prefixed = tmp_path / "lm"
    prefixed.mkdir()
    (prefixed / "config.json").write_text((tiny / "config.json").read_text())
    save_file({**{"hyena." + k: v for k, v in state.items()}, "lm_head.weight": torch.zeros(16, 16)},
              str(prefixed / "model.safetensors"))
    ids = _ids(1, 10)
    with torch.no_grad():
        assert torch.equal(load_hyenadna(prefixed)(ids).last_hidden_state, load_hyenadna(tiny)(ids).last_hidden_state)


def test_teacher_loads_natively_and_never_imports_the_checkpoints_code(tiny, tmp_path):
    folder = tmp_path / "with-remote-code"
    folder.mkdir()
    for f in tiny.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((tiny / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "modeling_hyena.HyenaDNAModel"}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "modeling_hyena.py").write_text("raise RuntimeError('remote code was run')\n")
    teacher = Teacher.from_pretrained(folder, layers=[1, -1])
    assert teacher.family == "char" and teacher.causal and teacher.feature_size == 32
    toks = teacher.tokenize_batch(torch.tensor([[4, 5, 6, 7, 8]]))
    assert toks.input_ids.tolist() == [[7, 8, 9, 10, 11, 1]]                # A C G T N [SEP]
    feats = teacher.features(toks.input_ids, toks.attention_mask)
    assert feats.shape == (1, 6, 32)


def _hyenadna_with_remote_code() -> Path | None:
    env = os.environ.get("HADNA_HYENADNA_PATH")
    if env:
        return Path(env)
    try:
        import anticapt  # noqa: F401 - optional, GPL-3.0; only located, never imported for its code
    except ImportError:
        return None
    path = Path(anticapt.__file__).parent / "models" / "dataset1" / "finetuned_hyenadna"
    return path if path.is_dir() else None


def test_native_port_matches_the_remote_code_on_real_hyenadna_weights():
    path = _hyenadna_with_remote_code()
    if path is None:
        pytest.skip("no real HyenaDNA checkpoint with remote code: set HADNA_HYENADNA_PATH or pip install the "
                    "anticapt wheel (`pip download --no-deps anticapt`)")
    from transformers import AutoModel

    remote = AutoModel.from_pretrained(str(path), trust_remote_code=True).eval()  # the test's reference only
    native = load_hyenadna(path)
    ids = _ids(2, 1025, seed=1)
    ids[:, -1] = 1                                                           # [SEP]
    with torch.no_grad():
        r = remote(ids, output_hidden_states=True, return_dict=True)
        n = native(ids, output_hidden_states=True)
        teacher = Teacher.from_pretrained(path, layers=[1, -1])
        feats = teacher.features(ids, torch.ones_like(ids))
    L = native.config.n_layer
    diffs = [float((r.hidden_states[k] - n.hidden_states[k]).abs().max()) for k in range(L)]
    diffs.append(float((r.last_hidden_state - n.last_hidden_state).abs().max()))
    assert max(diffs) <= 1e-5, diffs                                         # measured: 0.0 (identical)
    assert torch.equal(feats[..., 128:], n.last_hidden_state) and torch.equal(feats[..., :128], n.hidden_states[1])


def test_config_refusals():
    with pytest.raises(CheckpointError, match="hyena_order 3"):
        HyenaDNAConfig.from_dict({"hyena_order": 3, "d_model": 8})
    assert HyenaDNAConfig.from_dict({"d_model": 8}).d_inner == 32
    assert isinstance(HyenaDNAModel(HyenaDNAConfig(d_model=8, n_layer=1, max_seq_len=8, emb_dim=3)), HyenaDNAModel)


def test_half_precision_keeps_the_filters_in_float32(tiny):
    model = load_hyenadna(tiny, dtype=torch.bfloat16)
    assert model.backbone.layers[0].mixer.filter_fn.pos_emb.t.dtype == torch.float32
    assert model.backbone.layers[0].mixer.in_proj.weight.dtype == torch.bfloat16
    ids = _ids(2, 40)
    with torch.no_grad():
        half = model(ids).last_hidden_state
        full = load_hyenadna(tiny)(ids).last_hidden_state
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), full, atol=0.1, rtol=0.05)
