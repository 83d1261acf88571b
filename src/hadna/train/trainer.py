"""A generic, exactly resumable, data-parallel training loop.

The :class:`Trainer` knows nothing about DNA or distillation. A recipe gives it

* ``model``: the module to train (everything whose state must be checkpointed: backbone + heads);
* ``batch_fn(step, rank, world_size, num_micro) -> list[micro_batch]``: this rank's share of the
  global batch of ``step``, split into ``num_micro`` micro-batches; a PURE function of its arguments
  (that is what makes resume and DDP exact: no data-loader state to save);
* ``count_fn(micro_batch) -> {name: count}`` (optional): the normalisers of a micro-batch (e.g. masked
  tokens). The trainer sums them over all micro-batches and all ranks and hands the totals to
* ``step_fn(model, micro_batch, totals) -> (loss, metrics)``: the forward pass. ``loss`` and each
  metric must be this micro-batch's CONTRIBUTION: normalised by ``totals`` so that summing over
  micro-batches and ranks gives the value for the whole global batch;
* ``val_fn(model) -> {name: value}`` (optional): run on rank 0 in eval mode without gradients.

Per step: set the lr, build micro-batches, all-reduce their counts, forward/backward each (DDP
synchronises gradients on the last one only), all-reduce loss and metrics, stop with a
:class:`TrainingError` on a non-finite loss or gradient norm (before touching the weights), clip,
step. Rank 0 logs, validates and writes checkpoints; the other ranks wait at barriers.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from ..errors import CheckpointError, ConfigError, TrainingError
from ..utils.logging import format_duration, get_logger, progress
from .checkpoint import (CheckpointManager, LoadedCheckpoint, describe_incompatibility, flatten_optimizer_state,
                         module_state_tensors, unflatten_optimizer_state)
from .config import OptimConfig, TrainConfig
from .distributed import DistEnv, all_gather_tensor, all_reduce_sum, barrier, broadcast_int
from .metrics_log import CsvLog, TensorBoardLog
from .schedule import WarmupCosineSchedule, build_optimizer

log = get_logger("train")

BatchFn = Callable[[int, int, int, int], list[Any]]
CountFn = Callable[[Any], dict[str, Any]]
StepFn = Callable[[nn.Module, Any, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, Any]]]
ValFn = Callable[[nn.Module], dict[str, float]]


@dataclass
class TrainResult:
    step: int
    output_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)       # last step's training metrics
    val_metrics: dict[str, float] = field(default_factory=dict)   # last validation
    checkpoint: Path | None = None
    elapsed_s: float = 0.0
    resumed_from: int | None = None
    initial_val_metrics: dict[str, float] = field(default_factory=dict)  # step-0 validation of a fresh run


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """auto -> bf16 autocast on CUDA (when supported), fp32 elsewhere; bf16 off CUDA is a ConfigError."""
    if precision == "fp32":
        return None
    cuda = device.type == "cuda"
    if precision == "bf16":
        if not cuda:
            raise ConfigError("train.precision bf16 needs CUDA (bf16 autocast on CPU is slow); use fp32 or auto")
        return torch.bfloat16
    if precision == "auto":
        return torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else None
    raise ConfigError(f"train.precision must be auto, fp32 or bf16, got {precision!r}")


def _as_float(v: Any) -> float:
    return float(v.detach().float().item()) if isinstance(v, torch.Tensor) else float(v)


def _same_values(a: Any, b: Any) -> bool:
    """Equal numbers (or lists of numbers) up to float round-off."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_values(x, y) for x, y in zip(a, b))
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)


