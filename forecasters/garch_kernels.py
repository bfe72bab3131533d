"""Compiled GARCH/GJR recursions and log-likelihoods, written once as plain Python.

Why: a daily-refit walk-forward does thousands of maximum-likelihood fits; ``arch`` spends
most of a fit in Python overhead. The likelihoods here follow ``arch``'s definitions exactly
(variance recursion started at ``arch``'s backcast, normal / Student-t / Hansen skewed-t
densities; checked against ``arch`` in the tests) and are compiled with numba the way
``arch`` does it (``jit(python_function)``, the Python runs when numba is missing).

Parameter vector (always 7 long): ``[mu, omega, alpha, gamma, beta, nu, lam]``; ``gamma`` is
0 for GARCH, ``nu`` / ``lam`` are ignored by the distributions that do not use them.
Distribution codes: 0 normal, 1 Student-t, 2 skewed Student-t (Hansen 1994).
"""

from __future__ import annotations

import math

import numpy as np

from simulator.common.compiled import jit as _compile


def jit(f):
    """``f`` compiled (cached, without the GIL), or ``f`` itself when numba is missing."""
    return _compile(cache=True, nogil=True)(f)

NORMAL, STUDENT, SKEWT = 0, 1, 2
LOG_2PI = math.log(2.0 * math.pi)


def variance_python(eps: np.ndarray, omega: float, alpha: float, gamma: float, beta: float,
                    backcast: float) -> np.ndarray:
    """GJR-GARCH(1,1) variances ``s2[0..n]`` of residuals ``eps[0..n-1]``; ``s2[t]`` uses eps < t.

    ``s2[0] = omega + (alpha + gamma/2 + beta) backcast`` as in ``arch``; ``s2[n]`` is the
    one-step forecast after the last residual.
    """
    n = eps.shape[0]
    out = np.empty(n + 1)
    s2 = omega + (alpha + 0.5 * gamma + beta) * backcast
    out[0] = s2
    for t in range(n):
        e = eps[t]
        a = alpha + gamma if e < 0.0 else alpha
        s2 = omega + a * e * e + beta * s2
        out[t + 1] = s2
    return out


def loglik_python(y: np.ndarray, params: np.ndarray, dist: int, backcast: float) -> float:
    """Total log-likelihood of ``y`` under GJR-GARCH(1,1) with a constant mean (``arch``'s form)."""
    mu, omega, alpha, gamma, beta, nu, lam = params[0], params[1], params[2], params[3], params[4], params[5], params[6]
    n = y.shape[0]
    s2 = omega + (alpha + 0.5 * gamma + beta) * backcast
    if dist == STUDENT:
        const = math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu) - 0.5 * math.log(math.pi * (nu - 2.0))
    elif dist == SKEWT:
        log_c = math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu) - 0.5 * math.log(math.pi * (nu - 2.0))
        a_c = 4.0 * lam * math.exp(log_c) * (nu - 2.0) / (nu - 1.0)
        b2 = 1.0 + 3.0 * lam * lam - a_c * a_c
        if b2 <= 0.0:
            return -math.inf
        b_c = math.sqrt(b2)
        const = math.log(b_c) + log_c
    else:
        const = -0.5 * LOG_2PI
    total = 0.0
    for t in range(n):
        if s2 <= 0.0 or not math.isfinite(s2):
            return -math.inf
        e = y[t] - mu
        if dist == STUDENT:
            total += const - 0.5 * math.log(s2) - 0.5 * (nu + 1.0) * math.log(1.0 + e * e / (s2 * (nu - 2.0)))
        elif dist == SKEWT:
            z = e / math.sqrt(s2)
            sign = 1.0 if z + a_c / b_c >= 0.0 else -1.0
            u = (b_c * z + a_c) / (1.0 + sign * lam)
            total += const - 0.5 * math.log(s2) - 0.5 * (nu + 1.0) * math.log(1.0 + u * u / (nu - 2.0))
        else:
            total += const - 0.5 * (math.log(s2) + e * e / s2)
        a = alpha + gamma if e < 0.0 else alpha
        s2 = omega + a * e * e + beta * s2
    return total


def backcast_python(resid: np.ndarray) -> float:
    """``arch``'s variance backcast: exponentially weighted (0.94) mean of the first 75 squared residuals."""
    tau = min(75, resid.shape[0])
    total = 0.0
    weight_sum = 0.0
    w = 1.0
    for i in range(tau):
        total += w * resid[i] * resid[i]
        weight_sum += w
        w *= 0.94
    return total / weight_sum


variance = jit(variance_python)
loglik = jit(loglik_python)
backcast = jit(backcast_python)


def nll_grad_python(y: np.ndarray, params: np.ndarray, free: np.ndarray, dist: int,
                    backcast: float) -> tuple[float, np.ndarray]:
    """Negative log-likelihood and its forward-difference gradient over the ``free`` indices.

    Steps as scipy's default (``sqrt(eps) * max(1, |x|)``); one call instead of one Python
    call per coordinate. Infeasible points give a large finite value (1e10) for the optimizer.
    """
    f0 = -loglik(y, params, dist, backcast)
    if not math.isfinite(f0):
        f0 = 1e10
    grad = np.zeros(free.shape[0])
    for k in range(free.shape[0]):
        i = free[k]
        h = 1.4901161193847656e-08 * max(1.0, abs(params[i]))
        p = params.copy()
        p[i] += h
        f1 = -loglik(y, p, dist, backcast)
        if not math.isfinite(f1):
            p[i] = params[i] - h
            f1 = -loglik(y, p, dist, backcast)
            grad[k] = (f0 - f1) / h if math.isfinite(f1) else 0.0
        else:
            grad[k] = (f1 - f0) / h
    return f0, grad


nll_grad = jit(nll_grad_python)
