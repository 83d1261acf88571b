"""DNA sequences as the student's token ids: strict validation, encoding, decoding, reverse complement.

The vocabulary is fixed (:mod:`hadna.vocab`): ``[PAD]=0 [MASK]=1 [CLS]=2 [UNK]=3 A=4 C=5 G=6 T=7 N=8``.
This module is the one place that turns sequences into ids and back and reverse-complements them; the
Hugging Face tokenizer (:mod:`hadna.tokenization`), the genome windows (:mod:`hadna.data.windows`) and
reverse-complement averaging (``rc_averaging`` in
:meth:`hadna.models.modeling_had.HadForSequenceClassification.forward`, via :func:`reverse_complement`)
all use it, so RC augmentation and RC test-time averaging agree on what every token does.

What is accepted (documented choices)
-------------------------------------
* ``A C G T N`` in either case; lowercase (soft-masked repeats) maps to the uppercase ids.
* IUPAC ambiguity codes ``R Y S W K M B D H V`` map to ``N`` (the model has no ambiguity tokens;
  ``N`` already means "some base"), and ``U`` maps to ``T`` (RNA input).
* Nothing else. Digits, ``-``, ``.``, ``>``, *any* whitespace (a trailing newline included) and
  non-ASCII characters raise :class:`~hadna.errors.InvalidSequenceError` naming the character, its
  0-based position in the string the caller passed, and the record id when known. Whitespace is
  not stripped, because then ``len(seq)`` would stop being the number of tokens, and token ``i``
  would stop being base ``i`` of the caller's interval; a stray newline almost always means that
  a FASTA/CSV parser went wrong upstream, which is better reported than hidden.
* An empty sequence is an error (a model cannot consume zero tokens).

:func:`encode_sequence` / :func:`batch_encode` / :func:`decode_ids` / :func:`reverse_complement` are
plain functions; the batch path encodes the whole batch with one LUT lookup and scatters it into the
padded matrix without per-sequence Python work beyond ``len()``. They never accept special-token strings.

Reverse complement of token ids: a ``[MASK]`` or ``[UNK]`` stands for an unknown base at its position,
so it moves with its position like any base (to the mirrored position) and stays ``[MASK]``/``[UNK]``;
``[CLS]`` and ``[PAD]`` keep their places.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from hadna.errors import InvalidSequenceError
from hadna.vocab import (
    CLS_ID,
    COMPLEMENT_ID,
    DECODE_LUT,
    ENCODE_LUT,
    INVALID,
    MASK_ID,
    PAD_ID,
    UNK_ID,
    VOCAB,
    VOCAB_SIZE,
)

__all__ = ["batch_encode", "decode_ids", "encode_sequence", "reverse_complement"]

SeqLike = str | bytes | bytearray | memoryview
PaddingSide = Literal["right", "left"]


# --------------------------------------------------------------------------------------------------
# Validation and single-sequence encoding
# --------------------------------------------------------------------------------------------------


def _where(record_id: str | None, index: int | None) -> str:
    """The "of record ..." tail of an error message (empty when nothing is known)."""
    if record_id is not None:
        return f" of record {record_id!r}"
    if index is not None:
        return f" of sequence {index} in the batch"
    return ""


def _describe(char: str | int) -> tuple[str, str]:
    """What to call a bad character, and a hint: ``("character '-'", "")``, ``("byte 0xc3", " (not ASCII)")``."""
    if isinstance(char, int):  # a byte of a bytes input
        if char >= 128:
            return f"byte 0x{char:02x}", " (not ASCII)"
        char = chr(char)
    if ord(char) >= 128:
        return f"character {char!r}", f" (U+{ord(char):04X}, not ASCII)"
    if char.isspace():
        return f"character {char!r}", " (whitespace is not allowed inside a sequence; strip line endings first)"
    if char == ">":
        return f"character {char!r}", " (a FASTA header inside the sequence?)"
    return f"character {char!r}", ""


def _invalid(char: str | int, position: int, record_id: str | None, index: int | None) -> InvalidSequenceError:
    what, hint = _describe(char)
    return InvalidSequenceError(f"invalid {what} at position {position}{_where(record_id, index)}{hint}")


def _empty(record_id: str | None, index: int | None) -> InvalidSequenceError:
    return InvalidSequenceError(f"empty sequence{_where(record_id, index)}: a sequence needs at least one nucleotide")


def _to_ascii(seq: SeqLike, record_id: str | None, index: int | None, offset: int) -> bytes | memoryview:
    """The ASCII bytes of ``seq``; a non-ASCII str character raises with its position in the str.

    Before blaming the non-ASCII character, the ASCII prefix is checked so that the error always
    names the *first* bad character (positions count str characters, not UTF-8 bytes).
    """
    if isinstance(seq, str):
        try:
            return seq.encode("ascii")
        except UnicodeEncodeError as err:
            prefix = np.frombuffer(seq[: err.start].encode("ascii"), dtype=np.uint8)
            _check_ids(ENCODE_LUT[prefix], prefix, record_id, index, offset)
            raise _invalid(seq[err.start], offset + err.start, record_id, index) from None
    if isinstance(seq, (bytes, bytearray, memoryview)):
        return seq
    raise TypeError(f"a DNA sequence must be str or bytes, got {type(seq).__name__}")


def _check_ids(ids: np.ndarray, raw: np.ndarray, record_id: str | None, index: int | None, offset: int) -> None:
    # INVALID (255) is the largest uint8, so one max() both detects and (rarely) triggers the search.
    if ids.size and ids.max() == INVALID:
        pos = int(np.argmax(ids == INVALID))
        raise _invalid(int(raw[pos]), offset + pos, record_id, index)


def _encode(
    seq: SeqLike,
    record_id: str | None = None,
    index: int | None = None,
    offset: int = 0,
    allow_empty: bool = False,
) -> np.ndarray:
    """Validate and encode one sequence. ``offset`` shifts reported positions (chunks of a longer text)."""
    raw = np.frombuffer(_to_ascii(seq, record_id, index, offset), dtype=np.uint8)
    if raw.size == 0 and not allow_empty:
        raise _empty(record_id, index)
    ids = ENCODE_LUT[raw]
    _check_ids(ids, raw, record_id, index, offset)
    return ids


def encode_sequence(seq: SeqLike, record_id: str | None = None) -> np.ndarray:
    """Encode one DNA sequence into token ids (no special tokens).

    Args:
        seq: a str (positions in errors count characters) or bytes (positions count bytes).
        record_id: named in error messages, e.g. ``"chr1:100-200"``.

    Returns:
        ids: ``[len(seq)]`` uint8, values in ``A..N`` (4..8).

    Raises:
        InvalidSequenceError: empty ``seq`` or a character that is not a nucleotide code.
    """
    return _encode(seq, record_id)


# --------------------------------------------------------------------------------------------------
# Batch encoding
# --------------------------------------------------------------------------------------------------


def _raise_first_bad(seqs: Sequence[SeqLike], record_ids: Sequence[str] | None) -> None:
    """Slow path, only after the fast path saw a problem: re-encode one by one to name the culprit."""
    for i, s in enumerate(seqs):
        _encode(s, record_ids[i] if record_ids is not None else None, index=i)
    raise AssertionError("batch validation disagreed with per-sequence validation")  # pragma: no cover


def batch_encode(
    seqs: Sequence[SeqLike],
    max_length: int | None = None,
    truncation: bool = False,
    padding_side: PaddingSide = "right",
    record_ids: Sequence[str] | None = None,
    add_cls_token: bool = False,
    truncation_side: PaddingSide = "right",
    pad_to_multiple_of: int | None = None,
    return_tensors: Literal["pt", "np"] = "pt",
    pad_to_length: int | None = None,
) -> dict[str, torch.Tensor | np.ndarray]:
    """Encode a batch of sequences into a padded id matrix, validating every character.

    The whole batch is joined, looked up in one NumPy operation and scattered into the padded
    matrix with boolean masks, so thousands of sequences cost milliseconds.

    Args:
        seqs: B sequences (str or bytes).
        max_length: longest allowed row, ``[CLS]`` included. Longer rows raise unless ``truncation``.
        truncation: cut rows to ``max_length`` (needs ``max_length``). The whole sequence is still
            validated, also the part that is cut away.
        padding_side: "right" (pad after the sequence) or "left".
        record_ids: B names used in error messages (otherwise the batch index is named).
        add_cls_token: prepend ``[CLS]`` to every row.
        truncation_side: "right" keeps the first bases, "left" the last ones.
        pad_to_multiple_of: round the padded length up to a multiple of this.
        return_tensors: "pt" (torch.int64 tensors) or "np" (int64 arrays).
        pad_to_length: pad to at least this many columns (Hugging Face's ``padding="max_length"``).

    Returns:
        ``{"input_ids": [B, T], "attention_mask": [B, T]}``, T = longest row (or ``pad_to_length``),
        rounded up to ``pad_to_multiple_of``.
    """
    if isinstance(seqs, (str, bytes, bytearray)):
        raise TypeError("batch_encode expects a list of sequences, not a single sequence")
    if padding_side not in ("right", "left") or truncation_side not in ("right", "left"):
        raise ValueError(
            f"padding_side/truncation_side must be 'right' or 'left', got {padding_side!r}/{truncation_side!r}"
        )
    if return_tensors not in ("pt", "np"):
        raise ValueError(f"return_tensors must be 'pt' or 'np', got {return_tensors!r}")
    seqs = list(seqs)
    n_seq = len(seqs)
    if record_ids is not None and len(record_ids) != n_seq:
        raise ValueError(f"got {len(record_ids)} record_ids for {n_seq} sequences")
    n_cls = int(add_cls_token)
    if truncation and max_length is None:
        raise ValueError("truncation=True needs max_length")
    if max_length is not None and max_length < n_cls + 1:
        raise ValueError(f"max_length={max_length} leaves no room for a nucleotide")

    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=n_seq)
    try:
        if all(isinstance(s, str) for s in seqs):
            raw_bytes: bytes = "".join(seqs).encode("ascii")  # type: ignore[arg-type]
        else:
            raw_bytes = b"".join(_to_ascii(s, None, i, 0) for i, s in enumerate(seqs))
    except (UnicodeEncodeError, InvalidSequenceError):
        _raise_first_bad(seqs, record_ids)  # names the first bad sequence, with its record id
    raw = np.frombuffer(raw_bytes, dtype=np.uint8)
    ids = ENCODE_LUT[raw]
    if (lengths == 0).any() or (ids.size and ids.max() == INVALID):
        _raise_first_bad(seqs, record_ids)

    if max_length is not None:
        limit = max_length - n_cls
        too_long = lengths > limit
        if too_long.any() and not truncation:
            i = int(np.argmax(too_long))
            rid = record_ids[i] if record_ids is not None else None
            cls_note = " plus [CLS]" if n_cls else ""
            raise InvalidSequenceError(
                f"sequence{_where(rid, i)} has {lengths[i]} nucleotides{cls_note}, more than max_length={max_length};"
                " pass truncation=True to cut it, or raise max_length"
            )
        if too_long.any():
            # Position of each base inside its own sequence, to keep a window of `limit` per row.
            starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
            pos = np.arange(ids.size) - starts
            if truncation_side == "right":
                keep = pos < limit
            else:
                keep = pos >= np.repeat(lengths - limit, lengths)
            ids = ids[keep]
            lengths = np.minimum(lengths, limit)

    row_len = lengths + n_cls
    width = max(int(row_len.max()) if n_seq else 0, pad_to_length or 0)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    start = np.zeros(n_seq, dtype=np.int64) if padding_side == "right" else width - row_len
    col = np.arange(width)
    attention = (col >= start[:, None]) & (col < (start + row_len)[:, None])
    input_ids = np.full((n_seq, width), PAD_ID, dtype=np.int64)
    nucleotide = attention
    if n_cls:
        nucleotide = attention.copy()
        nucleotide[np.arange(n_seq), start] = False
        input_ids[np.arange(n_seq), start] = CLS_ID
    input_ids[nucleotide] = ids  # row-major order of the mask == order of the joined batch
    attention_mask = attention.astype(np.int64)
    if return_tensors == "np":
        return {"input_ids": input_ids, "attention_mask": attention_mask}
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}


# --------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------

_VOCAB_ARRAY = np.array(VOCAB, dtype=object)


def _as_numpy_ids(ids: Any) -> np.ndarray:
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    arr = np.asarray(ids)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"token ids must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= VOCAB_SIZE):
        raise ValueError(f"token ids must lie in [0, {VOCAB_SIZE}), got values in [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64, copy=False)


def decode_ids(ids: Any) -> str:
    """Turn token ids ``[T]`` (list, array or tensor) back into an uppercase sequence.

    ``[PAD]`` and ``[CLS]`` are dropped (they are not sequence positions), so a padded row decodes
    to its sequence; ``[MASK]`` and ``[UNK]`` stay visible as ``"[MASK]"``/``"[UNK]"`` so that
    hidden positions are not silently lost. ``decode_ids(encode_sequence(s)) == s.upper()`` for
    A/C/G/T/N input (IUPAC codes come back as N, U as T).
    """
    arr = _as_numpy_ids(ids)
    if arr.ndim != 1:
        raise ValueError(f"decode_ids takes one sequence [T], got shape {tuple(arr.shape)}")
    arr = arr[(arr != PAD_ID) & (arr != CLS_ID)]
    if not ((arr == MASK_ID) | (arr == UNK_ID)).any():
        return DECODE_LUT[arr].tobytes().decode("ascii")
    return "".join(_VOCAB_ARRAY[arr].tolist())


# --------------------------------------------------------------------------------------------------
# Reverse complement
# --------------------------------------------------------------------------------------------------

# IUPAC complements (R=A/G <-> Y=C/T, K=G/T <-> M=A/C, B=not A <-> V=not T, D=not C <-> H=not G;
# S, W, N are their own complement). U complements to A: the output is DNA.
_COMPLEMENT_FROM = "ACGTUNRYSWKMBDHV"
_COMPLEMENT_TO = "TGCAANYRSWMKVHDB"
_STR_COMPLEMENT = str.maketrans(
    _COMPLEMENT_FROM + _COMPLEMENT_FROM.lower(), _COMPLEMENT_TO + _COMPLEMENT_TO.lower()
)
_BYTES_COMPLEMENT = bytes.maketrans(
    (_COMPLEMENT_FROM + _COMPLEMENT_FROM.lower()).encode(), (_COMPLEMENT_TO + _COMPLEMENT_TO.lower()).encode()
)


def _reverse_complement_ids(ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """ids: [B, T] -> [B, T], reversing each row's contiguous nucleotide segment in place."""
    if ids.dtype in (torch.bool,) or ids.dtype.is_floating_point or ids.dtype.is_complex:
        raise TypeError(f"token ids must be an integer tensor, got {ids.dtype}")
    if ids.numel() == 0:
        return ids.clone()
    low, high = torch.aminmax(ids)
    if int(low) < 0 or int(high) >= VOCAB_SIZE:
        raise ValueError(f"token ids must lie in [0, {VOCAB_SIZE})")
    valid = ids != PAD_ID if attention_mask is None else attention_mask.to(ids.device) != 0
    if valid.shape != ids.shape:
        raise ValueError(f"attention_mask shape {tuple(valid.shape)} does not match ids shape {tuple(ids.shape)}")
    # [MASK]/[UNK] stand for a nucleotide, so they move with the sequence; [CLS] and [PAD] stay put.
    segment = valid & (ids != CLS_ID)
    n = segment.sum(dim=1)  # [B]
    col = torch.arange(ids.shape[1], device=ids.device)
    first = torch.where(n > 0, segment.to(torch.int8).argmax(dim=1), torch.zeros_like(n))  # [B]
    expected = (col >= first[:, None]) & (col < (first + n)[:, None])
    if not torch.equal(expected, segment):
        row = int((expected != segment).any(dim=1).nonzero()[0])
        raise ValueError(
            f"row {row}: the nucleotide part is not contiguous (padding or [CLS] inside the sequence?);"
            " reverse_complement supports right/left padding and a leading [CLS]"
        )
    mirror = (2 * first + n - 1)[:, None] - col  # first + last - j
    source = torch.where(segment, mirror, col)
    out = torch.gather(ids, 1, source)
    complement = torch.as_tensor(COMPLEMENT_ID, device=ids.device)[out.long()].to(ids.dtype)
    return torch.where(segment, complement, out)


def reverse_complement(x: Any, attention_mask: Any = None) -> Any:
    """Reverse complement a sequence string or token ids.

    * ``str``/``bytes``: complement every base and reverse; case is preserved; IUPAC ambiguity codes
      map to their IUPAC complement (R<->Y, K<->M, B<->V, D<->H; S, W, N unchanged) and U to A.
      Any other character raises :class:`InvalidSequenceError` (position in the input string).
      An empty string returns an empty string.
    * token ids (``torch.Tensor`` or ``np.ndarray``, ``[T]`` or ``[B, T]``, same type/dtype/device
      back): in each row the nucleotide part (valid positions that are not ``[CLS]``) is reversed
      and complemented; ``[PAD]`` and a leading ``[CLS]`` keep their positions, for right and left
      padding. ``[MASK]``/``[UNK]`` inside the sequence move with it (they stand for a base) and are
      their own complement. Valid positions come from ``attention_mask`` when given, otherwise
      from ``ids != [PAD]``. The attention mask itself is unchanged by the operation.
    """
    if isinstance(x, str):
        _encode(x, allow_empty=True)  # validation only
        return x.translate(_STR_COMPLEMENT)[::-1]
    if isinstance(x, (bytes, bytearray)):
        _encode(bytes(x), allow_empty=True)
        return bytes(x).translate(_BYTES_COMPLEMENT)[::-1]
    is_numpy = isinstance(x, np.ndarray)
    if not (is_numpy or isinstance(x, torch.Tensor)):
        raise TypeError(f"reverse_complement takes str, bytes, np.ndarray or torch.Tensor, got {type(x).__name__}")
    if is_numpy:
        arr = np.ascontiguousarray(x)
        ids = torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # e.g. a view of the memory-mapped genome
    else:
        ids = x
    mask = None
    if attention_mask is not None:
        mask = attention_mask
        if not isinstance(mask, torch.Tensor):
            mask = torch.as_tensor(np.asarray(mask))
    if ids.dim() not in (1, 2):
        raise ValueError(f"token ids must be [T] or [B, T], got shape {tuple(ids.shape)}")
    one_row = ids.dim() == 1
    if one_row:
        ids = ids[None]
        mask = mask[None] if mask is not None else None
    out = _reverse_complement_ids(ids, mask)
    if one_row:
        out = out[0]
    return out.numpy() if is_numpy else out
