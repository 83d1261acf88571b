"""HAD pre-training on top of the generic :class:`~hadna.train.trainer.Trainer`.

:class:`HadPretraining` supplies the recipe's pieces: the batch source (windows -> NT tokenisation
-> two-stage mask -> teacher features of the masked teacher input, live or from a cache), the step
(:class:`~hadna.objectives.HadPretrainingModel` normalised by the step's global counts), the
validation (fixed windows, fixed masks) and the compatibility record checked on resume.
:func:`run_pretrain` is what ``hadna pretrain`` runs (the shared launcher, :mod:`hadna.train.launch`,
with :func:`hadna.train.export.export_final` writing ``<output_dir>/final/``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..data import GenomeWindows
from ..masking import MaskedBatch
from ..errors import CheckpointError, ConfigError
from ..models import HadConfig, HadModel
from ..objectives import HadPretrainingModel, objective_counts
from ..teachers import Teacher
from ..utils.logging import get_logger, quiet_transformers
from ..utils.network import set_hub_offline
from ..utils.weights import load_errors, note_pickled_weights, unloaded_weights, weights_digest, weights_error
from .config import ModelSection, PretrainConfig, compat_dict
from .distributed import DistEnv, load_windows
from .export import export_final
from .feature_cache import FeatureCache, cache_fingerprint
from .launch import launch
from .samples import MaskPlan, plan_for, train_samples, val_samples
from .trainer import Trainer, TrainResult

log = get_logger("train.pretrain")

def load_teacher(cfg: PretrainConfig, device: torch.device) -> Teacher:
    t = cfg.teacher
    if not t.local_files_only:  # the config allows downloading the teacher: lift the CLI's offline mode
        set_hub_offline(False)
    return Teacher.from_pretrained(t.path, layer=t.layer, trust_remote_code=t.trust_remote_code,
                                   dtype=t.resolved_dtype(device.type), device=device,
                                   local_files_only=t.local_files_only, tokenizer=t.tokenizer,
                                   layers=cfg.teacher_layers if cfg.objective.distill_layers else None)


def mask_plan(cfg: PretrainConfig, teacher=None) -> MaskPlan:
    """The masking plan of a run: the live teacher's span tokens, or (feature cache, no teacher loaded) the
    tokens of ``teacher.path`` read without its weights; NT 6-mers for runs without a teacher."""
    if teacher is not None:
        return plan_for(cfg.masking, teacher.span_tokenizer, teacher.causal)
    if cfg.objective.uses_teacher and cfg.teacher.path:
        t = cfg.teacher
        spans, causal = Teacher.span_tokenizer_from_pretrained(t.path, t.tokenizer, t.trust_remote_code,
                                                               t.local_files_only)
        return plan_for(cfg.masking, spans, causal)
    return plan_for(cfg.masking)


@dataclass
class PretrainBatch:
    """One micro-batch: the masked batch, the teacher's features of it (or None) and the sample indices."""

    masked: MaskedBatch
    teacher_features: torch.Tensor | None
    indices: np.ndarray


def model_compat(config: HadConfig) -> dict[str, Any]:
    """The architecture fields of a HadConfig (what must match for a state dict to load)."""
    keys = [p for p in inspect.signature(HadConfig.__init__).parameters
            if p not in ("self", "kwargs", "preset", "kernel_backend", "hidden_dropout", "attention_dropout",
                         "classifier_dropout", "pooling", "rc_averaging")]
    return {k: getattr(config, k) for k in keys}


def init_architecture(config: HadConfig) -> dict[str, Any]:
    """What a saved backbone must share with the run's config to start it (:func:`initial_backbone`): the
    architecture fields, with the block order instead of the way it is spelt (``attention_position``), and
    without ``chunk_size``, an execution setting (the chunked kernel agrees with any chunk to fp32 rounding)."""
    fields = {k: v for k, v in model_compat(config).items() if k not in ("chunk_size", "attention_position")}
    return {**fields, "block_types": list(config.block_types)}


