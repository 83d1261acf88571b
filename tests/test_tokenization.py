"""Tests for the character-level DNA tokenizer (hadna.tokenization)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hadna.errors import CheckpointError, HadnaError, InvalidSequenceError
from hadna.tokenization import (
    HadTokenizer,
    batch_encode,
    decode_ids,
    encode_sequence,
    reverse_complement,
)
from hadna.vocab import A_ID, C_ID, CLS_ID, G_ID, MASK_ID, N_ID, PAD_ID, T_ID

# ---------------------------------------------------------------------------------------------
# Single-sequence encoding
# ---------------------------------------------------------------------------------------------


def test_encode_basic_ids_and_dtype():
    ids = encode_sequence("ACGTN")
    assert ids.dtype == np.uint8
    assert ids.tolist() == [A_ID, C_ID, G_ID, T_ID, N_ID]


@pytest.mark.parametrize(
    "seq, expected",
    [
        ("acgtn", "ACGTN"),
        ("AcGt", "ACGT"),
        ("RYSWKMBDHV", "N" * 10),
        ("ryswkmbdhv", "N" * 10),
        ("UuACG", "TTACG"),
    ],
    ids=["lowercase", "mixed-case", "iupac-upper", "iupac-lower", "rna-U"],
)
def test_encode_documented_mappings(seq, expected):
    assert decode_ids(encode_sequence(seq)) == expected


def test_encode_accepts_bytes():
    assert encode_sequence(b"ACgt").tolist() == encode_sequence("ACGT").tolist()


@pytest.mark.parametrize(
    "seq, char, position",
    [
        ("ACG7T", "'7'", 3),
        ("ACGT-ACGT", "'-'", 4),
        ("A.CG", "'.'", 1),
        ("ACG>chr1", "'>'", 3),
        ("AC GT", "' '", 2),
        ("AC\tGT", r"'\t'", 2),
        ("ACGT\n", r"'\n'", 4),
        ("\nACGT", r"'\n'", 0),
        ("ACGT\r", r"'\r'", 4),
        (" ACGT", "' '", 0),
        ("ACGTé", "'é'", 4),
        ("ACＧT", "'Ｇ'", 2),
        ("AC🧬", "'🧬'", 2),
        ("ACGTX", "'X'", 4),
        ("ACGT[MASK]", "'['", 4),
    ],
    ids=[
        "digit", "dash", "dot", "fasta-header", "space", "tab", "trailing-newline", "leading-newline",
        "carriage-return", "leading-space", "non-ascii-latin", "fullwidth-G", "emoji", "letter-X",
        "literal-special-token",
    ],
)
def test_invalid_character_names_char_position_and_record(seq, char, position):
    with pytest.raises(InvalidSequenceError) as exc:
        encode_sequence(seq, record_id="chr1:100-200")
    msg = str(exc.value)
    assert f"invalid character {char} at position {position} of record 'chr1:100-200'" in msg


def test_invalid_error_is_value_error_and_hadna_error():
    with pytest.raises(ValueError):
        encode_sequence("AC-GT")
    with pytest.raises(HadnaError):
        encode_sequence("AC-GT")


def test_message_without_record_id():
    with pytest.raises(InvalidSequenceError, match=r"^invalid character '-' at position 2$"):
        encode_sequence("AC-GT")


def test_whitespace_message_has_hint():
    with pytest.raises(InvalidSequenceError, match="whitespace is not allowed"):
        encode_sequence("ACGT\n")


@pytest.mark.parametrize(
    "seq, char, position",
    [
        ("ACGT" * 100 + "é", "'é'", 400),  # long ASCII prefix, then non-ASCII
        ("éé-", "'é'", 0),
        ("AC-é", "'-'", 2),  # an ASCII error before the first non-ASCII character wins
        ("ACGé-", "'é'", 3),
    ],
    ids=["after-long-ascii", "first-char", "ascii-error-first", "non-ascii-first"],
)
def test_non_ascii_position_counts_characters(seq, char, position):
    with pytest.raises(InvalidSequenceError, match=f"invalid character {char} at position {position}"):
        encode_sequence(seq)


def test_non_ascii_bytes_position_counts_bytes():
    with pytest.raises(InvalidSequenceError, match="invalid byte 0xc3 at position 2 of record 'r1' \\(not ASCII\\)"):
        encode_sequence("ACé".encode(), record_id="r1")


@pytest.mark.parametrize("seq", ["", b""], ids=["str", "bytes"])
def test_empty_sequence_is_an_error(seq):
    with pytest.raises(InvalidSequenceError, match="empty sequence of record 'x'"):
        encode_sequence(seq, record_id="x")


def test_non_sequence_type_is_type_error():
    with pytest.raises(TypeError):
        encode_sequence(1234)  # type: ignore[arg-type]


def test_encode_one_megabase():
    # speed is measured in benchmarks/tokenizer.py, not here
    rng = np.random.default_rng(0)
    seq = rng.choice(np.frombuffer(b"ACGTacgtN", dtype=np.uint8), 1_000_000).tobytes().decode()
    ids = encode_sequence(seq)
    assert ids.shape == (1_000_000,)
    assert decode_ids(ids) == seq.upper()


def test_error_found_at_end_of_megabase():
    seq = "A" * 1_000_000 + "-"
    with pytest.raises(InvalidSequenceError, match="at position 1000000"):
        encode_sequence(seq)


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def test_decode_skips_pad_and_cls_keeps_mask():
    assert decode_ids([CLS_ID, A_ID, MASK_ID, T_ID, PAD_ID, PAD_ID]) == "A[MASK]T"
    assert decode_ids(torch.tensor([PAD_ID, A_ID, C_ID])) == "AC"
    assert decode_ids(np.array([], dtype=np.int64)) == ""


def test_decode_rejects_bad_input():
    with pytest.raises(ValueError, match="one sequence"):
        decode_ids([[A_ID]])
    with pytest.raises(ValueError, match="must lie in"):
        decode_ids([A_ID, 9])


# ---------------------------------------------------------------------------------------------
# Batch encoding
# ---------------------------------------------------------------------------------------------


def ids_of(s: str) -> list[int]:
    return encode_sequence(s).tolist()


def test_batch_right_padding():
    out = batch_encode(["ACGT", "GA"])
    assert out["input_ids"].dtype == torch.int64 and out["attention_mask"].dtype == torch.int64
    assert out["input_ids"].tolist() == [ids_of("ACGT"), ids_of("GA") + [PAD_ID, PAD_ID]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]


def test_batch_left_padding():
    out = batch_encode(["ACGT", "GA"], padding_side="left")
    assert out["input_ids"].tolist() == [ids_of("ACGT"), [PAD_ID, PAD_ID] + ids_of("GA")]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1], [0, 0, 1, 1]]


@pytest.mark.parametrize("side", ["right", "left"])
def test_batch_with_cls(side):
    out = batch_encode(["ACG", "T"], add_cls_token=True, padding_side=side)
    short = [CLS_ID, T_ID]
    pad = [PAD_ID, PAD_ID]
    assert out["input_ids"][0].tolist() == [CLS_ID] + ids_of("ACG")
    assert out["input_ids"][1].tolist() == (short + pad if side == "right" else pad + short)
    assert out["attention_mask"].sum(1).tolist() == [4, 2]


@pytest.mark.parametrize(
    "side, expected", [("right", "ACG"), ("left", "GTT")], ids=["keep-start", "keep-end"]
)
def test_batch_truncation(side, expected):
    out = batch_encode(["ACGTT", "CA"], max_length=3, truncation=True, truncation_side=side)
    assert out["input_ids"][0].tolist() == ids_of(expected)
    assert out["input_ids"][1].tolist() == ids_of("CA") + [PAD_ID]
    assert out["input_ids"].shape == (2, 3)


def test_batch_truncation_counts_cls():
    out = batch_encode(["ACGTT"], max_length=3, truncation=True, add_cls_token=True)
    assert out["input_ids"].tolist() == [[CLS_ID] + ids_of("AC")]


def test_batch_too_long_without_truncation_raises():
    with pytest.raises(InvalidSequenceError, match=r"record 'long' has 5 nucleotides, more than max_length=4"):
        batch_encode(["AC", "ACGTA"], max_length=4, record_ids=["short", "long"])
    with pytest.raises(InvalidSequenceError, match=r"sequence 0 in the batch has 4 nucleotides plus \[CLS\]"):
        batch_encode(["ACGT"], max_length=4, add_cls_token=True)


def test_batch_truncation_needs_max_length():
    with pytest.raises(ValueError, match="needs max_length"):
        batch_encode(["ACGT"], truncation=True)


def test_batch_validates_the_truncated_away_part():
    with pytest.raises(InvalidSequenceError, match="invalid character '-' at position 4"):
        batch_encode(["ACGT-"], max_length=2, truncation=True)


@pytest.mark.parametrize(
    "seqs, record_ids, message",
    [
        (["ACGT", "AC-T"], ["r1", "r2"], "invalid character '-' at position 2 of record 'r2'"),
        (["ACGT", "AC-T"], None, "invalid character '-' at position 2 of sequence 1 in the batch"),
        (["ACGT", "ACé"], ["r1", "r2"], "invalid character 'é' at position 2 of record 'r2'"),
        (["A-", "ACé"], None, "invalid character '-' at position 1 of sequence 0 in the batch"),
        (["ACGT", ""], ["r1", "r2"], "empty sequence of record 'r2'"),
        (["", "A-"], None, "empty sequence of sequence 0 in the batch"),
    ],
    ids=["ascii-record", "ascii-index", "non-ascii-record", "first-bad-wins", "empty-record", "empty-index"],
)
def test_batch_errors_name_the_sequence(seqs, record_ids, message):
    with pytest.raises(InvalidSequenceError, match=message):
        batch_encode(seqs, record_ids=record_ids)


def test_batch_argument_errors():
    with pytest.raises(TypeError, match="list of sequences"):
        batch_encode("ACGT")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="record_ids"):
        batch_encode(["A", "C"], record_ids=["r1"])
    with pytest.raises(ValueError, match="padding_side"):
        batch_encode(["A"], padding_side="middle")  # type: ignore[arg-type]


def test_batch_empty_batch_and_bytes_and_numpy():
    out = batch_encode([])
    assert out["input_ids"].shape == (0, 0)
    out = batch_encode([b"AC", "acg"], return_tensors="np", pad_to_multiple_of=4)
    assert isinstance(out["input_ids"], np.ndarray)
    assert out["input_ids"].tolist() == [ids_of("AC") + [PAD_ID] * 2, ids_of("ACG") + [PAD_ID]]
    assert out["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 0]]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("cls", [False, True], ids=["no-cls", "cls"])
def test_batch_matches_per_sequence_encoding(side, cls):
    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGTNacgtn"), rng.integers(1, 40))) for _ in range(50)]
    out = batch_encode(seqs, padding_side=side, add_cls_token=cls)
    for row, mask, s in zip(out["input_ids"], out["attention_mask"], seqs):
        expected = [CLS_ID] * cls + ids_of(s)
        assert row[mask.bool()].tolist() == expected
        assert (row[~mask.bool()] == PAD_ID).all()
        valid = mask.nonzero().flatten()
        assert valid[-1] - valid[0] + 1 == len(expected)  # contiguous
        assert (valid[0] == 0) if side == "right" else (valid[-1] == len(row) - 1)


def test_batch_thousands_of_500bp():
    rng = np.random.default_rng(0)
    seqs = [s.decode() for s in rng.choice(np.frombuffer(b"ACGT", np.uint8), (4000, 500)).view("S500").ravel()]
    seqs = [s[: 300 + i % 200] for i, s in enumerate(seqs)]
    out = batch_encode(seqs)
    assert out["input_ids"].shape == (4000, 499)
    assert out["attention_mask"].sum(1).tolist() == [len(s) for s in seqs]


# ---------------------------------------------------------------------------------------------
# Reverse complement
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seq, expected",
    [
        ("ACGTN", "NACGT"),
        ("aacG", "Cgtt"),
        ("RYKMBDHVSW", "WSBDHVKMRY"),
        ("ACGU", "ACGT"),
        ("", ""),
    ],
    ids=["basic", "case-preserved", "iupac", "rna-U-to-A", "empty"],
)
def test_reverse_complement_str(seq, expected):
    assert reverse_complement(seq) == expected


def test_reverse_complement_bytes():
    assert reverse_complement(b"AACg") == b"cGTT"


def test_reverse_complement_str_rejects_invalid():
    with pytest.raises(InvalidSequenceError, match="invalid character '-' at position 2"):
        reverse_complement("AC-GT")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ACGTNacgtnRYSWKMBDHVryswkmbdhv", max_size=60))
def test_reverse_complement_str_is_an_involution(seq):
    rc = reverse_complement(seq)
    assert len(rc) == len(seq)
    assert reverse_complement(rc) == seq


def test_reverse_complement_1d_tensor_and_array():
    x = torch.tensor(ids_of("AACGT"), dtype=torch.int32)
    y = reverse_complement(x)
    assert y.dtype == torch.int32
    assert decode_ids(y) == "ACGTT"
    arr = encode_sequence("AACGT")  # uint8 array
    out = reverse_complement(arr)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    assert decode_ids(out) == "ACGTT"
    assert decode_ids(arr) == "AACGT"  # input not modified


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("cls", [False, True], ids=["no-cls", "cls"])
def test_reverse_complement_batch_matches_string_rc(side, cls):
    seqs = ["AACGTG", "CCA", "T", "GATTACA"]
    batch = batch_encode(seqs, padding_side=side, add_cls_token=cls)
    expected = batch_encode([reverse_complement(s) for s in seqs], padding_side=side, add_cls_token=cls)
    out = reverse_complement(batch["input_ids"])
    assert torch.equal(out, expected["input_ids"])
    out_masked = reverse_complement(batch["input_ids"], batch["attention_mask"])
    assert torch.equal(out_masked, expected["input_ids"])
    assert torch.equal(reverse_complement(out), batch["input_ids"])


def test_reverse_complement_keeps_specials_in_place_and_moves_mask():
    x = torch.tensor([[CLS_ID, A_ID, MASK_ID, C_ID, G_ID, PAD_ID, PAD_ID]])
    y = reverse_complement(x)
    # nucleotide part A [MASK] C G -> complement reversed: C G [MASK] T
    assert y.tolist() == [[CLS_ID, C_ID, G_ID, MASK_ID, T_ID, PAD_ID, PAD_ID]]


def test_reverse_complement_numpy_batch_with_mask():
    batch = batch_encode(["ACG", "A"], padding_side="left", return_tensors="np")
    out = reverse_complement(batch["input_ids"], batch["attention_mask"])
    assert isinstance(out, np.ndarray)
    assert out.tolist() == [ids_of("CGT"), [PAD_ID, PAD_ID] + ids_of("T")]


def test_reverse_complement_rejects_non_contiguous_and_bad_ids():
    with pytest.raises(ValueError, match="row 0: the nucleotide part is not contiguous"):
        reverse_complement(torch.tensor([[A_ID, PAD_ID, C_ID]]))
    with pytest.raises(ValueError, match="row 1"):
        reverse_complement(torch.tensor([[A_ID, C_ID, G_ID], [A_ID, CLS_ID, C_ID]]))
    with pytest.raises(ValueError, match="must lie in"):
        reverse_complement(torch.tensor([A_ID, 42]))
    with pytest.raises(ValueError, match=r"\[T\] or \[B, T\]"):
        reverse_complement(torch.zeros(1, 1, 1, dtype=torch.long))
    with pytest.raises(TypeError):
        reverse_complement([A_ID, C_ID])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(alphabet="ACGTN", min_size=1, max_size=30), min_size=1, max_size=6),
    st.sampled_from(["right", "left"]),
    st.booleans(),
)
def test_reverse_complement_batch_twice_is_identity(seqs, side, cls):
    batch = batch_encode(seqs, padding_side=side, add_cls_token=cls)["input_ids"]
    assert torch.equal(reverse_complement(reverse_complement(batch)), batch)


# ---------------------------------------------------------------------------------------------
# Hugging Face tokenizer
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tok() -> HadTokenizer:
    return HadTokenizer()


def test_hf_call_padding_truncation_tensors(tok):
    out = tok(["ACGTAC", "gat", "N"], padding=True, truncation=True, max_length=4, return_tensors="pt")
    assert set(out.keys()) == {"input_ids", "attention_mask"}
    assert out["input_ids"].tolist() == [ids_of("ACGT"), ids_of("GAT") + [PAD_ID], ids_of("N") + [PAD_ID] * 3]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 0, 0, 0]]


def test_hf_model_input_names_and_special_ids(tok):
    assert tok.model_input_names == ["input_ids", "attention_mask"]
    assert (tok.pad_token_id, tok.mask_token_id, tok.cls_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert len(tok) == tok.vocab_size == 9
    assert "token_type_ids" not in tok("ACGT")


def test_hf_padding_side_per_call_and_at_init(tok):
    left = tok(["ACGT", "AC"], padding=True, padding_side="left", return_tensors="pt")
    assert left["input_ids"][1].tolist() == [PAD_ID, PAD_ID] + ids_of("AC")
    left_tok = HadTokenizer(padding_side="left")
    assert left_tok(["ACGT", "AC"], padding=True)["input_ids"][1] == [PAD_ID, PAD_ID] + ids_of("AC")
    right = left_tok(["ACGT", "AC"], padding=True, padding_side="right")
    assert right["input_ids"][1] == ids_of("AC") + [PAD_ID, PAD_ID]


def test_hf_add_cls_token_option():
    cls_tok = HadTokenizer(add_cls_token=True)
    out = cls_tok("ACG", return_special_tokens_mask=True)
    assert out["input_ids"] == [CLS_ID] + ids_of("ACG")
    assert out["special_tokens_mask"] == [1, 0, 0, 0]
    assert cls_tok("ACG", add_special_tokens=False)["input_ids"] == ids_of("ACG")
    trunc = cls_tok(["ACGTA"], truncation=True, max_length=3)
    assert trunc["input_ids"] == [[CLS_ID] + ids_of("AC")]


def test_hf_single_string_and_lowercase_iupac(tok):
    assert tok("acgRU")["input_ids"] == ids_of("ACGNT")
    assert tok.tokenize("acgRU") == ["A", "C", "G", "N", "T"]
    assert tok.convert_tokens_to_ids(["A", "c", "[MASK]"]) == [A_ID, C_ID, MASK_ID]


def test_hf_literal_special_tokens_are_accepted(tok):
    assert tok("AC[MASK]GT")["input_ids"] == ids_of("AC") + [MASK_ID] + ids_of("GT")
    assert tok.tokenize("a[MASK]") == ["A", "[MASK]"]
    assert tok.decode(tok("AC[MASK]GT")["input_ids"]) == "AC[MASK]GT"
    assert tok.decode(tok("AC[MASK]GT")["input_ids"], skip_special_tokens=True) == "ACGT"


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("AC[MASK]G-T", {}, "invalid character '-' at position 9"),
        ("AC[MASK]GT", {"split_special_tokens": True}, "invalid character '\\[' at position 2"),
        ("AC[MASKGT", {}, "invalid character '\\[' at position 2"),
        ("ACGT\n", {}, "invalid character '\\\\n' at position 4"),
        ("", {}, "empty sequence"),
    ],
    ids=["after-special", "split-special", "broken-special", "trailing-newline", "empty"],
)
def test_hf_strict_validation(tok, text, kwargs, message):
    with pytest.raises(InvalidSequenceError, match=message):
        tok(text, **kwargs)


@pytest.mark.parametrize("fast", [True, False], ids=["fast-batch", "hf-batch"])
def test_hf_batch_errors_name_the_batch_index(tok, fast, monkeypatch):
    monkeypatch.setattr(tok, "_use_fast_batch", fast)
    with pytest.raises(InvalidSequenceError, match="at position 1 of sequence 2 in the batch"):
        tok(["ACGT", "AC", "A-"], padding=True)


def test_hf_rejects_pairs_new_tokens_and_foreign_specials(tok):
    with pytest.raises(ValueError, match="sequence pairs"):
        tok("ACGT", "ACGT")
    with pytest.raises(ValueError, match="fixed"):
        tok.add_tokens(["AA"])
    with pytest.raises(ValueError, match="fixed"):
        HadTokenizer(mask_token="<mask>")
    with pytest.raises(ValueError, match="no sep_token"):
        HadTokenizer(sep_token="[SEP]")
    with pytest.raises(InvalidSequenceError, match="unknown token"):
        tok.convert_tokens_to_ids(["AC"])


def test_batch_encode_ids_matches_hf_call():
    cls_tok = HadTokenizer(add_cls_token=True, padding_side="left")
    seqs = ["ACGTAC", "gat", "N"]
    fast = cls_tok.batch_encode_ids(seqs, max_length=5, truncation=True, record_ids=["a", "b", "c"])
    hf = cls_tok(seqs, padding=True, truncation=True, max_length=5, return_tensors="pt")
    assert torch.equal(fast["input_ids"], hf["input_ids"])
    assert torch.equal(fast["attention_mask"], hf["attention_mask"])
    right = cls_tok.batch_encode_ids(seqs, padding_side="right")
    assert right["input_ids"][2].tolist() == [CLS_ID, N_ID] + [PAD_ID] * 5
    with pytest.raises(InvalidSequenceError, match="record 'a' has 6 nucleotides plus \\[CLS\\]"):
        cls_tok.batch_encode_ids(seqs, max_length=5, record_ids=["a", "b", "c"])


# (tokenizer options, call options, whether the vectorised path should handle it)
CALL_GRID = [
    ({}, dict(padding=True), True),
    ({}, dict(padding="longest", truncation=True, max_length=7), True),
    ({}, dict(padding="max_length", max_length=12), True),
    ({}, dict(padding="max_length", truncation=True, max_length=6), True),
    ({}, dict(padding=True, pad_to_multiple_of=8), True),
    ({}, dict(padding=True, padding_side="left", truncation=True, max_length=9), True),
    ({"truncation_side": "left"}, dict(padding=True, truncation=True, max_length=5), True),
    ({"padding_side": "left"}, dict(padding="max_length", max_length=11, pad_to_multiple_of=4), True),
    ({}, dict(padding=True, add_special_tokens=False), True),
    ({}, dict(padding=True, return_attention_mask=False), True),
    ({}, dict(padding=True, return_length=True), False),
    ({}, dict(padding="max_length", max_length=5), False),  # a row is longer and not truncated
    ({}, dict(padding=False), False),
]


def _ragged(call: dict) -> bool:
    return call["padding"] is False or (call["padding"] == "max_length" and call["max_length"] == 5)


CASES = [
    pytest.param(init, call, fast_expected, tensors, id=f"{i}-{tensors}")
    for i, (init, call, fast_expected) in enumerate(CALL_GRID)
    for tensors in (None, "pt", "np")
    # ragged rows cannot become tensors (Hugging Face raises / makes object arrays)
    if tensors is None or not _ragged(call)
]


@pytest.mark.parametrize("init, call, fast_expected, return_tensors", CASES)
@pytest.mark.parametrize("cls", [False, True], ids=["no-cls", "cls"])
def test_fast_batch_path_equals_hf_generic_path(init, call, fast_expected, return_tensors, cls, monkeypatch):
    """The vectorised __call__ path must give exactly what Hugging Face's own batch path gives."""
    seqs = ["ACGTACGTAC", "gat", "NNRYacgu", "A"]
    fast_tok = HadTokenizer(add_cls_token=cls, **init)
    slow_tok = HadTokenizer(add_cls_token=cls, **init)
    slow_tok._use_fast_batch = False
    taken = []
    original = HadTokenizer._fast_batch

    def spy(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(HadTokenizer, "_fast_batch", spy)
    fast = fast_tok(seqs, return_tensors=return_tensors, **call)
    assert taken == [fast_expected]
    slow = slow_tok(seqs, return_tensors=return_tensors, **call)
    assert taken == [fast_expected, False]
    assert set(fast.keys()) == set(slow.keys())
    for key in slow:
        a, b = fast[key], slow[key]
        assert type(a) is type(b), key
        if isinstance(a, torch.Tensor):
            assert a.dtype == b.dtype and torch.equal(a, b), key
        elif isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b), key
        else:
            assert a == b, key


