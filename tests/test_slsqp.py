"""The lean SLSQP driver gives scipy.optimize.minimize's SLSQP result bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

import forecasters.slsqp as slsqp
from forecasters.garch import GarchConfig, walk_forward
from forecasters.slsqp import minimize_slsqp


def rosenbrock(x: np.ndarray) -> tuple[float, np.ndarray]:
    f = float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return f, g


def test_lean_driver_is_used_on_the_scipy_releases_it_was_read_from() -> None:
    release = slsqp._scipy_release()
    assert slsqp.LEAN == (slsqp._slsqp_routine is not None and release in slsqp.VERIFIED_SCIPY)


@pytest.mark.parametrize("case", ["constrained", "active_bound", "unconstrained", "iteration_limit", "infinite_bound"])
def test_lean_driver_equals_minimize_on_a_constrained_rosenbrock(case: str) -> None:
    if not slsqp.LEAN:  # another scipy: minimize_slsqp is minimize itself, nothing to compare
        assert minimize_slsqp(rosenbrock, np.zeros(3), [(-2, 2)] * 3, [], [], maxiter=50, ftol=1e-9).success
        return
    x0 = np.array([-1.2, 1.0, 0.5, -0.3])
    bounds = [(-2.0, 2.0)] * 4 if case != "active_bound" else [(-2.0, 0.8)] * 4
    if case == "infinite_bound":  # scipy's own path (the lean loop takes finite bounds)
        bounds = [(-np.inf, 2.0)] + [(-2.0, 2.0)] * 3
    cons = [lambda x: 1.5 - x[0] - x[1], lambda x: x[2] + 0.5 * x[3] + 1.0]
    grads = [np.array([-1.0, -1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0, 0.5])]
    if case == "unconstrained":
        cons, grads = [], []
    maxiter = 4 if case == "iteration_limit" else 200
    lean = minimize_slsqp(rosenbrock, x0, bounds, cons, grads, maxiter=maxiter, ftol=1e-10, lean=True)
    ref = minimize(rosenbrock, x0, jac=True, method="SLSQP", bounds=bounds,
                   constraints=[{"type": "ineq", "fun": c, "jac": (lambda _x, g=g: g)} for c, g in zip(cons, grads)],
                   options={"maxiter": maxiter, "ftol": 1e-10})
    assert lean.status == ref.status
    assert lean.fun == ref.fun
    np.testing.assert_array_equal(lean.x, ref.x)
    assert (lean.status == 9) == (case == "iteration_limit")


@pytest.mark.parametrize("vol, dist, mean", [("garch", "t", "constant"), ("gjr", "skewt", "constant"),
                                             ("garch", "normal", "zero"), ("gjr", "t", "constant")])
def test_walk_forward_fits_are_bit_identical_with_and_without_the_lean_driver(monkeypatch, vol, dist, mean) -> None:
    """Real ECB fixes 1999-2003, warm-started fits every 10 days, two pairs."""
    from simulator.data.ecb import load_ecb

    market = load_ecb(["EURUSD", "USDJPY"], end="2003-12-31", account_currency=None, depth="infinite")
    config = GarchConfig(vol=vol, dist=dist, mean=mean, refit_every=10, window_size=500, min_window=500,
                         seasonal=False, residual_tails=4)
    for pair in ("EURUSD", "USDJPY"):
        closes = market.bars[(pair, "close")].to_numpy()
        x = np.r_[np.nan, np.diff(np.log(closes))]
        runs = []
        for lean in (True, False):
            monkeypatch.setattr(slsqp, "LEAN", lean and slsqp.LEAN)
            runs.append(walk_forward(x, config))
        a, b = runs
        assert a.refits == b.refits > 50 and a.rejects == b.rejects
        for name in ("variance", "mean", "nu", "lam", "z_lo", "z_hi", "z_n"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=f"{pair} {name}")


def test_stalled_line_searches_and_their_restarts_are_bit_identical(monkeypatch) -> None:
    """Daily GJR-t fits on EURUSD 2001, where SLSQP stops on 'positive directional derivative' (status 8)."""
    from simulator.data.ecb import load_ecb

    market = load_ecb(["EURUSD"], end="2001-06-30", account_currency=None, depth="infinite")
    x = np.r_[np.nan, np.diff(np.log(market.bars[("EURUSD", "close")].to_numpy()))][:561]
    config = GarchConfig(vol="gjr", dist="t", refit_every=1, window_size=500, min_window=500, seasonal=False)
    statuses: list[int] = []
    real = slsqp.minimize_slsqp

    def counting(*args, **kwargs):
        result = real(*args, **kwargs)
        statuses.append(result.status)
        return result

    monkeypatch.setattr("forecasters.garch.minimize_slsqp", counting)
    lean = walk_forward(x, config)
    assert 8 in statuses  # the case this test is for
    monkeypatch.setattr(slsqp, "LEAN", False)
    reference = walk_forward(x, config)
    assert lean.rejects == reference.rejects == {}
    np.testing.assert_array_equal(lean.variance, reference.variance)
    np.testing.assert_array_equal(lean.mean, reference.mean)
    np.testing.assert_array_equal(lean.nu, reference.nu)
