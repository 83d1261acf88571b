"""Atomic, verifiable training checkpoints without pickle.

Layout of ``<output_dir>/checkpoints/``::

    step-0000400/
        model.safetensors        the trained module's state dict (student + training heads)
        optimizer.safetensors    optimizer state tensors, flattened as "state.<param index>.<key>"
        optimizer.json           param groups and non-tensor state
        scheduler.json           learning-rate schedule state
        rng.safetensors          torch RNG state(s) of every rank ("rank<r>.cpu", "rank<r>.cuda")
        state.json               step, data position, compatibility record, sha256 of every file above
    latest                       text file naming the newest complete checkpoint directory

A checkpoint is written into ``.tmp-step-...`` next to the others, every file fsynced, then renamed
into place; ``latest`` is replaced atomically afterwards. ``state.json`` is written last inside the
directory and lists the sha256 of every other file, so a reader can tell a complete checkpoint
from a truncated or corrupted one. Nothing is ever pickled: tensors go to safetensors, everything
else to JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError, ConfigError
from ..utils.io import atomic_write_text
from ..utils.logging import get_logger

log = get_logger("train.checkpoint")

FORMAT = "hadna-train-checkpoint"
FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d{7,})$")


def step_dir_name(step: int) -> str:
    return f"step-{step:07d}"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- optimizer state <-> safetensors
def flatten_optimizer_state(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """``optimizer.state_dict()`` -> (tensors for safetensors, JSON-able metadata)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in state_dict["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state_dict["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for idx, entry in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(entry)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def module_state_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A state dict safe for safetensors: contiguous CPU copies (shared storage is not allowed there)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------- one loaded checkpoint
@dataclass
class LoadedCheckpoint:
    path: Path
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["step"])

    def tensors(self, name: str, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        path = self.path / f"{name}.safetensors"
        try:
            return load_file(str(path), device=str(device))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from None

    def json(self, name: str) -> Any:
        path = self.path / f"{name}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: unreadable JSON ({exc})") from None


