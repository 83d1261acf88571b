"""What every model under evaluation provides (:class:`EvalModel`) and the helpers the kinds share."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..utils.batching import batch_nt_cap
from ..utils.weights import weights_digest
from .model_spec import ModelSpec


# ------------------------------------------------------------------------------------------------
# The interface
# ------------------------------------------------------------------------------------------------

class EvalModel:
    """A sequence classifier under evaluation (see the module docstring).

    ``module``: the ``nn.Module`` holding all weights (encoder + head). ``hidden_size``: width D of
    :meth:`features`. Subclasses implement :meth:`_encode`, :meth:`_logits` and :meth:`_features`.
    """

    spec: ModelSpec
    module: nn.Module
    num_labels: int
    hidden_size: int
    device: torch.device
    notes: list[str]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def batch_nt_cap(self) -> int | None:
        """The most padded nucleotides per inference batch or fine-tuning micro-batch
        (:func:`hadna.utils.batching.batch_nt_cap`)."""
        return batch_nt_cap(self.device.type)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """All weights (encoder + head)."""
        return sum(p.numel() for p in self.module.parameters() if p.requires_grad or not trainable_only)

    def encoder_parameters(self) -> int:
        """Weights of the encoder only (what "params" in tables means)."""
        head = {id(p) for p in self.head_parameters()}
        return sum(p.numel() for p in self.module.parameters() if id(p) not in head)

    def head_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def linear_head(self) -> nn.Linear:
        """The final ``Linear(D, K)`` on the pooled features (for a head initialised from a probe)."""
        raise ConfigError(f"{self.name}: its classification head is not one linear layer on pooled features; "
                          f"head_init=probe needs one")

    def set_linear_head(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Copy ``weight [K, D]`` and ``bias [K]`` into :meth:`linear_head`."""
        head = self.linear_head()
        if tuple(weight.shape) != tuple(head.weight.shape) or tuple(bias.shape) != (head.weight.shape[0],):
            raise ConfigError(f"{self.name}: head of shape {tuple(head.weight.shape)} cannot take weights of shape "
                              f"{tuple(weight.shape)} / {tuple(bias.shape)}")
        with torch.no_grad():
            head.weight.copy_(weight.to(head.weight))
            head.bias.copy_(bias.to(head.bias))

    def head_dropout_module(self) -> nn.Dropout:
        """The dropout on the pooled features that :meth:`linear_head` reads."""
        raise ConfigError(f"{self.name}: hadna cannot set the dropout of this model's classification head")

    def set_head_dropout(self, p: float) -> None:
        """Dropout probability ``p`` on the head's input from now on (training mode only, as any dropout)."""
        if not 0 <= p < 1:
            raise ConfigError(f"head dropout must be in [0, 1), got {p}")
        self.head_dropout_module().p = float(p)

    def train(self, mode: bool = True) -> "EvalModel":
        self.module.train(mode)
        return self

    def eval(self) -> "EvalModel":
        return self.train(False)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """A detached CPU copy of every weight (for keeping the best epoch in memory)."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)

    def logits(self, seqs: Sequence[str], rc_average: bool = False) -> torch.Tensor:
        """``[B, K]`` logits of B DNA strings; ``rc_average`` averages with the reverse complement's."""
        return self._logits(list(seqs), rc_average)

    def features(self, seqs: Sequence[str]) -> torch.Tensor:
        """``[B, D]`` pooled final hidden states (``spec.pooling`` over the sequence's own tokens)."""
        return self._features(list(seqs))

    def _logits(self, seqs: list[str], rc_average: bool) -> torch.Tensor:
        raise NotImplementedError

    def _features(self, seqs: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def encoder_digest(self) -> str:
        """sha256 of the encoder's parameters (the head and buffers left out, a tied weight counted once): which
        weights a run started from, whatever path or name they were loaded by
        (:func:`~hadna.utils.weights.weights_digest`)."""
        head = {id(p) for p in self.head_parameters()}
        return weights_digest({n: p for n, p in self.module.named_parameters() if id(p) not in head})

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary for run records."""
        return {**self.spec.to_dict(), "class": type(self.module).__name__,
                "encoder_parameters": self.encoder_parameters(), "parameters": self.num_parameters(),
                "hidden_size": self.hidden_size, "encoder_sha256": self.encoder_digest(), "notes": list(self.notes)}


def _init_linear_(module: nn.Module, std: float, generator: torch.Generator) -> None:
    """Fresh weights for a head: Linear ~ N(0, std), zero bias; norms reset to identity."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.normal_(0.0, std, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            with torch.no_grad():
                m.weight.fill_(1.0)
                m.bias.zero_()


def _pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """hidden ``[B, T, D]``, mask ``[B, T]`` (1 = pool this token) -> ``[B, D]``."""
    from ..models import pool_hidden_states

    if pooling == "first":  # the first pooled token (CLS for HF models whose mask keeps it)
        first = mask.to(torch.int8).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]
    return pool_hidden_states(hidden, mask, pooling)
