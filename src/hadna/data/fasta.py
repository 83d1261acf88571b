"""Streaming, validating FASTA reader.

Accepts plain, gzip and bgzip (multi-member gzip) files with any number of records, soft-masked
(lowercase) sequence and CRLF line endings. The record id is the first whitespace-separated word of
the header. The file is read in fixed-size blocks, so memory stays bounded by the block size no
matter how large the genome is (:func:`iter_fasta` still returns one record at a time as a string;
use :func:`iter_fasta_blocks` to avoid even that).

Every problem raises :class:`~hadna.errors.DataError` naming the file, the record and the line:
sequence before the first header, a character that is not a nucleotide code (checked with
:data:`hadna.vocab.ENCODE_LUT`), an empty record, a duplicated record id (unless
``duplicate_ids="number"``), an empty file, and a truncated or corrupt gzip stream.

``duplicate_ids="number"`` keeps the first record of an id as it is and names the n-th repeat
``<id>#<n>`` (``#2``, ``#3``, ...), for files whose ids are not unique by construction (e.g. the
orangutan file of the EPO primate alignment, whose unplaced blocks are all called ``Ppyg.Un:0-811``
and the like).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import DataError
from ..vocab import ENCODE_LUT, INVALID
from ._files import GZIP_ERRORS, open_binary

#: bytes read per block. Large enough that per-block Python overhead is negligible on a 3 Gbp
#: genome, small enough that the several temporary copies of a block stay in the tens of MiB.
DEFAULT_BLOCK_SIZE = 4 << 20

_GT = ord(">")

#: what to do when a record id occurs twice: ``error`` (default) or ``number`` (rename the repeats)
DUPLICATE_ID_POLICIES = ("error", "number")


def number_repeat(rid: str, taken) -> str:
    """The name ``duplicate_ids="number"`` gives a repeat of ``rid``: the first ``<rid>#n`` (n >= 2) that is
    not in ``taken`` (the ids seen so far)."""
    n = 2
    while f"{rid}#{n}" in taken:
        n += 1
    return f"{rid}#{n}"


def _describe_byte(b: int) -> str:
    ch = chr(b)
    if b < 128 and ch.isprintable():
        return repr(ch)
    return f"byte 0x{b:02x}"


class _Scanner:
    """State machine fed with chunks that start at a known (line, column); yields sequence pieces."""

    def __init__(self, path: Path, duplicate_ids: str = "error") -> None:
        if duplicate_ids not in DUPLICATE_ID_POLICIES:
            raise ValueError(f"duplicate_ids must be one of {DUPLICATE_ID_POLICIES}, got {duplicate_ids!r}")
        self.path = path
        self.duplicate_ids = duplicate_ids
        self.line = 1  # 1-based line number of the next byte fed
        self.col = 0  # 0-based column of the next byte fed
        self.rid: str | None = None
        self.rec_line = 0  # line of the current record's header
        self.rec_len = 0
        self.seen: dict[str, int] = {}  # record id -> header line

    def where(self) -> str:
        if self.rid is not None:
            return f"in record {self.rid!r} near line {self.line}"
        if self.line == 1 and self.col == 0:
            return "at the start of the file (nothing could be read)"
        return f"near line {self.line}"

    def feed(self, chunk: bytes, at_line_start: bool) -> Iterator[tuple[str, bytes, np.ndarray]]:
        """Process ``chunk``; only a chunk that ends with a newline (or ends the file) may contain headers."""
        pos, n = 0, len(chunk)
        while pos < n:
            # every pos > 0 is just after a newline, so a '>' there starts a header line
            if (pos > 0 or at_line_start) and chunk[pos] == _GT:
                eol = chunk.find(b"\n", pos)
                end = n if eol < 0 else eol
                self._header(chunk[pos + 1:end])
                if eol < 0:  # last line of the file without a trailing newline
                    self.col += end - pos
                    pos = n
                else:
                    self.line += 1
                    self.col = 0
                    pos = eol + 1
            else:
                nxt = chunk.find(b"\n>", pos)
                end = n if nxt < 0 else nxt + 1
                seg = chunk[pos:end]
                piece = self._sequence(seg)
                if piece is not None:
                    yield piece
                newlines = seg.count(b"\n")
                if newlines:
                    self.line += newlines
                    self.col = len(seg) - 1 - seg.rfind(b"\n")
                else:
                    self.col += len(seg)
                pos = end

    def finish(self) -> None:
        if self.rid is None:
            raise DataError(f"{self.path}: no FASTA records found (the file is empty or has no '>' header line)")
        self._end_record()

    def _end_record(self) -> None:
        if self.rid is not None and self.rec_len == 0:
            raise DataError(f"{self.path}: record {self.rid!r} (header at line {self.rec_line}) has no sequence")

    def _header(self, raw: bytes) -> None:
        self._end_record()
        words = raw.decode("utf-8", errors="replace").split()
        if not words:
            raise DataError(f"{self.path}, line {self.line}: header line has no record id after '>'")
        rid = words[0]
        if rid in self.seen:
            if self.duplicate_ids == "error":
                raise DataError(f"{self.path}, line {self.line}: duplicate record id {rid!r} "
                                f"(first seen at line {self.seen[rid]}; set duplicate_ids: number to number "
                                "the repeats <id>#2, <id>#3, ...)")
            rid = number_repeat(rid, self.seen)
        self.seen[rid] = self.line
        self.rid, self.rec_line, self.rec_len = rid, self.line, 0

    def _sequence(self, seg: bytes) -> tuple[str, bytes, np.ndarray] | None:
        seq = seg.translate(None, b"\r\n")
        if not seq:
            return None  # blank lines are harmless anywhere
        if self.rid is None:
            k = next(i for i, b in enumerate(seg) if b not in b"\r\n")
            line = self.line + seg.count(b"\n", 0, k)
            raise DataError(f"{self.path}, line {line}: sequence data before the first '>' header line")
        ids = ENCODE_LUT[np.frombuffer(seq, dtype=np.uint8)]
        if ids.max() == INVALID:  # INVALID is the largest id, so this is a cheap "any invalid?"
            self._invalid(seg)
        self.rec_len += len(seq)
        return self.rid, seq, ids

    def _invalid(self, seg: bytes) -> None:
        arr = np.frombuffer(seg, dtype=np.uint8)
        bad = (ENCODE_LUT[arr] == INVALID) & (arr != ord("\n")) & (arr != ord("\r"))
        k = int(np.argmax(bad))
        line = self.line + seg.count(b"\n", 0, k)
        last_nl = seg.rfind(b"\n", 0, k)
        col = k - last_nl if last_nl >= 0 else self.col + k + 1
        raise DataError(f"{self.path}: record {self.rid!r}, line {line}, column {col}: invalid character "
                        f"{_describe_byte(int(arr[k]))} in sequence (allowed: A C G T N, IUPAC codes, U; "
                        "lowercase is fine)")


def iter_fasta_blocks(path: str | Path, block_size: int = DEFAULT_BLOCK_SIZE,
                      on_progress: Callable[[int], None] | None = None, duplicate_ids: str = "error",
                      ) -> Iterator[tuple[str, bytes, np.ndarray]]:
    """Stream a FASTA file as validated pieces ``(record_id, seq_bytes, token_ids)``.

    ``seq_bytes`` is a piece of one record's sequence as written in the file (case kept, line
    breaks removed); ``token_ids`` (uint8, same length) is its encoding with
    :data:`hadna.vocab.ENCODE_LUT` (lowercase folded). Consecutive pieces of a record are yielded in
    order and every record yields at least one piece. ``on_progress(n)`` is called after each block
    with the number of bytes of the file on disk (compressed bytes for gzip) consumed so far.
    ``duplicate_ids``: ``error`` or ``number`` (see the module docstring).
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    path = Path(path)
    scanner = _Scanner(path, duplicate_ids)
    with open_binary(path, "FASTA file") as (stream, raw, is_gzip):
        carry = b""
        at_line_start = True
        while True:
            try:
                block = stream.read(block_size)
            except GZIP_ERRORS as exc:
                raise DataError(f"{path}: truncated or corrupt gzip ({exc}) {scanner.where()}") from None
            if on_progress is not None:
                on_progress(raw.tell())
            if not block:
                if carry:
                    yield from scanner.feed(carry, at_line_start)
                break
            buf = carry + block if carry else block
            nl = buf.rfind(b"\n")
            if nl >= 0:  # process whole lines; keep the partial last line for the next block
                yield from scanner.feed(buf[:nl + 1], at_line_start)
                carry, at_line_start = buf[nl + 1:], True
            elif at_line_start and buf[:1] == b">":  # an unfinished header line: wait for its end
                carry = buf
            else:  # part of a very long sequence line (e.g. single-line FASTA): process it now
                yield from scanner.feed(buf, at_line_start)
                carry, at_line_start = b"", False
    scanner.finish()


def iter_fasta(path: str | Path, block_size: int = DEFAULT_BLOCK_SIZE) -> Iterator[tuple[str, str]]:
    """Yield ``(record_id, sequence)`` per record, with case kept (soft-masking = lowercase).

    Holds one record at a time in memory. Characters are as in the file (IUPAC codes and ``U`` are
    not converted); only line breaks are removed.
    """
    current: str | None = None
    parts: list[bytes] = []
    for rid, seq, _ in iter_fasta_blocks(path, block_size):
        if rid != current:  # ids are unique, so a new id means a new record
            if current is not None:
                yield current, b"".join(parts).decode("ascii")
            current, parts = rid, []
        parts.append(seq)
    if current is not None:
        yield current, b"".join(parts).decode("ascii")


def read_fasta_dict(path: str | Path) -> dict[str, str]:
    """Read a small FASTA file into ``{record_id: sequence}`` (case kept), in file order."""
    return dict(iter_fasta(path))
