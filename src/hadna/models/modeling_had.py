"""The HAD student as Hugging Face models: backbone, masked-LM head and sequence-classification head."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput, SequenceClassifierOutput

from ..sequence import reverse_complement
from ..modules import (BidirectionalGatedDeltaNet, GatedDeltaNet, GatedMLP, RMSNorm, RotaryEmbedding, SelfAttention,
                       SequenceLayout, ShortConvolution, gate_init_values)
from .configuration_had import HadConfig
from .pretrained import is_pretrained_name, pretrained_path


class HadBlock(nn.Module):
    """Pre-norm residual block: ``x + mixer(norm(x))`` then ``x + mlp(norm(x))``; mixer = BiGDN or attention."""

    def __init__(self, config: HadConfig, block_type: str):
        super().__init__()
        self.block_type = block_type
        self.mixer_norm = RMSNorm(config.hidden_size, config.norm_eps)
        if block_type == "gdn":
            self.mixer = BidirectionalGatedDeltaNet(
                config.hidden_size, tie_directions=config.tie_directions, combine=config.bidirectional_combine,
                num_heads=config.num_heads, head_k_dim=config.head_k_dim, expand_v=config.expand_v,
                conv_size=config.conv_size, norm_eps=config.norm_eps, chunk_size=config.chunk_size,
                kernel_backend=config.kernel_backend)
        elif block_type == "attention":
            self.mixer = SelfAttention(config.hidden_size, config.num_attention_heads, config.rope_theta,
                                       config.attention_dropout)
        else:
            raise ValueError(f"unknown block type {block_type!r}")
        self.mlp_norm = RMSNorm(config.hidden_size, config.norm_eps)
        self.mlp = GatedMLP(config.hidden_size, config.intermediate_size, config.hidden_dropout)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x: torch.Tensor, layout: SequenceLayout) -> torch.Tensor:
        x = x + self.dropout(self.mixer(self.mixer_norm(x), layout))
        return x + self.mlp(self.mlp_norm(x))


def pool_hidden_states(hidden: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str = "mean") -> torch.Tensor:
    """hidden: ``[B, T, D]``, mask ``[B, T]`` -> ``[B, D]``; "mean"/"max" over valid tokens, "first" = position 0."""
    if pooling == "first":
        return hidden[:, 0]
    if attention_mask is None:
        return hidden.mean(1) if pooling == "mean" else hidden.amax(1)
    mask = attention_mask.to(hidden.dtype)[..., None]                          # [B, T, 1]
    if pooling == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    if pooling == "max":
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(1)
    raise ValueError(f"pooling must be 'mean', 'max' or 'first', got {pooling!r}")


class HadPreTrainedModel(PreTrainedModel):
    config_class = HadConfig
    base_model_prefix = "had"
    main_input_name = "input_ids"
    _no_split_modules = ["HadBlock"]
    supports_gradient_checkpointing = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """As :meth:`transformers.PreTrainedModel.from_pretrained`; also takes ``pretrained:NAME``, a student shipped
        inside hadna (:mod:`hadna.models.pretrained`; stored in fp16, loaded as fp32 unless ``dtype`` says otherwise)."""
        if is_pretrained_name(pretrained_model_name_or_path):
            pretrained_model_name_or_path = pretrained_path(pretrained_model_name_or_path)
            kwargs.setdefault("dtype", torch.float32)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, GatedDeltaNet):
            A_log, dt_bias = gate_init_values(module.num_heads)  # the module's own Mamba-2 style draw
            init.copy_(module.A_log, A_log)
            init.copy_(module.dt_bias, dt_bias)
        elif isinstance(module, ShortConvolution):
            bound = module.kernel_size ** -0.5
            init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, RotaryEmbedding):
            init.copy_(module.inv_freq, module.compute_inv_freq())

    # -- embedding API ------------------------------------------------------------------------------
    @torch.inference_mode()
    def embed(self, sequences: Sequence[str], pooling: str = "mean", batch_size: int = 64,
              max_length: int | None = None, truncation: bool = False, layer: int = -1,
              progress: bool = False, tokenizer=None) -> torch.Tensor:
        """Pooled embeddings of DNA strings: ``[N, hidden_size]`` float32 on the CPU, in input order.

        Sequences are batched by length (less padding) and streamed, so memory stays bounded by
        ``batch_size`` (and on a CPU by :data:`~hadna.utils.batching.CPU_BATCH_NT` padded nucleotides).
        ``layer`` picks a hidden state (-1 = final, normalised output).
        """
        from ..tokenization import HadTokenizer
        from ..utils.batching import batch_nt_cap, iter_batches_by_length
        from ..utils.logging import progress as progress_bar

        if isinstance(sequences, str):
            raise TypeError("embed() takes a list of sequences; wrap a single sequence in a list")
        tokenizer = tokenizer or HadTokenizer()
        backbone = self.base_model
        was_training = backbone.training
        backbone.eval()
        device = next(backbone.parameters()).device
        out = torch.empty(len(sequences), self.config.hidden_size)
        lengths = [min(len(s), max_length) if truncation and max_length else len(s) for s in sequences]
        batches = iter_batches_by_length(lengths, batch_size, batch_nt_cap(device.type))
        try:
            for idx in progress_bar(batches, desc="embedding", disable=None if progress else True):
                enc = tokenizer.batch_encode_ids([sequences[i] for i in idx], max_length=max_length,
                                                 truncation=truncation)
                ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
                res = backbone(ids, attention_mask=mask, output_hidden_states=layer != -1)
                hidden = res.last_hidden_state if layer == -1 else res.hidden_states[layer]
                out[torch.as_tensor(idx)] = pool_hidden_states(hidden, mask, pooling).float().cpu()
        finally:
            backbone.train(was_training)
        return out


class HadModel(HadPreTrainedModel):
    """Backbone: embedding -> blocks -> final RMSNorm. Returns ``BaseModelOutput``.

    ``last_hidden_state``: ``[B, T, D]`` (zeros at padding). ``hidden_states`` (when asked): the embedding
    output and each block's output, the last entry being the normalised final output.
    """

    def __init__(self, config: HadConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.layers = nn.ModuleList([HadBlock(config, t) for t in config.block_types])
        self.norm = RMSNorm(config.hidden_size, config.norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.embeddings = value

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None, **kwargs) -> BaseModelOutput | tuple:
        """input_ids: ``[B, T]``; attention_mask: ``[B, T]`` (1 = token, 0 = padding; any side)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        output_hidden_states = (output_hidden_states if output_hidden_states is not None
                                else self.config.output_hidden_states)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        x = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds     # [B, T, D]
        layout = SequenceLayout(attention_mask, x.shape[1])
        hidden_states = [x] if output_hidden_states else None
        for layer in self.layers:
            x = layer(x, layout)
            if hidden_states is not None:
                hidden_states.append(x)
        x = self.norm(x)
        if layout.mask is not None:
            x = x * layout.mask[..., None].to(x.dtype)
        if hidden_states is not None:
            hidden_states[-1] = x
            hidden_states = tuple(hidden_states)
        if not return_dict:
            return tuple(v for v in (x, hidden_states) if v is not None)
        return BaseModelOutput(last_hidden_state=x, hidden_states=hidden_states)


