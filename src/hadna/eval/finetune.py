"""Fine-tuning one model on one (train, validation) pair with early stopping on the validation metric.

Recipe (each choice recorded in the run JSON):

* AdamW (``weight_decay`` 0.01 on every weight), linear warm-up over ``warmup_ratio`` (10%) of the
  planned steps, then cosine (or linear) decay to 0 over the planned ``epochs`` (early stopping ends
  the run sooner, it does not compress the schedule); gradient norm clipped to ``grad_clip`` (1.0).
  Cross-entropy on the logits. On a CPU a batch over :data:`~hadna.utils.batching.CPU_BATCH_NT` padded
  nucleotides runs as micro-batches with gradient accumulation (:func:`~hadna.utils.batching.micro_batches`):
  the same step up to fp32 rounding, faster (``docs/design.md`` section 9).
* Data order: a permutation per (seed, epoch) from NumPy's PCG64, so a seed always gives the same
  batches. Sequences of different lengths are grouped: each window of ``bucket_batches`` batches
  of the permutation is sorted by length and cut into batches, and the batch order is shuffled
  again. Padding is masked inside the models, so this only removes wasted compute; for fixed-length
  tasks (most benchmarks) it changes nothing.
* Reverse-complement augmentation (``rc_augment``): each training sequence is replaced by its
  reverse complement with probability 1/2, drawn per (seed, epoch).
* After every epoch the whole validation set is predicted and the task's primary metric computed
  (never per batch). The best epoch is the one with the highest metric, ties broken by the lower
  validation loss, then the earlier epoch. Its weights are kept in memory (a CPU copy) and loaded
  back at the end. ``patience``: stop after that many epochs without improvement (``None``: never).
* The test set is not seen here: :mod:`hadna.eval.protocol` evaluates it once, with the best weights.
* ``checkpoint_dir``: the run's state is saved there after every epoch and a rerun resumes after the last
  saved epoch, taking the same steps as an uninterrupted run (:mod:`hadna.eval.finetune_checkpoint`).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, TrainingError
from ..utils.batching import micro_batches
from ..utils.logging import format_duration, get_logger, progress
from ..utils.schedule import warmup_decay
from ..utils.weights import weights_digest
from .finetune_checkpoint import EpochCheckpoint
from .inference import Throughput, embed_sequences, predict_logits
from .metrics import compute_metrics
from .models import EvalModel
from .options import FINETUNE_SETTINGS_ADDED
from .probe import DEFAULT_C_GRID, fit_probe, probe_as_linear
from .task_data import Split

log = get_logger("eval.finetune")

Schedule = Literal["cosine", "linear", "constant"]
HeadInit = Literal["random", "probe"]


@dataclass
class FinetuneConfig:
    """Hyper-parameters of one fine-tuning run (one grid point)."""

    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: Schedule = "cosine"
    grad_clip: float | None = 1.0
    patience: int | None = 3
    rc_augment: bool = False
    rc_test: bool = False  # reverse-complement averaging when predicting (validation and test alike)
    eval_batch_size: int = 256
    bucket_batches: int = 32
    head_init: HeadInit = "random"  # "probe": LP-FT, the head starts as the linear probe of the frozen encoder
    backbone_lr_ratio: float = 1.0  # encoder lr = lr x this (0 freezes the encoder: only the head trains)
    probe_c_grid: list[float] = field(default_factory=lambda: list(DEFAULT_C_GRID))  # for head_init="probe"
    # Dropout on the pooled features the head reads. None: the model's own (hadna: classifier_dropout 0.1)
    # with a random head, 0 with head_init="probe" (resolved here, so the record says what ran): dropout on the
    # input of a head fitted without it undoes the probe before the first step (docs/design.md section 9).
    head_dropout: float | None = None

    def __post_init__(self) -> None:  # (dataclasses.replace keeps a resolved 0.0: set head_dropout with head_init)
        if self.head_dropout is None and self.head_init == "probe":
            self.head_dropout = 0.0

    def validate(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("batch sizes must be >= 1")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.schedule not in ("cosine", "linear", "constant"):
            raise ConfigError(f"schedule must be cosine, linear or constant, got {self.schedule!r}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 (or null in a config, --patience 0 on the command line, for "
                              f"no early stopping), got {self.patience}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"grad_clip must be > 0 (or null), got {self.grad_clip}")
        if self.bucket_batches < 1:
            raise ConfigError(f"bucket_batches must be >= 1, got {self.bucket_batches}")
        if self.head_init not in ("random", "probe"):
            raise ConfigError(f"head_init must be random or probe, got {self.head_init!r}")
        if not self.backbone_lr_ratio >= 0:
            raise ConfigError(f"backbone_lr_ratio must be >= 0, got {self.backbone_lr_ratio}")
        if self.head_dropout is not None and not 0 <= self.head_dropout < 1:
            raise ConfigError(f"head_dropout must be in [0, 1) (or null: the model's own), got {self.head_dropout}")


# ------------------------------------------------------------------------------------------------
# Pieces
# ------------------------------------------------------------------------------------------------

def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int, bucket_batches: int) -> list[np.ndarray]:
    """Training batches (index arrays) of one epoch, deterministic in (seed, epoch).

    lengths: ``[N]`` sequence lengths. Every index appears exactly once.
    """
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(len(lengths))
    if lengths.size == 0 or lengths.min() == lengths.max():
        return [perm[i:i + batch_size] for i in range(0, len(perm), batch_size)]
    window = batch_size * bucket_batches
    batches = []
    for w in range(0, len(perm), window):
        part = perm[w:w + window]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def optimiser_steps(n_train: int, batch_size: int, epochs: int) -> int:
    """Optimiser steps of a fine-tune run to its epoch cap: one per batch (micro-batches accumulate into it)."""
    return math.ceil(n_train / batch_size) * epochs


def lr_lambda(schedule: Schedule, warmup_steps: int, total_steps: int):
    """Multiplier of the base learning rate at step ``s`` (0-based, before the optimiser step): warm-up, then
    ``schedule`` decay to 0 at ``total_steps`` (:func:`hadna.utils.schedule.warmup_decay`)."""
    return lambda step: warmup_decay(step, warmup_steps=warmup_steps, decay_steps=total_steps - warmup_steps,
                                     shape=schedule)


class EarlyStopping:
    """Keeps the best state by a score tuple (higher is better) and counts epochs without progress.

    ``step(epoch, score, state_fn)`` -> True if ``score`` is a new best (then ``state_fn()`` is
    called to snapshot the weights). ``should_stop`` once ``patience`` epochs in a row did not improve.
    """

    def __init__(self, patience: int | None):
        self.patience = patience
        self.best_score: tuple[float, ...] | None = None
        self.best_epoch: int | None = None
        self.best_state: Any = None
        self.bad_epochs = 0

    def step(self, epoch: int, score: tuple[float, ...], state_fn) -> bool:
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_epoch, self.best_state = score, epoch, state_fn()
            self.bad_epochs = 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience


@dataclass
class EvalOutput:
    """Metrics of a whole set plus its mean cross-entropy and the raw logits ``[N, K]``."""

    metrics: dict[str, float]
    loss: float
    logits: np.ndarray
    throughput: Throughput


def evaluate(model: EvalModel, split: Split, num_classes: int, batch_size: int = 256, rc_average: bool = False,
             desc: str = "evaluating") -> EvalOutput:
    """Predict a whole split and compute every metric on it at once."""
    logits, tp = predict_logits(model, split.sequences, batch_size, rc_average, desc=desc)
    t = torch.from_numpy(logits).double()
    loss = float(F.cross_entropy(t, torch.from_numpy(split.labels)).item())
    probs = torch.softmax(t, dim=-1).numpy()
    return EvalOutput(compute_metrics(split.labels, probs=probs, num_classes=num_classes), loss, logits, tp)


@dataclass
class FinetuneResult:
    """Outcome of :func:`fine_tune`; the model already holds the best epoch's weights."""

    config: dict[str, Any]
    best_epoch: int
    epochs_run: int
    val_metrics: dict[str, float]
    val_loss: float
    history: list[dict[str, Any]] = field(default_factory=list)
    train: Throughput = field(default_factory=Throughput)
    val_seconds: float = 0.0
    stopped_early: bool = False
    head_probe: dict[str, Any] | None = None  # head_init="probe": the probe's C and validation metrics
    weight_change: dict[str, float] = field(default_factory=dict)  # per block: how far the kept weights moved
    restored_seconds: float = 0.0  # training + validation time of epochs restored from a checkpoint (an earlier process)

    def score(self, metric: str) -> tuple[float, float]:
        return (self.val_metrics[metric], -self.val_loss)


