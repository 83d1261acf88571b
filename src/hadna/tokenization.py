"""Character-level DNA tokenizer: one token per nucleotide, strict validation, NumPy speed.

The vocabulary is fixed (:mod:`hadna.vocab`): ``[PAD]=0 [MASK]=1 [CLS]=2 [UNK]=3 A=4 C=5 G=6 T=7 N=8``.

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

By default there is no ``[CLS]``: token ``i`` is nucleotide ``i``. ``add_cls_token=True`` prepends
one ``[CLS]`` per sequence; ``max_length`` then counts it, as in Hugging Face.

Three layers, all sharing the same validation:

* :func:`encode_sequence` / :func:`batch_encode` / :func:`decode_ids` / :func:`reverse_complement`:
  plain functions; the batch path encodes the whole batch with one LUT lookup and scatters it into
  the padded matrix without per-sequence Python work beyond ``len()``.
* :meth:`HadTokenizer.batch_encode_ids`: the same batch path with the tokenizer's options; this is
  what the rest of hadna uses on hot paths.
* ``HadTokenizer(...)(texts, padding=True, truncation=True, max_length=..., return_tensors="pt")``:
  the ordinary Hugging Face call. Each text is encoded by the NumPy path; padding and truncation are
  Hugging Face's own. Following the Hugging Face convention, special-token strings written literally
  in the text (``"AC[MASK]GT"``) become those tokens (fill-mask pipelines build inputs that way);
  everything between them is validated strictly, and with ``split_special_tokens=True`` the ``[`` is
  reported as an invalid character instead. The plain functions never accept special-token strings.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from transformers import BatchEncoding, PreTrainedTokenizer
from transformers.tokenization_utils_base import TruncationStrategy
from transformers.utils import PaddingStrategy

from hadna.errors import CheckpointError, InvalidSequenceError
from hadna.vocab import (
    CLS_ID,
    CLS_TOKEN,
    COMPLEMENT_ID,
    DECODE_LUT,
    ENCODE_LUT,
    INVALID,
    MASK_ID,
    MASK_TOKEN,
    PAD_ID,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    TOKEN_TO_ID,
    UNK_ID,
    UNK_TOKEN,
    VOCAB,
    VOCAB_SIZE,
)

__all__ = [
    "HadTokenizer",
    "batch_encode",
    "decode_ids",
    "encode_sequence",
    "reverse_complement",
]

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
    ids = torch.from_numpy(np.ascontiguousarray(x)) if is_numpy else x
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


# --------------------------------------------------------------------------------------------------
# Hugging Face tokenizer
# --------------------------------------------------------------------------------------------------

_SPECIAL_PATTERN = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))
_FIXED_SPECIALS = {"pad_token": PAD_TOKEN, "mask_token": MASK_TOKEN, "cls_token": CLS_TOKEN, "unk_token": UNK_TOKEN}


def _text_to_ids(text: str, split_special_tokens: bool, index: int | None = None) -> list[int]:
    """HF-path encoding of one text: literal special tokens allowed unless ``split_special_tokens``."""
    if not isinstance(text, str):
        raise TypeError(f"HadTokenizer encodes str inputs, got {type(text).__name__}")
    if split_special_tokens or "[" not in text:
        return _encode(text, index=index).tolist()
    if not text:
        raise _empty(None, index)
    ids: list[int] = []
    pos = 0
    for match in _SPECIAL_PATTERN.finditer(text):
        ids += _encode(text[pos : match.start()], index=index, offset=pos, allow_empty=True).tolist()
        ids.append(TOKEN_TO_ID[match.group()])
        pos = match.end()
    ids += _encode(text[pos:], index=index, offset=pos, allow_empty=True).tolist()
    return ids


class HadTokenizer(PreTrainedTokenizer):
    """Hugging Face tokenizer for the hadna student: one token per nucleotide, fixed 9-token vocabulary.

    Args:
        vocab_file: ``vocab.json`` written by :meth:`save_pretrained`; only checked against the fixed
            vocabulary (a mismatch means the files belong to another tokenizer).
        add_cls_token: prepend ``[CLS]`` to every sequence (saved with the tokenizer).
        padding_side: "right" (default) or "left"; Hugging Face calls may override it per call.
        truncation_side: "right" (keep the first bases, default) or "left".

    Example::

        tok = HadTokenizer()
        batch = tok(["ACGT", "acgtnn"], padding=True, return_tensors="pt")
        fast = tok.batch_encode_ids(["ACGT", "acgtnn"])  # same ids, no per-token Python
    """

    vocab_files_names = {"vocab_file": "vocab.json"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | None = None,
        add_cls_token: bool = False,
        padding_side: PaddingSide = "right",
        truncation_side: PaddingSide = "right",
        **kwargs: Any,
    ) -> None:
        for name in ("bos_token", "eos_token", "sep_token"):
            if kwargs.get(name) is not None:
                raise ValueError(f"HadTokenizer has no {name}; its vocabulary is fixed: {list(VOCAB)}")
        for name, token in _FIXED_SPECIALS.items():
            given = kwargs.setdefault(name, token)
            if str(given) != token:
                raise ValueError(f"HadTokenizer's {name} is fixed to {token!r}, got {str(given)!r}")
        if vocab_file is not None:
            _check_vocab_file(vocab_file)
        self.add_cls_token = bool(add_cls_token)
        # padding/truncation side are passed on so that they land in init_kwargs and are saved.
        super().__init__(
            add_cls_token=self.add_cls_token, padding_side=padding_side, truncation_side=truncation_side, **kwargs
        )

    # ---- vocabulary --------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE

    def get_vocab(self) -> dict[str, int]:
        return dict(TOKEN_TO_ID)

    def _add_tokens(self, new_tokens: Any, special_tokens: bool = False) -> int:
        # Ids are baked into checkpoints and the embedding has VOCAB_SIZE rows: refuse to grow.
        for token in new_tokens or []:
            if str(token) not in TOKEN_TO_ID:
                raise ValueError(f"HadTokenizer's vocabulary is fixed {list(VOCAB)}; cannot add {str(token)!r}")
        return super()._add_tokens(new_tokens, special_tokens=special_tokens)

    def _convert_token_to_id(self, token: str) -> int:
        if token in TOKEN_TO_ID:
            return TOKEN_TO_ID[token]
        if len(token) == 1:  # lowercase / IUPAC / U given as pre-split tokens
            return int(_encode(token)[0])
        raise InvalidSequenceError(f"unknown token {token!r}; the vocabulary is {list(VOCAB)}")

    def _convert_id_to_token(self, index: int) -> str:
        if not 0 <= index < VOCAB_SIZE:
            raise ValueError(f"token id {index} outside the vocabulary [0, {VOCAB_SIZE})")
        return VOCAB[index]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens)

    # ---- tokenisation ------------------------------------------------------------------------

    def tokenize(self, text: str, **kwargs: Any) -> list[str]:
        """Uppercase single-nucleotide tokens (``"acR[MASK]"`` -> ``["A", "C", "N", "[MASK]"]``)."""
        split = kwargs.pop("split_special_tokens", self.split_special_tokens)
        return [VOCAB[i] for i in _text_to_ids(text, split)]

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        return [VOCAB[i] for i in _encode(text).tolist()]

    def _encode_plus(
        self,
        text: Any,
        text_pair: Any = None,
        is_split_into_words: bool = False,
        split_special_tokens: bool | None = None,
        return_offsets_mapping: bool = False,
        **kwargs: Any,
    ):
        """Turn str inputs into ids with the NumPy path, then let Hugging Face truncate and pad them."""
        if text_pair is not None:
            raise ValueError("HadTokenizer does not encode sequence pairs (there is no [SEP] token)")
        if return_offsets_mapping:
            raise NotImplementedError("offsets are trivial for HadTokenizer: token i is character i (after [CLS])")
        split = self.split_special_tokens if split_special_tokens is None else split_special_tokens
        if not is_split_into_words:
            if isinstance(text, str):
                text = _text_to_ids(text, split)
            elif isinstance(text, (list, tuple)) and text and all(isinstance(t, str) for t in text):
                fast = self._fast_batch(text, split, **kwargs)
                if fast is not None:
                    return fast
                text = [_text_to_ids(t, split, index=i) for i, t in enumerate(text)]
        return super()._encode_plus(text, is_split_into_words=is_split_into_words, **kwargs)

    #: Use the vectorised batch path for plain padded batches (tests switch it off to compare).
    _use_fast_batch = True

    def _fast_batch(
        self,
        texts: Sequence[str],
        split_special_tokens: bool,
        add_special_tokens: bool = True,
        padding_strategy: PaddingStrategy = PaddingStrategy.DO_NOT_PAD,
        truncation_strategy: TruncationStrategy = TruncationStrategy.DO_NOT_TRUNCATE,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: Any = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_length: bool = False,
        **_: Any,
    ) -> BatchEncoding | None:
        """The common padded-batch call done by :func:`batch_encode`; None where Hugging Face must do it.

        Converting per-sequence Python lists to a tensor dominates Hugging Face's own batch path
        (~0.2 ms per 500 bp sequence), so padded batches of plain sequences skip it. The result is
        identical (tests compare both paths); anything unusual (no padding, literal special tokens,
        overflow, extra outputs, sequences over the length limits, which Hugging Face only warns
        about) goes the Hugging Face way.
        """
        if not self._use_fast_batch or return_tensors not in (None, "pt", "np"):
            return None
        if return_overflowing_tokens or return_special_tokens_mask or return_length or return_token_type_ids:
            return None
        if padding_strategy == PaddingStrategy.MAX_LENGTH and max_length is None:
            return None
        if padding_strategy not in (PaddingStrategy.LONGEST, PaddingStrategy.MAX_LENGTH):
            return None
        if truncation_strategy not in (
            TruncationStrategy.DO_NOT_TRUNCATE, TruncationStrategy.LONGEST_FIRST, TruncationStrategy.ONLY_FIRST
        ):
            return None
        if not split_special_tokens and any("[" in t for t in texts):
            return None
        add_cls = self.add_cls_token and add_special_tokens
        truncate = truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE and max_length is not None
        if not truncate:
            longest = max(map(len, texts)) + add_cls
            if longest > self.model_max_length or (
                padding_strategy == PaddingStrategy.MAX_LENGTH and longest > max_length  # type: ignore[operator]
            ):
                return None
        out = batch_encode(
            texts,
            max_length=max_length if truncate else None,
            truncation=truncate,
            padding_side=padding_side or self.padding_side,  # type: ignore[arg-type]
            add_cls_token=add_cls,
            truncation_side=self.truncation_side,  # type: ignore[arg-type]
            pad_to_multiple_of=pad_to_multiple_of,
            return_tensors="np",
            pad_to_length=max_length if padding_strategy == PaddingStrategy.MAX_LENGTH else None,
        )
        if return_attention_mask is False:
            del out["attention_mask"]
        if return_tensors is None:
            data = {k: v.tolist() for k, v in out.items()}
        elif return_tensors == "pt":
            data = {k: torch.from_numpy(v) for k, v in out.items()}
        else:
            data = dict(out)
        return BatchEncoding(data, tensor_type=return_tensors)

    def build_inputs_with_special_tokens(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None
    ) -> list[int]:
        if token_ids_1 is not None:
            raise ValueError("HadTokenizer does not encode sequence pairs (there is no [SEP] token)")
        return [CLS_ID] + token_ids_0 if self.add_cls_token else list(token_ids_0)

    def get_special_tokens_mask(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None, already_has_special_tokens: bool = False
    ) -> list[int]:
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        if token_ids_1 is not None:
            raise ValueError("HadTokenizer does not encode sequence pairs (there is no [SEP] token)")
        return [1] * self.add_cls_token + [0] * len(token_ids_0)

    # ---- fast batch path ---------------------------------------------------------------------

    def batch_encode_ids(
        self,
        seqs: Sequence[SeqLike],
        max_length: int | None = None,
        truncation: bool = False,
        padding_side: PaddingSide | None = None,
        record_ids: Sequence[str] | None = None,
        pad_to_multiple_of: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Padded ``{"input_ids": LongTensor [B, T], "attention_mask": LongTensor [B, T]}``.

        Same ids as ``self(seqs, padding=True, ...)`` but without per-token Python work; literal
        special-token strings are *not* accepted here. See :func:`batch_encode` for the arguments;
        ``add_cls_token`` and ``truncation_side`` come from the tokenizer, ``padding_side`` defaults
        to the tokenizer's.
        """
        return batch_encode(  # type: ignore[return-value]
            seqs,
            max_length=max_length,
            truncation=truncation,
            padding_side=padding_side or self.padding_side,
            record_ids=record_ids,
            add_cls_token=self.add_cls_token,
            truncation_side=self.truncation_side,
            pad_to_multiple_of=pad_to_multiple_of,
        )

    def reverse_complement(self, x: Any, attention_mask: Any = None) -> Any:
        """See :func:`reverse_complement`."""
        return reverse_complement(x, attention_mask)

    # ---- saving ------------------------------------------------------------------------------

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        from hadna.utils.io import atomic_write_json

        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"tokenizer save directory {save_directory!r} is not a directory")
        name = (f"{filename_prefix}-" if filename_prefix else "") + self.vocab_files_names["vocab_file"]
        path = os.path.join(save_directory, name)
        atomic_write_json(path, dict(TOKEN_TO_ID))
        return (path,)


def _check_vocab_file(path: str) -> None:
    """A saved vocab.json must be exactly the fixed vocabulary; anything else is another tokenizer."""
    try:
        with open(path, encoding="utf-8") as fh:
            vocab = json.load(fh)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot read the tokenizer vocabulary ({err})") from None
    if vocab != TOKEN_TO_ID:
        raise CheckpointError(
            f"{path}: vocabulary {vocab!r} differs from hadna's fixed vocabulary {TOKEN_TO_ID!r};"
            " this tokenizer was not saved by hadna"
        )
