"""Small randomly initialised NT-format checkpoints, for tests, demos and teacher training.

A "NT-format" checkpoint is a transformers ``EsmForMaskedLM`` with NT's 4,107-token 6-mer
vocabulary and special-token ids, saved with ``save_pretrained`` (safetensors) next to an
``EsmTokenizer`` ``vocab.txt``. It loads with core transformers (no remote code), exactly like
NT v1 checkpoints. (NTv2 itself has gated feed-forward blocks and ships remote code; hadna loads it
with its native port, :mod:`hadna.teachers.ntv2`. Ours uses ESM's plain GELU feed-forward, which
is fine for a stand-in teacher.)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from hadna.teachers.nt_tokens import NT_CLS_ID, NT_MASK_ID, NT_PAD_ID, NT_VOCAB_SIZE, write_nt_vocab

if TYPE_CHECKING:  # transformers is imported lazily: it is slow to import
    import transformers


def nt_esm_config(
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 128,
    max_position_embeddings: int = 1026,
) -> "transformers.EsmConfig":
    """An ``EsmConfig`` with NT's vocabulary and NTv2's architectural choices.

    Rotary positions (NTv2; no hard length limit, ``max_position_embeddings`` is only recorded),
    no token-dropout rescaling and no embedding layer norm (as NT), no dropout (NT trains
    without it), a final layer norm after the last block (``emb_layer_norm_after``, always present
    in ESM), untied input/output embeddings.
    """
    from transformers import EsmConfig

    if hidden_size % num_heads:
        raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
    return EsmConfig(
        vocab_size=NT_VOCAB_SIZE,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        position_embedding_type="rotary",
        token_dropout=False,
        emb_layer_norm_before=False,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        layer_norm_eps=1e-12,
        pad_token_id=NT_PAD_ID,
        mask_token_id=NT_MASK_ID,
        # NT has no end token; EsmConfig's default eos id (2) would collide with NT's <mask>.
        bos_token_id=None,
        eos_token_id=None,
        tie_word_embeddings=False,
        is_folding_model=False,
    )


def nt_tokenizer(max_length_tokens: int | None = None) -> "transformers.EsmTokenizer":
    """An ``EsmTokenizer`` over the canonical NT vocabulary that, like NT's, adds ``<cls>`` only.

    (``EsmTokenizer``'s default ``eos_token="<eos>"`` would append ``<eos>`` to every sequence;
    NT's published tokenizer does not, so we pass ``eos_token=None``.)
    """
    from transformers import EsmTokenizer

    kwargs = {} if max_length_tokens is None else {"model_max_length": max_length_tokens}
    with tempfile.TemporaryDirectory() as tmp:
        vocab = write_nt_vocab(Path(tmp) / "vocab.txt")
        tok = EsmTokenizer(str(vocab), eos_token=None, **kwargs)
    assert tok.cls_token_id == NT_CLS_ID and tok.pad_token_id == NT_PAD_ID and tok.mask_token_id == NT_MASK_ID
    return tok


def make_random_nt_teacher(
    path: str | Path,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 128,
    max_length_nt: int = 1024,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised NT-format ``EsmForMaskedLM`` + tokenizer into ``path``; returns it.

    ``max_length_nt`` is the longest input in nucleotides; the worst case (all single-nucleotide
    tokens) needs ``max_length_nt + 1`` tokens with ``<cls>``, recorded as the tokenizer's
    ``model_max_length`` and (plus ESM's padding offset) ``max_position_embeddings``.
    Weights are deterministic given ``seed``.
    """
    import torch
    from transformers import EsmForMaskedLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    max_tokens = max_length_nt + 1
    config = nt_esm_config(hidden_size, num_layers, num_heads, intermediate_size, max_tokens + NT_PAD_ID + 1)
    devices = []  # fork_rng on CPU only: keeps the caller's global RNG state untouched
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model = EsmForMaskedLM(config)
    model.save_pretrained(path)  # safetensors
    nt_tokenizer(max_tokens).save_pretrained(path)
    return path
