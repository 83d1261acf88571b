"""hadna: Hybrid Architecture Distillation (HAD) for DNA language models.

``import hadna`` is light (no torch, no transformers: ``hadna --help`` stays quick); the public names
below load their module on first use. The student is registered with the Hugging Face Auto classes when
:mod:`hadna.models` is imported, which a use of ``HadConfig``, ``HadModel``, ``HadForMaskedLM`` or
``HadForSequenceClassification`` does; ``HadTokenizer`` (:mod:`hadna.tokenization`) and
``reverse_complement`` (:mod:`hadna.sequence`) do not import it. After ``import hadna.models``,
``transformers.AutoModel.from_pretrained(path)`` works for hadna checkpoints without ``trust_remote_code``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it (imported on first access, PEP 562).
_EXPORTS = {
    "HadConfig": "hadna.models",
    "HadForMaskedLM": "hadna.models",
    "HadForSequenceClassification": "hadna.models",
    "HadModel": "hadna.models",
    "HadTokenizer": "hadna.tokenization",
    "reverse_complement": "hadna.sequence",
}

if TYPE_CHECKING:
    from .models import HadConfig, HadForMaskedLM, HadForSequenceClassification, HadModel
    from .sequence import reverse_complement
    from .tokenization import HadTokenizer


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hadna' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [*_EXPORTS, "__version__"]
