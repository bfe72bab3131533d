"""The synthetic generator: reproducible, schema-valid, and with the stylised facts it claims."""

from __future__ import annotations

from dataclasses import replace
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import kendalltau

from simulator.common.errors import ConfigError
from simulator.synthetic.generator import (
    JumpConfig,
    PairProcess,
    RegimeConfig,
    SyntheticConfig,
    default_config,
    garch_variance_loop,
    garch_variance_path,
    generate_market,
    linear_recursion,
    simulate_regimes,
    trading_calendar,
)

G10 = resources.files("simulator").joinpath("data/synthetic_g10.yaml")


@pytest.fixture(scope="module")
def g10():
    config = SyntheticConfig.from_yaml(str(G10))
    return generate_market(config, 40_000, rng=np.random.default_rng(7))


def test_same_seed_same_data_and_different_seed_different_data() -> None:
    config = default_config(("EURUSD", "USDJPY"), correlation=[[1, 0.3], [0.3, 1]])
    a = generate_market(config, 2_000, rng=np.random.default_rng(11))
    b = generate_market(config, 2_000, rng=np.random.default_rng(11))
    c = generate_market(config, 2_000, rng=np.random.default_rng(12))
    pd.testing.assert_frame_equal(a.market.bars, b.market.bars)
    np.testing.assert_array_equal(a.regime, b.regime)
    assert not np.allclose(a.market.field_array("close"), c.market.field_array("close"))


def test_calendar_skips_weekends_and_opens_sunday_22_utc() -> None:
    index = trading_calendar("2020-01-05 22:00", 300)
    assert index.tz is not None and str(index.tz) == "UTC"
    assert index.is_monotonic_increasing and index.is_unique
    assert not ((index.day_of_week == 5).any())  # no Saturday bars
    steps = np.diff(index.asi8) / 3.6e12
    assert set(np.unique(steps)) == {1.0, 49.0}  # Fri 21:00 → Sun 22:00
    assert index[120] == pd.Timestamp("2020-01-12 22:00", tz="UTC")


def test_weekend_gap_opens_away_from_last_close_and_bars_are_continuous_otherwise(g10) -> None:
    bars = g10.market.pair("EURUSD")
    prev_close = bars["close"].shift(1)
    jump = (bars["open"] / prev_close - 1).abs()
    week_open = np.r_[False, np.diff(bars.index.asi8) > 3.6e12]
    assert (jump[~week_open].iloc[1:] < 1e-12).all()
    assert (jump[week_open] > 0).mean() > 0.99
    assert jump[week_open].median() > 3 * np.abs(np.log(bars["close"]).diff()).median()


def test_correlation_matches_the_config(g10) -> None:
    # Kendall's tau mapped to a linear correlation (sin(pi tau / 2)): robust to the jumps'
    # heavy tails, which make a Pearson estimate noisy.
    rets = g10.market.log_returns()[1:]
    n = rets.shape[1]
    corr = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            tau = kendalltau(rets[:, i], rets[:, j]).statistic
            corr[i, j] = corr[j, i] = np.sin(np.pi * tau / 2)
    target = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, -0.2], [-0.3, -0.2, 1.0]])
    np.testing.assert_allclose(corr, target, atol=0.08)


def test_annualised_volatility_matches_target_on_a_long_run() -> None:
    config = default_config(("EURUSD",))
    market = generate_market(config, 120_000, rng=np.random.default_rng(3)).market
    assert market.summary().loc["EURUSD", "ann_vol_pct"] == pytest.approx(7.5, rel=0.10)


def test_intraday_seasonality_of_volatility_and_spread(g10) -> None:
    bars = g10.market.pair("EURUSD")
    hour = bars.index.hour
    abs_ret = np.abs(np.log(bars["close"]).diff())
    assert abs_ret[hour == 14].mean() > 1.8 * abs_ret[hour == 3].mean()
    spread = bars["spread"]
    assert spread[hour == 21].median() > 2.0 * spread[hour == 10].median()
    liq = bars["liquidity"]
    assert liq[hour == 13].median() > 2.0 * liq[hour == 21].median()


