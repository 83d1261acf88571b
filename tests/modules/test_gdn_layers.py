"""Gated DeltaNet layer, bidirectional wrapper and attention: slow twins, causality and padding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from numerics import relative_error
from hadna.modules import BidirectionalGatedDeltaNet, GatedDeltaNet, SelfAttention, SequenceLayout
from hadna.ops import naive_recurrent_gated_delta_rule

TOL = 1e-5


def gdn(**kw):
    torch.manual_seed(0)
    return GatedDeltaNet(24, num_heads=2, head_k_dim=8, expand_v=2.0, **kw)


def reference_gdn(layer: GatedDeltaNet, x: torch.Tensor) -> torch.Tensor:
    """The layer written out step by step: explicit conv loop, naive recurrence, gated norm."""
    B, T, _ = x.shape
    H, K, V = layer.num_heads, layer.head_k_dim, layer.head_v_dim

    def conv(z, w):  # z: [B, T, D], w: [D, W]; causal, zero history
        W = w.shape[1]
        out = torch.zeros_like(z)
        for t in range(T):
            for i in range(W):
                src = t - (W - 1) + i
                if src >= 0:
                    out[:, t] += z[:, src] * w[:, i]
        return F.silu(out)

    def l2(z):
        return z / torch.sqrt((z ** 2).sum(-1, keepdim=True) + 1e-6)

    q = l2(conv(layer.q_proj(x), layer.q_conv1d.weight).view(B, T, H, K))
    k = l2(conv(layer.k_proj(x), layer.k_conv1d.weight).view(B, T, H, K))
    v = conv(layer.v_proj(x), layer.v_conv1d.weight).view(B, T, H, V)
    beta = torch.sigmoid(layer.b_proj(x))
    g = -layer.A_log.exp() * F.softplus(layer.a_proj(x) + layer.dt_bias)
    o, _ = naive_recurrent_gated_delta_rule(q, k, v, g, beta)
    o = o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + layer.o_norm.eps) * layer.o_norm.weight
    o = o * F.silu(layer.g_proj(x).view(B, T, H, V))
    return layer.o_proj(o.reshape(B, T, H * V))


@pytest.mark.parametrize("T", [1, 5, 70], ids=lambda t: f"T{t}")
def test_gdn_layer_matches_step_by_step_reference(T):
    layer = gdn(chunk_size=16)
    x = torch.randn(2, T, 24)
    assert relative_error(layer(x), reference_gdn(layer, x)) <= TOL


def test_gdn_layer_gradients_match_reference():
    layer = gdn(chunk_size=8)
    x = torch.randn(2, 21, 24, requires_grad=True)
    grads = []
    for fn in (layer, lambda z: reference_gdn(layer, z)):
        layer.zero_grad()
        x.grad = None
        fn(x).pow(2).sum().backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in layer.parameters()])
    for a, b in zip(*grads):
        assert relative_error(a, b) <= TOL


def test_gdn_layer_is_causal():
    layer = gdn()
    x = torch.randn(1, 30, 24)
    y = layer(x)
    x2 = x.clone()
    x2[:, 20:] = torch.randn(1, 10, 24)
    y2 = layer(x2)
    # exact in exact arithmetic; the chunked kernel's rounding may see later steps (e.g. its per-chunk
    # decay centring), so allow float rounding but nothing more
    assert relative_error(y[:, :20], y2[:, :20]) <= 1e-6
    assert relative_error(y[:, 20:], y2[:, 20:]) > 1e-2


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("combine", ["add", "concat"])
def test_bidirectional_is_forward_plus_reversed_backward(tie, combine):
    torch.manual_seed(0)
    bi = BidirectionalGatedDeltaNet(24, tie_directions=tie, combine=combine, num_heads=2, head_k_dim=8)
    x = torch.randn(2, 33, 24)
    fwd = bi.fwd(x)
    bwd = (bi.fwd if tie else bi.bwd)(x.flip(1)).flip(1)
    expected = fwd + bwd if combine == "add" else bi.combine_proj(torch.cat([fwd, bwd], -1))
    assert relative_error(bi(x), expected) <= TOL


def test_untied_has_twice_the_mixer_parameters():
    tied = BidirectionalGatedDeltaNet(24, tie_directions=True, num_heads=2, head_k_dim=8)
    untied = BidirectionalGatedDeltaNet(24, tie_directions=False, num_heads=2, head_k_dim=8)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(untied) == 2 * n(tied)


def pad_batch(seqs, side):
    """seqs: list of [T_i, D] -> x [B, T, D], mask [B, T] with junk (not zeros) in the padding."""
    T = max(s.shape[0] for s in seqs)
    x = torch.randn(len(seqs), T, seqs[0].shape[1]) * 100.0  # loud padding: any leak shows up
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(0, len(s)) if side == "right" else slice(T - len(s), T)
        x[i, sl] = s
        mask[i, sl] = 1
    return x, mask


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("module", ["bigdn-tied", "bigdn-untied-concat", "attention"])
def test_padding_never_leaks(side, module):
    torch.manual_seed(0)
    if module == "attention":
        layer = SelfAttention(24, num_heads=3)
    else:
        layer = BidirectionalGatedDeltaNet(24, tie_directions=module == "bigdn-tied",
                                           combine="concat" if "concat" in module else "add",
                                           num_heads=2, head_k_dim=8, chunk_size=16)
    lengths = [1, 17, 40, 3]
    seqs = [torch.randn(n, 24) for n in lengths]
    x, mask = pad_batch(seqs, side)
    y = layer(x, SequenceLayout(mask, x.shape[1]))
    for i, s in enumerate(seqs):
        alone = layer(s[None])[0]
        got = y[i][mask[i].bool()]
        assert relative_error(got, alone) <= TOL, f"sequence {i} (length {len(s)})"


def test_layout_roundtrip_and_reverse_order():
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    lay = SequenceLayout(mask, 5)
    x = torch.arange(15.0).view(3, 5, 1)
    assert torch.equal(lay.from_forward(lay.to_forward(x)), x)
    assert torch.equal(lay.from_backward(lay.to_backward(x)), x)
    packed_b = lay.to_backward(x)[..., 0]
    assert packed_b[0, :3].tolist() == [2, 1, 0]
    assert packed_b[1, :3].tolist() == [9, 8, 7]
    assert packed_b[2].tolist() == [14, 13, 12, 11, 10]
    assert lay.position_ids(3, x.device)[1].tolist() == [0, 0, 0, 1, 2]
