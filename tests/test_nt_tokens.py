"""NT 6-mer tokenisation: our vectorised version against transformers' real EsmTokenizer."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hadna.errors import InvalidSequenceError
from hadna.teachers.nt_tokens import (
    NT_CLS_ID,
    NT_PAD_ID,
    NT_VOCAB,
    NT_VOCAB_SIZE,
    nt_token_spans_reference,
    nt_tokenize_batch,
    nt_tokenize_ids,
    write_nt_vocab,
)
from hadna.vocab import ENCODE_LUT, MASK_ID, PAD_ID

transformers = pytest.importorskip("transformers")


def encode(seq: str) -> np.ndarray:
    return ENCODE_LUT[np.frombuffer(seq.encode(), dtype=np.uint8)].astype(np.int64)


@pytest.fixture(scope="module")
def esm_tok(tmp_path_factory):
    """The real EsmTokenizer over our NT vocab file; eos_token=None as NT's published tokenizer."""
    vocab = write_nt_vocab(tmp_path_factory.mktemp("ntvocab") / "vocab.txt")
    return transformers.EsmTokenizer(str(vocab), eos_token=None)


def ours(seq: str) -> list[tuple[str, int, int]]:
    ids, start, length = nt_tokenize_ids(encode(seq))
    return [(NT_VOCAB[i], int(s), int(n)) for i, s, n in zip(ids, start, length)]


def check_against_esm(tok, seq: str) -> None:
    got = ours(seq)
    assert got == nt_token_spans_reference(seq)
    esm_tokens = tok.tokenize(seq)
    assert [t for t, _, _ in got[1:]] == esm_tokens
    # EsmTokenizer's pieces tile the sequence, and our spans are exactly those pieces.
    assert "".join(esm_tokens) == seq
    assert [(s, n) for _, s, n in got[1:]] == [(sum(map(len, esm_tokens[:k])), len(t)) for k, t in enumerate(esm_tokens)]
    assert [NT_VOCAB.index(t) for t, _, _ in got] == tok(seq)["input_ids"]
    assert nt_tokenize_ids(encode(seq))[0].tolist() == tok(seq)["input_ids"]


AWKWARD = {
    "empty": "",
    "one_nt": "A",
    "five_nt": "ACGTA",
    "one_6mer": "ACGTAC",
    "6mer_plus_1": "ACGTACG",
    "13_nt": "ACGTACGTACGTA",
    "single_N": "N",
    "all_N": "NNNNNNNNNNNNN",
    "N_first": "NACGTACG",
    "N_last": "ACGTACGN",
    "N_inside_6mer": "ACGNTACGTACGTA",
    "N_at_pos_6": "ACGTACNACGTAC",
    "run_of_N": "ACGTACGTNNNNNNNACGTACGTACG",
    "alternating_N": "ANCNGNTN",
    "5_then_N_repeated": "ACGTANACGTANACGTAN",
    "12_exact": "AAAAAACCCCCC",
    "homopolymers": "TTTTTTTGGGGGGGN",
}


@pytest.mark.parametrize("seq", list(AWKWARD.values()), ids=list(AWKWARD))
def test_awkward_cases_match_esm_tokenizer(esm_tok, seq):
    check_against_esm(esm_tok, seq)


@pytest.mark.parametrize("length", range(1, 21))
def test_every_length_1_to_20(esm_tok, length):
    rng = np.random.default_rng(length)
    for _ in range(5):
        seq = "".join(rng.choice(list("ACGTN"), size=length, p=[0.2, 0.2, 0.2, 0.2, 0.2]))
        check_against_esm(esm_tok, seq)
    check_against_esm(esm_tok, "G" * length)
    check_against_esm(esm_tok, "N" * length)


# Sequences built from A/C/G/T runs and N runs, so N's, runs of N and ragged remainders are common.
pieces = st.one_of(st.text(alphabet="ACGT", min_size=1, max_size=20), st.text(alphabet="N", min_size=1, max_size=5))
dna = st.one_of(st.lists(pieces, max_size=8).map("".join), st.text(alphabet="ACGTN", max_size=40))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=dna)
def test_random_sequences_match_esm_tokenizer(esm_tok, seq):
    check_against_esm(esm_tok, seq)


def test_vocab_file_layout(tmp_path):
    lines = write_nt_vocab(tmp_path / "vocab.txt").read_text().splitlines()
    assert len(lines) == NT_VOCAB_SIZE == 4107
    assert lines[:6] == ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>"]
    assert lines[6] == "AAAAAA" and lines[7] == "AAAAAT" and lines[4101] == "GGGGGG"
    assert lines[4102:] == ["A", "T", "C", "G", "N"]


def test_esm_tokenizer_default_appends_eos(tmp_path):
    """Finding: EsmTokenizer's default eos_token='<eos>' appends <eos>; NT adds <cls> only, so we
    pass eos_token=None wherever we build an NT tokenizer."""
    tok = transformers.EsmTokenizer(str(write_nt_vocab(tmp_path / "vocab.txt")))
    assert tok("ACGTACG")["input_ids"] == [NT_CLS_ID, NT_VOCAB.index("ACGTAC"), NT_VOCAB.index("G"), 4]


