"""What the training subcommands (``pretrain``, ``teacher-train``) share: arguments, config loading, summary."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from hadna.train.trainer import TrainResult

T = TypeVar("T")


def add_training_arguments(p: argparse.ArgumentParser, recipe: str, example_config: str) -> None:
    """``--config``, ``key=value`` overrides, ``--resume`` and ``--output-dir``."""
    p.add_argument("--config", required=True, help=f"YAML config (recipe: {recipe}), e.g. {example_config}")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.max_steps=100")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest intact checkpoint in the output directory")
    p.add_argument("--output-dir", default=None, help="override train.output_dir")


def load_recipe_config(cls: type[T], recipe: str, path: str, overrides: list[str]) -> T:
    """The typed config of ``path`` plus overrides; a config written for another recipe is a clear error."""
    from hadna.config import load_config, read_yaml
    from hadna.train.config import check_recipe

    check_recipe(read_yaml(path), recipe, path)
    return load_config(cls, path, overrides)


def report_training(result: "TrainResult", what: str) -> int:
    """Print the final validation and where ``final/`` went; the command's exit code (0)."""
    if result.val_metrics:
        print("final validation: " + ", ".join(f"{k} {v:.4f}" for k, v in result.val_metrics.items()))
    print(f"done: {result.step} steps; {what} written to {result.output_dir / 'final'}")
    return 0
