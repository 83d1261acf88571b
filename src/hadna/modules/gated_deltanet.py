"""The Gated DeltaNet token mixer (Yang et al. 2024), as flash-linear-attention's ``GatedDeltaNet`` layer.

    q, k, v = SiLU(ShortConv(W_q x)), SiLU(ShortConv(W_k x)), SiLU(ShortConv(W_v x))
    q, k    = L2Norm(q), L2Norm(k)                      per head
    beta    = sigmoid(W_b x)                            [B, T, H]
    g       = -exp(A_log) * softplus(W_a x + dt_bias)   [B, T, H], fp32, log decay <= 0
    o       = gated_delta_rule(q, k, v, g, beta)        [B, T, H, V]
    y       = W_o (RMSNorm(o) * SiLU(W_g x))

The layer is split into ``project`` (pointwise in time), ``mix`` (causal: convolutions and the
recurrence) and ``output`` (pointwise) so that :class:`BidirectionalGatedDeltaNet` can share the
pointwise work between directions and run both recurrences in one kernel call.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops import chunk_gated_delta_rule
from .conv import causal_conv1d
from .norm import GatedRMSNorm
from .padding import SequenceLayout


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``x / sqrt(sum(x^2) + eps)`` over the last dimension (flash-linear-attention's ``l2norm``)."""
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + eps)


class Projections(NamedTuple):
    """Pointwise projections of the input; all ``[B, T, *]``."""

    qkv: torch.Tensor   # [B, T, 2*H*K + H*V] before the short convolutions
    a: torch.Tensor     # [B, T, H] decay logits
    b: torch.Tensor     # [B, T, H] beta logits
    gate: torch.Tensor  # [B, T, H*V] output gate logits


class GatedDeltaNet(nn.Module):
    """One causal Gated DeltaNet mixer. x: ``[B, T, D]`` -> ``[B, T, D]``."""

    def __init__(self, hidden_size: int, num_heads: int = 4, head_k_dim: int = 32, expand_v: float = 2.0,
                 conv_size: int = 4, norm_eps: float = 1e-5, chunk_size: int = 64, kernel_backend: str = "auto"):
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

        # Parameter names follow flash-linear-attention's GatedDeltaNet.
        self.q_proj = nn.Linear(hidden_size, self.key_dim, bias=False)
        self.k_proj = nn.Linear(hidden_size, self.key_dim, bias=False)
        self.v_proj = nn.Linear(hidden_size, self.value_dim, bias=False)
        self.a_proj = nn.Linear(hidden_size, num_heads, bias=False)
        self.b_proj = nn.Linear(hidden_size, num_heads, bias=False)
        self.g_proj = nn.Linear(hidden_size, self.value_dim, bias=False)
        self.A_log = nn.Parameter(torch.empty(num_heads))
        self.dt_bias = nn.Parameter(torch.empty(num_heads))
        # Kept as three modules (fla's layout); applied as one fused convolution.
        from .conv import ShortConvolution

        self.q_conv1d = ShortConvolution(self.key_dim, conv_size)
        self.k_conv1d = ShortConvolution(self.key_dim, conv_size)
        self.v_conv1d = ShortConvolution(self.value_dim, conv_size)
        self.o_norm = GatedRMSNorm(self.head_v_dim, eps=norm_eps)
        self.o_proj = nn.Linear(self.value_dim, hidden_size, bias=False)
        self.reset_gate_parameters()

    @torch.no_grad()
    def reset_gate_parameters(self, generator: torch.Generator | None = None) -> None:
        """Mamba-2/GDN initialisation: A ~ U(0, 16), dt log-uniform in [1e-3, 0.1], dt_bias = softplus^-1(dt)."""
        A = torch.empty(self.num_heads).uniform_(0, 16, generator=generator).clamp_min(1e-4)
        self.A_log.copy_(A.log())
        dt = torch.exp(torch.rand(self.num_heads, generator=generator) * (math.log(0.1) - math.log(1e-3))
                       + math.log(1e-3)).clamp_min(1e-4)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log._no_weight_decay = True  # type: ignore[attr-defined]
        self.dt_bias._no_weight_decay = True  # type: ignore[attr-defined]

    # -- pieces --------------------------------------------------------------------------------------
    def project(self, x: torch.Tensor) -> Projections:
        """All input projections as one matmul. x: ``[B, T, D]``."""
        w = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight, self.g_proj.weight,
                       self.a_proj.weight, self.b_proj.weight])
        y = F.linear(x, w)
        qkv, gate, a, b = y.split([2 * self.key_dim + self.value_dim, self.value_dim,
                                   self.num_heads, self.num_heads], dim=-1)
        return Projections(qkv, a, b, gate)

    def kernel_inputs(self, qkv: torch.Tensor, a: torch.Tensor, b: torch.Tensor):
        """Causal part before the recurrence, on sequences whose valid tokens come first.

        qkv: ``[B, T, 2HK + HV]``; a, b: ``[B, T, H]``.
        Returns q, k ``[B, T, H, K]``, v ``[B, T, H, V]``, g, beta ``[B, T, H]`` (g in fp32).
        """
        B, T, _ = qkv.shape
        w = torch.cat([self.q_conv1d.weight, self.k_conv1d.weight, self.v_conv1d.weight])
        qkv = causal_conv1d(qkv, w, None, "silu")
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.value_dim], dim=-1)
        q = l2norm(q.view(B, T, self.num_heads, self.head_k_dim))
        k = l2norm(k.view(B, T, self.num_heads, self.head_k_dim))
        v = v.view(B, T, self.num_heads, self.head_v_dim)
        beta = b.sigmoid()
        g = -self.A_log.float().exp() * F.softplus(a.float() + self.dt_bias.float())
        return q, k, v, g, beta

    def recurrence(self, q, k, v, g, beta) -> torch.Tensor:
        o, _ = chunk_gated_delta_rule(q, k, v, g, beta, chunk_size=self.chunk_size, backend=self.kernel_backend)
        return o  # [B, T, H, V]

    def normed_output(self, o: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """o: ``[B, T, H, V]``, gate: ``[B, T, H*V]`` -> ``[B, T, H*V]`` (before o_proj)."""
        B, T = o.shape[:2]
        return self.o_norm(o, gate.view(B, T, self.num_heads, self.head_v_dim)).reshape(B, T, self.value_dim)

    # -- unidirectional forward -----------------------------------------------------------------------
    def forward(self, x: torch.Tensor, layout: SequenceLayout | None = None) -> torch.Tensor:
        """Causal (left-to-right) mixing. x: ``[B, T, D]``; layout: padding gathers (None = no padding)."""
        layout = layout or SequenceLayout(None, x.shape[1])
        p = self.project(x)
        q, k, v, g, beta = self.kernel_inputs(*(layout.to_forward(t) for t in (p.qkv, p.a, p.b)))
        o = layout.from_forward(self.recurrence(q, k, v, g, beta))
        return self.o_proj(self.normed_output(o, p.gate))
