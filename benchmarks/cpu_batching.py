"""Batches on a CPU capped at ``CPU_BATCH_NT`` padded nucleotides vs bounded by sequence count only.

    python benchmarks/cpu_batching.py                        # embedding at 100, 300 and 500 bp
    python benchmarks/cpu_batching.py --workload finetune --lengths 300,500
    python benchmarks/cpu_batching.py --threads 1 --lengths 500 --n 1000

``embed``: embeds ``--n`` random sequences per length (lengths drawn uniformly from 90-100% of the nominal
one, like a task's) through the probe's path (:func:`hadna.eval.inference.embed_sequences`, batch size 128,
the ``--embed-batch-size`` default). ``finetune``: one epoch of :func:`hadna.eval.finetune.fine_tune` (batch
32, the shared benchmark's) on ``--n`` sequences, where the cap splits each batch into micro-batches with
gradient accumulation; training nt/s only. Both with the had-1m preset, once with the model's CPU cap and
once without it, alternated ``--repeat`` times in one process so that both see the same machine. Prints nt/s
of both, their ratio, and writes ``benchmarks/results/cpu_batching_<workload>.json`` (or ``--out``). The
glibc allocator is tuned first, as the ``hadna`` command line does.
"""

from __future__ import annotations

import argparse
import statistics

from _common import environment, print_table, write_json


def measure(model, cls, settings: dict, workload: str, length: int, n: int | None, repeat: int) -> dict:
    """One row: nt/s of every setting on ``n`` sequences of about ``length`` nt, alternated ``repeat`` times."""
    import numpy as np

    from hadna.eval.finetune import FinetuneConfig, fine_tune
    from hadna.eval.inference import embed_sequences
    from hadna.eval.task_data import Split

    rng = np.random.default_rng(length)
    n = n or (max(256, 400_000 // length) if workload == "embed" else max(128, 100_000 // length))
    seqs = ["".join(rng.choice(list("ACGT"), int(length * rng.uniform(0.9, 1.0)))) for _ in range(n)]
    train, val = Split(seqs, np.arange(n) % 2), Split(seqs[:32], np.arange(32) % 2)
    start = {k: v.clone() for k, v in model.module.state_dict().items()}
    speeds: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(repeat):
        for name, cap in settings.items():
            cls.batch_nt_cap = property(lambda self, c=cap: c)  # the setting under test
            if workload == "embed":
                _, tp = embed_sequences(model, seqs, batch_size=128, show_progress=False)
            else:
                model.module.load_state_dict(start)  # every run trains from the same weights
                tp = fine_tune(model, train, val, FinetuneConfig(epochs=1, batch_size=32, lr=1e-3), metric="mcc",
                               num_classes=2, seed=1).train
            speeds[name].append(tp.nt_per_s)
    row = {"length": length, "sequences": n, **{f"{k}_nt_s": statistics.median(v) for k, v in speeds.items()},
           "runs": speeds}
    row["ratio"] = row["capped_nt_s"] / row["uncapped_nt_s"]
    print(f"{workload} {length} bp: capped {row['capped_nt_s']:,.0f} nt/s, uncapped {row['uncapped_nt_s']:,.0f} nt/s",
          flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=["embed", "finetune"], default="embed")
    parser.add_argument("--lengths", default="100,300,500", help="nominal lengths in nt, comma-separated")
    parser.add_argument("--n", type=int, default=None,
                        help="sequences per length (default: 400k nt worth to embed, 100k nt to fine-tune)")
    parser.add_argument("--repeat", type=int, default=2, help="alternated runs per setting (medians)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/cpu_batching_<workload>.json)")
    args = parser.parse_args()

    import torch

    from hadna.utils.allocator import tune_cpu_allocator

    tune_cpu_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    from hadna.eval.models import load_eval_model, parse_model_spec
    from hadna.utils.batching import CPU_BATCH_NT

    model = load_eval_model(parse_model_spec("preset:had-1m"), 2, seed=0, device="cpu")
    settings = {"capped": CPU_BATCH_NT, "uncapped": None}
    env = environment()  # the load average before the runs
    rows = []
    cls = type(model)
    original = cls.__dict__.get("batch_nt_cap")
    try:
        for length in (int(x) for x in args.lengths.split(",")):
            rows.append(measure(model, cls, settings, args.workload, length, args.n, args.repeat))
    finally:
        if original is None:
            del cls.batch_nt_cap
        else:
            cls.batch_nt_cap = original
    batch = 128 if args.workload == "embed" else 32
    print(f"\nhad-1m {args.workload} on CPU, {env['threads']} thread(s), batch size {batch}, cap {CPU_BATCH_NT:,} nt")
    print_table(rows, [("length", "length (bp)", ""), ("sequences", "sequences", ","),
                       ("uncapped_nt_s", f"nt/s, {batch} per batch", ",.0f"),
                       ("capped_nt_s", f"nt/s, also <= {CPU_BATCH_NT:,} nt", ",.0f"), ("ratio", "ratio", ".2f")])
    write_json(f"cpu_batching_{args.workload}", {"environment": env, "workload": args.workload, "batch_size": batch,
                                                 "cap_nt": CPU_BATCH_NT, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
