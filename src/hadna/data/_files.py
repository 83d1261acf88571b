"""Opening data files that may be plain or gzip/bgzip compressed.

Compression is detected from the first two bytes (the gzip magic ``1f 8b``), not from the file name,
so a mis-named file still works. bgzip output is a series of gzip members; Python's :mod:`gzip`
reads multi-member files transparently.
"""

from __future__ import annotations

import contextlib
import gzip
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import DataError, MissingFileError

GZIP_MAGIC = b"\x1f\x8b"

#: what a truncated or corrupt gzip stream raises while being read.
GZIP_ERRORS: tuple[type[BaseException], ...] = (EOFError, gzip.BadGzipFile, zlib.error)


def require_file(path: str | Path, what: str = "file") -> Path:
    """``path`` as a Path if it is a readable file; else a one-line error saying what is wrong with it
    (:class:`MissingFileError` when absent, :class:`DataError` for a directory or another non-file)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} {path} is a directory; pass a file")
    if not path.exists():
        raise MissingFileError(f"{what} not found: {path}")
    if not path.is_file():
        raise DataError(f"{what} {path} is not a regular file")
    return path


@contextlib.contextmanager
def open_binary(path: str | Path, what: str = "file") -> Iterator[tuple[BinaryIO, BinaryIO, bool]]:
    """Yield ``(stream, raw, is_gzip)``.

    ``stream`` yields the decompressed bytes; ``raw`` is the file on disk, whose ``tell()`` gives the
    number of (compressed) bytes consumed so far, which is what a progress bar should count.
    Raises :class:`MissingFileError` (naming ``what``) if ``path`` is not a file.
    """
    path = require_file(path, what)
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if is_gzip:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream, raw, True
        else:
            yield raw, raw, False
