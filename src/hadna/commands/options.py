"""Command-line options shared by ``hadna finetune``, ``benchmark``, ``tsne`` and ``embed``: all argparse glue.

Only argparse and light helpers are imported here (no torch, no NumPy), so ``hadna --help`` stays quick.
Every protocol option defaults to ``None`` = "not given": the task's protocol (or a benchmark config)
supplies the value, and :func:`protocol_overrides` returns only what the user set.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..eval.formats import task_name_from_file
from ..eval.options import MODES, parse_list
from ..eval.tasks import METRICS, TaskSpec, get_task, task_from_dict, task_from_yaml
from ..utils.batching import CPU_BATCH_NT

if TYPE_CHECKING:
    from ..eval.task_data import TaskData


def add_model_arguments(p: argparse.ArgumentParser, multiple: bool = False) -> None:
    g = p.add_argument_group("model")
    help_spec = ("model under evaluation: a hadna checkpoint directory (e.g. a pre-training output "
                 "runs/x/final), pretrained:NAME (a student shipped inside hadna), preset:NAME (random init, "
                 "e.g. preset:had-1m), kmer[:K] (the k-mer baseline, probe only) or hf:NAME_OR_PATH (a Hugging "
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
    g.add_argument("--lr", type=float, default=None,
                   help="fixed learning rate (default: the task's grid, searched on validation; 1e-3 for a task "
                        "of your own unless its YAML sets lr_grid)")
    g.add_argument("--batch-size", type=int, default=None,
                   help="fixed batch size (default: the task's grid; 32 for a task of your own unless its YAML "
                        "sets batch_size_grid)")
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
    g.add_argument("--head-dropout", type=float, default=None,
                   help="dropout on the pooled features the head reads (default: the model's own, 0.1 for hadna "
                        "models, with a random head; 0 with --head-init probe)")
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
    g.add_argument("--eval-batch-size", type=int, default=None,
                   help=f"most sequences per prediction batch (default 256; on a CPU also at most {CPU_BATCH_NT:,} nt)")
    g.add_argument("--embed-batch-size", type=int, default=None,
                   help=f"most sequences per probe-embedding batch (default 128; on a CPU also at most "
                        f"{CPU_BATCH_NT:,} nt)")


def protocol_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The protocol options the user actually gave, as ProtocolConfig fields (seeds excluded)."""
    out: dict[str, Any] = {}
    for name in ("mode", "epochs", "lr", "batch_size", "schedule", "warmup_ratio", "weight_decay", "rc_augment",
                 "rc_test", "head_init", "backbone_lr_ratio", "head_dropout", "max_train_samples", "max_val_samples", "max_test_samples", "cv_folds",
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


def apply_threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None) is not None:
        import torch

        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that choose a task: a registered name, a YAML file, or files given directly."""
    g = parser.add_argument_group("task")
    g.add_argument("--task", action="append", default=None, metavar="NAME",
                   help="registered task name (repeatable)")
    g.add_argument("--task-file", action="append", default=None, metavar="YAML",
                   help="custom task described in a YAML file (repeatable)")
    g.add_argument("--train-file", default=None, metavar="PATH",
                   help="custom task: training data (CSV/TSV with sequence|seq and label columns, parquet, "
                        "or FASTA with '|label' headers)")
    g.add_argument("--validation-file", default=None, metavar="PATH", help="custom task: validation data")
    g.add_argument("--test-file", default=None, metavar="PATH",
                   help="custom task: test data (without it a stratified test set is held out)")
    g.add_argument("--task-name", default=None, help="custom task: name (default: the train file's stem, or its folder's name for train.csv and the like)")
    g.add_argument("--num-classes", type=int, default=None, help="custom task: number of classes")
    g.add_argument("--max-length", type=int, default=None, help="custom task: truncate sequences to this many nt")
    g.add_argument("--metric", choices=METRICS, default=None, help="custom task: primary metric (default accuracy)")
    g.add_argument("--data-dir", default=None, metavar="DIR",
                   help="data root of registered tasks (e.g. ~/.genomic_benchmarks or ../shared/data/benchmarks)")
    g.add_argument("--reference", default=None, metavar="FASTA|DIR",
                   help="Genomic Benchmarks coordinate files: reference FASTA (or a directory holding the "
                        "files named in each task's metadata.yaml) to cut sequences from")
    g.add_argument("--truncation", choices=("left", "center", "none"), default="left",
                   help="how sequences longer than the task's max length are cut: keep the left part "
                        "(default; what the published pipelines do), the centre, or nothing")
    g.add_argument("--from-hub", action="store_true",
                   help="download the task from the Hugging Face Hub (needs the 'datasets' package; "
                        "never done without this flag)")
    g.add_argument("--hub-revision", default=None, help="with --from-hub: dataset revision (commit/tag)")


def task_from_args(args: argparse.Namespace) -> list[TaskSpec]:
    """Task specs chosen by :func:`add_task_arguments` options, in the order: names, files, direct."""
    specs = [get_task(n) for n in (args.task or [])]
    specs += [task_from_yaml(p) for p in (args.task_file or [])]
    if args.train_file is not None:
        files = {"train": str(Path(args.train_file).resolve())}
        if args.validation_file:
            files["validation"] = str(Path(args.validation_file).resolve())
        if args.test_file:
            files["test"] = str(Path(args.test_file).resolve())
        data: dict[str, Any] = {"name": args.task_name or task_name_from_file(args.train_file), "files": files,
                                "num_classes": args.num_classes, "max_length": args.max_length}
        if args.metric:
            data["metric"] = args.metric
        specs.append(task_from_dict(data, where="command-line task"))
    elif args.validation_file or args.test_file:
        raise ConfigError("--validation-file/--test-file need --train-file")
    if not specs:
        raise ConfigError("no task given: use --task NAME, --task-file YAML or --train-file PATH")
    return specs


def load_task_from_args(spec: TaskSpec, args: argparse.Namespace) -> "TaskData":
    """Load ``spec`` with the options of :func:`add_task_arguments`."""
    from ..eval.loaders import load_hf_task, load_task  # NumPy, pandas: only when a command runs

    if getattr(args, "from_hub", False):
        return load_hf_task(spec, revision=getattr(args, "hub_revision", None), truncation=args.truncation)
    return load_task(spec, args.data_dir, reference=args.reference, truncation=args.truncation)
