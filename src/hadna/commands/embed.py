"""``hadna embed``: pooled embeddings of every sequence in a file, streamed to .npy or .parquet."""

from __future__ import annotations

import argparse

from ..utils.batching import CPU_BATCH_NT

HELP = "write pooled embeddings of the sequences in a FASTA/CSV/TSV/parquet file to .npy or .parquet"
DESCRIPTION = """\
Streams the input in chunks (bounded memory), validates every sequence (errors name the record or
line), and writes one pooled embedding per sequence in input order: emb.npy ([N, D] float32, with
emb.npy.ids.tsv listing index, id and length) or emb.parquet (columns id, length, embedding).
Tables need a 'sequence' or 'seq' column; an 'id' or 'name' column gives the ids.

example:
  hadna embed --model runs/pretrain/final --input seqs.fa --out emb.npy
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from hadna.commands.options import add_model_arguments

    add_model_arguments(p)
    p.add_argument("--input", required=True, metavar="FILE", help="FASTA (.fa/.fasta/.fna[.gz]), .csv/.tsv[.gz] or .parquet")
    p.add_argument("--out", required=True, metavar="FILE", help="output .npy or .parquet")
    p.add_argument("--batch-size", type=int, default=128,
                   help=f"most sequences per forward pass (default 128; on a CPU also at most {CPU_BATCH_NT:,} nt)")
    p.add_argument("--chunk-size", type=int, default=4096, help="records read per chunk (default 4096)")
    p.add_argument("--max-length", type=int, default=None, help="truncate longer sequences to their first N nt")


def run(args: argparse.Namespace) -> int:
    from hadna.errors import ConfigError
    from hadna.commands.options import apply_threads
    from hadna.eval.embed_io import embed_file
    from hadna.eval.models import load_eval_model, parse_model_spec

    if args.max_length is not None and args.max_length < 1:
        raise ConfigError(f"--max-length must be >= 1, got {args.max_length}")
    spec = parse_model_spec(args.model, pooling=args.pooling, trust_remote_code=args.trust_remote_code,
                            allow_download=args.allow_download)
    apply_threads(args)
    model = load_eval_model(spec, 2, seed=0, device=args.device)  # the head is never used
    summary = embed_file(model, args.input, args.out, batch_size=args.batch_size, chunk_size=args.chunk_size,
                         max_length=args.max_length)
    rate = f"{summary['nt_per_s']:,.0f} nt/s" if summary["nt_per_s"] else "-"
    print(f"wrote {summary['n']:,} x {summary['dim']} embeddings to {summary['output']} "
          f"({summary['seconds']:.1f} s, {rate}"
          + (f"; {summary['truncated']:,} sequences truncated" if summary["truncated"] else "") + ")"
          + (f"; ids: {summary['ids']}" if "ids" in summary else ""))
    return 0
