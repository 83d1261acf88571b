"""A native HyenaDNA model: HyenaDNA checkpoints as teachers without running their remote code.

HyenaDNA (Nguyen et al. 2023; Hub checkpoints such as ``LongSafari/hyenadna-tiny-1k-seqlen-hf``) is a
*causal* long-convolution language model over one token per nucleotide. Its Hub checkpoints ship
their own modelling code (``auto_map`` in config.json, ``model_type: hyenadna``); hadna rebuilds the
network here from the architecture, with the checkpoint's parameter names, so the weights load
strictly and nothing from the checkpoint is executed.

Per block, with width ``d`` (``d_model``) and the order-2 Hyena operator the checkpoints use::

    y = x + out_proj(Hyena(LayerNorm1(x)))            Hyena: see below
    x' = y + fc2(gelu_tanh(fc1(LayerNorm2(y))))       MLP d -> d_inner -> d

    Hyena(u): [x0 | x1 | v] = causal depthwise conv3(in_proj(u))    (in_proj: d -> 3d, conv over time)
              v = x1 * v;  v = causal_long_conv(v, h) + bias * v    (h: one implicit filter per channel)
              out = x0 * v

The long filter ``h`` [d, L] is generated, not stored: a small MLP (Linear -> sin -> (Linear -> sin) x
``num_inner_mlps`` -> Linear without bias; one shared learnable ``freq`` inside every ``sin(freq * x)``)
reads positional features ``z(t) = [t, cos(-f w_t), sin(-f w_t)]`` (``t`` in [0, 1], ``w_t = 2 pi t_i /
max_seq_len``, ``(emb_dim - 1) / 2`` bands ``f`` from 1e-4 to bands - 1) and is windowed by
``exp(-|delta_c| t) + 0.05`` (per-channel decay rates from ln(0.01)/1.5 to ln(0.01)/0.3). The long
convolution is computed with an FFT of size 2L, which makes it causal (no wrap-around). Embeddings
(vocabulary padded to a multiple of ``pad_vocab_size_multiple``), the blocks, then a final LayerNorm
(``layer_norm_epsilon``; the block norms use 1e-5).

Hidden states follow hadna's teacher convention (:mod:`hadna.teachers.wrapper`): ``n_layer + 1``
entries, entry 0 the embeddings, entry ``k`` the output of block ``k``, the last entry the output of
the last block *after* the final LayerNorm (= ``last_hidden_state``). (The remote code returns
``n_layer + 2`` entries: it keeps the un-normalised last block output too.)

Causality and padding: the model has no attention mask; token ``j`` reads tokens ``0..j`` only. So
right padding never changes the features of real tokens. Left-padded rows are shifted so their real
tokens start at position 0, run, and shifted back (positions enter the filters, so a left-padded
sequence gets exactly the features it gets unpadded). Inputs longer than ``max_seq_len`` tokens are an
error (the filters exist only up to that length). In half precision (GPU teachers) the filter generator
stays float32 and the long convolution runs in float32, like the reference code's FFT.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from hadna.errors import CheckpointError, ConfigError
from hadna.utils.logging import get_logger

log = get_logger("teacher.hyenadna")

MODEL_TYPE = "hyenadna"
#: HyenaDNA's character tokenizer: fixed special ids, then one id per character from 7 on.
HYENADNA_SPECIAL_IDS = {"[CLS]": 0, "[SEP]": 1, "[BOS]": 2, "[MASK]": 3, "[PAD]": 4, "[RESERVED]": 5, "[UNK]": 6}
HYENADNA_CHARACTERS = ("A", "C", "G", "T", "N")
HYENADNA_VOCAB = {**HYENADNA_SPECIAL_IDS, **{c: 7 + i for i, c in enumerate(HYENADNA_CHARACTERS)}}


def hyenadna_span_tokenizer():
    """HyenaDNA's character tokenizer rule as a span tokenizer: ids above, ``[SEP]`` appended (as its
    ``build_inputs_with_special_tokens`` does), no ``[CLS]``; right padding (the model is causal)."""
    from hadna.teachers.spans import CharSpanTokenizer

    v = HYENADNA_VOCAB
    return CharSpanTokenizer(base_ids={b: v[b] for b in HYENADNA_CHARACTERS}, pad_token_id=v["[PAD]"],
                             mask_token_id=v["[MASK]"], suffix=(v["[SEP]"],), padding_side="right")


@dataclass
class HyenaDNAConfig:
    """The config.json fields the architecture depends on (defaults: HyenaDNA's config class)."""

    vocab_size: int = 12
    d_model: int = 256
    d_inner: int | None = None
    n_layer: int = 12
    max_seq_len: int = 1024
    emb_dim: int = 3
    filter_order: int = 64
    num_inner_mlps: int = 2
    hyena_order: int = 2
    short_filter_order: int = 3
    activation_freq: float = 1.0
    train_freq: bool = True
    use_bias: bool = True
    layer_norm_epsilon: float = 1e-5
    pad_vocab_size_multiple: int = 8
    pad_token_id: int | None = 4

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "HyenaDNAConfig":
        known = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in config.items() if k in known})
        problems = cfg.problems()
        if problems:
            raise CheckpointError(f"HyenaDNA config not supported by hadna's native port: {'; '.join(problems)}")
        return cfg

    def __post_init__(self):
        if self.d_inner is None:
            self.d_inner = 4 * self.d_model

    def problems(self) -> list[str]:
        out = []
        if self.hyena_order != 2:
            out.append(f"hyena_order {self.hyena_order} (the port implements order 2, as every published checkpoint)")
        if self.emb_dim < 3 or self.emb_dim % 2 == 0:
            out.append(f"emb_dim {self.emb_dim} must be odd and >= 3")
        if self.short_filter_order < 1:
            out.append(f"short_filter_order {self.short_filter_order} must be >= 1")
        for key in ("vocab_size", "d_model", "n_layer", "max_seq_len", "filter_order", "pad_vocab_size_multiple"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                out.append(f"{key} is {getattr(self, key)!r}, not a positive integer")
        return out

    # the names hadna's Teacher reads
    @property
    def num_hidden_layers(self) -> int:
        return self.n_layer

    @property
    def hidden_size(self) -> int:
        return self.d_model

    @property
    def padded_vocab_size(self) -> int:
        m = self.pad_vocab_size_multiple
        return -(-self.vocab_size // m) * m


class _Sin(nn.Module):
    """``sin(freq * x)``; one instance is shared by every activation of a filter MLP (so one ``freq``)."""

    def __init__(self, width: int, freq: float, trainable: bool):
        super().__init__()
        f = freq * torch.ones(1, width)
        if trainable:
            self.freq = nn.Parameter(f)
        else:
            self.register_buffer("freq", f, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


class _PositionalFeatures(nn.Module):
    """``z`` [1, max_len, emb_dim] and ``t`` [1, max_len, 1] (non-persistent buffers, rebuilt from the config)."""

    def __init__(self, max_len: int, emb_dim: int):
        super().__init__()
        bands = (emb_dim - 1) // 2
        t = torch.linspace(0, 1, max_len)[None, :, None]
        w = 2 * math.pi * torch.linspace(0, max_len - 1, max_len)[None, :, None] / max_len
        f = torch.linspace(1e-4, bands - 1, bands)[None, None]
        self.register_buffer("z", torch.cat([t, torch.cos(-f * w), torch.sin(-f * w)], dim=-1), persistent=False)
        self.register_buffer("t", t, persistent=False)


class _Modulation(nn.Module):
    def __init__(self, width: int, fast: float = 0.3, slow: float = 1.5, target: float = 1e-2, shift: float = 0.05):
        super().__init__()
        self.shift = shift
        deltas = torch.linspace(math.log(target) / slow, math.log(target) / fast, width)[None, None]
        self.register_buffer("deltas", deltas, persistent=False)

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return h * (torch.exp(-t * self.deltas.abs()) + self.shift)


class _ImplicitFilter(nn.Module):
    """Generates the long filters ``[L, d]`` and holds the per-channel skip weight ``bias`` [d]."""

    def __init__(self, cfg: HyenaDNAConfig):
        super().__init__()
        d = cfg.d_model
        self.bias = nn.Parameter(torch.zeros(d))
        self.pos_emb = _PositionalFeatures(cfg.max_seq_len, cfg.emb_dim)
        act = _Sin(cfg.filter_order, cfg.activation_freq, cfg.train_freq)
        layers: list[nn.Module] = [nn.Linear(cfg.emb_dim, cfg.filter_order), act]
        for _ in range(cfg.num_inner_mlps):
            layers += [nn.Linear(cfg.filter_order, cfg.filter_order), act]
        layers.append(nn.Linear(cfg.filter_order, d, bias=False))
        self.implicit_filter = nn.Sequential(*layers)
        self.modulation = _Modulation(d)

    def filter(self, length: int) -> torch.Tensor:
        """The long filters ``[L, d]``, in the generator's own dtype (kept float32 by :func:`load_hyenadna`)."""
        z, t = self.pos_emb.z[:, :length], self.pos_emb.t[:, :length]
        h = self.implicit_filter(z.to(self.implicit_filter[0].weight.dtype))
        return self.modulation(t, h)[0]                                     # [L, d]


def causal_long_conv(u: torch.Tensor, h: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """``y[..., c, i] = sum_{j<=i} h[c, j] u[..., c, i-j] + skip[c] u[..., c, i]``; u ``[B, d, L]``, h ``[d, L]``.

    FFT of size 2L (zero padding, so no circular wrap-around), computed in float32.
    """
    L = u.shape[-1]
    n = 2 * L
    y = torch.fft.irfft(torch.fft.rfft(u.float(), n=n) * (torch.fft.rfft(h.float(), n=n) / n), n=n, norm="forward")[..., :L]
    return (y + u * skip[:, None]).to(u.dtype)


class HyenaOperator(nn.Module):
    def __init__(self, cfg: HyenaDNAConfig):
        super().__init__()
        d = cfg.d_model
        inner = d * (cfg.hyena_order + 1)
        self.d_model = d
        self.in_proj = nn.Linear(d, inner)
        self.out_proj = nn.Linear(d, d)
        k = cfg.short_filter_order
        self.short_filter = nn.Conv1d(inner, inner, k, padding=k - 1, groups=inner)   # causal after [:L]
        self.filter_fn = _ImplicitFilter(cfg)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u: ``[B, L, d]`` -> ``[B, L, d]``."""
        L = u.shape[1]
        z = self.short_filter(self.in_proj(u).transpose(1, 2))[..., :L]              # [B, 3d, L]
        x0, x1, v = z.split(self.d_model, dim=1)
        h = self.filter_fn.filter(L).transpose(0, 1)                                    # [d, L]
        v = causal_long_conv(v * x1, h, self.filter_fn.bias)
        return self.out_proj((v * x0).transpose(1, 2))


class HyenaMlp(nn.Module):
    def __init__(self, cfg: HyenaDNAConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.d_model, cfg.d_inner)
        self.fc2 = nn.Linear(cfg.d_inner, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class HyenaBlock(nn.Module):
    def __init__(self, cfg: HyenaDNAConfig):
        super().__init__()
        self.mixer = HyenaOperator(cfg)
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.mlp = HyenaMlp(cfg)
        self.norm2 = nn.LayerNorm(cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _Embeddings(nn.Module):
    def __init__(self, cfg: HyenaDNAConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.padded_vocab_size, cfg.d_model)


class _Backbone(nn.Module):
    def __init__(self, cfg: HyenaDNAConfig):
        super().__init__()
        self.embeddings = _Embeddings(cfg)
        self.layers = nn.ModuleList([HyenaBlock(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_epsilon)


@dataclass
class HyenaDNAOutput:
    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None


class HyenaDNAModel(nn.Module):
    """The HyenaDNA backbone (parameter names of the Hub checkpoints: ``backbone.*``)."""

    def __init__(self, config: HyenaDNAConfig):
        super().__init__()
        self.config = config
        self.backbone = _Backbone(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, return_dict: bool = True) -> HyenaDNAOutput:
        """input_ids ``[B, N]``; attention_mask ``[B, N]`` (1 = real; real tokens contiguous) or None.

        Returns ``last_hidden_state`` ``[B, N, d]`` and, if asked, ``n_layer + 1`` hidden states (see the
        module docstring). Values at padded positions are meaningless.
        """
        B, N = input_ids.shape
        if N > self.config.max_seq_len:
            raise ConfigError(f"HyenaDNA teacher takes at most {self.config.max_seq_len} tokens (max_seq_len), "
                              f"got {N}; use shorter windows")
        shift = None
        if attention_mask is not None and B and N:
            lead = (attention_mask.long().cumsum(1) == 0).sum(1)                       # leading padding per row
            if bool(lead.any()):
                shift = lead
                idx = (torch.arange(N, device=input_ids.device)[None, :] + lead[:, None]) % N
                input_ids = input_ids.gather(1, idx)                                    # real tokens first
        x = self.backbone.embeddings.word_embeddings(input_ids)
        states = [x] if output_hidden_states else None
        for layer in self.backbone.layers:
            x = layer(x)
            if states is not None:
                states.append(x)
        x = self.backbone.ln_f(x)
        if states is not None:
            states[-1] = x
        if shift is not None:
            back = (torch.arange(N, device=x.device)[None, :] - shift[:, None]) % N

            def unshift(s: torch.Tensor) -> torch.Tensor:
                return s.gather(1, back[..., None].expand(-1, -1, s.shape[-1]))
            x = unshift(x)
            states = [unshift(s) for s in states] if states is not None else None
        return HyenaDNAOutput(x, tuple(states) if states is not None else None)


def _expected_checkpoint_keys(model: HyenaDNAModel) -> set[str]:
    return set(model.state_dict().keys())


def load_hyenadna(path: str | os.PathLike, dtype: torch.dtype = torch.float32,
                  device: str | torch.device = "cpu") -> HyenaDNAModel:
    """Load a HyenaDNA checkpoint directory into :class:`HyenaDNAModel` (no remote code is imported or run).

    Weights: ``model.safetensors`` or ``pytorch_model.bin`` (``weights_only``), with or without the
    ``hyena.`` prefix of the causal-LM / classification checkpoints; heads (``lm_head``, ``score``) are
    ignored. Strict: a missing or misshapen backbone weight, or an unknown backbone key, is a
    :class:`CheckpointError`. The filters' positional buffers (``pos_emb.z/t``, ``modulation.deltas``) are
    recomputed from the config, checked against the checkpoint's copies when present (atol 1e-5) and then
    replaced by those copies (they differ from a CPU recomputation by float rounding, ~1e-6).
    """
    from hadna.teachers.ntv2 import read_config, read_state_dict

    directory = Path(path)
    raw = read_config(directory)
    if raw.get("model_type") != MODEL_TYPE:
        raise CheckpointError(f"{directory} is not a HyenaDNA checkpoint (model_type {raw.get('model_type')!r})")
    cfg = HyenaDNAConfig.from_dict(raw)
    state, source = read_state_dict(directory)
    state = {k[len("hyena."):] if k.startswith("hyena.") else k: v for k, v in state.items()}
    model = HyenaDNAModel(cfg)
    expected = model.state_dict()
    buffers = {n for n, _ in model.named_buffers()}
    recomputed = {k for k in state if k.rsplit(".", 1)[-1] in ("z", "t", "deltas") and k.startswith("backbone.")}
    for k in sorted(recomputed):
        mine = dict(model.named_buffers(remove_duplicate=False)).get(k)
        if mine is None or mine.shape != state[k].shape or not torch.allclose(mine, state[k].float(), atol=1e-5):
            raise CheckpointError(f"HyenaDNA checkpoint {source}: buffer {k} differs from the one its config implies")
    backbone_state = {k: v for k, v in state.items() if k.startswith("backbone.") and k not in recomputed}
    missing = sorted(expected.keys() - backbone_state.keys() - buffers)
    unexpected = sorted(backbone_state.keys() - expected.keys())
    if missing or unexpected:
        from hadna.teachers.ntv2 import _shown

        what = "; ".join(p for p in (f"missing {_shown(missing)}" if missing else "",
                                     f"unexpected {_shown(unexpected)}" if unexpected else "") if p)
        raise CheckpointError(f"HyenaDNA checkpoint {source} does not match its config.json: {what}")
    bad = [f"{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in backbone_state.items()
           if tuple(v.shape) != tuple(expected[k].shape)]
    if bad:
        raise CheckpointError(f"HyenaDNA checkpoint {source} has weights of the wrong shape: {'; '.join(bad[:3])}")
    freq_groups: dict[str, list[torch.Tensor]] = {}
    for k, v in backbone_state.items():
        if k.endswith(".freq"):
            freq_groups.setdefault(k.split(".implicit_filter.")[0], []).append(v)
    for prefix, vals in freq_groups.items():
        if any(not torch.equal(vals[0], v) for v in vals[1:]):
            raise CheckpointError(f"HyenaDNA checkpoint {source}: the shared sin frequency of {prefix} differs "
                                  "between its copies")
    model.load_state_dict(backbone_state, strict=False)
    with torch.no_grad():  # the checkpoint's copies (computed on its training device) win over ours
        for k in recomputed:
            model.get_buffer(k).copy_(state[k])
    ignored = sorted(k for k in state if not k.startswith("backbone."))
    if ignored:
        log.info("HyenaDNA checkpoint %s: ignoring head weights %s", source, ", ".join(ignored[:5]))
    model = model.eval().to(device=device, dtype=dtype)
    if dtype != torch.float32:  # positions t in [0, 1] and the sine MLP lose too much in half precision
        for block in model.backbone.layers:
            block.mixer.filter_fn.float()
    return model


def save_hyenadna(model: HyenaDNAModel, path: str | os.PathLike) -> Path:
    """Write a HyenaDNA-format checkpoint (config.json + model.safetensors) loadable by :func:`load_hyenadna`."""
    import json
    from dataclasses import asdict

    from safetensors.torch import save_file

    from hadna.utils.io import atomic_write_text

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = {"model_type": MODEL_TYPE, "architectures": ["HyenaDNAModel"], **asdict(model.config)}
    atomic_write_text(path / "config.json", json.dumps(config, indent=2) + "\n")
    # every name of a shared tensor (the filters' sin frequency) gets its own copy, as in the Hub checkpoints
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()},
              str(path / "model.safetensors"))
    return path


def make_random_hyenadna(path: str | os.PathLike, d_model: int = 32, n_layer: int = 2, max_seq_len: int = 258,
                         seed: int = 0) -> Path:
    """A small randomly initialised HyenaDNA checkpoint (tests); weights N(0, 0.02), deterministic in ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HyenaDNAModel(HyenaDNAConfig(d_model=d_model, d_inner=2 * d_model, n_layer=n_layer,
                                             max_seq_len=max_seq_len, emb_dim=5, filter_order=16,
                                             activation_freq=10.0))
        for p in model.parameters():
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02)
            elif not torch.all(p == 10.0):
                nn.init.normal_(p, std=0.02)
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    return save_hyenadna(model, path)
