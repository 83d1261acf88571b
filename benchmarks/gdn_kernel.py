"""Chunked gated delta rule vs the naive per-step recurrence: forward and forward+backward, tokens/s.

    python benchmarks/gdn_kernel.py                      # B=8, T=1024 and T=4096, H=4, K=32, V=64
    python benchmarks/gdn_kernel.py --quick              # smaller, for a smoke run
    python benchmarks/gdn_kernel.py --shapes 8x1024 --no-naive --repeat 7 --model-step
    python benchmarks/gdn_kernel.py --grad-impl custom   # only one backward (default: both)

All variants run in the same process on the same inputs; the table reports their ratios.

``--grad-impl both`` times forward+backward of the chunked op twice, with the hand-written backward
(``custom``, :mod:`hadna.ops.gated_delta_rule.chunk_autograd`) and with PyTorch autograd through the
forward ops (``autograd``); the forward-only rows run the same forward for both. ``--model-step`` adds a
had-1m training step (``HadModel``, input [16, 512], loss = mean(last_hidden_state^2), backward) with
each backward. Variants that are compared are timed alternately (one call of each per round, medians
over rounds), so a change in machine load during the run affects them alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from _common import environment, print_table, write_json
from hadna.ops import chunk_gated_delta_rule, naive_recurrent_gated_delta_rule

GRAD_IMPLS = ("custom", "autograd")


def make_inputs(B, T, H, K, V, grad):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(B, T, H, K, generator=g)
    k = F.normalize(torch.randn(B, T, H, K, generator=g), dim=-1)
    v = torch.randn(B, T, H, V, generator=g)
    gate = F.logsigmoid(torch.randn(B, T, H, generator=g) + 2)
    beta = torch.rand(B, T, H, generator=g)
    return [x.requires_grad_(grad) for x in (q, k, v, gate, beta)]


def time_alternating(fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, timed round-robin (one call of each per round)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def kernel_step(kernel, xs, backward: bool, **kwargs) -> Callable[[], None]:
    def step():
        if backward:
            o, _ = kernel(*xs, **kwargs)
            o.sum().backward()
        else:
            with torch.no_grad():
                kernel(*xs, **kwargs)

    return step


def model_step(grad_impl: str, batch: int = 16, length: int = 512) -> Callable[[], None]:
    """One had-1m forward+backward (no optimizer) with the given kernel backward."""
    from hadna.models.configuration_had import HadConfig
    from hadna.models.modeling_had import HadModel
    from hadna.modules import GatedDeltaNet

    torch.manual_seed(0)
    model = HadModel(HadConfig.preset("had-1m")).train()
    for m in model.modules():
        if isinstance(m, GatedDeltaNet):
            m.grad_impl = grad_impl
    ids = torch.randint(4, 8, (batch, length), generator=torch.Generator().manual_seed(0))

    def step():
        model.zero_grad(set_to_none=True)
        model(input_ids=ids).last_hidden_state.pow(2).mean().backward()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="B=2, T=256 only")
    ap.add_argument("--shapes", default=None, help="comma-separated BxT, e.g. 8x1024,8x4096")
    ap.add_argument("--grad-impl", choices=["both", *GRAD_IMPLS], default="both",
                    help="backward(s) of the chunked op to time in the fwd+bwd rows")
    ap.add_argument("--repeat", type=int, default=5, help="timed rounds per row (medians)")
    ap.add_argument("--no-naive", action="store_true", help="skip the (slow) naive baseline")
    ap.add_argument("--model-step", action="store_true", help="also time a had-1m training step [16, 512]")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    H, K, V = 4, 32, 64
    if args.shapes:
        shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    else:
        shapes = [(2, 256)] if args.quick else [(8, 1024), (8, 4096)]
    impls = GRAD_IMPLS if args.grad_impl == "both" else (args.grad_impl,)
    rows = []
    for B, T in shapes:
        for backward in (False, True):
            xs = make_inputs(B, T, H, K, V, backward)
            if backward:
                res = time_alternating({impl: kernel_step(chunk_gated_delta_rule, xs, True, grad_impl=impl)
                                        for impl in impls}, args.repeat)
            else:  # no gradient: the same forward whatever the impl
                sec = time_alternating({"fwd": kernel_step(chunk_gated_delta_rule, xs, False)}, args.repeat)["fwd"]
                res = {impl: sec for impl in impls}
            row = {"B": B, "T": T, "H": H, "K": K, "V": V, "pass": "fwd+bwd" if backward else "fwd"}
            for impl, sec in res.items():
                row[f"chunk_{impl}_s"] = sec
                row[f"chunk_{impl}_tok_s"] = B * T / sec
            if not args.no_naive:
                row["naive_s"] = time_alternating({"naive": kernel_step(naive_recurrent_gated_delta_rule, xs,
                                                                         backward)}, repeat=1)["naive"]
                row["naive_tok_s"] = B * T / row["naive_s"]
                row["speedup"] = row["naive_s"] / row[f"chunk_{impls[0]}_s"]
            if backward and len(impls) == 2:
                row["custom_speedup"] = row["chunk_autograd_s"] / row["chunk_custom_s"]
            rows.append(row)
            print(f"done B={B} T={T} {row['pass']}", flush=True)
    if args.model_step:
        res = time_alternating({impl: model_step(impl) for impl in impls}, args.repeat)
        row = {"B": 16, "T": 512, "H": H, "K": K, "V": V, "pass": "had-1m step"}
        for impl, sec in res.items():
            row[f"chunk_{impl}_s"] = sec
            row[f"chunk_{impl}_tok_s"] = 16 * 512 / sec
        if len(impls) == 2:
            row["custom_speedup"] = row["chunk_autograd_s"] / row["chunk_custom_s"]
        rows.append(row)
        print("done had-1m step", flush=True)
    print()
    columns = [("B", "B", ""), ("T", "T", ""), ("pass", "pass", "")]
    for impl in impls:
        columns += [(f"chunk_{impl}_s", f"chunk ({impl} bwd) s", ".4f")]
    if len(impls) == 2:
        columns += [("custom_speedup", "autograd / custom", ".2f")]
    columns += [(f"chunk_{impls[0]}_tok_s", f"chunk ({impls[0]}) tok/s", ",.0f")]
    if not args.no_naive:
        columns += [("naive_s", "naive s", ".3f"), ("naive_tok_s", "naive tok/s", ",.0f"),
                    ("speedup", f"naive / chunk ({impls[0]})", ".1f")]
    table = print_table(rows, columns)
    write_json("gdn_kernel", {"environment": environment(), "rows": rows, "table": table}, args.out)


if __name__ == "__main__":
    main()
