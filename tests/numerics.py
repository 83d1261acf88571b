"""Numerical helpers shared by the tests (a plain module: ``from conftest import`` is ambiguous once
another test folder has its own conftest.py)."""

from __future__ import annotations

import torch


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| (0 when both are zero)."""
    a, b = a.detach().double(), b.detach().double()
    denom = b.norm()
    if denom == 0:
        return float((a - b).norm())
    return float((a - b).norm() / denom)