def param_groups(model: EvalModel, lr: float, backbone_lr_ratio: float) -> list[dict[str, Any]]:
    """AdamW groups: the head at ``lr``, every other trainable weight at ``lr * backbone_lr_ratio``.

    A ratio of 0 leaves the encoder out of the optimiser; :func:`fine_tune` also turns its gradients off
    for the run (it still runs in train mode, dropout included, like the rest of the model).
    """
    head = [p for p in model.head_parameters() if p.requires_grad]
    ids = {id(p) for p in head}
    rest = [p for p in model.module.parameters() if p.requires_grad and id(p) not in ids]
    groups = [{"params": head, "lr": lr}]
    if rest and backbone_lr_ratio > 0:
        groups.append({"params": rest, "lr": lr * backbone_lr_ratio})
    if not head and len(groups) == 1:
        raise ConfigError("nothing to train: the model has no head parameters and backbone_lr_ratio is 0")
    return [g for g in groups if g["params"]]


def init_head_from_probe(model: EvalModel, train: Split, val: Split, *, metric: str, num_classes: int,
                         c_grid: list[float] | tuple[float, ...], seed: int) -> dict[str, Any]:
    """LP-FT's first stage: fit the linear probe on frozen features and start the head from it.

    The probe (standardised features, logistic regression, ``C`` chosen on ``val``) is folded into one
    linear map of the raw pooled features and written into the model's head
    (:meth:`EvalModel.set_linear_head`). Returns the probe's ``C`` and validation metrics.
    """
    model.linear_head()  # fails at once (ConfigError) for a head that is not one linear layer
    x_tr, _ = embed_sequences(model, train.sequences, desc="probe head: embedding train")
    x_va, _ = embed_sequences(model, val.sequences, desc="probe head: embedding validation")
    fit = fit_probe(x_tr, train.labels, x_va, val.labels, metric=metric, num_classes=num_classes, c_grid=c_grid,
                    seed=seed)
    weight, bias = probe_as_linear(fit, num_classes)
    model.set_linear_head(torch.from_numpy(weight), torch.from_numpy(bias))
    log.info("probe head: C %g, validation %s %.4f", fit.C, metric, fit.val_metrics[metric])
    return {"C": fit.C, "val": fit.val_metrics}


