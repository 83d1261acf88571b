"""Training: a generic resumable/DDP loop and the recipes built on it (HAD pre-training, teacher training).

* :mod:`.config` - OptimConfig, TrainConfig (generic), PretrainConfig (``recipe: pretrain``) and
  TeacherTrainConfig (``recipe: teacher-train``).
* :mod:`.trainer` - :class:`Trainer`: batch_fn / count_fn / step_fn / val_fn, exact resume, DDP.
* :mod:`.checkpoint` - atomic safetensors+JSON checkpoints with sha256 verification and fallback.
* :mod:`.distributed` - torchrun (env://) set-up; collectives that are no-ops in one process.
* :mod:`.schedule` - AdamW parameter groups, warm-up + cosine learning rate.
* :mod:`.samples` - training/validation samples (window + RC + mask) as pure functions of their index.
* :mod:`.feature_cache` - precomputed teacher features (``hadna cache-teacher``).
* :mod:`.launch` - the recipe contract and the one launcher (lock, checks, DDP, train, export) of every recipe.
* :mod:`.pretrain` - :class:`HadPretraining` and :func:`run_pretrain` (``hadna pretrain``).
* :mod:`.teacher_train` - :class:`TeacherTraining` and :func:`run_teacher_train` (``hadna teacher-train``):
  an NT-style ESM teacher trained by masked language modelling.
* :mod:`.export` - every ``final/`` writer: the student backbone or the teacher, tokenizer, model card and summary.
"""

from .checkpoint import CheckpointManager
from .config import RECIPES, OptimConfig, PretrainConfig, TeacherTrainConfig, TrainConfig, recipe_config_class
from .distributed import DistEnv, init_distributed
from .trainer import Trainer, TrainResult

__all__ = ["RECIPES", "CheckpointManager", "DistEnv", "OptimConfig", "PretrainConfig", "TeacherTrainConfig",
           "TrainConfig", "TrainResult", "Trainer", "init_distributed", "recipe_config_class"]
