"""The short causal convolution: explicit definition, and the custom backward against autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from numerics import relative_error
from hadna.modules.conv import _conv_forward, causal_conv1d


def reference(x, weight, silu):
    """conv1d with left zero padding, channels last: x [B, T, D], weight [D, W]."""
    D, W = weight.shape
    y = F.conv1d(F.pad(x.transpose(1, 2), (W - 1, 0)), weight[:, None, :], groups=D).transpose(1, 2)
    return F.silu(y) if silu else y


@pytest.mark.parametrize("T", [1, 2, 3, 4, 37], ids=lambda t: f"T{t}")
@pytest.mark.parametrize("silu", [True, False], ids=["silu", "linear"])
def test_matches_conv1d_forward_and_backward(T, silu):
    x = torch.randn(3, T, 10, dtype=torch.float64, requires_grad=True)
    w = torch.randn(10, 4, dtype=torch.float64, requires_grad=True)
    y = causal_conv1d(x, w, activation="silu" if silu else None)
    y_ref = reference(x, w, silu)
    assert relative_error(y, y_ref) <= 1e-12
    gy = torch.randn_like(y)
    gx, gw = torch.autograd.grad((y * gy).sum(), (x, w))
    gx_ref, gw_ref = torch.autograd.grad((y_ref * gy).sum(), (x, w))
    assert relative_error(gx, gx_ref) <= 1e-12 and relative_error(gw, gw_ref) <= 1e-12


def test_head_first_broadcast_weights_gradcheck():
    x = torch.randn(2, 3, 9, 5, dtype=torch.float64, requires_grad=True)   # [B, H, T, K]
    w = torch.randn(3, 1, 5, 4, dtype=torch.float64, requires_grad=True)   # [H, 1, K, W]
    assert torch.autograd.gradcheck(lambda a, b: causal_conv1d(a, b), (x, w))


def test_no_grad_path_equals_grad_path():
    x = torch.randn(2, 4, 20, 6)
    w = torch.randn(4, 1, 6, 4)
    with torch.no_grad():
        a = causal_conv1d(x, w)
    b = causal_conv1d(x.requires_grad_(), w)
    assert torch.equal(a, b.detach())
    assert torch.equal(_conv_forward(x.detach(), w), _conv_forward(x.detach(), w))
