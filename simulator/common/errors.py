"""User-facing data errors: one line that says what is wrong, where, and what to do."""

from __future__ import annotations


class FxRiskError(Exception):
    """Base of the project's user-facing errors: ``str(err)`` is one line a script prints alone."""


class DataError(FxRiskError, ValueError):
    """A problem with market data or a data file, reported as a single line.

    Why a dedicated type: scripts catch it and print ``str(err)`` alone, so every
    message must stand on its own — the file (or source), the line/row, the field,
    the problem and a hint on how to fix it.
    """

    def __init__(
        self,
        problem: str,
        *,
        source: str,
        line: int | None = None,
        row: int | None = None,
        timestamp: object | None = None,
        field: str | None = None,
        hint: str = "",
    ) -> None:
        self.problem = problem
        self.source = source
        self.line = line
        self.row = row
        self.timestamp = timestamp
        self.field = field
        self.hint = hint
        super().__init__(self._render())

    def __reduce__(self):  # picklable: worker processes send it back to the parent
        return (_rebuild_data_error, (self.problem, {"source": self.source, "line": self.line, "row": self.row,
                                                     "timestamp": self.timestamp, "field": self.field,
                                                     "hint": self.hint}))

    def _render(self) -> str:
        where = [self.source]
        if self.line is not None:
            where.append(f"line {self.line}")
        elif self.row is not None:
            where.append(f"row {self.row}")
        if self.timestamp is not None:
            where.append(f"at {self.timestamp}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        text = ", ".join(where) + f": {self.problem}"
        if self.hint:
            text += f" — {self.hint}"
        return " ".join(text.split())  # always exactly one line


def _rebuild_data_error(problem: str, where: dict) -> DataError:
    return DataError(problem, **where)


class ConfigError(FxRiskError, ValueError):
    """An invalid configuration value or file, reported as a single line.

    Structured where known — ``source`` (file), ``key`` (dotted path), ``problem``, ``hint`` — so
    that callers (the scenario loader) re-express it without parsing the message text.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None,
                 problem: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.source, self.key, self.problem, self.hint = source, key, problem, hint

    def __reduce__(self):  # picklable with its fields (worker processes)
        return (_rebuild_config_error, (str(self), self.source, self.key, self.problem, self.hint))


def _rebuild_config_error(message: str, source: str | None, key: str | None, problem: str | None,
                          hint: str | None) -> ConfigError:
    return ConfigError(message, source=source, key=key, problem=problem, hint=hint)


class ModelFileError(FxRiskError, ValueError):
    """A model or checkpoint file that is not a run's saved weights, or whose weights do not fit its config."""


class InvalidCallError(FxRiskError, RuntimeError):
    """A call the object cannot serve in its current state (``step`` before ``reset``, or after the episode
    ended); the environments raise a subclass that is also gymnasium's ``ResetNeeded``."""