def fine_tune(model: EvalModel, train: Split, val: Split, cfg: FinetuneConfig, *, metric: str, num_classes: int,
              seed: int, desc: str = "", checkpoint_dir: str | Path | None = None) -> FinetuneResult:
    """Fine-tune every weight of ``model`` on ``train``; select the epoch on ``val`` (see module doc).

    ``checkpoint_dir``: save the run's state there after every epoch and resume from it (``None``: don't).
    It takes no lock of its own: one process per directory is the caller's to ensure (the benchmark
    protocol holds its run's lock, whose ``.partial`` directory holds these checkpoints).
    """
    cfg.validate()
    if metric not in ("accuracy", "mcc", "f1"):
        raise ConfigError(f"unknown selection metric {metric!r}")
    # the micro-batch bound is recorded: it decides how dropout masks are drawn, so it is part of a run's recipe
    result = FinetuneResult(config={**asdict(cfg), "micro_batch_nt": model.batch_nt_cap}, best_epoch=0, epochs_run=0,
                            val_metrics={}, val_loss=math.inf)
    store = resumed = None
    if checkpoint_dir is not None:
        store = EpochCheckpoint(checkpoint_dir, _compat(model, train, val, result.config, seed, metric, num_classes))
        resumed = store.load()
        if resumed is not None and resumed.state["finished"]:
            return _finished(model, resumed, result, desc)
    if resumed is None and cfg.head_init == "probe":  # a resumed run's saved weights hold the probe head
        result.head_probe = init_head_from_probe(model, train, val, metric=metric, num_classes=num_classes,
                                                 c_grid=cfg.probe_c_grid, seed=seed)
    if cfg.head_dropout is not None:  # not a weight: set on every (re)start, a resumed run included
        model.set_head_dropout(cfg.head_dropout)
    torch.manual_seed(seed)  # dropout masks
    module = model.module
    start_state = model.state_dict() if resumed is None else resumed.tensors("start")
    module.train()
    groups = param_groups(model, cfg.lr, cfg.backbone_lr_ratio)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    trained = [p for g in groups for p in g["params"]]
    trained_ids = {id(p) for p in trained}
    # Weights outside the optimiser (a frozen encoder) get no gradients: none accumulate, none enter clipping.
    frozen = [p for p in module.parameters() if p.requires_grad and id(p) not in trained_ids]
    for p in frozen:
        p.requires_grad_(False)
    try:
        return _fine_tune_loop(model, train, val, cfg, metric, num_classes, seed, desc, optimizer, trained,
                               start_state, result, store, resumed)
    finally:
        for p in frozen:
            p.requires_grad_(True)


