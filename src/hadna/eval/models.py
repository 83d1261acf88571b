"""The model under evaluation: one interface over hadna checkpoints, random-init presets and HF models.

Model specs (``--model``):

``PATH``
    A hadna checkpoint directory (``config.json`` with ``model_type: hadna``). Any hadna save loads:
    a backbone-only pre-training output (``HadModel``), a masked-LM or distillation student
    (``HadForMaskedLM``: its ``lm_head`` is dropped) or a classifier. The backbone weights must all
    be present (a checkpoint that would leave encoder weights at random init is a
    :class:`~hadna.errors.CheckpointError`, never a silent random model). A directory whose
    ``config.json`` has another ``model_type`` is treated as ``hf:PATH``.
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

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, MissingFileError
from ..utils.logging import get_logger
from ..utils.weights import load_errors, note_pickled_weights, weights_error
from .kmer import describe_ks, kmer_frequencies, num_features, parse_ks

log = get_logger("eval.models")

ModelKind = Literal["hadna", "preset", "hf", "kmer"]
POOLINGS = ("mean", "max", "first")


# ------------------------------------------------------------------------------------------------
# Specs
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSpec:
    """What to load: ``kind`` + ``target`` (path, preset name or HF id) and how to name it in tables."""

    kind: ModelKind
    target: str
    name: str
    pooling: str = "mean"
    trust_remote_code: bool = False
    allow_download: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "name": self.name, "pooling": self.pooling,
                "trust_remote_code": self.trust_remote_code}


def _read_config_json(directory: Path) -> dict[str, Any]:
    cfg = directory / "config.json"
    try:
        data = json.loads(cfg.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{cfg}: cannot read the model config ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{cfg}: expected a JSON object")
    return data


def _listing(directory: Path, limit: int = 10) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir())
    return ", ".join(names[:limit]) + (f", ... ({len(names)} entries)" if len(names) > limit else "") \
        if names else "(empty directory)"


def parse_model_spec(text: str, *, name: str | None = None, pooling: str = "mean",
                     trust_remote_code: bool = False, allow_download: bool = False) -> ModelSpec:
    """Parse ``PATH``, ``preset:NAME`` or ``hf:NAME_OR_PATH`` (checks that paths/presets exist).

    Display names: the preset name + " (random init)", the checkpoint directory's last two path
    parts (``runs/x/final`` -> ``x/final``), or the HF id; ``NAME=SPEC`` sets a name explicitly.
    """
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
    text = text.strip()
    if "=" in text and not text.split("=", 1)[0].startswith(("preset:", "hf:", "kmer:")) and name is None:
        name, text = (part.strip() for part in text.split("=", 1))
    common = dict(pooling=pooling, trust_remote_code=trust_remote_code, allow_download=allow_download)
    if not text:
        raise ConfigError("empty model spec; use PATH, preset:NAME or hf:NAME")
    if text.startswith("preset:"):
        from ..models import PRESETS

        preset = text.removeprefix("preset:")
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r} in model spec {text!r}; available: {', '.join(PRESETS)}")
        return ModelSpec("preset", preset, name or f"{preset} (random init)", **common)
    if text == "kmer" or text.startswith("kmer:"):
        ks = parse_ks(text.removeprefix("kmer").removeprefix(":"))
        return ModelSpec("kmer", describe_ks(ks), name or f"k-mer {describe_ks(ks)}", **common)
    if text.startswith("hf:"):
        target = text.removeprefix("hf:")
        if not target:
            raise ConfigError("model spec 'hf:' needs a model name or path (hf:NAME_OR_PATH)")
        path = Path(target).expanduser()
        looks_local = path.exists() or target.startswith((".", "/", "~")) or target.count("/") > 1
        if looks_local and not (path / "config.json").is_file():
            raise MissingFileError(f"model {text!r}: {path} is not a model directory (no config.json"
                                   + (f"; found: {_listing(path)})" if path.is_dir() else ")"))
        return ModelSpec("hf", str(path) if looks_local else target, name or target.rstrip("/"), **common)
    path = Path(text).expanduser()
    if not path.exists():
        raise MissingFileError(f"model checkpoint not found: {path} (expected a hadna checkpoint directory, "
                               f"preset:NAME or hf:NAME)")
    if not path.is_dir():
        raise CheckpointError(f"model {path} is a file; pass the checkpoint directory that holds config.json "
                              f"and the weights")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} is not a model checkpoint: no config.json (found: {_listing(path)})")
    display = name or "/".join(path.resolve().parts[-2:])
    if _read_config_json(path).get("model_type") != "hadna":
        log.info("%s: config.json is not a hadna model; loading it as a Hugging Face model", path)
        return ModelSpec("hf", str(path), display, **common)
    return ModelSpec("hadna", str(path), display, **common)


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

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary for run records."""
        return {**self.spec.to_dict(), "class": type(self.module).__name__,
                "encoder_parameters": self.encoder_parameters(), "parameters": self.num_parameters(),
                "hidden_size": self.hidden_size, "notes": list(self.notes)}


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


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and weight-loading bars: we check and log loading ourselves."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """hidden ``[B, T, D]``, mask ``[B, T]`` (1 = pool this token) -> ``[B, D]``."""
    from ..models import pool_hidden_states

    if pooling == "first":  # the first pooled token (CLS for HF models whose mask keeps it)
        first = mask.to(torch.int8).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]
    return pool_hidden_states(hidden, mask, pooling)


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
    missing = [k for k in info.get("missing_keys", []) if not k.startswith("classifier.")]
    mismatched = [k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", [])]
    bad_mismatch = [k for k in mismatched if not str(k).startswith("classifier.")]
    if missing or bad_mismatch:
        shown = ", ".join((missing + bad_mismatch)[:6])
        raise CheckpointError(f"{path}: the checkpoint lacks encoder weights ({len(missing) + len(bad_mismatch)} "
                              f"missing or mis-shaped, e.g. {shown}); refusing to evaluate a partly random model")
    unexpected = info.get("unexpected_keys", [])
    if unexpected:
        log.info("%s: ignoring %d stored weights that a classifier does not use (e.g. %s)", path,
                 len(unexpected), ", ".join(sorted(unexpected)[:3]))
    head_missing = any(k.startswith("classifier.") for k in info.get("missing_keys", []))
    return not head_missing and not any(str(k).startswith("classifier.") for k in mismatched)


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
            with _quiet_transformers():
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

    def head_parameters(self) -> list[nn.Parameter]:
        return []

    def _logits(self, seqs: list[str], rc_average: bool) -> torch.Tensor:
        raise ConfigError("the k-mer baseline has no encoder to fine-tune; use --mode probe (logistic regression "
                          "on k-mer frequencies)")

    def _features(self, seqs: list[str]) -> torch.Tensor:
        return torch.from_numpy(kmer_frequencies(seqs, self.ks))


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

    config = _read_config_json(path)
    if "auto_map" in config and not ntv2_support_problems(config):
        return config
    return None


def load_hf(spec: ModelSpec, num_labels: int, seed: int, random_init: bool, device: torch.device) -> HFEvalModel:
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from ..utils.seed import seed_everything

    kwargs = _hf_kwargs(spec)
    try:
        with _quiet_transformers():
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
        with _quiet_transformers():
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


# ------------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------------

def resolve_device(device: str | None) -> torch.device:
    """``None``/"auto": CUDA when available, else CPU."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r} (use cpu, cuda, cuda:N or auto)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return dev


