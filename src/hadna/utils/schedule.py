"""The one learning-rate schedule: linear warm-up, then cosine or linear decay (or a constant rate).

Pre-training (:mod:`hadna.train.schedule`) and fine-tuning (:mod:`hadna.eval.finetune`) both use it; a pure
function of the step, so resuming needs nothing but the step number.
"""

from __future__ import annotations

import math
from typing import Literal

DecayShape = Literal["cosine", "linear", "constant"]


def warmup_decay(step: int, *, warmup_steps: int, decay_steps: int, shape: DecayShape = "cosine",
                 min_ratio: float = 0.0, peak: float = 1.0) -> float:
    """Learning rate of optimizer step ``step`` (0-based).

    ``peak * (step + 1) / warmup_steps`` while ``step < warmup_steps``; then, over the next ``decay_steps``
    steps, from ``peak`` down to ``peak * min_ratio`` (cosine or linear; ``constant`` stays at ``peak``),
    constant after that.
    """
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if shape == "constant":
        return peak
    progress = min((step - warmup_steps) / max(decay_steps, 1), 1.0)
    fall = 1.0 - progress if shape == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return peak * (min_ratio + (1.0 - min_ratio) * fall)
