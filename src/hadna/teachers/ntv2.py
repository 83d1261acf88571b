"""A native Nucleotide Transformer v2 (NTv2) model: NTv2 checkpoints without running their remote code.

NTv2 checkpoints on the Hub (e.g. ``InstaDeepAI/nucleotide-transformer-v2-500m-multi-species``: 29
layers, hidden 1024, 16 heads, intermediate 4096, vocabulary 4107) ship their own ``modeling_esm.py``
/ ``esm_config.py`` (``auto_map`` in config.json). That code is a transformers-4.x copy of ESM and
imports helpers that transformers 5 removed, so it cannot run under our pinned transformers. This
module rebuilds the same network from transformers' core ESM, changing only the feed-forward blocks.

What NTv2 is, per block (pre-LayerNorm transformer, as core ESM):

* ``x = x + attention.output.dense(attn(attention.LayerNorm(x)))`` - q/k/v/out projections with
  biases; the query is scaled by ``head_dim**-0.5`` before rotary; rotary positions (base 10000,
  "rotate half" pairing ``i <-> i + head_dim/2``, positions ``0..N-1`` with ``<cls>`` at 0).
* ``x = x + output.dense(silu(a) * b)`` with ``[a | b] = intermediate.dense(LayerNorm(x))``: a
  gated SwiGLU feed-forward. ``intermediate.dense.weight`` is ``[2 * intermediate_size, hidden]``;
  the *first* half goes through SiLU and gates the second half. Both dense layers have biases only
  if ``add_bias_fnn`` (false for the published NTv2 checkpoints; NT's config class defaults to true).
* After the last block: ``esm.encoder.emb_layer_norm_after``. No embedding layer norm, no token
  dropout, no learned positions (NT's code still creates an unused ``position_embeddings`` table,
  so the checkpoint may contain it; it is ignored).

Parameter names are NTv2's (``esm.embeddings.word_embeddings.weight``,
``esm.encoder.layer.{i}.attention.self.query.weight``, ``...intermediate.dense.weight``,
``...output.dense.weight``, ``esm.encoder.emb_layer_norm_after.weight``, ``lm_head.*``). The rotary
``inv_freq`` buffer lives once at ``esm.rotary_embeddings.inv_freq`` (core ESM's place); the
per-layer copies older checkpoints carry are remapped by core ESM's load hook.

Weights are read from safetensors, or - only when no safetensors file exists - from
``pytorch_model.bin`` with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from transformers import EsmConfig, EsmForMaskedLM

from hadna.errors import CheckpointError, MissingFileError
from hadna.utils.io import read_config_json
from hadna.utils.logging import get_logger

log = get_logger("teacher.ntv2")

#: modules of NT's remote code; an ``auto_map`` pointing only at these marks an NTv2-style checkpoint.
NT_ESM_MODULES = ("esm_config", "modeling_esm")
#: weight files, in order of preference (safetensors first: no pickle at all).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_POSITION_TYPES = ("rotary", "absolute")
_ROPE_BASE = 10000.0  # NT's code hard-codes it (and ignores any rope_* config field)
_REQUIRED_PREFIXES = ("esm.embeddings.", "esm.encoder.")  # a missing one would give random features
_OPTIONAL_PREFIXES = ("lm_head.", "esm.contact_head.")  # present in our model, unused for features
_IGNORED_PREFIXES = ("esm.pooler.", "classifier.")  # heads of fine-tuned checkpoints we do not build
_LEGACY_ROTARY_SUFFIX = ".attention.self.rotary_embeddings.inv_freq"
_ROTARY_KEY = "esm.rotary_embeddings.inv_freq"
_REMOTE_HINT = (
    ". If this checkpoint's own model code is not NTv2's, only that code can load it: "
    "--trust-remote-code (trust_remote_code=True) runs it, if you trust its source"
)


# --------------------------------------------------------------------------------------------
# config.json -> "is this NTv2-style, and can we build it?"
# --------------------------------------------------------------------------------------------


def _auto_map_module(ref: Any) -> str | None:
    """'Org/repo--modeling_esm.EsmForMaskedLM' -> 'modeling_esm' (None if not a single class reference)."""
    if not isinstance(ref, str) or "." not in ref:
        return None
    return ref.split("--")[-1].rsplit(".", 1)[0]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def ntv2_support_problems(config: Mapping[str, Any]) -> list[str]:
    """Why hadna's native NTv2 port cannot stand in for this checkpoint's remote code ([] = it can).

    ``config`` is config.json as plain JSON. Supported: ``auto_map`` referring only to NT's
    ``esm_config``/``modeling_esm`` code, ``model_type`` "esm", rotary or absolute positions, any
    ``add_bias_fnn`` / ``emb_layer_norm_before`` / ``token_dropout``, an encoder (not a decoder, not ESMFold).
    """
    problems: list[str] = []
    auto_map = config.get("auto_map")
    if not isinstance(auto_map, Mapping) or not auto_map:
        problems.append("auto_map is not a non-empty object")
    else:
        foreign = [f"{k} -> {v!r}" for k, v in auto_map.items() if _auto_map_module(v) not in NT_ESM_MODULES]
        if foreign:
            problems.append(f"auto_map refers to code other than NT's esm_config/modeling_esm ({', '.join(foreign)})")
        elif not any(_auto_map_module(v) == "modeling_esm" for v in auto_map.values()):
            problems.append("auto_map names no modeling_esm class")
    if config.get("model_type") != "esm":
        problems.append(f"model_type is {config.get('model_type')!r}, not 'esm'")
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        if not (_is_int(config.get(key)) and config[key] > 0):
            problems.append(f"{key} is {config.get(key)!r}, not a positive integer")
    heads, hidden = config.get("num_attention_heads"), config.get("hidden_size")
    if _is_int(heads) and _is_int(hidden) and heads > 0 and hidden % heads:
        problems.append(f"hidden_size {hidden} is not divisible by num_attention_heads {heads}")
    position = config.get("position_embedding_type", "absolute")
    if position not in _POSITION_TYPES:
        problems.append(f"position_embedding_type {position!r} (supported: {', '.join(_POSITION_TYPES)})")
    if position == "absolute" and not (_is_int(config.get("max_position_embeddings")) and config["max_position_embeddings"] > 0):
        problems.append("absolute positions need a positive integer max_position_embeddings")
    for key in ("is_folding_model", "is_decoder", "add_cross_attention"):
        if config.get(key):
            problems.append(f"{key} is set (only plain encoders are supported)")
    for key in ("add_bias_fnn", "emb_layer_norm_before", "token_dropout", "tie_word_embeddings"):
        if config.get(key) is not None and not isinstance(config[key], bool):
            problems.append(f"{key} is {config[key]!r}, not true/false")
    if config.get("rope_theta", _ROPE_BASE) != _ROPE_BASE or config.get("rope_scaling") or config.get("rope_parameters"):
        problems.append(
            "custom rotary settings (rope_theta/rope_scaling/rope_parameters); NTv2 uses plain rotary with base 10000"
        )
    if not _is_int(config.get("pad_token_id")):
        problems.append(f"pad_token_id is {config.get('pad_token_id')!r}, not an integer")
    if config.get("token_dropout") and not _is_int(config.get("mask_token_id")):
        problems.append("token_dropout needs an integer mask_token_id")
    eps = config.get("layer_norm_eps", 1e-12)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
        problems.append(f"layer_norm_eps is {eps!r}, not a positive number")
    return problems


def ntv2_esm_config(config: Mapping[str, Any]) -> EsmConfig:
    """The core ``EsmConfig`` (plus ``add_bias_fnn``) for an NTv2 config.json dict that passed :func:`ntv2_support_problems`.

    Defaults for absent fields follow NT's own config class (``add_bias_fnn`` true,
    ``position_embedding_type`` "absolute", ``layer_norm_eps`` 1e-12, tied embeddings).
    """
    return EsmConfig(
        vocab_size=config["vocab_size"],
        hidden_size=config["hidden_size"],
        num_hidden_layers=config["num_hidden_layers"],
        num_attention_heads=config["num_attention_heads"],
        intermediate_size=config["intermediate_size"],
        max_position_embeddings=config.get("max_position_embeddings", 1026),
        position_embedding_type=config.get("position_embedding_type", "absolute"),
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        emb_layer_norm_before=bool(config.get("emb_layer_norm_before")),
        token_dropout=bool(config.get("token_dropout")),
        hidden_dropout_prob=float(config.get("hidden_dropout_prob") or 0.0),
        attention_probs_dropout_prob=float(config.get("attention_probs_dropout_prob") or 0.0),
        pad_token_id=config["pad_token_id"],
        mask_token_id=config.get("mask_token_id"),
        # NT has no end token; EsmConfig's default eos id (2) would collide with NT's <mask>.
        bos_token_id=None,
        eos_token_id=None,
        tie_word_embeddings=bool(config.get("tie_word_embeddings", True)),
        is_folding_model=False,
        add_bias_fnn=bool(config.get("add_bias_fnn", True)),
    )


# --------------------------------------------------------------------------------------------
# The model: core ESM with NTv2's gated feed-forward
# --------------------------------------------------------------------------------------------


class NTv2GatedIntermediate(nn.Module):
    """NTv2's feed-forward input half: x: [..., H] -> silu(a) * b: [..., I], where [a | b] = dense(x).

    ``dense.weight`` is ``[2 * I, H]`` (the checkpoint's ``intermediate.dense.weight``); rows
    ``0..I-1`` produce the gate ``a``, rows ``I..2I-1`` the value ``b``.
    """

    def __init__(self, hidden_size: int, intermediate_size: int, bias: bool):
        super().__init__()
        self.dense = nn.Linear(hidden_size, 2 * intermediate_size, bias=bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        gate, value = self.dense(hidden_states).chunk(2, dim=-1)
        return nn.functional.silu(gate) * value


class NTv2ForMaskedLM(EsmForMaskedLM):
    """Core transformers ``EsmForMaskedLM`` with NTv2's gated (SwiGLU) feed-forward in every block.

    ``config``: an ``EsmConfig`` with an extra ``add_bias_fnn`` (see :func:`ntv2_esm_config`).
    Forward, outputs and ``hidden_states`` are core ESM's; only ``layer.intermediate`` and
    ``layer.output.dense`` differ (shapes ``[2I, H]`` and ``[H, I]``, biases iff ``add_bias_fnn``).
    """

    def __init__(self, config: EsmConfig):
        super().__init__(config)
        bias = bool(getattr(config, "add_bias_fnn", True))
        hidden, inter = config.hidden_size, config.intermediate_size
        for layer in self.esm.encoder.layer:
            layer.intermediate = NTv2GatedIntermediate(hidden, inter, bias)
            layer.output.dense = nn.Linear(inter, hidden, bias=bias)


def build_ntv2(config: Mapping[str, Any] | EsmConfig) -> NTv2ForMaskedLM:
    """A randomly initialised ``NTv2ForMaskedLM`` from a config.json dict or an ``EsmConfig``."""
    if isinstance(config, Mapping):
        problems = ntv2_support_problems(config)
        if problems:
            raise CheckpointError(f"cannot build an NTv2 model from this config: {'; '.join(problems)}")
        config = ntv2_esm_config(config)
    return NTv2ForMaskedLM(config)


# --------------------------------------------------------------------------------------------
# Reading a checkpoint directory: config.json, vocab.txt, weights
# --------------------------------------------------------------------------------------------


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """config.json of a checkpoint directory, as plain JSON (no code is imported)."""
    cfg_file = Path(directory) / "config.json"
    if not cfg_file.is_file():
        raise MissingFileError(f"checkpoint directory {directory} has no config.json")
    return read_config_json(cfg_file)


def read_vocab(directory: str | os.PathLike) -> dict[str, int]:
    """Token -> id from the checkpoint's ``vocab.txt``, exactly as ``EsmTokenizer`` reads it.

    One token per line, id = line number (0-based), surrounding whitespace stripped; for a
    duplicated token the later line wins (as in ``EsmTokenizer``).
    """
    vocab_file = Path(directory) / "vocab.txt"
    if not vocab_file.is_file():
        raise MissingFileError(f"checkpoint directory {directory} has no vocab.txt (NT checkpoints ship one)")
    try:
        lines = vocab_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read {vocab_file}: {exc}") from exc
    return {tok.strip(): i for i, tok in enumerate(lines)}


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error type for corrupt files
        raise CheckpointError(f"cannot read weights {path}: {type(exc).__name__}: {exc}") from exc


def _load_torch_bin(path: Path) -> dict[str, torch.Tensor]:
    """A ``torch.save``d flat state dict, unpickled with ``weights_only=True`` (tensors and containers only)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load {path}: it pickles objects other than tensors, which weights_only "
            f"loading does not allow (a plain state dict is expected) [{str(exc).splitlines()[0]}]"
        ) from exc
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"cannot read weights {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        kind = type(obj).__name__
        bad = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None) if isinstance(obj, Mapping) else None
        where = f" (entry {bad!r} is not a tensor)" if bad is not None else ""
        raise CheckpointError(
            f"{path} is not a plain state dict (str -> tensor){where}; got a {kind}. A training checkpoint "
            f"with the weights nested inside is not an NTv2 weights file"
        )
    return dict(obj)


