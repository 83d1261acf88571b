"""Typed configs from YAML files plus ``key=value`` overrides.

Every recipe (pre-training, teacher training, benchmarking, the pipeline) describes its options as a
tree of dataclasses. :func:`load_config` reads a YAML file, applies dotted overrides such as
``train.max_steps=200`` and builds the dataclass tree, rejecting unknown keys and values of the wrong
type with a :class:`~hadna.errors.ConfigError` that names the key (and suggests close matches).
A string value that starts with ``~/`` (or is ``~``) is a path under the user's home directory and is
expanded, as a shell would (YAML files and quoted overrides are not shell-expanded).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError, MissingFileError

T = TypeVar("T")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file and, for syntax errors, the line."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:  # includes the line/column in its str()
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` -> (["a", "b"], 3). The value is parsed as YAML (so ``true``, ``1e-3``, ``[1, 2]`` work)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (for example train.max_steps=100)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted ``key=value`` overrides applied."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for k in keys[:-1]:
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {text!r}: {k!r} is not a section")
            node = nxt
        node[keys[-1]] = value
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert ``value`` against the annotation ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1:  # X | None: the one type's own message, which names what it expected
            raise ConfigError(errors[0] + (" (or null)" if type(None) in args else ""))
        raise ConfigError(f"{where}: {value!r} does not match {_type_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a section (mapping), got {value!r}")
        return from_dict(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads "1e-3" as a string
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return os.path.expanduser(value) if value == "~" or value.startswith("~/") else value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and mistyped values."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"unknown config key {path!r}{hint}; valid keys here: {', '.join(sorted(fields))}")
        kwargs[key] = _coerce(value, hints[key], path)
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def to_dict(obj: Any) -> Any:
    """Dataclass tree -> plain dict (for YAML/JSON dumps). Only fields that :func:`from_dict` accepts
    (``init`` fields) are written, so a dump reads back."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


#: file-name pattern (fnmatch) -> recipe, for configs without a ``recipe:`` key (the recipes themselves are
#: :data:`hadna.train.config.RECIPES`; these two live here so that any config reader can dispatch on them).
RECIPE_FILE_PATTERNS: dict[str, str] = {"benchmark_*.yaml": "benchmark"}


def config_recipe(path: str | Path, data: dict[str, Any]) -> str | None:
    """The recipe of a config file: its ``recipe:`` key, else the first matching file-name pattern, else None."""
    import fnmatch

    if isinstance(data.get("recipe"), str):
        return data["recipe"]
    name = Path(path).name
    return next((r for pat, r in RECIPE_FILE_PATTERNS.items() if fnmatch.fnmatch(name, pat)), None)


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Read ``path`` (optional), apply ``overrides`` and build ``cls``."""
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        file_alone_ok = False
        if overrides and path is not None:  # the error path only: is the file fine without the overrides?
            try:
                from_dict(cls, read_yaml(path))
                file_alone_ok = True
            except ConfigError:
                pass
        raise located(exc, path, overrides, file_alone_ok) from None


def located(exc: ConfigError, path: str | Path | None, overrides: list[str] | tuple[str, ...] = (),
            file_alone_ok: bool = False) -> ConfigError:
    """``exc`` prefixed with where the bad setting came from: the ``key=value`` override whose full dotted key
    the message names; when the config file alone builds (``file_alone_ok``), also one whose last key part it
    quotes (a nested protocol names only that), else the command line as a whole; otherwise the config file
    (naming the overrides applied to it)."""
    msg = str(exc)
    keys = {o: o.split("=", 1)[0].strip() for o in overrides}
    named = [o for o, k in keys.items() if re.search(rf"(?<![\w.]){re.escape(k)}(?![\w.])", msg)] or \
        [o for o, k in keys.items() if file_alone_ok and repr(k.rsplit(".", 1)[-1]) in msg]
    if named:
        return ConfigError(f"command-line override {named[0]}: {exc}")
    if file_alone_ok and overrides:
        return ConfigError(f"the command line ({' '.join(overrides)}): {exc}")
    if path is None:
        return exc
    return ConfigError(f"{path}{' with ' + ' '.join(overrides) if overrides else ''}: {exc}")
