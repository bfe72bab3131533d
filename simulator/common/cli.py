"""What every script shares on its error path: one line on stderr, exit code 2.

Why one helper: each script wraps its ``main`` with :func:`guard`, so a user error anywhere below
it — our own (:class:`~simulator.common.errors.FxRiskError`), a file that cannot be read or written
(``OSError``), bad YAML, a bad value (``ValueError``) — prints ``error: <one line>`` and exits 2,
never a traceback. Argument errors are one line too (:class:`ArgumentParser`), and output folders
are created and probed for writability before any work (:func:`prepare_out`).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from simulator.common.errors import ConfigError, FxRiskError

F = TypeVar("F", bound=Callable[..., int])

#: Seeds go to numpy's legacy seeding (SB3, torch): 0 .. 2**32 - 1.
SEED_MAX = 2**32 - 1


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) as one space."""
    return " ".join(str(text).split())


def describe(exc: BaseException) -> str:
    """The one-line message of a user-facing error."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return one_line(f"{where}: {exc.strerror}" if where else exc.strerror)
    if isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.name}, line {mark.line + 1}: " if mark is not None else ""
        return one_line(where + (getattr(exc, "problem", None) or str(exc)))
    if isinstance(exc, KeyError):
        return one_line(f"missing key {exc.args[0]!r}" if exc.args else "missing key")
    return one_line(exc)


USER_ERRORS = (FxRiskError, OSError, yaml.YAMLError, ValueError)


def guard(main: F) -> F:
    """Wrap a script's ``main(argv) -> int``: user errors become ``error: <one line>`` on stderr, exit 2."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as exc:
            print(f"error: {describe(exc)}", file=sys.stderr)
            return 2

    return wrapper  # type: ignore[return-value]


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line (``prog: error: ...``), exit 2, no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type``: a decimal integer in ``[low, high]`` (argparse then names the option)."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def finite_float(low: float = -float("inf"), high: float = float("inf"), *, open_low: bool = False
                 ) -> Callable[[str], float]:
    """An argparse ``type``: a finite float in ``[low, high]`` (``(low, high]`` with ``open_low``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if value < low or value > high or (open_low and value == low):
            raise argparse.ArgumentTypeError(f"must be in {'(' if open_low else '['}{low}, {high}], got {value}")
        return value

    parse.__name__ = "number"
    return parse


#: ``--seed`` of every script.
seed_int = int_in(0, SEED_MAX)


def prepare_out(path: str | Path, option: str = "--out") -> Path:
    """Create the output folder ``path`` (and parents) and check it is writable, before any work.

    An existing file there, or a folder that cannot be created or written, is one clear line.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: exists and is not a folder — pass a folder for the output")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write there ({exc.strerror or exc}) — pass a writable "
                          f"folder") from None
    return path


__all__ = [
    "SEED_MAX",
    "USER_ERRORS",
    "ArgumentParser",
    "describe",
    "finite_float",
    "guard",
    "int_in",
    "one_line",
    "prepare_out",
    "seed_int",
]