def _load_one(path: Path) -> dict[str, torch.Tensor]:
    return _load_safetensors(path) if path.name.endswith(".safetensors") else _load_torch_bin(path)


def _load_sharded(index: Path) -> dict[str, torch.Tensor]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"weights index {index} is not valid JSON with a weight_map: {exc}") from exc
    if not isinstance(weight_map, Mapping):
        raise CheckpointError(f"weights index {index}: weight_map is not an object")
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        if not isinstance(shard, str) or Path(shard).name != shard:
            raise CheckpointError(f"weights index {index} names shard {shard!r}; shards must be plain file names next to it")
        shard_path = index.parent / shard
        if not shard_path.is_file():
            raise MissingFileError(f"weights index {index} names shard {shard}, which is missing")
        part = _load_one(shard_path)
        dup = sorted(state.keys() & part.keys())
        if dup:
            raise CheckpointError(f"weights shard {shard_path} repeats keys already loaded: {', '.join(dup[:3])}")
        state.update(part)
    return state


def read_state_dict(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Path]:
    """The checkpoint's weights (CPU tensors) and the file they came from (see :data:`WEIGHT_FILES`)."""
    directory = Path(directory)
    for name in WEIGHT_FILES:
        path = directory / name
        if path.is_file():
            state = _load_sharded(path) if name.endswith(".index.json") else _load_one(path)
            return state, path
    raise MissingFileError(f"checkpoint directory {directory} has no weights (expected one of {', '.join(WEIGHT_FILES)})")


