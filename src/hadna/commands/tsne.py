"""``hadna tsne``: t-SNE maps of several models' pooled embeddings of a labelled dataset."""

from __future__ import annotations

import argparse

HELP = "t-SNE of pooled embeddings from one or several models on a labelled task, with silhouette scores"
DESCRIPTION = """\
Embeds a stratified subsample of a task's sequences with every --model (frozen encoder, pooled final
hidden states), maps each to 2-D with t-SNE (fixed seed; openTSNE if installed, else scikit-learn) and
writes to --out: tsne.png (one panel per model, coloured by class), tsne_coordinates.csv and tsne.json.
Two silhouette scores per model are printed and stored: on the 2-D t-SNE coordinates ("2-D") and on
the raw pooled embeddings ("raw").

example:
  hadna tsne --model preset:had-1m --model runs/pretrain/final --task gue_prom_core_all \\
      --data-dir ../shared/data/benchmarks --max-samples 1000 --out runs/tsne/prom_core
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from hadna.commands.options import add_model_arguments, add_task_arguments

    add_model_arguments(p, multiple=True)
    add_task_arguments(p)
    g = p.add_argument_group("t-SNE")
    g.add_argument("--split", choices=("auto", "train", "validation", "test"), default="auto",
                   help="which split to embed (auto: test if the task has one, else train)")
    g.add_argument("--max-samples", type=int, default=1000, help="stratified subsample size (default 1000)")
    g.add_argument("--seed", type=int, default=0, help="seed of the subsample and of t-SNE (default 0)")
    g.add_argument("--perplexity", type=float, default=None, help="t-SNE perplexity (default min(30, (n-1)/3))")
    g.add_argument("--batch-size", "--embed-batch-size", dest="batch_size", type=int, default=128,
                   help="embedding batch size (sequences per forward pass; the name finetune uses is also taken)")
    g.add_argument("--out", "--output-dir", dest="out", required=True, metavar="DIR",
                   help="output directory (--output-dir, as in finetune/benchmark, is the same option)")


def run(args: argparse.Namespace) -> int:
    from hadna.errors import ConfigError
    from hadna.commands.options import apply_threads, load_task_from_args, task_from_args
    from hadna.eval.models import parse_model_spec
    from hadna.utils.device import resolve_device
    from hadna.eval.tsne import tsne_of_models

    tasks = task_from_args(args)
    if len(tasks) != 1:
        raise ConfigError(f"hadna tsne maps one task, got {len(tasks)}")
    specs = [parse_model_spec(m, pooling=args.pooling, trust_remote_code=args.trust_remote_code,
                              allow_download=args.allow_download) for m in args.model]
    apply_threads(args)
    data = load_task_from_args(tasks[0], args)
    tsne_of_models(specs, data, args.out, split=args.split, max_samples=args.max_samples, seed=args.seed,
                   perplexity=args.perplexity, batch_size=args.batch_size, device=resolve_device(args.device),
                   pooling=args.pooling, echo=print)
    return 0
