"""Bidirectional multi-head self-attention with rotary positions, through PyTorch SDPA.

``torch.nn.functional.scaled_dot_product_attention`` picks FlashAttention / memory-efficient kernels on
GPU and a fused kernel on CPU. Padding is excluded with a key mask; rotary positions count from each
sequence's first valid token, so left padding does not shift positions.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .padding import SequenceLayout


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoFormer), rotating pairs (i, i + d/2) of each head's channels."""

    def __init__(self, head_dim: int, theta: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
        self.head_dim = head_dim
        self.theta = theta
        self.register_buffer("inv_freq", self.compute_inv_freq(), persistent=False)

    def compute_inv_freq(self) -> torch.Tensor:
        return 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim))

    def forward(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """position_ids: ``[B, T]`` -> cos, sin: ``[B, 1, T, head_dim]`` (fp32)."""
        freqs = position_ids.float()[..., None] * self.inv_freq.to(position_ids.device)   # [B, T, hd/2]
        emb = torch.cat([freqs, freqs], dim=-1)[:, None]                                   # [B, 1, T, hd]
        return emb.cos(), emb.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: ``[B, H, T, hd]``."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


class SelfAttention(nn.Module):
    """x: ``[B, T, D]`` -> ``[B, T, D]``; every token attends to every valid token."""

    def __init__(self, hidden_size: int, num_heads: int, rope_theta: float = 10000.0, dropout: float = 0.0):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.dropout = dropout
        self.qkv_proj = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.o_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.rotary = RotaryEmbedding(self.head_dim, rope_theta)

    def forward(self, x: torch.Tensor, layout: SequenceLayout | None = None) -> torch.Tensor:
        B, T, D = x.shape
        layout = layout or SequenceLayout(None, T)
        q, k, v = self.qkv_proj(x).view(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # [B,H,T,hd]
        cos, sin = self.rotary(layout.position_ids(B, x.device))
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        attn_mask = None if layout.mask is None else layout.mask[:, None, None, :]                 # [B,1,1,T]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.o_proj(o.transpose(1, 2).reshape(B, T, D))
