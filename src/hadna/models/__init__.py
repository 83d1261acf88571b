"""The HAD student as Hugging Face models; importing this registers the Auto classes."""

from transformers import (AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification,
                          AutoTokenizer)

from ..sequence import reverse_complement as reverse_complement_ids  # the ids form, as the model uses it
from ..tokenization import HadTokenizer
from .configuration_had import PRESETS, HadConfig
from .modeling_had import (HadForMaskedLM, HadForSequenceClassification, HadModel, HadPreTrainedModel,
                           count_parameters, pool_hidden_states)

AutoConfig.register(HadConfig.model_type, HadConfig, exist_ok=True)
AutoModel.register(HadConfig, HadModel, exist_ok=True)
AutoModelForMaskedLM.register(HadConfig, HadForMaskedLM, exist_ok=True)
AutoModelForSequenceClassification.register(HadConfig, HadForSequenceClassification, exist_ok=True)
AutoTokenizer.register(HadConfig, tokenizer_class=HadTokenizer, exist_ok=True)

__all__ = [
    "PRESETS",
    "HadConfig",
    "HadForMaskedLM",
    "HadForSequenceClassification",
    "HadModel",
    "HadPreTrainedModel",
    "count_parameters",
    "pool_hidden_states",
    "reverse_complement_ids",
]
