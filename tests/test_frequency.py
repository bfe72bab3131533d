"""Durations in trading time: one config means the same calendar time on hourly and daily bars."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from envs.config import DURATION_FIELDS, EnvConfig
from envs.data import prepare_env_data, volatility_forecaster
from envs.fx_env import FxRiskEnv
from simulator.data.close_only import ohlc_from_close
from simulator.common.errors import ConfigError
from simulator.data.frequency import bar_hours, check_duration, duration_hours, to_bars
from simulator.data.market import MarketData
from simulator.data.pairs import pair_spec
from simulator.data.spread_model import SpreadModel
from simulator.synthetic.generator import default_config, generate_market


@pytest.mark.parametrize(("text", "hours"), [("36h", 36.0), ("1D", 24.0), ("2W", 240.0), ("1M", 504.0),
                                             ("1Y", 6048.0), ("0.5D", 12.0)])
def test_duration_units_are_trading_time(text, hours) -> None:
    assert duration_hours(text) == hours


@pytest.mark.parametrize("bad", ["1d", "week", "-1D", "0D", "", "1 fortnight"])
def test_a_bad_duration_is_one_line_naming_the_key(bad) -> None:
    with pytest.raises(ConfigError, match="signal_lookback") as err:
        check_duration(bad, key="signal_lookback")
    assert "\n" not in str(err.value)


def test_to_bars_converts_durations_and_keeps_bars() -> None:
    assert to_bars("1D", 1.0) == 24 and to_bars("1D", 24.0) == 1
    assert to_bars("12h", 24.0) == 1  # never below the minimum
    assert to_bars(17, 24.0) == 17   # a number of bars is taken as it is


def test_bar_length_ignores_weekends_and_holidays() -> None:
    hourly = generate_market(default_config(("EURUSD",)), 500, rng=np.random.default_rng(0)).market
    daily = pd.bdate_range("2020-01-01", periods=300, tz="UTC")
    assert bar_hours(hourly.index) == 1.0
    assert bar_hours(daily) == 24.0
    weekly = pd.date_range("2020-01-03", periods=60, freq="7D", tz="UTC")
    assert bar_hours(weekly) == pytest.approx(120.0)  # five trading days


def _daily_from_hourly(market: MarketData) -> MarketData:
    """Close-only daily bars of the same span: the last hourly close of each UTC day."""
    close = market.bars[("EURUSD", "close")]
    daily = close.groupby(close.index.normalize()).last()
    daily.index.name = "time"
    bars = ohlc_from_close(daily)
    bars["spread"] = 1e-4
    return MarketData.from_frames({"EURUSD": bars}, [pair_spec("EURUSD")], source="daily of the hourly")


def test_hourly_and_daily_envs_of_one_span_look_back_over_the_same_calendar_time() -> None:
    # Arrange: two years of hourly bars and the daily bars of the same span
    hourly = generate_market(default_config(("EURUSD",)), 2 * 6200, rng=np.random.default_rng(1)).market
    daily = _daily_from_hourly(hourly)
    config = EnvConfig(vol_model="ewma", garch_window="1Y", garch_min_window="6M", var_window="6M",
                       min_estimation_bars=60, episode_bars="3M", signal_lookback="1W")
    # Act
    envs = {name: FxRiskEnv(market, config) for name, market in (("hourly", hourly), ("daily", daily))}
    # Assert: every duration covers the same trading time (to within one daily bar)
    h_hours = config.lookback_hours(envs["hourly"].data.bar_hours)
    d_hours = config.lookback_hours(envs["daily"].data.bar_hours)
    assert envs["hourly"].data.bar_hours == 1.0 and envs["daily"].data.bar_hours == 24.0
    for name in (*DURATION_FIELDS, "feature_halflives[1]"):
        assert abs(h_hours[name] - d_hours[name]) <= 24.0, name
    assert envs["hourly"].config.signal_lookback == 120 and envs["daily"].config.signal_lookback == 5
    assert envs["hourly"].config.episode_bars == 1512 and envs["daily"].config.episode_bars == 63
    # The GARCH settings come from the config, converted, not from code.
    garch = volatility_forecaster(replace(config.in_bars(24.0), vol_model="garch-t")).config
    assert (garch.window_size, garch.min_window, garch.refit_every) == (252, 126, 21)
    # Both build and step; the data says which bar length it used.
    for env in envs.values():
        env.reset(seed=0)
        env.step(env.action_space.sample())
        assert any("lookbacks in bars" in n for n in env.data.notes)


def test_estimation_windows_never_go_below_their_floor_on_coarse_bars() -> None:
    resolved = EnvConfig().in_bars(24.0)
    assert resolved.var_window == 250 and resolved.garch_window == 250 and resolved.garch_min_window == 250
    assert resolved.garch_refit_every == 21  # a cadence is not an estimation window
    explicit = EnvConfig(var_window=60).in_bars(24.0)
    assert explicit.var_window == 60  # bars given explicitly are taken as they are


def test_the_hourly_defaults_are_the_hourly_bars_they_replace() -> None:
    resolved = EnvConfig().in_bars(1.0)
    assert resolved.signal_lookback == 24
    assert resolved.feature_halflives == (12, 48)
    assert (resolved.garch_window, resolved.garch_refit_every, resolved.garch_min_window) == (3024, 504, 1008)


def test_missing_liquidity_gets_the_stated_depth_model_and_says_so() -> None:
    hourly = generate_market(default_config(("EURUSD",)), 2500, rng=np.random.default_rng(2)).market
    bare = hourly.select(["EURUSD"])
    bars = bare.bars.drop(columns=[("EURUSD", "liquidity")])
    bare = MarketData(bars=bars, pairs=bare.pairs, source="no depth")
    config = EnvConfig(vol_model="ewma", var_window=200, episode_bars=64)
    bis = prepare_env_data(bare, config)
    unlimited = prepare_env_data(bare, EnvConfig(vol_model="ewma", var_window=200, default_liquidity=float("inf")))
    assert np.isfinite(bis.liquidity).all() and (bis.liquidity > 1e9).all()
    assert any("BIS Triennial Survey 2022" in n for n in bis.notes)
    assert np.isinf(unlimited.liquidity).all()
    assert any("unlimited" in n for n in unlimited.notes)


def test_spread_model_applies_the_hour_profile_to_intraday_bars_only() -> None:
    model = SpreadModel(base_pips=1.0, vol_elasticity=0.0)
    hourly = pd.date_range("2024-01-01", periods=48, freq="1h", tz="UTC")
    daily = pd.bdate_range("2024-01-01", periods=48, tz="UTC")
    flat = np.full(48, 1.001), np.full(48, 1.0)
    assert np.ptp(model.spread_pips(hourly, *flat)) > 0.5   # rollover hours are wider
    np.testing.assert_allclose(model.spread_pips(daily, *flat), 1.0)
