"""Tiny teachers and tokenizers of every tokenizer family, built offline (plain functions for the tests).

* NT 6-mers: :func:`hadna.teachers.make_random_nt_teacher` (in the training conftest).
* BPE with variable-length tokens (DNABERT-2 / GROVER style): a ``tokenizers`` BPE model over a hand-written
  vocabulary and merges (tokens of 1 to 4 nucleotides), ``[CLS] ... [SEP]`` added, behind a core
  transformers ``BertModel`` (no remote code).
* One token per nucleotide: a random native HyenaDNA (causal, ``[SEP]`` appended) and a hadna model
  (bidirectional, optional ``[CLS]``; self-distillation from a larger hadna model).
"""

from __future__ import annotations

from pathlib import Path

BPE_VOCAB = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "A": 5, "C": 6, "G": 7, "T": 8, "N": 9,
             "AC": 10, "GT": 11, "ACGT": 12, "TT": 13, "TTA": 14, "CC": 15, "NN": 16, "GG": 17, "AA": 18, "AAA": 19,
             "CA": 20, "TG": 21, "CATG": 22}
BPE_MERGES = [("A", "C"), ("G", "T"), ("AC", "GT"), ("T", "T"), ("TT", "A"), ("C", "C"), ("N", "N"), ("G", "G"),
              ("A", "A"), ("AA", "A"), ("C", "A"), ("T", "G"), ("CA", "TG")]


def bpe_tokenizer(padding_side: str = "right"):
    """A fast BPE tokenizer with variable-length DNA tokens; ``[CLS] seq [SEP]``."""
    from tokenizers import Tokenizer, models, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(vocab=dict(BPE_VOCAB), merges=list(BPE_MERGES), unk_token="[UNK]"))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", padding_side=padding_side)


def make_bpe_teacher(path: Path, hidden_size: int = 32, num_layers: int = 2, max_tokens: int = 300, seed: int = 0) -> Path:
    """A random core-transformers BERT over the BPE vocabulary, saved with its tokenizer.json."""
    import torch
    from transformers import BertConfig, BertModel

    path = Path(path)
    cfg = BertConfig(vocab_size=len(BPE_VOCAB), hidden_size=hidden_size, num_hidden_layers=num_layers,
                     num_attention_heads=2, intermediate_size=2 * hidden_size, max_position_embeddings=max_tokens,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(cfg, add_pooling_layer=False)
    model.save_pretrained(path)
    bpe_tokenizer().save_pretrained(path)
    return path


def make_hyenadna_teacher(path: Path, seed: int = 0) -> Path:
    from hadna.teachers.hyenadna import make_random_hyenadna

    return make_random_hyenadna(path, d_model=32, n_layer=2, max_seq_len=300, seed=seed)


def make_hadna_teacher(path: Path, add_cls_token: bool = True, seed: int = 0) -> Path:
    """A random had-tiny model saved as a Hugging Face checkpoint with its tokenizer (self-distillation)."""
    import torch

    from hadna import HadConfig, HadModel, HadTokenizer

    path = Path(path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HadModel(HadConfig.preset("had-tiny", chunk_size=16))
    model.save_pretrained(path)
    HadTokenizer(add_cls_token=add_cls_token).save_pretrained(path)
    return path
