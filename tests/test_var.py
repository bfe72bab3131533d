"""VaR / ES models: no lookahead, closed forms, naive-loop oracles, coverage, sides, units."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from forecasters.var import (
    VAR_MODELS,
    RiskForecast,
    conditional_var,
    fhs_var,
    historical_var,
    normal_tail,
    normal_var,
    position_var,
    quantile_regression_var,
    scale_horizon,
    standardised_residuals,
    student_t_var,
    t_tail,
    to_currency,
    var_models,
    vol_scaled_var,
)

ALPHA = 0.99


# --------------------------------------------------------------------------- helpers


def simulate_garch_t(n: int, *, seed: int, omega: float = 1e-7, a: float = 0.06, b: float = 0.92,
                     nu: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """GARCH(1,1) with unit-variance t(nu) shocks; returns (r[t] with r[0] NaN, true sigma of r[t])."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(nu, n) * math.sqrt((nu - 2) / nu)
    var = np.empty(n)
    r = np.empty(n)
    var[0] = omega / (1 - a - b)
    r[0] = math.sqrt(var[0]) * z[0]
    for t in range(1, n):
        var[t] = omega + a * r[t - 1] ** 2 + b * var[t - 1]
        r[t] = math.sqrt(var[t]) * z[t]
    r[0] = np.nan
    return r, np.sqrt(var)


def forecast_from_true(vol: np.ndarray) -> np.ndarray:
    """Row t = sd of r[t+1] (known at t in a GARCH), last row NaN."""
    out = np.full_like(vol, np.nan)
    out[:-1] = vol[1:]
    return out


def ewma_sigma(r: np.ndarray, lam: float = 0.94, warm: int = 30) -> np.ndarray:
    """A causal EWMA sd forecast (time, pair) for test inputs: row t uses r[<= t]."""
    out = np.full(r.shape, np.nan)
    for j in range(r.shape[1]):
        v = np.nanvar(r[1:warm + 1, j])
        for t in range(warm + 1, r.shape[0]):
            v = lam * v + (1 - lam) * r[t, j] ** 2
            out[t, j] = math.sqrt(v)
    return out


def exception_rate(risk: RiskForecast, r: np.ndarray, side: str = "long") -> tuple[int, int]:
    var, _ = risk.side(side)  # type: ignore[arg-type]
    nxt = np.full_like(r, np.nan)
    nxt[:-1] = r[1:]
    ok = np.isfinite(var) & np.isfinite(nxt)
    loss = -nxt if side == "long" else nxt
    return int((loss[ok] > var[ok]).sum()), int(ok.sum())


def binomial_interval(n: int, p: float, level: float = 0.99) -> tuple[float, float]:
    lo, hi = stats.binom.interval(level, n, p)
    return lo, hi


