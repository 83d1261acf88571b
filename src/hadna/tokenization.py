"""Character-level DNA tokenizer: one token per nucleotide, strict validation, NumPy speed.

The vocabulary is fixed (:mod:`hadna.vocab`): ``[PAD]=0 [MASK]=1 [CLS]=2 [UNK]=3 A=4 C=5 G=6 T=7 N=8``.

What is accepted (strict validation, IUPAC codes to ``N``, ``U`` to ``T``, no whitespace, no empty
sequence): see :mod:`hadna.sequence`, which this tokenizer encodes with.

By default there is no ``[CLS]``: token ``i`` is nucleotide ``i``. ``add_cls_token=True`` prepends
one ``[CLS]`` per sequence; ``max_length`` then counts it, as in Hugging Face.

Three layers, all sharing the same validation:

* :func:`encode_sequence` / :func:`batch_encode` / :func:`decode_ids` / :func:`reverse_complement`:
  plain functions, in :mod:`hadna.sequence` (re-exported here);
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
from typing import Any

import numpy as np
import torch
from transformers import BatchEncoding, PreTrainedTokenizer
from transformers.tokenization_utils_base import TruncationStrategy
from transformers.utils import PaddingStrategy

from hadna.errors import CheckpointError, InvalidSequenceError
from hadna.sequence import PaddingSide, _empty, _encode, batch_encode, decode_ids, encode_sequence, reverse_complement
from hadna.vocab import (
    CLS_ID,
    CLS_TOKEN,
    MASK_TOKEN,
    PAD_TOKEN,
    SPECIAL_TOKENS,
    TOKEN_TO_ID,
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
