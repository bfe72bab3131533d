"""EWMA and walk-forward GARCH-family forecasters, the intraday profile, and the forecast cache."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from arch import arch_model

from forecasters.base import Split, VolForecast
from forecasters.cache import ForecastCache, cached_forecast
from forecasters.ewma import EwmaConfig, EwmaForecaster, ewma_variance
from forecasters.garch import (
    GarchConfig,
    GarchForecaster,
    filter_variance,
    fit_window,
    param_names,
    walk_forward,
)
from forecasters.seasonality import causal_hourly_profile
from simulator.data.market import MarketData
from simulator.synthetic.generator import default_config, generate_market
from tests.conftest import change_future, simulate_garch_t


@pytest.fixture(scope="module")
def small_market() -> MarketData:
    return generate_market(default_config(("EURUSD", "USDJPY"), correlation=[[1, 0.3], [0.3, 1]]), 1_500,
                           rng=np.random.default_rng(4)).market


def test_ewma_matches_naive_loop() -> None:
    r = np.r_[np.nan, np.random.default_rng(0).normal(0, 1, 300)]
    fast = ewma_variance(r, 0.94, 20)
    slow = np.full(301, np.nan)
    s = np.mean(r[1:21] ** 2)
    slow[20] = s
    for t in range(21, 301):
        s = 0.94 * s + 0.06 * r[t] ** 2
        slow[t] = s
    np.testing.assert_allclose(fast, slow, rtol=1e-12)
    assert np.isnan(fast[:20]).all()


@pytest.mark.parametrize("vol", ["garch", "gjr", "egarch"])
@pytest.mark.parametrize("dist", ["normal", "t"])
def test_filter_reproduces_arch_conditional_volatility(vol, dist) -> None:
    y = simulate_garch_t(3_000, 0.05, 0.06, 0.88, 6.0, np.random.default_rng(1), gamma=0.04)
    config = GarchConfig(vol=vol, dist=dist)
    params = fit_window(y, config)
    assert params is not None
    model = arch_model(y * params.scale, mean="Constant", vol="EGARCH" if vol == "egarch" else "GARCH",
                       p=1, o=0 if vol == "garch" else 1, q=1, dist=dist, rescale=False)
    values = {"mu": params.mu, "omega": params.omega, "alpha[1]": params.alpha, "gamma[1]": params.gamma,
              "beta[1]": params.beta, "nu": params.nu}
    fixed = model.fix([values[n] for n in param_names(model)])
    ours = filter_variance(y * params.scale, params, vol)
    np.testing.assert_allclose(ours[200:-1], fixed.conditional_volatility[200:] ** 2, rtol=1e-6)
    one_step = fixed.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]
    assert ours[-1] == pytest.approx(one_step, rel=1e-9)


def test_garch_t_parameters_are_recovered_from_a_long_simulated_series() -> None:
    y = simulate_garch_t(20_000, omega=0.02, alpha=0.07, beta=0.90, nu=6.0, rng=np.random.default_rng(11))
    params = fit_window(y, GarchConfig(vol="garch", dist="t"))
    assert params is not None
    assert params.alpha == pytest.approx(0.07, abs=0.015)
    assert params.beta == pytest.approx(0.90, abs=0.02)
    assert params.nu == pytest.approx(6.0, abs=1.0)
    # omega is on the scaled series: unscale to compare
    assert params.omega / params.scale**2 == pytest.approx(0.02, rel=0.35)


@pytest.mark.parametrize(
    "forecaster",
    [
        EwmaForecaster(),
        GarchForecaster(GarchConfig(vol="garch", dist="t", min_window=400, refit_every=300, window_size=800)),
        GarchForecaster(GarchConfig(vol="gjr", dist="normal", min_window=400, refit_every=300,
                                    window="expanding")),
        GarchForecaster(GarchConfig(vol="egarch", dist="t", min_window=400, refit_every=300, window_size=800)),
    ],
    ids=["ewma", "garch-t", "gjr-normal-expanding", "egarch-t"],
)
def test_no_lookahead_changing_the_future_leaves_past_forecasts(small_market, forecaster) -> None:
    t = 900
    before = forecaster.forecast(small_market)
    after = forecaster.forecast(change_future(small_market, t))
    np.testing.assert_array_equal(before.sigma[: t + 1], after.sigma[: t + 1])
    assert not np.allclose(before.sigma[t + 2 :], after.sigma[t + 2 :], equal_nan=True)
    assert np.isfinite(before.sigma[t]).all()


def test_walk_forward_counts_refits_and_falls_back_on_failed_fits() -> None:
    rng = np.random.default_rng(3)
    x = np.r_[np.nan, np.zeros(500), rng.normal(0, 0.001, 1500)]
    res = walk_forward(x, GarchConfig(min_window=300, refit_every=200, window_size=300))
    assert res.refits == len(range(300, x.size, 200))
    assert res.fallbacks >= 1 and sum(res.rejects.values()) == res.fallbacks  # the all-zero window
    assert np.isnan(res.variance[:500]).all()  # a constant window: not even the fallback has a scale
    assert np.isfinite(res.variance[-500:]).all() and not res.fallback[-500:].any()


def test_walk_forward_keeps_last_good_parameters_when_a_refit_fails(monkeypatch) -> None:
    import forecasters.garch as garch

    rng = np.random.default_rng(5)
    x = np.r_[np.nan, rng.normal(0, 0.001, 2000)]
    calls = {"n": 0}
    real_fit = garch.fit_window_detailed

    def flaky(window, config, start=None):
        calls["n"] += 1
        return (None, "not_converged") if calls["n"] == 3 else real_fit(window, config, start)

    monkeypatch.setattr(garch, "fit_window_detailed", flaky)
    res = garch.walk_forward(x, GarchConfig(min_window=500, refit_every=300))
    assert res.fallbacks == 1 and res.rejects == {"not_converged": 1}
    assert not res.fallback.any()  # a rejected refit keeps the last accepted fit, not the fallback model
    assert np.isnan(res.variance[:500]).all() and np.isfinite(res.variance[500:]).all()


def test_garch_forecast_reports_t_dof_per_row(small_market) -> None:
    fc = GarchForecaster(GarchConfig(min_window=400, refit_every=400)).forecast(small_market)
    nu = fc.info["nu"]
    assert nu.shape == fc.sigma.shape
    assert np.isnan(nu[:398]).all() and (nu[500:] > 2).all()
    assert fc.refits == 2 * len(range(399, 1500, 400))


def test_causal_hourly_profile_finds_the_busy_hours_without_lookahead(small_market) -> None:
    rets = small_market.log_returns()
    now, nxt = causal_hourly_profile(small_market.index, rets)
    hours = small_market.index.hour
    assert now[-1, 0] > 0 and np.nanmean(now[hours == 14, 0]) > np.nanmean(now[hours == 3, 0])
    changed = rets.copy()
    changed[1000:] *= 3
    now2, nxt2 = causal_hourly_profile(small_market.index, changed)
    np.testing.assert_array_equal(now[:1000], now2[:1000])
    np.testing.assert_array_equal(nxt[:1000], nxt2[:1000])


def test_forecast_cache_serves_the_second_run(tmp_path, small_market) -> None:
    cache = ForecastCache(tmp_path)
    forecaster = GarchForecaster(GarchConfig(min_window=400, refit_every=500))
    first, hit1 = cached_forecast(forecaster, small_market, None, cache)
    second, hit2 = cached_forecast(forecaster, small_market, None, cache)
    assert (hit1, hit2) == (False, True)
    np.testing.assert_array_equal(first.sigma, second.sigma)
    np.testing.assert_array_equal(first.info["nu"], second.info["nu"])
    assert second.refits == first.refits and second.index.equals(first.index)
    other, hit3 = cached_forecast(GarchForecaster(GarchConfig(min_window=400, refit_every=400)), small_market,
                                  None, cache)
    assert hit3 is False
    _, hit4 = cached_forecast(forecaster, small_market, Split(train_end=500, val_end=800), cache)
    assert hit4 is False


def test_corrupt_cache_entry_is_recomputed(tmp_path, small_market) -> None:
    cache = ForecastCache(tmp_path)
    forecaster = EwmaForecaster(EwmaConfig(lam=0.97))
    key = cache.key(small_market, forecaster, None)
    cache.path(key).parent.mkdir(parents=True, exist_ok=True)
    cache.path(key).write_bytes(b"not a zip file")
    fc, hit = cached_forecast(forecaster, small_market, None, cache)
    assert hit is False and isinstance(fc, VolForecast)
    assert cached_forecast(forecaster, small_market, None, cache)[1] is True


# --------------------------------------------------------------------------- issue 15: faithful walk-forward


@pytest.mark.parametrize("vol", ["garch", "gjr"])
@pytest.mark.parametrize("dist", ["normal", "t", "skewt"])
def test_compiled_fit_reaches_archs_optimum(vol, dist) -> None:
    from forecasters.garch import _model

    y = simulate_garch_t(800, 0.05, 0.06, 0.88, 6.0, np.random.default_rng(2), gamma=0.04)
    config = GarchConfig(vol=vol, dist=dist)
    params = fit_window(y, config)
    assert params is not None and params.persistence < 1
    model = _model(y * params.scale, config)
    reference = model.fit(disp="off")
    values = {"mu": params.mu, "omega": params.omega, "alpha[1]": params.alpha, "gamma[1]": params.gamma,
              "beta[1]": params.beta, "nu": params.nu, "eta": params.nu, "lambda": params.lam}
    ours = model.fix([values[n] for n in param_names(model)]).loglikelihood  # arch scores our optimum
    assert ours >= reference.loglikelihood - 1e-3
    assert ours == pytest.approx(reference.loglikelihood, abs=0.05)


def test_compiled_skewt_likelihood_equals_arch_at_fixed_parameters() -> None:
    from forecasters import garch_kernels as K

    y = simulate_garch_t(600, 0.05, 0.06, 0.88, 6.0, np.random.default_rng(3), gamma=0.04)
    model = arch_model(y, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="skewt", rescale=False)
    fixed = model.fix([0.01, 0.05, 0.04, 0.05, 0.88, 7.0, -0.2])
    bc = float(K.backcast(y - y.mean()))
    ours = K.loglik(y, np.array([0.01, 0.05, 0.04, 0.05, 0.88, 7.0, -0.2]), K.SKEWT, bc)
    assert ours == pytest.approx(fixed.loglikelihood, rel=1e-9)


def test_fallback_model_fills_rows_before_the_first_accepted_fit(monkeypatch) -> None:
    import forecasters.garch as garch

    x = np.r_[np.nan, np.random.default_rng(6).normal(0.0002, 0.006, 900)]
    real_fit = garch.fit_window_detailed
    calls = {"n": 0}

    def reject_first_two(window, config, start=None):
        calls["n"] += 1
        return (None, "non_stationary") if calls["n"] <= 2 else real_fit(window, config, start)

    monkeypatch.setattr(garch, "fit_window_detailed", reject_first_two)
    config = GarchConfig(min_window=500, window_size=500, refit_every=100, residual_tails=10)
    res = garch.walk_forward(x, config)
    first = 500  # row 500 is the first with 500 returns
    assert np.isnan(res.variance[:first]).all() and np.isfinite(res.variance[first:]).all()
    assert res.fallback[first:first + 200].all() and not res.fallback[first + 200:].any()
    assert res.rejects == {"non_stationary": 2}
    # the stated fallback: RiskMetrics EWMA (0.94) on the window, started at arch's backcast
    window = x[1:first + 1]
    e = window - window.mean()
    w = 0.94 ** np.arange(75)
    s2 = np.sum(w * e[:75] ** 2) / w.sum()
    for v in e:
        s2 = 0.94 * s2 + 0.06 * v * v
    assert res.variance[first] == pytest.approx(s2, rel=1e-9)
    assert res.mean[first] == pytest.approx(window.mean(), rel=1e-9)
    assert res.nu[first] == np.inf  # normal shocks while on the fallback


def test_fitted_mean_is_kept_and_tails_are_the_windows_own_residuals() -> None:
    from forecasters.garch import _filter

    rng = np.random.default_rng(8)
    x = np.r_[np.nan, 0.002 + simulate_garch_t(1200, 0.05, 0.06, 0.9, 6.0, rng) * 0.005]
    config = GarchConfig(min_window=600, window_size=600, refit_every=150, residual_tails=12)
    res = walk_forward(x, config)
    assert np.nanmean(res.mean) == pytest.approx(0.002, abs=0.0006)
    tau = 600 + 150  # a refit row: the window x[151..750]
    window = x[tau - 599:tau + 1]
    params = fit_window(window, config, start=None)
    assert params is not None
    y = window * params.scale
    s2 = _filter(y, params, "garch")
    z = np.sort((y - params.mu) / np.sqrt(s2[:-1]))
    np.testing.assert_allclose(res.z_lo[tau], z[:12], rtol=1e-4)
    np.testing.assert_allclose(res.z_hi[tau], z[::-1][:12], rtol=1e-4)
    assert res.z_n[tau] == 600


@pytest.mark.parametrize("vol,dist", [("garch", "skewt"), ("gjr", "skewt"), ("gjr", "t")])
def test_no_lookahead_new_models_and_their_residual_tails(small_market, vol, dist) -> None:
    t = 900
    forecaster = GarchForecaster(GarchConfig(vol=vol, dist=dist, min_window=400, window_size=400, refit_every=50,
                                             residual_tails=20))
    before = forecaster.forecast(small_market)
    after = forecaster.forecast(change_future(small_market, t))
    for key in ("mu", "nu", "z_lo", "z_hi"):
        np.testing.assert_array_equal(before.info[key][: t + 1], after.info[key][: t + 1])
    np.testing.assert_array_equal(before.sigma[: t + 1], after.sigma[: t + 1])
    assert not np.allclose(before.info["z_lo"][t + 60:], after.info["z_lo"][t + 60:])


def test_daily_walk_forward_agrees_with_an_independent_arch_walk_forward() -> None:
    """Day by day on real ECB EURUSD fixes: our warm-started compiled fits vs arch fitted cold each day."""
    import warnings

    from simulator.data.ecb import load_ecb

    market = load_ecb(["EURUSD"], end="2001-06-30", account_currency=None, depth="infinite")
    closes = market.bars[("EURUSD", "close")].to_numpy()
    x = np.r_[np.nan, np.diff(np.log(closes))][:561]
    config = GarchConfig(vol="gjr", dist="t", refit_every=1, window_size=500, min_window=500, seasonal=False)
    res = walk_forward(x, config)
    assert res.rejects == {} and np.isfinite(res.variance[500:]).all()
    ratio = []
    for tau in range(500, 560):
        model = arch_model(x[tau - 499: tau + 1] * 100, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="t",
                           rescale=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = model.fit(disp="off")
        independent = fitted.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0] / 1e4
        ratio.append(np.sqrt(res.variance[tau] / independent))
        assert res.mean[tau] == pytest.approx(fitted.params["mu"] / 100, abs=2e-5)
    deviation = np.abs(np.array(ratio) - 1)
    assert np.median(deviation) < 1e-3 and np.quantile(deviation, 0.99) < 0.01


def test_compiled_kernels_equal_the_interpreted_python() -> None:
    from forecasters import garch_kernels as K

    y = simulate_garch_t(700, 0.05, 0.06, 0.88, 6.0, np.random.default_rng(9), gamma=0.04)
    params = np.array([0.01, 0.05, 0.04, 0.05, 0.88, 7.0, -0.2])
    bc = float(K.backcast_python(y - y.mean()))
    assert K.backcast(y - y.mean()) == pytest.approx(bc, rel=1e-13)
    for dist in (K.NORMAL, K.STUDENT, K.SKEWT):
        assert K.loglik(y, params, dist, bc) == pytest.approx(K.loglik_python(y, params, dist, bc), rel=1e-12)
        free = np.array([0, 1, 2, 3, 4, 5, 6], dtype=np.int64)
        f_c, g_c = K.nll_grad(y, params, free, dist, bc)
        f_p, g_p = K.nll_grad_python(y, params, free, dist, bc)
        assert f_c == pytest.approx(f_p, rel=1e-12)
        np.testing.assert_allclose(g_c, g_p, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(K.variance(y, 0.05, 0.04, 0.05, 0.88, bc),
                               K.variance_python(y, 0.05, 0.04, 0.05, 0.88, bc), rtol=1e-13)


def _same_walk_forward(a, b) -> None:
    for name in ("variance", "mean", "nu", "lam", "fallback", "z_lo", "z_hi", "z_n"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert (a.refits, a.fallbacks, a.rejects) == (b.refits, b.fallbacks, b.rejects)
    assert [(t, p, r, d) for t, p, r, d in a.checkpoints] == [(t, p, r, d) for t, p, r, d in b.checkpoints]


@pytest.mark.parametrize("window", ["rolling", "expanding"])
@pytest.mark.parametrize("changed_from", [150, 899, 900, 901, 1333, 1799])
def test_resumed_walk_forward_equals_a_fresh_run_on_the_changed_series(window, changed_from) -> None:
    from forecasters.garch import WalkForwardResume, first_difference

    # Arrange: a series, and a stressed copy from `changed_from` on (a volatility burst, then a
    # constant stretch the fallback cannot scale), with residual tails kept.
    rng = np.random.default_rng(11)
    x = np.r_[np.nan, simulate_garch_t(1800, 0.05, 0.08, 0.9, 6.0, rng) * 0.004]
    stressed = x.copy()
    stressed[changed_from:changed_from + 40] *= 6.0
    stressed[changed_from + 40:changed_from + 45] = 0.0
    config = GarchConfig(min_window=300, window_size=500, refit_every=100, window=window, residual_tails=5)
    reference = walk_forward(x, config)
    # Act
    resumed = walk_forward(stressed, config, resume=WalkForwardResume(
        reference=reference, changed_from=first_difference(stressed, x)))
    # Assert: bit for bit the fresh run, and the unchanged rows are the reference's.
    _same_walk_forward(resumed, walk_forward(stressed, config))
    assert first_difference(stressed, x) == changed_from
    assert np.array_equal(resumed.variance[:changed_from], reference.variance[:changed_from], equal_nan=True)


def test_garch_forecast_from_a_reference_equals_the_fresh_forecast(small_market) -> None:
    forecaster = GarchForecaster(GarchConfig(min_window=300, window_size=400, refit_every=50, residual_tails=4))
    _, reference = forecaster.reference(small_market)
    frame = small_market.bars.copy()
    n = len(small_market)
    for name in ("open", "high", "low", "close"):  # one pair moves from row n-300 on
        frame.loc[frame.index[n - 300]:, ("USDJPY", name)] *= 1.05
    stressed = replace(small_market, bars=frame, source="stressed")
    fresh, resumed = forecaster.forecast(stressed), forecaster.forecast_from(stressed, reference)
    assert np.array_equal(fresh.sigma, resumed.sigma, equal_nan=True)
    for key in ("nu", "mu", "fallback", "z_lo", "z_hi", "z_n"):
        assert np.array_equal(fresh.info[key], resumed.info[key], equal_nan=True), key
    assert (fresh.refits, fresh.fallbacks, fresh.info["rejects"]) == (resumed.refits, resumed.fallbacks,
                                                                      resumed.info["rejects"])
    # the other pair is untouched: its walk-forward is the reference's
    assert np.array_equal(resumed.sigma[:, 0], forecaster.forecast(small_market).sigma[:, 0], equal_nan=True)
