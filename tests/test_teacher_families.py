"""Span mapping and grouping masks for every teacher tokenizer family (property tests on fixture vocabularies).

Families: NT 6-mers (kmer), BPE with variable-length tokens (offsets of a fast tokenizer), one token per
nucleotide (char) with and without cls/eos; left and right padding. For every batch hypothesis draws:
each real nucleotide lies in exactly one real token's span, specials and padding cover none, and each
token's id is the vocabulary id of exactly the bases it spans. Masks: the masked nucleotides are exactly
the spans of the masked teacher tokens, and nothing masked is visible to the student or the teacher.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from family_fixtures import BPE_VOCAB, bpe_tokenizer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hadna import vocab
from hadna.masking import two_stage_mask
from hadna.teachers import NT_VOCAB
from hadna.teachers.spans import CharSpanTokenizer, KmerSpanTokenizer, OffsetSpanTokenizer
from hadna.train.config import MaskingSection
from hadna.train.samples import plan_for

BASES = "ACGTN"
HYENA_IDS = {"A": 7, "C": 8, "G": 9, "T": 10, "N": 11}
_BPE = {side: OffsetSpanTokenizer(bpe_tokenizer(side), "bpe-fixture") for side in ("left", "right")}


def _char(prefix, suffix, side):
    return CharSpanTokenizer(base_ids=HYENA_IDS, pad_token_id=4, mask_token_id=3, prefix=prefix, suffix=suffix,
                             padding_side=side)


FAMILIES = {
    "nt-6mer": lambda side: KmerSpanTokenizer(np.arange(len(NT_VOCAB))),
    "bpe": lambda side: _BPE[side],
    "char": lambda side: _char((), (), side),
    "char-cls": lambda side: _char((0,), (), side),
    "char-eos": lambda side: _char((), (1,), side),
    "char-cls-eos": lambda side: _char((0, 2), (1,), side),
}
ID_TO_TOKEN = {
    "nt-6mer": dict(enumerate(NT_VOCAB)),
    "bpe": {i: t for t, i in BPE_VOCAB.items()},
    "char": {i: b for b, i in HYENA_IDS.items()},
}


def _token_string(family: str, tid: int) -> str:
    return ID_TO_TOKEN["char" if family.startswith("char") else family][tid]


# sequences of A C G T N (N rarer), batched with padding on a given side
seqs = st.lists(st.text(alphabet=st.sampled_from("ACGTACGTACGTN"), min_size=1, max_size=40), min_size=1, max_size=4)


def _batch(strings: list[str], side: str, student_side: str) -> tuple[torch.Tensor, torch.Tensor]:
    L = max(map(len, strings))
    ids = torch.zeros(len(strings), L, dtype=torch.long)
    mask = torch.zeros(len(strings), L, dtype=torch.long)
    for b, s in enumerate(strings):
        row = torch.tensor([vocab.A_ID + BASES.index(c) for c in s])
        cols = slice(L - len(s), L) if student_side == "left" else slice(0, len(s))
        ids[b, cols], mask[b, cols] = row, 1
    return ids, mask


def _coverage(toks, L: int) -> torch.Tensor:
    """[B, L] number of real tokens whose span covers each position."""
    B, N = toks.span_start.shape
    cover = torch.zeros(B, L, dtype=torch.long)
    for b in range(B):
        for j in range(N):
            if toks.attention_mask[b, j]:
                s, n = int(toks.span_start[b, j]), int(toks.span_len[b, j])
                cover[b, s:s + n] += 1
    return cover


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(strings=seqs, student_side=st.sampled_from(["left", "right"]))
def test_every_nucleotide_lies_in_exactly_one_real_tokens_span(family, side, strings, student_side):
    spans = FAMILIES[family](side)
    ids, mask = _batch(strings, side, student_side)
    toks = spans(ids, mask)
    assert toks.input_ids.shape == toks.span_len.shape == toks.attention_mask.shape
    cover = _coverage(toks, ids.shape[1])
    assert torch.equal(cover, mask)                              # real nucleotides once, padding never
    assert not bool(((toks.attention_mask == 0) & (toks.span_len > 0)).any())   # padding tokens span nothing
    for b, s in enumerate(strings):
        real = toks.attention_mask[b].bool()
        cols = torch.nonzero(real).flatten()
        assert bool((cols[1:] - cols[:-1] == 1).all())          # the teacher's real tokens are contiguous
        if family != "nt-6mer" and side == "left":
            assert bool(real[-1])                                # left padding: tokens end at the right edge
        elif family != "nt-6mer":
            assert bool(real[0])
        start = int(torch.nonzero(mask[b]).min())
        order = []
        for j in cols.tolist():
            n = int(toks.span_len[b, j])
            if n == 0:                                           # a special token
                continue
            st_ = int(toks.span_start[b, j]) - start
            assert _token_string(family, int(toks.input_ids[b, j])) == s[st_:st_ + n]
            order.append(st_)
        assert order == sorted(order)                            # spans in sequence order
        n_special = int(real.sum()) - len(order)
        expected_specials = {"nt-6mer": 1, "bpe": 2, "char": 0, "char-cls": 1, "char-eos": 1, "char-cls-eos": 3}
        assert n_special == expected_specials[family]


@pytest.mark.parametrize("teacher_input", ["mask_token", "n", "causal_prefix"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
@settings(max_examples=12, deadline=None)
@given(strings=seqs, student_side=st.sampled_from(["left", "right"]), side=st.sampled_from(["left", "right"]),
       seed=st.integers(0, 2**63 - 1), ratio=st.sampled_from([0.15, 0.3, 0.5]), group=st.sampled_from([1, 3, 6]))
def test_masked_nucleotides_are_the_spans_of_masked_tokens_and_nothing_masked_is_visible(
        family, teacher_input, strings, student_side, side, seed, ratio, group):
    spans = FAMILIES[family](side)
    if teacher_input == "n" and spans.n_token_id is None:
        return                                                   # k-mer / BPE teachers have no such mode
    plan = plan_for(MaskingSection(mask_ratio=ratio, group_size=group, teacher_input=teacher_input), spans,
                    causal=teacher_input == "causal_prefix")
    ids, mask = _batch(strings, side, student_side)
    toks = spans(ids, mask)
    seeds = [seed + b for b in range(len(strings))]
    mb = two_stage_mask(ids, mask, toks.input_ids, toks.attention_mask, toks.span_start, toks.span_len,
                        spans.mask_token_id, seeds, ratio, group_size=plan.effective_group_size,
                        teacher_input=plan.teacher_input, teacher_n_id=spans.n_token_id)
    # stage 2: masked nucleotides == union of the spans of masked teacher tokens
    expected = torch.zeros_like(mb.masked)
    for b, j in torch.nonzero(mb.teacher_masked).tolist():
        s, n = int(mb.span_start[b, j]), int(mb.span_len[b, j])
        assert n > 0                                             # specials are never masked
        expected[b, s:s + n] = True
    assert torch.equal(mb.masked, expected)
    # the student sees [MASK] at every masked base and the original base everywhere else
    assert bool((mb.input_ids[mb.masked] == vocab.MASK_ID).all())
    assert torch.equal(mb.input_ids[~mb.masked], ids[~mb.masked])
    # the teacher: masked tokens replaced (mask_token / n); causal_prefix reads everything but distils only
    # tokens before the first masked one
    if teacher_input == "mask_token":
        assert bool((mb.teacher_input_ids[mb.teacher_masked] == spans.mask_token_id).all())
    elif teacher_input == "n":
        assert bool((mb.teacher_input_ids[mb.teacher_masked] == spans.n_token_id).all())
    unmasked = ~mb.teacher_masked
    if teacher_input != "causal_prefix":
        assert torch.equal(mb.teacher_input_ids[unmasked], toks.input_ids[unmasked])
    # every distillation target covers visible bases only; under causal_prefix it also precedes every masked token
    for b, j in torch.nonzero(mb.visible_tokens).tolist():
        s, n = int(mb.span_start[b, j]), int(mb.span_len[b, j])
        assert n > 0 and not bool(mb.masked[b, s:s + n].any())
        if teacher_input == "causal_prefix":
            assert not bool(mb.teacher_masked[b, :j + 1].any())
    # stage 1 counts: round(ratio * units), at least one unit left visible
    for b in range(len(strings)):
        maskable = (toks.attention_mask[b].bool() & (toks.span_len[b] > 0))
        n_units = -(-int(maskable.sum()) // plan.effective_group_size)
        k = min(int(np.floor(n_units * ratio + 0.5)), n_units - 1)
        masked_tokens = int(mb.teacher_masked[b].sum())
        if plan.effective_group_size == 1:
            assert masked_tokens == k
        else:                                                    # whole groups of g consecutive tokens
            pos = torch.cumsum(maskable.long(), 0) - 1
            groups = set((pos[mb.teacher_masked[b]] // plan.effective_group_size).tolist())
            assert len(groups) == k
            for g in groups:
                members = maskable & (pos // plan.effective_group_size == g)
                assert bool(mb.teacher_masked[b][members].all())


def test_group_size_one_is_the_ungrouped_mask():
    spans = FAMILIES["char"]("right")
    ids, mask = _batch(["ACGTACGTNNACGT" * 3, "ACG"], "right", "right")
    toks = spans(ids, mask)
    args = (ids, mask, toks.input_ids, toks.attention_mask, toks.span_start, toks.span_len, 3, [5, 6], 0.15)
    assert torch.equal(two_stage_mask(*args).teacher_masked, two_stage_mask(*args, group_size=1).teacher_masked)
    grouped = two_stage_mask(*args, group_size=6).teacher_masked
    assert int(grouped[0].sum()) == 6  # 42 bases -> 7 groups -> round(1.05) = 1 group of 6


def test_plan_defaults_and_refusals():
    from hadna.errors import ConfigError

    m = MaskingSection()
    assert plan_for(m, _char((), (1,), "right"), causal=True).teacher_input == "n"
    assert plan_for(m, _char((), (1,), "right"), causal=True).effective_group_size == 6
    assert plan_for(m, _BPE["right"]).teacher_input == "mask_token" and plan_for(m, _BPE["right"]).effective_group_size == 1
    with pytest.raises(ConfigError, match="causal teachers only"):
        plan_for(MaskingSection(teacher_input="causal_prefix"), _BPE["right"], causal=False)
    with pytest.raises(ConfigError, match="one token per nucleotide"):
        plan_for(MaskingSection(teacher_input="n"), _BPE["right"])
    no_mask = CharSpanTokenizer(base_ids=HYENA_IDS, pad_token_id=4, mask_token_id=None)
    with pytest.raises(ConfigError, match="no mask token"):
        plan_for(MaskingSection(teacher_input="mask_token"), no_mask)


def test_a_tokenizer_whose_offsets_do_not_tile_the_sequence_is_refused():
    from tokenizers import Tokenizer, models, normalizers
    from transformers import PreTrainedTokenizerFast

    from hadna.errors import CheckpointError

    tok = Tokenizer(models.WordLevel(vocab={"[UNK]": 0, "A": 1, "C": 2, "G": 3, "T": 4}, unk_token="[UNK]"))
    tok.normalizer = normalizers.Replace("N", "")               # drops every N: its offsets skip those bases
    from tokenizers import pre_tokenizers

    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[UNK]")
    spans = OffsetSpanTokenizer(fast, "dropping")
    ids, mask = _batch(["ACGT"], "right", "right")
    assert spans(ids, mask).span_len.tolist() == [[1, 1, 1, 1]]
    ids, mask = _batch(["ACNGT"], "right", "right")
    with pytest.raises(CheckpointError, match="does not split sequence 0"):
        spans(ids, mask)


def test_non_nucleotide_student_ids_are_refused():
    from hadna.errors import InvalidSequenceError

    ids = torch.tensor([[vocab.A_ID, vocab.MASK_ID, vocab.C_ID]])
    for family in ("bpe", "char-cls"):
        with pytest.raises(InvalidSequenceError, match="not a nucleotide"):
            FAMILIES[family]("right")(ids)


def test_causal_teachers_are_recognised_from_their_config():
    from hadna.teachers.wrapper import is_causal_config

    assert is_causal_config({"model_type": "hyenadna"}) and is_causal_config({"is_decoder": True})
    assert is_causal_config({"model_type": "x", "architectures": ["DnaGPTForCausalLM"]})
    assert not is_causal_config({"model_type": "bert", "architectures": ["BertForMaskedLM"]})
    assert not is_causal_config({"model_type": "caduceus"})  # bidirectional (BiMamba)
