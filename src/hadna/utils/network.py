"""The process's permission to reach the Hugging Face Hub.

hadna never touches the network unless the user allows it (``--allow-download``, ``--from-hub``, or a
teacher config with ``local_files_only: false``). Passing ``local_files_only=True`` to each
``from_pretrained`` call is not enough: huggingface_hub still makes HTTP requests of its own (for
example its user-agent and version checks). :func:`set_hub_offline` therefore switches the Hub
libraries' offline mode for the whole process, which makes every Hub request fail before a socket
is opened.
"""

from __future__ import annotations

import os
import sys

_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
#: the environment's own setting, restored when downloads are allowed (a user's HF_HUB_OFFLINE=1 still wins).
_ORIGINAL = {name: os.environ.get(name) for name in _ENV}


def set_hub_offline(offline: bool) -> None:
    """Offline mode on (no request reaches the network), or back to the environment's own setting.

    Sets the environment variables the Hub libraries read at import, and the already imported
    ``huggingface_hub.constants.HF_HUB_OFFLINE`` (read at call time by huggingface_hub and transformers).
    """
    for name in _ENV:
        value = "1" if offline else _ORIGINAL[name]
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    effective = offline or any((_ORIGINAL[n] or "").upper() in ("1", "ON", "YES", "TRUE") for n in _ENV[:2])
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = effective
    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None and hasattr(datasets_config, "HF_HUB_OFFLINE"):
        datasets_config.HF_HUB_OFFLINE = effective or (_ORIGINAL["HF_DATASETS_OFFLINE"] or "").upper() in ("1", "ON", "YES", "TRUE")


def downloads_allowed(args: object) -> bool:
    """Whether the command line allows network access (``--allow-download`` or ``--from-hub``)."""
    return bool(getattr(args, "allow_download", False) or getattr(args, "from_hub", False))