def test_hf_batch_of_thousands(tok):
    rng = np.random.default_rng(0)
    seqs = ["".join(s) for s in rng.choice(list("ACGT"), (2000, 500))]
    out = tok(seqs, padding=True, truncation=True, max_length=512, return_tensors="pt")
    assert out["input_ids"].shape == (2000, 500)


# ---------------------------------------------------------------------------------------------
# save_pretrained / from_pretrained
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls, side", [(False, "right"), (True, "left")], ids=["defaults", "cls-left"])
def test_save_and_load_round_trip(tmp_path, cls, side):
    tok = HadTokenizer(add_cls_token=cls, padding_side=side)
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "HadTokenizer"
    assert config["add_cls_token"] is cls
    assert config["padding_side"] == side
    assert json.loads((tmp_path / "vocab.json").read_text())["N"] == N_ID

    loaded = HadTokenizer.from_pretrained(tmp_path)
    assert loaded.add_cls_token is cls and loaded.padding_side == side
    seqs = ["ACGT", "GA"]
    assert loaded(seqs, padding=True)["input_ids"] == tok(seqs, padding=True)["input_ids"]
    assert torch.equal(loaded.batch_encode_ids(seqs)["input_ids"], tok.batch_encode_ids(seqs)["input_ids"])


def test_padding_side_set_after_init_is_saved(tmp_path):
    tok = HadTokenizer()
    tok.padding_side = "left"
    tok.save_pretrained(tmp_path)
    assert HadTokenizer.from_pretrained(tmp_path).padding_side == "left"


def test_load_rejects_foreign_vocab(tmp_path):
    HadTokenizer().save_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({"A": 0, "C": 1}))
    with pytest.raises(CheckpointError, match="differs from hadna's fixed vocabulary"):
        HadTokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read"):
        HadTokenizer.from_pretrained(tmp_path)
