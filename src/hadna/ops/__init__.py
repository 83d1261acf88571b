"""Token-mixing kernels (pure PyTorch on CPU, flash-linear-attention on CUDA when available)."""

from .gated_delta_rule import (
    chunk_gated_delta_rule,
    chunk_gated_delta_rule_torch,
    fla_available,
    naive_recurrent_gated_delta_rule,
)

__all__ = [
    "chunk_gated_delta_rule",
    "chunk_gated_delta_rule_torch",
    "naive_recurrent_gated_delta_rule",
    "fla_available",
]
