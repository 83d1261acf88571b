"""FASTA and BED parsing: compression, line endings, block boundaries, and every malformed input."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from hadna.data.bed import BedInterval, read_bed
from hadna.data.fasta import iter_fasta, iter_fasta_blocks, read_fasta_dict
from hadna.errors import DataError, MissingFileError
from hadna.vocab import ENCODE_LUT

RECORDS = {
    "chr1": "ACGTacgtNN" * 7 + "ACG",  # soft-masked, multi-line
    "chr2": "ggggCCCCRYkm",  # IUPAC codes are valid
    "chr3": "A",
}
HEADERS = {"chr1": "chr1 some description", "chr2": "chr2", "chr3": "chr3\tx=1"}


def fasta_text(records: dict[str, str], width: int = 13, newline: str = "\n", trailing_newline: bool = True,
               blank_lines: bool = True) -> str:
    lines = []
    for rid, seq in records.items():
        lines.append(">" + HEADERS.get(rid, rid))
        lines += [seq[i:i + width] for i in range(0, len(seq), width)]
        if blank_lines:
            lines.append("")
    text = newline.join(lines)
    return text + newline if trailing_newline else text


def write(path: Path, text: str | bytes, compression: str = "plain") -> Path:
    data = text.encode() if isinstance(text, str) else text
    if compression == "gzip":
        data = gzip.compress(data)
    elif compression == "multigz":  # like bgzip: several gzip members, cut mid-line
        cuts = [0, len(data) // 3, 2 * len(data) // 3 + 1, len(data)]
        data = b"".join(gzip.compress(data[a:b]) for a, b in zip(cuts, cuts[1:]))
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("block_size", [1, 3, 16, 1 << 20], ids=lambda b: f"block{b}")
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("compression", ["plain", "gzip", "multigz"])
def test_parse_roundtrip(tmp_path, compression, newline, block_size):
    path = write(tmp_path / "g.fa", fasta_text(RECORDS, newline=newline), compression)
    got = list(iter_fasta(path, block_size=block_size))
    assert got == list(RECORDS.items())  # order, ids (first word) and case kept


@pytest.mark.parametrize("trailing_newline", [True, False], ids=["trailing-nl", "no-trailing-nl"])
def test_last_line_without_newline(tmp_path, trailing_newline):
    path = write(tmp_path / "g.fa", fasta_text(RECORDS, blank_lines=False, trailing_newline=trailing_newline))
    assert read_fasta_dict(path) == RECORDS


def test_single_line_record_longer_than_block(tmp_path):
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGTacgtn"), 5000))
    path = write(tmp_path / "g.fa", f">one\n{seq}\n>two\nAC\n")
    assert dict(iter_fasta(path, block_size=64)) == {"one": seq, "two": "AC"}


def test_blocks_encode_ids_with_lowercase_folded(tmp_path):
    path = write(tmp_path / "g.fa", fasta_text(RECORDS), "gzip")
    pieces: dict[str, list[np.ndarray]] = {}
    for rid, raw, ids in iter_fasta_blocks(path, block_size=5):
        assert len(raw) == len(ids) and ids.dtype == np.uint8
        pieces.setdefault(rid, []).append(ids)
    for rid, seq in RECORDS.items():
        expect = ENCODE_LUT[np.frombuffer(seq.upper().encode(), np.uint8)]
        np.testing.assert_array_equal(np.concatenate(pieces[rid]), expect)


def test_progress_callback_reaches_file_size(tmp_path):
    path = write(tmp_path / "g.fa.gz", fasta_text(RECORDS), "gzip")
    seen: list[int] = []
    list(iter_fasta_blocks(path, block_size=8, on_progress=seen.append))
    assert seen == sorted(seen) and seen[-1] == path.stat().st_size


# ----------------------------------------------------------------------------- malformed FASTA
BAD_FASTA = {
    # id: (file content, fragments the message must contain)
    "sequence-before-header": ("\nACGT\n>r1\nACGT\n", ["line 2", "before the first '>' header"]),
    "invalid-char": (">r1\nACGT\nAC-T\n", ["record 'r1'", "line 3", "column 3", "'-'"]),
    "invalid-char-second-record": (">r1\nACGT\n>r2 d\nACGT\nACGTX\n", ["record 'r2'", "line 5", "column 5", "'X'"]),
    "space-in-sequence": (">r1\nAC GT\n", ["record 'r1'", "line 2", "column 3", "' '"]),
    "non-ascii-byte": (">r1\nACG\u00e9\n", ["record 'r1'", "line 2", "column 4", "byte 0xc3"]),
    "empty-record-middle": (">r1\n>r2\nACGT\n", ["record 'r1'", "header at line 1", "no sequence"]),
    "empty-record-last": (">r1\nAC\n\n>r2\n", ["record 'r2'", "header at line 4", "no sequence"]),
    "duplicate-id": (">r1\nA\n>r1 again\nC\n", ["line 3", "duplicate record id 'r1'", "first seen at line 1"]),
    "empty-file": ("", ["no FASTA records"]),
    "blank-file": ("\n\r\n\n", ["no FASTA records"]),
    "header-without-id": (">r1\nA\n>  \nACGT\n", ["line 3", "no record id"]),
}


@pytest.mark.parametrize("block_size", [2, 1 << 20], ids=["block2", "block1M"])
@pytest.mark.parametrize("crlf", [False, True], ids=["LF", "CRLF"])
@pytest.mark.parametrize("case", list(BAD_FASTA), ids=list(BAD_FASTA))
def test_malformed_fasta(tmp_path, case, crlf, block_size):
    text, fragments = BAD_FASTA[case]
    if crlf:
        text = text.replace("\n", "\r\n").replace("\r\r\n", "\r\n")
    path = write(tmp_path / "bad.fa", text)
    with pytest.raises(DataError) as err:
        list(iter_fasta(path, block_size=block_size))
    msg = str(err.value)
    assert str(path) in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


def _big_gz(tmp_path: Path) -> bytes:
    rng = np.random.default_rng(1)
    text = ">r1\n" + "\n".join("".join(rng.choice(list("ACGT"), 60)) for _ in range(3000)) + "\n"
    return gzip.compress(text.encode())


@pytest.mark.parametrize("damage", ["truncated", "bit-flip", "bad-crc", "trailing-garbage"])
def test_corrupt_gzip(tmp_path, damage):
    data = _big_gz(tmp_path)
    if damage == "truncated":
        data = data[:len(data) // 2]
    elif damage == "bit-flip":
        data = data[:400] + bytes([data[400] ^ 0xFF]) + data[401:]
    elif damage == "bad-crc":
        data = data[:-8] + bytes(8)
    else:
        data = data + b"not gzip"
    path = write(tmp_path / "bad.fa.gz", data)
    with pytest.raises(DataError, match="truncated or corrupt gzip") as err:
        list(iter_fasta(path, block_size=4096))
    assert str(path) in str(err.value)


def test_truncated_gzip_names_record_when_known(tmp_path):
    path = write(tmp_path / "bad.fa.gz", _big_gz(tmp_path)[:-2000])
    with pytest.raises(DataError, match=r"in record 'r1' near line \d+"):
        list(iter_fasta(path, block_size=4096))


def test_missing_fasta(tmp_path):
    with pytest.raises(MissingFileError, match="FASTA file not found"):
        list(iter_fasta(tmp_path / "nope.fa"))


# ----------------------------------------------------------------------------- BED
LENGTHS = {"chr1": 1000, "chr2": 500}


@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_read_bed(tmp_path, compression):
    text = ("# comment\ntrack name=x\nbrowser position chr1:1-10\n\n"
            "chr1\t10\t20\tname\t0\t+\n"
            "chr2 0 500\n"
            "chr1\t5\t5\r\n")  # zero-length is legal BED; CRLF tolerated
    path = write(tmp_path / "r.bed", text, compression)
    assert read_bed(path, LENGTHS) == [BedInterval("chr1", 10, 20), BedInterval("chr2", 0, 500),
                                       BedInterval("chr1", 5, 5)]


BAD_BED = {
    "too-few-columns": ("chr1\t10\n", ["line 1", "at least 3 columns"]),
    "non-integer": ("chr1\t10\t20\nchr1\t1e3\t2000\n", ["line 2", "integers"]),
    "start-after-end": ("chr1\t30\t20\n", ["line 1", "invalid interval"]),
    "negative-start": ("chr1\t-1\t20\n", ["line 1", "invalid interval"]),
    "unknown-chrom": ("# h\nchr3\t0\t10\n", ["line 2", "'chr3'", "known ids: 'chr1', 'chr2'", "did you mean"]),
    "end-beyond-record": ("chr2\t0\t501\n", ["line 1", "ends beyond record 'chr2'", "length 500"]),
}


@pytest.mark.parametrize("case", list(BAD_BED), ids=list(BAD_BED))
def test_malformed_bed(tmp_path, case):
    text, fragments = BAD_BED[case]
    path = write(tmp_path / "bad.bed", text)
    with pytest.raises(DataError) as err:
        read_bed(path, LENGTHS)
    msg = str(err.value)
    assert str(path) in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


def test_bed_without_known_records_only_checks_syntax(tmp_path):
    path = write(tmp_path / "r.bed", "anything\t0\t10\n")
    assert read_bed(path) == [BedInterval("anything", 0, 10)]
