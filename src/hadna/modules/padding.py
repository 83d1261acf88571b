"""Per-sequence reordering that keeps padding invisible to causal token mixers.

A causal mixer (short convolution + delta-rule recurrence) reads only earlier positions. If each
sequence's valid tokens come first, padding comes after every valid token and can never influence
them, whatever its content. :class:`SequenceLayout` precomputes, once per batch, the gathers that
move valid tokens to the front, in forward order and in reverse order (for the backward branch of a
bidirectional layer), and the inverse gathers that put results back in place. Any padding side
works, and with no padding the forward order is the identity and the reverse order a flip.
"""

from __future__ import annotations

import torch


class SequenceLayout:
    """Gathers for one batch's padding pattern.

    mask: ``[B, T]`` (1/True = valid token) or None (all valid).
    """

    def __init__(self, mask: torch.Tensor | None, seq_len: int, device: torch.device | None = None):
        self.seq_len = seq_len
        if mask is not None:
            mask = mask.to(torch.bool)
            if bool(mask.all()):
                mask = None
        self.mask = mask
        if mask is None:
            self._fwd = self._fwd_inv = self._bwd = self._bwd_inv = None
            return
        B, T = mask.shape
        pos = torch.arange(T, device=mask.device).expand(B, T)
        # Forward order: valid positions first (in order), then the pads.
        key_f = torch.where(mask, pos, pos + T)
        # Reverse order: valid positions first in reverse order, then the pads.
        key_b = torch.where(mask, (T - 1) - pos, pos + T)
        self._fwd = key_f.argsort(dim=1)
        self._bwd = key_b.argsort(dim=1)
        self._fwd_inv = self._fwd.argsort(dim=1)
        self._bwd_inv = self._bwd.argsort(dim=1)
        # Right padding (the common case) needs no forward reordering at all.
        if bool((self._fwd == pos).all()):
            self._fwd = self._fwd_inv = None

    @staticmethod
    def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """x: ``[B, T, ...]``, index: ``[B, T]`` -> x[b, index[b, t], ...]."""
        idx = index.view(*index.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
        return x.gather(1, idx)

    def to_forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self._fwd is None else self._gather(x, self._fwd)

    def from_forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self._fwd_inv is None else self._gather(x, self._fwd_inv)

    def to_backward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) if self._bwd is None else self._gather(x, self._bwd)

    def from_backward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) if self._bwd_inv is None else self._gather(x, self._bwd_inv)

    # -- head-first variants: [B, T, H, D] in -> [B, H, T, D] out, reorder and transpose in one copy --------
    def _order(self, direction: str) -> torch.Tensor | None:
        return self._fwd if direction == "fwd" else self._bwd

    def _inverse(self, direction: str) -> torch.Tensor | None:
        return self._fwd_inv if direction == "fwd" else self._bwd_inv

    def _reversed_index(self, device: torch.device) -> torch.Tensor:
        return torch.arange(self.seq_len - 1, -1, -1, device=device)

    def to_head_first(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        """x: ``[B, T, H, D]`` (any strides) -> contiguous ``[B, H, T, D]`` with valid tokens first in
        ``direction`` ("fwd" or "bwd") order. One pass over the data."""
        xt = x.transpose(1, 2)                                              # [B, H, T, D] view
        index = self._order(direction)
        if index is None:
            if direction == "fwd":
                return xt.contiguous()
            return torch.index_select(xt, 2, self._reversed_index(x.device))
        B, H, T, D = xt.shape
        return torch.gather(xt, 2, index[:, None, :, None].expand(B, H, T, D))

    def from_head_first(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        """Inverse reordering of :meth:`to_head_first`, staying head-first: ``[B, H, T, D]`` -> same."""
        index = self._inverse(direction)
        if index is None:
            return x if direction == "fwd" else torch.index_select(x, 2, self._reversed_index(x.device))
        B, H, T, D = x.shape
        return torch.gather(x, 2, index[:, None, :, None].expand(B, H, T, D))

    def position_ids(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """``[B, T]`` positions counted from each sequence's first valid token (for rotary embeddings)."""
        if self.mask is None:
            return torch.arange(self.seq_len, device=device).expand(batch_size, -1)
        return (self.mask.long().cumsum(1) - 1).clamp_min(0)
