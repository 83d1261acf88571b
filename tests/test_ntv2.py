"""hadna's native NTv2 port, on small random checkpoints laid out like InstaDeep's NTv2 Hub repos.

The checkpoints here are written key by key from NTv2's parameter names (not by our model's
``state_dict``), and features are checked against a hand-written forward pass in plain torch ops,
so a wrong key name, a transposed weight or a swapped SwiGLU half fails.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hadna.errors import CheckpointError, HadnaError, MissingFileError
from hadna.teachers import NT_VOCAB, NT_VOCAB_SIZE, Teacher, load_ntv2, ntv2_support_problems, write_nt_vocab
from hadna.teachers.ntv2 import build_ntv2, read_vocab
from hadna.tokenization import batch_encode

transformers = pytest.importorskip("transformers")
from safetensors.torch import save_file  # noqa: E402

H, LAYERS, HEADS, INTER, MAX_POS = 32, 2, 4, 24, 66  # INTER != H and 2*INTER != H: transpositions cannot hide
EPS = 1e-12
SEQS = ["ACGTACGTACGTACGTAC", "NNACGTAAACCCGGGTTTA", "A", "GGGGGGNGGGGGGTTACGTACGTAC", "ACGTNACGTN"]

# Booby-trapped remote code: loading without trust_remote_code must never import these.
REMOTE_CODE = 'raise RuntimeError("NTv2 remote code was executed")\n'


def ntv2_config(**overrides) -> dict:
    """config.json as published for NTv2 (fields and values of the 500m repo), scaled down."""
    cfg = {
        "add_bias_fnn": False,
        "architectures": ["EsmForMaskedLM"],
        "attention_probs_dropout_prob": 0.0,
        "auto_map": {"AutoConfig": "esm_config.EsmConfig", "AutoModelForMaskedLM": "modeling_esm.EsmForMaskedLM"},
        "emb_layer_norm_before": False,
        "esmfold_config": None,
        "hidden_dropout_prob": 0.0,
        "hidden_size": H,
        "initializer_range": 0.02,
        "intermediate_size": INTER,
        "is_folding_model": False,
        "layer_norm_eps": EPS,
        "mask_token_id": 2,
        "max_position_embeddings": MAX_POS,
        "model_type": "esm",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "pad_token_id": 1,
        "position_embedding_type": "rotary",
        "tie_word_embeddings": False,
        "token_dropout": False,
        "torch_dtype": "float32",
        "transformers_version": "4.32.0.dev0",
        "use_cache": False,
        "vocab_list": None,
        "vocab_size": NT_VOCAB_SIZE,
    }
    cfg.update(overrides)
    return cfg


def ntv2_state(seed: int = 0, bias_fnn: bool = False) -> dict[str, torch.Tensor]:
    """Random weights under NTv2's key names and shapes, including what NT's code saves but never uses."""
    g = torch.Generator().manual_seed(seed)

    def w(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    def ln(prefix):
        return {f"{prefix}.weight": 1 + w(H, scale=0.1), f"{prefix}.bias": w(H, scale=0.1)}

    d = H // HEADS
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
    s = {
        "esm.embeddings.word_embeddings.weight": w(NT_VOCAB_SIZE, H, scale=1.0),
        "esm.embeddings.position_embeddings.weight": w(MAX_POS, H),  # created by NT's code even with rotary
    }
    for i in range(LAYERS):
        p = f"esm.encoder.layer.{i}."
        for name in ("query", "key", "value"):
            s[p + f"attention.self.{name}.weight"] = w(H, H)
            s[p + f"attention.self.{name}.bias"] = w(H, scale=0.1)
        s[p + "attention.self.rotary_embeddings.inv_freq"] = inv_freq.clone()
        s[p + "attention.output.dense.weight"] = w(H, H)
        s[p + "attention.output.dense.bias"] = w(H, scale=0.1)
        s.update(ln(p + "attention.LayerNorm"))
        s[p + "intermediate.dense.weight"] = w(2 * INTER, H)  # gated: [2I, H]
        s[p + "output.dense.weight"] = w(H, INTER)
        if bias_fnn:
            s[p + "intermediate.dense.bias"] = w(2 * INTER, scale=0.1)
            s[p + "output.dense.bias"] = w(H, scale=0.1)
        s.update(ln(p + "LayerNorm"))
    s.update(ln("esm.encoder.emb_layer_norm_after"))
    s["esm.contact_head.regression.weight"] = w(1, LAYERS * HEADS)
    s["esm.contact_head.regression.bias"] = w(1)
    s["lm_head.dense.weight"] = w(H, H)
    s["lm_head.dense.bias"] = w(H)
    s.update(ln("lm_head.layer_norm"))
    s["lm_head.decoder.weight"] = w(NT_VOCAB_SIZE, H)
    s["lm_head.bias"] = w(NT_VOCAB_SIZE)
    return s


def write_ntv2(path: Path, state: dict[str, torch.Tensor], config: dict | None = None, fmt: str = "safetensors") -> Path:
    """An NTv2 Hub-style directory: config.json (auto_map), remote code files, vocab.txt, tokenizer files, weights."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config or ntv2_config(), indent=2))
    (path / "esm_config.py").write_text(REMOTE_CODE)
    (path / "modeling_esm.py").write_text(REMOTE_CODE)
    write_nt_vocab(path / "vocab.txt")
    (path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 2048, "tokenizer_class": "EsmTokenizer"}))
    (path / "special_tokens_map.json").write_text(
        json.dumps({"cls_token": "<cls>", "mask_token": "<mask>", "pad_token": "<pad>", "unk_token": "<unk>"})
    )
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path / "model.safetensors"), metadata={"format": "pt"})
    else:
        torch.save(state, path / "pytorch_model.bin")
    return path


