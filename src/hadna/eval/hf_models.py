"""Hugging Face models under evaluation (``hf:NAME_OR_PATH``; NTv2 remote-code checkpoints through hadna's
native port): :class:`HFEvalModel` and :func:`load_hf`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..utils.io import read_config_json
from ..utils.logging import get_logger, quiet_transformers
from ..utils.weights import load_errors, note_pickled_weights, weights_error
from .model_base import EvalModel, _init_linear_, _pool
from .model_spec import ModelSpec

log = get_logger("eval.models")


# ------------------------------------------------------------------------------------------------
# Hugging Face models
# ------------------------------------------------------------------------------------------------

class PooledClassifier(nn.Module):
    """backbone -> pool over the sequence's own tokens -> dropout -> linear. Used for NTv2 backbones.

    ``forward(input_ids [B, T], attention_mask [B, T], pool_mask [B, T] | None) -> logits [B, K]``.
    """

    def __init__(self, backbone: nn.Module, hidden_size: int, num_labels: int, pooling: str = "mean",
                 dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                pool_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.hidden(input_ids, attention_mask)
        pooled = _pool(hidden, attention_mask if pool_mask is None else pool_mask, self.pooling)
        return self.classifier(self.dropout(pooled))


class HFEvalModel(EvalModel):
    """A Hugging Face sequence classifier (or a :class:`PooledClassifier`) with its own tokenizer."""

    def __init__(self, spec: ModelSpec, module: nn.Module, tokenizer: Any, device: torch.device,
                 hidden_size: int, num_labels: int, notes: list[str]):
        self.spec, self.module, self.tokenizer, self.device = spec, module.to(device), tokenizer, device
        self.hidden_size, self.num_labels, self.notes = hidden_size, num_labels, notes
        limit = getattr(tokenizer, "model_max_length", None)
        self.max_tokens = int(limit) if isinstance(limit, int) and 0 < limit < 1_000_000 else None
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)

    def head_parameters(self) -> list[nn.Parameter]:
        if isinstance(self.module, PooledClassifier):
            return list(self.module.classifier.parameters())
        base = self.module.base_model
        if base is self.module:
            return []
        inside = {id(p) for p in base.parameters()}
        return [p for p in self.module.parameters() if id(p) not in inside]

    def linear_head(self) -> nn.Linear:
        if isinstance(self.module, PooledClassifier):
            return self.module.classifier
        return super().linear_head()

    def head_dropout_module(self) -> nn.Dropout:
        if isinstance(self.module, PooledClassifier):
            return self.module.dropout
        return super().head_dropout_module()

    def _encode(self, seqs: list[str]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Tokenised batch for the model, and the pooling mask ``[B, T]`` (real, non-special tokens).

        Special tokens are found by id (``tokenizer.all_special_ids``), not with the tokenizer's
        ``special_tokens_mask``: ``EsmTokenizer`` counts an end token that NT tokenizers never add.
        """
        enc = self.tokenizer(seqs, padding=True, truncation=self.max_tokens is not None,
                             max_length=self.max_tokens, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        ids = enc["input_ids"]
        mask = enc.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else mask
        special = torch.isin(ids, self.special_ids.to(ids.device))
        pool_mask = mask * (~special).to(mask.dtype)
        # A sequence made only of special tokens cannot happen with non-empty DNA, but never divide by 0.
        pool_mask = torch.where(pool_mask.sum(1, keepdim=True) > 0, pool_mask, mask)
        return enc, pool_mask

    def _forward(self, seqs: list[str]) -> torch.Tensor:
        enc, pool_mask = self._encode(seqs)
        if isinstance(self.module, PooledClassifier):
            return self.module(enc["input_ids"], enc["attention_mask"], pool_mask)
        return self.module(**enc).logits

    def _logits(self, seqs: list[str], rc_average: bool) -> torch.Tensor:
        logits = self._forward(seqs)
        if rc_average:  # re-tokenise: k-mer tokens of the reverse strand are not a permutation of these
            from ..sequence import reverse_complement

            logits = 0.5 * (logits + self._forward([reverse_complement(s) for s in seqs]))
        return logits

    def _features(self, seqs: list[str]) -> torch.Tensor:
        enc, pool_mask = self._encode(seqs)
        if isinstance(self.module, PooledClassifier):
            hidden = self.module.hidden(enc["input_ids"], enc["attention_mask"])
        elif self.module.base_model is not self.module:
            hidden = self.module.base_model(**enc).last_hidden_state
        else:
            hidden = self.module(**enc, output_hidden_states=True).hidden_states[-1]
        return _pool(hidden, pool_mask, self.spec.pooling)


def _hf_kwargs(spec: ModelSpec) -> dict[str, Any]:
    """Loading options of every ``from_pretrained`` call: ``trust_remote_code`` is always explicit.

    Left unset (``None``), transformers would ask "Do you wish to run the custom code? [y/N]" on a
    terminal (and print the question to stdout without one); an explicit ``False`` refuses instead.
    """
    return {"local_files_only": not spec.allow_download, "trust_remote_code": bool(spec.trust_remote_code)}


def _hf_error(spec: ModelSpec, what: str, exc: Exception) -> CheckpointError:
    if not spec.trust_remote_code and ("trust_remote_code" in str(exc) or "custom code" in str(exc)):
        return CheckpointError(f"hf:{spec.target}: this model needs its own (remote) code to load its {what}; "
                               f"hadna runs it only with --trust-remote-code")
    hint = "" if spec.allow_download or Path(spec.target).exists() else \
        " (hadna never downloads unless asked: pass --allow-download, or a local directory)"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CheckpointError(f"hf:{spec.target}: cannot load the {what}: {first}{hint}")


def _native_ntv2_config(spec: ModelSpec) -> dict[str, Any] | None:
    """config.json of a local NTv2 remote-code checkpoint that hadna's native port can load, else None."""
    path = Path(spec.target)
    if spec.trust_remote_code or not (path / "config.json").is_file():
        return None
    from ..teachers.ntv2 import ntv2_support_problems

    config = read_config_json(path / "config.json", "model config")
    if "auto_map" in config and not ntv2_support_problems(config):
        return config
    return None


def load_hf(spec: ModelSpec, num_labels: int, seed: int, random_init: bool, device: torch.device) -> HFEvalModel:
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from ..utils.seed import seed_everything

    kwargs = _hf_kwargs(spec)
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(spec.target, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _hf_error(spec, "tokenizer", exc) from None
    if tokenizer.pad_token is None:
        raise CheckpointError(f"hf:{spec.target}: the tokenizer has no padding token; batches cannot be padded")
    notes: list[str] = []
    seed_everything(seed)
    ntv2 = _native_ntv2_config(spec)
    if ntv2 is not None:
        from ..teachers.ntv2 import build_ntv2, load_ntv2

        backbone = build_ntv2(ntv2) if random_init else load_ntv2(spec.target)
        backbone.train()
        esm = backbone.esm
        module: nn.Module = PooledClassifier(esm, esm.config.hidden_size, num_labels, spec.pooling)
        gen = torch.Generator().manual_seed(seed)
        _init_linear_(module.classifier, 0.02, gen)
        notes.append("NTv2 checkpoint loaded by hadna's native port (no remote code); "
                     f"{spec.pooling}-pooled linear head")
        return HFEvalModel(spec, module, tokenizer, device, esm.config.hidden_size, num_labels,
                           notes + _init_note(spec, seed, random_init))
    try:
        with quiet_transformers():
            if random_init:
                config = AutoConfig.from_pretrained(spec.target, num_labels=num_labels, **kwargs)
                module = AutoModelForSequenceClassification.from_config(
                    config, trust_remote_code=bool(spec.trust_remote_code))
                info: dict[str, Any] = {}
            else:
                note_pickled_weights(spec.target, "model")
                module, info = AutoModelForSequenceClassification.from_pretrained(
                    spec.target, num_labels=num_labels, ignore_mismatched_sizes=True, output_loading_info=True,
                    **kwargs)
    except load_errors() as exc:
        if isinstance(exc, (OSError, ValueError, KeyError, TypeError)) and "weights_only" not in str(exc):
            raise _hf_error(spec, "model", exc) from None
        raise weights_error(exc, f"hf:{spec.target}", "model weights") from None
    if module.config.pad_token_id is None:
        module.config.pad_token_id = tokenizer.pad_token_id
    if not random_init:
        _check_hf_loading(spec, module, info, seed)
    hidden = getattr(module.config, "hidden_size", None) or getattr(module.config, "d_model", None)
    if hidden is None:
        raise CheckpointError(f"hf:{spec.target}: cannot tell the model's hidden size from its config")
    return HFEvalModel(spec, module, tokenizer, device, int(hidden), num_labels,
                       notes + _init_note(spec, seed, random_init))


def _init_note(spec: ModelSpec, seed: int, random_init: bool) -> list[str]:
    if random_init:
        return [f"architecture of {spec.target}, random init (init seed {seed}); its weights are not used"]
    return [f"encoder from {spec.target}; head init seed {seed}"]


def _check_hf_loading(spec: ModelSpec, module: nn.Module, info: dict[str, Any], seed: int) -> None:
    """Encoder parameters must all come from the checkpoint; a stored head is re-initialised."""
    base = module.base_model
    prefix = getattr(module, "base_model_prefix", "") if base is not module else ""
    base_params = {f"{prefix}.{n}" if prefix else n for n, _ in base.named_parameters()}
    missing = [k for k in info.get("missing_keys", []) if k in base_params]
    if missing:
        raise CheckpointError(f"hf:{spec.target}: the checkpoint lacks {len(missing)} encoder weights "
                              f"(e.g. {', '.join(sorted(missing)[:5])}); refusing to evaluate a partly random model")
    head_names = [n for n, _ in module.named_parameters() if n not in base_params]
    missing_head = set(info.get("missing_keys", [])) | {k[0] if isinstance(k, tuple) else k
                                                        for k in info.get("mismatched_keys", [])}
    if head_names and not any(n in missing_head for n in head_names):
        gen = torch.Generator().manual_seed(seed)
        std = float(getattr(module.config, "initializer_range", 0.02) or 0.02)
        for child_name, child in module.named_children():
            if child is not base:
                _init_linear_(child, std, gen)
        log.info("hf:%s: the checkpoint's classification head was discarded (fresh head)", spec.target)
