"""Configuration of the HAD student (a Hugging Face ``PretrainedConfig``)."""

from __future__ import annotations

import copy
from typing import Any

from transformers import PretrainedConfig

from .. import vocab
from ..errors import ConfigError

# Named sizes. "had-1m" is the paper's ~1.1M-parameter student (widths/depth are our choice: the
# paper does not state them; see docs/design.md for the budget arithmetic).
PRESETS: dict[str, dict[str, Any]] = {
    "had-1m": dict(hidden_size=128, num_gdn_layers=4, num_heads=4, head_k_dim=32, expand_v=2.0,
                   intermediate_size=256, num_attention_layers=1, num_attention_heads=4),
    # The "w/o attention" ablation of the paper: the same student without its attention layer.
    "had-1m-noattn": dict(hidden_size=128, num_gdn_layers=4, num_heads=4, head_k_dim=32, expand_v=2.0,
                          intermediate_size=256, num_attention_layers=0, num_attention_heads=4),
    # For tests and smoke runs.
    "had-tiny": dict(hidden_size=32, num_gdn_layers=2, num_heads=2, head_k_dim=8, expand_v=2.0,
                     intermediate_size=64, num_attention_layers=1, num_attention_heads=2),
}


class HadConfig(PretrainedConfig):
    r"""Configuration for :class:`HadModel` and its heads.

    Layout: token embedding -> ``num_gdn_layers`` pre-norm blocks [BiGDN + residual, gated MLP + residual]
    with ``num_attention_layers`` attention blocks [self-attention + residual, gated MLP + residual]
    placed at ``attention_position`` -> final RMSNorm.

    Args:
        hidden_size: model width d.
        num_gdn_layers: bidirectional Gated DeltaNet blocks.
        num_heads, head_k_dim, expand_v: GDN heads; value head dim = head_k_dim * expand_v.
        conv_size: short convolution kernel.
        intermediate_size: gated-MLP hidden width.
        num_attention_layers: 0 gives the no-attention ablation.
        attention_position: "last" (after all GDN blocks, the paper's layout), "first", "middle", or an
            int block index at which the attention block(s) are inserted.
        num_attention_heads, rope_theta: attention heads and rotary base.
        tie_directions: share weights between the forward and backward GDN (halves GDN parameters).
        bidirectional_combine: "add" or "concat" (concat + linear projection).
        chunk_size: chunk length of the pure-PyTorch delta-rule kernel (an execution setting: results
            agree to fp32 rounding for any value; 32 measured ~10% faster than 64 for had-1m inference on
            CPU). kernel_backend: "auto" | "torch" | "fla".
        pooling: sequence-classification pooling, "mean" (valid tokens), "max" or "first".
        rc_averaging: classification averages the logits of a sequence and its reverse complement.
        classifier_dropout, hidden_dropout, attention_dropout: dropout rates.
    """

    model_type = "hadna"

    def __init__(
        self,
        vocab_size: int = vocab.VOCAB_SIZE,
        hidden_size: int = 128,
        num_gdn_layers: int = 4,
        num_heads: int = 4,
        head_k_dim: int = 32,
        expand_v: float = 2.0,
        conv_size: int = 4,
        intermediate_size: int = 256,
        num_attention_layers: int = 1,
        attention_position: str | int = "last",
        num_attention_heads: int = 4,
        rope_theta: float = 10000.0,
        tie_directions: bool = True,
        bidirectional_combine: str = "add",
        norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        chunk_size: int = 32,
        kernel_backend: str = "auto",
        hidden_dropout: float = 0.0,
        attention_dropout: float = 0.0,
        classifier_dropout: float = 0.1,
        pooling: str = "mean",
        rc_averaging: bool = False,
        pad_token_id: int = vocab.PAD_ID,
        mask_token_id: int = vocab.MASK_ID,
        cls_token_id: int = vocab.CLS_ID,
        preset: str | None = None,
        **kwargs: Any,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_gdn_layers = num_gdn_layers
        self.num_heads = num_heads
        self.head_k_dim = head_k_dim
        self.expand_v = expand_v
        self.conv_size = conv_size
        self.intermediate_size = intermediate_size
        self.num_attention_layers = num_attention_layers
        self.attention_position = attention_position
        self.num_attention_heads = num_attention_heads
        self.rope_theta = rope_theta
        self.tie_directions = tie_directions
        self.bidirectional_combine = bidirectional_combine
        self.norm_eps = norm_eps
        self.initializer_range = initializer_range
        self.chunk_size = chunk_size
        self.kernel_backend = kernel_backend
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.classifier_dropout = classifier_dropout
        self.pooling = pooling
        self.rc_averaging = rc_averaging
        self.mask_token_id = mask_token_id
        self.cls_token_id = cls_token_id
        self.preset = preset
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self._validate()

    def _validate(self) -> None:
        if self.bidirectional_combine not in ("add", "concat"):
            raise ValueError(f"bidirectional_combine must be 'add' or 'concat', got {self.bidirectional_combine!r}")
        if self.pooling not in ("mean", "max", "first"):
            raise ValueError(f"pooling must be 'mean', 'max' or 'first', got {self.pooling!r}")
        if self.kernel_backend not in ("auto", "torch", "fla"):
            raise ValueError(f"kernel_backend must be 'auto', 'torch' or 'fla', got {self.kernel_backend!r}")
        if self.num_gdn_layers < 0 or self.num_attention_layers < 0:
            raise ValueError("layer counts must be >= 0")
        if self.num_gdn_layers + self.num_attention_layers == 0:
            raise ValueError("the model needs at least one layer")
        if self.num_attention_layers and self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} not divisible by num_attention_heads "
                             f"{self.num_attention_heads}")
        self.block_types  # validates attention_position

    @property
    def block_types(self) -> list[str]:
        """Block types in order, e.g. ``["gdn", "gdn", "gdn", "gdn", "attention"]``."""
        n, pos = self.num_gdn_layers, self.attention_position
        if isinstance(pos, str) and pos.lstrip("-").isdigit():
            pos = int(pos)
        index = {"last": n, "first": 0, "middle": n // 2}.get(pos, pos) if isinstance(pos, str) else pos
        if not isinstance(index, int) or not 0 <= index <= n:
            raise ValueError(f"attention_position must be 'last', 'first', 'middle' or an int in [0, {n}], "
                             f"got {self.attention_position!r}")
        return ["gdn"] * index + ["attention"] * self.num_attention_layers + ["gdn"] * (n - index)

    @classmethod
    def available_presets(cls) -> list[str]:
        return list(PRESETS)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "HadConfig":
        """A named configuration, e.g. ``HadConfig.preset("had-1m")``; keyword arguments override fields."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; available: {', '.join(PRESETS)}")
        kwargs = copy.deepcopy(PRESETS[name])
        kwargs.update(overrides)
        return cls(preset=name, **kwargs)
