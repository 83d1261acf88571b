"""Logging set-up and progress bars shared by the recipes."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

LOGGER_NAME = "hadna"


def get_logger(name: str | None = None) -> logging.Logger:
    return logging.getLogger(LOGGER_NAME if name is None else f"{LOGGER_NAME}.{name}")


def setup_logging(verbose: bool = False, log_file: str | None = None) -> None:
    """Log to stderr (and optionally a file) with timestamps; idempotent."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    if not any(getattr(h, "_hadna", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(fmt)
        handler._hadna = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    if log_file is not None and not any(getattr(h, "baseFilename", None) == log_file for h in logger.handlers):
        fh = logging.FileHandler(log_file)
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    logger.propagate = False


def format_duration(seconds: float) -> str:
    """``42 s``, ``12.5 min``, ``3.2 h``: a duration for log lines and tables (``?`` for NaN or infinity;
    negative durations, from clocks or bad records, read as 0 s)."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(seconds, 0.0)
    if round(seconds) < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if round(seconds / 60, 1) < 60 else f"{seconds / 3600:.1f} h"


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             disable: bool | None = None, **kwargs) -> "tqdm":  # noqa: F821
    """A tqdm progress bar that switches itself off when stderr is not a terminal (CI, log files)."""
    from tqdm.auto import tqdm

    if disable is None:
        disable = not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True, **kwargs)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars inside (weight-loading and "Writing model shards"
    bars for a few-MB model): hadna checks and logs loading and saving itself."""
    from transformers.utils import logging as hf_logging  # only where a model is loaded or saved: it is heavy

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
