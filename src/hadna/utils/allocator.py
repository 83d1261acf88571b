"""Keep large CPU tensors out of mmap: glibc's allocator settings for a long-running PyTorch process.

glibc's ``malloc`` serves any block above its mmap threshold (dynamic, at most 32 MiB on 64-bit Linux) with a
fresh ``mmap`` and returns it with ``munmap`` when freed, and trims the top of the heap whenever more than
the trim threshold (128 KiB by default) is free. PyTorch's CPU allocator calls ``malloc`` for every tensor, so
a forward pass whose intermediates exceed the threshold (embedding a batch of 128 x 500-bp sequences: attention
scores and chunked delta-rule states) maps, page-faults and zero-fills the same memory again at every call.
Measured on hadna's probe path (300 x 500 bp, one thread, ``getrusage``): 24.3 s of system time against 32.6 s
of user time, 6.5 M minor page faults; with the thresholds raised, 1.3 s and 0.38 M.

:func:`tune_cpu_allocator` raises both thresholds with ``mallopt`` so that freed blocks stay in the heap for
the next call. The cost: memory freed by the process is kept for reuse instead of returned to the system
(resident memory stays at its peak). The ``hadna`` command line calls it once at start; library users may call
it themselves. ``HADNA_MALLOC_TUNING=0`` turns it off. Anything other than glibc (macOS, Windows, musl) is left
alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger(__name__)

ENV_SWITCH = "HADNA_MALLOC_TUNING"
M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap
TRIM_THRESHOLD = 1 << 30  # keep up to 1 GiB of free heap for reuse (mallopt takes an int)

_tuned: bool | None = None


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def tune_cpu_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True when they are set (see the module notes)."""
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not ok:
        log.debug("glibc refused the malloc thresholds; the allocator keeps its defaults")
    _tuned = ok
    return ok


__all__ = ["ENV_SWITCH", "tune_cpu_allocator"]