# --------------------------------------------------------------------------------------------
# Strict loading
# --------------------------------------------------------------------------------------------


def _shown(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def _renamed_legacy_layer_norms(state: Mapping[str, torch.Tensor], source: Path) -> dict[str, torch.Tensor]:
    """``LayerNorm.gamma``/``.beta`` -> ``LayerNorm.weight``/``.bias``, as transformers' ESM loader does.

    Checkpoints written by transformers 4.x (NTv2's) use weight/bias; transformers 5's
    ``save_pretrained`` writes ESM's ``LayerNorm`` parameters as gamma/beta.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if new in out or (new != key and new in state):
            raise CheckpointError(f"NTv2 checkpoint {source} has both {key} and {new}; cannot tell which one to use")
        out[new] = value
    return out


def _checked_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: Path) -> dict[str, torch.Tensor]:
    """The subset of ``state`` to load into ``model``; raises CheckpointError on missing/unexpected/misshapen encoder weights."""
    state = _renamed_legacy_layer_norms(state, source)
    expected = model.state_dict()
    rotary = _ROTARY_KEY in expected
    legacy_rotary = sorted(k for k in state if k.endswith(_LEGACY_ROTARY_SUFFIX))

    missing = sorted(k for k in expected.keys() - state.keys() if k != _ROTARY_KEY)
    missing_required = [k for k in missing if k.startswith(_REQUIRED_PREFIXES)]
    if missing_required:
        raise CheckpointError(
            f"NTv2 checkpoint {source} lacks encoder weights: {_shown(missing_required)} "
            f"(truncated file, or not an NTv2 checkpoint)"
        )
    ignorable = set(legacy_rotary) | {"esm.embeddings.position_ids"}
    if rotary:
        ignorable.add("esm.embeddings.position_embeddings.weight")  # NT's code always creates this table; rotary never reads it
    extra = state.keys() - expected.keys() - ignorable
    ignored_heads = sorted(k for k in extra if k.startswith(_IGNORED_PREFIXES))
    unexpected = sorted(extra - set(ignored_heads))
    unexpected_encoder = [k for k in unexpected if k.startswith("esm.")]
    if unexpected_encoder:
        raise CheckpointError(
            f"NTv2 checkpoint {source} has encoder weights the NTv2 architecture in its config.json does not have: "
            f"{_shown(unexpected_encoder)} (config.json and weights disagree, e.g. add_bias_fnn or "
            f"num_hidden_layers){_REMOTE_HINT}"
        )
    # legacy per-layer inv_freq copies end up in esm.rotary_embeddings.inv_freq (core ESM's load hook)
    targets = {k: k for k in expected.keys() & state.keys()} | ({k: _ROTARY_KEY for k in legacy_rotary} if rotary else {})
    mismatched = [
        f"{k}: {tuple(state[k].shape)} in the checkpoint, {tuple(expected[t].shape)} expected"
        for k, t in sorted(targets.items())
        if tuple(state[k].shape) != tuple(expected[t].shape)
    ]
    if mismatched:
        hint = ""
        if any(".intermediate.dense.weight" in m for m in mismatched):
            hint = " (NTv2's gated feed-forward needs intermediate.dense.weight of shape [2 * intermediate_size, hidden_size])"
        raise CheckpointError(
            f"NTv2 checkpoint {source} has weights of the wrong shape: {'; '.join(mismatched[:3])}{hint}{_REMOTE_HINT}"
        )

    if missing:
        log.info("NTv2 checkpoint %s: absent weights not used for features (left as initialised): %s", source, _shown(missing))
    if ignored_heads or unexpected:
        log.info("NTv2 checkpoint %s: ignoring weights this model does not have: %s", source, _shown(ignored_heads + unexpected))
    keep = expected.keys() | (set(legacy_rotary) if rotary else set())
    return {k: v for k, v in state.items() if k in keep}


def load_ntv2(
    path: str | os.PathLike,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Load an NTv2-format checkpoint directory into hadna's native ``NTv2ForMaskedLM`` (no remote code).

    Reads config.json as JSON, checks it with :func:`ntv2_support_problems`, builds the model,
    loads the weights strictly (missing or unexpected encoder weights and shape mismatches raise
    :class:`CheckpointError` naming them; ``lm_head``/``contact_head`` weights may be absent) and
    returns it in eval mode on ``device`` in ``dtype`` (the rotary ``inv_freq`` stays float32, as in
    core transformers, because half-precision frequencies would distort positions).
    """
    directory = Path(path)
    config = read_config(directory)
    problems = ntv2_support_problems(config)
    if problems:
        raise CheckpointError(f"{directory} is not a checkpoint hadna's NTv2 port can load: {'; '.join(problems)}")
    state, source = read_state_dict(directory)
    model = build_ntv2(ntv2_esm_config(config))
    result = model.load_state_dict(_checked_state(model, state, source), strict=False)
    leftover = [k for k in result.unexpected_keys if not k.endswith(_LEGACY_ROTARY_SUFFIX)]
    if leftover:  # _checked_state should have caught these; never load silently wrong
        raise CheckpointError(f"NTv2 checkpoint {source}: weights not loaded: {_shown(leftover)}")
    model.eval()
    rotary = getattr(model.esm, "rotary_embeddings", None)
    inv_freq = rotary.inv_freq.detach().clone() if rotary is not None else None
    model.to(device=device, dtype=dtype)
    if rotary is not None:
        rotary.inv_freq = inv_freq.to(device=rotary.inv_freq.device)
    return model
