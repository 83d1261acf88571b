"""Bidirectional Gated DeltaNet: one mixer over the sequence, one over its reversal, combined.

Each sequence's *valid* part is reversed (padding stays padding), and both directions see their valid
tokens first, so padding never leaks into a valid position in either direction.

With ``tie_directions=True`` (default) both directions share every weight. All projections are
pointwise in time, so they are computed once and shared; only the short convolutions and the
recurrence run per direction. With ``combine="add"`` the output norm's weight, the gate and the output
projection are shared too, exactly:
``o_proj(w * n(o_f) * silu(gate)) + o_proj(w * n(o_b) * silu(gate)) = o_proj(w * (n(o_f) + n(o_b)) * silu(gate))``.
Untied directions have their own weights.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .gated_deltanet import GatedDeltaNet, rms_normalize
from .padding import SequenceLayout


class BidirectionalGatedDeltaNet(nn.Module):
    """x: ``[B, T, D]`` -> ``[B, T, D]``; ``combine`` is "add" or "concat" (concat + linear projection)."""

    def __init__(self, hidden_size: int, tie_directions: bool = True, combine: str = "add", **gdn_kwargs):
        super().__init__()
        if combine not in ("add", "concat"):
            raise ValueError(f"combine must be 'add' or 'concat', got {combine!r}")
        self.tie_directions = tie_directions
        self.combine = combine
        self.fwd = GatedDeltaNet(hidden_size, **gdn_kwargs)
        self.bwd = None if tie_directions else GatedDeltaNet(hidden_size, **gdn_kwargs)
        self.combine_proj = nn.Linear(2 * hidden_size, hidden_size, bias=False) if combine == "concat" else None

    def forward(self, x: torch.Tensor, layout: SequenceLayout | None = None) -> torch.Tensor:
        layout = layout or SequenceLayout(None, x.shape[1])
        fwd, bwd = self.fwd, (self.bwd if self.bwd is not None else self.fwd)
        p_f = fwd.project(x)
        p_b = p_f if bwd is fwd else bwd.project(x)
        o_f = fwd.mix(p_f, layout, "fwd")                                   # [B, H, T, V]
        o_b = bwd.mix(p_b, layout, "bwd")
        if self.combine == "add" and bwd is fwd:
            eps = fwd.o_norm.eps
            return fwd.output(rms_normalize(o_f, eps) + rms_normalize(o_b, eps), p_f.gate, normalized=True)
        y_f, y_b = fwd.output(o_f, p_f.gate), bwd.output(o_b, p_b.gate)
        if self.combine == "add":
            return y_f + y_b
        return self.combine_proj(torch.cat([y_f, y_b], dim=-1))