def _fine_tune_loop(model: EvalModel, train: Split, val: Split, cfg: FinetuneConfig, metric: str, num_classes: int,
                    seed: int, desc: str, optimizer: torch.optim.Optimizer, trained: list[torch.nn.Parameter],
                    start_state: dict[str, torch.Tensor], result: FinetuneResult, store: EpochCheckpoint | None = None,
                    resumed: Any = None) -> FinetuneResult:
    from ..sequence import reverse_complement

    module = model.module
    lengths = np.fromiter(map(len, train.sequences), dtype=np.int64, count=len(train))
    total = optimiser_steps(len(train), cfg.batch_size, cfg.epochs)
    warmup = int(round(cfg.warmup_ratio * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.schedule, warmup, total))
    labels = torch.from_numpy(train.labels)
    stopper = EarlyStopping(cfg.patience)
    prefix = f"{desc} " if desc else ""
    first_epoch = 1
    if resumed is not None:
        first_epoch = _resume(model, resumed, optimizer, scheduler, stopper, result)
        log.info("%sresuming from the checkpoint after epoch %d of %d (%s)", prefix, result.epochs_run, cfg.epochs,
                 resumed.path)
    for epoch in range(first_epoch, cfg.epochs + 1):
        batches = epoch_batches(lengths, cfg.batch_size, seed, epoch, cfg.bucket_batches)
        flip = np.random.default_rng([seed, epoch, 1]).random(len(train)) < 0.5 if cfg.rc_augment else None
        module.train()
        start, loss_sum, n_seen = time.perf_counter(), 0.0, 0
        bar = progress(batches, desc=f"{prefix}epoch {epoch}/{cfg.epochs}")
        for idx in bar:
            optimizer.zero_grad(set_to_none=True)
            loss = 0.0
            for part in micro_batches(idx, lengths, model.batch_nt_cap):  # one part unless a CPU batch is large
                seqs = [reverse_complement(train.sequences[i]) if flip is not None and flip[i]
                        else train.sequences[i] for i in part]
                logits = model.logits(seqs)
                part_loss = F.cross_entropy(logits.float(), labels[part].to(logits.device), reduction="sum") / len(idx)
                if not torch.isfinite(part_loss):
                    raise TrainingError(f"{prefix}epoch {epoch}: non-finite training loss ({part_loss.item()}); "
                                        f"lower the learning rate (now {cfg.lr})")
                part_loss.backward()
                loss += float(part_loss.item())
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(trained, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            loss_sum += loss * len(idx)
            n_seen += len(idx)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss_sum / n_seen:.4f}", refresh=False)
        train_s = time.perf_counter() - start
        epoch_nt = int(lengths.sum())
        result.train.add(Throughput(epoch_nt, train_s))
        out = evaluate(model, val, num_classes, cfg.eval_batch_size, cfg.rc_test, desc=f"{prefix}validation")
        result.val_seconds += out.throughput.seconds
        improved = stopper.step(epoch, (out.metrics[metric], -out.loss), model.state_dict)
        result.history.append({
            "epoch": epoch, "train_loss": loss_sum / max(1, n_seen), "val_loss": out.loss,
            "val": out.metrics, "train_seconds": train_s, "val_seconds": out.throughput.seconds,
            "train_nt_per_s": epoch_nt / train_s if train_s > 0 else None,
            "lr_end": scheduler.get_last_lr()[0], "best": improved,
        })
        result.epochs_run = epoch
        stop = stopper.should_stop and epoch < cfg.epochs
        left = (cfg.epochs - epoch) * (train_s + out.throughput.seconds)  # the epoch cap at this epoch's pace
        log.info("%sepoch %d/%d: train loss %.4f, val %s %.4f, val loss %.4f%s; %.1f s train (%s nt/s), %.1f s val%s",
                 prefix, epoch, cfg.epochs, loss_sum / max(1, n_seen), metric, out.metrics[metric], out.loss,
                 " (best)" if improved else "", train_s, f"{epoch_nt / train_s:,.0f}" if train_s > 0 else "-",
                 out.throughput.seconds, f"; at most {cfg.epochs - epoch} more epoch(s), ~{format_duration(left)}"
                 if epoch < cfg.epochs and not stop else "")
        result.stopped_early = stop
        if store is not None and not stop and epoch < cfg.epochs:
            store.save(epoch, model=model.state_dict(), best=stopper.best_state, start=start_state,
                       optimizer=optimizer, scheduler=scheduler, device=model.device,
                       progress=_progress(result, stopper))
        if stop:
            log.info("%searly stop after epoch %d: no improvement for %d epochs (best epoch %d)",
                     prefix, epoch, stopper.bad_epochs, stopper.best_epoch)
            break
    model.load_state_dict(stopper.best_state)
    _select_best(result, stopper.best_epoch)
    result.weight_change = weight_change(start_state, model.state_dict(), dict(module.named_parameters()))
    if store is not None:
        store.save_finished(result.epochs_run, best=stopper.best_state,
                            progress={**_progress(result, stopper), "weight_change": result.weight_change})
    model.eval()
    return result


