"""The model under evaluation: hadna checkpoints of every kind, presets, Hugging Face models, NTv2, embeddings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from hadna.errors import CheckpointError, ConfigError, DataError, MissingFileError
from hadna.eval.embed_io import embed_file
from hadna.eval.finetune import FinetuneConfig, fine_tune
from hadna.eval.inference import embed_sequences, predict_logits
from hadna.eval.loaders import Split
from hadna.eval.models import HFEvalModel, PooledClassifier, load_eval_model, parse_model_spec
from hadna.models import HadConfig, HadForMaskedLM, HadForSequenceClassification, HadModel
from hadna.tokenization import reverse_complement

SEQS = ["ACGTACGTACGTAC", "TTTTGGGGCCCCAAAA", "GATTACA", "ACGTNACGTA"]


def had_checkpoint(tmp_path, cls, name="ckpt", seed=7):
    torch.manual_seed(seed)
    model = cls(HadConfig.preset("had-tiny", num_labels=2))
    path = tmp_path / name
    model.save_pretrained(path)
    return path, model


# ------------------------------------------------------------------------------------------------
# hadna checkpoints and presets
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [HadModel, HadForMaskedLM, HadForSequenceClassification],
                         ids=["backbone-only-pretrain-output", "masked-lm", "classifier"])
def test_any_hadna_checkpoint_loads_into_a_fresh_classifier(tmp_path, cls):
    path, saved = had_checkpoint(tmp_path, cls)
    spec = parse_model_spec(str(path))
    assert spec.kind == "hadna" and spec.name.endswith("ckpt")
    model = load_eval_model(spec, 3, seed=1)
    backbone = saved if cls is HadModel else saved.had
    for k, v in backbone.state_dict().items():
        assert torch.equal(model.module.had.state_dict()[k], v), k
    assert model.module.classifier.out_features == 3
    if cls is HadForSequenceClassification:  # a stored head is discarded, not reused
        assert not torch.equal(model.module.classifier.weight[:2], saved.classifier.weight)
    again = load_eval_model(spec, 3, seed=1)
    assert torch.equal(again.module.classifier.weight, model.module.classifier.weight)  # seeded head
    assert model.encoder_parameters() == sum(p.numel() for p in backbone.parameters())
    assert model.logits(SEQS).shape == (4, 3) and model.features(SEQS).shape == (4, 32)


def test_checkpoint_missing_encoder_weights_is_an_error(tmp_path):
    from safetensors.torch import load_file, save_file

    path, _ = had_checkpoint(tmp_path, HadModel)
    state = load_file(path / "model.safetensors")
    del state["layers.0.mlp_norm.weight"]
    save_file(state, path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="lacks encoder weights.*layers.0.mlp_norm.weight"):
        load_eval_model(parse_model_spec(str(path)), 2)


def test_presets_and_scratch_are_seeded_random_inits(tmp_path):
    spec = parse_model_spec("preset:had-tiny")
    assert spec.kind == "preset" and spec.name == "had-tiny (random init)"
    a, b, c = (load_eval_model(spec, 2, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.module.had.embeddings.weight, b.module.had.embeddings.weight)
    assert not torch.equal(a.module.had.embeddings.weight, c.module.had.embeddings.weight)
    path, saved = had_checkpoint(tmp_path, HadModel)
    scratch = load_eval_model(parse_model_spec(str(path)), 2, seed=1, random_init=True)
    assert scratch.module.config.hidden_size == saved.config.hidden_size
    assert not torch.equal(scratch.module.had.embeddings.weight, saved.embeddings.weight)


@pytest.mark.parametrize("text,error,match", [
    ("preset:had-huge", ConfigError, "unknown preset 'had-huge'"),
    ("{tmp}/nope", MissingFileError, "model checkpoint not found"),
    ("{tmp}/file.bin", CheckpointError, "is a file"),
    ("{tmp}/empty", CheckpointError, "no config.json"),
    ("hf:", ConfigError, "needs a model name"),
    ("hf:{tmp}/empty", MissingFileError, "not a model directory"),
], ids=["unknown-preset", "missing-path", "file-not-dir", "dir-without-config", "empty-hf", "hf-dir-without-config"])
def test_bad_model_specs(tmp_path, text, error, match):
    (tmp_path / "file.bin").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(error, match=match):
        parse_model_spec(text.format(tmp=tmp_path))


def test_named_spec_and_non_hadna_directory_is_hf(tmp_path):
    assert parse_model_spec("mine=preset:had-tiny").name == "mine"
    d = tmp_path / "bert"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert parse_model_spec(str(d)).kind == "hf"


def test_uncached_hub_model_is_not_downloaded():
    spec = parse_model_spec("hf:someone/not-a-cached-model")
    with pytest.raises(CheckpointError, match="never downloads"):
        load_eval_model(spec, 2)


# ------------------------------------------------------------------------------------------------
# Hugging Face models (tiny random ESM with the NT 6-mer tokenizer, written here)
# ------------------------------------------------------------------------------------------------

def esm_checkpoint(tmp_path, head: str = "classifier"):
    from transformers import EsmConfig, EsmForMaskedLM, EsmForSequenceClassification

    from hadna.teachers import nt_tokenizer
    from hadna.teachers.nt_tokens import NT_MASK_ID, NT_PAD_ID, NT_VOCAB_SIZE

    config = EsmConfig(vocab_size=NT_VOCAB_SIZE, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, max_position_embeddings=64, position_embedding_type="rotary",
                       pad_token_id=NT_PAD_ID, mask_token_id=NT_MASK_ID, token_dropout=False,
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=2)
    torch.manual_seed(3)
    model = (EsmForSequenceClassification if head == "classifier" else EsmForMaskedLM)(config)
    path = tmp_path / f"esm-{head}"
    model.save_pretrained(path)
    nt_tokenizer(60).save_pretrained(path)
    return path, model


@pytest.mark.parametrize("head", ["classifier", "masked-lm"], ids=["esm-classifier", "esm-masked-lm-teacher"])
def test_hf_model_logits_features_and_rc_averaging(tmp_path, head):
    path, saved = esm_checkpoint(tmp_path, head)
    spec = parse_model_spec(f"hf:{path}")
    model = load_eval_model(spec, 2, seed=0)
    assert isinstance(model, HFEvalModel) and model.hidden_size == 16
    for k, v in saved.esm.state_dict().items():  # the encoder really is the checkpoint's
        assert torch.equal(model.module.esm.state_dict()[k], v), k
    if head == "classifier":  # a stored head is discarded
        assert not torch.equal(model.module.classifier.out_proj.weight, saved.classifier.out_proj.weight)
    model.eval()
    with torch.no_grad():
        logits = model.logits(SEQS)
        rc = model.logits([reverse_complement(s) for s in SEQS])
        both = model.logits(SEQS, rc_average=True)
        feats = model.features(SEQS[:1])
        enc = model.tokenizer(SEQS[:1], return_tensors="pt")
        hidden = model.module.esm(**enc).last_hidden_state[0, 1:]  # drop <cls>: pooled over DNA tokens only
    assert logits.shape == (4, 2)
    torch.testing.assert_close(both, 0.5 * (logits + rc))
    torch.testing.assert_close(feats[0], hidden.mean(0))


def test_hf_model_fine_tunes_and_embeds(tmp_path):
    path, _ = esm_checkpoint(tmp_path)
    model = load_eval_model(parse_model_spec(f"hf:{path}"), 2, seed=0)
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 24)) for _ in range(16)]
    split = Split(seqs, np.arange(16) % 2)
    res = fine_tune(model, split, split, FinetuneConfig(epochs=1, batch_size=8), metric="mcc", num_classes=2, seed=0)
    assert res.epochs_run == 1 and res.train.nt_per_s > 0
    feats, tp = embed_sequences(model, seqs, batch_size=5)
    assert feats.shape == (16, 16) and tp.nucleotides == 16 * 24


def test_ntv2_remote_code_checkpoint_loads_natively(tmp_path):
    """NTv2 ships remote code (auto_map); hadna builds it natively instead of running that code."""
    from safetensors.torch import save_file

    from hadna.teachers import nt_esm_config, nt_tokenizer
    from hadna.teachers.ntv2 import build_ntv2

    cfg = nt_esm_config(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, max_position_embeddings=64)
    raw = {**cfg.to_dict(), "add_bias_fnn": False,
           "auto_map": {"AutoConfig": "esm_config.EsmConfig", "AutoModelForMaskedLM": "modeling_esm.EsmForMaskedLM"}}
    raw.pop("transformers_version", None)
    torch.manual_seed(5)
    net = build_ntv2(raw)
    path = tmp_path / "ntv2"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(raw))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, path / "model.safetensors",
              metadata={"format": "pt"})
    nt_tokenizer(60).save_pretrained(path)
    model = load_eval_model(parse_model_spec(f"hf:{path}"), 3, seed=0)
    assert isinstance(model.module, PooledClassifier)
    assert torch.equal(model.module.backbone.embeddings.word_embeddings.weight, net.esm.embeddings.word_embeddings.weight)
    logits, _ = predict_logits(model, SEQS)
    assert logits.shape == (4, 3) and np.isfinite(logits).all()


# ------------------------------------------------------------------------------------------------
# Streaming embedding files
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["fasta", "csv", "parquet"])
@pytest.mark.parametrize("out_suffix", [".npy", ".parquet"])
def test_embed_file_streams_in_input_order(tmp_path, fmt, out_suffix):
    model = load_eval_model(parse_model_spec("preset:had-tiny"), 2, seed=0)
    seqs = ["ACGT" * (i % 5 + 1) + "a" * (i % 3) for i in range(11)]
    if fmt == "fasta":
        inp = tmp_path / "in.fa"
        inp.write_text("".join(f">r{i} desc\n{s}\n" for i, s in enumerate(seqs)))
    elif fmt == "csv":
        inp = tmp_path / "in.csv"
        pd.DataFrame({"id": [f"r{i}" for i in range(11)], "sequence": seqs}).to_csv(inp, index=False)
    else:
        inp = tmp_path / "in.parquet"
        pd.DataFrame({"name": [f"r{i}" for i in range(11)], "seq": seqs}).to_parquet(inp)
    out = tmp_path / f"emb{out_suffix}"
    summary = embed_file(model, inp, out, batch_size=3, chunk_size=4)
    expected, _ = embed_sequences(model, [s.upper() for s in seqs])
    if out_suffix == ".npy":
        got = np.load(out)
        ids = pd.read_csv(summary["ids"], sep="\t")["id"].tolist()
    else:
        table = pd.read_parquet(out)
        got = np.stack(table["embedding"].to_numpy())
        ids = table["id"].tolist()
    assert ids == [f"r{i}" for i in range(11)] and summary["n"] == 11
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind


@pytest.mark.parametrize("content,match", [
    ("id,sequence\na,ACGT\nb,ACXT\n", r"in\.csv: line 3: invalid character 'X'"),
    ("id,dna\na,ACGT\n", r"no 'sequence' or 'seq' column"),
], ids=["invalid-character", "no-sequence-column"])
def test_embed_file_errors_name_the_row(tmp_path, content, match):
    model = load_eval_model(parse_model_spec("preset:had-tiny"), 2, seed=0)
    (tmp_path / "in.csv").write_text(content)
    with pytest.raises(DataError, match=match):
        embed_file(model, tmp_path / "in.csv", tmp_path / "out.npy")
    assert not (tmp_path / "out.npy").exists()


def test_embed_file_prefers_the_id_column_over_name(tmp_path):
    model = load_eval_model(parse_model_spec("preset:had-tiny"), 2, seed=0)
    pd.DataFrame({"name": ["gene1", "gene2"], "id": ["a", "b"], "sequence": ["ACGT", "GGCC"]}).to_csv(
        tmp_path / "in.csv", index=False)
    summary = embed_file(model, tmp_path / "in.csv", tmp_path / "out.npy")
    assert pd.read_csv(summary["ids"], sep="\t")["id"].tolist() == ["a", "b"]
    (tmp_path / "rep.csv").write_text("id,id,sequence\na,b,ACGT\n")  # a repeated header is still ambiguous
    with pytest.raises(DataError, match="2 columns could hold the ids"):
        embed_file(model, tmp_path / "rep.csv", tmp_path / "out2.npy")


# ------------------------------------------------------------------------------------------------
# Inference batches on a CPU: capped in nucleotides (the cache-friendly size), results unchanged
# ------------------------------------------------------------------------------------------------

def test_cpu_inference_batches_are_capped_in_nucleotides_and_change_no_result(monkeypatch):
    from hadna.eval import inference
    from hadna.utils.batching import CPU_BATCH_NT

    model = load_eval_model(parse_model_spec("preset:had-tiny"), 2, seed=0, device="cpu")
    assert model.batch_nt_cap == CPU_BATCH_NT
    rng = np.random.default_rng(3)
    lengths = [1500] * 5 + [700] * 7 + [31] + [2 * CPU_BATCH_NT]  # the last alone, whatever the cap
    seqs = ["".join(rng.choice(list("ACGT"), n)) for n in lengths]
    seen: list[list[int]] = []
    real = inference.iter_batches_by_length

    def spy(*args, **kwargs):
        batches = real(*args, **kwargs)
        seen.append([len(b) for b in batches])
        return batches

    monkeypatch.setattr(inference, "iter_batches_by_length", spy)
    feats, _ = embed_sequences(model, seqs, batch_size=128)
    logits, _ = predict_logits(model, seqs, batch_size=256)
    # longest first, each batch sized by its first (longest) row: 8,192 alone; 4,096 // 1,500 = 2 rows
    # three times (the last pairs a 1,500 with a 700); 4,096 // 700 = 5 rows; the last 700 with the 31
    assert seen[0] == seen[1] == [1, 2, 2, 2, 5, 2], seen
    one_by_one = np.concatenate([embed_sequences(model, [s], batch_size=1)[0] for s in seqs])
    np.testing.assert_allclose(feats, one_by_one, rtol=1e-4, atol=1e-5)
    assert np.allclose(logits, np.concatenate([predict_logits(model, [s], batch_size=1)[0] for s in seqs]),
                       rtol=1e-4, atol=1e-5)


def test_kmer_baseline_batches_by_sequence_count_only():
    from hadna.utils.batching import iter_batches_by_length

    model = load_eval_model(parse_model_spec("kmer"), 2, device="cpu")
    assert model.batch_nt_cap is None
    assert [len(b) for b in iter_batches_by_length([1000] * 300, 128, model.batch_nt_cap)] == [128, 128, 44]


def test_a_nucleotide_cap_only_ever_lowers_the_batch_budget():
    from hadna.utils.batching import iter_batches_by_length

    lengths = [50] * 200 + [20_000]

    def sizes(cap):
        return [len(b) for b in iter_batches_by_length(lengths, 64, cap)]

    assert sizes(10 ** 9) == sizes(None) == [1, 64, 64, 64, 8]   # a cap above the p95 budget changes nothing
    assert sizes(1_000) == [1] + [20] * 10                        # below it, it is the bound
    assert [len(b) for b in iter_batches_by_length([1000] * 10, 128, 4096)] == [4, 4, 2]
    with pytest.raises(ConfigError, match="max_tokens must be >= 1"):
        iter_batches_by_length([10], 4, 0)


def test_had_embed_batches_under_the_cpu_cap_and_matches_one_at_a_time():
    from hadna.utils.batching import CPU_BATCH_NT

    torch.manual_seed(0)
    model = HadModel(HadConfig.preset("had-tiny"))
    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGT"), n)) for n in (CPU_BATCH_NT + 7, 900, 40, 2500, 900, 13)]
    got = model.embed(seqs, batch_size=64)
    alone = torch.cat([model.embed([s]) for s in seqs])
    torch.testing.assert_close(got, alone, rtol=1e-4, atol=1e-5)
