"""Training an NT-style 6-mer teacher by masked language modelling (``hadna teacher-train``).

NTv2's weights cannot be downloaded offline, and a user may want a teacher of their own genome. This
recipe trains one on the generic :class:`~hadna.train.trainer.Trainer` (checkpoints, exact resume,
NaN stop, DDP, progress bar, metric CSVs, validation), so it behaves like ``hadna pretrain``.

* Model: a transformers ``EsmForMaskedLM`` built by :func:`hadna.teachers.nt_esm_config` (rotary
  positions, NT's 4,107-token vocabulary and special ids, no end token). The saved ``final/`` loads
  with core transformers like any NT v1 checkpoint: no remote code.
* Data: the pre-training genome windows (:class:`~hadna.data.GenomeWindows`, RC augmentation),
  tokenised by :func:`~hadna.teachers.nt_tokenize_batch` (``<cls>`` first, no end token).
* Objective: BERT's MLM over NT tokens. Each window's real tokens except ``<cls>`` are candidates;
  ``round(mask_ratio * n)`` (at least 1) are chosen uniformly; of those, a fraction becomes
  ``<mask>``, a fraction a random 6-mer and the rest stay unchanged (80/10/10 by default). The choice
  comes from a NumPy generator seeded by (train seed, global sample index), so a sample's mask does
  not depend on batch, rank or process: DDP and resume are exact. The loss is the summed
  cross-entropy of the targets divided by the step's GLOBAL target count (the trainer's ``count_fn``
  totals), so ranks and micro-batches add up to the single-process loss.
* Validation: loss and accuracy on the fixed held-out windows with fixed masks (a separate seed
  stream), computed before the first step and at the trainer's cadence, next to the frequency
  baseline (``freq_baseline_loss``): the cross-entropy of the same targets under the token
  frequencies of the first :data:`FREQ_BASELINE_WINDOWS` training windows (add-half smoothing). A
  teacher whose ``val_loss`` is not clearly below it has learnt little more than 6-mer frequencies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import GenomeWindows
from ..teachers.nt_tokens import (NT_CLS_ID, NT_KMER_OFFSET, NT_KMERS, NT_MASK_ID, NT_PAD_ID, NT_VOCAB_SIZE,
                                  nt_tokenize_batch, window_token_bound)
from ..teachers.random_nt import nt_esm_config
from .config import MlmSection, TeacherTrainConfig, compat_dict
from .distributed import DistEnv, load_windows
from .export import export_teacher
from .launch import launch
from .samples import mask_seeds
from .trainer import Trainer, TrainResult

if TYPE_CHECKING:
    import transformers


IGNORE_INDEX = -100          # label of tokens that are not prediction targets (PyTorch's cross-entropy default)
_MLM_STREAM = 0x6E746D6C6D   # "ntmlm": keeps this recipe's masks apart from HAD's two-stage masks of the same seeds
FREQ_BASELINE_WINDOWS = 2048  # training windows whose token counts give the frequency baseline (~340k tokens at 1 kb)


# ----------------------------------------------------------------------------- masking
def mlm_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor, seeds: Sequence[int],
             mlm: MlmSection) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style corruption of canonical NT tokens.

    input_ids, attention_mask: ``[B, N]`` (``<cls>`` first, right padding); seeds: one 64-bit seed per row.
    Returns ``(corrupted_ids, labels)``, both ``[B, N]``: ``labels`` holds the original id at the
    chosen targets and :data:`IGNORE_INDEX` elsewhere (``<cls>`` and padding are never targets).
    """
    if len(seeds) != input_ids.shape[0]:
        raise ValueError(f"need one seed per sequence: got {len(seeds)} seeds for {input_ids.shape[0]} sequences")
    ids = input_ids.detach().cpu().numpy().copy()
    candidates = attention_mask.detach().cpu().numpy().astype(bool) & (ids != NT_CLS_ID)
    labels = np.full_like(ids, IGNORE_INDEX)
    p_mask, p_random = mlm.mask_token_prob, mlm.mask_token_prob + mlm.random_token_prob
    for b, seed in enumerate(seeds):
        pos = np.flatnonzero(candidates[b])
        if pos.size == 0:
            continue
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, _MLM_STREAM])
        k = min(max(int(math.floor(mlm.mask_ratio * pos.size + 0.5)), 1), pos.size)  # round half up, >= 1
        chosen = np.sort(rng.choice(pos, size=k, replace=False))
        u = rng.random(k)  # one draw per target decides mask / random / unchanged
        random_kmers = NT_KMER_OFFSET + rng.integers(0, len(NT_KMERS), size=k)
        labels[b, chosen] = ids[b, chosen]
        ids[b, chosen[u < p_mask]] = NT_MASK_ID
        swap = (u >= p_mask) & (u < p_random)
        ids[b, chosen[swap]] = random_kmers[swap]
    return torch.from_numpy(ids), torch.from_numpy(labels)


