"""Typed configs of the training recipes (loaded with :func:`hadna.config.load_config`).

Generic sections, shared by every recipe built on :class:`hadna.train.Trainer`:

* :class:`OptimConfig` - AdamW and the warm-up + cosine learning-rate schedule;
* :class:`TrainConfig` - steps, batch, logging/validation/checkpoint cadence, device and precision.

HAD pre-training (:class:`PretrainConfig`, ``recipe: pretrain``) adds the student
(:class:`ModelSection`), the genome data (:class:`~hadna.data.GenomeDataConfig`), the teacher
(:class:`TeacherSection`), the masking and the objective (:class:`~hadna.objectives.ObjectiveConfig`).

Teacher training (:class:`TeacherTrainConfig`, ``recipe: teacher-train``) adds an NT-style ESM masked
LM (:class:`TeacherModelSection`), the same genome data and BERT-style 6-mer masking (:class:`MlmSection`).

Every YAML config under ``configs/`` names its recipe in a top-level ``recipe:`` key (or, for a
recipe whose config class has no such key, matches a file-name pattern in
:data:`RECIPE_FILE_PATTERNS`); :data:`RECIPES` maps recipe names to their config classes. A recipe
added later registers itself in both; the config test loads every shipped config it can dispatch.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import RECIPE_FILE_PATTERNS, config_recipe  # noqa: F401  (re-exported: recipe dispatch)
from ..data import GenomeDataConfig
from ..errors import ConfigError
from ..objectives import ObjectiveConfig
from ..teachers.nt_tokens import window_token_bound

#: recipe name -> "module:ClassName" of its config dataclass. A recipe added later appends itself here.
RECIPES: dict[str, str] = {
    "pretrain": "hadna.train.config:PretrainConfig",
    "pipeline": "hadna.pipeline.config:PipelineConfig",
    "benchmark": "hadna.eval.runner:BenchmarkConfig",
    "teacher-train": "hadna.train.config:TeacherTrainConfig",
}



def recipe_config_class(recipe: str) -> type:
    """The config dataclass of ``recipe`` (imported lazily); ConfigError for an unknown recipe."""
    import importlib

    if recipe not in RECIPES:
        raise ConfigError(f"unknown recipe {recipe!r}; known recipes: {', '.join(sorted(RECIPES))}")
    module, name = RECIPES[recipe].split(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``lr * min_lr_ratio`` at ``max_steps``.

    Weight decay applies to matrices only: biases, norm weights and every parameter flagged
    ``_no_weight_decay`` (the GDN's ``A_log`` and ``dt_bias``) are not decayed.
    ``grad_clip``: clip the global gradient norm to this value (0 = no clipping; the norm is still logged).
    """

    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-8
    weight_decay: float = 0.01
    warmup_steps: int = 500
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0

    def validate(self) -> None:
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")
        if not self.eps > 0:
            raise ConfigError(f"optim.eps must be > 0, got {self.eps}")
        if self.weight_decay < 0:
            raise ConfigError(f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        if self.warmup_steps < 0:
            raise ConfigError(f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.grad_clip < 0:
            raise ConfigError(f"optim.grad_clip must be >= 0 (0 = off), got {self.grad_clip}")


@dataclass
class TrainConfig:
    """The loop: how long, how big, how often to log/validate/save, where, on what.

    batch_size is the GLOBAL batch (sequences per optimizer step, over all ranks and micro-batches);
    each rank processes ``batch_size / world_size`` of them in ``grad_accum_steps`` micro-batches.
    log_every / val_every / save_every count optimizer steps (0 = never; the last step always
    validates and saves). device: auto (CUDA if available) | cpu | cuda. precision: auto (bf16 autocast
    on CUDA, fp32 on CPU) | fp32 | bf16 (CUDA only). num_threads: torch CPU threads (None = torch's default).
    """

    max_steps: int = 10000
    batch_size: int = 256
    grad_accum_steps: int = 1
    seed: int = 0
    log_every: int = 10
    val_every: int = 500
    val_at_start: bool = True          # also validate the untrained model (step 0 of val_metrics.csv)
    val_batch_size: int | None = None
    save_every: int = 1000
    keep_last_checkpoints: int = 3
    output_dir: str = "runs/pretrain"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    num_threads: int | None = None
    tensorboard: bool = False

    def validate(self) -> None:
        for key in ("max_steps", "batch_size", "grad_accum_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("log_every", "val_every", "save_every"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key} must be >= 0 (0 = never), got {getattr(self, key)}")
        if self.keep_last_checkpoints < 1:
            raise ConfigError(f"train.keep_last_checkpoints must be >= 1, got {self.keep_last_checkpoints}")
        if self.batch_size % self.grad_accum_steps:
            raise ConfigError(f"train.batch_size {self.batch_size} must be a multiple of train.grad_accum_steps "
                              f"{self.grad_accum_steps}")
        if self.val_batch_size is not None and self.val_batch_size < 1:
            raise ConfigError(f"train.val_batch_size must be >= 1, got {self.val_batch_size}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"train.num_threads must be >= 1, got {self.num_threads}")
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"train.seed must be in [0, 2**63), got {self.seed}")
        if not self.output_dir:
            raise ConfigError("train.output_dir must not be empty")

    def check_world_size(self, world_size: int) -> None:
        """The global batch must split evenly over ranks and micro-batches."""
        unit = world_size * self.grad_accum_steps
        if self.batch_size % unit:
            raise ConfigError(f"train.batch_size {self.batch_size} must be a multiple of world_size x "
                              f"grad_accum_steps = {world_size} x {self.grad_accum_steps} = {unit}")


@dataclass
class ModelSection:
    """The student: a preset of :class:`~hadna.models.HadConfig` plus field overrides.

    init_from: start from a saved backbone instead of a random init (continued pre-training): a shipped
    student (``pretrained:NAME``) or a local hadna save (a ``final/`` directory, a packed or fine-tuned
    model). Its architecture must equal the preset's with the overrides (the error names the fields that
    differ); the training heads (decoder, distillation projection, MLM head) start fresh, and so do the
    optimiser and the learning-rate schedule. Local directories only: nothing is downloaded.
    """

    preset: str = "had-1m"
    overrides: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None

    def build(self):
        """-> HadConfig (ConfigError for an unknown preset, an unknown field or an invalid value)."""
        from ..models import HadConfig

        if self.preset not in HadConfig.available_presets():
            raise ConfigError(f"model.preset: unknown preset {self.preset!r}; available: "
                              f"{', '.join(HadConfig.available_presets())}")
        known = [p for p in inspect.signature(HadConfig.__init__).parameters if p not in ("self", "kwargs", "preset")]
        for key in self.overrides:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise ConfigError(f"model.overrides: unknown HadConfig field {key!r}{hint}")
        try:
            return HadConfig.preset(self.preset, **self.overrides)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"model: {exc}") from None

    def init_path(self) -> Path | None:
        """The directory ``init_from`` names (None without one); ConfigError when it is not a hadna save.

        Checked when a run starts (:func:`hadna.train.launch.check_inputs`), not when the config is read,
        so that configs naming a model another stage will write still load."""
        if not self.init_from:
            return None
        from ..models.pretrained import available_pretrained, is_pretrained_name, pretrained_path
        from ..utils.io import read_config_json

        if is_pretrained_name(self.init_from):
            try:
                return pretrained_path(self.init_from)
            except ConfigError as exc:
                raise ConfigError(f"model.init_from: {exc}") from None
        path = Path(self.init_from).expanduser()
        if not path.is_dir() or not (path / "config.json").is_file():
            shipped = ", ".join(f"pretrained:{n}" for n in available_pretrained()) or "none"
            raise ConfigError(f"model.init_from: {self.init_from} is not a saved hadna model (a directory with "
                              f"config.json and weights, e.g. a pre-training run's final/; shipped: {shipped})")
        kind = read_config_json(path / "config.json", "model config").get("model_type")
        if kind != "hadna":
            raise ConfigError(f"model.init_from: {self.init_from} holds a {kind!r} model, not a hadna student "
                              f"(continued pre-training starts from a hadna backbone)")
        return path

    def validate(self) -> None:
        self.build()
        if self.init_from is not None and not isinstance(self.init_from, str):
            raise ConfigError(f"model.init_from must be a path or pretrained:NAME, got {self.init_from!r}")


@dataclass
class TeacherSection:
    """The frozen teacher, live or through a precomputed feature cache.

    path: checkpoint directory (or, with local_files_only false, a Hub id). layer: which hidden state
    (-1 = last, normalised; for several, see ``objective.distill_layers``). dtype: auto (bfloat16 on CUDA,
    float32 on CPU) | float32 | float16 | bfloat16. tokenizer: how teacher tokens map to nucleotide spans,
    auto | kmer (NT 6-mers) | char (one token per nucleotide) | offsets (a fast tokenizer's offsets, BPE);
    auto decides from the checkpoint (:func:`hadna.teachers.wrapper._detect_family`).
    cache: a directory written by ``hadna cache-teacher``; when set, features are read from it and the
    teacher is not loaded. missing_hint: what the error says to do when ``path`` does not exist.
    """

    path: str | None = None
    layer: int = -1
    trust_remote_code: bool = False
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    local_files_only: bool = True
    cache: str | None = None
    missing_hint: str | None = None
    tokenizer: Literal["auto", "kmer", "char", "offsets"] = "auto"

    def resolved_dtype(self, device_type: str) -> str:
        if self.dtype == "auto":
            return "bfloat16" if device_type == "cuda" else "float32"
        return self.dtype


@dataclass
class MaskingSection:
    """Two-stage group masking (:mod:`hadna.masking`).

    mask_ratio: the fraction of (maskable) teacher tokens hidden per sequence (of groups, see group_size).
    group_size: for teachers with one token per nucleotide, stage 1 hides groups of this many consecutive
    nucleotides (k-mer and BPE tokens are groups already; ignored for them).
    teacher_input: what the teacher reads at masked tokens: mask_token (its mask token), n (its N token;
    one-token-per-nucleotide teachers), causal_prefix (the unmasked sequence, and only tokens before the
    first masked one are distilled; causal teachers), or auto = n for causal teachers, else mask_token.
    docs/design.md ("Causal teachers and leakage") says what each one leaks.
    """

    mask_ratio: float = 0.15
    group_size: int = 6
    teacher_input: Literal["auto", "mask_token", "n", "causal_prefix"] = "auto"

    def validate(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"masking.mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.group_size < 1:
            raise ConfigError(f"masking.group_size must be >= 1, got {self.group_size}")
        if self.teacher_input not in ("auto", "mask_token", "n", "causal_prefix"):
            raise ConfigError(f"masking.teacher_input must be auto, mask_token, n or causal_prefix, got "
                              f"{self.teacher_input!r}")


@dataclass
class PretrainConfig:
    """``hadna pretrain``: HAD (or an ablation) pre-training of the student.

    hints: optional messages keyed ``fasta`` / ``bed`` / ``teacher`` that the one-line error shows when
    that input is missing (where to download it and where to put it).
    """

    recipe: Literal["pretrain"] = "pretrain"
    model: ModelSection = field(default_factory=ModelSection)
    data: GenomeDataConfig = field(default_factory=GenomeDataConfig)
    teacher: TeacherSection = field(default_factory=TeacherSection)
    masking: MaskingSection = field(default_factory=MaskingSection)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hints: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        for section in (self.model, self.data, self.masking, self.objective, self.optim, self.train):
            section.validate()
        unknown = set(self.hints) - {"fasta", "bed", "val_bed", "teacher"}
        if unknown:
            raise ConfigError(f"hints: unknown key(s) {sorted(unknown)}; valid: fasta, bed, val_bed, teacher")
        if self.objective.uses_teacher and not (self.teacher.path or self.teacher.cache):
            raise ConfigError(f"objective.mode {self.objective.mode!r} distils from a teacher: set teacher.path "
                              "(a checkpoint directory) or teacher.cache (a `hadna cache-teacher` output)")
        if self.train.val_every and self.data.num_val_windows == 0:
            raise ConfigError("train.val_every is set but data.num_val_windows is 0 (no validation windows)")
        if self.objective.distill_layers and self.teacher.layer != -1:
            raise ConfigError("set either teacher.layer (one layer) or objective.distill_layers (several), not both")
        if self.teacher.tokenizer not in ("auto", "kmer", "char", "offsets"):
            raise ConfigError(f"teacher.tokenizer must be auto, kmer, char or offsets, got {self.teacher.tokenizer!r}")

    @property
    def teacher_layers(self) -> list[int]:
        """The teacher's hidden states the objective distils from, in the order of its feature blocks."""
        return [int(p["teacher"]) for p in self.objective.distill_layers] or [self.teacher.layer]


@dataclass
class TeacherModelSection:
    """The NT-style teacher: a transformers ``EsmForMaskedLM`` over NT's 4,107-token 6-mer vocabulary
    (rotary positions, see :func:`hadna.teachers.nt_esm_config`).

    max_tokens: the tokenizer's ``model_max_length`` (``<cls>`` included). None = the most tokens a
    training window can tokenise to (about window_length / 6 plus a margin for the single-nucleotide
    tokens that N's cause; :func:`hadna.teachers.nt_tokens.window_token_bound`). Rotary positions have
    no hard limit, so a larger value only lets users feed longer inputs than the teacher was trained on.
    """

    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    max_tokens: int | None = None

    def validate(self) -> None:
        for key in ("hidden_size", "num_layers", "num_heads", "intermediate_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"model.hidden_size {self.hidden_size} must be a multiple of model.num_heads "
                              f"{self.num_heads}")
        if (self.hidden_size // self.num_heads) % 2:  # rotary embeddings rotate pairs of channels
            raise ConfigError(f"model.hidden_size / model.num_heads = {self.hidden_size // self.num_heads} must be "
                              "even (rotary position embeddings rotate pairs of channels)")
        if self.max_tokens is not None and self.max_tokens < 2:
            raise ConfigError(f"model.max_tokens must be >= 2 (or null = sized for the window), got {self.max_tokens}")


@dataclass
class MlmSection:
    """BERT-style masking of NT tokens (``<cls>`` and padding are never chosen).

    mask_ratio: fraction of each window's real tokens chosen as prediction targets (rounded, at least 1).
    mask_token_prob / random_token_prob: of the chosen tokens, the fraction replaced by ``<mask>`` / by a
    uniformly random 6-mer token; the rest are left unchanged (BERT: 0.8 / 0.1 / 0.1).
    """

    mask_ratio: float = 0.15
    mask_token_prob: float = 0.8
    random_token_prob: float = 0.1

    def validate(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"mlm.mask_ratio must be in (0, 1), got {self.mask_ratio}")
        for key in ("mask_token_prob", "random_token_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"mlm.{key} must be in [0, 1], got {getattr(self, key)}")
        if self.mask_token_prob + self.random_token_prob > 1.0 + 1e-9:
            raise ConfigError(f"mlm.mask_token_prob + mlm.random_token_prob must be <= 1 (the rest stay unchanged), "
                              f"got {self.mask_token_prob} + {self.random_token_prob}")


@dataclass
class TeacherTrainConfig:
    """``hadna teacher-train``: train an NT-style 6-mer teacher by masked language modelling.

    hints: optional messages keyed ``fasta`` / ``bed`` / ``val_bed`` that the one-line error shows when
    that input is missing.
    """

    recipe: Literal["teacher-train"] = "teacher-train"
    model: TeacherModelSection = field(default_factory=TeacherModelSection)
    data: GenomeDataConfig = field(default_factory=GenomeDataConfig)
    mlm: MlmSection = field(default_factory=MlmSection)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(output_dir="runs/teacher"))
    hints: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        for section in (self.model, self.data, self.mlm, self.optim, self.train):
            section.validate()
        unknown = set(self.hints) - {"fasta", "bed", "val_bed"}
        if unknown:
            raise ConfigError(f"hints: unknown key(s) {sorted(unknown)}; valid: fasta, bed, val_bed")
        if self.train.val_every and self.data.num_val_windows == 0:
            raise ConfigError("train.val_every is set but data.num_val_windows is 0 (no validation windows)")
        need = window_token_bound(self.data.window_length, self.data.max_n_fraction)
        if self.model.max_tokens is not None and self.model.max_tokens < need:
            raise ConfigError(f"model.max_tokens {self.model.max_tokens} is below the {need} tokens a "
                              f"{self.data.window_length}-bp training window can need; raise it or leave it null")


def check_recipe(data: dict[str, Any], expected: str, path: str) -> None:
    """A config written for another recipe gives a clear error instead of a list of unknown keys."""
    recipe = config_recipe(path, data) or expected  # benchmark_*.yaml files are benchmark configs without the key
    if recipe != expected:
        raise ConfigError(f"{path}: this is a config for recipe {recipe!r}, not {expected!r}; run it with "
                          f"`hadna {recipe}` instead")


def compat_dict(obj: Any) -> Any:
    """Dataclass -> plain dict (for checkpoint compatibility records)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: compat_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [compat_dict(v) for v in obj]
    return obj
