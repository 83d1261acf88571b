"""Distillation and reconstruction branches: what they may read, what they count, and that they learn."""

from __future__ import annotations

import pytest
import torch

from hadna import vocab
from hadna.masking import two_stage_mask
from hadna.models import HadConfig, HadModel
from hadna.objectives import HadPretrainingModel, ObjectiveConfig, ReconstructionDecoder, span_mean_pool
from hadna.teachers import NT_MASK_ID, nt_tokenize_batch
from hadna.tokenization import batch_encode

TEACHER_DIM = 24


def masked_batch(seqs=None, side="right", ratio=0.3):
    seqs = seqs or ["ACGTACGTTAGCNNACGTAGGATCCATTAGGACAT" * 2, "GATTACAGATTACACCA", "TTTTTTGGGGGGAAAAAACC" * 2]
    enc = batch_encode(seqs, padding_side=side)
    toks = nt_tokenize_batch(enc["input_ids"], enc["attention_mask"])
    return two_stage_mask(enc["input_ids"], enc["attention_mask"], toks.input_ids, toks.attention_mask,
                          toks.span_start, toks.span_len, NT_MASK_ID, list(range(len(seqs))), ratio)


def pretrainer(mode, **kw):
    torch.manual_seed(0)
    student = HadModel(HadConfig.preset("had-tiny", chunk_size=16))
    obj = ObjectiveConfig(mode=mode, decoder_width=32, decoder_heads=2, **kw)
    return HadPretrainingModel(student, obj, teacher_dim=TEACHER_DIM if obj.uses_teacher else None)


def test_span_mean_pool_matches_a_loop():
    mb = masked_batch()
    feats = torch.randn(*mb.input_ids.shape, 5)
    N = mb.span_len.shape[1]
    pooled = span_mean_pool(feats, mb.token_index, mb.visible, N)
    for b in range(feats.shape[0]):
        for j in range(N):
            s, n = int(mb.span_start[b, j]), int(mb.span_len[b, j])
            if n and mb.visible_tokens[b, j]:
                torch.testing.assert_close(pooled[b, j], feats[b, s:s + n].mean(0))


def test_decoder_reads_only_visible_features_of_its_own_sequence():
    torch.manual_seed(0)
    dec = ReconstructionDecoder(16, width=16, layers=2, heads=2).eval()
    mb = masked_batch()
    feats = torch.randn(*mb.input_ids.shape, 16)
    base = dec(feats, mb.visible, mb.masked)
    assert base.shape == (int(mb.masked.sum()), 5)
    poked = feats.clone()
    poked[~mb.visible] = torch.randn_like(poked[~mb.visible]) * 50  # masked and padded positions
    torch.testing.assert_close(dec(poked, mb.visible, mb.masked), base)
    # Row 1 alone gives the same logits as inside the batch: no cross-sequence attention.
    row = 1
    alone = dec(feats[row:row + 1], mb.visible[row:row + 1], mb.masked[row:row + 1])
    start = int(mb.masked[:row].sum())
    torch.testing.assert_close(alone, base[start:start + alone.shape[0]], rtol=1e-5, atol=1e-6)


def test_distillation_counts_only_visible_tokens():
    model = pretrainer("distillation")
    mb = masked_batch()
    teacher = torch.randn(*mb.span_len.shape, TEACHER_DIM)
    loss = model(mb, teacher).loss
    hidden = ~mb.visible_tokens  # masked tokens, <cls>, padding
    poked = teacher.clone()
    poked[hidden] = 1e3
    torch.testing.assert_close(model(mb, poked).loss, loss)
    poked[mb.visible_tokens] += 1.0
    assert not torch.allclose(model(mb, poked).loss, loss)


def test_distillation_loss_equals_explicit_mse():
    model = pretrainer("distillation", normalize_targets=True)
    mb = masked_batch()
    teacher = torch.randn(*mb.span_len.shape, TEACHER_DIM) * 3 + 1
    feats = model.student(mb.input_ids, attention_mask=mb.attention_mask).last_hidden_state
    preds, targets = [], []
    for b, j in torch.nonzero(mb.visible_tokens).tolist():
        s, n = int(mb.span_start[b, j]), int(mb.span_len[b, j])
        preds.append(model.distill_head(feats[b, s:s + n].mean(0)))
        t = teacher[b, j]
        targets.append((t - t.mean()) / torch.sqrt(t.var(unbiased=False) + 1e-5))
    expected = torch.nn.functional.mse_loss(torch.stack(preds), torch.stack(targets))
    torch.testing.assert_close(model(mb, teacher).metrics["distill_loss"], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["had", "reconstruction", "distillation", "mlm"])
def test_each_mode_learns_a_fixed_batch(mode):
    model = pretrainer(mode)
    mb = masked_batch()
    teacher = torch.randn(*mb.span_len.shape, TEACHER_DIM) if model.objective.uses_teacher else None
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        out = model(mb, teacher)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = first if first is not None else out.loss.item()
    assert out.loss.item() < 0.7 * first, (first, out.loss.item())
    keys = set(out.metrics)
    assert {"had": {"recon_loss", "distill_loss"}, "reconstruction": {"recon_loss"},
            "distillation": {"distill_loss"}, "mlm": {"mlm_loss"}}[mode] <= keys