# ---------------------------------------------------------------- independent reference forward


def reference_hidden_states(s: dict[str, torch.Tensor], ids: torch.Tensor, mask: torch.Tensor, bias_fnn: bool = False) -> list[torch.Tensor]:
    """NTv2 in plain torch ops. ids, mask: [B, N] -> LAYERS + 1 tensors [B, N, H] (last after the final LN)."""
    B, N = ids.shape
    d = H // HEADS
    maskf = mask.to(torch.float32)

    def layer_norm(x, prefix):
        return F.layer_norm(x, (H,), s[prefix + ".weight"], s[prefix + ".bias"], EPS)

    def linear(x, prefix, bias=True):
        y = x @ s[prefix + ".weight"].T
        return y + s[prefix + ".bias"] if bias else y

    # rotary: positions 0..N-1 (<cls> at 0), frequencies 1/10000^(2j/d), dimension j paired with j + d/2
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
    angles = torch.arange(N, dtype=torch.float32)[:, None] * inv_freq[None, :]  # [N, d/2]
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)  # [N, d]

    def rotate(t):  # t: [B, heads, N, d]
        first, second = t[..., : d // 2], t[..., d // 2 :]
        return t * cos + torch.cat([-second, first], -1) * sin

    def heads(t):
        return t.view(B, N, HEADS, d).transpose(1, 2)

    x = s["esm.embeddings.word_embeddings.weight"][ids] * maskf[..., None]
    states = [x]
    for i in range(LAYERS):
        p = f"esm.encoder.layer.{i}."
        h = layer_norm(x, p + "attention.LayerNorm")
        q = rotate(heads(linear(h, p + "attention.self.query")) * d**-0.5)
        k = rotate(heads(linear(h, p + "attention.self.key")))
        v = heads(linear(h, p + "attention.self.value"))
        scores = (q @ k.transpose(-1, -2)).masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        attn = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, N, H)
        x = x + linear(attn, p + "attention.output.dense")
        h = layer_norm(x, p + "LayerNorm")
        u = linear(h, p + "intermediate.dense", bias=bias_fnn)  # [B, N, 2I]
        gated = F.silu(u[..., :INTER]) * u[..., INTER:]  # first half is the SiLU gate
        x = x + linear(gated, p + "output.dense", bias=bias_fnn)
        states.append(x)
    states[-1] = layer_norm(x, "esm.encoder.emb_layer_norm_after")
    return states


