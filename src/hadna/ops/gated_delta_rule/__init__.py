"""Gated delta rule: chunked op (public), pure-PyTorch kernel, naive reference and fla dispatch."""

from .chunk import chunk_gated_delta_rule_torch
from .naive import naive_recurrent_gated_delta_rule
from .op import chunk_gated_delta_rule, fla_available

__all__ = [
    "chunk_gated_delta_rule",
    "chunk_gated_delta_rule_torch",
    "naive_recurrent_gated_delta_rule",
    "fla_available",
]
