"""The one device resolver of training, evaluation and the CLI."""

from __future__ import annotations

import torch

from ..errors import ConfigError


def resolve_device(device: str | torch.device | None = "auto", local_rank: int | None = None) -> torch.device:
    """``None``/``""``/``"auto"``: CUDA when available, else CPU; otherwise ``device`` (cpu, cuda, cuda:N, ...).

    local_rank: a torchrun process's local rank; a CUDA device without an index becomes ``cuda:LOCAL_RANK``
    (modulo the visible devices). ConfigError for an unknown name, or for CUDA when it is not available.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device in (None, "", "auto"):
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise ConfigError(f"unknown device {device!r} (use cpu, cuda, cuda:N or auto)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {str(device)!r} requested but CUDA is not available (use cpu or auto)")
    if dev.type == "cuda" and dev.index is None and local_rank is not None:
        dev = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    return dev
