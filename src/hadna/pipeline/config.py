"""The pipeline config (``recipe: pipeline``) and how it points at the recipes it chains.

Example (``configs/demo.yaml`` is the real one)::

    recipe: pipeline
    name: demo                          # run directory: runs/demo unless output_dir is given
    tasks:                              # labelled tasks built from a FASTA (optional)
      repeats: {build: repeat, fasta: "hadna:resources/genome/hsap_chr22_sample.task.fa.gz"}
    teacher:                            # trained here (recipe: teacher-train) ...
      config: teacher_small.yaml        #   relative to this file's directory
      set: [train.max_steps=300]        #   dotted overrides, applied last
    #  path: checkpoints/ntv2-500m       # ... or an existing teacher
    students:                           # each a recipe: pretrain config; teacher.path is filled in
      HAD: {config: demo_student.yaml}
      MLM: {config: demo_student.yaml, set: [objective.mode=mlm]}
    benchmark:                          # hadna benchmark settings; models may say student:NAME / teacher
      tasks: [repeats]
      models: [HAD=student:HAD, MLM=student:MLM, random=preset:had-1m]
      modes: [probe]
    tsne: {task: repeats, models: [HAD=student:HAD, random=preset:had-1m]}

A config of another recipe (``pretrain``, ``teacher-train``) given to ``hadna run`` is run as a
one-stage pipeline, so the paper-scale ``configs/had_1m_ntv2.yaml`` works with ``hadna run`` too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import apply_overrides, config_recipe, from_dict, read_yaml
from ..errors import ConfigError, MissingFileError


@dataclass
class RecipeRef:
    """A stage's recipe config: a YAML file and/or inline settings, then dotted overrides.

    ``config`` is resolved against the pipeline file's directory, then the working directory.
    ``path`` (teacher only) uses an existing model instead of training one.
    """

    config: str | None = None
    inline: dict[str, Any] = field(default_factory=dict)
    set: list[str] = field(default_factory=list)
    path: str | None = None


@dataclass
class TaskBuild:
    """A labelled task built from a FASTA (``build: repeat`` = repeat vs non-repeat from soft-masking)."""

    fasta: str
    build: Literal["repeat"] = "repeat"
    window: int = 200
    test_fraction: float = 0.2
    min_repeat_fraction: float = 0.9
    max_nonrepeat_fraction: float = 0.1
    max_per_class: int | None = None
    seed: int = 0
    spec: dict[str, Any] = field(default_factory=dict)  # extra TaskSpec fields (seeds, metric, class_names, ...)


@dataclass
class TsneSection:
    task: str
    models: list[str]
    max_samples: int = 1000
    seed: int = 0
    split: Literal["auto", "train", "validation", "test"] = "auto"
    batch_size: int = 128


@dataclass
class PipelineConfig:
    recipe: str = "pipeline"
    name: str = "run"
    output_dir: str | None = None          # default runs/<name>
    description: str = ""
    note: str = ""                          # printed at the top of the report
    threads: int | None = None              # torch threads for every stage (None: torch's default)
    data_dir: str | None = None             # data root of registered benchmark tasks
    published: str | None = None            # published-results CSV for the report's extra columns
    tasks: dict[str, TaskBuild] = field(default_factory=dict)
    teacher: RecipeRef | None = None
    students: dict[str, RecipeRef] = field(default_factory=dict)
    benchmark: dict[str, Any] | None = None
    tsne: TsneSection | None = None
    base_dir: str = "."                     # set by the loader: the config file's directory
    # set by the loader (never from YAML): the recipe of a one-recipe config it wrapped
    single_recipe: str | None = field(default=None, init=False)

    def validate(self) -> None:
        if self.recipe != "pipeline":
            raise ConfigError(f"recipe must be 'pipeline', got {self.recipe!r}")
        if not self.name or "/" in self.name:
            raise ConfigError(f"name must be a non-empty directory name, got {self.name!r}")
        for key in ("tasks", "students"):
            for k in getattr(self, key):
                if not k or "/" in k or "=" in k or ":" in k:
                    raise ConfigError(f"{key}: {k!r} is not a valid name (no '/', '=' or ':')")
        if self.teacher is not None and (self.teacher.path is None) == (self.teacher.config is None
                                                                         and not self.teacher.inline):
            raise ConfigError("teacher: give either path (an existing teacher) or config/inline (train one)")
        if not any((self.teacher, self.students, self.benchmark, self.tsne)):
            raise ConfigError("the pipeline has no stages: add teacher, students, benchmark or tsne")

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir or f"runs/{self.name}")


def resolve_config_path(ref: str, base_dir: str | Path) -> Path:
    for cand in (Path(base_dir) / ref, Path(ref)):
        if cand.is_file():
            return cand
    raise MissingFileError(f"recipe config not found: {ref} (looked in {base_dir} and the working directory)")


def recipe_dict(ref: RecipeRef, base_dir: str | Path) -> dict[str, Any]:
    """The recipe settings a :class:`RecipeRef` describes (file, then inline, then ``set``)."""
    data = read_yaml(resolve_config_path(ref.config, base_dir)) if ref.config else {}
    data = deep_merge(data, ref.inline)
    return apply_overrides(data, ref.set)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_pipeline_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PipelineConfig:
    """Read a ``hadna run`` config. A single-recipe config becomes a one-stage pipeline."""
    path = Path(path)
    data = apply_overrides(read_yaml(path), overrides)
    recipe = data.get("recipe")
    if recipe is None and not {"students", "teacher"} & data.keys():  # a benchmark_*.yaml has no recipe key
        recipe = config_recipe(path, data)
    if recipe in (None, "pipeline"):
        data.setdefault("recipe", "pipeline")
        data["base_dir"] = str(path.resolve().parent)
        try:
            return from_dict(PipelineConfig, data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    # One recipe: wrap it. Its own output_dir stays where its config says.
    name = path.stem
    inline_ref = RecipeRef(inline=data)
    if recipe == "pretrain":
        cfg = PipelineConfig(name=name, students={name: inline_ref}, base_dir=str(path.resolve().parent))
    elif recipe == "teacher-train":
        cfg = PipelineConfig(name=name, teacher=inline_ref, base_dir=str(path.resolve().parent))
    else:
        hint = f"; run it with `hadna benchmark --config {path}`" if recipe == "benchmark" else ""
        raise ConfigError(f"{path}: `hadna run` takes a pipeline, pretrain or teacher-train config, "
                          f"not recipe {recipe!r}{hint}")
    cfg.output_dir = None
    cfg.single_recipe = recipe
    cfg.validate()
    return cfg
