"""Frozen keyword-only dataclass configs built from YAML mappings, strictly.

Why: configs travel through YAML files written by users; an unknown or misspelt key
must be an error that names the file and the key, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import datetime
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from simulator.errors import ConfigError

T = TypeVar("T")


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file with ``yaml.safe_load``; a syntax error becomes one clear line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file ({exc.strerror}) — check the path") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}{where}: {problem} — fix the YAML syntax") from None


def from_mapping(cls: type[T], data: Any, *, source: str, path: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types are errors.

    ``source`` names the file (or origin) and ``path`` the dotted key prefix, so that
    errors read ``file.yaml: key 'a.b': ...``.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: key '{path or '<root>'}': expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}.{unknown[0]}" if path else str(unknown[0])
        raise ConfigError(
            f"{source}: unknown key '{where}' — valid keys: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{path}.{name}" if path else name
        kwargs[name] = _convert(hints[name], value, source=source, path=key)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _convert(tp: Any, value: Any, *, source: str, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, source=source, path=path)
        return value
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, source=source, path=path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: key '{path}': expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, source=source, path=f"{path}[{i}]") for i, v in enumerate(value))
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{path}': expected a mapping, got {type(value).__name__}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: key '{path}': expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: key '{path}': expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: key '{path}': expected true or false, got {value!r}")
        return value
    if tp is str:
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()  # YAML reads 2013-12-31 as a date
        if not isinstance(value, str):
            raise ConfigError(f"{source}: key '{path}': expected text, got {value!r}")
        return value
    return value


def to_mapping(obj: Any) -> Any:
    """Plain-data (YAML-safe) view of a config dataclass, for run folders."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_mapping(v) for k, v in obj.items()}
    return obj
