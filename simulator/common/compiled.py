"""``jit``: numba's compiler when it is installed, else the same Python, as ``arch.compat.numba`` does.

Why: the environment's step (:mod:`envs.step`) and the GARCH recursions
(:mod:`forecasters.garch_kernels`) are written once, as plain Python, and compiled. Without
numba they still run — the same code, interpreted, far slower — with a warning that says so.
``NUMBA_DISABLE_JIT=1`` runs the Python too (numba's own switch); the tests run both and
require the same results.
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
        warnings.warn("numba is not installed: compiled code runs as plain Python (far slower); "
                      "pip install numba", RuntimeWarning, stacklevel=3)
        return f

    return plain
