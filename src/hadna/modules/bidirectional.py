"""Bidirectional Gated DeltaNet: one mixer over the sequence, one over its reversal, combined.

Each sequence's *valid* part is reversed (padding stays padding), and both directions see their
valid tokens first, so padding never leaks into a valid position in either direction.

With ``tie_directions=True`` (default) both directions share every weight. All projections are
pointwise in time, so they are computed once and shared; only the short convolutions and the
recurrence differ. With ``combine="add"`` the output projection is linear and shared too:
``o_proj(norm(o_f) * silu(gate)) + o_proj(norm(o_b) * silu(gate)) = o_proj((norm(o_f) + norm(o_b)) * silu(gate))``.
Untied directions have their own weights. Either way both recurrences run in one kernel call
(stacked on the batch dimension).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .gated_deltanet import GatedDeltaNet
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
        B, T, _ = x.shape
        layout = layout or SequenceLayout(None, T)
        fwd, bwd = self.fwd, (self.bwd if self.bwd is not None else self.fwd)

        p_f = fwd.project(x)
        p_b = p_f if bwd is fwd else bwd.project(x)
        if bwd is fwd:
            # Shared weights: one convolution + one recurrence call over [forward; reversed] sequences.
            stacked = [torch.cat([layout.to_forward(t_f), layout.to_backward(t_b)])
                       for t_f, t_b in zip((p_f.qkv, p_f.a, p_f.b), (p_b.qkv, p_b.a, p_b.b))]
            kin = fwd.kernel_inputs(*stacked)
        else:
            kin_f = fwd.kernel_inputs(*(layout.to_forward(t) for t in (p_f.qkv, p_f.a, p_f.b)))
            kin_b = bwd.kernel_inputs(*(layout.to_backward(t) for t in (p_b.qkv, p_b.a, p_b.b)))
            kin = [torch.cat([a, b]) for a, b in zip(kin_f, kin_b)]
        o = fwd.recurrence(*kin)                                     # [2B, T, H, V]
        o_f, o_b = layout.from_forward(o[:B]), layout.from_backward(o[B:])

        if self.combine == "add" and bwd is fwd:
            return fwd.o_proj(fwd.normed_output(o_f, p_f.gate) + fwd.normed_output(o_b, p_f.gate))
        y_f = fwd.o_proj(fwd.normed_output(o_f, p_f.gate))
        y_b = bwd.o_proj(bwd.normed_output(o_b, p_b.gate))
        if self.combine == "add":
            return y_f + y_b
        return self.combine_proj(torch.cat([y_f, y_b], dim=-1))
