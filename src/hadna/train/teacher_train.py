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

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import GenomeWindows
from ..errors import ConfigError
from ..teachers.nt_tokens import NT_CLS_ID, NT_KMER_OFFSET, NT_KMERS, NT_MASK_ID, NT_VOCAB_SIZE, nt_tokenize_batch
from ..utils.logging import get_logger
from .checkpoint import CheckpointManager
from .config import MlmSection, TeacherTrainConfig, compat_dict
from .distributed import DistEnv, barrier, init_distributed, load_windows, shutdown_distributed
from .samples import mask_seeds
from .trainer import Trainer, TrainResult

if TYPE_CHECKING:
    import transformers

log = get_logger("train.teacher")

IGNORE_INDEX = -100          # label of tokens that are not prediction targets (PyTorch's cross-entropy default)
_MLM_STREAM = 0x6E746D6C6D   # "ntmlm": keeps this recipe's masks apart from HAD's two-stage masks of the same seeds
FREQ_BASELINE_WINDOWS = 2048  # training windows whose token counts give the frequency baseline (~340k tokens at 1 kb)


def window_token_bound(window_length: int, max_n_fraction: float) -> int:
    """The most NT tokens (``<cls>`` included) a window of ``window_length`` bases with at most
    ``floor(max_n_fraction * window_length)`` N's can tokenise to.

    ``k`` N's split the A/C/G/T bases into at most ``k + 1`` runs; a run of ``r`` bases gives
    ``r // 6 + r % 6 <= (r + 25) / 6`` tokens, so the total is at most ``1 + k + (L - k + 25 (k + 1)) / 6``
    = ``1 + (L + 30 k + 25) / 6``: about L / 6 plus a margin that grows with the allowed N's.
    """
    k = math.floor(max_n_fraction * window_length + 1e-9)  # as GenomeWindows rounds it
    return 1 + (window_length + 30 * k + 25) // 6


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
    from ..teachers.nt_tokens import NT_PAD_ID
    from ..teachers.random_nt import nt_esm_config

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


# ----------------------------------------------------------------------------- running and exporting
def run_teacher_train(cfg: TeacherTrainConfig, resume: bool = False, output_dir: str | None = None) -> TrainResult:
    """Everything ``hadna teacher-train`` does: set up (DDP under torchrun), train, export ``final/``.

    The output directory is locked for the whole run: a second process writing into it stops at once.
    """
    from ..utils.io import lock_directory

    if output_dir is not None:
        cfg.train.output_dir = output_dir
    with lock_directory(cfg.train.output_dir, clean=("final",)):  # and a final/ export of a killed run goes
        return _run_teacher_train(cfg, resume)


def _run_teacher_train(cfg: TeacherTrainConfig, resume: bool) -> TrainResult:
    from .pretrain import check_inputs, write_run_config

    cfg.validate()
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    check_inputs(cfg, need_teacher=False)  # resolves hadna: paths; one-line errors for missing FASTA/BED
    ckpts = CheckpointManager(Path(cfg.train.output_dir) / "checkpoints")
    existing = ckpts.list()
    if existing and not resume:  # fail before reading the genome
        raise ConfigError(f"{ckpts.root} already holds checkpoints (newest: {existing[-1][1].name}); pass --resume "
                          "to continue that run, or choose another --output-dir")
    env = init_distributed(cfg.train.device)
    if not env.is_main:
        logging.getLogger("hadna").setLevel(logging.WARNING)
    try:
        cfg.train.check_world_size(env.world_size)
        out = Path(cfg.train.output_dir)
        if env.is_main:
            out.mkdir(parents=True, exist_ok=True)
        task = TeacherTraining(cfg, env)
        trainer = task.build_trainer()
        if env.is_main and not resume:
            write_run_config(cfg, out)
        result = trainer.fit(resume=resume)
        if env.is_main:
            export_teacher(task, result, result.initial_val_metrics or None)
        barrier(env)
        return result
    finally:
        shutdown_distributed(env)


def summary(task: TeacherTraining, result: TrainResult, initial_val: dict[str, float] | None = None) -> dict[str, Any]:
    """training_summary.json content."""
    from ..config import to_dict

    cfg = task.cfg
    return {"recipe": "teacher-train", "steps": result.step, "resumed_from": result.resumed_from,
            "elapsed_s": round(result.elapsed_s, 1), "world_size": task.env.world_size,
            "nucleotides_seen": result.step * task.tokens_per_step, "parameters": task.num_parameters,
            "max_tokens": task.max_tokens, "initial_val_metrics": initial_val,
            "final_train_metrics": result.metrics, "final_val_metrics": result.val_metrics,
            "config": json.loads(json.dumps(to_dict(cfg), default=str)),
            "checkpoint": str(result.checkpoint) if result.checkpoint else None, "torch": torch.__version__}


