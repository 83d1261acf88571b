"""``hadna benchmark``: several tasks x models x modes, one resumable run each, plus side-by-side tables."""

from __future__ import annotations

import argparse

HELP = "run several tasks x models x modes (from a YAML config or options) and tabulate them"
DESCRIPTION = """\
Runs every task x model x mode with the evaluation protocol (see hadna finetune) and writes, under
--output-dir, one run JSON + Markdown + CSV per run and results.md / results.csv with all runs side by
side (mean ± sample sd over seeds, max-min range, n seeds; published columns with --published).
Finished seeds are skipped when rerun. --dry-run prints what would run (seeds done and to run, nucleotides,
time per seed measured by earlier seeds of the same run files, interrupted fine-tunes, runs that would
refuse to start: other settings, data or starting weights than their recorded seeds) and runs nothing.

examples:
  hadna benchmark --config configs/benchmark_cpu_smoke.yaml
  hadna benchmark --tasks gue_prom_core_all,human_enhancers_cohn_testcv --models preset:had-1m \\
      --modes probe,finetune --data-dir ../shared/data/benchmarks --seeds 3 --epochs 1 \\
      --max-train-samples 1000 --output-dir runs/eval/smoke
  hadna benchmark --config configs/benchmark_shared.yaml --modes finetune --output-dir DIR --dry-run
A config file takes the same settings (keys of BenchmarkConfig: tasks, models, modes, data_dir,
output_dir, seeds, protocol, mode_overrides, task_overrides, ...); options given on the command line
override it at every level (--epochs also replaces the epochs of mode_overrides and task_overrides), and
--set KEY=VALUE sets any one key of the config (e.g. --set protocol.epochs=2 sets the base protocol's epochs
only: mode_overrides and task_overrides still win over it). --rc-augment / --rc-test apply to fine-tuning
runs; probes in the same benchmark use forward-strand features.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from hadna.commands.options import add_protocol_arguments

    p.add_argument("--config", default=None, metavar="YAML", help="benchmark config (see configs/benchmark_*.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    p.add_argument("--tasks", default=None, metavar="LIST", help="comma-separated registered task names")
    p.add_argument("--models", default=None, metavar="LIST",
                   help="comma-separated model specs (PATH, pretrained:NAME, preset:NAME, kmer[:K], hf:NAME; "
                        "NAME=SPEC names one; `hadna finetune --help` says what each is)")
    p.add_argument("--modes", default=None, metavar="LIST", help="comma-separated modes: finetune, probe, scratch")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="data root of the tasks")
    p.add_argument("--output-dir", default=None, help="output directory (default runs/eval/benchmark)")
    p.add_argument("--published", default=None, metavar="CSV", help="published-results CSV for extra columns")
    p.add_argument("--overwrite", action="store_true", help="start runs again instead of resuming")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would run (seeds, nucleotides, measured time per seed) and run nothing")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--trust-remote-code", action="store_true", default=None, help="allow HF models' own code")
    p.add_argument("--allow-download", action="store_true", help="let hf: models be fetched from the Hub")
    add_protocol_arguments(p, with_mode=False)


def run(args: argparse.Namespace) -> int:
    from hadna.config import apply_overrides, from_dict, located, read_yaml
    from hadna.errors import ConfigError
    from hadna.commands.options import apply_threads, protocol_overrides
    from hadna.eval.options import parse_list, parse_seeds
    from hadna.eval.runner import BenchmarkConfig, plan_benchmark, plan_markdown, run_benchmark

    data = read_yaml(args.config) if args.config else {}
    if args.config:  # a pretrain/pipeline config given here: say so, rather than "no tasks given"
        from hadna.train.config import check_recipe

        check_recipe(data, "benchmark", args.config)
        data.pop("recipe", None)
    for key, value in (("tasks", args.tasks), ("models", args.models), ("modes", args.modes)):
        if value is not None:
            data[key] = parse_list(value, str, f"--{key}")
    for key in ("data_dir", "output_dir", "published", "trust_remote_code"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    overrides = protocol_overrides(args)  # these win over the config at every level (mode and task overrides too)
    overrides.pop("device", None)
    if args.seeds:
        count, explicit = parse_seeds(args.seeds)
        overrides["seeds"] = count if count is not None else explicit
    base = data
    data = apply_overrides(data, args.set)
    for key in ("tasks", "models"):
        if not data.get(key):
            raise ConfigError(f"no {key} given: use --config YAML or --{key} LIST")
    try:
        bench = from_dict(BenchmarkConfig, data, "")
        bench.override_everywhere(overrides)
        bench.validate()
    except ConfigError as exc:  # blame the command line when the config file alone builds
        given = [*args.set, *(f"--{k.replace('_', '-')} {v}" for k, v in overrides.items())]
        try:
            from_dict(BenchmarkConfig, base, "")  # validates
            alone = bool(given)
        except ConfigError:
            alone = False
        raise located(exc, args.config or "command line", given, alone) from None
    if args.dry_run:
        print(plan_markdown(plan_benchmark(bench, overwrite=args.overwrite, allow_download=args.allow_download)))
        return 0
    apply_threads(args)
    records, md = run_benchmark(bench, overwrite=args.overwrite, device=args.device,
                                allow_download=args.allow_download)
    if md.is_file():
        print(md.read_text())
        print(f"tables: {md}, {md.with_suffix('.csv')}")
    return 0
