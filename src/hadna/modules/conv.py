"""Causal depthwise short convolution (kernel 4 in Gated DeltaNet) with optional SiLU."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class ShortConvolution(nn.Module):
    """``y_t = act(sum_i w_i * x_{t-W+1+i})`` per channel, zero history before the first token.

    Causal: position t reads positions t-W+1 .. t only. Callers make padding invisible by moving
    each sequence's valid tokens to the front (see :class:`~hadna.modules.SequenceLayout`), so a
    valid token never reads a pad.

    weight: ``[D, W]`` (flash-linear-attention stores ``[D, 1, W]`` as an nn.Conv1d; same numbers).
    """

    def __init__(self, hidden_size: int, kernel_size: int = 4, bias: bool = False, activation: str | None = "silu"):
        super().__init__()
        if activation not in (None, "silu"):
            raise ValueError(f"activation must be None or 'silu', got {activation!r}")
        self.hidden_size = hidden_size
        self.kernel_size = kernel_size
        self.activation = activation
        self.weight = nn.Parameter(torch.empty(hidden_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyTorch's Conv1d default (fan_in = kernel_size for a depthwise conv): keeps the signal's
        # scale at init, unlike a 0.02-std normal which would shrink q/k/v by ~25x.
        bound = 1.0 / math.sqrt(self.kernel_size)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``[B, T, D]`` -> ``[B, T, D]``."""
        return causal_conv1d(x, self.weight, self.bias, self.activation)


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  activation: str | None = "silu") -> torch.Tensor:
    """Depthwise causal convolution along dim -2 with zero history.

    x: ``[..., T, D]``; weight: ``[..., D, W]`` broadcastable against x without its T dim (``[D, W]`` for
    ``x: [B, T, D]``; ``[H, 1, K, W]`` for head-first ``x: [B, H, T, K]``); bias: ``[D]`` or None.

    Written as W multiply-adds on time-shifted slices, accumulated in place into one fresh buffer:
    on CPU this touches memory fewer times than ``conv1d`` with its transposes and padding (the op is
    memory-bound), and it is autograd-safe (no input or saved tensor is overwritten).
    """
    W, T = weight.shape[-1], x.shape[-2]
    y = x * weight[..., W - 1]                                       # current token
    for lag in range(1, min(W, T)):
        y[..., lag:, :].addcmul_(x[..., :-lag, :], weight[..., W - 1 - lag])  # token t - lag
    if bias is not None:
        y = y + bias
    if activation == "silu":
        return F.silu(y, inplace=not torch.is_grad_enabled())
    return y