class Trainer:
    """See the module docstring. ``compat``: JSON-able record that must match on resume (model shape,
    objective, ...); ``compat_hints``: what to do when a given key of it differs on resume (appended to the
    error); ``tokens_per_step``: input tokens per global step (for the nt/s figure); ``name``: the progress
    bar's label."""

    def __init__(self, model: nn.Module, train: TrainConfig, optim: OptimConfig, env: DistEnv, *,
                 batch_fn: BatchFn, step_fn: StepFn, count_fn: CountFn | None = None, val_fn: ValFn | None = None,
                 tokens_per_step: int = 0, compat: dict | None = None, compat_hints: dict[str, str] | None = None,
                 name: str = "train"):
        train.validate()
        optim.validate()
        train.check_world_size(env.world_size)
        self.cfg, self.optim_cfg, self.env = train, optim, env
        self.batch_fn, self.step_fn, self.count_fn, self.val_fn = batch_fn, step_fn, count_fn, val_fn
        self.tokens_per_step = int(tokens_per_step)
        self.name = name
        # normalised through JSON so that tuples/lists compare equal to what a checkpoint stores
        self.compat = json.loads(json.dumps({**(compat or {}), "global_batch_size": train.batch_size}))
        self.compat_hints = dict(compat_hints or {})
        self.output_dir = Path(train.output_dir)
        self.ckpts = CheckpointManager(self.output_dir / "checkpoints", train.keep_last_checkpoints)
        self.model = model.to(env.device)
        self.optimizer = build_optimizer(self.model, optim)
        self.schedule = WarmupCosineSchedule(self.optimizer, optim.warmup_steps, train.max_steps, optim.min_lr_ratio)
        self.autocast_dtype = resolve_precision(train.precision, env.device)
        self.step = 0
        self.elapsed_before = 0.0
        self.last_metrics: dict[str, float] = {}
        self.last_val: dict[str, float] = {}
        self.last_checkpoint: Path | None = None

    # ------------------------------------------------------------------ public
    def fit(self, resume: bool = False) -> TrainResult:
        env = self.env
        if env.is_main:
            self.ckpts.remove_stale_temporaries()
        barrier(env)
        resumed_from = self._restore(resume)
        train_model = self._wrap_ddp()
        train_log = val_log = tb = None
        if env.is_main:
            train_log, val_log = CsvLog(self.output_dir / "metrics.csv"), CsvLog(self.output_dir / "val_metrics.csv")
            if self.step == 0:  # a fresh run: no rows of an earlier one
                train_log.truncate_after(-1)
                val_log.truncate_after(-1)
            else:
                train_log.truncate_after(self.step)
                val_log.truncate_after(self.step)
            tb = TensorBoardLog(self.output_dir / "tensorboard", self.cfg.tensorboard)
        bar = progress(total=self.cfg.max_steps, initial=self.step, desc=self.name, disable=None if env.is_main else True)
        start_time = time.perf_counter() - self.elapsed_before
        initial_val: dict[str, float] = {}
        try:
            if self.step == 0 and self.val_fn is not None and self.cfg.val_at_start:
                self._validate(val_log, tb)  # the start of the validation curve (step 0)
                initial_val = dict(self.last_val)
            while self.step < self.cfg.max_steps:
                t0 = time.perf_counter()
                metrics = self._train_step(train_model)
                self.step += 1
                dt = time.perf_counter() - t0
                metrics.update(nt_per_s=self.tokens_per_step / dt if dt > 0 else 0.0,
                               elapsed_s=time.perf_counter() - start_time)
                self.last_metrics = metrics
                last = self.step == self.cfg.max_steps
                if env.is_main:
                    bar.update(1)
                    bar.set_postfix({k: f"{metrics[k]:.4g}" for k in metrics if k.endswith("loss")}
                                    | {"nt/s": f"{metrics['nt_per_s']:.3g}"}, refresh=False)
                    if self.cfg.log_every and (self.step % self.cfg.log_every == 0 or last):
                        train_log.write({"step": self.step, **metrics})
                        tb.write("train", self.step, metrics)
                        self._log_line(metrics, bar)
                if self.val_fn is not None and ((self.cfg.val_every and self.step % self.cfg.val_every == 0) or last):
                    self._validate(val_log, tb)
                if (self.cfg.save_every and self.step % self.cfg.save_every == 0) or last:
                    self._save(time.perf_counter() - start_time)
        finally:
            bar.close()
            for handle in (train_log, val_log, tb):
                if handle is not None:
                    handle.close()
        return TrainResult(step=self.step, output_dir=self.output_dir, metrics=self.last_metrics,
                           val_metrics=self.last_val, checkpoint=self.last_checkpoint,
                           elapsed_s=time.perf_counter() - start_time, resumed_from=resumed_from,
                           initial_val_metrics=initial_val)

    # ------------------------------------------------------------------ one step
    def _train_step(self, train_model: nn.Module) -> dict[str, float]:
        env, cfg = self.env, self.cfg
        lr = self.schedule.apply(self.step)
        micro = self.batch_fn(self.step, env.rank, env.world_size, cfg.grad_accum_steps)
        totals = self._totals(micro)
        loss_sum = torch.zeros((), dtype=torch.float64, device=env.device)
        metric_sums: dict[str, torch.Tensor] = {}
        for i, mb in enumerate(micro):
            sync = i == len(micro) - 1
            no_sync = train_model.no_sync() if (env.distributed and not sync) else contextlib.nullcontext()
            with no_sync:
                with self._autocast():
                    loss, metrics = self.step_fn(train_model, mb, totals)
                # DDP averages gradients over ranks; contributions are already normalised globally.
                (loss * env.world_size).backward()
            loss_sum += loss.detach().double()
            for k, v in metrics.items():
                if k != "loss":
                    v = torch.as_tensor(v, device=env.device).detach().double()
                    metric_sums[k] = metric_sums[k] + v if k in metric_sums else v
        keys = sorted(metric_sums)
        packed = torch.stack([loss_sum, *(metric_sums[k] for k in keys)])
        all_reduce_sum(packed, env)
        values = dict(zip(["loss", *keys], packed.tolist()))
        if not math.isfinite(values["loss"]):
            self._non_finite("loss", values)
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.optim_cfg.grad_clip if self.optim_cfg.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        if not math.isfinite(grad_norm):
            self._non_finite("gradient norm", {**values, "grad_norm": grad_norm})
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"lr": lr, **values, "grad_norm": grad_norm}

    def _totals(self, micro: list[Any]) -> dict[str, torch.Tensor]:
        if self.count_fn is None:  # plain mean over micro-batches and ranks
            n = len(micro) * self.env.world_size
            return {"micro_batches": torch.tensor(float(n), device=self.env.device)}
        sums: dict[str, float] = {}
        for mb in micro:
            for k, v in self.count_fn(mb).items():
                sums[k] = sums.get(k, 0.0) + _as_float(v)
        keys = sorted(sums)
        packed = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=self.env.device)
        all_reduce_sum(packed, self.env)
        return {k: packed[i].float() for i, k in enumerate(keys)}

    def _non_finite(self, what: str, values: dict[str, float]) -> None:
        terms = ", ".join(f"{k}={v:.6g}" for k, v in values.items() if k.endswith("loss") or k == "grad_norm")
        ckpt = self.ckpts.latest_pointer()
        keep = (f"the last good checkpoint is {ckpt} (resume with --resume, perhaps with a lower optim.lr)"
                if ckpt is not None else "no checkpoint was written yet")
        raise TrainingError(f"non-finite {what} at step {self.step + 1} ({terms}); stopped before updating "
                            f"the weights; {keep}")

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.env.device.type, dtype=self.autocast_dtype)

    def _wrap_ddp(self) -> nn.Module:
        if not self.env.distributed:
            return self.model
        from torch.nn.parallel import DistributedDataParallel

        dev = self.env.device
        return DistributedDataParallel(self.model, device_ids=[dev.index] if dev.type == "cuda" else None)

    # ------------------------------------------------------------------ validation and logging
    def _validate(self, val_log: CsvLog | None, tb: TensorBoardLog | None) -> None:
        if self.env.is_main:
            was_training = self.model.training
            self.model.eval()
            try:
                with torch.no_grad(), self._autocast():
                    values = {k: _as_float(v) for k, v in self.val_fn(self.model).items()}
            finally:
                self.model.train(was_training)
            self.last_val = values
            val_log.write({"step": self.step, **values})
            tb.write("val", self.step, values)
            log.info("validation at step %d: %s", self.step, ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
        barrier(self.env)

    def _log_line(self, metrics: dict[str, float], bar) -> None:
        if not getattr(bar, "disable", True):
            return  # the progress bar shows it
        remaining = (self.cfg.max_steps - self.step) * metrics["elapsed_s"] / max(self.step, 1)
        terms = ", ".join(f"{k} {metrics[k]:.4g}" for k in metrics if k.endswith("loss") or k.endswith("acc"))
        log.info("step %d/%d: %s, lr %.3g, %.3g nt/s, ETA %s", self.step, self.cfg.max_steps, terms, metrics["lr"],
                 metrics["nt_per_s"], format_duration(remaining))

    # ------------------------------------------------------------------ checkpoints
    def _rng_tensors(self) -> dict[str, torch.Tensor]:
        states = {"cpu": torch.get_rng_state()}
        if self.env.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.env.device)
        out = {}
        for name, state in states.items():
            for r, t in enumerate(all_gather_tensor(state, self.env)):
                out[f"rank{r}.{name}"] = t
        return out

    def _save(self, elapsed: float) -> None:
        rng = self._rng_tensors()  # a collective: every rank takes part
        if self.env.is_main:
            opt_tensors, opt_meta = flatten_optimizer_state(self.optimizer.state_dict())
            state = {"samples_seen": self.step * self.cfg.batch_size, "world_size": self.env.world_size,
                     "grad_accum_steps": self.cfg.grad_accum_steps, "elapsed_s": elapsed, "compat": self.compat,
                     "metrics": self.last_metrics, "val_metrics": self.last_val}
            self.last_checkpoint = self.ckpts.save(
                self.step, {"model": module_state_tensors(self.model), "optimizer": opt_tensors, "rng": rng},
                {"optimizer": opt_meta, "scheduler": self.schedule.state_dict()}, state)
            log.info("saved checkpoint %s", self.last_checkpoint)
        barrier(self.env)

    def _restore(self, resume: bool) -> int | None:
        env = self.env
        if not resume:
            self.ckpts.refuse_existing()
            return None
        chosen = -1
        if env.is_main:
            ckpt = self.ckpts.find_resumable()
            if ckpt is None:
                log.info("--resume: no checkpoint under %s yet; starting from step 0", self.ckpts.root)
            else:
                chosen = ckpt.step
        chosen = broadcast_int(chosen, env)
        if chosen < 0:
            return None
        ckpt = self.ckpts.load(self.ckpts.root / f"step-{chosen:07d}")
        self._load(ckpt)
        log.info("resumed from %s (step %d)", ckpt.path, ckpt.step)
        return ckpt.step

    _OPTIM_KEYS = (("initial_lr", "optim.lr"), ("weight_decay", "optim.weight_decay"), ("betas", "optim.betas"),
                   ("eps", "optim.eps"))

    def _check_fixed_settings(self, ckpt: LoadedCheckpoint) -> None:
        """Optimiser settings live in the checkpoint's optimizer state and would silently win over a changed
        config (which training_summary.json would then misreport): refuse the change. Schedule settings
        (warmup, min_lr_ratio, max_steps) are taken from the config on resume; a change is logged."""
        saved = ckpt.json("optimizer").get("param_groups", [])
        diffs: dict[str, str] = {}
        for old, new in zip(saved, self.optimizer.param_groups):
            for key, name in self._OPTIM_KEYS:
                a, b = old.get(key), new.get(key)
                b = list(b) if isinstance(b, tuple) else b
                if a is not None and b is not None and not _same_values(a, b):
                    diffs.setdefault(name, f"{name}: {a} -> {b}")
        if diffs:
            raise CheckpointError(f"checkpoint {ckpt.path} fixes the optimiser settings it was trained with, and this "
                                  f"resume changes them ({'; '.join(diffs.values())}); resume with the run's own values "
                                  f"(its config.yaml) or start a new run in another --output-dir")
        sched = ckpt.json("scheduler")
        for key in ("warmup_steps", "max_steps", "min_lr_ratio"):
            if key in sched and sched[key] != getattr(self.schedule, key):
                log.info("resume: learning-rate schedule %s %s (the checkpoint's run used %s)", key,
                         getattr(self.schedule, key), sched[key])

    def _load(self, ckpt: LoadedCheckpoint) -> None:
        diffs = describe_incompatibility(ckpt.state.get("compat", {}), self.compat)
        if diffs:
            hints = [hint for key, hint in self.compat_hints.items() if any(d.startswith(f"{key}:") for d in diffs)]
            raise CheckpointError(f"checkpoint {ckpt.path} was written by an incompatible run; differences: "
                                  + "; ".join(diffs) + ". " + "".join(f"{h}. " for h in hints)
                                  + "Use the original config or a new --output-dir")
        self._check_fixed_settings(ckpt)
        try:
            self.model.load_state_dict(ckpt.tensors("model", self.env.device), strict=True)
            self.optimizer.load_state_dict(unflatten_optimizer_state(ckpt.tensors("optimizer"), ckpt.json("optimizer")))
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {ckpt.path} does not fit this model/optimizer: {exc}") from None
        self.schedule.load_state_dict(ckpt.json("scheduler"))
        rng = ckpt.tensors("rng")
        key = f"rank{self.env.rank}"
        if f"{key}.cpu" in rng:
            torch.set_rng_state(rng[f"{key}.cpu"])
            if self.env.device.type == "cuda" and f"{key}.cuda" in rng:
                torch.cuda.set_rng_state(rng[f"{key}.cuda"], self.env.device)
        else:
            log.warning("checkpoint %s has no RNG state for rank %d (saved with world size %s); reseeding",
                        ckpt.path, self.env.rank, ckpt.state.get("world_size"))
            torch.manual_seed(self.cfg.seed + 1000003 * self.env.rank + ckpt.step)
        self.step = ckpt.step
        self.elapsed_before = float(ckpt.state.get("elapsed_s", 0.0))
        self.last_metrics = ckpt.state.get("metrics", {}) or {}
        self.last_val = ckpt.state.get("val_metrics", {}) or {}
        self.last_checkpoint = ckpt.path
        if ckpt.state.get("samples_seen") != ckpt.step * self.cfg.batch_size:
            raise CheckpointError(f"checkpoint {ckpt.path}: data position {ckpt.state.get('samples_seen')} does not "
                                  f"match step {ckpt.step} x batch size {self.cfg.batch_size}")