# ---------------------------------------------------------------- helpers and fixtures


def right_padded(seqs: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = batch_encode(seqs)
    return batch["input_ids"], batch["attention_mask"]


def assert_matches_reference(teacher: Teacher, state: dict, bias_fnn: bool = False) -> None:
    inputs = teacher.tokenize_batch(*right_padded(SEQS))
    ref = reference_hidden_states(state, inputs.input_ids, inputs.attention_mask, bias_fnn)[teacher.layer]
    got = teacher.features(inputs.input_ids, inputs.attention_mask)
    real = inputs.attention_mask.bool()
    torch.testing.assert_close(got[real], ref[real], atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def state():
    return ntv2_state(seed=0)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, state):
    return write_ntv2(tmp_path_factory.mktemp("ntv2") / "ntv2", state)


# ---------------------------------------------------------------- (a) loads natively, matches the reference


@pytest.mark.parametrize("layer", [0, 1, 2, -1])
def test_features_match_hand_written_reference(ckpt, state, layer):
    teacher = Teacher.from_pretrained(ckpt, layer=layer)  # no trust_remote_code: the remote files would raise
    assert type(teacher.model).__name__ == "NTv2ForMaskedLM"
    assert (teacher.num_layers, teacher.hidden_size) == (LAYERS, H)
    assert (teacher.pad_token_id, teacher.mask_token_id, teacher.cls_token_id) == (1, 2, 3)
    assert not teacher.model.training and not any(p.requires_grad for p in teacher.model.parameters())
    assert_matches_reference(teacher, state)


def test_logs_the_native_path(ckpt, caplog):
    with caplog.at_level("INFO", logger="hadna"):
        Teacher.from_pretrained(ckpt)
    assert any("native NTv2 port" in r.getMessage() for r in caplog.records)


def test_parameter_names_are_ntv2s(ckpt, state):
    model = load_ntv2(ckpt)
    ours = dict(model.named_parameters())
    # NTv2's parameters, less the position table NT's code creates but never reads with rotary positions
    ntv2 = {k for k in state if not k.endswith("inv_freq") and k != "esm.embeddings.position_embeddings.weight"}
    assert set(ours) == ntv2
    for k in ntv2:
        assert torch.equal(ours[k], state[k]), k
    assert ours["esm.encoder.layer.0.intermediate.dense.weight"].shape == (2 * INTER, H)
    assert "esm.encoder.layer.0.intermediate.dense.bias" not in ours  # add_bias_fnn false


def test_swapping_the_swiglu_halves_changes_features(ckpt, state, tmp_path):
    """Guards the gate/value order: the reference gates with the first half."""
    swapped = dict(state)
    for i in range(LAYERS):
        k = f"esm.encoder.layer.{i}.intermediate.dense.weight"
        swapped[k] = torch.cat([state[k][INTER:], state[k][:INTER]])
    teacher = Teacher.from_pretrained(write_ntv2(tmp_path / "swapped", swapped))
    inputs = teacher.tokenize_batch(*right_padded(SEQS))
    ref = reference_hidden_states(state, inputs.input_ids, inputs.attention_mask)[-1]
    assert not torch.allclose(teacher.features(inputs.input_ids, inputs.attention_mask), ref, atol=1e-3)


def test_add_bias_fnn_true(tmp_path):
    state = ntv2_state(seed=1, bias_fnn=True)
    teacher = Teacher.from_pretrained(write_ntv2(tmp_path / "b", state, ntv2_config(add_bias_fnn=True)))
    assert teacher.model.esm.encoder.layer[0].intermediate.dense.bias is not None
    assert_matches_reference(teacher, state, bias_fnn=True)


def test_lm_head_and_contact_head_may_be_absent(state, tmp_path):
    encoder_only = {k: v for k, v in state.items() if k.startswith("esm.") and "contact_head" not in k}
    teacher = Teacher.from_pretrained(write_ntv2(tmp_path / "enc", encoder_only))
    assert_matches_reference(teacher, state)


def test_vocab_is_read_like_esm_tokenizer(tmp_path):
    order = list(NT_VOCAB)
    random.Random(1).shuffle(order)
    (tmp_path / "vocab.txt").write_text("\n".join(order) + "\n")
    tok = transformers.EsmTokenizer(str(tmp_path / "vocab.txt"))
    assert read_vocab(tmp_path) == {t: i for t, i in tok.get_vocab().items() if t in order}


def test_half_precision_keeps_rotary_frequencies_float32(ckpt):
    model = load_ntv2(ckpt, dtype=torch.bfloat16)
    assert model.esm.embeddings.word_embeddings.weight.dtype == torch.bfloat16
    assert model.esm.rotary_embeddings.inv_freq.dtype == torch.float32


def test_published_ntv2_500m_config_builds_the_right_shapes():
    cfg = ntv2_config(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=29, max_position_embeddings=2050)
    assert ntv2_support_problems(cfg) == []
    with torch.device("meta"):  # shapes only, no 2 GB allocation
        model = build_ntv2(cfg)
    sd = model.state_dict()
    assert sd["esm.encoder.layer.28.intermediate.dense.weight"].shape == (8192, 1024)
    assert sd["esm.encoder.layer.28.output.dense.weight"].shape == (1024, 4096)
    # 496,246,236 parameters; with the 2050 x 1024 position table NT's code also stores that is
    # 1.993e9 bytes in float32, the size the Hub lists for the repo's pytorch_model.bin (1.99 GB).
    assert sum(p.numel() for p in model.parameters()) == 496_246_236


# ---------------------------------------------------------------- (b) strict weights


@pytest.mark.parametrize(
    "key",
    [
        "esm.embeddings.word_embeddings.weight",
        "esm.encoder.layer.0.attention.self.query.bias",
        "esm.encoder.layer.1.intermediate.dense.weight",
        "esm.encoder.emb_layer_norm_after.weight",
    ],
    ids=["word_embeddings", "query_bias", "gated_intermediate", "final_layer_norm"],
)
def test_missing_encoder_weight_is_named(state, tmp_path, key):
    broken = {k: v for k, v in state.items() if k != key}
    d = write_ntv2(tmp_path / "m", broken)
    with pytest.raises(CheckpointError, match="lacks encoder weights") as err:
        Teacher.from_pretrained(d)
    assert key in str(err.value) and "model.safetensors" in str(err.value)


def test_unexpected_encoder_weight_is_named(state, tmp_path):
    extra = dict(state)
    extra["esm.encoder.layer.0.intermediate.dense.bias"] = torch.zeros(2 * INTER)  # config says add_bias_fnn false
    with pytest.raises(CheckpointError, match="esm.encoder.layer.0.intermediate.dense.bias"):
        Teacher.from_pretrained(write_ntv2(tmp_path / "u", extra))


def test_bias_free_weights_with_add_bias_fnn_true_are_refused(state, tmp_path):
    d = write_ntv2(tmp_path / "nb", state, ntv2_config(add_bias_fnn=True))
    with pytest.raises(CheckpointError, match=r"lacks encoder weights.*intermediate\.dense\.bias"):
        Teacher.from_pretrained(d)


def test_ungated_feed_forward_weights_are_refused(state, tmp_path):
    """An auto_map checkpoint whose weights are plain ESM (GELU, [I, H]) does not fit the NTv2 port."""
    plain = dict(state)
    for i in range(LAYERS):
        k = f"esm.encoder.layer.{i}.intermediate.dense.weight"
        plain[k] = state[k][:INTER]
    with pytest.raises(CheckpointError, match=r"wrong shape.*intermediate\.dense\.weight.*\(24, 32\).*\(48, 32\).*2 \* intermediate_size"):
        Teacher.from_pretrained(write_ntv2(tmp_path / "plain", plain))


def test_extra_layer_is_refused(state, tmp_path):
    d = write_ntv2(tmp_path / "l", state, ntv2_config(num_hidden_layers=1))
    with pytest.raises(CheckpointError, match=r"esm\.encoder\.layer\.1\."):
        Teacher.from_pretrained(d)


def test_fine_tuned_classifier_head_is_ignored(state, tmp_path):
    with_head = dict(state, **{"classifier.dense.weight": torch.zeros(H, H), "classifier.out_proj.weight": torch.zeros(2, H)})
    teacher = Teacher.from_pretrained(write_ntv2(tmp_path / "cls", with_head))
    assert_matches_reference(teacher, state)


def test_no_weights_file(state, tmp_path):
    d = write_ntv2(tmp_path / "nw", state)
    (d / "model.safetensors").unlink()
    with pytest.raises(MissingFileError, match="no weights.*model.safetensors.*pytorch_model.bin"):
        Teacher.from_pretrained(d)


def test_sharded_safetensors(state, tmp_path):
    d = write_ntv2(tmp_path / "sh", state)
    (d / "model.safetensors").unlink()
    keys = sorted(state)
    halves = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2], "model-00002-of-00002.safetensors": keys[len(keys) // 2 :]}
    for name, ks in halves.items():
        save_file({k: state[k].contiguous() for k in ks}, str(d / name), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: name for name, ks in halves.items() for k in ks}}
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    assert_matches_reference(Teacher.from_pretrained(d), state)


