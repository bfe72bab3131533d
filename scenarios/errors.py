"""Scenario errors: one line, ``<file>: <field path>: what is wrong — what to do``.

Why a dedicated type: the stress-test script catches it and prints ``str(err)`` alone, so
every message names the file and the field a user has to open and fix.
"""

from __future__ import annotations

from typing import Any, TypeVar

from simulator.common.configuration import from_mapping
from simulator.common.errors import ConfigError, FxRiskError

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


def build(cls: type[T], data: Any, *, file: str, path: str) -> T:
    """Build the frozen dataclass ``cls`` strictly (:func:`from_mapping`), errors as :class:`ScenarioError`."""
    try:
        return from_mapping(cls, data, source=str(file), path=path)
    except ConfigError as err:
        raise _translate(err, str(file), path) from None


def _translate(err: ConfigError, file: str, path: str) -> ScenarioError:
    """The loader's error as a scenario error, from its fields (never from its message text)."""
    context = err.__context__
    if isinstance(context, Invalid):
        return ScenarioError(file, join(path, context.field), context.problem, context.hint)
    if err.key is not None and err.problem is not None:
        key = path if err.key == "<root>" else err.key
        return ScenarioError(file, key, err.problem, err.hint or "fix the value")
    return ScenarioError(file, path, err.problem or str(err), "fix the file")
