"""``hadna cache-teacher``: precompute the teacher's features of the first N training samples."""

from __future__ import annotations

import argparse

HELP = "precompute teacher features of the first N pre-training samples (train with teacher.cache=DIR)"
DESCRIPTION = """Precompute the teacher's features for a pre-training config.

  hadna cache-teacher --config configs/had_1m_ntv2.yaml --num-samples 200000 --out runs/ntv2-cache
  hadna pretrain --config configs/had_1m_ntv2.yaml teacher.cache=runs/ntv2-cache

Sample i (window, strand, mask) is a pure function of the config's seeds and i, so the cache stores
the features of samples 0..N-1 (and of the validation windows); training then cycles over them
(sample i -> i mod N). The build is chunked and resumable: re-running the same command after an
interruption continues where it stopped. A cache built for other settings is refused by training."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="the pre-training YAML config the cache is for")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (must match training's)")
    p.add_argument("--num-samples", type=int, required=True, help="number of training samples to cache")
    p.add_argument("--out", "--output-dir", dest="out", required=True,
                   help="output directory (--output-dir, as in the other commands, is the same option)")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="storage precision")
    p.add_argument("--batch-size", type=int, default=32, help="samples per teacher forward pass (and per chunk)")


def run(args: argparse.Namespace) -> int:
    import torch

    from hadna.commands._training import load_recipe_config
    from hadna.data import GenomeWindows
    from hadna.errors import ConfigError
    from hadna.utils.device import resolve_device
    from hadna.train.feature_cache import build_feature_cache
    from hadna.train.launch import check_inputs
    from hadna.train.pretrain import load_teacher

    cfg = load_recipe_config("pretrain", args.config, args.overrides)
    if not cfg.teacher.path:
        raise ConfigError(f"{args.config}: teacher.path is not set; the cache needs the teacher checkpoint")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    cfg.teacher.cache = None
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    check_inputs(cfg, need_teacher=True)
    device = resolve_device(cfg.train.device)
    teacher = load_teacher(cfg, device)
    windows = GenomeWindows.from_config(cfg.data)
    out = build_feature_cache(cfg, args.out, args.num_samples, teacher, windows, dtype=args.dtype,
                              batch_size=args.batch_size)
    print(f"teacher feature cache ready: {out} (train with teacher.cache={out})")
    return 0
