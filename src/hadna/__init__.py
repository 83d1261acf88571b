"""hadna: Hybrid Architecture Distillation (HAD) for DNA language models."""

__version__ = "0.1.0"
