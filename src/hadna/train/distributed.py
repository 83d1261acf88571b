"""Process-group set-up for single-process and ``torchrun`` runs.

The same command runs alone or under ``torchrun`` (one node or several): when ``WORLD_SIZE > 1`` the
default process group is initialised from the environment torchrun sets (``env://``: RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) with NCCL on GPUs and gloo on CPUs. Collectives
are no-ops in a single process, so the training loop has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from ..utils.device import resolve_device
from ..utils.logging import get_logger

if TYPE_CHECKING:
    from ..data import GenomeWindows

log = get_logger("train.dist")


@dataclass
class DistEnv:
    """Where this process stands: its rank, the world size and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this process group was created by init_distributed (and is destroyed by us)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device_preference: str = "auto") -> DistEnv:
    """Read torchrun's environment, pick the device and (for WORLD_SIZE > 1) join the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
        log.info("rank %d/%d joined the %s process group on %s", rank, world, backend, device)
        owns = True
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, device=device, owns_group=owns)


def shutdown_distributed(env: DistEnv) -> None:
    """Destroy the process group if :func:`init_distributed` created it (a caller's own group is left alone)."""
    if env.owns_group and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier(device_ids=[env.device.index] if env.device.type == "cuda" else None)


def load_windows(data_cfg, env: DistEnv) -> "GenomeWindows":
    """The genome windows of a data config section, built by rank 0 first.

    Rank 0 builds (or validates) the genome store's cache files; the other ranks open the finished files
    after the barrier, so no two processes write the same cache.
    """
    from ..data import GenomeWindows

    windows = GenomeWindows.from_config(data_cfg) if env.is_main else None
    barrier(env)
    return windows if windows is not None else GenomeWindows.from_config(data_cfg)


def all_reduce_sum(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (on ``env.device``, as NCCL requires); returns it."""
    if env.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_int(value: int, env: DistEnv, src: int = 0) -> int:
    """Rank ``src``'s ``value`` on every rank."""
    if not env.distributed:
        return value
    t = torch.tensor([value], dtype=torch.long, device=env.device)
    dist.broadcast(t, src)
    return int(t.item())


def all_gather_tensor(tensor: torch.Tensor, env: DistEnv) -> list[torch.Tensor]:
    """Every rank's ``tensor`` (same shape and dtype on all ranks), in rank order, on the CPU."""
    if not env.distributed:
        return [tensor.cpu()]
    t = tensor.to(env.device)
    out = [torch.empty_like(t) for _ in range(env.world_size)]
    dist.all_gather(out, t)
    return [o.cpu() for o in out]