# ---------------------------------------------------------------- (c) .bin only, weights_only


def test_bin_only_checkpoint_loads(state, tmp_path):
    d = write_ntv2(tmp_path / "bin", state, fmt="bin")
    assert not (d / "model.safetensors").exists()
    assert_matches_reference(Teacher.from_pretrained(d), state)


def test_safetensors_preferred_over_bin(ckpt, state, tmp_path):
    import shutil

    d = Path(shutil.copytree(ckpt, tmp_path / "both"))
    (d / "pytorch_model.bin").write_bytes(b"never unpickled")
    assert_matches_reference(Teacher.from_pretrained(d), state)


EXECUTED: list[str] = []


def _record(tag: str) -> None:
    EXECUTED.append(tag)


class _Payload:
    """Unpickling this would call _record: proof that weights_only refused it without running anything."""

    def __reduce__(self):
        return (_record, ("payload ran",))


def test_bin_with_arbitrary_pickle_is_refused(state, tmp_path):
    d = write_ntv2(tmp_path / "evil", {}, fmt="bin")
    torch.save({"esm.embeddings.word_embeddings.weight": _Payload()}, d / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="refusing to load.*pytorch_model.bin.*weights_only"):
        Teacher.from_pretrained(d)
    assert EXECUTED == []


def test_bin_that_is_not_a_plain_state_dict_is_refused(state, tmp_path):
    d = write_ntv2(tmp_path / "nested", {}, fmt="bin")
    torch.save({"model": state, "step": 3}, d / "pytorch_model.bin")  # loadable with weights_only, but nested
    with pytest.raises(CheckpointError, match="not a plain state dict.*'model'"):
        Teacher.from_pretrained(d)


