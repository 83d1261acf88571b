"""Inference speed, FLOPs and peak memory: had-1m vs an NTv2-500M-shaped transformer, side by side.

    python benchmarks/inference.py            # 1 kb, 4 kb, 16 kb
    python benchmarks/inference.py --quick    # 1 kb only, smaller batches

The teacher-shaped model is transformers' core ``EsmModel`` with random weights: 29 layers, width 1024,
16 heads, rotary positions, FFN width 6144 (a plain 2-matrix FFN of width 6144 has the FLOPs of NTv2's
gated 3-matrix FFN of width 4096). It reads 6-mer tokens: nt / 6 + 1 tokens per sequence. The student
reads one token per nucleotide. Each measurement runs in a fresh process so its peak RSS is its own.
FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on the real forward pass (matmuls,
attention, convolutions; elementwise work is not counted), for both models alike.
"""

from __future__ import annotations

import argparse

from _common import environment, print_table, run_isolated, write_json

NTV2_SHAPE = dict(vocab_size=4107, hidden_size=1024, num_hidden_layers=29, num_attention_heads=16,
                  intermediate_size=6144, position_embedding_type="rotary", token_dropout=False,
                  pad_token_id=1, mask_token_id=2, max_position_embeddings=4096)


def build(model: str):
    import torch

    torch.manual_seed(0)
    if model == "had-1m":
        from hadna.models import HadConfig, HadModel

        return HadModel(HadConfig.preset("had-1m")).eval()
    from transformers import EsmConfig, EsmModel

    return EsmModel(EsmConfig(**NTV2_SHAPE), add_pooling_layer=False).eval()


def tokens_for(model: str, nt: int) -> int:
    return nt if model == "had-1m" else nt // 6 + 1


def measure(model: str, nt: int, batch: int, repeat: int = 3, count_flops: bool = True) -> dict:
    """Runs in a subprocess (see _common.run_isolated)."""
    import torch
    from _common import count_flops, time_fn

    net = build(model)
    n_tok = tokens_for(model, nt)
    lo = 4 if model == "had-1m" else 5
    ids = torch.randint(lo, lo + 4, (batch, n_tok))
    flops = None
    with torch.inference_mode():
        if count_flops:
            flops = count_flops(lambda: net(ids[:1]))
        t = time_fn(lambda: net(ids), warmup=1, repeat=repeat)
    params = sum(p.numel() for p in net.parameters())
    return {"model": model, "nt": nt, "tokens": n_tok, "batch": batch, "params": params,
            "seconds_per_batch": t["median_s"], "seq_per_s": batch / t["median_s"],
            "nt_per_s": batch * nt / t["median_s"], "flops_per_seq": flops,
            "gflop_per_s": (flops * batch / t["median_s"] / 1e9) if flops else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    # (nt, batch for had-1m, batch for the NTv2-shaped model): same batch per length for a fair comparison
    settings = [(1024, 8)] if args.quick else [(1024, 16), (4096, 4), (16384, 1)]
    rows = []
    for nt, batch in settings:
        pair = {}
        for model in ("had-1m", "ntv2-500m-shaped"):
            repeat = 3 if (model == "had-1m" or nt <= 1024) else 1
            pair[model] = run_isolated("inference", "measure", {"model": model, "nt": nt, "batch": batch,
                                                                 "repeat": repeat})
            print(f"done {model} {nt} nt: {pair[model]['seq_per_s']:.2f} seq/s", flush=True)
        for model, r in pair.items():
            r["speedup_vs_ntv2"] = r["seq_per_s"] / pair["ntv2-500m-shaped"]["seq_per_s"]
            r["flop_ratio_ntv2_over_model"] = pair["ntv2-500m-shaped"]["flops_per_seq"] / r["flops_per_seq"]
            r["gflop_per_seq"] = r["flops_per_seq"] / 1e9
            rows.append(r)
    # Memory scaling of the student at batch 1 (should grow linearly with length).
    mem_rows = []
    for nt in ([1024] if args.quick else [1024, 4096, 16384]):
        r = run_isolated("inference", "measure", {"model": "had-1m", "nt": nt, "batch": 1, "repeat": 2,
                                                  "count_flops": False})
        mem_rows.append({"nt": nt, "peak_rss_mb": r["peak_rss_mb"], "seq_per_s": r["seq_per_s"]})
    print()
    table = print_table(rows, [("model", "model", ""), ("params", "params", ",d"), ("nt", "nt", ""),
                               ("tokens", "tokens", ""), ("batch", "batch", ""), ("seq_per_s", "seq/s", ".2f"),
                               ("speedup_vs_ntv2", "x NTv2-shaped", ".1f"),
                               ("gflop_per_seq", "GFLOP/seq", ".2f"), ("gflop_per_s", "GFLOP/s", ".1f"),
                               ("flop_ratio_ntv2_over_model", "FLOP ratio", ".1f"),
                               ("peak_rss_mb", "peak RSS MB", ".0f")])
    print("\nhad-1m at batch 1 (memory vs length):")
    mem_table = print_table(mem_rows, [("nt", "nt", ""), ("peak_rss_mb", "peak RSS MB", ".0f"),
                                       ("seq_per_s", "seq/s", ".2f")])
    write_json("inference", {"environment": environment(), "rows": rows, "memory": mem_rows,
                             "table": table, "memory_table": mem_table}, args.out)


if __name__ == "__main__":
    main()
