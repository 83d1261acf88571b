"""Pre-trained students shipped inside the package, loadable offline by name.

A shipped student lives in ``hadna/resources/pretrained/<name>/``: ``config.json`` and
``model.safetensors`` of the backbone (a :class:`~hadna.models.HadModel`, stored in fp16 to keep the
wheel small) and ``README.md``, its model card (data, teacher, steps, wall time, validation losses,
results, intended use, licence). ``pretrained:<name>`` names it wherever a model path is accepted:

    model = HadModel.from_pretrained("pretrained:NAME")   # fp32 unless dtype= is given
    hadna embed --model pretrained:NAME ...

:func:`available_pretrained` lists what this installation ships: ``had-1m-primates`` (had-1m distilled
from hadna's own 6-mer teacher on four primate chr22 genomes, ``configs/had_1m_primates.yaml``; the
recommended student) and ``mlm-1m-primates`` (its equal-budget masked-LM control, no teacher: a baseline
for comparisons).

:func:`hadna.train.export.pack_pretrained` writes such a directory from a training run's ``final/``
export; it is how a student gets into the package (weights derived from hadna's own data and teachers
only).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError

PRETRAINED_PREFIX = "pretrained:"
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "resources" / "pretrained"


def available_pretrained() -> list[str]:
    """Names of the shipped students (directories holding a config and weights), sorted."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir()
                  if (p / "config.json").is_file() and (p / "model.safetensors").is_file())


def is_pretrained_name(name: object) -> bool:
    return isinstance(name, str) and name.startswith(PRETRAINED_PREFIX)


def pretrained_path(name: str) -> Path:
    """``pretrained:NAME`` (or ``NAME``) -> the shipped student's directory; a ConfigError lists the names."""
    short = name[len(PRETRAINED_PREFIX):] if is_pretrained_name(name) else name
    names = available_pretrained()
    if short not in names:
        shown = ", ".join(f"{PRETRAINED_PREFIX}{n}" for n in names) or "none in this installation"
        raise ConfigError(f"unknown pre-trained model {PRETRAINED_PREFIX}{short!s}; shipped: {shown}")
    return PRETRAINED_DIR / short


def resolve_model_path(path: str | os.PathLike) -> str | os.PathLike:
    """A ``pretrained:`` name -> its directory (as a string); any other path unchanged."""
    return str(pretrained_path(path)) if is_pretrained_name(path) else path


__all__ = ["PRETRAINED_DIR", "PRETRAINED_PREFIX", "available_pretrained", "is_pretrained_name", "pretrained_path",
           "resolve_model_path"]
