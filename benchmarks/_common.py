"""Shared helpers for the benchmarks: timing, peak memory in a fresh process, tables, JSON output.

Benchmarks are not tests: they measure, print a side-by-side table and write JSON under
``benchmarks/results/`` (or ``--out``). Run them on a quiet machine; numbers from a loaded machine
are not comparable.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def time_fn(fn: Callable[[], Any], warmup: int = 1, repeat: int = 3, min_time: float = 0.0) -> dict[str, float]:
    """Run ``fn`` ``warmup`` times, then at least ``repeat`` times (and ``min_time`` seconds); seconds per call."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "runs": len(times)}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call by torch's ``FlopCounterMode``, with attention's CPU kernels counted.

    torch registers FLOP formulas for the CUDA attention kernels only: on the CPU,
    ``scaled_dot_product_attention`` dispatches to ``_scaled_dot_product_flash_attention_for_cpu`` (and
    its backward), which the stock counter scores as 0 FLOPs. They get the same formulas as the CUDA
    flash kernels (QK^T and PV forward; five batched matmuls backward; non-causal)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

    def forward(q, k, v, *args, out_shape=None, **kwargs) -> int:  # arguments arrive as shapes
        return sdpa_flop_count(q, k, v)

    def backward(grad_out, q, k, v, *args, out_shape=None, **kwargs) -> int:
        return sdpa_backward_flop_count(grad_out, q, k, v)

    aten = torch.ops.aten
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: forward,
               aten._scaled_dot_product_flash_attention_for_cpu_backward: backward}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return int(counter.get_total_flops())


def environment() -> dict[str, Any]:
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        load = os.getloadavg()[0]
        info["loadavg_1min_at_start"] = round(load, 2)
    except OSError:
        pass
    return info


def run_isolated(module: str, func: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Call ``module.func(**kwargs)`` in a fresh Python process and return its JSON result plus peak RSS.

    A fresh process makes the peak-memory figure (``ru_maxrss``) belong to this one measurement only.
    """
    code = (
        "import json, resource, sys, importlib;"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r});"
        f"m = importlib.import_module({module!r});"
        f"r = getattr(m, {func!r})(**json.loads(sys.argv[1]));"
        "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024;"
        "print('__RESULT__' + json.dumps(r))"
    )
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("__RESULT__")][-1]
    return json.loads(line[len("__RESULT__"):])


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """columns: (key, header, format spec). Returns and prints a Markdown table."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = []
    for r in rows:
        cells = []
        for key, _, fmt in columns:
            v = r.get(key)
            cells.append("-" if v is None else (format(v, fmt) if fmt else str(v)))
        body.append("| " + " | ".join(cells) + " |")
    text = "\n".join([head, sep, *body])
    print(text)
    return text


def write_json(name: str, payload: dict[str, Any], out: str | None = None) -> Path:
    path = Path(out) if out else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {path}")
    return path