class CheckpointManager:
    """Writes, lists, verifies, prunes and finds checkpoints under ``root`` (``<output_dir>/checkpoints``)."""

    def __init__(self, root: str | os.PathLike, keep_last: int = 3):
        self.root = Path(root)
        self.keep_last = max(int(keep_last), 1)

    # ------------------------------------------------------------------ listing
    def list(self) -> list[tuple[int, Path]]:
        """(step, directory) of every complete-looking checkpoint directory, oldest first."""
        if not self.root.is_dir():
            return []
        out = []
        for p in self.root.iterdir():
            m = _STEP_DIR.match(p.name)
            if m and p.is_dir():
                out.append((int(m.group(1)), p))
        return sorted(out)

    def refuse_existing(self) -> None:
        """ConfigError if ``root`` already holds checkpoints: a fresh run must not write over another run."""
        existing = self.list()
        if existing:
            raise ConfigError(f"{self.root} already holds checkpoints (newest: {existing[-1][1].name}); "
                              "pass --resume to continue that run, or choose another --output-dir")

    def latest_pointer(self) -> Path | None:
        ptr = self.root / "latest"
        try:
            name = ptr.read_text().strip()
        except OSError:
            return None
        return self.root / name if _STEP_DIR.match(name) else None

    def remove_stale_temporaries(self) -> None:
        """Remove ``.tmp-*`` directories left by a run killed while saving."""
        if self.root.is_dir():
            for p in self.root.iterdir():
                if p.name.startswith((".tmp-", ".trash-")) and p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)

    # ------------------------------------------------------------------ writing
    def save(self, step: int, tensors: dict[str, dict[str, torch.Tensor]], jsons: dict[str, Any],
             state: dict[str, Any]) -> Path:
        """Write checkpoint ``step`` atomically; returns its directory.

        tensors: file stem -> tensors (one safetensors file each); jsons: file stem -> JSON-able object;
        state: extra entries of state.json (must include nothing named ``files``).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / step_dir_name(step)
        tmp = self.root / f".tmp-{final.name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        files: dict[str, str] = {}
        try:
            for stem, tdict in tensors.items():
                path = tmp / f"{stem}.safetensors"
                save_file(tdict, str(path))
                _fsync_file(path)
                files[path.name] = sha256_file(path)
            for stem, obj in jsons.items():
                path = tmp / f"{stem}.json"
                path.write_text(json.dumps(obj, indent=1) + "\n")
                _fsync_file(path)
                files[path.name] = sha256_file(path)
            record = {"format": FORMAT, "version": FORMAT_VERSION, "step": int(step), **state,
                      "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "files": files}
            (tmp / "state.json").write_text(json.dumps(record, indent=1) + "\n")
            _fsync_file(tmp / "state.json")
            _fsync_dir(tmp)
            if final.exists():  # e.g. a corrupt step-N left behind, reached again after falling back
                trash = self.root / f".trash-{final.name}-{os.getpid()}"
                os.replace(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, final)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        atomic_write_text(self.root / "latest", final.name + "\n")
        self.prune(keep=final)
        return final

    def prune(self, keep: Path | None = None) -> None:
        """Delete all but the newest ``keep_last`` checkpoints (never ``keep``)."""
        ckpts = self.list()
        for _, path in ckpts[:-self.keep_last]:
            if keep is None or path.resolve() != keep.resolve():
                shutil.rmtree(path, ignore_errors=True)

    # ------------------------------------------------------------------ reading
    def verify(self, path: Path) -> LoadedCheckpoint:
        """Check that ``path`` is complete and intact (every file present with its recorded sha256,
        safetensors readable); raises CheckpointError naming the problem."""
        state_file = path / "state.json"
        if not state_file.is_file():
            raise CheckpointError(f"{path}: no state.json (incomplete checkpoint)")
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{state_file}: unreadable ({exc})") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("files"), dict):
            raise CheckpointError(f"{state_file}: not a {FORMAT} state file")
        if state.get("version") != FORMAT_VERSION:
            raise CheckpointError(f"{state_file}: checkpoint format version {state.get('version')}, this hadna "
                                  f"reads version {FORMAT_VERSION}")
        for name, digest in state["files"].items():
            f = path / name
            if not f.is_file():
                raise CheckpointError(f"{path}: file {name} is missing")
            actual = sha256_file(f)
            if actual != digest:
                raise CheckpointError(f"{f}: sha256 mismatch (file is truncated or corrupt: expected "
                                      f"{digest[:12]}..., got {actual[:12]}...)")
        ckpt = LoadedCheckpoint(path, state)
        for name in state["files"]:
            if name.endswith(".safetensors"):
                ckpt.tensors(name[:-len(".safetensors")])  # header and data must parse
        return ckpt

    def find_resumable(self) -> LoadedCheckpoint | None:
        """The newest intact checkpoint: ``latest`` first, then older ones, newest first.

        Unusable ones are logged and skipped. Returns None if there are no checkpoints at all;
        raises CheckpointError if there are some but none is intact.
        """
        candidates = [p for _, p in reversed(self.list())]
        ptr = self.latest_pointer()
        if ptr is not None and ptr in candidates:
            candidates.remove(ptr)
            candidates.insert(0, ptr)
        problems = []
        for path in candidates:
            try:
                ckpt = self.verify(path)
            except CheckpointError as exc:
                log.error("checkpoint %s is unusable: %s; falling back to the previous one", path.name, exc)
                problems.append(str(exc))
                continue
            return ckpt
        if problems:
            raise CheckpointError(f"no valid checkpoint in {self.root}: all {len(problems)} are damaged ("
                                  + "; ".join(problems) + ")")
        return None

    def load(self, path: Path) -> LoadedCheckpoint:
        """Read state.json of a checkpoint another rank already verified (no hashing)."""
        try:
            return LoadedCheckpoint(path, json.loads((path / "state.json").read_text()))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path}/state.json: unreadable ({exc})") from None


def describe_incompatibility(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Keys whose values differ between two compatibility records, as ``key: saved -> current``."""
    diffs = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += describe_incompatibility(a, b, name + ".")
        elif a != b:
            diffs.append(f"{name}: {a!r} -> {b!r}")
    return diffs
