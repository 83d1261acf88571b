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
import errno
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

from ..errors import CheckpointError, DataError, DirectoryInUseError


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux >= 4.7 reports it in
    ``/proc/self/status``); elsewhere set-and-restore under a lock, so that threads of this module never
    see the temporary value."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _plain_file_mode() -> int:
    """The mode a plain ``open()`` gives a new file: 0666 less the umask."""
    return 0o666 & ~_umask()


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

    On an exception the temporary file is removed and ``path`` is untouched, and the folders created for
    it are removed again (when still empty). Stale temporaries of ``path`` left by dead processes are
    removed first.
    """
    path = Path(path)
    made: list[Path] = []  # the folders this call created (not one another process made meanwhile)
    tmp_path = None
    try:
        for d in reversed(path.parents):
            if not d.is_dir():
                try:
                    os.mkdir(d)
                    made.insert(0, d)  # innermost first
                except FileExistsError:
                    if not d.is_dir():
                        raise
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", suffix=suffix + ".tmp",
                                   dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        os.chmod(tmp_path, _plain_file_mode())
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if tmp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
        for d in made:
            with contextlib.suppress(OSError):  # not empty (another writer's file): kept
                d.rmdir()
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory next to ``path``; on success it replaces ``path`` as a whole.

    An existing ``path`` is moved aside and deleted only after the new directory is complete, so a reader
    sees the old directory or the new one, never half of one. On an exception the temporary directory is
    removed and ``path`` is untouched. Files get the mode a plain ``open()`` would give them (0666 less the
    umask): some writers (transformers' ``save_pretrained`` for safetensors) create theirs 0600, which left
    exported weights unreadable to anyone else sharing a checkpoint.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    remove_stale_temporaries(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        mode = _plain_file_mode()
        for f in tmp.rglob("*"):
            if f.is_file() and not f.is_symlink():
                os.chmod(f, mode)
        trash = path.parent / f".{path.name}.old-{os.getpid()}"
        if path.exists():
            os.replace(path, trash)
        os.replace(tmp, path)  # publish first: a kill during the (slow) delete below never loses the new directory
        shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_HELD_LOCKS: dict[str, tuple[int, int]] = {}  # resolved directory -> (fd, depth) held by this process
_LOCK_TRIES = 6  # over ~0.25 s before a directory counts as in use
LOCK_FILE = ".hadna.lock"


@contextlib.contextmanager
def lock_directory(path: str | os.PathLike, what: str = "output directory",
                   clean: tuple[str, ...] = (), remove_when_empty: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on directory ``path`` (created if needed) for the ``with`` block.

    A second process that asks for the same directory gets a one-line
    :class:`~hadna.errors.DirectoryInUseError` naming the holder's pid, host and start time, instead of
    both writing into it. The lock is ``flock`` on ``path/.hadna.lock``, so the operating system drops it
    when the holder exits, however it exits (no stale lock after a crash). Re-entrant within a process.
    Under ``torchrun`` only rank 0 (``RANK`` unset or 0) locks: the other ranks belong to the same run.
    ``clean``: entries of ``path`` whose stale temporaries (of dead processes) the lock holder removes.
    A directory the lock created is removed again when nothing but the lock file is left in it at the end
    (with the parents created for it, when they are empty);
    ``remove_when_empty``: also one that existed before (a lock directory of its own, not an output).
    """
    import fcntl
    import socket
    import time

    if int(os.environ.get("RANK", "0") or 0) != 0:
        yield
        return
    directory = Path(path)
    made = [d for d in (directory, *directory.parents) if not d.exists()]  # innermost first
    created = bool(made)
    directory.mkdir(parents=True, exist_ok=True)
    key = str(directory.resolve())
    if key in _HELD_LOCKS:
        fd, depth = _HELD_LOCKS[key]
        _HELD_LOCKS[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _HELD_LOCKS[key]
            _HELD_LOCKS[key] = (fd, depth - 1)
        return
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        for attempt in range(_LOCK_TRIES):  # a few tries: lock_holder (a dry run) holds a shared lock for an instant
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == _LOCK_TRIES - 1:
                    raise
                time.sleep(0.05)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise DirectoryInUseError(f"{what} {directory} is in use by {holder}; wait for it to finish or choose "
                                  f"another --output-dir") from None
    except OSError as exc:  # e.g. Lustre without flock, some NFS/FUSE mounts
        if exc.errno not in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL):
            raise
        os.close(fd)
        logging.getLogger("hadna.io").warning(
            "%s: the filesystem does not support file locks (%s); running without the lock that keeps a second "
            "process out of this %s", directory, exc.strerror, what)
        yield
        return
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"hadna pid {os.getpid()} on {socket.gethostname()} (since "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')})\n".encode(), 0)
    _HELD_LOCKS[key] = (fd, 1)
    try:
        for name in clean:
            remove_stale_temporaries(directory / name)
        yield
    finally:
        del _HELD_LOCKS[key]
        os.ftruncate(fd, 0)
        if (created or remove_when_empty) and [p.name for p in directory.iterdir()] == [LOCK_FILE]:  # nothing written
            with contextlib.suppress(OSError):
                (directory / LOCK_FILE).unlink()
                directory.rmdir()
                for parent in made[1:]:  # and the parents made for it, unless something else went there
                    parent.rmdir()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def lock_holder(path: str | os.PathLike) -> str | None:
    """Who holds :func:`lock_directory` on ``path`` now ("hadna pid ... on HOST (since ...)"), or None.

    Creates nothing: no lock file means no holder. It takes a shared lock for an instant to find out;
    :func:`lock_directory` tries again for a quarter of a second before it calls a directory in use, so a
    run starting in that instant is not turned away.
    """
    import fcntl

    try:
        fd = os.open(Path(path) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        except OSError:  # a filesystem without locks: nobody can hold one
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


#: bytes per checksummed shard of a cache file (one sha256 each; a damaged shard is named in the error).
SHARD_BYTES = 64 << 20


def shard_digests(path: str | os.PathLike, shard_bytes: int = SHARD_BYTES) -> list[str]:
    """sha256 of each ``shard_bytes`` piece of a file (the last may be shorter); stored next to big caches."""
    import hashlib

    out = []
    with open(path, "rb") as fh:
        while True:
            block = fh.read(shard_bytes)
            if not block:
                return out
            out.append(hashlib.sha256(block).hexdigest())


def verify_shard_digests(path: str | os.PathLike, digests: list[str], what: str,
                         shard_bytes: int = SHARD_BYTES) -> None:
    """Raise a one-line :class:`~hadna.errors.DataError` if ``path``'s content is not what ``digests`` record
    (checked shard by shard, ~1 GB/s): a cache overwritten after it was built is never used silently."""
    actual = shard_digests(path, shard_bytes)
    for i, (a, b) in enumerate(zip(actual, digests)):
        if a != b:
            raise DataError(f"{what} {path}: bytes {i * shard_bytes:,}-{min((i + 1) * shard_bytes, os.path.getsize(path)):,} "
                            f"fail their checksum (the file changed after it was built); rebuild it")
    if len(actual) != len(digests):
        raise DataError(f"{what} {path}: {os.path.getsize(path):,} bytes, not the size it was built with; rebuild it")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


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


def read_config_json(path: str | os.PathLike, what: str = "checkpoint config") -> dict[str, Any]:
    """A checkpoint's ``config.json`` as plain JSON (no model code runs); CheckpointError, naming ``what`` and
    the file, when it cannot be read, is not JSON or is not a JSON object."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read {what} {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{what} {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{what} {path} is not a JSON object")
    return data


def list_directory(directory: str | os.PathLike, limit: int = 12) -> str:
    """What a directory holds, for an error message: sorted names (folders with ``/``), at most ``limit``."""
    directory = Path(directory)
    if not directory.is_dir():
        return "(directory does not exist)"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir())
    if not names:
        return "(empty directory)"
    return ", ".join(names[:limit]) + (f", ... ({len(names)} entries)" if len(names) > limit else "")
