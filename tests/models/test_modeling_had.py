"""The HAD student: parameter budget, padding invariance, heads, Hugging Face save/load and Auto classes."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

import hadna.models  # noqa: F401  (registers the Auto classes)
from numerics import relative_error
from hadna import vocab
from hadna.models import (HadConfig, HadForMaskedLM, HadForSequenceClassification, HadModel,
                          reverse_complement_ids)

TOL = 1e-5


def tiny(**overrides):
    torch.manual_seed(0)
    return HadConfig.preset("had-tiny", chunk_size=16, **overrides)


def random_ids(B, T, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(vocab.A_ID, vocab.N_ID + 1, (B, T), generator=gen)


def test_had_1m_parameter_budget_via_auto_model():
    model = transformers.AutoModel.from_config(HadConfig.preset("had-1m"))
    assert isinstance(model, HadModel)
    n = sum(p.numel() for p in model.parameters())
    assert 1_050_000 <= n <= 1_150_000, n


def test_block_layout_options():
    assert HadConfig(num_gdn_layers=3).block_types == ["gdn", "gdn", "gdn", "attention"]
    assert HadConfig(num_gdn_layers=3, attention_position="first").block_types[0] == "attention"
    assert HadConfig(num_gdn_layers=4, attention_position=2).block_types == ["gdn", "gdn", "attention", "gdn", "gdn"]
    assert "attention" not in HadConfig(num_attention_layers=0).block_types
    with pytest.raises(ValueError, match="attention_position"):
        HadConfig(num_gdn_layers=2, attention_position=5)
    with pytest.raises(ValueError, match="unknown preset"):
        HadConfig.preset("had-9000")


CONFIGS = [
    pytest.param({}, id="default"),
    pytest.param({"tie_directions": False, "bidirectional_combine": "concat"}, id="untied-concat"),
    pytest.param({"num_attention_layers": 0}, id="no-attention"),
    pytest.param({"attention_position": "first"}, id="attention-first"),
]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("overrides", CONFIGS)
def test_valid_outputs_do_not_depend_on_padding(side, overrides):
    model = HadModel(tiny(**overrides)).eval()
    lengths = [1, 9, 45, 30]
    seqs = [random_ids(1, n, seed=n)[0] for n in lengths]
    T = max(lengths) + 3  # extra padding even for the longest
    ids = torch.full((len(seqs), T), vocab.PAD_ID)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(0, len(s)) if side == "right" else slice(T - len(s), T)
        ids[i, sl], mask[i, sl] = s, 1
    ids[mask == 0] = vocab.G_ID  # padding content must not matter either
    with torch.no_grad():
        batched = model(ids, attention_mask=mask).last_hidden_state
        for i, s in enumerate(seqs):
            alone = model(s[None]).last_hidden_state[0]
            assert relative_error(batched[i][mask[i].bool()], alone) <= TOL
        assert batched[mask == 0].abs().max() == 0  # padding positions are zeroed


def test_hidden_states_layout():
    model = HadModel(tiny())
    out = model(random_ids(2, 20), output_hidden_states=True)
    assert len(out.hidden_states) == len(model.layers) + 1
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
    assert out.hidden_states[0].shape == (2, 20, 32)


def test_every_parameter_gets_a_gradient():
    """DDP needs no unused parameters; also checks nothing is silently disconnected."""
    for overrides in ({}, {"tie_directions": False, "bidirectional_combine": "concat"}):
        model = HadForMaskedLM(tiny(**overrides))
        labels = random_ids(2, 40)
        model(random_ids(2, 40), labels=labels).loss.backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        # the [PAD] embedding row is fixed at zero grad by padding_idx, the tensor itself still gets a grad
        assert missing == [], missing


def test_masked_lm_loss_ignores_unlabelled_positions():
    model = HadForMaskedLM(tiny())
    ids = random_ids(2, 30)
    labels = torch.full_like(ids, -100)
    labels[:, 5] = ids[:, 5]
    out = model(ids, labels=labels)
    expected = torch.nn.functional.cross_entropy(out.logits[:, 5], ids[:, 5])
    assert torch.allclose(out.loss, expected, atol=1e-6)
    assert out.logits.shape == (2, 30, vocab.VOCAB_SIZE)


@pytest.mark.parametrize("pooling", ["mean", "max", "first"])
def test_sequence_classification_heads(pooling):
    model = HadForSequenceClassification(tiny(num_labels=3, pooling=pooling)).eval()
    ids, labels = random_ids(4, 25), torch.tensor([0, 2, 1, 2])
    out = model(ids, labels=labels)
    assert out.logits.shape == (4, 3) and model.config.problem_type == "single_label_classification"
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    reg = HadForSequenceClassification(tiny(num_labels=1)).eval()
    assert reg(ids, labels=torch.randn(4)).loss.ndim == 0 and reg.config.problem_type == "regression"
    multi = HadForSequenceClassification(tiny(num_labels=3)).eval()
    assert multi(ids, labels=torch.rand(4, 3).round()).loss.ndim == 0
    assert multi.config.problem_type == "multi_label_classification"


def test_reverse_complement_ids_keeps_specials_and_padding():
    A, C, G, T, N = vocab.A_ID, vocab.C_ID, vocab.G_ID, vocab.T_ID, vocab.N_ID
    P, CLS = vocab.PAD_ID, vocab.CLS_ID
    ids = torch.tensor([[CLS, A, A, C, N, P, P], [P, P, CLS, G, T, T, A]])
    mask = (ids != P).long()
    rc = reverse_complement_ids(ids, mask)
    assert rc.tolist() == [[CLS, N, G, T, T, P, P], [P, P, CLS, T, A, A, C]]
    assert torch.equal(reverse_complement_ids(rc, mask), ids)


def test_rc_averaging_makes_predictions_strand_symmetric():
    model = HadForSequenceClassification(tiny(num_labels=2, rc_averaging=True)).eval()
    ids = random_ids(3, 40)
    with torch.no_grad():
        a = model(ids).logits
        b = model(reverse_complement_ids(ids)).logits
        plain = model(ids, rc_averaging=False).logits
    assert relative_error(a, b) <= TOL
    assert not torch.allclose(a, plain)


@pytest.mark.parametrize("cls", [HadModel, HadForMaskedLM, HadForSequenceClassification])
def test_save_and_load_with_safetensors_and_auto_classes(tmp_path, cls):
    config = tiny(num_labels=2)
    model = cls(config).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "hadna"
    auto = {HadModel: transformers.AutoModel, HadForMaskedLM: transformers.AutoModelForMaskedLM,
            HadForSequenceClassification: transformers.AutoModelForSequenceClassification}[cls]
    loaded = auto.from_pretrained(tmp_path).eval()
    assert type(loaded) is cls
    ids = random_ids(2, 33)
    with torch.no_grad():
        a, b = model(ids), loaded(ids)
    key = "last_hidden_state" if cls is HadModel else "logits"
    assert torch.equal(a[key], b[key])
    assert isinstance(transformers.AutoConfig.from_pretrained(tmp_path), HadConfig)


def test_backbone_checkpoint_loads_into_fine_tuning_heads(tmp_path):
    backbone = HadModel(tiny()).eval()
    backbone.save_pretrained(tmp_path)
    clf = HadForSequenceClassification.from_pretrained(tmp_path, num_labels=4).eval()
    ids = random_ids(2, 21)
    with torch.no_grad():
        assert torch.equal(clf.had(ids).last_hidden_state, backbone(ids).last_hidden_state)
    assert clf.classifier.weight.shape == (4, 32)
    assert torch.isfinite(clf.classifier.weight).all() and clf.classifier.weight.abs().sum() > 0
    mlm = HadForMaskedLM.from_pretrained(tmp_path)
    with torch.no_grad():
        assert torch.equal(mlm.had(ids).last_hidden_state, backbone(ids).last_hidden_state)


def test_gate_parameters_are_sane_after_init_and_reload(tmp_path):
    model = HadModel(tiny())
    gdn = model.layers[0].mixer.fwd
    A = gdn.A_log.exp()
    assert ((A > 0) & (A <= 16)).all()
    dt = torch.nn.functional.softplus(gdn.dt_bias)
    assert ((dt >= 1e-4) & (dt <= 0.1 + 1e-6)).all()
    model.save_pretrained(tmp_path)
    again = HadModel.from_pretrained(tmp_path)
    assert torch.equal(again.layers[0].mixer.fwd.A_log, gdn.A_log)
    assert torch.equal(again.layers[-1].mixer.rotary.inv_freq, model.layers[-1].mixer.rotary.inv_freq)


def test_tokenizer_saves_with_the_model_and_loads_with_auto_tokenizer(tmp_path):
    model = HadModel(tiny())
    tok = hadna.HadTokenizer(padding_side="left")
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded) is hadna.HadTokenizer and loaded.padding_side == "left"
    enc = loaded(["ACGT", "acgtna"], padding=True, return_tensors="pt")
    assert enc["input_ids"].tolist() == [[0, 0, 4, 5, 6, 7], [4, 5, 6, 7, 8, 4]]


def test_embed_matches_manual_pooling_and_keeps_order():
    model = HadModel(tiny()).eval()
    seqs = ["ACGTACGTAC", "GG", "ACGTNNACGTACGATCGATCGA", "TTTTA"]
    emb = model.embed(seqs, batch_size=2)
    assert emb.shape == (4, 32) and emb.dtype == torch.float32
    for i, s in enumerate(seqs):
        ids = torch.tensor(hadna.tokenization.encode_sequence(s), dtype=torch.long)[None]
        with torch.no_grad():
            expected = model(ids).last_hidden_state.mean(1)[0]
        assert relative_error(emb[i], expected) <= TOL
    assert torch.allclose(model.embed(seqs, batch_size=3), emb, atol=1e-6)
    assert model.embed(seqs, pooling="max").shape == (4, 32)
    clf = HadForSequenceClassification(tiny(num_labels=2))
    assert clf.embed(["ACGT"]).shape == (1, 32)
    with pytest.raises(TypeError, match="list"):
        model.embed("ACGT")
