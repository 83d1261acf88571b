"""GenomeStore: a whole genome as one memory-mapped uint8 array of token ids.

All records of one or more FASTA files are concatenated, in file order, into a single array of
:mod:`hadna.vocab` ids (A=4, C=5, G=6, T=7, N=8; lowercase folded, IUPAC codes -> N). Record ``r``
occupies ``tokens[offsets[r] : offsets[r] + lengths[r]]``.

The array is built once and cached on disk as two files in the cache directory:

* ``genome-<id>.tokens.npy``: the ids, loaded with ``np.load(mmap_mode="r")`` (never pickle), so
  opening hg38 (3.1 GB) costs no RAM and all DDP ranks share the page cache;
* ``genome-<id>.json``: the index (record names, offsets, lengths, N counts) and the cache key.

``<id>`` hashes the FASTA files' absolute paths, so each set of FASTA files has one cache slot; the
key stored in the index adds their sizes and modification times, so a changed FASTA rebuilds the
slot in place instead of leaving stale multi-GB files behind. Both files are written atomically
(:func:`hadna.utils.io.atomic_path`), the index last: an index on disk always describes a complete
tokens file.

Building streams the FASTA in blocks straight into the ``.npy`` file, so peak memory is a few block
sizes (tens of MiB) whatever the genome size.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError, MissingFileError
from ..utils.io import SHARD_BYTES, atomic_path, shard_digests, verify_shard_digests
from ..utils.logging import get_logger, progress
from ..vocab import DECODE_LUT, N_ID
from .fasta import DEFAULT_BLOCK_SIZE, iter_fasta_blocks, number_repeat

log = get_logger("data.genome")

FORMAT = "hadna-genome-store"
# 2: per-shard sha256 of the tokens file in the index, verified on open;
# 3: records per FASTA file (``file_records``) and the duplicate-id policy in the key
FORMAT_VERSION = 3
#: temporary files are created private (0600); a cache next to a shared genome should be readable by all
_FILE_MODE = 0o644


def _npy_header(n: int) -> bytes:
    """The .npy (v1.0) header of a 1-D uint8 array of length ``n``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": (n,)})
    return buf.getvalue()


# NumPy pads the header so that the shape may grow to 21 digits: its length does not depend on n.
# That lets us reserve it up front and stream the data without knowing the total length yet.
_HEADER_LEN = len(_npy_header(1))


def default_cache_dir(fasta: str | Path) -> Path:
    """``.hadna_cache`` next to ``fasta`` if that is writable, else ``$XDG_CACHE_HOME/hadna`` (~/.cache/hadna)."""
    parent = Path(fasta).resolve().parent
    local = parent / ".hadna_cache"
    probe = local if local.exists() else parent
    if probe.is_dir() and os.access(probe, os.W_OK | os.X_OK):
        return local
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hadna"


