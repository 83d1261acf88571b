"""Pre-training throughput of the had-1m student on CPU at L=1024: live teacher vs cached features vs MLM.

    python benchmarks/pretrain_throughput.py                  # batch 8, 5 timed steps per variant
    python benchmarks/pretrain_throughput.py --batch 4 --steps 3 --threads 1

One full optimizer step (window sampling, NT tokenisation, two-stage masking, teacher features,
student forward/backward, clipping, AdamW) is timed through the real :class:`hadna.train.Trainer`
for three variants, side by side in one process:

* ``had-live``:  HAD with a live teacher (a random NT-style ESM, width 256, 4 layers; NTv2-500M is
  ~100x larger, so on real runs the teacher's share is far higher than here);
* ``had-cached``: HAD reading the same teacher's features from a ``hadna cache-teacher`` cache
  (fp16, memory-mapped), built beforehand and not timed;
* ``mlm``: the MLM baseline (no teacher, no decoder), the cost floor of a step.

The variants run round-robin (one step of each per round), so a change in machine load during the
run affects all of them alike; the table reports medians over rounds.

The teacher's share is its forward time (measured separately on the same batches) over the live step.
Target: ``had-cached`` costs at most 1.5x the ``mlm`` step.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from _common import environment, print_table, write_json


def build_config(root: Path, fasta: str, teacher: Path, mode: str, batch: int, cache: Path | None = None):
    from hadna.config import from_dict
    from hadna.train.config import PretrainConfig

    return from_dict(PretrainConfig, {
        "model": {"preset": "had-1m"},
        "data": {"fasta": [fasta], "window_length": 1024, "num_val_windows": 4, "cache_dir": str(root / "genome")},
        "teacher": {"path": str(teacher) if mode != "mlm" else None, "cache": str(cache) if cache else None},
        "objective": {"mode": mode},
        "optim": {"lr": 1e-3, "warmup_steps": 10},
        "train": {"max_steps": 1000, "batch_size": batch, "output_dir": str(root / f"run-{mode}"),
                  "device": "cpu", "precision": "fp32", "val_every": 0, "save_every": 0},
    })


class Variant:
    """One variant's task and trainer; ``step()`` runs and times one full optimizer step."""

    def __init__(self, name: str, cfg, teacher=None):
        from hadna.train.pretrain import HadPretraining

        self.name = name
        self.task = HadPretraining(cfg, teacher=teacher)
        self.trainer = self.task.build_trainer()
        self.model = self.trainer.model.train()
        self.times: list[float] = []
        self.teacher_times: list[float] = []

    def step(self, step: int, record: bool) -> None:
        self.trainer.step = step
        t0 = time.perf_counter()
        self.trainer._train_step(self.model)
        dt = time.perf_counter() - t0
        if not record:
            return
        self.times.append(dt)
        if self.task.teacher is not None:  # the teacher alone, on the same step's batch
            mb = self.task.make_batch(self.task.sample_indices(step, 0, 1))
            t1 = time.perf_counter()
            self.task.teacher.features(mb.masked.teacher_input_ids, mb.masked.teacher_attention_mask)
            self.teacher_times.append(time.perf_counter() - t1)

    def result(self) -> dict:
        step_s = statistics.median(self.times)
        out = {"variant": self.name, "step_s": step_s, "nt_per_s": self.task.tokens_per_step / step_s,
               "runs": len(self.times), "step_times_s": [round(t, 4) for t in self.times],
               "params": sum(p.numel() for p in self.task.model.student.parameters())}
        if self.teacher_times:
            out["teacher_s"] = statistics.median(self.teacher_times)
            out["teacher_share"] = out["teacher_s"] / step_s
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/pretrain_throughput.json)")
    args = parser.parse_args()

    import torch

    from hadna.resources import GENOME_SAMPLE_PRETRAIN
    from hadna.teachers import Teacher, make_random_nt_teacher
    from hadna.train.feature_cache import build_feature_cache
    from hadna.train.pretrain import HadPretraining

    logging.getLogger("hadna").setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        teacher_dir = make_random_nt_teacher(root / "teacher", hidden_size=256, num_layers=4, num_heads=4,
                                             intermediate_size=1024, max_length_nt=1024)
        teacher = Teacher.from_pretrained(teacher_dir)
        fasta = str(GENOME_SAMPLE_PRETRAIN)
        live_cfg = build_config(root, fasta, teacher_dir, "had", args.batch)
        cache = build_feature_cache(live_cfg, root / "cache", (args.steps + 1) * args.batch, teacher,
                                    HadPretraining(build_config(root, fasta, teacher_dir, "mlm", args.batch)).windows,
                                    dtype="float16", batch_size=args.batch)
        variants = [Variant("had-live", live_cfg, teacher),
                    Variant("had-cached", build_config(root, fasta, teacher_dir, "had", args.batch, cache)),
                    Variant("mlm", build_config(root, fasta, teacher_dir, "mlm", args.batch))]
        # Round-robin: a change in machine load hits every variant alike instead of one of them.
        for step in range(args.steps + 1):
            for v in variants:
                v.step(step, record=step > 0)
            print(f"round {step}: " + ", ".join(f"{v.name} {v.times[-1]:.2f}s" for v in variants if v.times), flush=True)
        rows = [v.result() for v in variants]
    mlm = next(r for r in rows if r["variant"] == "mlm")["step_s"]
    for r in rows:
        r["vs_mlm"] = r["step_s"] / mlm
    print(f"\nhad-1m training step on CPU, L=1024, batch {args.batch}, {torch.get_num_threads()} thread(s)")
    table = print_table(rows, [("variant", "variant", ""), ("step_s", "s/step", ".3f"), ("nt_per_s", "nt/s", ",.0f"),
                               ("vs_mlm", "x mlm step", ".2f"), ("teacher_s", "teacher s", ".3f"),
                               ("teacher_share", "teacher share", ".0%")])
    cached = next(r for r in rows if r["variant"] == "had-cached")["vs_mlm"]
    verdict = "meets" if cached <= 1.5 else "MISSES"
    print(f"\ncached HAD step = {cached:.2f}x the MLM step ({verdict} the <= 1.5x target)")
    write_json("pretrain_throughput", {"environment": environment(), "batch": args.batch, "window": 1024,
                                       "teacher": "random NT-style ESM, width 256, 4 layers, FFN 1024",
                                       "rows": rows, "cached_vs_mlm": cached, "table": table}, args.out)


if __name__ == "__main__":
    main()
