"""Two-stage grouping masking: property tests with hypothesis on real NT tokenisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hadna import vocab
from hadna.masking import sample_token_mask, token_index_of_positions, two_stage_mask
from hadna.teachers import NT_MASK_ID, nt_tokenize_batch
from hadna.tokenization import batch_encode

dna = st.text(alphabet="ACGTN", min_size=1, max_size=90).filter(lambda s: True)
# N's are rare in genomes but must be handled; bias the alphabet so runs of N and remainders appear.
dna_rich = st.lists(st.sampled_from(["A", "C", "G", "T", "N", "ACGTAC", "NN", "TTTTTTT"]), min_size=1,
                    max_size=25).map("".join)


def make_batch(seqs, side, ratio, seeds):
    enc = batch_encode(seqs, padding_side=side)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    toks = nt_tokenize_batch(ids, mask)
    mb = two_stage_mask(ids, mask, toks.input_ids, toks.attention_mask, toks.span_start, toks.span_len,
                        teacher_mask_id=NT_MASK_ID, sample_seeds=seeds, mask_ratio=ratio)
    return ids, mask, toks, mb


@settings(max_examples=60, deadline=None)
@given(seqs=st.lists(dna_rich, min_size=1, max_size=5), side=st.sampled_from(["right", "left"]),
       ratio=st.sampled_from([0.0, 0.15, 0.3, 0.5]), seed=st.integers(0, 2**31))
def test_masks_agree_and_hide_everything(seqs, side, ratio, seed):
    seeds = [seed + i for i in range(len(seqs))]
    ids, mask, toks, mb = make_batch(seqs, side, ratio, seeds)
    B, L = ids.shape
    for b in range(B):
        # union of the masked teacher tokens' spans == masked student nucleotides
        from_teacher = torch.zeros(L, dtype=torch.bool)
        for j in torch.nonzero(mb.teacher_masked[b]).flatten().tolist():
            s, n = int(toks.span_start[b, j]), int(toks.span_len[b, j])
            assert n in (1, 6)
            from_teacher[s:s + n] = True
        assert torch.equal(from_teacher, mb.masked[b])
        # the requested fraction of maskable tokens (all real tokens except <cls>), +-1 token
        n_maskable = int(toks.attention_mask[b].sum()) - 1
        k = int(mb.teacher_masked[b].sum())
        assert abs(k - ratio * n_maskable) <= 1
        assert k <= max(n_maskable - 1, 0)  # something stays visible
        # never <cls>, never padding
        assert not mb.teacher_masked[b, 0]
        assert not (mb.teacher_masked[b] & (toks.attention_mask[b] == 0)).any()
        assert not (mb.masked[b] & (mask[b] == 0)).any()
    # neither model sees a masked base
    assert (mb.input_ids[mb.masked] == vocab.MASK_ID).all()
    assert (mb.input_ids[~mb.masked] == ids[~mb.masked]).all()
    assert (mb.teacher_input_ids[mb.teacher_masked] == NT_MASK_ID).all()
    assert (mb.teacher_input_ids[~mb.teacher_masked] == toks.input_ids[~mb.teacher_masked]).all()
    # a visible teacher token covers visible nucleotides only
    vis = mb.visible_tokens
    for b, j in torch.nonzero(vis).tolist():
        s, n = int(toks.span_start[b, j]), int(toks.span_len[b, j])
        assert not mb.masked[b, s:s + n].any()
    assert torch.equal(mb.targets, ids)


@settings(max_examples=30, deadline=None)
@given(seq=dna_rich, seed=st.integers(0, 2**31))
def test_n_and_remainder_tokens_mask_single_nucleotides(seq, seed):
    _, _, toks, mb = make_batch([seq], "right", 0.5, [seed])
    for j in torch.nonzero(mb.teacher_masked[0]).flatten().tolist():
        s, n = int(toks.span_start[0, j]), int(toks.span_len[0, j])
        if seq[s] == "N":
            assert n == 1  # an N is its own token and masks only itself
        assert int(mb.masked[0].sum()) >= n


def test_mask_of_a_sample_does_not_depend_on_its_batch():
    seqs = ["ACGTACGTACGTAAAAAACCCCCCNGT" * 3, "GATTACA" * 9, "TTTTTTGGGGGG" * 5]
    seeds = [11, 22, 33]
    _, _, _, full = make_batch(seqs, "right", 0.3, seeds)
    for i in range(3):
        _, _, _, alone = make_batch([seqs[i]], "right", 0.3, [seeds[i]])
        L = alone.masked.shape[1]
        assert torch.equal(alone.masked[0], full.masked[i, :L])
    _, _, _, again = make_batch(seqs, "right", 0.3, seeds)
    assert torch.equal(again.masked, full.masked)
    _, _, _, other = make_batch(seqs, "right", 0.3, [1, 2, 3])
    assert not torch.equal(other.masked, full.masked)


def test_left_and_right_padding_mask_the_same_bases():
    seqs = ["ACGTACGTACGTAAAAAACCCCCCNGT", "GATTACA" * 4]
    _, mask_r, _, right = make_batch(seqs, "right", 0.3, [5, 6])
    _, mask_l, _, left = make_batch(seqs, "left", 0.3, [5, 6])
    for b in range(2):
        assert torch.equal(right.masked[b][mask_r[b].bool()], left.masked[b][mask_l[b].bool()])


def test_token_index_of_positions_tiles_spans():
    start = torch.tensor([[0, 0, 6, 7, 8]])
    length = torch.tensor([[0, 6, 1, 1, 6]])
    idx = token_index_of_positions(start, length, 14)
    assert idx[0].tolist() == [1] * 6 + [2, 3] + [4] * 6


def test_bad_arguments():
    with pytest.raises(ValueError, match="mask_ratio"):
        sample_token_mask(torch.ones(1, 5, dtype=torch.bool), 1.0, [0])
    with pytest.raises(ValueError, match="one seed per sequence"):
        sample_token_mask(torch.ones(2, 5, dtype=torch.bool), 0.1, [0])


def test_default_ratio_on_a_long_sequence():
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGT"), 1024))
    _, _, toks, mb = make_batch([seq], "right", 0.15, [0])
    n_tok = int(toks.attention_mask.sum()) - 1  # 171 6-mer/remainder tokens
    assert int(mb.teacher_masked.sum()) == round(0.15 * n_tok)
    assert int(mb.masked.sum()) == int(toks.span_len[mb.teacher_masked].sum())
