"""What the training subcommands (``pretrain``, ``teacher-train``) share: one :class:`TrainingCommand`.

A command module states only what differs (its help text, recipe, example config, what ``final/``
holds, and the function that trains); arguments, config loading and the closing summary are here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from hadna.train.trainer import TrainResult


def load_recipe_config(recipe: str, path: str, overrides: list[str]) -> Any:
    """The typed config of ``path`` plus overrides; a config written for another recipe is a clear error."""
    from hadna.config import load_config, read_yaml
    from hadna.train.config import check_recipe, recipe_config_class

    check_recipe(read_yaml(path), recipe, path)
    return load_config(recipe_config_class(recipe), path, overrides)


@dataclass(frozen=True)
class TrainingCommand:
    """A training subcommand: ``recipe`` (the config's recipe), an example config for ``--help``, and
    ``product``, what ``final/`` holds ("student", "teacher")."""

    recipe: str
    example_config: str
    product: str

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        """``--config``, ``key=value`` overrides, ``--resume`` and ``--output-dir``."""
        p.add_argument("--config", required=True,
                       help=f"YAML config (recipe: {self.recipe}), e.g. {self.example_config}")
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.max_steps=100")
        p.add_argument("--resume", action="store_true",
                       help="continue from the newest intact checkpoint in the output directory")
        p.add_argument("--output-dir", default=None, help="override train.output_dir")

    def run(self, args: argparse.Namespace, train: Callable[..., "TrainResult"]) -> int:
        """Load the config, ``train(cfg, resume=..., output_dir=...)``, print the final validation and
        where ``final/`` went; the command's exit code (0)."""
        cfg = load_recipe_config(self.recipe, args.config, args.overrides)
        result = train(cfg, resume=args.resume, output_dir=args.output_dir)
        if result.val_metrics:
            print("final validation: " + ", ".join(f"{k} {v:.4f}" for k, v in result.val_metrics.items()))
        print(f"done: {result.step} steps; {self.product} written to {result.output_dir / 'final'}")
        return 0
