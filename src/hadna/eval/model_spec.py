"""Parsing model specs (``--model``, benchmark configs): a hadna checkpoint ``PATH``, ``pretrained:NAME``
(a student shipped inside hadna), ``preset:NAME``, ``kmer[:K]`` or ``hf:NAME_OR_PATH``, optionally as
``NAME=SPEC`` (see :mod:`hadna.eval.models`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import CheckpointError, ConfigError, MissingFileError
from ..models.pretrained import PRETRAINED_PREFIX, pretrained_path
from ..utils.io import list_directory, read_config_json
from ..utils.logging import get_logger
from .kmer import describe_ks, parse_ks

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


def parse_model_spec(text: str, *, name: str | None = None, pooling: str = "mean",
                     trust_remote_code: bool = False, allow_download: bool = False) -> ModelSpec:
    """Parse ``PATH``, ``preset:NAME`` or ``hf:NAME_OR_PATH`` (checks that paths/presets exist).

    Display names: the preset name + " (random init)", the checkpoint directory's last two path
    parts (``runs/x/final`` -> ``x/final``), or the HF id; ``NAME=SPEC`` sets a name explicitly.
    """
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
    text = text.strip()
    if "=" in text and not text.split("=", 1)[0].startswith(("preset:", "hf:", "kmer:", PRETRAINED_PREFIX)) \
            and name is None:
        name, text = (part.strip() for part in text.split("=", 1))
    common = dict(pooling=pooling, trust_remote_code=trust_remote_code, allow_download=allow_download)
    if not text:
        raise ConfigError("empty model spec; use PATH, pretrained:NAME, preset:NAME, kmer or hf:NAME")
    if text.startswith("preset:"):
        from ..models import PRESETS

        preset = text.removeprefix("preset:")
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r} in model spec {text!r}; available: {', '.join(PRESETS)}")
        return ModelSpec("preset", preset, name or f"{preset} (random init)", **common)
    if text.startswith(PRETRAINED_PREFIX):  # a shipped hadna student: a checkpoint directory inside the package
        return ModelSpec("hadna", str(pretrained_path(text)), name or text, **common)
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
                                   + (f"; found: {list_directory(path, limit=10)})" if path.is_dir() else ")"))
        return ModelSpec("hf", str(path) if looks_local else target, name or target.rstrip("/"), **common)
    path = Path(text).expanduser()
    if not path.exists():
        raise MissingFileError(f"model checkpoint not found: {path} (expected a hadna checkpoint directory, "
                               f"pretrained:NAME, preset:NAME, hf:NAME or kmer)")
    if not path.is_dir():
        raise CheckpointError(f"model {path} is a file; pass the checkpoint directory that holds config.json "
                              f"and the weights")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} is not a model checkpoint: no config.json (found: {list_directory(path, limit=10)})")
    display = name or "/".join(path.resolve().parts[-2:])
    if read_config_json(path / "config.json", "model config").get("model_type") != "hadna":
        log.info("%s: config.json is not a hadna model; loading it as a Hugging Face model", path)
        return ModelSpec("hf", str(path), display, **common)
    return ModelSpec("hadna", str(path), display, **common)
