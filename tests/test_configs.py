"""Every config shipped under configs/ loads and validates as its recipe (without running anything), and the
recipes a pipeline config chains do too: a typo in a key or a value fails here, not hours into a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadna.config import from_dict, read_yaml
from hadna.pipeline.config import load_pipeline_config, recipe_dict
from hadna.train.config import PretrainConfig, TeacherTrainConfig, config_recipe, recipe_config_class

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_configs_of_every_recipe():
    recipes = {config_recipe(p, read_yaml(p)) for p in CONFIGS}
    assert {"pretrain", "teacher-train", "pipeline", "benchmark"} <= recipes


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_as_its_recipe(path):
    data = read_yaml(path)
    recipe = config_recipe(path, data)
    assert recipe is not None, f"{path.name}: no recipe key and no recipe file-name pattern"
    cfg = from_dict(recipe_config_class(recipe), data)
    if recipe == "pipeline":
        pipeline = load_pipeline_config(path)
        assert pipeline.students or pipeline.teacher or pipeline.benchmark
        for name, ref in pipeline.students.items():
            from_dict(PretrainConfig, recipe_dict(ref, pipeline.base_dir))
        if pipeline.teacher is not None:
            from_dict(TeacherTrainConfig, recipe_dict(pipeline.teacher, pipeline.base_dir))
    assert cfg is not None


def test_the_demo_student_uses_instance_targets():
    """The README's main command must not train the raw-target student that fine-tuned below random init
    (docs/results.md sections 4 and 6)."""
    demo = load_pipeline_config(next(p for p in CONFIGS if p.name == "demo.yaml"))
    for name, ref in demo.students.items():
        cfg = from_dict(PretrainConfig, recipe_dict(ref, demo.base_dir))
        if cfg.objective.uses_teacher:
            assert cfg.objective.normalize_targets == "instance", name
