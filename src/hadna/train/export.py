"""``<output_dir>/final/``: what a finished training run leaves, for every recipe.

* ``hadna pretrain`` (:func:`export_final`): the student backbone (:class:`~hadna.models.HadModel`,
  safetensors) with :class:`~hadna.tokenization.HadTokenizer`. The decoder / projection / MLM heads are
  training-only and stay in the checkpoints.
* ``hadna teacher-train`` (:func:`export_teacher`): the ``EsmForMaskedLM`` teacher with its NT tokenizer.

Both add a model card (README.md, filled from ``hadna/resources/model_cards/<kind>.md``) and
training_summary.json. The directory is built next to its destination and renamed into place, so a
crash never leaves half a model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..config import to_dict
from ..models import HadModel
from ..resources import RESOURCES
from ..teachers.nt_tokens import NT_VOCAB_SIZE
from ..teachers.random_nt import nt_tokenizer
from ..tokenization import HadTokenizer
from ..utils.io import atomic_directory, atomic_write_json
from ..utils.logging import get_logger, quiet_transformers

if TYPE_CHECKING:
    from .pretrain import HadPretraining
    from .teacher_train import TeacherTraining
    from .trainer import TrainResult

log = get_logger("train.export")

MODEL_CARDS = RESOURCES / "model_cards"

NTV2_LICENCE_NOTE = (
    "The Nucleotide Transformer v2 weights (InstaDeepAI/nucleotide-transformer-v2-*) are released under "
    "CC-BY-NC-SA-4.0. A student distilled from them is trained to reproduce their features, so it may be "
    "considered a derivative work and carry the same terms (attribution, non-commercial use, share-alike). "
    "Check those terms before any commercial use or redistribution under another licence."
)


# ----------------------------------------------------------------------------- writers
def export_final(task: "HadPretraining", result: "TrainResult") -> Path:
    """Write the pre-trained student's ``final/``; returns its path."""
    out = Path(result.output_dir) / "final"
    with atomic_directory(out) as tmp, quiet_transformers():
        task.model.student.save_pretrained(tmp, safe_serialization=True)
        HadTokenizer().save_pretrained(tmp)
        info = student_summary(task, result)
        atomic_write_json(tmp / "training_summary.json", info)
        (tmp / "README.md").write_text(student_card(task, info))
    log.info("wrote the pre-trained student to %s", out)
    return out


def export_teacher(task: "TeacherTraining", result: "TrainResult") -> Path:
    """Write the trained teacher's ``final/``: EsmForMaskedLM (safetensors), NT tokenizer, card, summary."""
    out = Path(result.output_dir) / "final"
    with atomic_directory(out) as tmp, quiet_transformers():
        task.model.mlm.save_pretrained(tmp)
        nt_tokenizer(task.max_tokens).save_pretrained(tmp)
        info = teacher_summary(task, result)
        atomic_write_json(tmp / "training_summary.json", info)
        (tmp / "README.md").write_text(teacher_card(task, info))
    log.info("wrote the teacher to %s", out)
    return out


def pack_pretrained(source: str | Path, dest: str | Path, card: str, dtype: torch.dtype = torch.float16) -> Path:
    """Write a shippable copy of the backbone saved in ``source`` to ``dest`` (:mod:`hadna.models.pretrained`).

    ``source``: any hadna save (a pre-training ``final/``, masked-LM or classifier); only the backbone is kept,
    cast to ``dtype`` (fp16 halves the wheel's share). The config records fp32 as the dtype to load into.
    ``card``: the model card, written as ``README.md``. Built in a temporary directory and renamed into place.
    """
    model = HadModel.from_pretrained(source, dtype=torch.float32, trust_remote_code=False)
    out = Path(dest)
    with atomic_directory(out) as tmp, quiet_transformers():
        model.to(dtype).save_pretrained(tmp, safe_serialization=True)
        model.config.dtype = "float32"
        model.config.save_pretrained(tmp)
        (tmp / "README.md").write_text(card)
    log.info("packed %s into %s (%s)", source, out, dtype)
    return out


# ----------------------------------------------------------------------------- training_summary.json
def _run_summary(task: Any, result: "TrainResult", recipe: str) -> dict[str, Any]:
    """The fields every recipe's summary starts with."""
    return {"recipe": recipe, "steps": result.step, "resumed_from": result.resumed_from,
            "elapsed_s": round(result.elapsed_s, 1), "world_size": task.env.world_size,
            "nucleotides_seen": result.step * task.tokens_per_step}


def _run_tail(task: Any, result: "TrainResult") -> dict[str, Any]:
    """The fields every recipe's summary ends with."""
    return {"config": json.loads(json.dumps(to_dict(task.cfg), default=str)),
            "checkpoint": str(result.checkpoint) if result.checkpoint else None, "torch": torch.__version__}


def student_summary(task: "HadPretraining", result: "TrainResult") -> dict[str, Any]:
    cfg = task.cfg
    return {**_run_summary(task, result, "pretrain"),
            "student_parameters": sum(p.numel() for p in task.model.student.parameters()),
            "init_from": task.init_from,
            "final_train_metrics": result.metrics, "final_val_metrics": result.val_metrics,
            "teacher": {"path": cfg.teacher.path, "layer": cfg.teacher.layer, "cache": cfg.teacher.cache,
                        "layers": cfg.teacher_layers, "tokens": task.plan.spans.family,
                        "teacher_input": task.plan.teacher_input,
                        "hidden_size": task.teacher_dim} if cfg.objective.uses_teacher else None,
            **_run_tail(task, result)}


