"""Shared pytest set-up: deterministic torch, and fixtures that build small inputs in tmp_path."""

from __future__ import annotations

import os

import pytest
import torch

# The suite must run on a 2-core CPU without network access.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)
    yield
