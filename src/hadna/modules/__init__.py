"""Layers of the HAD student: norms, short convolution, Gated DeltaNet (uni- and bidirectional),
rotary self-attention and the gated MLP."""

from .attention import RotaryEmbedding, SelfAttention
from .bidirectional import BidirectionalGatedDeltaNet
from .conv import ShortConvolution
from .gated_deltanet import GatedDeltaNet, gate_init_values
from .mlp import GatedMLP
from .norm import GatedRMSNorm, RMSNorm
from .padding import SequenceLayout

__all__ = [
    "BidirectionalGatedDeltaNet",
    "GatedDeltaNet",
    "gate_init_values",
    "GatedMLP",
    "GatedRMSNorm",
    "RMSNorm",
    "RotaryEmbedding",
    "SelfAttention",
    "SequenceLayout",
    "ShortConvolution",
]
