"""The one launcher of the training recipes (``hadna pretrain``, ``hadna teacher-train``).

A recipe is a class that follows :class:`Recipe`: built from its config and the process's
:class:`~hadna.train.distributed.DistEnv`, it hands a configured :class:`~hadna.train.trainer.Trainer`
to :func:`launch`, which does everything around it in the same order for every recipe:

1. lock the output directory for the whole run (a second process writing into it stops at once; a
   ``final/`` left by a killed run is removed);
2. validate the config, resolve ``hadna:`` package paths, fail in one line on a missing input;
3. refuse a fresh run into a directory that already holds checkpoints (before the genome or the teacher
   is read);
4. set up DDP when launched by torchrun (only rank 0 logs below WARNING);
5. build the recipe and its trainer, write ``config.yaml`` (fresh runs), train;
6. rank 0 exports ``<output_dir>/final/`` with the recipe's writer from :mod:`hadna.train.export`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

import torch
import yaml

from .. import resources
from ..config import to_dict
from ..errors import MissingFileError
from ..teachers.checkpoint import is_hub_id, resolve_config
from ..utils.io import atomic_write_text, lock_directory
from .checkpoint import CheckpointManager
from .distributed import DistEnv, barrier, init_distributed, shutdown_distributed
from .trainer import Trainer, TrainResult

PACKAGE_PREFIX = "hadna:"


class Recipe(Protocol):
    """What :func:`launch` needs of a recipe: its config, its process and a ready trainer."""

    cfg: Any
    env: DistEnv

    def build_trainer(self) -> Trainer: ...


R = TypeVar("R", bound=Recipe)


def resolve_path(path: str) -> str:
    """``hadna:resources/...`` -> the file inside the installed package (the shipped genome sample)."""
    if path.startswith(PACKAGE_PREFIX):
        return str(resources.RESOURCES.parent / path[len(PACKAGE_PREFIX):])
    return path


def check_inputs(cfg: Any, need_teacher: bool) -> None:
    """Resolve package paths of ``cfg.data`` in place and fail early, in one line, on a missing input.

    ``cfg``: a recipe config with ``data`` (:class:`~hadna.data.GenomeDataConfig`) and ``hints``; with
    ``need_teacher``, also ``teacher`` (the pre-training recipe).
    """
    cfg.data.fasta = [resolve_path(p) for p in cfg.data.fasta]
    for key in ("bed", "val_bed"):
        if getattr(cfg.data, key):
            setattr(cfg.data, key, resolve_path(getattr(cfg.data, key)))
    hints = cfg.hints

    def missing(what: str, path: str, hint_key: str) -> MissingFileError:
        hint = hints.get(hint_key)
        return MissingFileError(f"{what} not found: {path}" + (f"; {hint}" if hint else ""))

    for p in cfg.data.fasta:
        if not Path(p).is_file():
            raise missing("FASTA file", p, "fasta")
    for key in ("bed", "val_bed"):
        p = getattr(cfg.data, key)
        if p and not Path(p).is_file():
            raise missing(f"data.{key} file", p, key if key in hints else "bed")
    if need_teacher and cfg.teacher.path and not cfg.teacher.cache:
        check_teacher_path(cfg)
    if getattr(getattr(cfg, "model", None), "init_from", None):
        cfg.model.init_path()  # continued pre-training: the starting model must exist and be a hadna save


def check_teacher_path(cfg: Any) -> None:
    """A missing teacher directory is a one-line error with the config's hint (what to download or train).

    A name that looks like a Hub id ("org/name") is accepted if the Hugging Face cache (or, with
    local_files_only false, the Hub) has it; the teacher wrapper resolves it.
    """
    t = cfg.teacher
    if Path(t.path).expanduser().exists():
        return
    hint = t.missing_hint or cfg.hints.get("teacher") or "set teacher.path to a teacher checkpoint directory"
    if is_hub_id(t.path):
        if not t.local_files_only:
            return  # may be downloaded; the wrapper reports failures
        try:
            resolve_config(t.path, local_files_only=True)
            return
        except MissingFileError:
            pass
    where = "" if Path(t.path).expanduser().is_absolute() else f" (relative to the working directory {Path.cwd()})"
    raise MissingFileError(f"teacher checkpoint directory not found: {t.path}{where}; {hint}")


def write_run_config(cfg: Any, output_dir: Path) -> None:
    """``<output_dir>/config.yaml``: the resolved config of a fresh run."""
    atomic_write_text(output_dir / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))


def launch(cfg: Any, build: Callable[[DistEnv], R], export: Callable[[R, TrainResult], Path], *,
           resume: bool = False, output_dir: str | None = None, need_teacher: bool = False) -> TrainResult:
    """Run one recipe from its config to ``final/`` (see the module docstring for the steps).

    build: ``env -> recipe``; export: ``(recipe, result) -> final directory``; need_teacher: check that
    ``cfg.teacher.path`` exists before anything is loaded.
    """
    if output_dir is not None:
        cfg.train.output_dir = output_dir
    with lock_directory(cfg.train.output_dir, clean=("final",)):
        cfg.validate()
        if cfg.train.num_threads:
            torch.set_num_threads(cfg.train.num_threads)
        check_inputs(cfg, need_teacher=need_teacher)
        if not resume:
            CheckpointManager(Path(cfg.train.output_dir) / "checkpoints").refuse_existing()
        env = init_distributed(cfg.train.device)
        if not env.is_main:  # only rank 0 logs; the others report warnings and errors
            logging.getLogger("hadna").setLevel(logging.WARNING)
        try:
            cfg.train.check_world_size(env.world_size)
            out = Path(cfg.train.output_dir)
            if env.is_main:
                out.mkdir(parents=True, exist_ok=True)
            recipe = build(env)
            trainer = recipe.build_trainer()
            if env.is_main and not resume:
                write_run_config(cfg, out)
            result = trainer.fit(resume=resume)
            if env.is_main:
                export(recipe, result)
            barrier(env)
            return result
        finally:
            shutdown_distributed(env)


__all__ = ["Recipe", "check_inputs", "check_teacher_path", "launch", "resolve_path", "write_run_config"]
