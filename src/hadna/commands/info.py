"""``hadna info``: versions, presets and their parameter counts, shipped students, available kernels;
``--tasks`` lists the registered evaluation tasks."""

from __future__ import annotations

import argparse

HELP = "show versions, model presets with parameter counts, shipped students, kernels; --tasks lists tasks"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", action="append", default=None, help="only these presets (repeatable)")
    p.add_argument("--tasks", action="store_true",
                   help="list the registered evaluation tasks (name, group, classes, length, metric) instead")


def _print_tasks() -> int:
    from hadna.eval.tasks import list_tasks

    tasks = list_tasks()
    width = max(len(t.name) for t in tasks)
    print(f"{'task':<{width}}  {'benchmark':<10} {'group':<15} {'classes':>7} {'length':>6}  metric")
    for t in tasks:
        print(f"{t.name:<{width}}  {t.benchmark:<10} {t.group or '-':<15} {t.num_classes:>7} "
              f"{t.max_length or '-':>6}  {t.metric}")
    print(f"{len(tasks)} tasks: `hadna finetune --task NAME --data-dir DIR` or `hadna benchmark --tasks A,B`; "
          f"a file of your own: --train-file")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.tasks:
        return _print_tasks()
    import platform

    import torch
    import transformers

    import hadna
    from hadna.models import HadConfig, HadModel
    from hadna.models.pretrained import available_pretrained
    from hadna.ops import fla_available

    configs = {name: HadConfig.preset(name) for name in args.preset or HadConfig.available_presets()}  # names first
    print(f"hadna {hadna.__version__}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"python {platform.python_version()}")
    print(f"CUDA available: {torch.cuda.is_available()}; fla kernels importable: {fla_available()}")
    print(f"{'preset':<12} {'params':>12}")
    for name, config in configs.items():
        model = HadModel(config)
        print(f"{name:<12} {sum(p.numel() for p in model.parameters()):>12,}")
    shipped = available_pretrained()
    print("shipped students (--model pretrained:NAME): " + (", ".join(shipped) if shipped else "none"))
    return 0
