"""The Gated DeltaNet token mixer (Yang et al. 2024), as flash-linear-attention's ``GatedDeltaNet`` layer.

    q, k, v = SiLU(ShortConv(W_q x)), SiLU(ShortConv(W_k x)), SiLU(ShortConv(W_v x))
    q, k    = L2Norm(q), L2Norm(k)                      per head
    beta    = sigmoid(W_b x)                            [B, T, H]
    g       = -exp(A_log) * softplus(W_a x + dt_bias)   [B, T, H], fp32, log decay <= 0
    o       = gated_delta_rule(q, k, v, g, beta)        [B, T, H, V]
    y       = W_o (RMSNorm(o) * SiLU(W_g x))

The layer is split into ``project`` (pointwise in time: all input projections in one matmul) and
``mix`` (causal: short convolutions and the recurrence) so that :class:`BidirectionalGatedDeltaNet` can
share the pointwise work between directions. ``mix`` works head-first (``[B, H, T, *]``), the layout the
CPU kernel wants: each tensor is reordered (padding last, optionally reversed) and transposed in one copy.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops import chunk_gated_delta_rule
from .conv import ShortConvolution, causal_conv1d
from .norm import GatedRMSNorm
from .padding import SequenceLayout


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``x / sqrt(sum(x^2) + eps)`` over the last dimension (flash-linear-attention's ``l2norm``)."""
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + eps)


def rms_normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``x / rms(x)`` over the last dimension in fp32 (RMSNorm without its weight)."""
    x = x.float()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def gate_init_values(num_heads: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mamba-2/GDN draw of the decay parameters: ``(A_log, dt_bias)``, both ``[num_heads]``.

    A ~ U(0, 16) (so A_log = log A), dt log-uniform in [1e-3, 0.1], dt_bias = softplus^-1(dt).
    """
    A = torch.empty(num_heads).uniform_(0, 16, generator=generator).clamp_min(1e-4)
    dt = torch.exp(torch.rand(num_heads, generator=generator) * (math.log(0.1) - math.log(1e-3))
                   + math.log(1e-3)).clamp_min(1e-4)
    return A.log(), dt + torch.log(-torch.expm1(-dt))


class Projections(NamedTuple):
    """Pointwise projections of the input; all ``[B, T, *]``."""

    qkv: torch.Tensor   # [B, T, 2*H*K + H*V] before the short convolutions
    a: torch.Tensor     # [B, T, H] decay logits
    b: torch.Tensor     # [B, T, H] beta logits
    gate: torch.Tensor  # [B, T, H*V] output gate logits


