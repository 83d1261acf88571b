"""AdamW parameter groups and the warm-up + cosine learning-rate schedule.

The schedule is a pure function of the step (:func:`lr_at`), so its whole state is the step number:
it is checkpointed as a few JSON scalars and resumes exactly.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..utils.schedule import warmup_decay
from .config import OptimConfig


def no_weight_decay(name: str, param: nn.Parameter) -> bool:
    """Biases, norm weights (any 0/1-D parameter) and parameters flagged ``_no_weight_decay`` are not decayed."""
    return bool(getattr(param, "_no_weight_decay", False)) or param.ndim < 2 or name.endswith(".bias")


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of ``model`` in two groups (decayed / not decayed)."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (plain if no_weight_decay(name, p) else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def lr_at(step: int, base_lr: float, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Learning rate used by optimizer step ``step`` (0-based).

    Linear warm-up ``base * (step + 1) / warmup`` for ``step < warmup``, then cosine from ``base`` down to
    ``base * min_lr_ratio`` at ``step = max_steps - 1`` (constant after that).
    """
    return warmup_decay(step, warmup_steps=warmup_steps, decay_steps=max_steps - 1 - warmup_steps,
                        min_ratio=min_lr_ratio, peak=base_lr)


class WarmupCosineSchedule:
    """Sets each param group's ``lr`` to :func:`lr_at` before every optimizer step.

    Groups keep their own base lr (``initial_lr``), so a recipe may give a group a different lr.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int, max_steps: int, min_lr_ratio: float):
        self.optimizer = optimizer
        self.warmup_steps, self.max_steps, self.min_lr_ratio = warmup_steps, max_steps, min_lr_ratio
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.step_num = 0

    def apply(self, step: int) -> float:
        """Set the lr of optimizer step ``step``; returns the first group's lr."""
        self.step_num = step
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(step, group["initial_lr"], self.warmup_steps, self.max_steps, self.min_lr_ratio)
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"kind": "warmup_cosine", "step": self.step_num, "warmup_steps": self.warmup_steps,
                "max_steps": self.max_steps, "min_lr_ratio": self.min_lr_ratio}

    def load_state_dict(self, state: dict) -> None:
        # warmup/max_steps come from the (possibly edited) config: extending max_steps on resume is allowed.
        self.step_num = int(state["step"])
