"""HAD's pre-training objectives on top of the student.

* **Distillation** (modes ``had``, ``distillation``): the student's last-layer features are averaged over
  each *visible* teacher token's span, projected to the teacher's width and regressed onto that token's
  teacher features with MSE (optionally against layer-normalised targets).
* **Reconstruction** (modes ``had``, ``reconstruction``): a light decoder with one query per masked
  nucleotide (a learned mask embedding; its position enters through rotary embeddings) cross-attends to
  the student's features of the *visible* nucleotides of the same sequence and predicts A/C/G/T/N.
* **MLM** (mode ``mlm``, a baseline): a plain masked-LM head on the student's own output at masked
  positions, with the same group masking.

``loss = reconstruction + distill_weight * distillation``. After pre-training only ``student`` is kept.

Multi-layer distillation (``distill_layers``, an option): a list of pairs ``{teacher: t, student: s,
weight: w}``; pair ``k`` aligns the student's hidden state ``s`` (span-pooled, through its own head) with
the teacher's hidden state ``t`` (block ``k`` of the teacher features, ``[B, N, K * D_t]``), and
``distillation = sum_k w_k * MSE_k``. Empty (default) = the paper's last layer to last layer.
Student layer indices follow ``output_hidden_states`` (0 = embeddings, -1 = the final normalised output).

Normalisation. Each loss is a sum over its items divided by a count: reconstruction and MLM by the
number of masked nucleotides, distillation by (visible teacher tokens x teacher width). By default
the counts are this batch's own (:func:`objective_counts`). A data-parallel or gradient-accumulating
trainer instead passes ``totals``, the counts summed over every micro-batch of every rank of the
step: then each returned loss/metric is this micro-batch's *contribution*, and summing contributions
over micro-batches and ranks gives exactly the loss of the whole global batch (a mean of per-rank
means would weight ranks with few masked bases too much).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import vocab
from .masking import MaskedBatch
from .models import HadModel
from .models.modeling_had import HadLMHead
from .modules import GatedMLP, RMSNorm, RotaryEmbedding
from .modules.attention import apply_rotary

MODES = ("had", "reconstruction", "distillation", "mlm")
NUM_NUCLEOTIDE_CLASSES = 5  # A C G T N


@dataclass
class ObjectiveConfig:
    """Which objectives, their weight and the sizes of the training-only heads."""

    mode: Literal["had", "reconstruction", "distillation", "mlm"] = "had"
    distill_weight: float = 1.0          # lambda in loss = recon + lambda * distill
    distill_head: Literal["linear", "mlp"] = "linear"
    # Teacher-feature targets: False/"none" as they are; True/"layer": each token's vector standardised over its
    # dimensions (MAE-style); "instance": each dimension standardised over the sequence's visible teacher tokens
    # (data2vec-style), which removes the offset every token shares (see docs/design.md, "target normalisation").
    normalize_targets: bool | Literal["none", "layer", "instance"] = False
    decoder_layers: int = 1
    decoder_width: int = 128
    decoder_heads: int = 4
    decoder_mlp_ratio: float = 2.0
    distill_layers: list[dict[str, Any]] = field(default_factory=list)  # [{teacher, student, weight}], [] = last->last

    def layer_pairs(self, teacher_layer: int = -1) -> list[tuple[int, int, float]]:
        """(teacher layer, student layer, weight) per distilled pair; the default is one last->last pair."""
        if not self.distill_layers:
            return [(teacher_layer, -1, 1.0)]
        return [(int(p["teacher"]), int(p.get("student", -1)), float(p.get("weight", 1.0))) for p in self.distill_layers]

    @property
    def uses_teacher(self) -> bool:
        return self.mode in ("had", "distillation")

    @property
    def uses_decoder(self) -> bool:
        return self.mode in ("had", "reconstruction")

    def validate(self) -> None:
        from .errors import ConfigError

        if self.mode not in MODES:
            raise ConfigError(f"objective.mode must be one of {MODES}, got {self.mode!r}")
        if self.decoder_layers < 1 or self.decoder_width % self.decoder_heads:
            raise ConfigError("objective.decoder_layers must be >= 1 and decoder_width divisible by decoder_heads")
        if self.distill_weight < 0:
            raise ConfigError("objective.distill_weight must be >= 0")
        if self.normalize_targets not in (False, True, "none", "layer", "instance"):
            raise ConfigError(f"objective.normalize_targets must be none, layer or instance (or a boolean), "
                              f"got {self.normalize_targets!r}")
        for i, pair in enumerate(self.distill_layers):
            if not isinstance(pair, dict) or "teacher" not in pair or set(pair) - {"teacher", "student", "weight"}:
                raise ConfigError(f"objective.distill_layers[{i}] must be a mapping with keys teacher (required), "
                                  f"student (default -1) and weight (default 1.0); got {pair!r}")
            bad = [k for k in ("teacher", "student") if k in pair and (isinstance(pair[k], bool) or not isinstance(pair[k], int))]
            if bad or not isinstance(pair.get("weight", 1.0), (int, float)) or pair.get("weight", 1.0) < 0:
                raise ConfigError(f"objective.distill_layers[{i}]: teacher/student must be integers and weight a "
                                  f"number >= 0; got {pair!r}")


def normalize_targets(target: torch.Tensor, visible: torch.Tensor, how: bool | str, eps: float = 1e-5) -> torch.Tensor:
    """Teacher targets ``[B, N, D]`` normalised as ``how`` says (see ``ObjectiveConfig.normalize_targets``).

    ``"instance"``: per sequence and dimension, mean and (biased) variance over the visible tokens
    (``visible [B, N]``) only, so hidden, special and padding tokens never shape a target; a sequence
    with one visible token gets zeros.
    """
    if how in (False, "none"):
        return target
    if how in (True, "layer"):
        return F.layer_norm(target, target.shape[-1:], eps=eps)
    vis = visible.unsqueeze(-1)                                                  # [B, N, 1]
    w = vis.to(target.dtype)
    count = w.sum(1, keepdim=True).clamp_min(1.0)                                # [B, 1, 1]
    target = torch.where(vis, target, 0.0)  # a non-finite value at a hidden token must not reach the statistics
    mean = target.sum(1, keepdim=True) / count
    var = ((target - mean).square() * w).sum(1, keepdim=True) / count
    return (target - mean) * torch.rsqrt(var + eps)


class CrossAttentionLayer(nn.Module):
    """Pre-norm ``q + CrossAttn(norm(q), norm(memory))`` then ``q + MLP(norm(q))``, rotary relative positions."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.q_norm, self.kv_norm, self.mlp_norm = RMSNorm(width), RMSNorm(width), RMSNorm(width)
        self.q_proj = nn.Linear(width, width, bias=False)
        self.kv_proj = nn.Linear(width, 2 * width, bias=False)
        self.o_proj = nn.Linear(width, width, bias=False)
        self.rotary = RotaryEmbedding(self.head_dim)
        self.mlp = GatedMLP(width, int(width * mlp_ratio))

    def forward(self, q: torch.Tensor, q_pos: torch.Tensor, memory: torch.Tensor, mem_pos: torch.Tensor,
                key_mask: torch.Tensor) -> torch.Tensor:
        """q: ``[B, M, W]`` at positions q_pos ``[B, M]``; memory: ``[B, L, W]``; key_mask: ``[B, L]`` bool."""
        B, M, W = q.shape
        L = memory.shape[1]
        qh = self.q_proj(self.q_norm(q)).view(B, M, self.heads, self.head_dim).transpose(1, 2)
        k, v = self.kv_proj(self.kv_norm(memory)).view(B, L, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        qh = apply_rotary(qh, *self.rotary(q_pos))
        k = apply_rotary(k, *self.rotary(mem_pos))
        o = F.scaled_dot_product_attention(qh, k, v, attn_mask=key_mask[:, None, None, :])
        q = q + self.o_proj(o.transpose(1, 2).reshape(B, M, W))
        return q + self.mlp(self.mlp_norm(q))


class ReconstructionDecoder(nn.Module):
    """Predicts masked nucleotides from visible features only.

    features: ``[B, L, D]``; visible, masked: ``[B, L]`` bool. Returns logits ``[n_masked, 5]`` for the
    masked positions in row-major order (the order of ``targets[masked]``).
    """

    def __init__(self, student_dim: int, width: int = 128, layers: int = 1, heads: int = 4, mlp_ratio: float = 2.0):
        super().__init__()
        self.in_proj = nn.Linear(student_dim, width) if student_dim != width else nn.Identity()
        self.mask_embedding = nn.Parameter(torch.randn(width) * 0.02)
        self.layers = nn.ModuleList([CrossAttentionLayer(width, heads, mlp_ratio) for _ in range(layers)])
        self.norm = RMSNorm(width)
        self.head = nn.Linear(width, NUM_NUCLEOTIDE_CLASSES)

    def forward(self, features: torch.Tensor, visible: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        B, L, _ = features.shape
        memory = self.in_proj(features)                                           # [B, L, W]
        counts = masked.sum(1)                                                    # [B]
        M = int(counts.max()) if B else 0
        # Masked positions of each row first (ascending), then filler: a stable sort on "not masked".
        order = (~masked).to(torch.int8).argsort(dim=1, stable=True)[:, :M]      # [B, M]
        slot_valid = torch.arange(M, device=features.device)[None, :] < counts[:, None]
        q = self.mask_embedding.expand(B, M, -1)                                  # [B, M, W]
        mem_pos = torch.arange(L, device=features.device).expand(B, L)
        key_mask = visible.clone()
        key_mask[key_mask.sum(1) == 0, 0] = True  # a row with nothing visible would give NaN; it has no queries
        for layer in self.layers:
            q = layer(q, order, memory, mem_pos, key_mask)
        return self.head(self.norm(q))[slot_valid]                                # [n_masked, 5]


class DistillationHead(nn.Module):
    """Student width -> teacher width: linear, or a small MLP (Linear-GELU-Linear)."""

    def __init__(self, student_dim: int, teacher_dim: int, kind: str = "linear"):
        super().__init__()
        if kind == "linear":
            self.net = nn.Linear(student_dim, teacher_dim)
        elif kind == "mlp":
            hidden = max(student_dim, teacher_dim)
            self.net = nn.Sequential(nn.Linear(student_dim, hidden), nn.GELU(), nn.Linear(hidden, teacher_dim))
        else:
            raise ValueError(f"distill_head must be 'linear' or 'mlp', got {kind!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def span_mean_pool(features: torch.Tensor, token_index: torch.Tensor, valid: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """Average features over each token's span. features ``[B, L, D]``, token_index/valid ``[B, L]`` -> ``[B, N, D]``."""
    B, L, D = features.shape
    w = valid.to(features.dtype)[..., None]                                        # [B, L, 1]
    sums = features.new_zeros(B, num_tokens, D).scatter_add_(1, token_index[..., None].expand(B, L, D), features * w)
    counts = features.new_zeros(B, num_tokens, 1).scatter_add_(1, token_index[..., None], w)
    return sums / counts.clamp_min(1.0)


def objective_counts(batch: MaskedBatch) -> dict[str, torch.Tensor]:
    """The normalisers of a batch (int64 scalars): ``masked_nt`` (masked nucleotides) and
    ``visible_tokens`` (real, unmasked teacher tokens covering nucleotides). Known before any forward pass."""
    return {"masked_nt": batch.masked.sum(), "visible_tokens": batch.visible_tokens.sum()}


def _normaliser(totals: dict[str, torch.Tensor | float], key: str, like: torch.Tensor) -> torch.Tensor:
    """``totals[key]`` as a float32 scalar on ``like``'s device, at least 1 (an empty batch gives 0, not NaN)."""
    return torch.as_tensor(totals[key], dtype=torch.float32, device=like.device).clamp_min(1.0)


@dataclass
class PretrainOutput:
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]  # detached scalars: recon_loss, recon_acc, distill_loss, mlm_loss, mlm_acc, ...


class HadPretrainingModel(nn.Module):
    """The student plus the training-only heads its mode needs."""

    def __init__(self, student: HadModel, objective: ObjectiveConfig, teacher_dim: int | None = None):
        """teacher_dim: the width of ONE teacher layer (teacher features are ``[B, N, K * teacher_dim]`` for
        K distilled pairs)."""
        from .errors import ConfigError

        super().__init__()
        objective.validate()
        self.objective = objective
        self.student = student
        d = student.config.hidden_size
        n_states = len(student.layers) + 1
        self.pairs = objective.layer_pairs()
        for _, s, _ in self.pairs:
            if not -n_states <= s < n_states:
                raise ConfigError(f"objective.distill_layers: student layer {s} out of range: the student has "
                                  f"{n_states - 1} blocks, so valid layers are 0..{n_states - 1} or -1..-{n_states}")
        self._student_layers = [s % n_states for _, s, _ in self.pairs]
        self._last = n_states - 1
        self.decoder = (ReconstructionDecoder(d, objective.decoder_width, objective.decoder_layers,
                                              objective.decoder_heads, objective.decoder_mlp_ratio)
                        if objective.uses_decoder else None)
        if objective.uses_teacher:
            if teacher_dim is None:
                raise ValueError(f"mode {objective.mode!r} distils from a teacher: teacher_dim is required")
            self.distill_head = DistillationHead(d, teacher_dim, objective.distill_head)
            # one more head per extra pair (absent for the default single pair: unchanged parameter names)
            self.extra_distill_heads = (nn.ModuleList(DistillationHead(d, teacher_dim, objective.distill_head)
                                                      for _ in self.pairs[1:]) if len(self.pairs) > 1 else None)
        else:
            self.distill_head = None
            self.extra_distill_heads = None
        self.lm_head = HadLMHead(student.config) if objective.mode == "mlm" else None

    def forward(self, batch: MaskedBatch, teacher_features: torch.Tensor | None = None,
                totals: dict[str, torch.Tensor | float] | None = None) -> PretrainOutput:
        """batch: a :class:`MaskedBatch`; teacher_features: ``[B, N, D_t]`` of the masked teacher input.

        totals: normalisers (keys of :func:`objective_counts`) summed over the whole step; None = this
        batch's own, which makes every loss and accuracy a plain mean over this batch.
        """
        need_states = self.distill_head is not None and any(s != self._last for s in self._student_layers)
        out = self.student(batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=need_states)
        features = out.last_hidden_state                                            # [B, L, D]
        if totals is None:
            totals = objective_counts(batch)
        metrics: dict[str, torch.Tensor] = {}
        loss = features.new_zeros((), dtype=torch.float32)
        metrics["masked_nt"] = batch.masked.sum().detach().float()
        if self.decoder is not None or self.lm_head is not None:
            n_masked = _normaliser(totals, "masked_nt", features)
        if self.decoder is not None:
            logits = self.decoder(features, batch.visible, batch.masked)         # [n_masked, 5]
            target = batch.targets[batch.masked] - vocab.A_ID                    # A C G T N -> 0..4
            recon = self._ce_sum(logits, target) / n_masked
            loss = loss + recon
            metrics["recon_loss"] = recon.detach()
            metrics["recon_acc"] = (logits.argmax(-1) == target).sum().detach() / n_masked
        if self.lm_head is not None:
            logits = self.lm_head(features[batch.masked])                         # [n_masked, V]
            target = batch.targets[batch.masked]
            mlm = self._ce_sum(logits, target) / n_masked
            loss = loss + mlm
            metrics["mlm_loss"] = mlm.detach()
            metrics["mlm_acc"] = (logits.argmax(-1) == target).sum().detach() / n_masked
        if self.distill_head is not None:
            if teacher_features is None:
                raise ValueError(f"mode {self.objective.mode!r} needs teacher features")
            heads = [self.distill_head] + list(self.extra_distill_heads or [])
            K = len(heads)
            if teacher_features.shape[-1] % K:
                raise ValueError(f"teacher features of width {teacher_features.shape[-1]} cannot hold {K} layers")
            width_k = teacher_features.shape[-1] // K
            distill = features.new_zeros((), dtype=torch.float32)
            for k, (head, s_index, (t_layer, s_layer, weight)) in enumerate(zip(heads, self._student_layers, self.pairs)):
                feats = features if s_index == self._last else out.hidden_states[s_index]
                target = teacher_features[..., k * width_k:(k + 1) * width_k]
                sq_sum, width = self.distillation_sum(feats, batch, target, head)
                part = sq_sum / (_normaliser(totals, "visible_tokens", features) * width)
                distill = distill + weight * part
                if K > 1:
                    metrics[f"distill_loss_t{t_layer}_s{s_layer}"] = part.detach()
            loss = loss + self.objective.distill_weight * distill
            metrics["distill_loss"] = distill.detach()
        metrics["loss"] = loss.detach()
        return PretrainOutput(loss=loss, metrics=metrics)

    @staticmethod
    def _ce_sum(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # logits.sum() * 0 keeps every head parameter in the graph when nothing is masked (DDP needs that).
        return F.cross_entropy(logits.float(), target, reduction="sum") if target.numel() else logits.sum() * 0

    def distillation_sum(self, features: torch.Tensor, batch: MaskedBatch, teacher_features: torch.Tensor,
                         head: nn.Module | None = None) -> tuple[torch.Tensor, int]:
        """(sum of squared errors over visible teacher tokens and feature dimensions, teacher width).

        features ``[B, L, D]`` (one student layer), teacher_features ``[B, N, D_t]`` (one teacher layer);
        head: the projection (default: the first pair's)."""
        head = self.distill_head if head is None else head
        N = batch.span_len.shape[1]
        if teacher_features.shape[:2] != (features.shape[0], N):
            raise ValueError(f"teacher features {tuple(teacher_features.shape)} do not match the batch's "
                             f"{features.shape[0]} sequences x {N} teacher tokens")
        pooled = span_mean_pool(features, batch.token_index, batch.visible, N)   # [B, N, D]
        visible = batch.visible_tokens                                           # [B, N]
        pred = head(pooled[visible])                                             # [n_vis, D_t]
        target = normalize_targets(teacher_features.to(pred.device).float(), visible,
                                   self.objective.normalize_targets)[visible]
        if pred.numel() == 0:
            return pred.sum() * 0, int(teacher_features.shape[-1])
        return (pred.float() - target).square().sum(), int(teacher_features.shape[-1])

    def distillation_loss(self, features: torch.Tensor, batch: MaskedBatch, teacher_features: torch.Tensor) -> torch.Tensor:
        """MSE over visible teacher tokens (mean over tokens and feature dimensions)."""
        sq_sum, width = self.distillation_sum(features, batch, teacher_features)
        return sq_sum / (_normaliser(objective_counts(batch), "visible_tokens", features) * width)