class GatedDeltaNet(nn.Module):
    """One causal Gated DeltaNet mixer. x: ``[B, T, D]`` -> ``[B, T, D]``."""

    def __init__(self, hidden_size: int, num_heads: int = 4, head_k_dim: int = 32, expand_v: float = 2.0,
                 conv_size: int = 4, norm_eps: float = 1e-5, chunk_size: int = 64, kernel_backend: str = "auto",
                 grad_impl: str = "custom"):
        super().__init__()
        head_v_dim = head_k_dim * expand_v
        if not float(head_v_dim).is_integer():
            raise ValueError(f"head_k_dim * expand_v must be an integer, got {head_k_dim} * {expand_v}")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_k_dim = head_k_dim
        self.head_v_dim = int(head_v_dim)
        self.key_dim = num_heads * head_k_dim
        self.value_dim = num_heads * self.head_v_dim
        self.chunk_size = chunk_size
        self.kernel_backend = kernel_backend
        self.grad_impl = grad_impl  # the PyTorch kernel's backward: "custom" or "autograd" (a twin for tests)

        # Parameter names follow flash-linear-attention's GatedDeltaNet.
        self.q_proj = nn.Linear(hidden_size, self.key_dim, bias=False)
        self.k_proj = nn.Linear(hidden_size, self.key_dim, bias=False)
        self.v_proj = nn.Linear(hidden_size, self.value_dim, bias=False)
        self.a_proj = nn.Linear(hidden_size, num_heads, bias=False)
        self.b_proj = nn.Linear(hidden_size, num_heads, bias=False)
        self.g_proj = nn.Linear(hidden_size, self.value_dim, bias=False)
        self.A_log = nn.Parameter(torch.empty(num_heads))
        self.dt_bias = nn.Parameter(torch.empty(num_heads))
        self.q_conv1d = ShortConvolution(self.key_dim, conv_size)
        self.k_conv1d = ShortConvolution(self.key_dim, conv_size)
        self.v_conv1d = ShortConvolution(self.value_dim, conv_size)
        self.o_norm = GatedRMSNorm(self.head_v_dim, eps=norm_eps)
        self.o_proj = nn.Linear(self.value_dim, hidden_size, bias=False)
        self.reset_gate_parameters()

    @torch.no_grad()
    def reset_gate_parameters(self, generator: torch.Generator | None = None) -> None:
        """Mamba-2/GDN initialisation of ``A_log`` and ``dt_bias`` (:func:`gate_init_values`)."""
        A_log, dt_bias = gate_init_values(self.num_heads, generator)
        self.A_log.copy_(A_log)
        self.dt_bias.copy_(dt_bias)
        self.A_log._no_weight_decay = True  # type: ignore[attr-defined]
        self.dt_bias._no_weight_decay = True  # type: ignore[attr-defined]

    # -- pieces --------------------------------------------------------------------------------------
    def project(self, x: torch.Tensor) -> Projections:
        """All input projections as one matmul. x: ``[B, T, D]``.

        The q/k/v rows are interleaved head by head (``[q_h | k_h | v_h]`` for each head h), so that one
        reorder-and-transpose copy and one short convolution serve all three (see :meth:`mix`).
        """
        H, K, V, D = self.num_heads, self.head_k_dim, self.head_v_dim, self.hidden_size
        w_qkv = torch.cat([self.q_proj.weight.view(H, K, D), self.k_proj.weight.view(H, K, D),
                           self.v_proj.weight.view(H, V, D)], dim=1).view(H * (2 * K + V), D)
        w = torch.cat([w_qkv, self.g_proj.weight, self.a_proj.weight, self.b_proj.weight])
        y = F.linear(x, w)
        qkv, gate, a, b = y.split([2 * self.key_dim + self.value_dim, self.value_dim,
                                   self.num_heads, self.num_heads], dim=-1)
        return Projections(qkv, a, b, gate)

    def conv_weight(self) -> torch.Tensor:
        """The three short convolutions' weights interleaved like :meth:`project`'s rows: ``[H, 1, 2K+V, W]``."""
        H, K, V = self.num_heads, self.head_k_dim, self.head_v_dim
        return torch.cat([self.q_conv1d.weight.view(H, K, -1), self.k_conv1d.weight.view(H, K, -1),
                          self.v_conv1d.weight.view(H, V, -1)], dim=1)[:, None]

    def mix(self, p: Projections, layout: SequenceLayout, direction: str = "fwd") -> torch.Tensor:
        """Causal mixing in ``direction`` ("fwd", or "bwd" = over each sequence's reversed valid part).

        Returns o: ``[B, H, T, V]`` (head-first, original token order, before the output norm).
        """
        B, T, _ = p.qkv.shape
        H, K, V = self.num_heads, self.head_k_dim, self.head_v_dim
        qkv = layout.to_head_first(p.qkv.view(B, T, H, 2 * K + V), direction)      # [B, H, T, 2K+V]
        ab = layout.to_head_first(torch.stack([p.a, p.b], dim=-1), direction)     # [B, H, T, 2]
        qkv = causal_conv1d(qkv, self.conv_weight())
        q, k, v = qkv.split([K, K, V], dim=-1)                                    # views
        q, k = l2norm(q), l2norm(k)
        a, b = ab.unbind(-1)                                                      # [B, H, T]
        beta = b.sigmoid()
        g = -self.A_log.float().exp()[:, None] * F.softplus(a.float() + self.dt_bias.float()[:, None])
        o = self._recurrence(q, k, v, g, beta)                                    # [B, H, T, V]
        return layout.from_head_first(o, direction)

    def _recurrence(self, q, k, v, g, beta) -> torch.Tensor:
        """The delta rule on head-first ``[B, H, T, *]`` tensors, through the public op (which picks fla's
        kernel on CUDA when it can, hadna's PyTorch kernel otherwise)."""
        o, _ = chunk_gated_delta_rule(q, k, v, g, beta, chunk_size=self.chunk_size, backend=self.kernel_backend,
                                      grad_impl=self.grad_impl, head_first=True)
        return o

    def output(self, o: torch.Tensor, gate: torch.Tensor, normalized: bool = False) -> torch.Tensor:
        """o: ``[B, H, T, V]`` -> ``W_o(RMSNorm(o) * SiLU(gate))``: ``[B, T, D]``. gate: ``[B, T, H*V]``.

        With ``normalized=True`` ``o`` is already divided by its RMS (a sum of normalised outputs).
        """
        B, H, T, V = o.shape
        gate = gate.view(B, T, H, V).transpose(1, 2)                             # [B, H, T, V] view
        o = o if normalized else rms_normalize(o, self.o_norm.eps)
        y = (o * self.o_norm.weight.float() * F.silu(gate.float())).to(gate.dtype)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, H * V))

    def forward(self, x: torch.Tensor, layout: SequenceLayout | None = None) -> torch.Tensor:
        """Causal (left-to-right) mixing. x: ``[B, T, D]``; layout: padding gathers (None = no padding)."""
        layout = layout or SequenceLayout(None, x.shape[1])
        p = self.project(x)
        return self.output(self.mix(p, layout, "fwd"), p.gate)
