"""Streaming embedding of sequence files: FASTA / CSV / TSV / parquet in, ``.npy`` or ``.parquet`` out.

Input is read in chunks of ``chunk_size`` records (FASTA via :func:`hadna.data.fasta.iter_fasta`,
tables via pandas/pyarrow batches) and every chunk is validated (the error names the file and the
record/line), upper-cased, optionally truncated, embedded and written out before the next is read,
so memory is bounded by one chunk whatever the file size.

Outputs:

``.npy``
    ``[N, D]`` float32 (a memory-mapped file filled chunk by chunk; N is counted in a first pass),
    plus ``<out>.ids.tsv`` with ``index, id, length`` per row (ids: FASTA record ids, the table's
    ``id``/``name`` column, or the 0-based row number).
``.parquet``
    columns ``id`` (string), ``length`` (int32), ``embedding`` (fixed-size list of D float32), one
    row group per chunk.

Both are written to a temporary file and renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..data._files import GZIP_ERRORS, open_binary, require_file
from ..errors import ConfigError, DataError
from ..utils.io import atomic_path
from ..utils.logging import get_logger, progress
from .inference import Throughput, embed_sequences
from .formats import file_format
from .readers import clean_sequences, find_column, truncate
from .models import EvalModel

log = get_logger("eval.embed")

ID_COLUMNS = ("id", "name")
SEQ_COLUMNS = ("sequence", "seq")
OUTPUT_SUFFIXES = (".npy", ".parquet")


def _kind(path: Path) -> str:
    kind = file_format(path)
    if kind is not None:
        return kind
    raise DataError(f"{path}: unknown input format (expected FASTA .fa/.fasta/.fna, .csv, .tsv, optionally gzipped, "
                    f"or .parquet)")


def iter_chunks(path: str | Path, chunk_size: int = 4096) -> Iterator[tuple[list[str], list[str]]]:
    """Yield ``(ids, sequences)`` chunks of validated, upper-cased sequences (see module doc)."""
    path = require_file(path, "input file")
    kind = _kind(path)
    if kind == "fasta":
        from ..data.fasta import iter_fasta

        ids: list[str] = []
        seqs: list[str] = []
        for rid, seq in iter_fasta(path):  # validated by the FASTA reader (names record and line)
            ids.append(rid)
            seqs.append(seq.upper())
            if len(ids) == chunk_size:
                yield ids, seqs
                ids, seqs = [], []
        if ids:
            yield ids, seqs
        return
    row0 = 0
    for frame in _table_batches(path, kind, chunk_size):
        cols = list(frame.columns)
        seq_col = find_column(cols, SEQ_COLUMNS, str(path))
        if seq_col is None:
            raise DataError(f"{path}: no 'sequence' or 'seq' column; columns found: {cols}")
        id_col = find_column(cols, ID_COLUMNS, str(path), ordered=True)
        raw = frame[seq_col].tolist()
        line0 = row0 + (2 if kind != "parquet" else 0)
        word = "line" if kind != "parquet" else "row"
        for i, s in enumerate(raw):
            if not isinstance(s, str):
                raise DataError(f"{path}: {word} {line0 + i}: missing or non-text sequence ({s!r})")
        seqs = clean_sequences(raw, lambda i: f"{path}: {word} {line0 + i}")
        ids = [str(x) for x in frame[id_col].tolist()] if id_col is not None else \
            [str(row0 + i) for i in range(len(seqs))]
        row0 += len(seqs)
        yield ids, seqs


def _table_batches(path: Path, kind: str, chunk_size: int) -> Iterator[Any]:
    import pandas as pd

    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise DataError(f"{path}: cannot read as parquet: {exc}") from None
        for batch in pf.iter_batches(batch_size=chunk_size):
            yield batch.to_pandas()
        return
    try:
        reader = pd.read_csv(path, sep="\t" if kind == "tsv" else ",", dtype=str, keep_default_na=False,
                             na_filter=False, compression="infer", chunksize=chunk_size)
        yield from reader
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError,
            *GZIP_ERRORS) as exc:
        raise DataError(f"{path}: cannot read as a table: {exc}") from None


def count_records(path: str | Path) -> int:
    """Number of records (a cheap first pass; parquet reads its metadata only)."""
    path = require_file(path, "input file")
    kind = _kind(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception as exc:
            raise DataError(f"{path}: cannot read as parquet: {exc}") from None
    if kind == "fasta":  # count header lines ('>' at a line start) in blocks
        count, last = 0, b"\n"
        with open_binary(path, "input file") as (stream, _, _):
            while True:
                try:
                    block = stream.read(1 << 20)
                except GZIP_ERRORS as exc:
                    raise DataError(f"{path}: truncated or corrupt gzip ({exc})") from None
                if not block:
                    return count
                count += (last + block).count(b"\n>")
                last = block[-1:]
    return sum(len(f) for f in _table_batches(path, kind, 65536))


def embed_file(model: EvalModel, input_path: str | Path, out_path: str | Path, *, batch_size: int = 128,
               chunk_size: int = 4096, max_length: int | None = None) -> dict[str, Any]:
    """Embed every sequence of ``input_path`` into ``out_path`` (``.npy`` or ``.parquet``); returns a summary."""
    out = Path(out_path)
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ConfigError(f"--out {out}: unknown output format {suffix or '(none)'}; use .npy or .parquet")
    if chunk_size < 1 or batch_size < 1:
        raise ConfigError("chunk and batch sizes must be >= 1")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give the output file's name (e.g. {out / ('embeddings' + suffix)})")
    total = count_records(input_path)
    if total == 0:
        if _kind(Path(input_path)) == "fasta":  # text without a '>' header: the FASTA reader names the line
            from ..data.fasta import iter_fasta

            for _ in iter_fasta(input_path):
                break
        raise DataError(f"{input_path}: no sequences")
    tp = Throughput()
    n_trunc = 0
    written = 0
    ids_path = out.with_name(out.name + ".ids.tsv")
    bar = progress(total=total, desc="embedding", unit="seq")
    if suffix == ".npy" and ids_path.is_dir():
        raise ConfigError(f"{ids_path} is a directory; it would hold the ids of --out {out}")
    # Both outputs are written to temporaries; the ids are published right after the embeddings (an error
    # before that removes both temporaries, so no orphan ids file is left next to an old or absent --out).
    with contextlib.ExitStack() as stack:
        ids_tmp = stack.enter_context(atomic_path(ids_path)) if suffix == ".npy" else None
        tmp = stack.enter_context(atomic_path(out, suffix=suffix))
        if ids_tmp is not None:
            ids_fh = stack.enter_context(open(ids_tmp, "w", newline=""))
            ids_writer = csv.writer(ids_fh, delimiter="\t", lineterminator="\n")
            ids_writer.writerow(["index", "id", "length"])
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(total, model.hidden_size))
            writer = None
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = pa.schema([("id", pa.string()), ("length", pa.int32()),
                                ("embedding", pa.list_(pa.float32(), model.hidden_size))])
            writer = pq.ParquetWriter(tmp, schema)
        try:
            for ids, seqs in iter_chunks(input_path, chunk_size):
                if max_length is not None:
                    cut = [truncate(s, max_length) for s in seqs]
                    n_trunc += sum(len(a) != len(b) for a, b in zip(cut, seqs))
                    seqs = cut
                if written + len(seqs) > total:
                    raise DataError(f"{input_path}: more records than counted ({total}); was the file changed?")
                if writer is None:
                    _, t = embed_sequences(model, seqs, batch_size, out=arr[written:written + len(seqs)],
                                           show_progress=False)
                    for i, (rid, s) in enumerate(zip(ids, seqs)):
                        ids_writer.writerow([written + i, rid, len(s)])
                else:
                    feats, t = embed_sequences(model, seqs, batch_size, show_progress=False)
                    flat = pa.array(feats.reshape(-1), type=pa.float32())
                    table = pa.table({"id": pa.array(ids, pa.string()),
                                      "length": pa.array([len(s) for s in seqs], pa.int32()),
                                      "embedding": pa.FixedSizeListArray.from_arrays(flat, model.hidden_size)},
                                     schema=schema)
                    writer.write_table(table)
                tp.add(t)
                written += len(seqs)
                bar.update(len(seqs))
            if written != total:
                raise DataError(f"{input_path}: read {written} records but counted {total}; was the file changed?")
        finally:
            if writer is not None:
                writer.close()
            else:
                arr.flush()
                del arr
            bar.close()
    summary = {"input": str(input_path), "output": str(out), "n": written, "dim": model.hidden_size,
               "truncated": n_trunc, "seconds": tp.seconds, "nt": tp.nucleotides, "nt_per_s": tp.nt_per_s}
    if suffix == ".npy":
        summary["ids"] = str(ids_path)
    return summary