def teacher_summary(task: "TeacherTraining", result: "TrainResult") -> dict[str, Any]:
    return {**_run_summary(task, result, "teacher-train"), "parameters": task.num_parameters,
            "max_tokens": task.max_tokens, "initial_val_metrics": result.initial_val_metrics or None,
            "final_train_metrics": result.metrics, "final_val_metrics": result.val_metrics,
            **_run_tail(task, result)}


# ----------------------------------------------------------------------------- model cards
def _metric_rows(values: dict | None, empty: str) -> str:
    if not values:
        return empty
    return "\n".join(f"| {k} | {v:.4f} |" for k, v in values.items())


def _common_fields(cfg: Any, info: dict) -> dict[str, Any]:
    """Card fields shared by both recipes: data, steps, optimiser."""
    fasta = ", ".join(f"`{Path(p).name}`" for p in cfg.data.fasta)
    bed = f", restricted to `{Path(cfg.data.bed).name}`" if cfg.data.bed else ""
    split = f" (rows with split `{cfg.data.bed_split}`)" if getattr(cfg.data, "bed_split", None) else ""
    o = cfg.optim
    return {"fasta": fasta, "data": f"{fasta}{bed}{split}; windows of {cfg.data.window_length} bp",
            "window_length": cfg.data.window_length, "rc_augment": "on" if cfg.data.rc_augment else "off",
            "steps": info["steps"], "batch_size": cfg.train.batch_size, "nucleotides_seen": info["nucleotides_seen"],
            "optimiser": f"AdamW, lr {o.lr:g}, warm-up {o.warmup_steps}, cosine to {o.min_lr_ratio:g} x lr, "
                         f"weight decay {o.weight_decay:g}"}


def _fill(kind: str, fields: dict[str, Any]) -> str:
    return (MODEL_CARDS / f"{kind}.md").read_text().format(**fields)


def student_card(task: "HadPretraining", info: dict) -> str:
    cfg, mc = task.cfg, task.model_config
    mode = cfg.objective.mode
    if cfg.objective.uses_teacher:
        teacher = (f"`{cfg.teacher.path}` (hidden state {cfg.teacher.layer}, width {task.teacher_dim})"
                   + (f", features read from the cache `{cfg.teacher.cache}`" if cfg.teacher.cache else ""))
        licence = (f"This student was distilled from the teacher {teacher}. The student's code is Apache-2.0, "
                   "but the weights inherit whatever terms bind the teacher's weights. " + NTV2_LICENCE_NOTE)
    else:
        teacher = f"none (mode `{mode}` trains without a teacher)"
        licence = ("No teacher was used, so no teacher licence applies; the terms of the pre-training data "
                   "(see below) still do.")
    if cfg.model.init_from:
        licence += (f" Training continued from the weights of `{cfg.model.init_from}`, so these weights also "
                    "inherit whatever terms bind those (see that model's card).")
    return _fill("student", {
        **_common_fields(cfg, info), "preset": mc.preset or "custom", "mode": mode,
        "n_params": info["student_parameters"], "num_gdn_layers": mc.num_gdn_layers,
        "num_attention_layers": mc.num_attention_layers, "hidden_size": mc.hidden_size,
        "layout": " -> ".join(mc.block_types), "teacher": teacher, "licence": licence,
        "mask_ratio": cfg.masking.mask_ratio, "init": _init_line(info),
        "final_val": _metric_rows(info["final_val_metrics"], "(no validation set)")})


def _init_line(info: dict) -> str:
    init = info.get("init_from")
    if not init:
        return f"random (seed {info['config']['train']['seed']})"
    return (f"continued from `{init['source']}` (backbone weights digest `{init['weights_sha256'][:16]}`, "
            "`hadna.utils.weights.weights_digest`); training heads, optimiser and schedule started fresh")


def teacher_card(task: "TeacherTraining", info: dict) -> str:
    cfg, m, mlm = task.cfg, task.cfg.model, task.cfg.mlm
    return _fill("teacher", {
        **_common_fields(cfg, info), "n_params": info["parameters"], "num_layers": m.num_layers,
        "hidden_size": m.hidden_size, "num_heads": m.num_heads, "intermediate_size": m.intermediate_size,
        "max_tokens": task.max_tokens, "max_n_percent": 100 * cfg.data.max_n_fraction,
        "mask_ratio": mlm.mask_ratio, "mask_token_prob": mlm.mask_token_prob,
        "random_token_prob": mlm.random_token_prob,
        "unchanged": 1.0 - mlm.mask_token_prob - mlm.random_token_prob, "uniform_loss": math.log(NT_VOCAB_SIZE),
        "initial_val": _metric_rows(info["initial_val_metrics"], "| (none) | |"),
        "final_val": _metric_rows(info["final_val_metrics"], "| (none) | |")})


__all__ = ["NTV2_LICENCE_NOTE", "export_final", "export_teacher", "pack_pretrained", "student_card", "student_summary", "teacher_card",
           "teacher_summary"]
