"""Command-line options shared by ``hadna finetune``, ``benchmark``, ``tsne`` and ``embed``.

Only argparse and light helpers live here (no torch import), so ``hadna --help`` stays fast.
Every protocol option defaults to ``None`` = "not given": the task's protocol (or a benchmark
config) supplies the value, and :func:`protocol_overrides` returns only what the user set.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from ..errors import ConfigError

MODES = ("finetune", "probe", "scratch")


def add_model_arguments(p: argparse.ArgumentParser, multiple: bool = False) -> None:
    g = p.add_argument_group("model")
    help_spec = ("model under evaluation: a hadna checkpoint directory (e.g. a pre-training output "
                 "runs/x/final), preset:NAME (random init, e.g. preset:had-1m) or hf:NAME_OR_PATH (a Hugging "
                 "Face model with its tokenizer); NAME=SPEC sets the name used in tables")
    if multiple:
        g.add_argument("--model", action="append", required=True, metavar="SPEC", help=help_spec + " (repeatable)")
    else:
        g.add_argument("--model", required=True, metavar="SPEC", help=help_spec)
    g.add_argument("--pooling", choices=("mean", "max", "first"), default="mean",
                   help="how token states are pooled into one vector (default mean over the sequence's tokens)")
    g.add_argument("--trust-remote-code", action="store_true",
                   help="allow a Hugging Face model to run its own Python code (off by default)")
    g.add_argument("--allow-download", action="store_true",
                   help="let hf: models be fetched from the Hugging Face Hub (default: local files/cache only)")
    g.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def add_protocol_arguments(p: argparse.ArgumentParser, with_mode: bool = True) -> None:
    g = p.add_argument_group("protocol (unset options take the task's protocol values)")
    if with_mode:
        g.add_argument("--mode", choices=MODES, default=None,
                       help="finetune (all weights, default), probe (frozen encoder + logistic regression; the "
                            "cheap first look) or scratch (same architecture, random init, fine-tuned)")
    g.add_argument("--seeds", default=None, metavar="N|LIST",
                   help="N = the task's first N protocol seeds; a comma list (1,2,5 or 7,) = those seeds")
    g.add_argument("--epochs", type=int, default=None, help="maximum fine-tuning epochs (default: the task's)")
    g.add_argument("--lr", type=float, default=None, help="fixed learning rate (default: grid search over the task's grid)")
    g.add_argument("--batch-size", type=int, default=None, help="fixed batch size (default: the task's grid)")
    g.add_argument("--lr-grid", default=None, metavar="LIST", help="learning rates to search, e.g. 1e-3,2e-3")
    g.add_argument("--batch-size-grid", default=None, metavar="LIST", help="batch sizes to search, e.g. 128,256")
    g.add_argument("--patience", type=int, default=None,
                   help="early-stopping patience in epochs (default 3; 0 = no early stopping)")
    g.add_argument("--schedule", choices=("cosine", "linear", "constant"), default=None,
                   help="learning-rate decay after warm-up (default cosine)")
    g.add_argument("--warmup-ratio", type=float, default=None, help="fraction of steps for warm-up (default 0.1)")
    g.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (default 0.01)")
    g.add_argument("--head-init", choices=("random", "probe"), default=None,
                   help="fine-tuning head: random (default) or probe (LP-FT: start from the linear probe of the "
                        "frozen encoder, so the first steps do not push a random head's gradients into the encoder)")
    g.add_argument("--backbone-lr-ratio", type=float, default=None,
                   help="encoder learning rate = lr x this (default 1; 0 trains the head only)")
    g.add_argument("--rc-augment", action="store_true", default=None,
                   help="train on random reverse complements (p = 1/2 per sequence and epoch)")
    g.add_argument("--rc-test", action="store_true", default=None,
                   help="average logits of each sequence and its reverse complement when predicting")
    g.add_argument("--max-train-samples", type=int, default=None,
                   help="stratified, deterministic subsample of the training data (per seed; for "
                        "cross-validated tasks: of the pool that is cross-validated)")
    g.add_argument("--max-val-samples", type=int, default=None, help="stratified subsample of the validation data")
    g.add_argument("--max-test-samples", type=int, default=None,
                   help="stratified subsample of the test set (same for every seed; tables flag it as capped)")
    g.add_argument("--cv-folds", type=int, default=None, help="folds for tasks without a test split (default: the task's)")
    g.add_argument("--probe-c-grid", default=None, metavar="LIST",
                   help="probe: inverse regularisation strengths to search (default 1e-5,...,100)")
    g.add_argument("--eval-batch-size", type=int, default=None, help="batch size for prediction (default 256)")
    g.add_argument("--embed-batch-size", type=int, default=None, help="batch size for probe embeddings (default 128)")


def parse_list(text: str, kind: type, what: str) -> list:
    items = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    if not items:
        raise ConfigError(f"{what}: empty list")
    try:
        return [kind(t) for t in items]
    except ValueError:
        raise ConfigError(f"{what}: cannot read {text!r} as a comma-separated list of {kind.__name__}s") from None


def parse_seeds(text: str) -> tuple[int | None, list[int] | None]:
    """``"3"`` -> (3, None): the first 3 protocol seeds; ``"1,4"`` / ``"7,"`` -> (None, [1, 4]) / (None, [7])."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        n = int(text)
        if n < 1:
            raise ConfigError(f"--seeds {text}: need at least one seed")
        return n, None
    seeds = parse_list(text, int, "--seeds")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text}: duplicate seeds")
    return None, seeds


def seeds_for(task_seeds: tuple[int, ...] | list[int], count: int | None, explicit: list[int] | None) -> list[int] | None:
    """The seed list for a task given ``--seeds`` (None = the task's own)."""
    if explicit is not None:
        return explicit
    if count is None:
        return None
    seeds = list(task_seeds)[:count]
    nxt = max(seeds, default=0) + 1
    while len(seeds) < count:  # more seeds than the protocol lists: continue after its largest
        seeds.append(nxt)
        nxt += 1
    return seeds


def protocol_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The protocol options the user actually gave, as ProtocolConfig fields (seeds excluded)."""
    out: dict[str, Any] = {}
    for name in ("mode", "epochs", "lr", "batch_size", "schedule", "warmup_ratio", "weight_decay", "rc_augment",
                 "rc_test", "head_init", "backbone_lr_ratio", "max_train_samples", "max_val_samples", "max_test_samples", "cv_folds",
                 "eval_batch_size", "embed_batch_size"):
        v = getattr(args, name, None)
        if v is not None:
            out[name] = v
    if getattr(args, "patience", None) is not None:
        out["patience"] = None if args.patience == 0 else args.patience
    if getattr(args, "lr_grid", None):
        out["lr_grid"] = parse_list(args.lr_grid, float, "--lr-grid")
    if getattr(args, "batch_size_grid", None):
        out["batch_size_grid"] = parse_list(args.batch_size_grid, int, "--batch-size-grid")
    if getattr(args, "probe_c_grid", None):
        out["probe_c_grid"] = parse_list(args.probe_c_grid, float, "--probe-c-grid")
    if getattr(args, "device", None):
        out["device"] = args.device
    return out


def slug(text: str) -> str:
    """A file-name-safe version of a model name: ``had-1m (random init)`` -> ``had-1m_random_init``."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")
    return s or "model"


def apply_threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None) is not None:
        import torch

        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
