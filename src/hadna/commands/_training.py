"""What the training subcommands (``pretrain``, ``teacher-train``) share: their arguments and config loading."""

from __future__ import annotations

import argparse
from typing import TypeVar

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
