"""``hadna info``: versions, presets and their parameter counts, available kernels."""

from __future__ import annotations

import argparse

HELP = "show versions, model presets with parameter counts, and which kernels are available"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", action="append", default=None, help="only these presets (repeatable)")


def run(args: argparse.Namespace) -> int:
    import platform

    import torch
    import transformers

    import hadna
    from hadna.models import HadConfig, HadModel
    from hadna.ops import fla_available

    print(f"hadna {hadna.__version__}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"python {platform.python_version()}")
    print(f"CUDA available: {torch.cuda.is_available()}; fla kernels importable: {fla_available()}")
    print(f"{'preset':<12} {'params':>12}")
    for name in args.preset or HadConfig.available_presets():
        model = HadModel(HadConfig.preset(name))
        print(f"{name:<12} {sum(p.numel() for p in model.parameters()):>12,}")
    return 0
