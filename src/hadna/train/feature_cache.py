"""Precomputed teacher features of the first N training samples (``hadna cache-teacher``).

A teacher forward pass per step can cost far more than the 1M-parameter student's step. Since a
training sample (window, strand, mask) is a pure function of its index, the teacher's features of
its masked input can be computed once and reused: training with ``teacher.cache`` reads them and
cycles over the N cached samples (sample ``i`` -> ``i mod N``, so windows and masks cycle too).

Layout of the cache directory::

    index.json   written LAST: format, fingerprint, dtype, hidden size, per-sample token counts
    train.npy    [sum of token counts, D] features of training samples 0..N-1, rows of sample i at
                 offsets[i] : offsets[i] + counts[i] (<cls> first), fp16 (or fp32), memory-mapped
    val.npy      the same for the fixed validation windows

While building, the arrays are ``*.npy.partial`` and ``progress.json`` records how many samples are
done (updated after each chunk is flushed); an interrupted build resumes from there when its
fingerprint matches and is rebuilt otherwise. A directory without ``index.json`` is never used.

The fingerprint records everything that determines the samples (data config, genome file sizes,
seeds, mask ratio, window length) and the teacher (path, layer); training refuses a cache whose
fingerprint differs from its own config's.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ConfigError, DataError, MissingFileError
from ..utils.io import SHARD_BYTES, atomic_write_json, shard_digests, verify_shard_digests
from ..utils.logging import get_logger, progress
from .checkpoint import describe_incompatibility
from .samples import MaskPlan, plan_for, train_samples, token_counts, val_samples

if TYPE_CHECKING:
    from ..data import GenomeWindows
    from ..teachers import Teacher
    from .config import PretrainConfig

log = get_logger("train.cache")

FORMAT = "hadna-teacher-features"
FORMAT_VERSION = 2  # 2: per-shard sha256 of train.npy / val.npy in index.json, verified on open
_DTYPES = {"float16": np.float16, "float32": np.float32}


def cache_fingerprint(cfg: "PretrainConfig", plan: "MaskPlan | None" = None) -> dict[str, Any]:
    """What determines the cached samples and their features (JSON-able); ``plan``: the run's masking plan
    (:func:`hadna.train.pretrain.mask_plan`; its tokens, group size and teacher input)."""
    data = asdict(cfg.data)
    data.pop("cache_dir", None)  # where the genome store is cached does not change its content

    def file_id(p: str | None) -> dict | None:
        if p is None:
            return None
        path = Path(p)
        return {"name": path.name, "size": path.stat().st_size if path.is_file() else None}

    data["fasta"] = [file_id(p) for p in cfg.data.fasta]
    for key in ("bed", "val_bed"):
        data[key] = file_id(data.get(key))
    fp = {"format_version": FORMAT_VERSION, "data": data, "train_seed": cfg.train.seed,
          "mask_ratio": cfg.masking.mask_ratio, "window_length": cfg.data.window_length,
          "teacher": {"path": cfg.teacher.path, "layer": cfg.teacher.layer}}
    # Multi-layer targets, and teachers other than NT 6-mers read through their mask token, add what decides
    # their features and masks (absent for the original setting, so its caches stay valid).
    if cfg.objective.distill_layers:
        fp["teacher"]["layers"] = cfg.teacher_layers
    if plan is not None and plan.describe() != MaskPlan(cfg.masking.mask_ratio).describe():
        fp["masking"] = plan.describe()
    return fp


def fingerprint_hash(fp: dict) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()


class FeatureCache:
    """Read-only view of a complete cache directory."""

    def __init__(self, path: Path, index: dict, train: np.ndarray, val: np.ndarray):
        self.path, self.index = path, index
        self.hidden_size = int(index["hidden_size"])
        self.num_samples = int(index["num_samples"])
        self._arrays = {"train": train, "val": val}
        self._counts = {s: np.asarray(index[s]["token_counts"], dtype=np.int64) for s in ("train", "val")}
        self._offsets = {s: np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64) if len(c) else c
                         for s, c in self._counts.items()}

    @classmethod
    def open(cls, path: str | os.PathLike, expected: dict | None = None) -> "FeatureCache":
        path = Path(path)
        index_file = path / "index.json"
        if not index_file.is_file():
            if (path / "progress.json").is_file():
                done = _read_json(path / "progress.json").get("train_done", "?")
                raise DataError(f"teacher feature cache {path} is incomplete ({done} samples written); re-run "
                                "`hadna cache-teacher` with the same arguments to finish it")
            raise MissingFileError(f"teacher feature cache {path} not found (no index.json); build it with "
                                   "`hadna cache-teacher --config <config> --num-samples N --out <dir>`")
        index = _read_json(index_file)
        if index.get("format") == FORMAT and index.get("version") == 1:
            raise DataError(f"teacher feature cache {path} was built by an older hadna without checksums; rebuild it "
                            "with `hadna cache-teacher` (same arguments)")
        if index.get("format") != FORMAT or index.get("version") != FORMAT_VERSION:
            raise DataError(f"{index_file}: not a {FORMAT} v{FORMAT_VERSION} index")
        if expected is not None and index["fingerprint_sha256"] != fingerprint_hash(expected):
            diffs = describe_incompatibility(index["fingerprint"], json.loads(json.dumps(expected)))
            raise ConfigError(f"teacher feature cache {path} was built for different samples or another teacher "
                              f"({'; '.join(diffs) or 'fingerprint differs'}); rebuild it with `hadna cache-teacher` "
                              "for this config or point teacher.cache elsewhere")
        arrays = {}
        for split in ("train", "val"):
            file = path / index[split]["file"]
            try:
                arr = np.load(file, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataError(f"{file}: unreadable teacher feature array ({exc})") from None
            rows = int(np.sum(index[split]["token_counts"]))
            if arr.shape != (rows, index["hidden_size"]) or arr.dtype != np.dtype(index["dtype"]):
                raise DataError(f"{file}: shape {arr.shape} {arr.dtype} does not match its index "
                                f"({rows}, {index['hidden_size']}) {index['dtype']}")
            verify_shard_digests(file, index[split]["sha256"], "teacher feature cache", index[split]["shard_bytes"])
            arrays[split] = arr
        return cls(path, index, arrays["train"], arrays["val"])

    def features(self, split: str, indices: np.ndarray, num_tokens: int, counts: torch.Tensor | None = None) -> torch.Tensor:
        """float32 ``[B, num_tokens, D]`` features of samples ``indices`` (zeros past each sample's tokens).

        counts: the batch's own token counts per row, checked against the cache (a mismatch means the
        samples are not the ones that were cached).
        """
        arr, cnt, off = self._arrays[split], self._counts[split], self._offsets[split]
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(cnt)):
            raise DataError(f"{self.path}: {split} sample {int(indices.max())} is not cached ({len(cnt)} are)")
        if counts is not None and not np.array_equal(cnt[indices], counts.cpu().numpy()):
            raise DataError(f"{self.path}: token counts of the cached {split} samples differ from the batch's; "
                            "the cache does not belong to these samples (rebuild it)")
        out = np.zeros((len(indices), num_tokens, self.hidden_size), dtype=np.float32)
        for row, i in enumerate(indices.tolist()):
            n = int(cnt[i])
            out[row, :n] = arr[off[i]:off[i] + n]
        return torch.from_numpy(out)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None


def build_feature_cache(cfg: "PretrainConfig", out: str | os.PathLike, num_samples: int, teacher: "Teacher",
                        windows: "GenomeWindows", dtype: str = "float16", batch_size: int = 32,
                        max_chunks: int | None = None) -> Path:
    """Compute and store the teacher features of training samples ``0..num_samples-1`` and of the
    validation windows. Resumes an interrupted build with the same fingerprint; ``max_chunks`` stops
    after that many chunks (to test resumption). Returns the cache directory."""
    if dtype not in _DTYPES:
        raise ConfigError(f"cache dtype must be float16 or float32, got {dtype!r}")
    if num_samples < 1:
        raise ConfigError(f"--num-samples must be >= 1, got {num_samples}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mplan = plan_for(cfg.masking, teacher.span_tokenizer, teacher.causal)
    fp = cache_fingerprint(cfg, mplan)
    fp_hash = fingerprint_hash(fp)
    D = teacher.feature_size  # len(layers) x hidden size
    plan = {"fingerprint_sha256": fp_hash, "dtype": dtype, "num_samples": num_samples, "hidden_size": D}
    index_file = out / "index.json"
    if index_file.is_file():
        index = _read_json(index_file)
        if {k: index.get(k) for k in plan} == plan and index.get("version") == FORMAT_VERSION:
            log.info("teacher feature cache %s is complete and up to date", out)
            return out
        log.info("teacher feature cache %s was built with other settings; rebuilding it", out)
        index_file.unlink()  # from here on the directory is never mistaken for a complete cache
    val_ids = windows.val_windows()
    counts = {"train": _all_counts(windows, num_samples, None, mplan.spans),
              "val": _all_counts(windows, val_ids.shape[0], val_ids, mplan.spans)}
    progress_file = out / "progress.json"
    prog = _read_json(progress_file) if progress_file.is_file() else {}
    arrays = {}
    resume = {k: prog.get(k) for k in plan} == plan
    for split in ("train", "val"):
        partial = out / f"{split}.npy.partial"
        shape = (int(counts[split].sum()), D)
        arr = None
        if resume and partial.is_file():
            try:
                arr = np.lib.format.open_memmap(partial, mode="r+")
                if arr.shape != shape or arr.dtype != _DTYPES[dtype]:
                    arr = None
            except (OSError, ValueError):
                arr = None
        if arr is None:
            resume = False
            arr = np.lib.format.open_memmap(partial, mode="w+", dtype=_DTYPES[dtype], shape=shape)
        arrays[split] = arr
    done = {s: int(prog.get(f"{s}_done", 0)) if resume else 0 for s in ("train", "val")}
    if resume and any(done.values()):
        log.info("resuming teacher feature cache %s: %d/%d training and %d/%d validation samples done", out,
                 done["train"], num_samples, done["val"], len(counts["val"]))
    chunks = 0
    for split, total in (("train", num_samples), ("val", len(counts["val"]))):
        offsets = np.concatenate([[0], np.cumsum(counts[split])]).astype(np.int64)
        bar = progress(total=total, initial=done[split], desc=f"teacher features ({split})", unit="seq")
        try:
            for start in range(done[split], total, batch_size):
                if max_chunks is not None and chunks >= max_chunks:
                    return out
                idx = np.arange(start, min(start + batch_size, total), dtype=np.int64)
                if split == "train":
                    mb = train_samples(windows, idx, cfg.train.seed, mplan)
                else:
                    mb = val_samples(windows, val_ids, idx, cfg.train.seed, mplan)
                feats = teacher.features(mb.teacher_input_ids, mb.teacher_attention_mask).cpu().numpy()
                for row, i in enumerate(idx.tolist()):
                    n = int(counts[split][i])
                    arrays[split][offsets[i]:offsets[i] + n] = feats[row, :n]
                arrays[split].flush()
                done[split] = int(idx[-1]) + 1
                atomic_write_json(progress_file, {**plan, "train_done": done["train"], "val_done": done["val"]})
                bar.update(len(idx))
                chunks += 1
        finally:
            bar.close()
    for split in ("train", "val"):
        arrays[split].flush()
        del arrays[split]
        partial = out / f"{split}.npy.partial"
        with open(partial, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, out / f"{split}.npy")
    index = {"format": FORMAT, "version": FORMAT_VERSION, **plan, "fingerprint": fp,
             "teacher": {"source": teacher.source, "num_layers": teacher.num_layers, "layer_index": teacher.layer,
                         "layer_indices": teacher.layers, "tokens": teacher.family},
             "num_val": int(len(counts["val"])),
             **{s: {"file": f"{s}.npy", "token_counts": counts[s].tolist(), "shard_bytes": SHARD_BYTES,
                    "sha256": shard_digests(out / f"{s}.npy")} for s in ("train", "val")}}
    atomic_write_json(index_file, index, indent=None)
    progress_file.unlink(missing_ok=True)
    log.info("wrote teacher feature cache %s: %d training + %d validation samples, %s x %d", out, num_samples,
             index["num_val"], dtype, D)
    return out


def _all_counts(windows: "GenomeWindows", n: int, val_ids: torch.Tensor | None, spans=None,
                chunk: int = 4096) -> np.ndarray:
    parts = [token_counts(windows, np.arange(s, min(s + chunk, n), dtype=np.int64), val_ids, spans)
             for s in range(0, n, chunk)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
