"""Reading model weights from checkpoint directories safely, with one-line errors.

Weights are preferred as safetensors (data only). A directory that has only a pickled
``pytorch_model.bin`` is loaded by transformers with ``torch.load(weights_only=True)``, which
unpickles tensors and plain containers only and refuses anything else (a pickle that would run
code); :func:`note_pickled_weights` says so in one log line, and :func:`weights_error` turns the
refusal, or a truncated/corrupt weights file, into a one-line :class:`~hadna.errors.CheckpointError`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any, Mapping

from ..errors import CheckpointError
from .logging import get_logger

log = get_logger("weights")


def _safetensors_error() -> type[BaseException]:
    from safetensors import SafetensorError

    return SafetensorError


def load_errors() -> tuple[type[BaseException], ...]:
    """What loading a checkpoint's weights raises for a bad file (to be reported, not shown as a traceback)."""
    return (OSError, ValueError, RuntimeError, TypeError, KeyError, EOFError, pickle.UnpicklingError,
            _safetensors_error())


def pickled_weights(directory: str | os.PathLike) -> list[Path]:
    """The pickled weight files (``*.bin``) of a local directory that has no safetensors weights."""
    path = Path(directory)
    if not path.is_dir() or any(path.glob("*.safetensors")):
        return []
    return sorted(path.glob("*.bin"))


def note_pickled_weights(directory: str | os.PathLike, what: str) -> None:
    """Log (one line) that ``directory``'s weights are pickled and will be read with ``weights_only=True``."""
    files = pickled_weights(directory)
    if files:
        log.warning("%s %s has no safetensors weights; reading %s with torch.load(weights_only=True) (tensors "
                    "only, no code runs; a file that pickles anything else is refused). Prefer safetensors",
                    what, directory, ", ".join(f.name for f in files))


def unloaded_weights(info: Mapping[str, Any]) -> list[str]:
    """Names of the weights that ``from_pretrained(..., output_loading_info=True)`` reported missing or
    mis-shaped (``ignore_mismatched_sizes=True`` puts the latter in ``mismatched_keys`` as tuples)."""
    names = [*info.get("missing_keys", []), *(k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", []))]
    return [str(k) for k in names]


def weights_error(exc: BaseException, where: str, what: str = "weights") -> CheckpointError:
    """A one-line :class:`CheckpointError` for an exception raised while reading ``where``'s weights."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text:
        return CheckpointError(f"{where}: refusing to load the pickled {what}: the file holds objects other than "
                               f"tensors, which torch.load(weights_only=True) does not allow (it could run code); "
                               f"use a safetensors checkpoint")
    if isinstance(exc, _safetensors_error()):
        return CheckpointError(f"{where}: the {what} file is truncated or corrupt ({first})")
    return CheckpointError(f"{where}: cannot load the {what}: {first}")


def weights_digest(state: Mapping[str, Any]) -> str:
    """sha256 of a state dict (names, dtypes, shapes and values): equal exactly for equal weights.

    Tensors are hashed in place (no host copy beyond moving a device tensor to the CPU), so a 500M-parameter
    teacher costs one pass over its memory.
    """
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(f"{name} {t.dtype} {tuple(t.shape)}\n".encode())
        if t.numel():
            h.update(t.view(-1).view(torch.uint8).numpy())
    return h.hexdigest()
