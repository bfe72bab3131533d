"""Frozen keyword-only dataclass configs built from YAML mappings, strictly.

Why: configs travel through YAML files written by users; an unknown or misspelt key
must be an error that names the file and the key, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from simulator.common.errors import ConfigError

T = TypeVar("T")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    hash(key)
                except TypeError:
                    continue  # SafeLoader's own error follows
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"duplicate key {key!r} (first on line {seen[key] + 1}) — give each key once",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` that also refuses duplicate keys (:class:`UniqueKeyLoader`); every YAML read uses it."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass: safe


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file with :func:`safe_load`; a syntax error, a duplicate key or a Python tag becomes
    one clear line naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{path}: cannot read file ({reason}) — check the path") from None
    try:
        return safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        hint = "" if "—" in problem else " — fix the YAML syntax"
        raise ConfigError(f"{path}{where}: {problem}{hint}") from None


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
        raise _keyed(source, path or '<root>', f"expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}.{unknown[0]}" if path else str(unknown[0])
        hint = f"valid keys: {', '.join(sorted(fields))}"
        raise ConfigError(f"{source}: unknown key '{where}' — {hint}", source=source, key=where,
                          problem="unknown key", hint=hint)
    required = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]
    if required:
        where = f"{path}.{required[0]}" if path else required[0]
        raise ConfigError(f"{source}: key '{where}': missing — add '{required[0]}' to the mapping", source=source,
                          key=where, problem="missing", hint=f"add '{required[0]}' to the mapping")
    kwargs = {}
    for name, value in data.items():
        key = f"{path}.{name}" if path else name
        allow_inf = bool(fields[name].metadata.get("allow_inf"))
        kwargs[name] = _convert(hints[name], value, source=source, path=key, allow_inf=allow_inf)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: {exc}", source=source, key=path or None, problem=str(exc)) from None


def _keyed(source: str, key: str, problem: str) -> ConfigError:
    """The one-line error for a bad value at ``key`` (structured: the scenario loader reads the fields)."""
    return ConfigError(f"{source}: key '{key}': {problem}", source=source, key=key, problem=problem,
                       hint="fix the value")


def _convert(tp: Any, value: Any, *, source: str, path: str, allow_inf: bool = False) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, source=source, path=path, allow_inf=allow_inf)
        return value
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, source=source, path=path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _keyed(source, path, f"expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, source=source, path=f"{path}[{i}]") for i, v in enumerate(value))
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise _keyed(source, path, f"expected a mapping, got {type(value).__name__}")
        if len(args) == 2:
            return {_convert(args[0], k, source=source, path=f"{path} (a key)"):
                    _convert(args[1], v, source=source, path=f"{path}.{k}") for k, v in value.items()}
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _keyed(source, path, f"expected a number, got {value!r}")
        number = float(value)
        if math.isnan(number) or (math.isinf(number) and not allow_inf):
            raise _keyed(source, path, f"expected a finite number, got {value!r}")
        return number
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _keyed(source, path, f"expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _keyed(source, path, f"expected true or false, got {value!r}")
        return value
    if tp is str:
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()  # YAML reads 2013-12-31 as a date
        if not isinstance(value, str):
            raise _keyed(source, path, f"expected text, got {value!r}")
        return value
    return value


def check_finite(obj: Any, prefix: str = "") -> None:
    """``ValueError`` naming the first float field of dataclass ``obj`` that is NaN or infinite (fields
    with ``metadata={"allow_inf": True}`` may be +inf); for ``__post_init__`` of configs built in code."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, float) and not isinstance(value, bool):
            if math.isnan(value) or (math.isinf(value) and not (f.metadata.get("allow_inf") and value > 0)):
                raise ValueError(f"{prefix}{f.name} must be a finite number, got {value}")


def to_mapping(obj: Any) -> Any:
    """Plain-data (YAML-safe) view of a config dataclass, for run folders."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_mapping(v) for k, v in obj.items()}
    return obj
