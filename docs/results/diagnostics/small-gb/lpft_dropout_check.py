"""LP-FT's starting point with and without the classifier's dropout (docs/results.md section 7, small GB tasks).

For one seed of a task: load the shipped HAD student, start its head from the linear probe exactly as
``--head-init probe`` does, and measure the training split's cross-entropy before any fine-tuning step,
once in eval mode (no dropout: the probe itself) and in train mode (every dropout on, the classifier's and
the blocks', as in the first fine-tuning step; three dropout draws). Then the classifier's dropout alone, on the
pooled features as the head reads them (raw) and, for comparison, on standardised features with the probe's
standardisation kept outside the dropout (the other fix considered; docs/design.md section 9). Nothing is trained. Splits, caps,
data directory and the probe's C grid are read from ``configs/benchmark_shared.yaml`` (its fine-tuning
protocol for the task); run it from the repository root.

    python docs/results/diagnostics/small-gb/lpft_dropout_check.py human_ocr_ensembl_sample 1
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from hadna.config import from_dict, read_yaml
from hadna.eval.finetune import init_head_from_probe
from hadna.eval.inference import embed_sequences
from hadna.eval.loaders import load_task
from hadna.eval.model_spec import parse_model_spec
from hadna.eval.models import load_eval_model
from hadna.eval.plan import base_splits, make_units, split_of
from hadna.eval.runner import BenchmarkConfig


def train_loss(model, split, train_mode: bool, batch: int = 32) -> float:
    model.train(train_mode)
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(split), batch):
            logits = model.logits(split.sequences[i:i + batch])
            labels = torch.from_numpy(split.labels[i:i + batch]).long()
            total += float(torch.nn.functional.cross_entropy(logits, labels)) * len(labels)
    model.eval()
    return total / len(split)


def main() -> None:
    task, seed = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    bench = from_dict(BenchmarkConfig, read_yaml("configs/benchmark_shared.yaml"), "configs/benchmark_shared.yaml")
    data = load_task(task, bench.data_dir)
    cfg = bench.protocol_for(task, "finetune", (seed,))
    base, _ = base_splits(data, cfg)
    unit = make_units(data, cfg, seed, base)[0]
    train, val = split_of(base, unit.train), split_of(base, unit.val)
    model = load_eval_model(parse_model_spec("pretrained:had-1m-primates"), data.spec.num_classes, seed=seed)
    metric = data.spec.metric
    probe = init_head_from_probe(model, train, val, metric=metric, num_classes=data.spec.num_classes,
                                 c_grid=list(cfg.probe_c_grid), seed=seed)
    head = model.linear_head().weight.detach()
    print(f"{task} seed {seed}: {len(train)} train / {len(val)} val; probe C {probe['C']:g}, "
          f"val {metric} {probe['val'][metric]:.4f}; head weight norm {head.norm():.1f} "
          f"(row max |w| {head.abs().max():.2f})")
    print(f"ln(classes) = {np.log(data.spec.num_classes):.4f}")
    print(f"train cross-entropy, eval mode (the probe, no dropout): {train_loss(model, train, False):.4f}")
    c = model.module.config
    for draw in range(3):
        torch.manual_seed(draw)
        print(f"train cross-entropy, train mode (dropout: classifier {c.classifier_dropout}, hidden "
              f"{c.hidden_dropout}, attention {c.attention_dropout}), "
              f"draw {draw}: {train_loss(model, train, True):.4f}")
    x = torch.as_tensor(np.asarray(embed_sequences(model, train.sequences, desc="embedding train")[0]),
                        dtype=torch.float32)
    y = torch.from_numpy(train.labels).long()
    mu, sd = x.mean(0), x.std(0)
    bias = model.linear_head().bias.detach()
    ce = torch.nn.functional.cross_entropy
    print(f"pooled features: mean |mean| / sd over dimensions {float((mu.abs() / sd).mean()):.2f} "
          f"(max {float((mu.abs() / sd).max()):.1f})")
    p = c.classifier_dropout
    z = (x - mu) / sd  # the same head: W (mu + sd z) + b = (W sd) z + (b + W mu)
    for draw in range(3):
        keep = (torch.rand(x.shape, generator=torch.Generator().manual_seed(draw)) > p).float() / (1 - p)
        raw = ce((x * keep) @ head.T + bias, y)
        std = ce((z * keep) @ (head * sd).T + bias + head @ mu, y)
        print(f"classifier dropout {p} only, draw {draw}: raw features {float(raw):.4f}, "
              f"standardised features {float(std):.4f}")


if __name__ == "__main__":
    main()