def _compat(model: EvalModel, train: Split, val: Split, config: dict[str, Any], seed: int, metric: str,
            num_classes: int) -> dict[str, Any]:
    """What identifies one fine-tuning run, for its epoch checkpoints (the validation batch size changes nothing)."""
    recipe = {k: v for k, v in config.items() if k not in ("eval_batch_size", "micro_batch_nt")
              # a setting added later is left out at the value older runs ran with: their checkpoints still resume
              and not (k in FINETUNE_SETTINGS_ADDED and v == FINETUNE_SETTINGS_ADDED[k])}
    return {"recipe": recipe, "micro_batch_nt": config["micro_batch_nt"], "seed": seed, "metric": metric,
            "num_classes": num_classes, "model": {"kind": model.spec.kind, "pooling": model.spec.pooling},
            "train": train.fingerprint(), "validation": val.fingerprint(),
            "start_weights": weights_digest(model.module.state_dict())}


def _finished(model: EvalModel, ckpt: Any, result: FinetuneResult, desc: str) -> FinetuneResult:
    """The result of a run that had already ended: its best weights loaded back, nothing trained."""
    p = ckpt.json("progress")
    model.load_state_dict(ckpt.tensors("best", device=model.device))
    _restore_result(result, p)
    result.weight_change = p["weight_change"]
    _select_best(result, p["best_epoch"])
    log.info("%sfinished run: best weights (epoch %d of %d) loaded from %s", f"{desc} " if desc else "",
             result.best_epoch, result.epochs_run, ckpt.path)
    model.eval()
    return result


