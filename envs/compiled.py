"""``jit``: numba's compiler when it is installed, else the same Python, as ``arch.compat.numba`` does.

Why: the step is written once, as plain Python over one account (:mod:`envs.step`), and
compiled. Without numba it still runs — the same code, interpreted, about a thousand times
slower — with a warning that says so. ``NUMBA_DISABLE_JIT=1`` runs the Python too (numba's own
switch); the tests run both and require the same trajectories.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

try:
    from numba import njit as _njit
except ImportError:  # pragma: no cover - numba is a dependency; this keeps the package importable without it
    _njit = None

NUMBA_AVAILABLE = _njit is not None


def jit(**options: Any) -> Callable[[Callable], Callable]:
    """``numba.njit(**options)``, or the function itself (with a warning once) when numba is missing."""
    if _njit is not None:
        return _njit(**options)

    def plain(f: Callable) -> Callable:  # pragma: no cover - see above
        warnings.warn("numba is not installed: the environment's step runs as plain Python (about 1,000x "
                      "slower); pip install numba", RuntimeWarning, stacklevel=3)
        return f

    return plain
