"""had-1m on the CPU: nt/s, GFLOP/s and % of this machine's fp32 matmul peak, per workload, in one process.

    python benchmarks/cpu_speed.py                      # every workload, torch's default threads
    python benchmarks/cpu_speed.py --threads 1 --profile --only forward-1kb,finetune-100bp

The peak is a 1024 x 1024 x 1024 fp32 matmul timed in the same process with the same threads (so a
loaded machine lowers the peak and the workloads alike). FLOPs are counted once per workload with
torch's ``FlopCounterMode`` (matmuls, batched matmuls, attention, whose CPU kernels ``_common.count_flops``
registers: the stock counter scores them 0; element-wise work counts zero, so
"% of peak" is the share of the step spent at matmul speed). Workloads, each timed as the median of
``--repeat`` calls after one warm-up:

* ``had-step-1kb``: one HAD optimiser step on B8 x 1 kb with cached teacher features (the real
  Trainer step: sampling, masking, student, decoder, losses, clipping, AdamW), features of a random
  NT-style teacher (width 256) read from a ``hadna cache-teacher`` cache built beforehand;
* ``mlm-step-1kb``: the same step for the MLM baseline (no teacher, no decoder);
* ``forward-1kb``: the backbone's forward without gradients, B8 x 1 kb;
* ``finetune-100bp`` / ``finetune-300bp``: one fine-tuning step (tokenisation, forward, cross-entropy,
  backward, AdamW) through the evaluation harness' model, 32 random sequences, as one batch;
* ``finetune-500bp``: the same at 500 bp (the histone-mark tasks), split into micro-batches of at most
  ``CPU_BATCH_NT`` padded nucleotides with gradient accumulation, as the harness runs it on a CPU;
* ``embed-100bp`` / ``embed-500bp``: pooled features of 256 random 100-bp / 128 random 500-bp sequences
  (the probe's and ``hadna embed``'s path; 500 bp is the length of the histone-mark tasks).

Allocator: like the ``hadna`` command line, the benchmark raises glibc's mmap/trim thresholds first
(:mod:`hadna.utils.allocator`); ``--allocator default`` leaves glibc's defaults, and
``--compare-allocator`` also runs every workload with the defaults (in a child process, since the setting is
process-wide) and prints both side by side. Each row records the system-CPU share of the timed calls and
the minor page faults per call, where the defaults' cost shows.

``--ceiling`` times every matmul shape of each workload alone (:func:`gemm_ceiling`): the % of peak a
workload could reach if its element-wise work were free, which bounds what fusing can buy.

``--profile`` adds torch.profiler's top operators by self CPU time per workload (printed and saved in
the JSON). Results: a Markdown table and ``benchmarks/results/cpu_speed.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from _common import count_flops, environment, print_table, write_json


def matmul_peak(repeat: int = 10) -> float:
    """GFLOP/s of a 1024^3 fp32 matmul (median of ``repeat``)."""
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.mm(a, b)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * 1024 ** 3 / statistics.median(times) / 1e9


def random_sequences(n: int, length: int, seed: int) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def pretrain_workloads(root: Path, batch: int) -> dict[str, tuple[Callable[[], None], int]]:
    """name -> (step function, nucleotides per call) for the HAD (cached features) and MLM steps."""
    from pretrain_throughput import Variant, build_config

    from hadna.resources import GENOME_SAMPLE_PRETRAIN
    from hadna.teachers import Teacher, make_random_nt_teacher
    from hadna.train.feature_cache import build_feature_cache
    from hadna.train.pretrain import HadPretraining

    teacher_dir = make_random_nt_teacher(root / "teacher", hidden_size=256, num_layers=4, num_heads=4,
                                         intermediate_size=1024, max_length_nt=1024)
    fasta = str(GENOME_SAMPLE_PRETRAIN)
    cfg = build_config(root, fasta, teacher_dir, "had", batch)
    windows = HadPretraining(build_config(root, fasta, teacher_dir, "mlm", batch)).windows
    cache = build_feature_cache(cfg, root / "cache", 64 * batch, Teacher.from_pretrained(teacher_dir), windows,
                                dtype="float16", batch_size=batch)
    out = {}
    for name, variant in (("had-step-1kb", Variant("had-cached", build_config(root, fasta, teacher_dir, "had",
                                                                               batch, cache))),
                          ("mlm-step-1kb", Variant("mlm", build_config(root, fasta, teacher_dir, "mlm", batch)))):
        counter = iter(range(10 ** 6))

        def step(v=variant, c=counter) -> None:
            v.step(next(c) % 64, record=False)

        out[name] = (step, variant.task.tokens_per_step)
    return out


def model_workloads(batch: int) -> dict[str, tuple[Callable[[], None], int]]:
    import torch

    import numpy as np

    from hadna.eval.models import load_eval_model, parse_model_spec
    from hadna.models import HadConfig, HadModel
    from hadna.utils.batching import micro_batches

    torch.manual_seed(0)
    backbone = HadModel(HadConfig.preset("had-1m")).eval()
    ids = torch.randint(4, 8, (batch, 1024), generator=torch.Generator().manual_seed(0))

    def forward() -> None:
        with torch.inference_mode():
            backbone(input_ids=ids)

    out = {"forward-1kb": (forward, batch * 1024)}
    # 100 and 300 bp as one batch (the rows measured before micro-batching); 500 bp split as the harness splits
    # a CPU batch (micro-batches of <= CPU_BATCH_NT nt). Summed losses / 32: the batch's gradient either way.
    for length, split in ((100, False), (300, False), (500, True)):
        model = load_eval_model(parse_model_spec("preset:had-1m"), 2, seed=0, device="cpu").train()
        opt = torch.optim.AdamW([p for p in model.module.parameters() if p.requires_grad], lr=1e-4)
        seqs = random_sequences(32, length, length)
        labels = torch.arange(32) % 2
        parts = micro_batches(np.arange(32), np.full(32, length), model.batch_nt_cap if split else None)

        def ft_step(m=model, o=opt, s=seqs, parts=parts) -> None:
            o.zero_grad(set_to_none=True)
            for part in parts:
                logits = m.logits([s[i] for i in part]).float()
                (torch.nn.functional.cross_entropy(logits, labels[part], reduction="sum") / 32).backward()
            o.step()

        out[f"finetune-{length}bp"] = (ft_step, 32 * length)
    embedder = load_eval_model(parse_model_spec("preset:had-1m"), 2, seed=0, device="cpu").eval()
    for length, n in ((100, 256), (500, 128)):
        emb_seqs = random_sequences(n, length, 7)

        def embed(s=emb_seqs) -> None:
            with torch.inference_mode():
                embedder.features(s)

        out[f"embed-{length}bp"] = (embed, n * length)
    return out


def profile_table(fn: Callable[[], None], rows: int = 15) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=48)


_GEMM_OPS = ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm")
_ATTENTION_OPS = ("aten::_scaled_dot_product_flash_attention_for_cpu",
                  "aten::_scaled_dot_product_flash_attention_for_cpu_backward")


def _gemm_flops(op: str, shapes: list[list[int]]) -> int:
    """2 x multiply-adds of a matmul-family op from its input shapes (profiler order)."""
    a, b = (shapes[0], shapes[1]) if op in ("aten::mm", "aten::bmm") else (shapes[1], shapes[2])
    batch = a[0] if len(a) == 3 else 1
    return 2 * batch * a[-2] * a[-1] * b[-1]


def _time_gemm_alone(op: str, shapes: list[list[int]], repeat: int = 7) -> float:
    """Median seconds of one op on fresh contiguous fp32 inputs of the recorded shapes."""
    import torch

    args = [torch.randn(*sh) for sh in shapes[:3 if op in ("aten::addmm", "aten::baddbmm") else 2]]
    fn = {"aten::mm": torch.mm, "aten::bmm": torch.bmm, "aten::addmm": torch.addmm,
          "aten::baddbmm": torch.baddbmm}[op]
    fn(*args)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gemm_ceiling(fn: Callable[[], None], flops: int, peak: float) -> dict[str, float]:
    """How far matmul speed alone could take a workload.

    One profiled call (shapes recorded) lists every matmul-family op; each distinct shape is then timed
    alone on contiguous inputs. ``ceiling_pct_of_peak``: the workload's FLOPs over the summed isolated
    matmul time, as % of the 1024^3 peak, i.e. the share of peak reached if every element-wise pass, copy
    and Python line cost nothing and every matmul ran as fast as it does alone. The attention kernel is
    already fused: its time in the model is taken as is.
    """
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
    # attention is already one fused kernel: its time in the model counts as its time alone
    attention = {_ATTENTION_OPS[0]: (sdpa_flop_count, 3), _ATTENTION_OPS[1]: (sdpa_backward_flop_count, 4)}
    in_model_us, alone_s, gemm_flops = 0.0, 0.0, 0
    for ev in prof.key_averages(group_by_input_shape=True):
        shapes = [list(sh) for sh in ev.input_shapes if sh]
        if ev.key in _GEMM_OPS:
            gemm_flops += ev.count * _gemm_flops(ev.key, shapes)
            alone_s += ev.count * _time_gemm_alone(ev.key, shapes)
        elif ev.key in attention:
            count, n_shapes = attention[ev.key]   # (grad_out,) query, key, value
            gemm_flops += ev.count * count(*shapes[:n_shapes])
            alone_s += ev.self_cpu_time_total * 1e-6
        else:
            continue
        in_model_us += ev.self_cpu_time_total
    total_us = sum(ev.self_cpu_time_total for ev in prof.key_averages())
    return {"gemm_share_of_time_pct": 100 * in_model_us / max(total_us, 1e-9),
            "gemm_gflops_in_model": gemm_flops / max(in_model_us * 1e-6, 1e-12) / 1e9,
            "gemm_gflops_alone": gemm_flops / max(alone_s, 1e-12) / 1e9,
            "gemm_flop_share_pct": 100 * gemm_flops / max(flops, 1),
            "ceiling_pct_of_peak": 100 * flops / max(alone_s, 1e-12) / 1e9 / peak,
            "profiled_wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="windows per 1-kb step (default 8)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per workload (medians)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--only", default=None, help="comma-separated workload names")
    parser.add_argument("--profile", action="store_true", help="also print/save torch.profiler op tables")
    parser.add_argument("--ceiling", action="store_true",
                        help="also time every matmul shape of each workload alone: the %% of peak the "
                             "workload could reach if everything but its matmuls were free")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/cpu_speed.json)")
    parser.add_argument("--allocator", choices=["tuned", "default"], default="tuned",
                        help="glibc malloc thresholds: hadna's (as the CLI sets them) or glibc's defaults")
    parser.add_argument("--compare-allocator", action="store_true",
                        help="also run every workload with glibc's defaults (child process) and compare")
    args = parser.parse_args()

    baseline = None
    if args.compare_allocator:
        with tempfile.TemporaryDirectory() as tmp:
            child = [a for a in sys.argv[1:] if a != "--compare-allocator"]
            child = [a for i, a in enumerate(child) if a != "--out" and (i == 0 or child[i - 1] != "--out")]
            subprocess.run([sys.executable, __file__, *child, "--allocator", "default", "--out", f"{tmp}/d.json"],
                           check=True, env={**os.environ, "HADNA_MALLOC_TUNING": "0"})
            baseline = {r["workload"]: r for r in json.loads(Path(f"{tmp}/d.json").read_text())["rows"]}

    import torch

    from hadna.utils.allocator import tune_cpu_allocator

    tuned = tune_cpu_allocator() if args.allocator == "tuned" else False
    logging.getLogger("hadna").setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(args.only.split(",")) if args.only else None
    rows, profiles = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        workloads = {}
        if only is None or only & {"had-step-1kb", "mlm-step-1kb"}:
            workloads.update(pretrain_workloads(Path(tmp), args.batch))
        workloads.update(model_workloads(args.batch))
        if only is not None:
            unknown = only - set(workloads)
            if unknown:
                raise SystemExit(f"unknown workload(s) {sorted(unknown)}; known: {sorted(workloads)}")
            workloads = {k: v for k, v in workloads.items() if k in only}
        peak_before = matmul_peak()
        for name, (fn, nt) in workloads.items():
            fn()  # warm-up (and lazy initialisation)
            flops = count_flops(fn)
            times = []
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            sec = statistics.median(times)
            user, system = ru1.ru_utime - ru0.ru_utime, ru1.ru_stime - ru0.ru_stime
            rows.append({"workload": name, "nt_per_call": nt, "s_per_call": sec, "nt_per_s": nt / sec,
                         "gflop_per_call": flops / 1e9, "gflop_per_s": flops / sec / 1e9,
                         "times_s": [round(t, 4) for t in times],
                         "sys_pct": 100 * system / max(user + system, 1e-9),
                         "minor_faults_per_call": (ru1.ru_minflt - ru0.ru_minflt) / args.repeat})
            print(f"{name}: {nt / sec:,.0f} nt/s", flush=True)
            if args.profile:
                profiles[name] = profile_table(fn)
                print(profiles[name])
            if args.ceiling:
                rows[-1].update(gemm_ceiling(fn, flops, peak_before))
        peak = max(peak_before, matmul_peak())
    for r in rows:
        r["pct_of_peak"] = 100 * r["gflop_per_s"] / peak
        if baseline and r["workload"] in baseline:
            b = baseline[r["workload"]]
            r.update(default_nt_per_s=b["nt_per_s"], default_sys_pct=b["sys_pct"],
                     default_pct_of_peak=b["pct_of_peak"], speedup_vs_default=r["nt_per_s"] / b["nt_per_s"])
    print(f"\nhad-1m on CPU, {torch.get_num_threads()} thread(s); fp32 matmul peak (1024^3) {peak:.1f} GFLOP/s; "
          f"allocator: {'tuned' if tuned else 'glibc defaults'}")
    cols = [("workload", "workload", ""), ("nt_per_s", "nt/s", ",.0f"), ("gflop_per_s", "GFLOP/s", ".1f"),
            ("pct_of_peak", "% of peak", ".0f"), ("sys_pct", "sys CPU %", ".0f"),
            ("minor_faults_per_call", "faults/call", ",.0f"), ("s_per_call", "s/call", ".3f")]
    if args.ceiling:
        cols += [("gemm_share_of_time_pct", "matmul % of op time", ".0f"),
                 ("gemm_gflops_in_model", "matmul GFLOP/s in model", ".1f"),
                 ("gemm_gflops_alone", "same matmuls alone", ".1f"),
                 ("ceiling_pct_of_peak", "ceiling % of peak", ".0f")]
    if baseline:
        cols += [("default_nt_per_s", "nt/s, glibc defaults", ",.0f"), ("default_sys_pct", "sys CPU %, defaults", ".0f"),
                 ("speedup_vs_default", "speed-up", ".2f")]
    table = print_table(rows, cols)
    write_json("cpu_speed", {"environment": environment(), "matmul_peak_gflops": peak, "batch": args.batch,
                             "allocator": "tuned" if tuned else "default", "rows": rows, "profiles": profiles,
                             "table": table}, args.out)


if __name__ == "__main__":
    main()