def _progress(result: FinetuneResult, stopper: EarlyStopping) -> dict[str, Any]:
    """The JSON part of an epoch checkpoint: history, timings and early-stopping counters."""
    return {"history": result.history, "epochs_run": result.epochs_run, "stopped_early": result.stopped_early,
            "train_nucleotides": result.train.nucleotides, "train_seconds": result.train.seconds,
            "val_seconds": result.val_seconds, "head_probe": result.head_probe,
            "best_score": list(stopper.best_score or ()), "best_epoch": stopper.best_epoch,
            "bad_epochs": stopper.bad_epochs}


def _resume(model: EvalModel, ckpt: Any, optimizer: torch.optim.Optimizer, scheduler: Any, stopper: EarlyStopping,
            result: FinetuneResult) -> int:
    """Load an epoch checkpoint of an unfinished run into the run's objects; returns the first epoch to run."""
    p = ckpt.json("progress")
    model.load_state_dict(ckpt.tensors("model", device=model.device))
    EpochCheckpoint.restore_training_state(ckpt, optimizer, scheduler, model.device)
    stopper.best_score, stopper.best_epoch = tuple(p["best_score"]), p["best_epoch"]
    stopper.bad_epochs, stopper.best_state = p["bad_epochs"], ckpt.tensors("best")
    _restore_result(result, p)
    return result.epochs_run + 1


def _restore_result(result: FinetuneResult, p: dict[str, Any]) -> None:
    """The fields of :func:`_progress` back into ``result`` (the inverse of its result part)."""
    result.history, result.epochs_run, result.stopped_early = p["history"], p["epochs_run"], p["stopped_early"]
    result.train.add(Throughput(p["train_nucleotides"], p["train_seconds"]))
    result.val_seconds, result.head_probe = p["val_seconds"], p["head_probe"]
    result.restored_seconds = p["train_seconds"] + p["val_seconds"]


def _select_best(result: FinetuneResult, best_epoch: int) -> None:
    """Record ``best_epoch`` and its validation metrics and loss (from the history) as the run's result."""
    best = result.history[best_epoch - 1]
    result.best_epoch = best_epoch
    result.val_metrics, result.val_loss = dict(best["val"]), best["val_loss"]


_BLOCK = re.compile(r"^(.*?\b(?:layers?|blocks?)\.\d+)\.")


def weight_change(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor],
                  params: dict[str, torch.nn.Parameter]) -> dict[str, float]:
    """Relative L2 change ``|after - before| / |before|`` of the parameters, per block.

    Blocks: ``...layers.N`` (or ``layer``/``block``/``blocks``), else the parameter's parent module
    (``had.embeddings``, ``had.norm``, ``classifier``); blocks whose weights start at zero are left
    out. Answers "which layers moved" in a fine-tune.
    """
    num: dict[str, float] = {}
    den: dict[str, float] = {}
    for name in params:
        m = _BLOCK.match(name)
        block = m.group(1) if m else name.rsplit(".", 1)[0]
        num[block] = num.get(block, 0.0) + float((after[name].double() - before[name].double()).pow(2).sum())
        den[block] = den.get(block, 0.0) + float(before[name].double().pow(2).sum())
    return {b: (num[b] / den[b]) ** 0.5 for b in num if den[b] > 0}  # an all-zero block has no relative change