def initial_backbone(section: ModelSection, config: HadConfig) -> tuple[dict[str, torch.Tensor], str] | None:
    """The backbone weights ``section.init_from`` names, checked against ``config``'s architecture, and their
    digest (:func:`~hadna.utils.weights.weights_digest`: sha256 of names, dtypes, shapes and values of the
    fp32 weights); None without ``init_from``.

    ConfigError when the saved architecture differs (naming every field), CheckpointError when the weights
    cannot be read or lack part of the backbone (a partly random start is refused, not filled in). Stored
    heads (a fine-tuned classifier, a masked-LM head) are ignored.
    """
    path = section.init_path()
    if path is None:
        return None
    where = f"model.init_from: {section.init_from}"
    try:
        saved = HadConfig.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{where}: cannot read its hadna config ({exc})") from None
    want, have = init_architecture(config), init_architecture(saved)
    diffs = [f"{k} {have.get(k)!r} (this config: {want[k]!r})" for k in want if have.get(k) != want[k]]
    if diffs:
        raise ConfigError(f"{where}: its architecture differs from model.preset {section.preset!r} with "
                          f"model.overrides: " + "; ".join(diffs) + ". Set the preset and overrides to the saved "
                          "model's")
    note_pickled_weights(path, "model.init_from")
    try:
        with quiet_transformers():  # mis-shaped weights are reported below, not raised with a hidden report
            model, info = HadModel.from_pretrained(path, config=saved, dtype=torch.float32,
                                                   output_loading_info=True, ignore_mismatched_sizes=True,
                                                   trust_remote_code=False)
    except load_errors() as exc:
        raise weights_error(exc, where, "backbone weights") from None
    lacking = unloaded_weights(info)
    if lacking:
        raise CheckpointError(f"{where}: the checkpoint lacks backbone weights ({len(lacking)} missing or "
                              f"mis-shaped, e.g. {', '.join(sorted(lacking)[:4])}); refusing to start from a "
                              f"partly random model")
    unexpected = info.get("unexpected_keys", [])
    if unexpected:
        log.info("%s: ignoring %d stored weights that are not the backbone's (e.g. %s)", where, len(unexpected),
                 ", ".join(sorted(unexpected)[:3]))
    state = model.state_dict()
    return state, weights_digest(state)


