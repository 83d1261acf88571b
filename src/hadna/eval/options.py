"""Values of the evaluation options (shared by the command line and benchmark configs): modes, lists,
seeds, file-name slugs, the old values of fine-tuning settings added later. No argparse here: the options themselves are declared in :mod:`hadna.commands.options`.
"""

from __future__ import annotations

import re

from ..errors import ConfigError

MODES = ("finetune", "probe", "scratch")

# Fine-tuning settings added to the recorded recipe later, with the value every run before them ran with: a
# run record (hadna.eval.records) or an epoch checkpoint (hadna.eval.finetune) that lacks one ran at this value.
FINETUNE_SETTINGS_ADDED: dict[str, object] = {
    "head_dropout": None,  # the model's own classifier dropout, LP-FT included
}


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
    if re.search(r",\s*,|^\s*,", text):
        raise ConfigError(f"--seeds {text}: an empty item between commas")
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


def slug(text: str) -> str:
    """A file-name-safe version of a model name: ``had-1m (random init)`` -> ``had-1m_random_init``."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")
    return s or "model"
