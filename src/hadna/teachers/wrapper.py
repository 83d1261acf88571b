"""A frozen NT-style teacher: load a Hugging Face masked LM, tokenise student batches, extract features.

Which hidden state is "layer k": ``output_hidden_states`` of an ESM model has ``num_layers + 1``
entries. Entry 0 is the embedding output, entry ``k`` (1 <= k < num_layers) the output of block
``k``, and the last entry is the output of the last block *after* ESM's final layer norm
(``emb_layer_norm_after``), identical to ``last_hidden_state``. This holds both for transformers'
core ESM (5.x ties ``hidden_states[-1]`` to ``last_hidden_state``) and for the older ESM copy that
NTv2's remote code ships. ``layer`` indexes that tuple Python-style, so ``layer=-1`` (default) is
the normalised last-layer representation, the one NT's own examples use as embeddings.

How a checkpoint is loaded (:meth:`Teacher.from_pretrained`, logged at INFO):

* no ``auto_map`` in config.json (NT v1, our random teachers): core transformers ESM;
* ``auto_map`` pointing at NT's ``esm_config``/``modeling_esm`` code with an architecture the native
  port covers (NTv2): :mod:`hadna.teachers.ntv2`, no remote code is imported or run;
* ``trust_remote_code=True`` (explicit only): the checkpoint's own code, via transformers' Auto classes;
* ``model_type: hyenadna`` (HyenaDNA): :mod:`hadna.teachers.hyenadna`, hadna's native port (no remote
  code), unless ``trust_remote_code=True``;
* other architectures (no ``auto_map``, or ``trust_remote_code=True``): transformers' ``AutoModel``, with
  a tokenizer family from :mod:`hadna.teachers.spans` (``tokenizer="auto"``: HyenaDNA and hadna models are
  ``char``, a ``tokenizer.json`` without NT's 6-mer ``vocab.txt`` is ``offsets``, everything else ``kmer``);
* any other ``auto_map``: refused, naming ``--trust-remote-code``.

Several layers (multi-layer distillation): ``layers=[...]``; :meth:`Teacher.features` then returns their
hidden states concatenated along the feature axis, ``[B, N, len(layers) * hidden_size]``, in that order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from hadna.errors import CheckpointError, ConfigError
from hadna.teachers.checkpoint import fetch_hub_files, resolve_config
from hadna.teachers.nt_tokens import (
    NT_CLS_ID,
    NT_KMERS,
    NT_PAD_ID,
    NT_VOCAB,
)
from hadna.teachers.spans import (  # TeacherInputs lives with the span tokenizers (re-exported here)
    FAMILIES,
    CharSpanTokenizer,
    KmerSpanTokenizer,
    OffsetSpanTokenizer,
    SpanTokenizer,
    TeacherInputs,
)
from hadna.utils.device import resolve_device
from hadna.utils.logging import get_logger

log = get_logger("teacher")

_DTYPES = {None: torch.float32, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
#: tokens a teacher vocabulary must contain to be driven by our NT tokenisation.
REQUIRED_TOKENS = NT_KMERS + ("A", "C", "G", "T", "N", "<cls>", "<pad>", "<mask>")


def _nt_lookup(vocab: Mapping[str, int], source: str) -> np.ndarray:
    """Canonical NT id -> checkpoint id (int64 [4107]; -1 for specials the checkpoint lacks and we never emit)."""
    missing = [t for t in REQUIRED_TOKENS if t not in vocab]
    if missing:
        shown = ", ".join(missing[:5]) + (f", ... ({len(missing)} in all)" if len(missing) > 5 else "")
        raise CheckpointError(
            f"teacher {source} does not have an NT-style 6-mer vocabulary (4096 6-mers over ACGT, single "
            f"nucleotides A C G T N, <cls>, <pad>, <mask>); missing: {shown}"
        )
    return np.array([vocab.get(tok, -1) for tok in NT_VOCAB], dtype=np.int64)


def _config_int(config, *names: str) -> int:
    if "num_hidden_layers" in names and getattr(config, "model_type", None) == "hadna":  # a hadna model as teacher
        return int(config.num_gdn_layers) + int(config.num_attention_layers)
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    raise CheckpointError(f"teacher config has none of {', '.join(names)}")


class Teacher:
    """A frozen teacher fed from student (one-nucleotide) batches: any model plus a span tokenizer.

    Build with :meth:`from_pretrained`; or wrap an already loaded model with its token->id ``vocab``
    (an NT 6-mer vocabulary) or with a :class:`~hadna.teachers.spans.SpanTokenizer`. ``causal``: the
    model reads left to right only (decides the default ``masking.teacher_input``). ``layers``: several
    hidden states, concatenated by :meth:`features` (overrides ``layer``).
    """

    def __init__(self, model: torch.nn.Module, vocab: Mapping[str, int] | None = None, layer: int = -1,
                 source: str = "<model>", span_tokenizer: SpanTokenizer | None = None,
                 layers: Sequence[int] | None = None, causal: bool = False):
        self.model = model.eval().requires_grad_(False)
        self.config = model.config
        self.source = source
        self.causal = causal
        self.num_layers = _config_int(self.config, "num_hidden_layers", "n_layer", "num_layers")
        self.hidden_size = _config_int(self.config, "hidden_size", "d_model")
        n_states = self.num_layers + 1  # embeddings + one per block
        wanted = list(layers) if layers else [layer]
        for lay in wanted:
            if not -n_states <= lay < n_states:
                raise ConfigError(
                    f"teacher layer {lay} out of range for {source}: it has {self.num_layers} layers, so valid "
                    f"layers are 0..{self.num_layers} (0 = embeddings) or -1..-{n_states}"
                )
        self.layers = [lay % n_states for lay in wanted]
        self.layer = self.layers[0]
        if span_tokenizer is None:
            if vocab is None:
                raise ValueError("Teacher needs an NT vocab or a span_tokenizer")
            span_tokenizer = KmerSpanTokenizer(_nt_lookup(vocab, source))
        self.span_tokenizer = span_tokenizer
        if isinstance(span_tokenizer, KmerSpanTokenizer):
            self._lookup = span_tokenizer.lookup
            vocab_size = getattr(self.config, "vocab_size", None)
            if vocab_size is not None and int(self._lookup.max()) >= vocab_size:
                raise CheckpointError(
                    f"teacher {source}: tokenizer ids reach {int(self._lookup.max())} but the model's vocab_size is {vocab_size}"
                )
            self.cls_token_id = int(self._lookup[NT_CLS_ID])
            self.pad_token_id = int(self._lookup[NT_PAD_ID])
        self.mask_token_id = span_tokenizer.mask_token_id
        import inspect

        base = getattr(self.model, "base_model", self.model)
        params = inspect.signature(base.forward).parameters
        self._forward_kwargs = {k for k in ("attention_mask", "return_dict") if k in params}

    @property
    def feature_size(self) -> int:
        """Width of :meth:`features`' output: ``len(layers) * hidden_size``."""
        return len(self.layers) * self.hidden_size

    @property
    def family(self) -> str:
        return self.span_tokenizer.family

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        layer: int = -1,
        trust_remote_code: bool = False,
        dtype: str | None = None,
        device: str | torch.device = "cpu",
        local_files_only: bool = True,
        tokenizer: str = "auto",
        layers: Sequence[int] | None = None,
    ) -> "Teacher":
        """Load a checkpoint directory (or, with ``local_files_only=False``, a Hub id).

        ``tokenizer``: the span-tokenizer family (``auto``, ``kmer``, ``char``, ``offsets``; module
        docstring); ``layers``: several hidden states for multi-layer distillation (overrides ``layer``).

        NT v1 / our random teachers load with core transformers ESM. NTv2 ships its own model code
        (``auto_map`` in config.json); by default it loads into hadna's native port
        (:func:`hadna.teachers.ntv2.load_ntv2`: same parameter names, gated feed-forward, weights
        checked strictly, no remote code). Handing an NTv2 checkpoint to core ESM instead would be
        wrong: its feed-forward shapes differ. ``trust_remote_code=True`` explicitly runs the
        checkpoint's own code instead (NTv2's was written for transformers 4.x and may fail under
        5.x). A checkpoint whose ``auto_map`` the native port does not cover is refused unless
        ``trust_remote_code=True``. ``dtype``: None/"float32", or "float16"/"bfloat16" on GPU only.
        """
        name = str(name_or_path)
        if dtype not in _DTYPES:
            raise ConfigError(f"teacher dtype must be one of float32, float16, bfloat16 (or None), got {dtype!r}")
        torch_dtype = _DTYPES[dtype]
        try:
            dev = resolve_device(device)
        except ConfigError as exc:  # an unknown name, or CUDA without a GPU
            raise ConfigError(f"teacher: {exc}") from None
        if dev.type == "cpu" and torch_dtype != torch.float32:
            raise ConfigError(
                f"teacher dtype {dtype} needs a GPU (half-precision matmuls on CPU are slow or unsupported); "
                f"use dtype=None (float32) on CPU"
            )

        config, where, cfg_file = resolve_config(name, local_files_only)
        if tokenizer not in ("auto",) + FAMILIES:
            raise ConfigError(f"teacher.tokenizer must be auto, {', '.join(FAMILIES)}; got {tokenizer!r}")
        from hadna.teachers.hyenadna import MODEL_TYPE as HYENADNA

        if config.get("model_type") == HYENADNA and not trust_remote_code:
            return cls._from_native_hyenadna(name, where, cfg_file, layer, layers, torch_dtype, dev, tokenizer,
                                             local_files_only)
        family = _detect_family(config, tokenizer, cfg_file.parent)
        if config.get("auto_map") and not trust_remote_code:
            from hadna.teachers.ntv2 import ntv2_support_problems

            problems = ntv2_support_problems(config)
            if problems:
                auto_map = config["auto_map"]
                keys = ", ".join(sorted(auto_map)) if isinstance(auto_map, dict) else repr(auto_map)
                raise CheckpointError(
                    f"teacher checkpoint {where} ships its own model code (config.json has auto_map: {keys}) "
                    f"and hadna's built-in NTv2 port does not cover it ({'; '.join(problems)}). Loading it runs "
                    f"that Python code, so it is never done by default: re-run with --trust-remote-code "
                    f"(trust_remote_code=True) if you trust the checkpoint's source"
                )
            return cls._from_native_ntv2(name, where, cfg_file, layer, torch_dtype, dev, local_files_only, layers)
        if family != "kmer":
            return cls._from_generic(name, where, config, family, layer, layers, trust_remote_code, torch_dtype, dev,
                                     local_files_only)
        if config.get("auto_map"):
            log.info("teacher %s: running the checkpoint's own model code (trust_remote_code=True)", where)
        else:
            log.info("teacher %s: loading with core transformers ESM", where)

        from transformers import AutoModelForMaskedLM, AutoTokenizer

        common = dict(local_files_only=local_files_only, trust_remote_code=trust_remote_code)
        remote = bool(config.get("auto_map")) and trust_remote_code
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, **common)
        except Exception as exc:  # noqa: BLE001 - with remote code, the config class it imports can fail in any way
            if not remote and not isinstance(exc, (OSError, ValueError, KeyError, ImportError)):
                raise
            raise CheckpointError(f"cannot load the tokenizer of teacher {where}: {type(exc).__name__}: {exc}") from exc
        vocab = tokenizer.get_vocab()
        _nt_lookup(vocab, where)  # fail on a non-NT vocabulary before loading weights
        from hadna.utils.weights import load_errors, note_pickled_weights, weights_error

        note_pickled_weights(name, "teacher")
        try:
            model, info = AutoModelForMaskedLM.from_pretrained(
                name, dtype=torch_dtype, output_loading_info=True, **common
            )
        except Exception as exc:  # noqa: BLE001 - remote code can fail in any way; report it as one line
            if remote:
                import transformers

                raise CheckpointError(
                    f"the model code shipped with teacher {where} failed under transformers "
                    f"{transformers.__version__}: {type(exc).__name__}: {exc}. NTv2's remote code was written "
                    f"for transformers 4.x and may import names that 5.x removed"
                ) from exc
            if not isinstance(exc, (ImportError, *load_errors())):
                raise
            if not isinstance(exc, (OSError, ValueError, KeyError, ImportError, RuntimeError)) or "weights_only" in str(exc):
                raise weights_error(exc, f"teacher {where}", "teacher weights") from None  # pickle or corrupt file
            raise CheckpointError(f"cannot load teacher model {where}: {exc}") from exc
        # A missing encoder weight would silently give random features; heads we do not use may be absent.
        missing = sorted(k for k in info.get("missing_keys", ()) if ".encoder." in k or ".embeddings." in k)
        if missing:
            raise CheckpointError(
                f"teacher checkpoint {where} lacks encoder weights ({', '.join(missing[:3])}"
                f"{', ...' if len(missing) > 3 else ''}): wrong architecture or truncated file"
            )
        if info.get("missing_keys"):
            log.info("teacher %s: unused weights not in the checkpoint: %s", where, sorted(info["missing_keys"]))
        return cls(model.to(dev), vocab, layer=layer, source=where, layers=layers)

    @classmethod
    def _from_native_hyenadna(cls, name: str, where: str, cfg_file: Path, layer: int, layers: Sequence[int] | None,
                              dtype: torch.dtype, device: torch.device, tokenizer: str,
                              local_files_only: bool = True) -> "Teacher":
        """HyenaDNA checkpoint -> hadna's native port; HyenaDNA's character tokenizer rule (``[SEP]`` appended)."""
        from hadna.teachers.hyenadna import hyenadna_span_tokenizer, load_hyenadna

        if tokenizer not in ("auto", "char"):
            raise ConfigError(f"teacher {where} is HyenaDNA (one token per nucleotide): teacher.tokenizer must be "
                              f"auto or char, got {tokenizer!r}")
        directory = Path(name).expanduser()
        if not directory.is_dir():
            fetch_hub_files(name, local_files_only=local_files_only)
            directory = cfg_file.parent
        log.info("teacher %s: HyenaDNA checkpoint; loading it into hadna's native HyenaDNA port, without running "
                 "the checkpoint's code", where)
        model = load_hyenadna(directory, dtype=dtype, device=device)
        return cls(model, layer=layer, source=where, span_tokenizer=hyenadna_span_tokenizer(), layers=layers,
                   causal=True)

    @classmethod
    def _from_generic(cls, name: str, where: str, config: dict, family: str, layer: int, layers: Sequence[int] | None,
                      trust_remote_code: bool, dtype: torch.dtype, device: torch.device,
                      local_files_only: bool) -> "Teacher":
        """Any transformers architecture (``AutoModel``) with a ``char`` or ``offsets`` span tokenizer."""
        from transformers import AutoModel

        common = dict(local_files_only=local_files_only, trust_remote_code=trust_remote_code)
        spans = _hf_span_tokenizer(name, where, family, common)
        try:
            model, info = AutoModel.from_pretrained(name, dtype=dtype, output_loading_info=True, **common)
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(f"cannot load teacher model {where}: {type(exc).__name__}: {exc}") from exc
        heads = ("pooler.", "lm_head.", "cls.", "classifier.", "score.")  # not used for features
        missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith(heads))
        if missing:
            raise CheckpointError(f"teacher checkpoint {where} lacks weights ({', '.join(missing[:3])}"
                                  f"{', ...' if len(missing) > 3 else ''}): wrong architecture or truncated file")
        log.info("teacher %s: %s via transformers AutoModel, %s tokens", where, type(model).__name__, family)
        causal = is_causal_config(model.config.to_dict())
        return cls(model.to(device), layer=layer, source=where, span_tokenizer=spans, layers=layers, causal=causal)

    @staticmethod
    def span_tokenizer_from_pretrained(name_or_path: str | os.PathLike, tokenizer: str = "auto",
                                       trust_remote_code: bool = False,
                                       local_files_only: bool = True) -> tuple[SpanTokenizer, bool]:
        """(the span tokenizer, whether the model is causal) of a checkpoint, without loading its weights
        (training from a feature cache still needs the teacher's tokens to build the same masks)."""
        from hadna.teachers.hyenadna import MODEL_TYPE as HYENADNA
        from hadna.teachers.hyenadna import hyenadna_span_tokenizer

        name = str(name_or_path)
        config, where, cfg_file = resolve_config(name, local_files_only)
        if config.get("model_type") == HYENADNA and not trust_remote_code:
            return hyenadna_span_tokenizer(), True
        family = _detect_family(config, tokenizer, cfg_file.parent)
        common = dict(local_files_only=local_files_only, trust_remote_code=trust_remote_code)
        if family == "kmer":
            from hadna.teachers.ntv2 import read_vocab

            if (cfg_file.parent / "vocab.txt").is_file():
                vocab = read_vocab(cfg_file.parent)
            else:
                from transformers import AutoTokenizer

                vocab = AutoTokenizer.from_pretrained(name, **common).get_vocab()
            return KmerSpanTokenizer(_nt_lookup(vocab, where)), False
        return _hf_span_tokenizer(name, where, family, common), is_causal_config(config)

    @classmethod
    def _from_native_ntv2(
        cls, name: str, where: str, cfg_file: Path, layer: int, dtype: torch.dtype, device: torch.device,
        local_files_only: bool, layers: Sequence[int] | None = None,
    ) -> "Teacher":
        """NTv2-style checkpoint -> hadna's native NTv2 model (config, vocab and weights read as data only)."""
        from hadna.teachers.ntv2 import load_ntv2, read_vocab

        directory = Path(name).expanduser()
        if not directory.is_dir():  # a Hub id: use the files in the local cache, next to config.json
            fetch_hub_files(name, local_files_only)
            directory = cfg_file.parent
        log.info(
            "teacher %s: NTv2-style checkpoint (auto_map -> NT's esm code); loading it into hadna's native NTv2 "
            "port, without running the checkpoint's code", where,
        )
        vocab = read_vocab(directory)
        _nt_lookup(vocab, where)  # fail on a non-NT vocabulary before loading weights
        model = load_ntv2(directory, dtype=dtype, device=device)
        return cls(model, vocab, layer=layer, source=where, layers=layers)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def tokenize_batch(self, student_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> TeacherInputs:
        """student_ids: [B, L] student ids (A C G T N; padding where attention_mask is 0).

        Returns :class:`TeacherInputs` ``[B, N]`` on ``student_ids.device``, ids in the checkpoint's vocabulary.
        """
        return self.span_tokenizer(student_ids, attention_mask)

    def _check_length(self, attention_mask: torch.Tensor) -> None:
        # Learned (absolute) positions index a table; past its end the model would crash with an index error.
        if (getattr(self.config, "position_embedding_type", "absolute") != "absolute" or attention_mask.numel() == 0
                or getattr(self.config, "max_position_embeddings", None) is None):
            return
        n_tok = int(attention_mask.sum(dim=1).max())
        limit = int(self.config.max_position_embeddings)
        if getattr(self.config, "model_type", None) == "esm":  # ESM counts positions from padding_idx + 1
            limit -= int(self.config.pad_token_id or 0) + 1
        if n_tok > limit:
            raise ConfigError(
                f"teacher {self.source} has learned position embeddings for at most {limit} tokens "
                f"(<cls> included), but a sequence needs {n_tok}; use shorter sequences"
            )

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Hidden states of the chosen layer(s). input_ids, attention_mask: [B, N] -> float32
        ``[B, N, len(layers) * D]`` (layers concatenated in order; ``[B, N, D]`` for one layer).

        Runs under ``torch.inference_mode`` on the teacher's device; the result is a normal tensor
        (not an inference tensor) so it can serve as a regression target in an autograd graph.
        """
        self._check_length(attention_mask)
        dev = self.device
        only_last = all(lay == self.num_layers for lay in self.layers)
        base = getattr(self.model, "base_model", self.model)
        kwargs = {"input_ids": input_ids.to(dev), "output_hidden_states": not only_last}
        if "attention_mask" in self._forward_kwargs:
            kwargs["attention_mask"] = attention_mask.to(dev)
        if "return_dict" in self._forward_kwargs:
            kwargs["return_dict"] = True
        with torch.inference_mode():
            out = base(**kwargs)
            last = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
            parts = [last if lay == self.num_layers else out.hidden_states[lay] for lay in self.layers]
            hidden = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        # Outside inference mode, copy=True makes an ordinary tensor (inference tensors cannot be
        # saved for backward, e.g. as an MSE target).
        return hidden.to(torch.float32, copy=True)

    def encode(self, student_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> tuple[TeacherInputs, torch.Tensor]:
        """tokenize_batch + features: returns (TeacherInputs on student_ids.device, float32 [B, N, D] on the teacher's device)."""
        inputs = self.tokenize_batch(student_ids, attention_mask)
        return inputs, self.features(inputs.input_ids, inputs.attention_mask)

    def __repr__(self) -> str:
        return (
            f"Teacher({self.source!r}, layers={self.num_layers}, hidden={self.hidden_size}, layer={self.layers}, "
            f"tokens={self.family}, "
            f"dtype={self.dtype}, device={self.device})"
        )


#: model types whose models read left to right only (HyenaDNA has its own loader and is always causal).
CAUSAL_MODEL_TYPES = frozenset({"hyenadna", "gpt2", "gpt_neox", "gptj", "llama", "mistral", "mamba", "mamba2",
                                "stripedhyena", "evo", "qwen2"})


def is_causal_config(config: Mapping) -> bool:
    """Whether a checkpoint's config.json describes a causal (left-to-right) model: ``is_decoder``, a causal
    ``model_type`` (:data:`CAUSAL_MODEL_TYPES`) or only ``*ForCausalLM`` architectures. Decides the default
    ``masking.teacher_input`` (docs/design.md, "Causal teachers and leakage")."""
    if config.get("is_decoder") or config.get("model_type") in CAUSAL_MODEL_TYPES:
        return True
    archs = config.get("architectures") or []
    return bool(archs) and all(str(a).endswith("ForCausalLM") for a in archs)


def _detect_family(config: Mapping, tokenizer: str, directory: Path) -> str:
    """The span-tokenizer family of a checkpoint (``tokenizer`` unless "auto"; module docstring)."""
    if tokenizer != "auto":
        return tokenizer
    from hadna.teachers.hyenadna import MODEL_TYPE as HYENADNA

    if config.get("model_type") in (HYENADNA, "hadna", "caduceus"):
        return "char"
    vocab_file, tok_file = directory / "vocab.txt", directory / "tokenizer.json"
    if tok_file.is_file():
        try:
            has_nt = set(REQUIRED_TOKENS) <= {line.strip() for line in vocab_file.read_text(encoding="utf-8").splitlines()}
        except OSError:
            has_nt = False
        if not has_nt:
            return "offsets"
    return "kmer"


def _hf_span_tokenizer(name: str, where: str, family: str, common: dict) -> SpanTokenizer:
    """The ``char`` or ``offsets`` span tokenizer of a checkpoint's Hugging Face tokenizer."""
    from transformers import AutoTokenizer

    try:
        hf_tok = AutoTokenizer.from_pretrained(name, **common)
    except Exception as exc:  # noqa: BLE001 - any failure is one line
        raise CheckpointError(f"cannot load the tokenizer of teacher {where}: {type(exc).__name__}: {exc}") from exc
    return _char_spans_from(hf_tok, where) if family == "char" else OffsetSpanTokenizer(hf_tok, where)


def _char_spans_from(hf_tok, where: str) -> CharSpanTokenizer:
    """A one-token-per-nucleotide Hugging Face tokenizer -> its rule, read from its behaviour: the ids of
    A C G T N, and the special tokens it adds before/after a sequence (tokenising "A")."""
    base_ids = {}
    for b in "ACGTN":
        ids = hf_tok(b, add_special_tokens=False)["input_ids"]
        if len(ids) != 1 or ids[0] == hf_tok.unk_token_id:
            raise CheckpointError(f"teacher tokenizer {where} does not map {b!r} to one token of its own; it is not a "
                                  "one-token-per-nucleotide tokenizer (set teacher.tokenizer: offsets or kmer)")
        base_ids[b] = int(ids[0])
    probe = hf_tok("ACGTN", add_special_tokens=True)["input_ids"]
    body = [base_ids[b] for b in "ACGTN"]
    starts = [i for i in range(len(probe) - 4) if probe[i:i + 5] == body]
    if len(starts) != 1:
        raise CheckpointError(f"teacher tokenizer {where} does not tokenise 'ACGTN' one token per nucleotide: {probe}")
    i = starts[0]
    pad = hf_tok.pad_token_id if hf_tok.pad_token_id is not None else 0
    return CharSpanTokenizer(base_ids=base_ids, pad_token_id=int(pad), mask_token_id=hf_tok.mask_token_id,
                             prefix=tuple(probe[:i]), suffix=tuple(probe[i + 5:]),
                             padding_side=getattr(hf_tok, "padding_side", "right"))
