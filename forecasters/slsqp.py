"""SLSQP with inequality constraints, driven without ``scipy.optimize.minimize``'s wrappers.

Why: a daily-refit walk-forward makes thousands of small fits (4-6 parameters, ~30 likelihood
evaluations each). With the likelihood compiled, about a third of a fit's time was
``minimize``'s Python around scipy's SLSQP routine (its memoising function objects, input
checks and array conversions on every evaluation). This module calls the same routine in the
loop ``scipy.optimize._slsqp_py._minimize_slsqp`` runs, with the same arrays, the same
workspace and the same one-point memo of ``(f, g)``, so the iterates and the result are
bit-identical to ``minimize(..., method="SLSQP")`` (tests/test_slsqp.py checks it on GARCH
fits). The routine's calling convention is private to scipy and was read from scipy 1.16 and
1.17; on any other scipy, or when the routine is missing, :func:`minimize_slsqp` calls
``scipy.optimize.minimize`` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy
from scipy.optimize import minimize

try:  # scipy >= 1.16: the C port of SLSQP with its state held in a dict
    from scipy.optimize._slsqplib import slsqp as _slsqp_routine
except ImportError:  # pragma: no cover - older scipy
    _slsqp_routine = None

#: scipy releases whose SLSQP loop this driver reproduces (major, minor).
VERIFIED_SCIPY = ((1, 16), (1, 17))


def _scipy_release() -> tuple[int, int]:
    major, minor = scipy.__version__.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


#: True when :func:`minimize_slsqp` runs the lean loop (otherwise it calls ``minimize``).
LEAN = _slsqp_routine is not None and _scipy_release() in VERIFIED_SCIPY


@dataclass(frozen=True)
class SlsqpResult:
    """What ``minimize``'s ``OptimizeResult`` gives that the GARCH fit reads."""

    x: np.ndarray
    fun: float
    status: int

    @property
    def success(self) -> bool:
        return self.status == 0


def minimize_slsqp(fun_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray,
                   bounds: Sequence[tuple[float, float]], constraints: Sequence[Callable[[np.ndarray], float]],
                   constraint_grads: Sequence[np.ndarray], *, maxiter: int, ftol: float,
                   lean: bool | None = None) -> SlsqpResult:
    """Minimise ``f`` from ``x0`` within ``bounds`` subject to ``c_i(x) >= 0``.

    ``fun_and_grad(x)`` returns ``(f, grad)``; each constraint ``c_i`` is a scalar function with
    the constant gradient ``constraint_grads[i]`` (linear constraints, as GARCH's are). Equal
    to ``minimize(fun_and_grad, x0, jac=True, method="SLSQP", bounds=bounds, constraints=
    [{"type": "ineq", "fun": c_i, "jac": lambda x: grad_i}], options={"maxiter": maxiter,
    "ftol": ftol})``, bit for bit. ``lean=False``, or a bound that is not finite, calls that instead
    (the tests compare the two).
    """
    bnds = np.array(bounds, dtype=float)
    if not (LEAN if lean is None else lean) or not np.isfinite(bnds).all():  # infinite bounds: scipy's own path
        cons = [{"type": "ineq", "fun": c, "jac": (lambda _x, g=g: g)} for c, g in zip(constraints, constraint_grads)]
        res = minimize(fun_and_grad, x0, jac=True, method="SLSQP", bounds=list(bounds), constraints=cons,
                       options={"maxiter": maxiter, "ftol": ftol})
        return SlsqpResult(x=np.asarray(res.x), fun=float(res.fun), status=int(res.status))
    lower, upper = bnds[:, 0].copy(), bnds[:, 1].copy()
    x = np.clip(np.asarray(x0, dtype=np.float64).reshape(-1), lower, upper)
    n, m = x.size, len(constraints)
    memo_x: np.ndarray | None = None
    memo_f, memo_g = 0.0, np.zeros(n)

    def evaluate(point: np.ndarray) -> tuple[float, np.ndarray]:
        # minimize keeps one (x, f, g): a repeated point is not evaluated again
        nonlocal memo_x, memo_f, memo_g
        if memo_x is None or not np.array_equal(point, memo_x):
            memo_x = point.copy()
            memo_f, memo_g = fun_and_grad(point.copy())
            memo_f = float(memo_f)
        return memo_f, memo_g

    state = {"acc": ftol, "alpha": 0.0, "f0": 0.0, "gs": 0.0, "h1": 0.0, "h2": 0.0, "h3": 0.0, "h4": 0.0,
             "t": 0.0, "t0": 0.0, "tol": 10.0 * ftol, "exact": 0, "inconsistent": 0, "reset": 0, "iter": 0,
             "itermax": int(maxiter), "line": 0, "m": m, "meq": 0, "mode": 0, "n": n}
    indices = np.zeros(max(m + 2 * n + 2, 1), dtype=np.int32)
    size = n * (n + 1) // 2 + 3 * m * n + 9 * m + 8 * n * n + 35 * n + 28  # scipy's workspace, meq = 0
    if m == 0:
        size += 2 * n * (n + 1)
    buffer = np.zeros(max(size, 1), dtype=np.float64)
    fx, g = evaluate(x)
    mult = np.zeros(max(1, m + 2 * n + 2), dtype=np.float64)
    normals = np.zeros((max(1, m), n), dtype=np.float64, order="F")
    values = np.zeros(max(1, m), dtype=np.float64)
    for i in range(m):
        normals[i, :] = constraint_grads[i]
    for i, c in enumerate(constraints):
        values[i] = c(x)
    while True:
        _slsqp_routine(state, fx, g, normals, values, x, mult, lower, upper, buffer, indices)
        mode = state["mode"]
        if mode == 1:  # the objective and the constraints at the new x
            fx = evaluate(x)[0]
            for i, c in enumerate(constraints):
                values[i] = c(x)
        if mode == -1:  # the gradients at x (the constraints' are constant)
            g = evaluate(x)[1]
            for i in range(m):
                normals[i, :] = constraint_grads[i]
        if abs(mode) != 1:
            break
    return SlsqpResult(x=x, fun=float(fx), status=int(state["mode"]))