def load_eval_model(spec: ModelSpec, num_labels: int, *, seed: int = 0, random_init: bool = False,
                    device: str | torch.device | None = None) -> EvalModel:
    """Build the model under evaluation with a fresh ``num_labels``-way head.

    ``seed`` seeds every freshly initialised weight (the head; the whole model for presets and
    ``random_init``). ``random_init``: same architecture, no stored weights (the scratch baseline).
    """
    if num_labels < 2:
        raise ConfigError(f"a classifier needs num_labels >= 2, got {num_labels}")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    if spec.kind in ("hadna", "preset"):
        return load_had(spec, num_labels, seed, random_init, dev)
    if spec.kind == "kmer":
        return KmerEvalModel(spec, num_labels, dev)
    return load_hf(spec, num_labels, seed, random_init, dev)


#: a sequence this many times longer than the median is an outlier (warned about, batched on its own).
OUTLIER_FACTOR = 10
_WARNED_OUTLIERS: set[tuple[int, int, int, int]] = set()


def iter_batches_by_length(lengths: Sequence[int] | np.ndarray, batch_size: int,
                           max_tokens: int | None = None) -> list[np.ndarray]:
    """Index batches for inference: a stable sort by decreasing length, then at most ``batch_size``
    sequences and at most ``max_tokens`` padded nucleotides (rows x the batch's longest) per batch.

    The one batching helper of the inference paths (probe embeddings, ``hadna embed``, fine-tuning's
    validation/test predictions); the order changes no result (outputs go back to their index).
    ``max_tokens`` defaults to ``batch_size`` x the 95th-percentile length: homogeneous data gets
    full batches, while one 100 kb sequence among 200 nt ones is embedded alone instead of padding a
    whole batch to 100 kb. Outliers (over ``OUTLIER_FACTOR`` x the median length) are logged once.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return []
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    if max_tokens is None:
        max_tokens = batch_size * max(int(np.percentile(lengths, 95, method="higher")), 1)
    median = max(float(np.median(lengths)), 1.0)
    outliers = np.flatnonzero(lengths > OUTLIER_FACTOR * median)
    key = (lengths.size, int(median), int(lengths.max()), outliers.size)
    if outliers.size and key not in _WARNED_OUTLIERS:  # once per data set, not once per epoch
        _WARNED_OUTLIERS.add(key)
        longest = int(outliers[np.argmax(lengths[outliers])])
        log.warning("%d sequence(s) are over %dx the median length (%d nt), the longest %d nt (sequence %d); each "
                    "such batch is capped at %d nucleotides, so it runs with fewer sequences (use --max-length to "
                    "truncate them)", outliers.size, OUTLIER_FACTOR, int(median), int(lengths[longest]), longest + 1,
                    max_tokens)
    order = np.argsort(-lengths, kind="stable")
    batches, i = [], 0
    while i < len(order):
        size = max(1, min(batch_size, max_tokens // max(int(lengths[order[i]]), 1)))
        batches.append(order[i:i + size])
        i += size
    return batches
