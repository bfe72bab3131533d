"""Causal features: no lookahead, NaN warm-up (never back-filled), `ta` parity, oracles."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from ta.momentum import RSIIndicator
from ta.volatility import AverageTrueRange, BollingerBands

from forecasters.features import (
    FeatureConfig,
    FeatureSet,
    Standardisation,
    causal_standardise,
    compute_features,
    log_scale,
)
from simulator.data.market import MarketData
from simulator.synthetic.generator import default_config, generate_market
from tests.conftest import change_future

N_BARS = 1_500
DEFAULT_NAMES = (
    "log_return", "abs_return", "hl_range", "gk_var", "ewma_vol_12", "ewma_vol_48", "atr_14", "rsi_14",
    "bb_width_20", "hour_sin", "hour_cos", "log_spread_pips", "log_liquidity",
)


@pytest.fixture(scope="module")
def market() -> MarketData:
    config = default_config(("EURUSD", "USDJPY"))
    return generate_market(config, N_BARS, rng=np.random.default_rng(11)).market


@pytest.fixture(scope="module")
def features(market: MarketData) -> FeatureSet:
    return compute_features(market)




def test_names_and_shape(market: MarketData, features: FeatureSet) -> None:
    assert features.names == DEFAULT_NAMES
    assert features.values.shape == (N_BARS, 2, len(DEFAULT_NAMES))
    assert features.values.dtype == np.float64
    assert features.symbols == market.symbols
    assert features.index.equals(market.index)
    assert features["atr_14"].shape == (N_BARS, 2)
    with pytest.raises(KeyError, match="not in this set"):
        features["nope"]


def test_liquidity_only_when_present(two_pair_market: MarketData) -> None:
    fs = compute_features(two_pair_market)
    assert "log_liquidity" not in fs.names
    assert "log_spread_pips" in fs.names


def test_group_selection_and_windows(market: MarketData) -> None:
    config = FeatureConfig(groups=("ewma_vol", "atr", "hour"), ewma_halflives=(6.0,), atr_window=5)
    fs = compute_features(market, config)
    assert fs.names == ("ewma_vol_6", "atr_5", "hour_sin", "hour_cos")


@pytest.mark.parametrize("bad", [dict(groups=("rsi", "bogus")), dict(groups=()), dict(atr_window=1),
                                 dict(ewma_halflives=(0.0,)), dict(bollinger_dev=-1.0)])
def test_config_validation(bad: dict) -> None:
    with pytest.raises(ValueError):
        FeatureConfig(**bad)


@pytest.mark.parametrize("t", [10, 60, 700, N_BARS - 2])
def test_no_lookahead(market: MarketData, features: FeatureSet, t: int) -> None:
    changed = compute_features(change_future(market, t))
    np.testing.assert_array_equal(changed.values[: t + 1], features.values[: t + 1])
    # Sanity: the change did reach the features after t.
    assert not np.array_equal(changed.values[t + 1:], features.values[t + 1:], equal_nan=True)


def test_warm_up_is_nan_not_back_filled(features: FeatureSet) -> None:
    first_valid = {"log_return": 1, "abs_return": 1, "hl_range": 0, "gk_var": 0, "ewma_vol_12": 12,
                   "ewma_vol_48": 48, "atr_14": 13, "rsi_14": 14, "bb_width_20": 19, "hour_sin": 0,
                   "log_spread_pips": 0, "log_liquidity": 0}
    for name, k in first_valid.items():
        x = features[name]
        assert np.isnan(x[:k]).all(), name
        assert np.isfinite(x[k:]).all(), name
    assert features.first_valid() == 48


def test_short_market_is_all_warm_up(market: MarketData) -> None:
    short = market.slice(None, market.index[10])  # 10 bars: shorter than every window
    fs = compute_features(short)
    for name in ("atr_14", "rsi_14", "bb_width_20", "ewma_vol_12"):
        assert np.isnan(fs[name]).all(), name


@pytest.mark.parametrize("prefix", [25, 400])
def test_ta_indicators_match_direct_ta_on_prefix(market: MarketData, features: FeatureSet, prefix: int) -> None:
    for j, s in enumerate(market.symbols):
        bars = market.pair(s).iloc[:prefix]
        h, lo, c = bars["high"], bars["low"], bars["close"]
        atr = AverageTrueRange(h, lo, c, window=14, fillna=False).average_true_range().to_numpy() / c.to_numpy()
        rsi = (RSIIndicator(c, window=14, fillna=False).rsi().to_numpy() - 50.0) / 50.0
        bbw = BollingerBands(c, window=20, window_dev=2, fillna=False).bollinger_wband().to_numpy() / 100.0
        for name, direct in (("atr_14", atr), ("rsi_14", rsi), ("bb_width_20", bbw)):
            ours = features[name][:prefix, j]
            mask = np.isfinite(ours)
            assert mask[-1], name
            np.testing.assert_array_equal(ours[mask], direct[mask], err_msg=name)


def test_bar_features_against_a_loop(market: MarketData, features: FeatureSet) -> None:
    j = 1
    bars = market.pair(market.symbols[j]).to_numpy()
    o, h, lo, c = bars[:, 0], bars[:, 1], bars[:, 2], bars[:, 3]
    ewma = None
    lam = 0.5 ** (1.0 / 12.0)
    for t in range(1, 200):
        r = math.log(c[t] / c[t - 1])
        gk = 0.5 * math.log(h[t] / lo[t]) ** 2 - (2 * math.log(2) - 1) * math.log(c[t] / o[t]) ** 2
        ewma = r * r if ewma is None else lam * ewma + (1 - lam) * r * r
        assert features["log_return"][t, j] == pytest.approx(r, rel=1e-12)
        assert features["abs_return"][t, j] == pytest.approx(abs(r), rel=1e-12)
        assert features["hl_range"][t, j] == pytest.approx(math.log(h[t] / lo[t]), rel=1e-12)
        assert features["gk_var"][t, j] == pytest.approx(gk, rel=1e-9, abs=1e-18)
        if t >= 12:
            assert features["ewma_vol_12"][t, j] == pytest.approx(math.sqrt(ewma), rel=1e-9)
    spread_pips = bars[:, 4] / market.pairs[j].pip_size
    np.testing.assert_allclose(features["log_spread_pips"][:, j], np.log(spread_pips), rtol=1e-12)


def test_hour_features(market: MarketData, features: FeatureSet) -> None:
    hours = market.index.hour.to_numpy()
    np.testing.assert_allclose(features["hour_sin"][:, 0], np.sin(2 * np.pi * hours / 24), atol=1e-12)
    np.testing.assert_allclose(features["hour_sin"] ** 2 + features["hour_cos"] ** 2, 1.0, atol=1e-12)


def test_log_scale(features: FeatureSet) -> None:
    logged = log_scale(features)
    assert "log_gk_var" in logged.names and "log_hl_range" in logged.names and "rsi_14" in logged.names
    k = features.names.index("ewma_vol_48")
    np.testing.assert_array_equal(np.isnan(logged.values[:, :, k]), np.isnan(features.values[:, :, k]))
    np.testing.assert_allclose(logged.values[60:, :, k], np.log(features.values[60:, :, k]))
    assert np.isfinite(logged.values[features.first_valid():]).all()


# -- standardisation --------------------------------------------------------------------

def test_fixed_standardisation_uses_only_the_fitting_span() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (500, 2, 3))
    x[:5, 0, 0] = np.nan
    z = causal_standardise(x, fit_end=300)
    changed = x.copy()
    changed[300:] *= 50.0
    np.testing.assert_array_equal(causal_standardise(changed, fit_end=300)[:300], z[:300])
    head = x[:300, 1, 2]
    np.testing.assert_allclose(z[:, 1, 2], (x[:, 1, 2] - head.mean()) / head.std(), rtol=1e-12)
    assert np.isnan(z[:5, 0, 0]).all()
    stats = Standardisation.fit(x, 300)
    again = Standardisation.from_dict(stats.to_dict())
    np.testing.assert_array_equal(again.apply(x), z)


def test_expanding_standardisation_against_a_loop_and_no_lookahead() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0.5, 3.0, (300, 2))
    x[7, 1] = np.nan
    z = causal_standardise(x, min_periods=20)
    assert np.isnan(z[:19]).all()
    for t in (19, 50, 299):
        for j in range(2):
            seen = x[: t + 1, j]
            seen = seen[np.isfinite(seen)]
            if seen.size < 20:  # column 1 lost row 7: still warming up at t = 19
                assert np.isnan(z[t, j])
                continue
            assert z[t, j] == pytest.approx((x[t, j] - seen.mean()) / seen.std(), rel=1e-9)
    changed = x.copy()
    changed[120:] += 100.0
    np.testing.assert_array_equal(causal_standardise(changed, min_periods=20)[:120], z[:120])


def test_constant_column_is_only_centred() -> None:
    x = np.ones((50, 1, 2))
    x[:, 0, 1] = np.arange(50.0)
    z = causal_standardise(x, fit_end=40)
    np.testing.assert_array_equal(z[:, 0, 0], 0.0)
    assert np.isfinite(causal_standardise(x, min_periods=5)[5:]).all()


def test_feature_set_validates_shape() -> None:
    with pytest.raises(ValueError):
        FeatureSet(values=np.zeros((3, 1, 2)), names=("a",))
    with pytest.raises(ValueError):
        FeatureSet(values=np.zeros((3, 1, 2)), names=("a", "b"), index=pd.DatetimeIndex([], tz="UTC"))


@pytest.mark.parametrize("window", [2, 14, 50])
def test_compiled_atr_equals_ta_bit_for_bit(window: int) -> None:
    from forecasters.features import average_true_range

    rng = np.random.default_rng(window)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 0.004, 3000)))
    high = close * (1 + np.abs(rng.normal(0, 0.002, 3000)))
    low = close * (1 - np.abs(rng.normal(0, 0.002, 3000)))
    high[1500:1510] = np.nan  # a gap propagates as in ta
    expected = AverageTrueRange(pd.Series(high), pd.Series(low), pd.Series(close), window=window,
                                fillna=False).average_true_range().to_numpy(np.float64)
    got = average_true_range(high, low, close, window)
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.isfinite(got[window:1500]).all()