def test_corrupt_safetensors(state, tmp_path):
    d = write_ntv2(tmp_path / "corrupt", state)
    (d / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="cannot read weights.*model.safetensors"):
        Teacher.from_pretrained(d)


# ---------------------------------------------------------------- (d) what the native port does not cover


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"auto_map": {"AutoModelForMaskedLM": "modeling_custom.MyModel"}}, "code other than NT's"),
        ({"auto_map": {"AutoConfig": "esm_config.EsmConfig"}}, "no modeling_esm class"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key'"),
        ({"is_decoder": True}, "is_decoder is set"),
        ({"model_type": "bert"}, "model_type is 'bert'"),
        ({"rope_theta": 500000.0}, "custom rotary settings"),
        ({"hidden_size": 30}, "not divisible"),
        ({"add_bias_fnn": "no"}, "add_bias_fnn is 'no'"),
    ],
    ids=["foreign_code", "no_model_class", "relative_positions", "decoder", "not_esm", "rope_theta", "bad_heads", "bad_bias_flag"],
)
def test_unsupported_auto_map_checkpoint_still_needs_trust_remote_code(state, tmp_path, overrides, reason):
    d = write_ntv2(tmp_path / "unsup", state, ntv2_config(**overrides))
    with pytest.raises(HadnaError, match="--trust-remote-code") as err:
        Teacher.from_pretrained(d)
    msg = str(err.value)
    assert reason in msg and str(d) in msg and "auto_map" in msg


