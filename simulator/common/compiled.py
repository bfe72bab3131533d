"""``jit``: numba's compiler when it is installed, else the same Python, as ``arch.compat.numba`` does.

Why: the environment's step (:mod:`envs.step`) and the GARCH recursions
(:mod:`forecasters.garch_kernels`) are written once, as plain Python, and compiled. Without
numba they still run — the same code, interpreted, far slower — with a warning that says so.
``NUMBA_DISABLE_JIT=1`` runs the Python too (numba's own switch); the tests run both and
require the same results.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

try:
    import numba as _numba
    from numba import njit as _njit
    from numba import prange
except ImportError:  # pragma: no cover - numba is a dependency; this keeps the package importable without it
    _numba = _njit = None
    prange = range

NUMBA_AVAILABLE = _njit is not None

THREADED_MIN_ITEMS = 512
"""Below this many independent items (accounts) a compiled loop runs on one thread: starting
numba's threads costs more than the split saves (measured by ``scripts/bench_env.py``)."""
_threads_pid: int | None = None


def thread_shares(n_items: int) -> int:
    """How many blocks to split ``n_items`` independent items into for a ``prange`` loop: numba's
    thread count (``NUMBA_NUM_THREADS``, :func:`numba.set_num_threads`) for large batches, else 1.

    Why the process check: GNU OpenMP (numba's usual threading layer on Linux) cannot run in a
    process forked from one that already used it (numba aborts the child). A process forked
    after this one's threads started (a :class:`~concurrent.futures.ProcessPoolExecutor`
    worker) runs its loops on one thread instead; it is one of several processes anyway.
    """
    global _threads_pid
    if _numba is None or n_items < THREADED_MIN_ITEMS:
        return 1
    threads = _numba.get_num_threads()
    if _numba.config.DISABLE_JIT or threads < 2:
        return 1
    pid = os.getpid()
    if _threads_pid is None:
        _threads_pid = pid
    elif _threads_pid != pid:
        return 1
    return min(threads, n_items)


def jit(**options: Any) -> Callable[[Callable], Callable]:
    """``numba.njit(**options)``, or the function itself (with a warning once) when numba is missing."""
    if _njit is not None:
        return _njit(**options)

    def plain(f: Callable) -> Callable:  # pragma: no cover - see above
        warnings.warn("numba is not installed: compiled code runs as plain Python (far slower); "
                      "pip install numba", RuntimeWarning, stacklevel=3)
        return f

    return plain