def export_teacher(task: TeacherTraining, result: TrainResult, initial_val: dict[str, float] | None = None) -> Path:
    """Write ``<output_dir>/final/``: EsmForMaskedLM (safetensors), NT tokenizer, README.md, training_summary.json.

    Built in a temporary directory next to it and renamed into place, so a crash never leaves half a model.
    """
    from ..teachers.random_nt import nt_tokenizer
    from ..utils.io import atomic_directory, atomic_write_json

    out = Path(result.output_dir) / "final"
    with atomic_directory(out) as tmp:
        task.model.mlm.save_pretrained(tmp)
        nt_tokenizer(task.max_tokens).save_pretrained(tmp)
        info = summary(task, result, initial_val)
        atomic_write_json(tmp / "training_summary.json", info)
        (tmp / "README.md").write_text(model_card(task, info))
    log.info("wrote the teacher to %s", out)
    return out


def _metric_rows(values: dict | None) -> str:
    if not values:
        return "| (none) | |"
    return "\n".join(f"| {k} | {v:.4f} |" for k, v in values.items())


def model_card(task: TeacherTraining, info: dict) -> str:
    cfg, m, mlm = task.cfg, task.cfg.model, task.cfg.mlm
    unchanged = 1.0 - mlm.mask_token_prob - mlm.random_token_prob
    fasta = ", ".join(f"`{Path(p).name}`" for p in cfg.data.fasta)
    bed = f", restricted to `{Path(cfg.data.bed).name}`" if cfg.data.bed else ""
    return f"""---
library_name: transformers
tags: [dna, genomics, hadna, nucleotide-transformer, masked-language-modelling]
---

# hadna NT-style teacher ({m.num_layers} layers, width {m.hidden_size})

A {info['parameters']:,}-parameter DNA masked language model in the Nucleotide Transformer format:
a transformers `EsmForMaskedLM` ({m.num_layers} layers, hidden size {m.hidden_size}, {m.num_heads} heads,
feed-forward {m.intermediate_size}, rotary positions, final layer norm) over NT's 4,107-token vocabulary
(4,096 non-overlapping 6-mers, single nucleotides A C G T N, and `<unk> <pad> <mask> <cls> <eos> <bos>`).
Like NT's tokenizer, `<cls>` is prepended and no end token is added. It was trained from scratch by `hadna teacher-train`; no NT weights were used.
It is a stand-in teacher for HAD distillation (`hadna pretrain` with `teacher.path` set to this directory), not a
reproduction of NTv2 (which has 500M parameters, gated feed-forward blocks and multi-species training).

```python
from hadna.teachers import Teacher                       # frozen feature extractor for distillation
teacher = Teacher.from_pretrained("path/to/final")
from transformers import AutoModelForSequenceClassification, AutoTokenizer   # plain transformers, no remote code
model = AutoModelForSequenceClassification.from_pretrained("path/to/final", num_labels=2)
tokenizer = AutoTokenizer.from_pretrained("path/to/final")
```

The tokenizer's `model_max_length` is {task.max_tokens} tokens (`<cls>` included), enough for any
{cfg.data.window_length}-bp training window; rotary positions accept longer inputs, but the model never saw them.

## Training

| | |
|---|---|
| data | {fasta}{bed}; windows of {cfg.data.window_length} bp (at most {100 * cfg.data.max_n_fraction:g}% N), reverse-complement augmentation {'on' if cfg.data.rc_augment else 'off'}; validation on held-out windows |
| objective | masked language modelling: {mlm.mask_ratio:.0%} of each window's tokens (never `<cls>`/padding) are targets; {mlm.mask_token_prob:.0%} become `<mask>`, {mlm.random_token_prob:.0%} a random 6-mer, {unchanged:.0%} stay unchanged |
| steps | {info['steps']:,} x {cfg.train.batch_size} windows = {info['nucleotides_seen']:,} nucleotides |
| optimiser | AdamW, lr {cfg.optim.lr:g}, warm-up {cfg.optim.warmup_steps}, cosine to {cfg.optim.min_lr_ratio:g} x lr, weight decay {cfg.optim.weight_decay:g} |

Validation (fixed held-out windows, fixed masks; loss in nats per target token, uniform guessing = {math.log(NT_VOCAB_SIZE):.2f}):

| before training | |
|---|---|
{_metric_rows(info['initial_val_metrics'])}

| after training | |
|---|---|
{_metric_rows(info['final_val_metrics'])}

Full settings: `training_summary.json`.

## Intended use

A teacher for distilling hadna students, and a baseline for DNA sequence tasks. It is a small research model trained
on {fasta} only: it was not evaluated for, and must not be used for, clinical or diagnostic decisions.

## Licence

Trained from scratch by hadna (Apache-2.0 code); no third-party weights are involved. The terms of the training data
({fasta}) apply.
"""


__all__ = ["IGNORE_INDEX", "MlmBatch", "NTMaskedLM", "TeacherTraining", "export_teacher", "max_tokens", "mlm_batch",
           "mlm_mask", "model_card", "run_teacher_train", "summary", "teacher_esm_config", "window_token_bound"]