@dataclass
class MlmBatch:
    """One micro-batch, all ``[B, N]`` int64: corrupted ``input_ids``, ``attention_mask``, ``labels``; and the
    sample ``indices`` ``[B]`` it was built from."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    indices: np.ndarray

    def to(self, device: torch.device | str) -> "MlmBatch":
        return MlmBatch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device), self.indices)

    @property
    def num_targets(self) -> torch.Tensor:
        return (self.labels != IGNORE_INDEX).sum()


def mlm_batch(windows: torch.Tensor, seeds: Sequence[int], mlm: MlmSection, indices: np.ndarray) -> MlmBatch:
    """windows: LongTensor ``[B, L]`` of student ids (A C G T N) -> their tokenised, corrupted batch."""
    toks = nt_tokenize_batch(windows)
    ids, labels = mlm_mask(toks.input_ids, toks.attention_mask, seeds, mlm)
    return MlmBatch(ids, toks.attention_mask, labels, indices)


# ----------------------------------------------------------------------------- model
def teacher_esm_config(cfg: TeacherTrainConfig) -> "transformers.EsmConfig":
    """The EsmConfig of the teacher this config trains (``max_position_embeddings`` is only recorded: rotary)."""
    m = cfg.model
    # ESM reserves position ids up to pad_token_id for absolute embeddings; recorded the same way as NT does
    return nt_esm_config(m.hidden_size, m.num_layers, m.num_heads, m.intermediate_size,
                         max_tokens(cfg) + NT_PAD_ID + 1)


def max_tokens(cfg: TeacherTrainConfig) -> int:
    """The tokenizer's ``model_max_length``: ``model.max_tokens`` or the window's bound."""
    return cfg.model.max_tokens or window_token_bound(cfg.data.window_length, cfg.data.max_n_fraction)


class NTMaskedLM(nn.Module):
    """``EsmForMaskedLM`` plus the MLM loss, computed on the target tokens only.

    The vocabulary projection (4,107 wide) is the costliest matmul of a small teacher; running the LM
    head on the ~15% of tokens that are targets (instead of all of them, as ``EsmForMaskedLM.forward``
    does) gives the same loss for a fraction of the work. ESM's contact-prediction head is unused by
    MLM; it is frozen so that DDP does not wait for its gradients.
    """

    def __init__(self, config: "transformers.EsmConfig"):
        super().__init__()
        from transformers import EsmForMaskedLM

        self.mlm = EsmForMaskedLM(config)
        contact = getattr(self.mlm.esm, "contact_head", None)
        if contact is not None:
            contact.requires_grad_(False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """input_ids, attention_mask, labels: ``[B, N]`` -> (summed cross-entropy, number correct) over the targets."""
        hidden = self.mlm.esm(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [B, N, D]
        target = labels != IGNORE_INDEX
        logits = self.mlm.lm_head(hidden[target]).float()  # [M, V]
        gold = labels[target]
        loss_sum = F.cross_entropy(logits, gold, reduction="sum")
        correct = (logits.detach().argmax(-1) == gold).sum()
        return loss_sum, correct


# ----------------------------------------------------------------------------- the recipe
class TeacherTraining:
    """The teacher recipe's batch source, step, validation and model (see the module docstring).

    windows: prebuilt data (tests); otherwise built from ``cfg.data`` (rank 0 first, which writes the cache).
    """

    def __init__(self, cfg: TeacherTrainConfig, env: DistEnv | None = None, windows: GenomeWindows | None = None):
        self.cfg, self.env = cfg, env or DistEnv()
        self.windows = windows if windows is not None else load_windows(cfg.data, self.env)
        self.val_ids = self.windows.val_windows()
        self.esm_config = teacher_esm_config(cfg)
        self.max_tokens = max_tokens(cfg)
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank and every run
        self.model = NTMaskedLM(self.esm_config)
        self._val_batches: list[MlmBatch] | None = None
        self._freq_baseline: float | None = None

    @property
    def tokens_per_step(self) -> int:
        """Nucleotides per step (the nt/s figure counts bases, as for the student)."""
        return self.cfg.train.batch_size * self.cfg.data.window_length

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.mlm.parameters())

    # ------------------------------------------------------------------ batches
    def sample_indices(self, step: int, rank: int, world_size: int) -> np.ndarray:
        B = self.cfg.train.batch_size
        per = B // world_size
        return step * B + rank * per + np.arange(per, dtype=np.int64)

    def make_batch(self, indices: np.ndarray) -> MlmBatch:
        ids, _, _ = self.windows.sample_ids(indices)
        return mlm_batch(torch.from_numpy(ids.astype(np.int64)), mask_seeds(self.cfg.train.seed, indices),
                         self.cfg.mlm, indices)

    def batch_fn(self, step: int, rank: int, world_size: int, num_micro: int) -> list[MlmBatch]:
        idx = self.sample_indices(step, rank, world_size)
        return [self.make_batch(part) for part in np.array_split(idx, num_micro)]

    @staticmethod
    def count_fn(mb: MlmBatch) -> dict[str, torch.Tensor]:
        return {"mlm_tokens": mb.num_targets}

    def step_fn(self, model: nn.Module, mb: MlmBatch, totals: dict[str, torch.Tensor]):
        mb = mb.to(self.env.device)
        loss_sum, correct = model(mb.input_ids, mb.attention_mask, mb.labels)
        n = totals["mlm_tokens"].to(loss_sum.device).clamp_min(1.0)
        return loss_sum / n, {"mlm_acc": correct / n, "mlm_tokens": mb.num_targets}

    # ------------------------------------------------------------------ validation
    def val_batches(self) -> list[MlmBatch]:
        """The fixed validation micro-batches (forward strand, masks seeded by validation index; built once)."""
        if self._val_batches is None:
            cfg = self.cfg
            per_micro = cfg.train.batch_size // (self.env.world_size * cfg.train.grad_accum_steps)
            bs = cfg.train.val_batch_size or max(per_micro, 1)
            n = self.val_ids.shape[0]
            self._val_batches = []
            for s in range(0, n, bs):
                idx = np.arange(s, min(s + bs, n), dtype=np.int64)
                self._val_batches.append(mlm_batch(self.val_ids[torch.from_numpy(idx)],
                                                   mask_seeds(cfg.train.seed, idx, validation=True), cfg.mlm, idx))
        return self._val_batches

    def val_fn(self, model: nn.Module) -> dict[str, float]:
        """Exact loss and accuracy over all validation targets (not a mean of batch means)."""
        batches = self.val_batches()
        total = sum(int(mb.num_targets) for mb in batches)
        if total == 0:
            return {}
        loss_sum = correct = 0.0
        for mb in batches:
            mb = mb.to(self.env.device)
            s, c = model(mb.input_ids, mb.attention_mask, mb.labels)
            loss_sum += float(s)
            correct += float(c)
        return {"val_loss": loss_sum / total, "mlm_acc": correct / total,
                "freq_baseline_loss": self.frequency_baseline()}

    def frequency_baseline(self, num_windows: int = FREQ_BASELINE_WINDOWS) -> float:
        """Cross-entropy (nats per target) of the validation targets under training-token frequencies.

        Counts every real token (not ``<cls>``/padding) of the first ``num_windows`` training samples (as
        drawn for training, RC augmentation included), add-half smoothing over the whole vocabulary. Computed
        once per run; the same on every rank.
        """
        if self._freq_baseline is None:
            counts = np.full(NT_VOCAB_SIZE, 0.5)
            for s in range(0, num_windows, 256):
                ids, _, _ = self.windows.sample_ids(np.arange(s, min(s + 256, num_windows), dtype=np.int64))
                toks = nt_tokenize_batch(torch.from_numpy(ids.astype(np.int64)))
                real = toks.input_ids[toks.attention_mask.bool() & (toks.input_ids != NT_CLS_ID)]
                counts += np.bincount(real.numpy(), minlength=NT_VOCAB_SIZE)
            logp = np.log(counts / counts.sum())
            gold = torch.cat([mb.labels[mb.labels != IGNORE_INDEX] for mb in self.val_batches()]).numpy()
            self._freq_baseline = float(-logp[gold].mean()) if gold.size else float("nan")
        return self._freq_baseline

    # ------------------------------------------------------------------ trainer
    def compat(self) -> dict[str, Any]:
        cfg = self.cfg
        m = cfg.model
        return {"recipe": "teacher-train",
                "model": {"hidden_size": m.hidden_size, "num_layers": m.num_layers, "num_heads": m.num_heads,
                          "intermediate_size": m.intermediate_size, "vocab_size": NT_VOCAB_SIZE},
                "mlm": compat_dict(cfg.mlm), "window_length": cfg.data.window_length,
                "data_seed": cfg.data.seed, "train_seed": cfg.train.seed}

    def build_trainer(self) -> Trainer:
        cfg = self.cfg
        return Trainer(self.model, cfg.train, cfg.optim, self.env, batch_fn=self.batch_fn, step_fn=self.step_fn,
                       count_fn=self.count_fn, val_fn=self.val_fn if self.val_ids.shape[0] else None,
                       tokens_per_step=self.tokens_per_step, compat=self.compat(), name="teacher-train")


# ----------------------------------------------------------------------------- running
def run_teacher_train(cfg: TeacherTrainConfig, resume: bool = False, output_dir: str | None = None) -> TrainResult:
    """Everything ``hadna teacher-train`` does: set up (DDP under torchrun), train, export ``final/``
    (:func:`hadna.train.launch.launch` with :func:`hadna.train.export.export_teacher`)."""
    return launch(cfg, lambda env: TeacherTraining(cfg, env), export_teacher, resume=resume, output_dir=output_dir)


__all__ = ["FREQ_BASELINE_WINDOWS", "IGNORE_INDEX", "MlmBatch", "NTMaskedLM", "TeacherTraining", "max_tokens",
           "mlm_batch", "mlm_mask", "run_teacher_train", "teacher_esm_config"]