def test_turbulent_regime_is_more_volatile_costlier_and_thinner(g10) -> None:
    bars = g10.market.pair("EURUSD")
    turb = g10.regime == 1
    assert 0.02 < turb.mean() < 0.3
    abs_ret = np.abs(np.log(bars["close"]).diff()).to_numpy()
    assert np.nanmean(abs_ret[turb]) > 1.8 * np.nanmean(abs_ret[~turb])
    assert bars["spread"][turb].median() > 1.5 * bars["spread"][~turb].median()
    assert bars["liquidity"][turb].median() < 0.5 * bars["liquidity"][~turb].median()


def test_jumps_are_large_moves(g10) -> None:
    bars = g10.market.pair("EURUSD")
    jumps = g10.jumps
    assert jumps.sum() >= 5
    z = np.abs(np.log(bars["close"]).diff().to_numpy()) / g10.conditional_vol[:, 0]
    assert np.nanmedian(z[jumps]) > 2.0 * np.nanmedian(z[~jumps])


def test_regime_chain_has_the_configured_stationary_share() -> None:
    config = RegimeConfig(calm_to_turbulent=0.01, turbulent_to_calm=0.04)
    states = simulate_regimes(400_000, config, np.random.default_rng(5))
    assert states.mean() == pytest.approx(0.2, abs=0.03)
    switches = np.flatnonzero(np.diff(states) != 0)
    assert len(switches) > 100


@settings(max_examples=60, deadline=None)
@given(
    intercept=arrays(np.float64, st.integers(1, 400), elements=st.floats(0.0, 2.0)),
    data=st.data(),
    x0=st.floats(0.0, 10.0),
)
def test_vectorised_linear_recursion_matches_the_naive_loop(intercept, data, x0) -> None:
    coef = data.draw(arrays(np.float64, intercept.shape, elements=st.floats(0.6, 3.0)))
    fast = linear_recursion(intercept, coef, x0, chunk=16)
    slow = [x0]
    for a, c in zip(intercept, coef):
        slow.append(a + c * slow[-1])
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-12)


def test_garch_variance_path_matches_loop_oracle() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_t(5, 50_000) * np.sqrt(3 / 5)
    jumps = np.where(rng.random(50_000) < 0.002, rng.normal(0, 5, 50_000), 0.0)
    np.testing.assert_allclose(garch_variance_path(z, jumps, 0.02, 0.05, 0.93),
                               garch_variance_loop(z, jumps, 0.02, 0.05, 0.93), rtol=1e-10)


def test_ohlc_consistency_and_positive_costs(g10) -> None:
    arr = g10.market.to_array(["open", "high", "low", "close", "spread", "liquidity"])
    o, h, lo, c, s, liq = (arr[..., i] for i in range(6))
    assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all()
    assert (s > 0).all() and (liq > 0).all()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: replace(SyntheticConfig(), correlation=((1.0, 0.5), (0.5, 1.0))), "correlation must be 1x1"),
        (lambda: replace(SyntheticConfig(), student_t_dof=2.0), "student_t_dof"),
        (lambda: replace(SyntheticConfig(), start="2020-01-06 22:00"), "Sunday"),
        (lambda: replace(SyntheticConfig(), bar_minutes=7), "bar_minutes"),
        (lambda: PairProcess(garch_alpha=0.2, garch_beta=0.85), "alpha \\+ beta < 1"),
        (lambda: JumpConfig(per_year=-1), "per_year"),
        (lambda: default_config(("EURUSD", "GBPUSD"), correlation=[[1, 1.2], [1.2, 1]]), "correlation"),
    ],
)
def test_invalid_configs_are_rejected(build, message) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_yaml_config_unknown_key_names_file_and_key(tmp_path) -> None:
    path = tmp_path / "gen.yaml"
    path.write_text("pairs:\n  - {symbol: EURUSD, anual_vol: 0.1}\n")
    with pytest.raises(ConfigError) as err:
        SyntheticConfig.from_yaml(path)
    assert str(path) in str(err.value) and "pairs[0].anual_vol" in str(err.value)
    path.write_text("student_t_dof: 1.5\n")
    with pytest.raises(ConfigError, match="student_t_dof"):
        SyntheticConfig.from_yaml(path)
