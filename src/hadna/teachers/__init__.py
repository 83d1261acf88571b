"""The teacher side of HAD: NT 6-mer tokenisation with nucleotide spans, and a frozen teacher wrapper.

* :mod:`hadna.teachers.nt_tokens` - how NT tokenises, vectorised, with per-token student spans.
* :mod:`hadna.teachers.wrapper` - :class:`Teacher`: load, freeze, tokenise student batches, extract features.
* :mod:`hadna.teachers.ntv2` - a native NTv2 model (core ESM + gated feed-forward) and a strict
  loader for NTv2 checkpoints that never runs their remote code.
* :mod:`hadna.teachers.random_nt` - NT-format ESM configs and small random checkpoints.
* :mod:`hadna.teachers.spans` - span tokenizers of every family (k-mer, one token per nucleotide, offsets/BPE):
  teacher tokens as nucleotide spans, which is all masking and span pooling need.
* :mod:`hadna.teachers.hyenadna` - a native HyenaDNA model and a strict loader (no remote code).

Importing this package (or any module in it) imports torch and transformers: it imports
:mod:`hadna.teachers.ntv2`, which builds on transformers' ``EsmConfig``/``EsmForMaskedLM`` at module level.
"""

from hadna.teachers.nt_tokens import (
    NT_CLS_ID,
    NT_MASK_ID,
    NT_PAD_ID,
    NT_TOKEN_TO_ID,
    NT_VOCAB,
    NT_VOCAB_SIZE,
    NTTokens,
    nt_token_spans_reference,
    nt_tokenize_batch,
    nt_tokenize_ids,
    write_nt_vocab,
)
from hadna.teachers.hyenadna import load_hyenadna
from hadna.teachers.ntv2 import load_ntv2, ntv2_support_problems
from hadna.teachers.random_nt import make_random_nt_teacher, nt_esm_config, nt_tokenizer
from hadna.teachers.spans import CharSpanTokenizer, KmerSpanTokenizer, OffsetSpanTokenizer, SpanTokenizer
from hadna.teachers.wrapper import Teacher, TeacherInputs

__all__ = [
    "CharSpanTokenizer",
    "KmerSpanTokenizer",
    "OffsetSpanTokenizer",
    "SpanTokenizer",
    "load_hyenadna",
    "NT_CLS_ID",
    "NT_MASK_ID",
    "NT_PAD_ID",
    "NT_TOKEN_TO_ID",
    "NT_VOCAB",
    "NT_VOCAB_SIZE",
    "NTTokens",
    "Teacher",
    "TeacherInputs",
    "load_ntv2",
    "make_random_nt_teacher",
    "nt_esm_config",
    "nt_token_spans_reference",
    "nt_tokenize_batch",
    "nt_tokenize_ids",
    "nt_tokenizer",
    "ntv2_support_problems",
    "write_nt_vocab",
]