@pytest.mark.parametrize("mode,acc", [("reconstruction", "recon_acc"), ("mlm", "mlm_acc")])
def test_accuracy_is_named_after_the_head(mode, acc):
    """The MLM student's accuracy is logged as mlm_acc (as its validation names it), not recon_acc."""
    keys = set(pretrainer(mode)(masked_batch(), None).metrics)
    assert acc in keys and ({"recon_acc", "mlm_acc"} - {acc}).isdisjoint(keys)


def test_had_loss_is_reconstruction_plus_weighted_distillation():
    model = pretrainer("had", distill_weight=0.25)
    mb = masked_batch()
    out = model(mb, torch.randn(*mb.span_len.shape, TEACHER_DIM))
    m = out.metrics
    torch.testing.assert_close(out.loss.detach(), m["recon_loss"] + 0.25 * m["distill_loss"])


def test_modes_that_need_a_teacher_say_so():
    with pytest.raises(ValueError, match="teacher_dim"):
        HadPretrainingModel(HadModel(HadConfig.preset("had-tiny")), ObjectiveConfig(mode="had"))
    model = pretrainer("had")
    with pytest.raises(ValueError, match="teacher features"):
        model(masked_batch())


def test_reconstruction_targets_are_nucleotide_classes():
    mb = masked_batch()
    t = mb.targets[mb.masked] - vocab.A_ID
    assert t.min() >= 0 and t.max() <= 4


@pytest.mark.parametrize("mode", ["had", "reconstruction", "distillation", "mlm"])
def test_contributions_with_global_totals_sum_to_the_whole_batch(mode):
    """Split a batch in two, normalise both halves by the whole batch's counts: the halves' losses, metrics
    and gradients add up to the whole batch's (what DDP and gradient accumulation rely on)."""
    from hadna.masking import MaskedBatch
    from hadna.objectives import objective_counts

    model = pretrainer(mode)
    mb = masked_batch()
    teacher = torch.randn(*mb.span_len.shape, TEACHER_DIM) if model.objective.uses_teacher else None
    whole = model(mb, teacher)
    whole.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    totals = objective_counts(mb)
    parts = []
    for rows in (slice(0, 1), slice(1, 3)):
        part = MaskedBatch(**{k: v[rows] for k, v in mb.__dict__.items()})
        out = model(part, None if teacher is None else teacher[rows], totals)
        out.loss.backward()
        parts.append(out)
    torch.testing.assert_close(sum(p.loss for p in parts).detach(), whole.loss.detach(), rtol=1e-5, atol=1e-6)
    for key in whole.metrics:
        torch.testing.assert_close(sum(p.metrics[key] for p in parts), whole.metrics[key], rtol=1e-5, atol=1e-6)
    for n, p in model.named_parameters():
        if n in grads:
            torch.testing.assert_close(p.grad, grads[n], rtol=1e-4, atol=1e-6)


def test_objective_counts_are_the_default_normalisers():
    from hadna.objectives import objective_counts

    mb = masked_batch()
    counts = objective_counts(mb)
    assert int(counts["masked_nt"]) == int(mb.masked.sum()) > 0
    assert int(counts["visible_tokens"]) == int(mb.visible_tokens.sum()) > 0
    model = pretrainer("reconstruction")
    doubled = {k: 2 * v for k, v in counts.items()}
    torch.testing.assert_close(model(mb, totals=doubled).loss, model(mb).loss / 2)


def test_instance_normalised_targets_use_each_sequences_visible_tokens_only():
    model = pretrainer("distillation", normalize_targets="instance")
    mb = masked_batch()
    teacher = torch.randn(*mb.span_len.shape, TEACHER_DIM) * 3 + 7  # a large shared offset
    feats = model.student(mb.input_ids, attention_mask=mb.attention_mask).last_hidden_state
    preds, targets = [], []
    for b in range(teacher.shape[0]):
        vis = torch.nonzero(mb.visible_tokens[b]).flatten().tolist()
        t = teacher[b, vis]
        z = (t - t.mean(0)) / torch.sqrt(t.var(0, unbiased=False) + 1e-5)
        for row, j in enumerate(vis):
            s, n = int(mb.span_start[b, j]), int(mb.span_len[b, j])
            preds.append(model.distill_head(feats[b, s:s + n].mean(0)))
            targets.append(z[row])
    expected = torch.nn.functional.mse_loss(torch.stack(preds), torch.stack(targets))
    loss = model(mb, teacher).metrics["distill_loss"]
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    poked = teacher.clone()
    poked[~mb.visible_tokens] = float("nan")  # hidden, special and padding tokens never enter the statistics
    torch.testing.assert_close(model(mb, poked).metrics["distill_loss"], loss)
    shifted = teacher + torch.randn(teacher.shape[0], 1, TEACHER_DIM) * 50  # a per-sequence offset is removed
    torch.testing.assert_close(model(mb, shifted).metrics["distill_loss"], loss, rtol=1e-4, atol=1e-5)


def test_normalize_targets_values():
    from hadna.config import from_dict
    from hadna.errors import ConfigError

    assert from_dict(ObjectiveConfig, {"normalize_targets": "instance"}).normalize_targets == "instance"
    assert from_dict(ObjectiveConfig, {"normalize_targets": True}).normalize_targets is True
    with pytest.raises(ConfigError):
        from_dict(ObjectiveConfig, {"normalize_targets": "batch"})
