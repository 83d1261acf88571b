"""``<output_dir>/final/``: the pre-trained student as a Hugging Face model directory.

Only the backbone is kept (:class:`~hadna.models.HadModel`, safetensors) with the tokenizer, a model
card (README.md) and training_summary.json. The decoder / projection / MLM heads are training-only and
stay in the checkpoints. The directory is written next to its destination and renamed into place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..utils.io import atomic_directory, atomic_write_json
from ..utils.logging import get_logger

if TYPE_CHECKING:
    from .pretrain import HadPretraining
    from .trainer import TrainResult

log = get_logger("train.export")

NTV2_LICENCE_NOTE = (
    "The Nucleotide Transformer v2 weights (InstaDeepAI/nucleotide-transformer-v2-*) are released under "
    "CC-BY-NC-SA-4.0. A student distilled from them is trained to reproduce their features, so it may be "
    "considered a derivative work and carry the same terms (attribution, non-commercial use, share-alike). "
    "Check those terms before any commercial use or redistribution under another licence."
)


def export_final(task: "HadPretraining", result: "TrainResult") -> Path:
    """Write ``final/`` for a finished run; returns its path."""
    from ..tokenization import HadTokenizer
    from .pretrain import summary

    out = Path(result.output_dir) / "final"
    with atomic_directory(out) as tmp:
        task.model.student.save_pretrained(tmp, safe_serialization=True)
        HadTokenizer().save_pretrained(tmp)
        info = summary(task, result)
        atomic_write_json(tmp / "training_summary.json", info)
        (tmp / "README.md").write_text(model_card(task, info))
    log.info("wrote the pre-trained student to %s", out)
    return out


def _fmt_metrics(values: dict) -> str:
    if not values:
        return "(no validation set)"
    return "\n".join(f"| {k} | {v:.4f} |" for k, v in values.items())


def model_card(task: "HadPretraining", info: dict) -> str:
    cfg, mc = task.cfg, task.model_config
    mode = cfg.objective.mode
    n_params = info["student_parameters"]
    if cfg.objective.uses_teacher:
        teacher = (f"`{cfg.teacher.path}` (hidden state {cfg.teacher.layer}, width {task.teacher_dim})"
                   + (f", features read from the cache `{cfg.teacher.cache}`" if cfg.teacher.cache else ""))
        licence = (f"This student was distilled from the teacher {teacher}. The student's code is Apache-2.0, "
                   "but the weights inherit whatever terms bind the teacher's weights. " + NTV2_LICENCE_NOTE)
    else:
        teacher = f"none (mode `{mode}` trains without a teacher)"
        licence = ("No teacher was used, so no teacher licence applies; the terms of the pre-training data "
                   "(see below) still do.")
    fasta = ", ".join(f"`{Path(p).name}`" for p in cfg.data.fasta)
    bed = f", restricted to `{Path(cfg.data.bed).name}`" if cfg.data.bed else ""
    split = f" (rows with split `{cfg.data.bed_split}`)" if getattr(cfg.data, "bed_split", None) else ""
    return f"""---
library_name: transformers
tags: [dna, genomics, hadna, gated-deltanet, distillation]
---

# hadna student ({mc.preset or 'custom'}, {mode} pre-training)

A {n_params:,}-parameter DNA language model with one token per nucleotide: {mc.num_gdn_layers} bidirectional
Gated DeltaNet blocks and {mc.num_attention_layers} self-attention block(s) (width {mc.hidden_size}, layout
{' -> '.join(mc.block_types)}), pre-trained with hadna's implementation of HAD (Hybrid Architecture
Distillation, arXiv 2505.20836). Objective: `{mode}`
(`had` = masked-nucleotide reconstruction + feature distillation from the teacher).

```python
import hadna  # registers the model with the Auto classes
from hadna import HadModel, HadTokenizer
model = HadModel.from_pretrained("path/to/final")
tokenizer = HadTokenizer.from_pretrained("path/to/final")
```

Only the backbone is saved here; the reconstruction decoder, distillation projection and MLM head were
training-only (they remain in the run's checkpoints).

## Training

| | |
|---|---|
| teacher | {teacher} |
| data | {fasta}{bed}{split}; windows of {cfg.data.window_length} bp, reverse-complement augmentation {'on' if cfg.data.rc_augment else 'off'} |
| masking | {cfg.masking.mask_ratio:.0%} of teacher tokens per window (two-stage group masking) |
| steps | {info['steps']:,} x {cfg.train.batch_size} windows = {info['nucleotides_seen']:,} nucleotides |
| optimiser | AdamW, lr {cfg.optim.lr:g}, warm-up {cfg.optim.warmup_steps}, cosine to {cfg.optim.min_lr_ratio:g} x lr, weight decay {cfg.optim.weight_decay:g} |

Final validation (fixed held-out windows, fixed masks):

| metric | value |
|---|---|
{_fmt_metrics(info['final_val_metrics'])}

Full settings: `training_summary.json`.

## Intended use

Feature extraction and fine-tuning on DNA sequence tasks (e.g. `HadForSequenceClassification.from_pretrained(path,
num_labels=2)`), especially where a small, fast model matters (CPU inference, long inputs). It is a research model:
it was not evaluated for, and must not be used for, clinical or diagnostic decisions. Its features reflect the
training genome(s) only.

## Licence

{licence} Pre-training data: check the terms of the genome assembly used ({fasta}).
"""
