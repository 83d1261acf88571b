"""Chunked gated delta rule vs the naive per-step recurrence: forward and forward+backward, tokens/s.

    python benchmarks/gdn_kernel.py                 # B=8, T=1024 and T=4096, H=4, K=32, V=64
    python benchmarks/gdn_kernel.py --quick         # smaller, for a smoke run

Both kernels run in the same process on the same inputs; the table reports their ratio.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from _common import environment, print_table, time_fn, write_json
from hadna.ops import chunk_gated_delta_rule, naive_recurrent_gated_delta_rule


def make_inputs(B, T, H, K, V, grad):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(B, T, H, K, generator=g)
    k = F.normalize(torch.randn(B, T, H, K, generator=g), dim=-1)
    v = torch.randn(B, T, H, V, generator=g)
    gate = F.logsigmoid(torch.randn(B, T, H, generator=g) + 2)
    beta = torch.rand(B, T, H, generator=g)
    return [x.requires_grad_(grad) for x in (q, k, v, gate, beta)]


def measure(kernel, B, T, H, K, V, backward, repeat):
    xs = make_inputs(B, T, H, K, V, backward)

    def step():
        o, _ = kernel(*xs)
        if backward:
            o.sum().backward()

    if not backward:
        with torch.no_grad():
            return time_fn(step, warmup=1, repeat=repeat)
    return time_fn(step, warmup=1, repeat=repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    H, K, V = 4, 32, 64
    shapes = [(2, 256)] if args.quick else [(8, 1024), (8, 4096)]
    rows = []
    for B, T in shapes:
        for backward in (False, True):
            res = {}
            for name, kernel in (("chunk", chunk_gated_delta_rule), ("naive", naive_recurrent_gated_delta_rule)):
                res[name] = measure(kernel, B, T, H, K, V, backward, repeat=3 if name == "chunk" else 1)
            row = {"B": B, "T": T, "H": H, "K": K, "V": V, "pass": "fwd+bwd" if backward else "fwd"}
            for name in res:
                row[f"{name}_s"] = res[name]["median_s"]
                row[f"{name}_tok_s"] = B * T / res[name]["median_s"]
            row["speedup"] = row["naive_s"] / row["chunk_s"]
            rows.append(row)
            print(f"done B={B} T={T} {row['pass']}", flush=True)
    print()
    table = print_table(rows, [("B", "B", ""), ("T", "T", ""), ("pass", "pass", ""),
                               ("chunk_s", "chunk s", ".4f"), ("naive_s", "naive s", ".3f"),
                               ("chunk_tok_s", "chunk tok/s", ",.0f"), ("naive_tok_s", "naive tok/s", ",.0f"),
                               ("speedup", "chunk / naive", ".1f")])
    write_json("gdn_kernel", {"environment": environment(), "rows": rows, "table": table}, args.out)


if __name__ == "__main__":
    main()
