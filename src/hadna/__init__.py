"""hadna: Hybrid Architecture Distillation (HAD) for DNA language models.

Importing ``hadna`` registers the student with the Hugging Face Auto classes, so
``transformers.AutoModel.from_pretrained(path)`` works for hadna checkpoints without
``trust_remote_code``.
"""

__version__ = "0.1.0"

from .models import (  # noqa: E402
    HadConfig,
    HadForMaskedLM,
    HadForSequenceClassification,
    HadModel,
)
from .tokenization import HadTokenizer, reverse_complement  # noqa: E402

__all__ = [
    "HadConfig",
    "HadForMaskedLM",
    "HadForSequenceClassification",
    "HadModel",
    "HadTokenizer",
    "reverse_complement",
    "__version__",
]
