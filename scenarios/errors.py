"""Scenario errors: one line, ``<file>: <field path>: what is wrong — what to do``.

Why a dedicated type: the stress-test script catches it and prints ``str(err)`` alone, so
every message names the file and the field a user has to open and fix.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from simulator.configuration import from_mapping
from simulator.errors import ConfigError, FxRiskError

T = TypeVar("T")


class ScenarioError(FxRiskError, ValueError):
    """An invalid scenario file or a scenario that cannot be applied to a market (one line)."""

    def __init__(self, file: str, field: str, problem: str, hint: str = "") -> None:
        self.file = str(file)
        self.field = field
        self.problem = problem
        self.hint = hint
        text = f"{self.file}: {field or '<root>'}: {problem}"
        if hint:
            text += f" — {hint}"
        super().__init__(" ".join(text.split()))  # always exactly one line

    def __reduce__(self):  # picklable: stress workers send it back to the parent process
        return (self.__class__, (self.file, self.field, self.problem, self.hint))


class Invalid(ValueError):
    """Raised by the ``__post_init__`` of scenario dataclasses; ``field`` is relative to the object."""

    def __init__(self, field: str, problem: str, hint: str = "") -> None:
        self.field = field
        self.problem = problem
        self.hint = hint
        super().__init__(f"{field}: {problem}" + (f" — {hint}" if hint else ""))


def join(path: str, name: str) -> str:
    """``transforms[1]`` + ``multiplier`` → ``transforms[1].multiplier``."""
    if not path:
        return name
    if not name:
        return path
    return f"{path}.{name}"


_UNKNOWN = re.compile(r"unknown key '(?P<key>[^']*)' — (?P<hint>.*)$")
_KEYED = re.compile(r"key '(?P<key>[^']*)': (?P<problem>.*)$")
_MISSING = re.compile(r"missing \d+ required keyword-only arguments?: (?P<names>.*)$")


def build(cls: type[T], data: Any, *, file: str, path: str) -> T:
    """Build the frozen dataclass ``cls`` strictly (:func:`from_mapping`), errors as :class:`ScenarioError`."""
    try:
        return from_mapping(cls, data, source=str(file), path=path)
    except ConfigError as err:
        raise _translate(err, str(file), path) from None


def _translate(err: ConfigError, file: str, path: str) -> ScenarioError:
    context = err.__context__
    if isinstance(context, Invalid):
        return ScenarioError(file, join(path, context.field), context.problem, context.hint)
    if isinstance(context, TypeError):
        found = _MISSING.search(str(context))
        if found:
            names = [n.strip(" '\"") for n in re.split(r",| and ", found.group("names")) if n.strip(" '\"")]
            return ScenarioError(file, join(path, names[0]), "missing", f"add '{names[0]}' to the mapping")
    text = str(err)
    prefix = f"{file}: "
    text = text[len(prefix):] if text.startswith(prefix) else text
    found = _UNKNOWN.search(text)
    if found:
        return ScenarioError(file, found.group("key"), "unknown key", found.group("hint"))
    found = _KEYED.search(text)
    if found:
        key = found.group("key")
        return ScenarioError(file, path if key == "<root>" else key, found.group("problem"), "fix the value")
    return ScenarioError(file, path, text, "fix the file")
