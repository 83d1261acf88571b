"""The model under evaluation: one interface over hadna checkpoints, random-init presets and HF models.

Model specs (``--model``):

``PATH``
    A hadna checkpoint directory (``config.json`` with ``model_type: hadna``). Any hadna save loads:
    a backbone-only pre-training output (``HadModel``), a masked-LM or distillation student
    (``HadForMaskedLM``: its ``lm_head`` is dropped) or a classifier. The backbone weights must all
    be present (a checkpoint that would leave encoder weights at random init is a
    :class:`~hadna.errors.CheckpointError`, never a silent random model). A directory whose
    ``config.json`` has another ``model_type`` is treated as ``hf:PATH``.
``pretrained:NAME``
    A student shipped inside hadna (:mod:`hadna.models.pretrained`), loaded like ``PATH``.
``preset:NAME``
    A randomly initialised hadna preset (``preset:had-1m``): the from-scratch baseline with the
    same architecture. The init seed is the run seed when fine-tuning, and a fixed seed (0) when
    probing (so that one fixed random network is probed; see :mod:`hadna.eval.protocol`).
``kmer`` / ``kmer:K`` / ``kmer:A-B``
    The k-mer baseline (:mod:`hadna.eval.kmer`): k-mer frequencies (k = 1..6 by default) as the
    "features", probed by the same logistic regression as every model's pooled features. Probe mode
    only (nothing to fine-tune).
``hf:NAME_OR_PATH``
    Any Hugging Face model with a tokenizer: ``AutoModelForSequenceClassification`` +
    ``AutoTokenizer`` (e.g. an NT-style ``EsmForMaskedLM`` checkpoint: the 6-mer tokenisation is its
    tokenizer's job). Never downloads unless ``allow_download``; remote code runs only with
    ``trust_remote_code``. An NTv2 checkpoint whose ``auto_map`` points at NT's own ESM code (which
    cannot run under transformers 5) is loaded without remote code through hadna's native port
    (:mod:`hadna.teachers.ntv2`) with a mean-pooled linear head.

The classification head is always fresh: a head stored in a checkpoint is re-initialised (seeded),
so every fine-tune or probe starts from the encoder only, whatever was saved.

:class:`EvalModel` gives what the protocol needs: tokenise + forward -> logits ``[B, K]``, frozen
pooled features ``[B, D]``, parameter counts, a display name, and ``module`` (the ``nn.Module``
holding every trainable weight, for the optimiser and for best-weight snapshots).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..utils.batching import iter_batches_by_length
from ..utils.device import resolve_device
from ..utils.logging import get_logger, quiet_transformers
from ..utils.weights import load_errors, note_pickled_weights, unloaded_weights, weights_error
from .hf_models import HFEvalModel, PooledClassifier, load_hf
from .kmer import describe_ks, kmer_frequencies, num_features, parse_ks
from .model_base import EvalModel, _init_linear_, _pool
from .model_spec import POOLINGS, ModelKind, ModelSpec, parse_model_spec

log = get_logger("eval.models")

__all__ = ["POOLINGS", "EvalModel", "HFEvalModel", "HadEvalModel", "KmerEvalModel", "ModelKind", "ModelSpec",
           "PooledClassifier", "iter_batches_by_length", "load_eval_model", "load_had", "load_hf", "parse_model_spec"]


# ------------------------------------------------------------------------------------------------
# hadna models
# ------------------------------------------------------------------------------------------------

class HadEvalModel(EvalModel):
    """A :class:`~hadna.models.HadForSequenceClassification` + :class:`~hadna.tokenization.HadTokenizer`."""

    def __init__(self, spec: ModelSpec, module: nn.Module, device: torch.device, notes: list[str]):
        from ..tokenization import HadTokenizer

        self.spec, self.module, self.device, self.notes = spec, module.to(device), device, notes
        self.num_labels = module.config.num_labels
        self.hidden_size = module.config.hidden_size
        self.tokenizer = HadTokenizer()

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.module.classifier.parameters())

    def linear_head(self) -> nn.Linear:
        return self.module.classifier

    def head_dropout_module(self) -> nn.Dropout:
        return self.module.dropout

    def set_head_dropout(self, p: float) -> None:
        super().set_head_dropout(p)
        self.module.config.classifier_dropout = float(p)  # a saved fine-tuned model says what it trained with

    def _encode(self, seqs: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer.batch_encode_ids(seqs)
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def _logits(self, seqs: list[str], rc_average: bool) -> torch.Tensor:
        ids, mask = self._encode(seqs)
        # The model reverse-complements token ids itself (same result as re-tokenising RC strings).
        return self.module(input_ids=ids, attention_mask=mask, rc_averaging=rc_average).logits

    def _features(self, seqs: list[str]) -> torch.Tensor:
        ids, mask = self._encode(seqs)
        hidden = self.module.had(ids, attention_mask=mask).last_hidden_state
        return _pool(hidden, mask, self.spec.pooling)


def _check_had_loading(path: str, info: dict[str, Any]) -> bool:
    """Raise if encoder weights were missing; return whether a stored head was loaded."""
    unloaded = unloaded_weights(info)
    lacking = [k for k in unloaded if not k.startswith("classifier.")]
    if lacking:
        raise CheckpointError(f"{path}: the checkpoint lacks encoder weights ({len(lacking)} missing or mis-shaped, "
                              f"e.g. {', '.join(lacking[:6])}); refusing to evaluate a partly random model")
    unexpected = info.get("unexpected_keys", [])
    if unexpected:
        log.info("%s: ignoring %d stored weights that a classifier does not use (e.g. %s)", path,
                 len(unexpected), ", ".join(sorted(unexpected)[:3]))
    return len(lacking) == len(unloaded)  # no classifier weight among the unloaded: the stored head was loaded


def load_had(spec: ModelSpec, num_labels: int, seed: int, random_init: bool, device: torch.device) -> HadEvalModel:
    from ..models import HadConfig, HadForSequenceClassification
    from ..utils.seed import seed_everything

    overrides = dict(num_labels=num_labels, pooling=spec.pooling)
    notes: list[str] = []
    seed_everything(seed)  # initial weights of whatever is initialised below depend on the seed only
    if spec.kind == "preset":
        module = HadForSequenceClassification(HadConfig.preset(spec.target, **overrides))
        notes.append(f"random init (preset {spec.target}, init seed {seed})")
    elif random_init:
        try:
            config = HadConfig.from_pretrained(spec.target, trust_remote_code=False, **overrides)
        except (OSError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{spec.target}: cannot read the hadna config: {exc}") from None
        module = HadForSequenceClassification(config)
        notes.append(f"architecture of {spec.target}, random init (init seed {seed}); its weights are not used")
    else:
        note_pickled_weights(spec.target, "model")
        try:
            with quiet_transformers():
                module, info = HadForSequenceClassification.from_pretrained(
                    spec.target, ignore_mismatched_sizes=True, output_loading_info=True, trust_remote_code=False,
                    **overrides)
        except load_errors() as exc:
            raise weights_error(exc, spec.target, "hadna checkpoint") from None
        if _check_had_loading(spec.target, info):
            gen = torch.Generator().manual_seed(seed)
            _init_linear_(module.classifier, module.config.initializer_range, gen)
            notes.append("the checkpoint's classification head was discarded (fresh head)")
        notes.append(f"encoder from {spec.target}; head init seed {seed}")
    return HadEvalModel(spec, module, device, notes)


# ------------------------------------------------------------------------------------------------
# The k-mer baseline
# ------------------------------------------------------------------------------------------------

class KmerEvalModel(EvalModel):
    """k-mer frequencies as features (:mod:`hadna.eval.kmer`); no weights, probe only.

    ``features(seqs)`` -> ``[B, sum(4**k)]``; the spec's pooling does not apply (counts cover the whole
    sequence). :meth:`logits` raises: the baseline's classifier is the probe's logistic regression.
    """

    def __init__(self, spec: ModelSpec, num_labels: int, device: torch.device):
        self.spec, self.num_labels, self.device = spec, num_labels, device
        self.ks = parse_ks(spec.target)
        self.module = nn.Module()  # nothing to train; kept so that train()/eval()/describe() work
        self.hidden_size = num_features(self.ks)
        self.notes = [f"k-mer baseline: frequencies of every k-mer for k in {describe_ks(self.ks)} "
                      f"({self.hidden_size:,} features; k-mers with N not counted), forward strand"]

    @property
    def batch_nt_cap(self) -> int | None:
        return None  # counting k-mers keeps no activations: batch size is only Python overhead here

    def head_parameters(self) -> list[nn.Parameter]:
        return []

    def _logits(self, seqs: list[str], rc_average: bool) -> torch.Tensor:
        raise ConfigError("the k-mer baseline has no encoder to fine-tune; use --mode probe (logistic regression "
                          "on k-mer frequencies)")

    def _features(self, seqs: list[str]) -> torch.Tensor:
        return torch.from_numpy(kmer_frequencies(seqs, self.ks))


# ------------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------------

def load_eval_model(spec: ModelSpec, num_labels: int, *, seed: int = 0, random_init: bool = False,
                    device: str | torch.device | None = None) -> EvalModel:
    """Build the model under evaluation with a fresh ``num_labels``-way head.

    ``seed`` seeds every freshly initialised weight (the head; the whole model for presets and
    ``random_init``). ``random_init``: same architecture, no stored weights (the scratch baseline).
    """
    if num_labels < 2:
        raise ConfigError(f"a classifier needs num_labels >= 2, got {num_labels}")
    dev = resolve_device(device)
    if spec.kind in ("hadna", "preset"):
        return load_had(spec, num_labels, seed, random_init, dev)
    if spec.kind == "kmer":
        return KmerEvalModel(spec, num_labels, dev)
    return load_hf(spec, num_labels, seed, random_init, dev)


