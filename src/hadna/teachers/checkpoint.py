"""Finding a teacher checkpoint: a local directory or a Hub id (in the local cache unless downloads are
allowed), its config.json read as plain JSON before any model code runs, and its vocabulary and weights.
"""

from __future__ import annotations

import json
from pathlib import Path

from hadna.errors import CheckpointError, MissingFileError
from hadna.teachers.ntv2 import WEIGHT_FILES
from hadna.utils.io import read_config_json

NTV2_REPO = "InstaDeepAI/nucleotide-transformer-v2-500m-multi-species"
DOWNLOAD_HINT = (
    f"to obtain NTv2, run `hf download {NTV2_REPO} --local-dir <dir>` (older huggingface_hub: "
    f"`huggingface-cli download ...`) on a machine with internet access and pass <dir> as the teacher"
)

def is_hub_id(name: str) -> bool:
    """'org/name' or 'name' (the forms the Hub accepts), not an absolute or explicitly relative path."""
    if name.startswith(("/", ".", "~")) or "\\" in name:
        return False
    parts = name.split("/")
    return len(parts) <= 2 and all(parts)


def resolve_config(name_or_path: str, local_files_only: bool) -> tuple[dict, str, Path]:
    """Read the checkpoint's config.json as plain JSON (before any model code runs).

    Returns (config, name for messages, path of config.json; for a Hub id, inside the local cache).
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise MissingFileError(f"teacher checkpoint {path} is a file; expected a directory with config.json")
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise MissingFileError(f"teacher checkpoint directory {path} has no config.json; {DOWNLOAD_HINT}")
        where = str(path)
    elif not is_hub_id(name_or_path):
        raise MissingFileError(f"teacher checkpoint directory {name_or_path} does not exist; {DOWNLOAD_HINT}")
    else:
        from transformers.utils import cached_file

        try:
            resolved = cached_file(name_or_path, "config.json", local_files_only=local_files_only)
        except (OSError, ValueError) as exc:
            cache_note = " (not in the local Hugging Face cache, and downloads are off)" if local_files_only else ""
            raise MissingFileError(
                f"teacher checkpoint {name_or_path!r} not found: no such directory{cache_note}; {DOWNLOAD_HINT}"
                f" [{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}]"
            ) from exc
        if resolved is None:
            raise MissingFileError(f"teacher checkpoint {name_or_path!r} has no config.json; {DOWNLOAD_HINT}")
        cfg_file, where = Path(resolved), name_or_path
    return read_config_json(cfg_file, "teacher config"), where, Path(cfg_file)


def fetch_hub_files(name: str, local_files_only: bool) -> None:
    """Make sure vocab.txt and the weights of Hub checkpoint ``name`` sit next to its cached config.json.

    Weights: the first of :data:`hadna.teachers.ntv2.WEIGHT_FILES` the repo has (so a repo with
    both safetensors and a .bin only fetches the safetensors), with all shards of an index.
    """
    from transformers.utils import cached_file

    def fetch(filename: str) -> str | None:
        return cached_file(
            name, filename, local_files_only=local_files_only,
            _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False,
        )

    fetch("vocab.txt")
    for filename in WEIGHT_FILES:
        resolved = fetch(filename)
        if resolved is None:
            continue
        if filename.endswith(".index.json"):
            try:
                shards = set(json.loads(Path(resolved).read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise CheckpointError(f"weights index {resolved} of teacher {name} is not valid: {exc}") from exc
            for shard in sorted(shards):
                fetch(shard)
        return
