"""Per-epoch checkpoints of one fine-tuning run, so that a killed run resumes at its last finished epoch.

A 500-bp task fine-tunes for 20-40 minutes per seed on one CPU core; without these, a run stopped in its
last epoch started that seed again. :func:`hadna.eval.finetune.fine_tune` writes one after every epoch
into its ``checkpoint_dir`` (the protocol gives each (seed, unit, grid point) its own directory next to
the run JSON and deletes them once the seed is saved), and reads it back at the start:

* the weights, the best epoch's weights, the starting weights (for the "which layers moved" measure),
  AdamW's state, the torch RNG state (dropout masks) and the learning-rate schedule: the resumed run
  takes the same steps as an uninterrupted one (data order is a function of (seed, epoch) already);
* the epoch history, early-stopping counters and timings;
* ``finished``: the run ended (last epoch or early stop); a rerun only loads the best weights back.

The files are those of :class:`hadna.train.checkpoint.CheckpointManager` (safetensors + JSON with sha256
digests, written atomically, never pickled). A checkpoint is used only by the run it belongs to: its
compatibility record (recipe, seed, selection metric, digests of the training and validation rows and of
the starting weights) must match, or :class:`~hadna.errors.ConfigError` says what differs; a damaged one
is logged and the run starts again from its first epoch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError
from ..train.checkpoint import (CheckpointManager, LoadedCheckpoint, describe_incompatibility, flatten_optimizer_state,
                                unflatten_optimizer_state)
from ..utils.logging import get_logger

log = get_logger("eval.finetune_checkpoint")


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict (names, dtypes, shapes and values): equal exactly for equal weights."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(f"{name} {t.dtype} {tuple(t.shape)}\n".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _cpu_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


class EpochCheckpoint:
    """The checkpoint directory of one fine-tuning run (one seed, unit and grid point).

    ``compat``: what identifies the run (JSON-able); a saved checkpoint with another record is refused.
    """

    def __init__(self, directory: str | Path, compat: dict[str, Any]):
        self.directory = Path(directory)
        self.compat = compat
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
        if diffs:
            raise ConfigError(f"{ckpt.path} is a fine-tuning checkpoint of another run ({'; '.join(diffs[:4])}); "
                              f"delete {self.directory} (or rerun with --overwrite) to start this run again")
        return ckpt

    def save(self, epoch: int, *, finished: bool, model: dict[str, torch.Tensor], best: dict[str, torch.Tensor],
             start: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, scheduler: Any,
             progress: dict[str, Any]) -> None:
        """Write the state after ``epoch`` (atomically; the previous epoch's files are then removed)."""
        opt_tensors, opt_meta = flatten_optimizer_state(optimizer.state_dict())
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state()
        self._manager.save(
            epoch,
            tensors={"model": _cpu_tensors(model), "best": _cpu_tensors(best), "start": _cpu_tensors(start),
                     "optimizer": opt_tensors, "rng": rng},
            jsons={"optimizer": opt_meta, "scheduler": scheduler.state_dict(), "progress": progress},
            state={"compat": self.compat, "finished": bool(finished)})

    @staticmethod
    def restore_training_state(ckpt: LoadedCheckpoint, optimizer: torch.optim.Optimizer, scheduler: Any,
                               device: torch.device) -> None:
        """Load AdamW's state, the schedule and the RNG state(s) saved in ``ckpt``."""
        state = unflatten_optimizer_state(ckpt.tensors("optimizer", device=device), ckpt.json("optimizer"))
        optimizer.load_state_dict(state)
        scheduler.load_state_dict(ckpt.json("scheduler"))
        rng = ckpt.tensors("rng")
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])

    def remove(self) -> None:
        """Delete this run's checkpoint directory (its result is saved elsewhere)."""
        import shutil

        shutil.rmtree(self.directory, ignore_errors=True)