@pytest.fixture(scope="module")
def market_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Two pairs of fat-tailed GARCH returns with a causal EWMA sigma and a few NaN gaps."""
    r1, _ = simulate_garch_t(1500, seed=11)
    r2, _ = simulate_garch_t(1500, seed=12, nu=8.0)
    r = np.column_stack([r1, r2])
    r[400:403, 1] = np.nan  # a missing stretch in the middle of one pair
    sigma = ewma_sigma(np.nan_to_num(r))
    return r, sigma


MODELS: dict[str, Callable[[np.ndarray, np.ndarray], RiskForecast]] = {
    "historical": lambda r, s: historical_var(r, ALPHA, window=250),
    "normal": lambda r, s: normal_var(r, ALPHA, window=250),
    "student_t": lambda r, s: student_t_var(r, ALPHA, window=250, refit_every=300),
    "cond_normal": lambda r, s: conditional_var(s, ALPHA),
    "cond_t": lambda r, s: conditional_var(s, ALPHA, dist="t", nu=6.0),
    "fhs": lambda r, s: fhs_var(r, s, ALPHA, window=250),
    "vol_scaled_t": lambda r, s: vol_scaled_var(r, s, ALPHA, method="t", nu=np.full(s.shape, 5.0)),
    "qr": lambda r, s: quantile_regression_var(r, s, ALPHA, fit_start=0, fit_end=700),
}


# --------------------------------------------------------------------------- no lookahead


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("cut", [300, 820, 1200])
def test_changing_the_future_leaves_the_past(model: str, cut: int, market_arrays) -> None:
    # Arrange: perturb returns (and the sigma computed from them) strictly after row `cut`
    r, sigma = market_arrays
    rng = np.random.default_rng(cut)
    r2 = r.copy()
    r2[cut + 1:] = r2[cut + 1:] * rng.uniform(0.2, 5.0, r2[cut + 1:].shape) + rng.normal(0, 1e-3, r2[cut + 1:].shape)
    sigma2 = sigma.copy()
    sigma2[cut + 1:] *= rng.uniform(0.5, 2.0, sigma2[cut + 1:].shape)
    # Act
    a = MODELS[model](r, sigma)
    b = MODELS[model](r2, sigma2)
    # Assert
    for x, y in [(a.var, b.var), (a.es, b.es), (a.var_short, b.var_short), (a.es_short, b.es_short)]:
        np.testing.assert_array_equal(x[:cut + 1], y[:cut + 1])
    assert np.isfinite(a.var[cut + 1:]).any()


@pytest.mark.parametrize("model", list(MODELS))
def test_es_at_least_var_and_rows_aligned(model: str, market_arrays) -> None:
    r, sigma = market_arrays
    risk = MODELS[model](r, sigma)
    assert risk.var.shape == r.shape and risk.alpha == ALPHA
    for side in ("long", "short"):
        var, es = risk.side(side)  # type: ignore[arg-type]
        ok = np.isfinite(var)
        assert ok.sum() > 300
        np.testing.assert_array_equal(ok, np.isfinite(es))
        assert (es[ok] >= var[ok] - 1e-15).all()
        assert (var[ok] > 0).all()


# --------------------------------------------------------------------------- closed forms


def test_normal_closed_form_99() -> None:
    z, es = normal_tail(0.99)
    assert z == pytest.approx(2.3263, abs=1e-4)
    assert es == pytest.approx(2.6652, abs=1e-4)
    sigma = np.full((5, 2), 0.004)
    risk = conditional_var(sigma, 0.99)
    np.testing.assert_allclose(risk.var, 2.326348 * 0.004, rtol=1e-6)
    np.testing.assert_allclose(risk.es, 2.665214 * 0.004, rtol=1e-6)
    np.testing.assert_allclose(risk.var_short, risk.var)


@pytest.mark.parametrize("nu", [3.0, 5.0, 12.0])
@pytest.mark.parametrize("alpha", [0.95, 0.99, 0.975])
def test_unit_variance_t_matches_scipy(nu: float, alpha: float) -> None:
    q, es = t_tail(alpha, nu)
    c = math.sqrt((nu - 2) / nu)
    assert float(q) == pytest.approx(stats.t.ppf(alpha, nu) * c, rel=1e-10)
    # ES by numerical integration of the loss tail of the unit-variance t
    dist = stats.t(nu, scale=c)
    es_num = dist.expect(lambda x: -x, lb=-np.inf, ub=-float(q)) / (1 - alpha)
    assert float(es) == pytest.approx(es_num, rel=1e-6)
    assert float(es) > float(q)


def test_t_tail_edge_dof() -> None:
    q, es = t_tail(0.99, np.array([np.nan, 2.0, 1.5, np.inf, 1e9]))
    assert np.isnan(q[:3]).all() and np.isnan(es[:3]).all()
    z, es_n = normal_tail(0.99)
    np.testing.assert_allclose(q[3:], z)
    np.testing.assert_allclose(es[3:], es_n)


def test_conditional_t_uses_rowwise_dof_like_garch_info() -> None:
    sigma = np.full((4, 2), 0.01)
    nu = np.array([[5.0, 8.0], [5.0, 8.0], [np.nan, 8.0], [30.0, 8.0]])

    class FakeForecast:
        name = "garch_t"
        info = {"nu": nu}

        def __init__(self) -> None:
            self.sigma = sigma

    risk = conditional_var(FakeForecast(), 0.99, dist="t")
    assert risk.name == "garch_t-t"
    assert risk.var[0, 0] == pytest.approx(0.01 * stats.t.ppf(0.99, 5) * math.sqrt(3 / 5))
    assert risk.var[0, 1] == pytest.approx(0.01 * stats.t.ppf(0.99, 8) * math.sqrt(6 / 8))
    assert np.isnan(risk.var[2, 0]) and np.isnan(risk.es[2, 0])
    # a t at 99% has a larger unit-variance quantile than the normal
    assert risk.var[0, 0] > 2.3263 * 0.01


# --------------------------------------------------------------------------- naive-loop oracles


def test_historical_matches_naive_loop() -> None:
    rng = np.random.default_rng(3)
    r = rng.standard_t(4, (400, 2)) * 1e-3
    r[0] = np.nan
    r[150, 0] = np.nan
    w = 60
    risk = historical_var(r, 0.975, window=w)
    for j in range(2):
        for t in range(r.shape[0]):
            past = r[:t + 1, j]
            past = past[np.isfinite(past)]
            if past.size < w:
                assert np.isnan(risk.var[t, j])
                continue
            win = past[-w:]
            q = np.quantile(win, 0.025)
            k = math.floor((w - 1) * 0.025) + 1
            assert risk.var[t, j] == pytest.approx(-q, rel=1e-12)
            assert risk.es[t, j] == pytest.approx(-np.sort(win)[:k].mean(), rel=1e-12)
            assert risk.var_short[t, j] == pytest.approx(np.quantile(win, 0.975), rel=1e-12)
            assert risk.es_short[t, j] == pytest.approx(np.sort(win)[-k:].mean(), rel=1e-12)


@pytest.mark.parametrize("window", [1, 2, 37, 250])
@pytest.mark.parametrize("p", [0.01, 0.05, 0.5])
def test_sliding_sorted_window_tails_match_np_quantile_with_ties(window: int, p: float) -> None:
    """The sorted sliding window (compiled and as plain Python) gives each window's order
    statistics exactly, numpy's quantile and the tail means to 1e-12, with ties and repeated
    zeros in the data."""
    from forecasters.var import _rolling_tails_compiled, rolling_tails_python

    rng = np.random.default_rng(11)
    x = np.round(rng.standard_t(3, 400), 1)  # many ties
    x[rng.random(400) < 0.2] = 0.0
    pos = (window - 1) * p
    lo = math.floor(pos)
    hi = min(lo + 1, window - 1)
    compiled = _rolling_tails_compiled(x, window, lo, hi, pos - lo)
    plain = rolling_tails_python(x, window, lo, hi, pos - lo)
    np.testing.assert_allclose(compiled, plain, rtol=1e-12, atol=1e-15)
    k = lo + 1
    for start in range(x.size - window + 1):
        win = np.sort(x[start:start + window])
        # the order statistics exactly, interpolated as before; numpy's quantile to rounding
        assert compiled[0, start] == win[lo] + (pos - lo) * (win[hi] - win[lo])
        assert compiled[0, start] == pytest.approx(np.quantile(win, p), rel=1e-12, abs=1e-15)
        assert compiled[2, start] == pytest.approx(-np.quantile(-win, p), rel=1e-12, abs=1e-15)  # the mirror
        assert compiled[1, start] == pytest.approx(win[:k].mean(), rel=1e-12, abs=1e-15)
        assert compiled[3, start] == pytest.approx(win[-k:].mean(), rel=1e-12, abs=1e-15)


def test_normal_matches_naive_loop() -> None:
    rng = np.random.default_rng(4)
    r = rng.normal(2e-4, 1e-3, (300, 1))
    r[0] = np.nan
    w = 50
    risk = normal_var(r, 0.99, window=w)
    z = stats.norm.ppf(0.99)
    for t in range(w, r.shape[0]):
        win = r[t - w + 1:t + 1, 0]
        m, s = win.mean(), win.std(ddof=1)
        assert risk.var[t, 0] == pytest.approx(-(m - z * s), rel=1e-9)
        assert risk.var_short[t, 0] == pytest.approx(m + z * s, rel=1e-9)
    assert np.isnan(risk.var[:w]).all()  # row 0 NaN, so the first full window ends at row w


def test_fhs_matches_naive_loop(market_arrays) -> None:
    r, sigma = market_arrays
    w = 100
    risk = fhs_var(r, sigma, 0.99, window=w)
    for t in range(0, r.shape[0], 7):
        zs = [r[s, 0] / sigma[s - 1, 0] for s in range(1, t + 1)]
        zs = np.array([z for z in zs if np.isfinite(z)])
        if zs.size < w or not np.isfinite(sigma[t, 0]):
            assert np.isnan(risk.var[t, 0])
            continue
        assert risk.var[t, 0] == pytest.approx(-sigma[t, 0] * np.quantile(zs[-w:], 0.01), rel=1e-10)


def test_student_t_dof_refits_on_schedule() -> None:
    rng = np.random.default_rng(5)
    r = rng.standard_t(4, (1200, 1)) * 1e-3
    r[0] = np.nan
    risk = student_t_var(r, 0.99, window=400, refit_every=200)
    nu = risk.info["nu"][:, 0]
    assert np.isnan(nu[:400]).all()
    # constant within each refit block, starting at the first full window (row 400)
    for start in range(400, 1200, 200):
        block = nu[start:start + 200]
        assert np.all(block == block[0])
    assert risk.info["refits"] == 4
    assert 2.5 < np.nanmedian(nu) < 8  # MLE near the true 4
    x = r[1:401, 0]
    expected = stats.t.fit((x - x.mean()) / x.std(ddof=1))[0]
    assert nu[400] == pytest.approx(expected, rel=2e-2)


# --------------------------------------------------------------------------- coverage on simulated data


def test_iid_normal_coverage_historical_and_normal() -> None:
    rng = np.random.default_rng(2024)
    n = 12_000
    r = rng.normal(0.0, 0.006, (n, 1))
    r[0] = np.nan
    for risk in (historical_var(r, ALPHA, window=500), normal_var(r, ALPHA, window=500)):
        x, m = exception_rate(risk, r)
        lo, hi = binomial_interval(m, 1 - ALPHA)
        assert lo <= x <= hi, (risk.name, x, m, lo, hi)
        xs, _ = exception_rate(risk, r, "short")
        assert lo <= xs <= hi, (risk.name, "short", xs, m, lo, hi)


def test_garch_t_conditional_t_covers_normal_does_not() -> None:
    r, vol = simulate_garch_t(30_000, seed=7, nu=5.0)
    r = r[:, None]
    sigma = forecast_from_true(vol)[:, None]
    t_risk = conditional_var(sigma, ALPHA, dist="t", nu=5.0)
    n_risk = conditional_var(sigma, ALPHA, dist="normal")
    fhs_risk = fhs_var(r, sigma, ALPHA, window=1000)
    xt, m = exception_rate(t_risk, r)
    xn, _ = exception_rate(n_risk, r)
    xf, mf = exception_rate(fhs_risk, r)
    lo, hi = binomial_interval(m, 1 - ALPHA)
    assert lo <= xt <= hi, (xt, m)
    assert xn > hi, (xn, hi)  # ~1.5% expected with t(5) shocks
    assert xn > 1.3 * xt
    lo_f, hi_f = binomial_interval(mf, 1 - ALPHA)
    assert lo_f <= xf <= hi_f, (xf, mf)


def test_arch_simulated_garch_t_matches_numpy_rates() -> None:
    pytest.importorskip("arch")
    from arch.univariate import GARCH, ConstantMean, StudentsT

    model = ConstantMean(None, volatility=GARCH(), distribution=StudentsT(seed=np.random.default_rng(9)))
    sim = model.simulate([0.0, 0.02, 0.08, 0.9, 5.0], 20_000, burn=500)
    r = sim["data"].to_numpy()[:, None].copy()
    r[0] = np.nan
    sigma = forecast_from_true(sim["volatility"].to_numpy())[:, None]
    xt, m = exception_rate(conditional_var(sigma, ALPHA, dist="t", nu=5.0), r)
    xn, _ = exception_rate(conditional_var(sigma, ALPHA), r)
    lo, hi = binomial_interval(m, 1 - ALPHA)
    assert lo <= xt <= hi and xn > xt


def test_quantile_regression_recovers_conditional_quantile() -> None:
    r, vol = simulate_garch_t(12_000, seed=21, nu=6.0)
    r = r[:, None]
    sigma = forecast_from_true(vol)[:, None]
    risk = quantile_regression_var(r, sigma, ALPHA, fit_start=1, fit_end=6000)
    assert np.isnan(risk.var[:6000]).all()
    x, m = exception_rate(risk, r)
    assert 0.004 < x / m < 0.02
    # on the fitting grid the line should track the true t quantile of sigma (within a band)
    true = sigma[6000:-1, 0] * float(t_tail(ALPHA, 6.0)[0])
    ratio = np.nanmedian(risk.var[6000:-1, 0] / true)
    assert 0.8 < ratio < 1.25
    assert (risk.es[6000:-1] >= risk.var[6000:-1]).all()


# --------------------------------------------------------------------------- sides, units, NaN handling


@pytest.mark.parametrize("model", ["historical", "normal", "fhs", "cond_t"])
def test_short_side_mirrors_long_on_negated_returns(model: str, market_arrays) -> None:
    r, sigma = market_arrays
    a = MODELS[model](r, sigma)
    b = MODELS[model](-r, sigma)
    np.testing.assert_allclose(a.var_short, b.var, rtol=1e-12, atol=1e-15, equal_nan=True)
    np.testing.assert_allclose(a.es_short, b.es, rtol=1e-12, atol=1e-15, equal_nan=True)


def test_short_side_close_to_long_for_symmetric_data() -> None:
    # Arrange: a symmetric law, and an exactly symmetric sample (each draw with its mirror)
    rng = np.random.default_rng(8)
    r = rng.standard_t(6, (8_000, 1)) * 1e-3
    r[0] = np.nan
    half = rng.standard_t(6, 300) * 1e-3
    mirrored = np.r_[np.nan, half, -half][:, None]
    # Act
    risk = historical_var(r, ALPHA, window=2_000)
    exact = historical_var(mirrored, ALPHA, window=600)
    # Assert
    np.testing.assert_allclose(np.nanmean(risk.var_short), np.nanmean(risk.var), rtol=0.08)
    np.testing.assert_allclose(exact.var_short[-1], exact.var[-1], rtol=1e-12)
    np.testing.assert_allclose(exact.es_short[-1], exact.es[-1], rtol=1e-12)
    for model in (normal_var, student_t_var):
        sym = model(mirrored, ALPHA, window=600)
        np.testing.assert_allclose(sym.var_short[-1], sym.var[-1], rtol=1e-9)
        np.testing.assert_allclose(sym.es_short[-1], sym.es[-1], rtol=1e-9)


def test_horizon_scaling_and_currency() -> None:
    assert float(scale_horizon(0.01, 4)) == pytest.approx(0.02)
    np.testing.assert_allclose(scale_horizon(np.array([0.01, 0.02]), 10), np.array([0.01, 0.02]) * math.sqrt(10))
    with pytest.raises(ValueError):
        scale_horizon(0.01, 0)
    assert float(to_currency(0.02, 1_000_000.0)) == pytest.approx(20_000.0)
    assert float(to_currency(0.02, -500_000.0)) == pytest.approx(10_000.0)
    # signed exposure picks the tail
    var_l = np.array([[0.01, 0.02]])
    var_s = np.array([[0.03, 0.04]])
    got = position_var(var_l, var_s, np.array([[1e6, -2e6]]))
    np.testing.assert_allclose(got, [[10_000.0, 80_000.0]])
    risk = RiskForecast(name="x", alpha=0.99, var=var_l, es=var_l * 1.2, var_short=var_s, es_short=var_s * 1.2)
    np.testing.assert_allclose(risk.for_exposure(np.array([[1e6, -2e6]]), es=True), [[12_000.0, 96_000.0]])


def test_normal_horizon_scaling_is_exact_for_iid_normal() -> None:
    # sum of h i.i.d. N(0, s^2) is N(0, h s^2): its 99% VaR is sqrt(h) times the one-bar VaR
    one = conditional_var(np.full((1, 1), 0.005), 0.99).var
    h_bar = conditional_var(np.full((1, 1), 0.005 * math.sqrt(9)), 0.99).var
    np.testing.assert_allclose(scale_horizon(one, 9), h_bar)


@pytest.mark.parametrize("model", ["cond_normal", "cond_t", "fhs", "vol_scaled_t", "qr"])
def test_nan_sigma_rows_give_nan_var(model: str, market_arrays) -> None:
    r, sigma = market_arrays
    s = sigma.copy()
    s[900:920, 0] = np.nan
    risk = MODELS[model](r, s)
    for arr in (risk.var, risk.es, risk.var_short, risk.es_short):
        assert np.isnan(arr[900:920, 0]).all()
        assert np.isfinite(arr[930:1000, 0]).all()  # not contaminated beyond the gap
        assert np.isfinite(arr[900:920, 1]).all()


def test_standardised_residuals_alignment() -> None:
    r = np.array([[np.nan], [0.02], [-0.03]])
    s = np.array([[0.01], [0.02], [np.nan]])
    z = standardised_residuals(r, s)
    np.testing.assert_array_equal(z[:, 0], [np.nan, 2.0, -1.5])


def test_input_validation() -> None:
    with pytest.raises(ValueError):
        conditional_var(np.full((3, 1), -0.01), 0.99)
    with pytest.raises(ValueError):
        conditional_var(np.full((3, 1), 0.01), 1.5)
    with pytest.raises(ValueError):
        historical_var(np.zeros(10), 0.99)
    with pytest.raises(ValueError):
        RiskForecast(name="x", alpha=0.99, var=np.zeros((2, 1)), es=np.zeros((3, 1)))
    with pytest.raises(ValueError):
        conditional_var(np.full((3, 1), 0.01), 0.99, dist="t")  # no dof anywhere


def test_var_models_bundle(market_arrays) -> None:
    r, sigma = market_arrays

    class FakeGarchT:
        name = "garch_t"

        def __init__(self) -> None:
            self.sigma = sigma
            self.info = {"nu": np.full(sigma.shape, 6.0)}

    out = var_models(r, {"ewma": sigma, "garch_t": FakeGarchT()}, ALPHA, window=200, refit_every=500,
                     qr_span=(0, 700))
    assert {"historical", "normal", "student_t", "ewma-normal", "ewma-fhs", "ewma-qr",
            "garch_t-normal", "garch_t-fhs", "garch_t-t", "garch_t-qr"} <= set(out)
    assert "ewma-t" not in out
    for risk in out.values():
        assert risk.var.shape == r.shape and risk.has_short
    assert set(VAR_MODELS) >= {"historical", "normal", "student_t", "conditional", "fhs", "quantile_regression"}


def test_residual_quantile_var_matches_closed_form_for_normal_residuals() -> None:
    from scipy.stats import norm

    from forecasters.var import residual_quantile_var

    grid = (np.arange(4000) + 0.5) / 4000
    quantiles = np.vstack([norm.ppf(grid), norm.ppf(grid)])
    sigma = np.full((5, 2), 0.002)
    sigma[0] = np.nan
    risk = residual_quantile_var(sigma, 0.99, grid, quantiles)
    np.testing.assert_allclose(risk.var[1:], 2.3263 * 0.002, rtol=2e-3)
    np.testing.assert_allclose(risk.es[1:], 2.6652 * 0.002, rtol=1e-2)
    np.testing.assert_allclose(risk.var_short[1:], risk.var[1:], rtol=1e-9)
    assert np.isnan(risk.var[0]).all()


# --------------------------------------------------------------------------- issue 15: skewed t, EVT, per-window FHS

def _two_series(n: int, seed: int, nu: float) -> np.ndarray:
    """Two independent GARCH-t series as a (time, 2) array (row 0 NaN)."""
    return np.column_stack([simulate_garch_t(n, seed=seed, nu=nu)[0], simulate_garch_t(n, seed=seed + 1, nu=nu)[0]])



@pytest.mark.parametrize("nu,lam", [(5.0, -0.2), (8.0, 0.15), (30.0, -0.05), (4.0, 0.0)])
@pytest.mark.parametrize("alpha", [0.99, 0.95])
def test_skewt_tail_matches_arch_ppf_and_numerical_es(nu, lam, alpha) -> None:
    from arch.univariate import SkewStudent
    from scipy import integrate

    from forecasters.var import skewt_tail

    dist = SkewStudent()
    q, es = skewt_tail(alpha, nu, lam)
    p = 1 - alpha
    assert float(q) == pytest.approx(-dist.ppf(p, [nu, lam]), rel=1e-9)
    es_num = -integrate.quad(lambda u: dist.ppf(u, [nu, lam]), 0, p, limit=200)[0] / p
    assert float(es) == pytest.approx(es_num, rel=1e-5)
    qs, _ = skewt_tail(alpha, nu, -lam)  # short side: the right tail of Z is the left tail of -Z
    assert float(qs) == pytest.approx(dist.ppf(alpha, [nu, lam]), rel=1e-9)
    if lam == 0.0:
        qt, et = t_tail(alpha, nu)
        assert float(q) == pytest.approx(float(qt), rel=1e-9) and float(es) == pytest.approx(float(et), rel=1e-9)


@pytest.mark.parametrize("xi_true", [-0.2, 0.0, 0.25, 0.6])
def test_gpd_fit_reaches_scipys_maximum_likelihood(xi_true) -> None:
    from forecasters.var import gpd_fit

    rng = np.random.default_rng(int(10 * (xi_true + 1)))
    samples = stats.genpareto.rvs(xi_true, scale=0.7, size=(3, 60), random_state=rng)
    xi, beta = gpd_fit(samples)
    for row in range(3):
        c, _, scale = stats.genpareto.fit(samples[row], floc=0)
        ll_scipy = stats.genpareto.logpdf(samples[row], c, scale=scale).sum()
        ll_ours = stats.genpareto.logpdf(samples[row], xi[row], scale=beta[row]).sum()
        assert ll_ours >= ll_scipy - 1e-6
        assert xi[row] == pytest.approx(c, abs=0.02)


def test_gpd_tail_is_the_quantile_and_tail_mean_of_the_fitted_law() -> None:
    from forecasters.var import gpd_tail

    xi, beta, u, frac, alpha = 0.2, 0.6, 1.5, 0.1, 0.99
    var, es = gpd_tail(alpha, np.array([u]), np.array([xi]), np.array([beta]), frac)
    # P(L > u + y) = frac (1 - G(y)): the alpha quantile solves frac (1 - G) = 1 - alpha
    y_q = stats.genpareto.ppf(1 - (1 - alpha) / frac, xi, scale=beta)
    assert var[0] == pytest.approx(u + y_q, rel=1e-10)
    # ES = VaR + mean excess over VaR, which is GPD with scale beta + xi (VaR - u)
    assert es[0] == pytest.approx(var[0] + (beta + xi * (var[0] - u)) / (1 - xi), rel=1e-10)
    with pytest.raises(ValueError, match="exceedance share"):
        gpd_tail(0.8, np.array([u]), np.array([xi]), np.array([beta]), frac)


@pytest.fixture(scope="module")
def garch_forecast():
    import pandas as pd

    from forecasters.garch import GarchConfig, GarchForecaster

    r = _two_series(1600, 31, 5.0)
    r = r + 2e-4
    index = pd.date_range("2001-01-01", periods=r.shape[0], freq="D", tz="UTC")
    config = GarchConfig(vol="gjr", dist="skewt", min_window=500, window_size=500, refit_every=25,
                         seasonal=False, residual_tails=51)
    return r, GarchForecaster(config).forecast_returns(r, index, ("A", "B"))


def test_garch_var_uses_the_fitted_mean(garch_forecast) -> None:
    from forecasters.var import garch_var

    r, fc = garch_forecast
    with_mean = garch_var(fc, 0.99)
    mu = fc.info["mu"]
    assert np.nanmean(mu) == pytest.approx(2e-4, abs=2e-4)
    zero = conditional_var(fc, 0.99, dist="skewt", mu=0.0)
    rows = np.isfinite(with_mean.var)
    np.testing.assert_allclose(with_mean.var[rows], zero.var[rows] - mu[rows], rtol=1e-12)
    np.testing.assert_allclose(with_mean.var_short[rows], zero.var_short[rows] + mu[rows], rtol=1e-12)


def test_garch_fhs_is_the_empirical_quantile_of_the_windows_residuals(garch_forecast) -> None:
    from forecasters.var import garch_var

    r, fc = garch_forecast
    risk = garch_var(fc, 0.99, method="fhs")
    t = 700
    k = fc.info["z_lo"].shape[-1]
    n = int(fc.info["z_n"][t, 0])
    # build the full sorted window from the stored tails is impossible; check against a window
    # with the same k smallest values and anything larger in the middle
    z = np.r_[fc.info["z_lo"][t, 0], np.full(n - 2 * k, 0.0), fc.info["z_hi"][t, 0]]
    q_lo, q_hi = np.quantile(z, 0.01), np.quantile(z, 0.99)
    mu, s = fc.info["mu"][t, 0], fc.sigma[t, 0]
    assert risk.var[t, 0] == pytest.approx(-mu - s * q_lo, rel=1e-12)
    assert risk.var_short[t, 0] == pytest.approx(mu + s * q_hi, rel=1e-12)
    worst = np.sort(z)[: int(np.floor((n - 1) * 0.01)) + 1]
    assert risk.es[t, 0] == pytest.approx(-mu - s * worst.mean(), rel=1e-12)
    assert (risk.es[np.isfinite(risk.es)] >= risk.var[np.isfinite(risk.es)] - 1e-15).all()


def test_garch_evt_covers_a_fat_tailed_garch_series() -> None:
    import pandas as pd

    from forecasters.backtests import exceptions
    from forecasters.base import realised_next
    from forecasters.garch import GarchConfig, GarchForecaster
    from forecasters.var import garch_var

    r = _two_series(5000, 41, 4.0)
    index = pd.date_range("2001-01-01", periods=r.shape[0], freq="D", tz="UTC")
    config = GarchConfig(vol="garch", dist="normal", min_window=1000, window_size=1000, refit_every=100,
                         seasonal=False, residual_tails=101)
    fc = GarchForecaster(config).forecast_returns(r, index, ("A", "B"))
    evt = garch_var(fc, 0.99, method="evt")
    normal = garch_var(fc, 0.99)
    nxt = realised_next(r)
    rate_evt = np.mean([exceptions(nxt[:, j], evt.var[:, j]).mean() for j in range(2)])
    rate_normal = np.mean([exceptions(nxt[:, j], normal.var[:, j]).mean() for j in range(2)])
    assert 0.006 < rate_evt < 0.0145  # 8,000 test rows: 1% +- 0.45 pp
    assert rate_normal > rate_evt
    assert (evt.es[np.isfinite(evt.es)] > evt.var[np.isfinite(evt.es)]).all()


@pytest.mark.parametrize("method", ["parametric", "fhs", "evt"])
def test_garch_var_no_lookahead(method) -> None:
    from forecasters.garch import GarchConfig, GarchForecaster
    from forecasters.var import garch_var

    cut = 800
    r, changed, index = _future_tripled(1000, 51, cut)
    config = GarchConfig(vol="gjr", dist="skewt", min_window=500, window_size=500, refit_every=10,
                         seasonal=False, residual_tails=51)
    a = garch_var(GarchForecaster(config).forecast_returns(r, index, ("A", "B")), 0.99, method=method)
    b = garch_var(GarchForecaster(config).forecast_returns(changed, index, ("A", "B")), 0.99, method=method)
    _assert_only_the_future_moved(a, b, cut)


def _future_tripled(n: int, seed: int, cut: int):
    """Two GARCH-t series, a copy with every return after row ``cut`` tripled, and a daily clock."""
    import pandas as pd

    r = _two_series(n, seed, 5.0)
    changed = r.copy()
    changed[cut + 1:] *= 3.0
    return r, changed, pd.date_range("2001-01-01", periods=r.shape[0], freq="D", tz="UTC")


def _assert_only_the_future_moved(a: RiskForecast, b: RiskForecast, cut: int) -> None:
    """Rows <= cut identical (returns after cut were changed), later rows not."""
    np.testing.assert_array_equal(a.var[: cut + 1], b.var[: cut + 1])
    np.testing.assert_array_equal(a.es[: cut + 1], b.es[: cut + 1])
    assert not np.allclose(a.var[cut + 20:], b.var[cut + 20:])


def test_suite_skewt_ppf_and_cdf_match_arch() -> None:
    from arch.univariate import SkewStudent

    from forecasters.var_suite import skewt_cdf, skewt_ppf

    u = np.array([0.001, 0.01, 0.3, 0.5, 0.8, 0.995])
    for nu, lam in ((5.0, -0.3), (12.0, 0.2)):
        ref = SkewStudent().ppf(u, [nu, lam])
        np.testing.assert_allclose(skewt_ppf(u, nu, lam), ref, rtol=1e-10)
        np.testing.assert_allclose(skewt_cdf(ref, nu, lam), u, rtol=1e-9)
        np.testing.assert_allclose(SkewStudent().cdf(ref, [nu, lam]), u, rtol=1e-9)


def test_suite_config_rejects_bad_settings_in_one_line() -> None:
    from forecasters.var_suite import SuiteConfig

    with pytest.raises(ValueError, match="unknown model 'garch-x'"):
        SuiteConfig(models=("hs", "garch-x"))
    with pytest.raises(ValueError, match="below tail_fraction"):
        SuiteConfig(levels=(0.85,))
    with pytest.raises(ValueError, match="long_window must exceed window"):
        SuiteConfig(window=500, long_window=400, models=("garch-normal-evtlong",))
    SuiteConfig(window=150, models=("hs", "garch-normal-evt0"))  # the long sample only binds its models


def test_suite_evt_and_fhs_laws_invert_and_give_z3_near_zero_under_their_own_law() -> None:
    from forecasters.backtests import acerbi_szekely_z3
    from forecasters.var_suite import _evt_law, _fhs_law

    t, rng = 2000, np.random.default_rng(61)
    one = np.ones(t)
    cdf, ppf = _evt_law(0.0 * one, 2.0 * one, 1.3 * one, 0.2 * one, 0.5 * one, 0.1 * one)
    u = np.array([1e-4, 0.003, 0.05, 0.099])
    for q in u:
        np.testing.assert_allclose(cdf(np.full(t, ppf(np.array([q]))[0, 0])), q, rtol=1e-9)
    z3 = []
    for _ in range(30):  # returns drawn from the law itself: 10% GPD tail beyond u, the rest above it
        tail = rng.random(t) < 0.1
        loss = 1.3 + stats.genpareto.rvs(0.2, scale=0.5, size=t, random_state=rng)
        r = np.where(tail, -2.0 * loss, 2.0 * rng.uniform(-1.3, 3.0, t))
        z3.append(acerbi_szekely_z3(cdf(r), ppf, 0.025))
    assert abs(np.mean(z3)) < 0.03
    z_lo = np.sort(rng.standard_normal((t, 60)), axis=1)
    cdf_f, ppf_f = _fhs_law(np.zeros(t), one, z_lo, np.full(t, 600.0))
    pos = np.array([0.0, 3.5, 10.25])
    np.testing.assert_allclose(cdf_f(ppf_f(pos / 599.0)[:, 1]), 3.5 / 599.0, rtol=1e-9)


def test_suite_z3_is_minus_infinity_for_a_loss_outside_the_models_support() -> None:
    from forecasters.var_suite import _law, _z3

    t = 1000
    y = np.random.default_rng(71).standard_normal(t)
    cdf, ppf = _law("normal", np.zeros(t), np.ones(t), None, None)
    assert np.isfinite(_z3(y, cdf, ppf, 0.01))
    y[500] = -40.0  # a 40-sigma loss: PIT ~ 1e-350 under the normal law
    assert _z3(y, cdf, ppf, 0.01) == -np.inf


# --------------------------------------------------------------------------- held-out selection variants (issue 15)


@pytest.mark.parametrize("xi_true", [-0.3, -0.05, 0.3])
def test_gpd_fit_with_nonnegative_shape_is_scipys_constrained_maximum(xi_true) -> None:
    from scipy.optimize import minimize

    from forecasters.var import gpd_fit

    rng = np.random.default_rng(int(100 * (xi_true + 1)))
    samples = stats.genpareto.rvs(xi_true, scale=0.6, size=(4, 80), random_state=rng)
    xi, beta = gpd_fit(samples, nonnegative_shape=True)
    free_xi, free_beta = gpd_fit(samples)
    assert (xi >= 0).all()
    for row in range(4):
        y = samples[row]

        def nll(v: np.ndarray) -> float:
            return -float(stats.genpareto.logpdf(y, v[0], scale=math.exp(v[1])).sum())

        ref = minimize(nll, x0=[0.1, math.log(y.mean())], bounds=[(0.0, 5.0), (-10.0, 10.0)], method="L-BFGS-B")
        ll_ours = stats.genpareto.logpdf(y, xi[row], scale=beta[row]).sum()
        assert ll_ours >= -ref.fun - 1e-6  # scipy's constrained optimum is not better than ours
        if free_xi[row] >= 0:  # the constraint does not bind: the free maximum
            assert xi[row] == pytest.approx(free_xi[row], abs=1e-4) and beta[row] == pytest.approx(free_beta[row], rel=1e-4)
        elif xi_true == -0.3:  # binds: the exponential law, scipy's expon MLE
            assert xi[row] == 0.0
            assert beta[row] == pytest.approx(stats.expon.fit(y, floc=0)[1], rel=1e-12)


def test_long_residual_window_tails_are_the_current_fits_residuals_over_it() -> None:
    from forecasters import garch_kernels as K
    from forecasters.garch import GarchConfig, walk_forward

    x = simulate_garch_t(1300, seed=81, nu=5.0)[0]
    base = GarchConfig(vol="garch", dist="normal", min_window=300, window_size=300, refit_every=50,
                       seasonal=False, residual_tails=40)
    long = GarchConfig(vol="garch", dist="normal", min_window=300, window_size=300, refit_every=50,
                       seasonal=False, residual_tails=40, residual_window=700)
    a, b = walk_forward(x, base), walk_forward(x, long)
    np.testing.assert_array_equal(a.variance, b.variance)  # the forecast itself is untouched
    first = 1
    for i, (tau, _, _, _) in enumerate(b.checkpoints[:-1]):
        params = b.checkpoints[i + 1][1]  # the fit made at tau, in effect on rows tau .. tau+49
        z0 = max(first, tau - 700 + 1)
        y = x[z0: tau + 1] * params.scale
        s2 = K.variance_python(np.ascontiguousarray(y - params.mu), params.omega, params.alpha, params.gamma,
                               params.beta, params.backcast)[:-1]
        z = np.sort((y - params.mu) / np.sqrt(s2))
        assert b.z_n[tau] == min(700, tau - first + 1)
        np.testing.assert_allclose(b.z_lo[tau], z[:40], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b.z_hi[tau], z[::-1][:40], rtol=1e-9, atol=1e-12)
    assert b.z_n[-1] == 700 and a.z_n[-1] == 300
    with pytest.raises(ValueError, match="residual_window must be 0 or >= min_window"):
        GarchConfig(min_window=300, window_size=300, residual_tails=40, residual_window=200)


@pytest.mark.parametrize("method", ["evt0", "evtlong", "evtlong0"])
def test_suite_evt_variants_no_lookahead(method) -> None:
    from forecasters.var_suite import SuiteConfig, run_suite

    cut = 900
    r, changed, index = _future_tripled(1200, 91, cut)
    config = SuiteConfig(window=300, refit_every=10, long_window=600, models=(f"garch-normal-{method}",),
                         levels=(0.99,), mcs_reps=10, es_boot=10)
    a = run_suite(r, index, ("A", "B"), config).risk[(f"garch-normal-{method}", 0.99)]
    b = run_suite(changed, index, ("A", "B"), config).risk[(f"garch-normal-{method}", 0.99)]
    _assert_only_the_future_moved(a, b, cut)
    xi = a.info["gpd"]["xi"]
    if method.endswith("0"):
        assert (xi[np.isfinite(xi)] >= 0).all()
    frac = a.info["gpd"]["frac"]
    assert np.nanmax(frac) == pytest.approx(0.1, abs=0.002)


def test_selection_rule_most_passes_then_tick_loss() -> None:
    import pandas as pd

    from forecasters.var_suite import selection_ranking

    rows = []
    # a passes on 2 pairs, b on 2 with a lower tick loss, c on 3 with the highest loss
    for model, passes, loss in (("a", (1, 1, 0), 0.20), ("b", (1, 0, 1), 0.10), ("c", (1, 1, 1), 0.30)):
        for sym, ok in zip(("X", "Y", "Z"), passes):
            rows.append({"symbol": sym, "model": model, "level": 0.99, "passes": bool(ok), "tick_loss": loss})
            rows.append({"symbol": sym, "model": model, "level": 0.95, "passes": True, "tick_loss": 0.0})
    table = pd.DataFrame(rows)
    ranking = selection_ranking(table, ("a", "b", "c"))
    assert list(ranking["model"]) == ["c", "b", "a"] and list(ranking["passes"]) == [3, 2, 2]
    assert list(ranking["rank"]) == [1, 2, 3] and (ranking["pairs"] == 3).all()
    with pytest.raises(ValueError, match=r"candidates \['d'\]"):
        selection_ranking(table, ("a", "d"))
