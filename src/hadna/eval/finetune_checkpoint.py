"""Per-epoch checkpoints of one fine-tuning run, so that a killed run resumes at its last finished epoch.

A 500-bp task fine-tunes for 20-40 minutes per seed on one CPU core; without these, a run stopped in its
last epoch started that seed again. :func:`hadna.eval.finetune.fine_tune` writes one after every epoch
into its ``checkpoint_dir`` (the protocol gives each (seed, unit, grid point) its own directory next to
the run JSON and deletes them once the seed is saved), and reads it back at the start:

* the weights, the best epoch's weights, the starting weights (for the "which layers moved" measure),
  AdamW's state, the torch RNG state (dropout masks) and the learning-rate schedule: the resumed run
  takes the same steps as an uninterrupted one (data order is a function of (seed, epoch) already);
* the epoch history, early-stopping counters and timings;
* ``finished``: the run ended (last epoch or early stop). Then only the best epoch's weights and the
  result are kept (one model's worth of disk, not five), and a rerun loads them back without training.

The files are those of :class:`hadna.train.checkpoint.CheckpointManager` (safetensors + JSON with sha256
digests, written atomically, never pickled). A checkpoint is used only by the run it belongs to: its
compatibility record (recipe, seed, selection metric, pooling, digests of the training and validation rows
and of the starting weights) must match, or :class:`~hadna.errors.ConfigError` says what differs. Two
differences start the run again with a warning instead: a damaged checkpoint, and another micro-batch
bound (the run moved between CPU and GPU: its dropout masks would differ). The validation batch size
changes no result and is not compared. Exact on CPU; on a GPU the RNG state of the model's device is
restored, but eval does not force deterministic kernels, so two GPU runs may differ by rounding anyway.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError
from ..train.checkpoint import (CheckpointManager, LoadedCheckpoint, describe_incompatibility, flatten_optimizer_state,
                                unflatten_optimizer_state)
from ..utils.logging import get_logger

log = get_logger("eval.finetune_checkpoint")


def _cpu_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def saved_progress(directory: str | Path) -> tuple[int, bool] | None:
    """(last saved epoch, whether the run had finished) of the checkpoint directory of one fine-tuning run,
    read from its newest ``state.json`` without verifying any file; None when it holds no checkpoint."""
    steps = CheckpointManager(Path(directory)).list()
    if not steps:
        return None
    epoch, path = steps[-1]
    try:
        finished = bool(json.loads((path / "state.json").read_text()).get("finished"))
    except (OSError, ValueError):  # being written, or damaged: the run would start it again
        finished = False
    return epoch, finished


class EpochCheckpoint:
    """The checkpoint directory of one fine-tuning run (one seed, unit and grid point).

    ``compat``: what identifies the run (JSON-able); a saved checkpoint with another record is refused.
    """

    #: compatibility entries whose change restarts the run (with a warning) instead of refusing it
    RESTART_KEYS = ("micro_batch_nt",)

    def __init__(self, directory: str | Path, compat: dict[str, Any]):
        self.directory = Path(directory)
        self.compat = json.loads(json.dumps(compat))  # compared with the saved record as JSON would give it back
        self._manager = CheckpointManager(self.directory, keep_last=1)

    def load(self) -> LoadedCheckpoint | None:
        """The saved state of this run, or None when there is none (or it is damaged: logged, start again)."""
        self._manager.remove_stale_temporaries()
        try:
            ckpt = self._manager.find_resumable()
        except CheckpointError as exc:
            log.error("%s; fine-tuning starts this run again from its first epoch", exc)
            return None
        if ckpt is None:
            return None
        diffs = describe_incompatibility(ckpt.state.get("compat", {}), self.compat)
        if diffs and all(d.split(":")[0] in self.RESTART_KEYS for d in diffs):
            log.warning("%s: %s; this run starts again from its first epoch", ckpt.path, "; ".join(diffs))
            shutil.rmtree(self.directory, ignore_errors=True)
            return None
        if diffs:
            raise ConfigError(f"{ckpt.path} is a fine-tuning checkpoint of another run ({'; '.join(diffs[:4])}); "
                              f"delete {self.directory} to train this run from its first epoch")
        return ckpt

    def save(self, epoch: int, *, model: dict[str, torch.Tensor], best: dict[str, torch.Tensor],
             start: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, scheduler: Any,
             device: torch.device, progress: dict[str, Any]) -> None:
        """Write the whole state after ``epoch`` of a run that goes on (atomically; the previous epoch's
        files are then removed)."""
        opt_tensors, opt_meta = flatten_optimizer_state(optimizer.state_dict())
        self._manager.save(
            epoch,
            tensors={"model": _cpu_tensors(model), "best": _cpu_tensors(best), "start": _cpu_tensors(start),
                     "optimizer": opt_tensors, "rng": _rng_state(device)},
            jsons={"optimizer": opt_meta, "scheduler": scheduler.state_dict(), "progress": progress},
            state={"compat": self.compat, "finished": False})

    def save_finished(self, epoch: int, *, best: dict[str, torch.Tensor], progress: dict[str, Any]) -> None:
        """Write the outcome of a run that ended after ``epoch``: the best weights and the result only."""
        self._manager.save(epoch, tensors={"best": _cpu_tensors(best)}, jsons={"progress": progress},
                           state={"compat": self.compat, "finished": True})

    @staticmethod
    def restore_training_state(ckpt: LoadedCheckpoint, optimizer: torch.optim.Optimizer, scheduler: Any,
                               device: torch.device) -> None:
        """Load AdamW's state, the schedule and the RNG state(s) saved in ``ckpt``."""
        # loaded on the CPU: load_state_dict moves the moments to their parameters' device and keeps `step` as saved
        state = unflatten_optimizer_state(ckpt.tensors("optimizer"), ckpt.json("optimizer"))
        optimizer.load_state_dict(state)
        scheduler.load_state_dict(ckpt.json("scheduler"))
        rng = ckpt.tensors("rng")
        torch.set_rng_state(rng["cpu"])
        if "device" in rng and device.type == "cuda":
            torch.cuda.set_rng_state(rng["device"], device)
        elif "device" in rng and device.type == "mps":
            torch.mps.set_rng_state(rng["device"])


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The CPU generator's state, and that of the model's accelerator (its own device, not the current one)."""
    rng = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        rng["device"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        rng["device"] = torch.mps.get_rng_state()
    return rng