def _source_key(paths: Sequence[Path]) -> list[dict]:
    out = []
    for p in paths:
        st = p.stat()
        out.append({"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


class GenomeStore:
    """Token ids of all records of a genome, memory-mapped read-only.

    Attributes:
        tokens: uint8 [total_length] token ids of all records, concatenated.
        names: record ids, in file order.
        offsets, lengths: int64 [num_records], record r is ``tokens[offsets[r]:offsets[r] + lengths[r]]``.
        n_counts: int64 [num_records], number of N (unknown-base) tokens per record.
        sources: the FASTA files (absolute path, size, mtime_ns) the store was built from.
        file_records: number of records of each FASTA file, in ``sources`` order (records of file f are
            ``sum(file_records[:f])`` to ``sum(file_records[:f + 1])``).
        cache_hit: True if this object was loaded from an up-to-date cache, False if just built.
    """

    def __init__(self, tokens: np.ndarray, names: list[str], offsets: np.ndarray, lengths: np.ndarray,
                 n_counts: np.ndarray, sources: list[dict] | None = None, cache_hit: bool = False,
                 file_records: Sequence[int] | None = None) -> None:
        # a plain ndarray view of the memmap: slicing it is several times cheaper than slicing np.memmap
        self.tokens = tokens.view(np.ndarray) if isinstance(tokens, np.memmap) else tokens
        self.names = list(names)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.n_counts = np.asarray(n_counts, dtype=np.int64)
        self.sources = list(sources or [])
        self.cache_hit = cache_hit
        self.file_records = [len(self.names)] if file_records is None else [int(n) for n in file_records]
        if sum(self.file_records) != len(self.names):
            raise DataError(f"genome store: file_records {self.file_records} do not add up to "
                            f"{len(self.names)} records")
        self.index = {name: i for i, name in enumerate(self.names)}

    # ----------------------------------------------------------------- queries
    @property
    def num_records(self) -> int:
        return len(self.names)

    @property
    def total_length(self) -> int:
        return int(self.tokens.shape[0])

    def record_lengths(self) -> dict[str, int]:
        return dict(zip(self.names, self.lengths.tolist()))

    def record_index(self, name: str) -> int:
        try:
            return self.index[name]
        except KeyError:
            shown = ", ".join(repr(n) for n in self.names[:5])
            raise DataError(f"record {name!r} is not in the genome (known ids: {shown}"
                            f"{', ...' if self.num_records > 5 else ''})") from None

    def record_ids(self, name: str | int) -> np.ndarray:
        """uint8 [length] token ids of one record (a read-only view, no copy)."""
        r = name if isinstance(name, int) else self.record_index(name)
        off = int(self.offsets[r])
        return self.tokens[off:off + int(self.lengths[r])]

    def fetch(self, name: str | int, start: int = 0, end: int | None = None) -> str:
        """Uppercase sequence of ``name[start:end]`` (soft-masking is not kept in the store)."""
        ids = self.record_ids(name)[start:end]
        return DECODE_LUT[ids].tobytes().decode("ascii")

    # ----------------------------------------------------------------- build / load
    @classmethod
    def from_fasta(cls, fasta: str | Path | Sequence[str | Path], cache_dir: str | Path | None = None, *,
                   rebuild: bool = False, block_size: int = DEFAULT_BLOCK_SIZE,
                   duplicate_ids: str = "error") -> "GenomeStore":
        """Load the cached store of ``fasta`` (one path or a list), building it first if needed.

        The cache is rebuilt when any FASTA's size or modification time changed, when the cache is
        missing or unreadable, or when ``rebuild`` is true. ``duplicate_ids`` (``error`` or
        ``number``) is the FASTA reader's policy for repeated record ids, applied within and across
        files (:mod:`hadna.data.fasta`).
        """
        paths = [Path(fasta)] if isinstance(fasta, (str, os.PathLike)) else [Path(p) for p in fasta]
        if not paths:
            raise DataError("no FASTA files given")
        for p in paths:
            if not p.is_file():
                raise MissingFileError(f"FASTA file not found: {p}")
        paths = [p.resolve() for p in paths]
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(paths[0])
        slot = hashlib.sha256("\n".join(str(p) for p in paths).encode()).hexdigest()[:16]
        index_path = cache / f"genome-{slot}.json"
        tokens_path = cache / f"genome-{slot}.tokens.npy"
        key = {"format": FORMAT, "version": FORMAT_VERSION, "sources": _source_key(paths),
               "duplicate_ids": duplicate_ids}
        if not rebuild:
            store = cls._load_if_current(index_path, tokens_path, key)
            if store is not None:
                return store
        cls._build(paths, index_path, tokens_path, key, block_size)
        store = cls._open(index_path, json.loads(index_path.read_text()))
        store.cache_hit = False
        return store

    @classmethod
    def load(cls, index_path: str | Path) -> "GenomeStore":
        """Open a store from its ``genome-*.json`` index (without checking that the FASTA is unchanged)."""
        index_path = Path(index_path)
        try:
            meta = json.loads(index_path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{index_path}: cannot read genome store index ({exc})") from None
        return cls._open(index_path, meta)

    @classmethod
    def _open(cls, index_path: Path, meta: dict) -> "GenomeStore":
        tokens_path = index_path.parent / meta["tokens_file"]
        try:
            tokens = np.load(tokens_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{tokens_path}: cannot read genome store tokens ({exc})") from None
        if tokens.dtype != np.uint8 or tokens.ndim != 1 or tokens.shape[0] != meta["total_length"]:
            raise DataError(f"{tokens_path}: tokens file does not match its index {index_path} "
                            f"(dtype {tokens.dtype}, shape {tokens.shape}, expected {meta['total_length']} uint8)")
        verify_shard_digests(tokens_path, meta["sha256"], "genome token cache", meta["shard_bytes"])
        return cls(tokens, meta["names"], meta["offsets"], meta["lengths"], meta["n_counts"],
                   sources=meta["key"]["sources"], cache_hit=True, file_records=meta["file_records"])

    @classmethod
    def _load_if_current(cls, index_path: Path, tokens_path: Path, key: dict) -> "GenomeStore | None":
        if not index_path.is_file() or not tokens_path.is_file():
            return None
        try:
            meta = json.loads(index_path.read_text())
            if meta.get("key") != key:
                log.info("genome store cache %s is out of date (FASTA changed); rebuilding", index_path)
                return None
            return cls._open(index_path, meta)
        except (OSError, ValueError, KeyError, TypeError, DataError) as exc:
            log.warning("genome store cache %s is unreadable (%s); rebuilding", index_path, exc)
            return None

    @staticmethod
    def _build(paths: list[Path], index_path: Path, tokens_path: Path, key: dict, block_size: int) -> None:
        index_path.unlink(missing_ok=True)  # an index must never describe a tokens file other than its own
        names: list[str] = []
        lengths: list[int] = []
        n_counts: list[int] = []
        origin: dict[str, Path] = {}
        file_records: list[int] = []
        renumber = key["duplicate_ids"] == "number"
        total_bytes = sum(s["size"] for s in key["sources"])
        log.info("building genome store from %d FASTA file(s) (%.1f MB) into %s",
                 len(paths), total_bytes / 1e6, tokens_path.parent)
        bar = progress(total=total_bytes, desc="genome store", unit="B", unit_scale=True)
        done_before = 0
        try:
            with atomic_path(tokens_path) as tmp, open(tmp, "wb") as fh:
                fh.write(b"\0" * _HEADER_LEN)  # placeholder, filled in once the length is known
                for path in paths:
                    current = None  # record being read; a new file always starts a new record

                    def on_progress(pos: int, _base: int = done_before) -> None:
                        bar.update(_base + pos - bar.n)

                    before = len(names)
                    for rid, _, ids in iter_fasta_blocks(path, block_size, on_progress, key["duplicate_ids"]):
                        if rid != current:
                            current = rid
                            name = rid
                            if name in origin:  # duplicates within one file are handled by the parser
                                if not renumber:
                                    raise DataError(f"{path}: record id {rid!r} also occurs in {origin[rid]}; "
                                                    "record ids must be unique across all FASTA files (set "
                                                    "duplicate_ids: number to number the repeats)")
                                name = number_repeat(rid, origin)
                            origin[name] = path
                            names.append(name)
                            lengths.append(0)
                            n_counts.append(0)
                        fh.write(ids)
                        lengths[-1] += len(ids)
                        n_counts[-1] += int(np.count_nonzero(ids == N_ID))
                    file_records.append(len(names) - before)
                    done_before += path.stat().st_size
                total = sum(lengths)
                header = _npy_header(total)
                if len(header) != _HEADER_LEN:  # cannot happen with NumPy's padded headers; never write a bad file
                    raise RuntimeError(f"unexpected .npy header length {len(header)} != {_HEADER_LEN}")
                fh.seek(0)
                fh.write(header)
                fh.flush()
                os.chmod(tmp, _FILE_MODE)
                digests = shard_digests(tmp)
        finally:
            bar.close()
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "key": key, "tokens_file": tokens_path.name,
                "total_length": total, "names": names, "offsets": offsets.tolist(), "lengths": lengths,
                "n_counts": n_counts, "file_records": file_records, "shard_bytes": SHARD_BYTES, "sha256": digests}
        with atomic_path(index_path) as tmp:
            tmp.write_text(json.dumps(meta, indent=1) + "\n")
            os.chmod(tmp, _FILE_MODE)
        log.info("genome store: %d records, %d bp (%.2f%% N)", len(names), total, 100 * sum(n_counts) / max(total, 1))