class HadPretraining:
    """The HAD recipe's batch source, step, validation and model.

    teacher: an already loaded :class:`~hadna.teachers.Teacher` (otherwise loaded from ``cfg.teacher``
    when the mode needs one and no cache is configured); windows: prebuilt data (tests).
    """

    def __init__(self, cfg: PretrainConfig, env: DistEnv | None = None, teacher=None,
                 windows: GenomeWindows | None = None):
        self.cfg, self.env = cfg, env or DistEnv()
        obj = cfg.objective
        self.cache: FeatureCache | None = None
        self.teacher = None
        if obj.uses_teacher and not cfg.teacher.cache:
            self.teacher = teacher if teacher is not None else load_teacher(cfg, self.env.device)
        self.plan = mask_plan(cfg, self.teacher)
        if obj.uses_teacher and cfg.teacher.cache:
            self.cache = FeatureCache.open(cfg.teacher.cache, cache_fingerprint(cfg, self.plan))
        self.windows = windows if windows is not None else load_windows(cfg.data, self.env)
        self.val_ids = self.windows.val_windows()
        n_layers = len(cfg.teacher_layers)
        self.teacher_dim = (self.teacher.hidden_size if self.teacher is not None
                            else self.cache.hidden_size // n_layers if self.cache is not None else None)
        self.model_config = cfg.model.build()
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank and every run
        self.model = HadPretrainingModel(HadModel(self.model_config), obj, teacher_dim=self.teacher_dim)
        # continued pre-training: the backbone replaced after the random init, so the heads' init is the same
        # as without init_from (a resumed run then overwrites everything from its checkpoint)
        # init_from: what the summary and card record, resolved once here (not again at export, hours later)
        self.init_from: dict[str, str] | None = None
        init = initial_backbone(cfg.model, self.model_config)
        if init is not None:
            state, digest = init
            self.model.student.load_state_dict(state, strict=True)
            self.init_from = {"source": cfg.model.init_from, "path": str(cfg.model.init_path()),
                              "weights_sha256": digest}
            log.info("student backbone initialised from %s (weights sha256 %s...)", cfg.model.init_from, digest[:12])
        self._val_batches: list[PretrainBatch] | None = None

    # ------------------------------------------------------------------ the batch source
    @property
    def tokens_per_step(self) -> int:
        return self.cfg.train.batch_size * self.cfg.data.window_length

    def sample_indices(self, step: int, rank: int, world_size: int) -> np.ndarray:
        """Global sample indices of this rank's share of step ``step`` (mod N with a feature cache)."""
        B = self.cfg.train.batch_size
        per = B // world_size
        idx = step * B + rank * per + np.arange(per, dtype=np.int64)
        return idx % self.cache.num_samples if self.cache is not None else idx

    def make_batch(self, indices: np.ndarray) -> PretrainBatch:
        cfg = self.cfg
        masked = train_samples(self.windows, indices, cfg.train.seed, self.plan)
        return PretrainBatch(masked, self._features("train", masked, indices), indices)

    def _features(self, split: str, masked: MaskedBatch, indices: np.ndarray) -> torch.Tensor | None:
        if self.teacher is not None:
            return self.teacher.features(masked.teacher_input_ids, masked.teacher_attention_mask)
        if self.cache is not None:
            return self.cache.features(split, indices, masked.span_len.shape[1], masked.teacher_attention_mask.sum(1))
        return None

    def batch_fn(self, step: int, rank: int, world_size: int, num_micro: int) -> list[PretrainBatch]:
        idx = self.sample_indices(step, rank, world_size)
        return [self.make_batch(part) for part in np.array_split(idx, num_micro)]

    @staticmethod
    def count_fn(mb: PretrainBatch) -> dict[str, torch.Tensor]:
        return objective_counts(mb.masked)

    def step_fn(self, model: nn.Module, mb: PretrainBatch, totals: dict[str, torch.Tensor]):
        dev = self.env.device
        feats = mb.teacher_features.to(dev) if mb.teacher_features is not None else None
        out = model(mb.masked.to(dev), feats, totals)
        return out.loss, out.metrics

    # ------------------------------------------------------------------ validation
    def val_batches(self) -> list[PretrainBatch]:
        """The fixed validation micro-batches (masks seeded by validation index; built once)."""
        if self._val_batches is None:
            cfg = self.cfg
            bs = cfg.train.val_batch_size or max(cfg.train.batch_size // (self.env.world_size * cfg.train.grad_accum_steps), 1)
            out = []
            for s in range(0, self.val_ids.shape[0], bs):
                idx = np.arange(s, min(s + bs, self.val_ids.shape[0]), dtype=np.int64)
                masked = val_samples(self.windows, self.val_ids, idx, cfg.train.seed, self.plan)
                out.append(PretrainBatch(masked, None, idx))
            self._val_batches = out
        return self._val_batches

    def val_fn(self, model: nn.Module) -> dict[str, float]:
        """Exact means over the whole validation set (every batch normalised by the set's totals)."""
        batches = self.val_batches()
        if not batches:
            return {}
        totals: dict[str, torch.Tensor] = {}
        for mb in batches:
            for k, v in objective_counts(mb.masked).items():
                totals[k] = totals.get(k, 0) + v
        sums: dict[str, float] = {}
        dev = self.env.device
        for mb in batches:
            feats = self._features("val", mb.masked, mb.indices)
            out = model(mb.masked.to(dev), None if feats is None else feats.to(dev), totals)
            for k, v in out.metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v)
        names = {"loss": "val_loss", "recon_loss": "recon_loss", "distill_loss": "distill_mse", "mlm_loss": "mlm_loss",
                 "recon_acc": "recon_acc", "mlm_acc": "mlm_acc"}
        return {names[k]: v for k, v in sums.items() if k in names}

    # ------------------------------------------------------------------ trainer
    def compat(self) -> dict[str, Any]:
        cfg = self.cfg
        objective = compat_dict(cfg.objective)
        if not cfg.objective.distill_layers:
            objective.pop("distill_layers")  # records of runs from before multi-layer distillation stay compatible
        plan = self.plan.describe()
        extra = {"mask_plan": plan} if plan != MaskPlan(cfg.masking.mask_ratio).describe() else {}
        if self.init_from is not None:  # only when set: records of runs from before init_from stay compatible
            extra["init_weights_sha256"] = self.init_from["weights_sha256"]
        return {**extra, "recipe": "pretrain", "model": model_compat(self.model_config), "objective": objective,
                "teacher_dim": self.teacher_dim, "teacher_layer": cfg.teacher.layer if cfg.objective.uses_teacher else None,
                "mask_ratio": cfg.masking.mask_ratio, "window_length": cfg.data.window_length,
                "data_seed": cfg.data.seed, "train_seed": cfg.train.seed,
                "feature_cache_samples": self.cache.num_samples if self.cache is not None else None}

    def build_trainer(self) -> Trainer:
        cfg = self.cfg
        return Trainer(self.model, cfg.train, cfg.optim, self.env, batch_fn=self.batch_fn, step_fn=self.step_fn,
                       count_fn=self.count_fn, val_fn=self.val_fn if self.val_ids.shape[0] else None,
                       tokens_per_step=self.tokens_per_step, compat=self.compat(), name="pretrain",
                       compat_hints={"init_weights_sha256": "model.init_from must name the weights the run started "
                                     "from (the same directory, or a copy of it) when it resumes"})


def run_pretrain(cfg: PretrainConfig, resume: bool = False, output_dir: str | None = None,
                 teacher: Teacher | None = None) -> TrainResult:
    """Everything ``hadna pretrain`` does: set up (DDP if launched by torchrun), train, export ``final/``
    (:func:`hadna.train.launch.launch`). teacher: an already loaded teacher (tests, ``hadna run``)."""
    return launch(cfg, lambda env: HadPretraining(cfg, env, teacher=teacher), export_final, resume=resume,
                  output_dir=output_dir, need_teacher=cfg.objective.uses_teacher and teacher is None)


__all__ = ["HadPretraining", "PretrainBatch", "init_architecture", "initial_backbone", "load_teacher", "mask_plan", "model_compat", "run_pretrain"]