def test_trust_remote_code_takes_the_checkpoints_own_code(ckpt, monkeypatch, tmp_path):
    """The explicit alternative still runs the shipped code (here booby-trapped), reported as one line."""
    import transformers.dynamic_module_utils as dmu

    monkeypatch.setattr(dmu, "HF_MODULES_CACHE", str(tmp_path / "modules"))  # keep the user's cache clean
    monkeypatch.syspath_prepend(str(tmp_path / "modules"))
    with pytest.raises(CheckpointError, match="NTv2 remote code was executed"):
        Teacher.from_pretrained(ckpt, trust_remote_code=True)


def test_load_ntv2_refuses_unsupported_config(state, tmp_path):
    d = write_ntv2(tmp_path / "direct", state, ntv2_config(position_embedding_type="relative_key"))
    with pytest.raises(CheckpointError, match="not a checkpoint hadna's NTv2 port can load.*relative_key"):
        load_ntv2(d)


def test_transformers5_layer_norm_names_are_accepted(state, tmp_path):
    """transformers 5's save_pretrained writes ESM's LayerNorm parameters as gamma/beta."""
    renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v for k, v in state.items()}
    assert any(k.endswith("LayerNorm.gamma") for k in renamed)
    assert_matches_reference(Teacher.from_pretrained(write_ntv2(tmp_path / "gb", renamed)), state)


def test_core_esm_checkpoint_with_nt_auto_map_does_not_fit(tmp_path):
    """A GELU ESM checkpoint (our random teacher) given NT's auto_map: refused by shape, with the alternative named."""
    from hadna.teachers import make_random_nt_teacher

    d = make_random_nt_teacher(tmp_path / "core", hidden_size=H, num_layers=1, num_heads=HEADS, intermediate_size=INTER)
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = ntv2_config()["auto_map"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"wrong shape.*intermediate\.dense\.weight.*--trust-remote-code") as err:
        Teacher.from_pretrained(d)
    assert str(d) in str(err.value)


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_hub_id_resolved_from_the_local_cache(state, tmp_path, monkeypatch, fmt):
    """A Hub id whose files are already in the Hugging Face cache loads offline via the native port."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--hadna-tests--tiny-ntv2"
    write_ntv2(repo / "snapshots" / commit, state, fmt=fmt)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    teacher = Teacher.from_pretrained("hadna-tests/tiny-ntv2")
    assert teacher.source == "hadna-tests/tiny-ntv2"
    assert_matches_reference(teacher, state)


def test_missing_or_foreign_vocab(state, tmp_path):
    d = write_ntv2(tmp_path / "v", state)
    (d / "vocab.txt").write_text("\n".join(["<unk>", "<pad>", "<mask>", "<cls>", "A", "C", "G", "T", "N"]))
    with pytest.raises(CheckpointError, match="NT-style 6-mer vocabulary.*missing: AAAAAA"):
        Teacher.from_pretrained(d)
    (d / "vocab.txt").unlink()
    with pytest.raises(MissingFileError, match="no vocab.txt"):
        Teacher.from_pretrained(d)


def test_several_layers_are_concatenated_in_order(ckpt):
    import torch

    ids = torch.tensor([[4, 5, 6, 7, 4, 5, 6, 7, 8, 4, 5]])
    both = Teacher.from_pretrained(ckpt, layers=[1, -1])
    toks = both.tokenize_batch(ids)
    parts = [Teacher.from_pretrained(ckpt, layer=k).features(toks.input_ids, toks.attention_mask) for k in (1, -1)]
    assert both.layers == [1, LAYERS] and both.feature_size == 2 * H
    assert torch.equal(both.features(toks.input_ids, toks.attention_mask), torch.cat(parts, -1))
