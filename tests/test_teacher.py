"""The frozen teacher wrapper, on small random NT-format checkpoints written into tmp dirs."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
import torch

from hadna.errors import CheckpointError, ConfigError, HadnaError, MissingFileError
from hadna.teachers import (
    NT_VOCAB,
    NT_VOCAB_SIZE,
    Teacher,
    make_random_nt_teacher,
    nt_esm_config,
    nt_tokenize_ids,
)
from hadna.tokenization import batch_encode, encode_sequence

transformers = pytest.importorskip("transformers")

HIDDEN, LAYERS = 32, 2
SEQS = ["ACGTACGTACGTAC", "NNACGTAAACCCGGGTTTA", "A", "GGGGGGNGGGGGGTT", "ACGTNACGTN"]


def encode(seq: str) -> torch.Tensor:
    return torch.from_numpy(encode_sequence(seq).astype(np.int64))


def right_padded(seqs: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = batch_encode(seqs)
    return batch["input_ids"], batch["attention_mask"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_random_nt_teacher(
        tmp_path_factory.mktemp("teacher") / "nt", hidden_size=HIDDEN, num_layers=LAYERS, num_heads=4,
        intermediate_size=64, max_length_nt=256, seed=0,
    )


@pytest.fixture(scope="module")
def teacher(ckpt):
    return Teacher.from_pretrained(ckpt)


def copy_ckpt(ckpt, tmp_path, name="copy"):
    return shutil.copytree(ckpt, tmp_path / name)


def test_nt_esm_config_matches_nt():
    cfg = nt_esm_config(hidden_size=48, num_layers=3, num_heads=6, intermediate_size=96, max_position_embeddings=300)
    assert cfg.vocab_size == NT_VOCAB_SIZE == 4107
    assert (cfg.pad_token_id, cfg.mask_token_id) == (1, 2)
    assert cfg.position_embedding_type == "rotary" and cfg.token_dropout is False
    assert cfg.emb_layer_norm_before is False and cfg.eos_token_id is None
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.max_position_embeddings) == (48, 3, 6, 300)
    with pytest.raises(ValueError, match="divisible"):
        nt_esm_config(hidden_size=30, num_heads=4)


def test_checkpoint_files_and_tokenizer(ckpt):
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "vocab.txt").is_file()
    assert "auto_map" not in json.loads((ckpt / "config.json").read_text())
    tok = transformers.AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
    assert tok("ACGTACG")["input_ids"] == [3, NT_VOCAB.index("ACGTAC"), NT_VOCAB.index("G")]  # <cls>, no <eos>


def test_random_teacher_is_seeded(tmp_path):
    state = torch.random.get_rng_state()
    a = make_random_nt_teacher(tmp_path / "a", hidden_size=16, num_layers=1, num_heads=2, intermediate_size=16, seed=3)
    b = make_random_nt_teacher(tmp_path / "b", hidden_size=16, num_layers=1, num_heads=2, intermediate_size=16, seed=3)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is untouched


def test_loads_frozen_without_remote_code(teacher):
    assert (teacher.hidden_size, teacher.num_layers) == (HIDDEN, LAYERS)
    assert (teacher.pad_token_id, teacher.mask_token_id, teacher.cls_token_id) == (1, 2, 3)
    assert teacher.layer == LAYERS and not teacher.model.training
    assert not any(p.requires_grad for p in teacher.model.parameters())
    assert teacher.dtype == torch.float32 and teacher.device.type == "cpu"


def test_features_shape_dtype_determinism(teacher):
    ids, mask = right_padded(SEQS)
    inputs = teacher.tokenize_batch(ids, mask)
    feats = teacher.features(inputs.input_ids, inputs.attention_mask)
    assert feats.shape == (len(SEQS), inputs.input_ids.shape[1], HIDDEN)
    assert feats.dtype == torch.float32 and not feats.requires_grad and not feats.is_inference()
    assert torch.equal(feats, teacher.features(inputs.input_ids, inputs.attention_mask))
    assert torch.isfinite(feats).all()


def test_features_usable_as_regression_target(teacher):
    inputs, target = teacher.encode(*right_padded(SEQS[:2]))
    student = torch.zeros_like(target, requires_grad=True)
    torch.nn.functional.mse_loss(student, target).backward()  # fails for inference tensors
    assert torch.allclose(student.grad, -2 * target / target.numel())


def test_padding_does_not_change_real_token_features(teacher):
    ids, mask = right_padded(SEQS)
    inputs, feats = teacher.encode(ids, mask)
    for b, s in enumerate(SEQS):
        alone_inputs, alone = teacher.encode(encode(s)[None])
        n = alone.shape[1]
        assert torch.equal(inputs.input_ids[b, :n], alone_inputs.input_ids[0])
        torch.testing.assert_close(feats[b, :n], alone[0], atol=1e-5, rtol=1e-5)


def test_tokenize_batch_right_padded_equals_one_by_one(teacher):
    ids, mask = right_padded(SEQS)
    batch = teacher.tokenize_batch(ids, mask)
    for b, s in enumerate(SEQS):
        one = teacher.tokenize_batch(encode(s)[None])
        n = one.input_ids.shape[1]
        for field in ("input_ids", "attention_mask", "span_start", "span_len"):
            assert getattr(batch, field)[b, :n].tolist() == getattr(one, field)[0].tolist(), field
        assert batch.attention_mask[b, n:].sum() == 0 and (batch.input_ids[b, n:] == teacher.pad_token_id).all()


def test_tokenize_batch_matches_checkpoint_tokenizer(teacher, ckpt):
    tok = transformers.AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
    ids, mask = right_padded(SEQS)
    batch = teacher.tokenize_batch(ids, mask)
    for b, s in enumerate(SEQS):
        ref = tok(s)["input_ids"]
        assert batch.input_ids[b, : len(ref)].tolist() == ref


def test_ids_go_through_the_checkpoints_own_vocab(tmp_path):
    """A vocab.txt in another order: ids must follow it, via token strings."""
    order = list(NT_VOCAB)
    random.Random(0).shuffle(order)
    (tmp_path / "vocab.txt").write_text("\n".join(order))
    tok = transformers.EsmTokenizer(str(tmp_path / "vocab.txt"), eos_token=None)
    model = transformers.EsmForMaskedLM(nt_esm_config(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=16))
    t = Teacher(model, tok.get_vocab())
    seqs = ["ACGTACGTTN", "TTTTTTTTTTTTTA"]
    out = t.tokenize_batch(*right_padded(seqs))
    for b, s in enumerate(seqs):
        ref = tok(s)["input_ids"]
        assert out.input_ids[b, : len(ref)].tolist() == ref
    assert (t.cls_token_id, t.pad_token_id, t.mask_token_id) == tuple(order.index(x) for x in ("<cls>", "<pad>", "<mask>"))


@pytest.mark.parametrize("layer", [0, 1, 2, -1, -2, -3])
def test_layer_selection(ckpt, layer):
    t = Teacher.from_pretrained(ckpt, layer=layer)
    inputs = t.tokenize_batch(*right_padded(SEQS[:3]))
    feats = t.features(inputs.input_ids, inputs.attention_mask)
    with torch.no_grad():
        out = t.model.base_model(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask, output_hidden_states=True)
    assert len(out.hidden_states) == LAYERS + 1
    torch.testing.assert_close(feats, out.hidden_states[layer])
    if layer % (LAYERS + 1) == LAYERS:  # the last entry is last_hidden_state, after the final layer norm
        torch.testing.assert_close(feats, out.last_hidden_state)
        normed = t.model.base_model.encoder.emb_layer_norm_after(feats)
        # a fresh LayerNorm (unit weight, zero bias) is idempotent: the last state is already normalised
        torch.testing.assert_close(normed, feats, atol=1e-4, rtol=1e-4)
    else:
        assert not torch.allclose(feats, out.last_hidden_state)


@pytest.mark.parametrize("layer", [3, -4, 100])
def test_layer_out_of_range(ckpt, layer):
    with pytest.raises(ConfigError, match="valid layers are 0..2"):
        Teacher.from_pretrained(ckpt, layer=layer)


def test_auto_map_requires_trust_remote_code(ckpt, tmp_path):
    # auto_map pointing at NT's own esm code is loaded by the native NTv2 port (tests/test_ntv2.py);
    # any other shipped model code is refused unless the user asks for it.
    d = copy_ckpt(ckpt, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "custom_config.CustomConfig", "AutoModelForMaskedLM": "custom_modeling.CustomForMaskedLM"}
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HadnaError, match="--trust-remote-code") as err:
        Teacher.from_pretrained(d)
    assert str(d) in str(err.value) and "auto_map" in str(err.value)


def test_missing_directory(tmp_path):
    missing = tmp_path / "no_such_teacher"
    with pytest.raises(MissingFileError, match="hf download InstaDeepAI/nucleotide-transformer-v2-500m-multi-species") as err:
        Teacher.from_pretrained(missing)
    assert str(missing) in str(err.value)


def test_uncached_hub_id_without_downloads():
    with pytest.raises(MissingFileError, match="not in the local Hugging Face cache") as err:
        Teacher.from_pretrained("hadna-tests/definitely-not-a-cached-model")
    assert "hadna-tests/definitely-not-a-cached-model" in str(err.value)


def test_directory_without_config(tmp_path):
    with pytest.raises(MissingFileError, match="no config.json"):
        Teacher.from_pretrained(tmp_path)


def test_non_nt_vocabulary(ckpt, tmp_path):
    d = copy_ckpt(ckpt, tmp_path)
    (d / "vocab.txt").write_text("\n".join(["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "A", "C", "G", "T", "N"]))
    with pytest.raises(CheckpointError, match="NT-style 6-mer vocabulary.*missing: AAAAAA"):
        Teacher.from_pretrained(d)


def test_missing_encoder_weights(ckpt, tmp_path):
    from safetensors.torch import load_file, save_file

    d = copy_ckpt(ckpt, tmp_path)
    weights = load_file(d / "model.safetensors")
    dropped = next(k for k in weights if ".encoder.layer.0." in k)
    del weights[dropped]
    save_file(weights, d / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="lacks encoder weights"):
        Teacher.from_pretrained(d)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_refused_on_cpu(ckpt, dtype):
    with pytest.raises(ConfigError, match="needs a GPU"):
        Teacher.from_pretrained(ckpt, dtype=dtype)


def test_bad_dtype_and_missing_cuda(ckpt):
    with pytest.raises(ConfigError, match="dtype"):
        Teacher.from_pretrained(ckpt, dtype="float64")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            Teacher.from_pretrained(ckpt, device="cuda")
    with pytest.raises(ConfigError, match=r"^teacher: unknown device 'gpu0' \(use cpu, cuda, cuda:N or auto\)$"):
        Teacher.from_pretrained(ckpt, device="gpu0")  # one line, not torch's RuntimeError


def test_absolute_positions_length_limit():
    cfg = nt_esm_config(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=16, max_position_embeddings=8)
    cfg.position_embedding_type = "absolute"
    vocab = {tok: i for i, tok in enumerate(NT_VOCAB)}
    t = Teacher(transformers.EsmForMaskedLM(cfg), vocab)
    ok = t.tokenize_batch(encode("ACGT" * 6)[None])  # 1 + 4 tokens; positions 2..6 < 8
    assert t.features(ok.input_ids, ok.attention_mask).shape == (1, 5, 16)
    too_long = t.tokenize_batch(encode("ACGTAC" * 6)[None])  # 7 tokens need position 8
    with pytest.raises(ConfigError, match="at most 6 tokens"):
        t.features(too_long.input_ids, too_long.attention_mask)


def test_spans_index_student_positions(teacher):
    """Spans of a teacher batch cover every real nucleotide exactly once."""
    ids, mask = right_padded(SEQS)
    inputs = teacher.tokenize_batch(ids, mask)
    cover = torch.zeros_like(ids)
    for b in range(len(SEQS)):
        for s, n in zip(inputs.span_start[b].tolist(), inputs.span_len[b].tolist()):
            cover[b, s : s + n] += 1
    assert torch.equal(cover, mask)
    assert nt_tokenize_ids(encode(SEQS[1]).numpy())[2].tolist() == inputs.span_len[1, : int(inputs.attention_mask[1].sum())].tolist()