class HadLMHead(nn.Module):
    """``decoder(norm(gelu(dense(h))))`` -> vocabulary logits."""

    def __init__(self, config: HadConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = RMSNorm(config.hidden_size, config.norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.norm(F.gelu(self.dense(hidden))))


class HadForMaskedLM(HadPreTrainedModel):
    """Predicts the nucleotide at every position; loss on positions whose label is not -100."""

    def __init__(self, config: HadConfig):
        super().__init__(config)
        self.had = HadModel(config)
        self.lm_head = HadLMHead(config)
        self.post_init()

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None, **kwargs) -> MaskedLMOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        out = self.had(input_ids, attention_mask=attention_mask, output_hidden_states=output_hidden_states,
                       return_dict=True, **kwargs)
        logits = self.lm_head(out.last_hidden_state)                             # [B, T, V]
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), labels.view(-1), ignore_index=-100)
        if not return_dict:
            return tuple(v for v in (loss, logits, out.hidden_states) if v is not None)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)


class HadForSequenceClassification(HadPreTrainedModel):
    """Pooled backbone features -> dropout -> linear. Follows HF ``problem_type`` conventions.

    With ``config.rc_averaging`` (or ``rc_averaging=True`` per call) the logits are the average of the
    sequence's and its reverse complement's logits (test-time augmentation).
    """

    def __init__(self, config: HadConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.had = HadModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def _logits(self, input_ids, attention_mask, output_hidden_states):
        out = self.had(input_ids, attention_mask=attention_mask, output_hidden_states=output_hidden_states,
                       return_dict=True)
        pooled = pool_hidden_states(out.last_hidden_state, attention_mask, self.config.pooling)
        return self.classifier(self.dropout(pooled)), out.hidden_states

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None, rc_averaging: bool | None = None,
                **kwargs) -> SequenceClassifierOutput | tuple:
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        logits, hidden_states = self._logits(input_ids, attention_mask, output_hidden_states)
        if self.config.rc_averaging if rc_averaging is None else rc_averaging:
            rc_logits, _ = self._logits(reverse_complement(input_ids, attention_mask), attention_mask, False)
            logits = 0.5 * (logits + rc_logits)
        loss = None
        if labels is not None:
            loss = self._loss(logits, labels)
        if not return_dict:
            return tuple(v for v in (loss, logits, hidden_states) if v is not None)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            return F.mse_loss(logits.squeeze(-1).float(), labels.float().view(-1)) if self.num_labels == 1 \
                else F.mse_loss(logits.float(), labels.float())
        if self.config.problem_type == "single_label_classification":
            return F.cross_entropy(logits.view(-1, self.num_labels).float(), labels.view(-1))
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
