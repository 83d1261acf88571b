"""Why does a pre-trained student fine-tune worse than a random init? Recipes side by side on one task.

    python benchmarks/finetune_recipes.py --train-file T.csv --test-file E.csv \\
        --model HAD=runs/demo/students/HAD/final --model MLM=runs/demo/students/MLM/final \\
        --model random=preset:had-1m --seeds 1,2 --epochs 4 --out ~/hadna-runs/recipes

Every (model, recipe) pair runs through the real protocol (:func:`hadna.eval.protocol.run_protocol`:
stratified 90/10 train/validation split per seed, early stopping on validation, one test evaluation)
with the same seeds, caps, epochs and batch size; only the recipe differs:

* ``probe``       frozen encoder + standardised logistic regression (reference);
* ``ft-2e-3``     full fine-tune, lr 2e-3 (the README's follow-up command), random head;
* ``ft-5e-4``     the same at lr 5e-4;
* ``lpft-5e-4``   LP-FT: the head starts as the probe (``--head-init probe``), then full fine-tune at 5e-4;
* ``bb0.1-2e-3``  head at lr 2e-3, encoder at 2e-4 (``--backbone-lr-ratio 0.1``).

Per model it also reports statistics of the frozen mean-pooled features on the training set: the
anisotropy ``|mean|^2 / E|x - mean|^2`` (how much of the feature vector is one shared offset that a
raw linear head must work around; the probe standardises it away) and the mean feature norm.

Each run's JSON goes under ``--out`` (re-running resumes finished seeds); the table is printed and
written with the per-block weight change of every fine-tune to ``benchmarks/results/finetune_recipes.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from _common import environment, print_table, write_json

RECIPES: dict[str, dict] = {
    "probe": {"mode": "probe"},
    "ft-2e-3": {"mode": "finetune", "lr": 2e-3},
    "ft-5e-4": {"mode": "finetune", "lr": 5e-4},
    "lpft-5e-4": {"mode": "finetune", "lr": 5e-4, "head_init": "probe"},
    "bb0.1-2e-3": {"mode": "finetune", "lr": 2e-3, "backbone_lr_ratio": 0.1},
}


def feature_stats(model, seqs: list[str]) -> dict[str, float]:
    from hadna.eval.inference import embed_sequences

    x, _ = embed_sequences(model, seqs, desc="feature statistics")
    x = x.astype(np.float64)
    mu = x.mean(0)
    spread = ((x - mu) ** 2).sum(1).mean()
    return {"anisotropy": float(mu @ mu / spread), "mean_norm": float(np.linalg.norm(x, axis=1).mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-file", required=True)
    p.add_argument("--test-file", required=True)
    p.add_argument("--task-name", default="task")
    p.add_argument("--metric", default="mcc")
    p.add_argument("--model", action="append", required=True, metavar="NAME=SPEC")
    p.add_argument("--recipes", default=",".join(RECIPES), help="comma list of " + ", ".join(RECIPES))
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-train-samples", type=int, default=None)
    p.add_argument("--max-test-samples", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", required=True, help="directory for the per-run JSONs (resumable)")
    p.add_argument("--json", default=None, help="result JSON (default benchmarks/results/finetune_recipes.json)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from hadna.eval.options import slug
    from hadna.eval.loaders import load_task
    from hadna.eval.models import load_eval_model, parse_model_spec
    from hadna.eval.protocol import ProtocolConfig, run_protocol
    from hadna.eval.tasks import task_from_dict

    train, test = Path(args.train_file).resolve(), Path(args.test_file).resolve()
    spec = {"name": args.task_name, "path": str(train.parent), "metric": args.metric,
            "files": {"train": str(train), "test": str(test)}}
    data = load_task(task_from_dict(spec))
    seeds = [int(s) for s in args.seeds.split(",")]
    recipes = args.recipes.split(",")
    models = [parse_model_spec(m) for m in args.model]
    rows, runs = [], []
    for mspec in models:
        stats = feature_stats(load_eval_model(mspec, data.num_classes, seed=0),
                              data.train.sequences[: min(len(data.train), 2000)])
        row = {"model": mspec.name, **stats}
        for name in recipes:
            cfg = ProtocolConfig(seeds=seeds, epochs=args.epochs, batch_size=args.batch_size, patience=None,
                                 max_train_samples=args.max_train_samples, max_test_samples=args.max_test_samples,
                                 **RECIPES[name])
            out = Path(args.out).expanduser() / f"{slug(mspec.name)}.{name}.json"
            rec = run_protocol(data, mspec, cfg, out)
            vals = [r.metrics[args.metric] for r in rec.results]
            row[name] = f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1) if len(vals) > 1 else 0:.3f}"
            runs.append({"model": mspec.name, "recipe": name, "test": [r.metrics for r in rec.results],
                         "val": [r.val_metrics for r in rec.results],
                         "weight_change": [r.extra.get("grid", [{}])[0].get("weight_change") for r in rec.results],
                         "history": [[{k: h[k] for k in ("epoch", "train_loss", "val_loss")} | {"val": h["val"][args.metric]}
                                      for h in r.extra.get("grid", [{}])[0].get("history", [])] for r in rec.results]})
        rows.append(row)
    cols = [("model", "model", ""), ("anisotropy", "feature anisotropy", ".2f"), ("mean_norm", "mean |x|", ".1f")]
    cols += [(r, f"{r} test {args.metric}", "") for r in recipes]
    print(f"\n{data.name}: {len(data.train):,} train / {len(data.test):,} test sequences; seeds {seeds}; "
          f"{args.epochs} epochs, batch {args.batch_size}; mean ± sd over seeds\n")
    print_table(rows, cols)
    write_json("finetune_recipes",
                      {"task": data.name, "train_file": str(train), "test_file": str(test), "seeds": seeds,
                       "epochs": args.epochs, "batch_size": args.batch_size, "recipes": {r: RECIPES[r] for r in recipes},
                       "rows": rows, "runs": runs, "environment": environment()}, args.json)


if __name__ == "__main__":
    main()
