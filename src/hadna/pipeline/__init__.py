"""``hadna run``: the whole HAD pipeline in one command, resumable stage by stage.

teacher-train -> pretrain (HAD and baselines) -> benchmark (probe / fine-tune) -> t-SNE -> report,
all inside one run directory. See :mod:`hadna.pipeline.config` for the YAML format.
"""

from .config import PipelineConfig, load_pipeline_config
from .runner import run_pipeline

__all__ = ["PipelineConfig", "load_pipeline_config", "run_pipeline"]