def test_lowercase_is_not_a_6mer_for_esm(esm_tok):
    """Student ids are case-free, but raw lowercase text would become <unk> in EsmTokenizer."""
    assert esm_tok("acgtac")["input_ids"] == [NT_CLS_ID, 0]
    assert ours("ACGTAC") == [("<cls>", 0, 0), ("ACGTAC", 0, 6)]


def random_batch(rng, batch: int, max_len: int, min_len: int = 0):
    lengths = rng.integers(min_len, max_len + 1, size=batch)
    seqs = ["".join(rng.choice(list("ACGTN"), size=n, p=[0.23, 0.23, 0.23, 0.23, 0.08])) for n in lengths]
    ids = torch.full((batch, max_len), PAD_ID, dtype=torch.long)
    mask = torch.zeros((batch, max_len), dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.from_numpy(encode(s))
        mask[b, : len(s)] = 1
    return seqs, ids, mask


@pytest.mark.parametrize("pad_value", [PAD_ID, -100, 999], ids=["pad0", "minus100", "big"])
def test_batch_right_padded_equals_one_by_one(pad_value):
    rng = np.random.default_rng(7)
    seqs, ids, mask = random_batch(rng, batch=9, max_len=50)
    ids[mask == 0] = pad_value
    out = nt_tokenize_batch(ids, mask)
    n_max = out.input_ids.shape[1]
    for b, s in enumerate(seqs):
        t, st_, ln = nt_tokenize_ids(encode(s))
        n = len(t)
        assert out.attention_mask[b].tolist() == [1] * n + [0] * (n_max - n)
        assert out.input_ids[b, :n].tolist() == t.tolist()
        assert out.span_start[b, :n].tolist() == st_.tolist()
        assert out.span_len[b, :n].tolist() == ln.tolist()
        assert (out.input_ids[b, n:] == NT_PAD_ID).all() and (out.span_len[b, n:] == 0).all()
    assert all(x.dtype == torch.int64 for x in (out.input_ids, out.attention_mask, out.span_start, out.span_len))


def test_batch_left_padded_spans_are_columns():
    seq = "ACGTACGTNAC"
    ids = torch.full((1, 15), PAD_ID, dtype=torch.long)
    ids[0, 4:] = torch.from_numpy(encode(seq))
    mask = (torch.arange(15) >= 4).long()[None]
    out = nt_tokenize_batch(ids, mask)
    t, st_, ln = nt_tokenize_ids(encode(seq))
    assert out.input_ids[0].tolist() == t.tolist()
    assert out.span_start[0, 1:].tolist() == (st_[1:] + 4).tolist()
    assert out.span_len[0].tolist() == ln.tolist()


def test_batch_without_mask_and_empty_rows():
    ids = torch.from_numpy(np.stack([encode("ACGTACGT"), encode("NNNNNNNN")]))
    out = nt_tokenize_batch(ids)
    assert out.input_ids[0].tolist()[:3] == [NT_CLS_ID, NT_VOCAB.index("ACGTAC"), NT_VOCAB.index("G")]
    assert out.input_ids.shape == (2, 9) and out.span_len[1, 1:].tolist() == [1] * 8
    empty = nt_tokenize_batch(torch.zeros((3, 5), dtype=torch.long), torch.zeros((3, 5), dtype=torch.long))
    assert empty.input_ids.tolist() == [[NT_CLS_ID]] * 3 and empty.attention_mask.tolist() == [[1]] * 3


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_batch_matches_reference_random(seed):
    rng = np.random.default_rng(seed)
    seqs, ids, mask = random_batch(rng, batch=4, max_len=30)
    out = nt_tokenize_batch(ids, mask)
    for b, s in enumerate(seqs):
        ref = nt_token_spans_reference(s)
        n = len(ref)
        got = [(NT_VOCAB[i], s_, l_) for i, s_, l_ in zip(out.input_ids[b, :n].tolist(), out.span_start[b, :n].tolist(), out.span_len[b, :n].tolist())]
        assert got == ref
        assert int(out.attention_mask[b].sum()) == n


def test_invalid_ids_are_reported():
    ids = encode("ACGTACGT")
    ids[5] = MASK_ID
    with pytest.raises(InvalidSequenceError, match="student id 1 at sequence 0, position 5"):
        nt_tokenize_ids(ids)
    batch = torch.from_numpy(np.stack([encode("ACGT"), encode("ACGT")]))
    batch[1, 2] = -3
    with pytest.raises(InvalidSequenceError, match="student id -3 at sequence 1, position 2"):
        nt_tokenize_batch(batch)
    with pytest.raises(InvalidSequenceError):
        nt_token_spans_reference("ACGU")


def test_bad_shapes_and_gapped_masks():
    with pytest.raises(ValueError, match="1-D"):
        nt_tokenize_ids(np.zeros((2, 3), dtype=np.int64) + 4)
    with pytest.raises(ValueError, match=r"\[B, L\]"):
        nt_tokenize_batch(torch.full((5,), 4))
    ids = torch.full((2, 6), 4)
    with pytest.raises(ValueError, match="row 1 has a gap"):
        nt_tokenize_batch(ids, torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 1, 0]]))
    with pytest.raises(ValueError, match="shape"):
        nt_tokenize_batch(ids, torch.ones(2, 5))
