"""Atomic file writes: a reader never sees a half-written file.

Everything long-running (checkpoints, result JSONs, caches, reports) is written to a temporary file
in the destination directory and moved into place with :func:`os.replace`, which is atomic on POSIX.
Published files get the usual permissions (``0666`` minus the user's umask), not the private ``0600``
of :func:`tempfile.mkstemp`.

Temporaries are named after the target and the writing process (``.NAME.tmp-PID-...``,
``.NAME.tmp-PID``, ``.NAME.old-PID``), so the temporaries a killed process left behind are recognised
and removed (:func:`remove_stale_temporaries`) the next time the same target is written, while those
of a process that is still running are left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries of ``path`` (see the module doc) whose writing process is dead; returns them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?:tmp|old)-(\d+)(?:-|$)")
    removed = []
    for p in path.parent.iterdir():
        m = pattern.match(p.name)
        if m and not _pid_alive(int(m.group(1))):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed onto ``path``.

    On an exception the temporary file is removed and ``path`` is untouched. Stale temporaries of
    ``path`` left by dead processes are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory next to ``path``; on success it replaces ``path`` as a whole.

    An existing ``path`` is moved aside and deleted only after the new directory is complete, so a reader
    sees the old directory or the new one, never half of one. On an exception the temporary directory is
    removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    remove_stale_temporaries(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if path.exists():
            trash = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
