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
    from hadna.eval.cli_options import add_model_arguments
    from hadna.eval.tasks import add_task_arguments

    add_model_arguments(p, multiple=True)
    add_task_arguments(p)
    g = p.add_argument_group("t-SNE")
    g.add_argument("--split", choices=("auto", "train", "validation", "test"), default="auto",
                   help="which split to embed (auto: test if the task has one, else train)")
    g.add_argument("--max-samples", type=int, default=1000, help="stratified subsample size (default 1000)")
    g.add_argument("--seed", type=int, default=0, help="seed of the subsample and of t-SNE (default 0)")
    g.add_argument("--perplexity", type=float, default=None, help="t-SNE perplexity (default min(30, (n-1)/3))")
    g.add_argument("--batch-size", type=int, default=128, help="embedding batch size")
    g.add_argument("--out", required=True, metavar="DIR", help="output directory")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from hadna.errors import ConfigError
    from hadna.eval.cli_options import apply_threads
    from hadna.eval.inference import embed_sequences
    from hadna.eval.loaders import load_task_from_args
    from hadna.eval.models import load_eval_model, parse_model_spec, resolve_device
    from hadna.eval.protocol import subsample
    from hadna.eval.tasks import task_from_args
    from hadna.eval.tsne import make_panel, write_outputs

    tasks = task_from_args(args)
    if len(tasks) != 1:
        raise ConfigError(f"hadna tsne maps one task, got {len(tasks)}")
    if args.max_samples < 4:
        raise ConfigError(f"--max-samples must be >= 4, got {args.max_samples}")
    specs = [parse_model_spec(m, pooling=args.pooling, trust_remote_code=args.trust_remote_code,
                              allow_download=args.allow_download) for m in args.model]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"two models share a name in {names}; name them with NAME=SPEC")
    apply_threads(args)
    device = resolve_device(args.device)
    data = load_task_from_args(tasks[0], args)
    split_name = args.split if args.split != "auto" else ("test" if data.test is not None else "train")
    split = getattr(data, split_name)
    if split is None:
        raise ConfigError(f"task {data.name!r} has no {split_name} split")
    idx = subsample(split.labels, np.arange(len(split)), args.max_samples, args.seed)
    part = split.subset(idx)
    panels = []
    for spec in specs:
        model = load_eval_model(spec, data.num_classes, seed=0, device=device)
        feats, tp = embed_sequences(model, part.sequences, args.batch_size, desc=f"embedding ({spec.name})")
        panel = make_panel(spec.name, feats, part.labels, args.seed, args.perplexity)
        panel.info.update({"embed_seconds": tp.seconds, "embed_nt_per_s": tp.nt_per_s,
                           "encoder_parameters": model.encoder_parameters(), "dim": int(feats.shape[1])})
        panels.append(panel)
        print(f"{spec.name}: silhouette on 2-D t-SNE coordinates {panel.silhouette_2d:.4f}; "
              f"on raw pooled embeddings ({feats.shape[1]}-d) {panel.silhouette_raw:.4f}")
    meta = {"task": data.name, "split": split_name, "subsample_seed": args.seed, "pooling": args.pooling,
            "models": [s.to_dict() for s in specs],
            "title": f"{data.name} ({split_name}, n={len(part)}): t-SNE of pooled embeddings"}
    files = write_outputs(panels, part.labels, data.class_names, args.out, meta)
    print("wrote " + ", ".join(str(p) for p in files.values()))
    return 0
