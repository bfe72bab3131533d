"""Run metrics: hand-computed values, naive-loop oracles, and empty / short / NaN inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from agents.evaluation import metrics as m

BPY = 6240.0  # hourly FX bars, 260 days x 24 h

finite_returns = arrays(np.float64, st.integers(1, 60),
                        elements=st.floats(-0.5, 0.5, allow_nan=False, allow_subnormal=False))


def equity_from(returns: np.ndarray, start: float = 100.0) -> np.ndarray:
    return start * np.r_[1.0, np.cumprod(1.0 + np.asarray(returns))]


def loop_max_drawdown(equity: np.ndarray) -> float:
    peak, worst = equity[0], 0.0
    for value in equity:
        peak = max(peak, value)
        worst = max(worst, (peak - value) / peak)
    return worst


def replicated_cvar(returns: np.ndarray, level: float, copies: int) -> float:
    """ES as the plain mean of the worst n*copies*(1-level) losses of each bar repeated ``copies`` times."""
    losses = sorted(np.repeat(-returns, copies), reverse=True)
    k = round(len(losses) * (1 - level))
    return sum(losses[:max(k, 1)]) / max(k, 1)


# --- bars per year -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("freq", "expected"), [("1h", 6240.0), ("15min", 24960.0), ("4h", 1560.0),
                                                ("B", 260.0), ("W", 365.25 / 7)])
def test_bars_per_year_from_median_spacing(freq, expected):
    index = pd.date_range("2024-01-01", periods=400, freq=freq, tz="UTC")
    if freq.endswith(("h", "min")):
        index = index[index.day_of_week < 5]  # weekend gaps must not matter

    assert m.bars_per_year(index.as_unit("ns").asi8) == pytest.approx(expected)


def test_bars_per_year_accepts_datetime64_and_custom_trading_days():
    stamps = np.arange("2024-01-01", "2024-01-05", dtype="datetime64[h]")

    assert m.bars_per_year(stamps) == pytest.approx(6240.0)
    assert m.bars_per_year(stamps, trading_days_per_year=252) == pytest.approx(252 * 24)


@pytest.mark.parametrize("stamps", [np.array([], dtype=np.int64), np.array([10**18])])
def test_bars_per_year_of_fewer_than_two_stamps_is_nan(stamps):
    assert math.isnan(m.bars_per_year(stamps))


def test_bars_per_year_rejects_unsorted_stamps():
    with pytest.raises(ValueError, match="strictly increasing"):
        m.bars_per_year(np.array([3, 2, 1], dtype=np.int64) * 3_600 * 10**9)


# --- returns and growth --------------------------------------------------------------------------------

def test_simple_returns_hand_values_and_wiped_out_bars():
    assert m.simple_returns([100.0, 110.0, 99.0]) == pytest.approx([0.1, -0.1])
    r = m.simple_returns([100.0, 0.0, 10.0])
    assert r[0] == -1.0 and math.isnan(r[1])
    assert m.simple_returns([100.0]).size == 0
    assert m.simple_returns([]).size == 0


@pytest.mark.parametrize("bad", [[0.0, 1.0], [-5.0, 1.0], [np.nan, 1.0]])
def test_non_positive_starting_equity_is_a_one_line_error(bad):
    with pytest.raises(ValueError, match=r"equity\[0\]") as err:
        m.total_return(bad)
    assert "\n" not in str(err.value)


def test_two_dimensional_input_is_rejected():
    with pytest.raises(ValueError, match="1-D"):
        m.sharpe_ratio(np.zeros((3, 2)), BPY)


def test_total_and_annualised_return_hand_values():
    equity = [100.0, 110.0, 121.0]

    assert m.total_return(equity) == pytest.approx(0.21)
    assert m.annualised_return(equity, bars_per_year=2.0) == pytest.approx(0.21)  # exactly one year
    assert m.annualised_return(equity, bars_per_year=1.0) == pytest.approx(0.1)  # two years at 10%
    assert m.annualised_return([100.0, 50.0, -3.0], 2.0) == -1.0
    assert m.total_return([100.0]) == 0.0
    assert math.isnan(m.annualised_return([100.0], 2.0))
    assert math.isnan(m.total_return([]))


def test_annualised_volatility_hand_value():
    assert m.annualised_volatility([0.01, -0.01], 252.0) == pytest.approx(math.sqrt(2e-4) * math.sqrt(252))
    assert math.isnan(m.annualised_volatility([0.01], 252.0))


@pytest.mark.parametrize("bpy", [0.0, -1.0, math.inf])
def test_bad_bars_per_year_is_an_error_but_nan_propagates(bpy):
    with pytest.raises(ValueError, match="bars_per_year"):
        m.sharpe_ratio([0.01, 0.02], bpy)
    assert math.isnan(m.sharpe_ratio([0.01, 0.02], math.nan))


# --- risk-adjusted ratios ------------------------------------------------------------------------------

def test_sharpe_ratio_hand_value():
    # mean 0.02, sample std 0.0141421 -> 1.41421 per bar
    assert m.sharpe_ratio([0.01, 0.03], 4.0) == pytest.approx(math.sqrt(2) * 2)


@pytest.mark.parametrize(("returns", "expected"), [
    ([], math.nan), ([0.01], math.nan), ([0.0, 0.0, 0.0], 0.0), ([0.01, 0.01], math.nan),
    ([0.01, math.nan, 0.02], math.nan), ([1e-200, 0.0], math.nan)])  # last: spread underflows when squared
def test_sharpe_ratio_undefined_cases(returns, expected):
    got = m.sharpe_ratio(returns, BPY)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


@settings(max_examples=60, deadline=None)
@given(finite_returns.filter(lambda r: r.size >= 2 and np.std(r) > 1e-9))
def test_sharpe_ratio_matches_a_naive_loop(returns):
    n = len(returns)
    mean = sum(returns) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in returns) / (n - 1))

    assert m.sharpe_ratio(returns, BPY) == pytest.approx(mean / std * math.sqrt(BPY), rel=1e-7, abs=1e-9)


def test_sortino_ratio_hand_value_and_edge_cases():
    r = [0.02, -0.01, 0.03, -0.02]  # mean 0.005; downside sqrt((1e-4 + 4e-4) / 4)
    assert m.sortino_ratio(r, 1.0) == pytest.approx(0.005 / math.sqrt(1.25e-4))
    assert m.sortino_ratio([0.02, 0.0, 0.01], 1.0, target=0.01) == pytest.approx(0.0)
    assert m.sortino_ratio([0.0, 0.0], BPY) == 0.0
    assert math.isnan(m.sortino_ratio([0.01, 0.02], BPY))  # no downside: unbounded
    assert math.isnan(m.sortino_ratio([0.01], BPY))


# --- drawdown, tail loss -------------------------------------------------------------------------------

def test_max_drawdown_hand_value():
    equity = [100.0, 120.0, 90.0, 130.0, 65.0, 70.0]  # 120 -> 90 is 25%, 130 -> 65 is 50%

    assert m.max_drawdown(equity) == pytest.approx(0.5)
    assert m.drawdown_series(equity) == pytest.approx([0, 0, 0.25, 0, 0.5, 1 - 70 / 130])


@pytest.mark.parametrize(("equity", "expected"), [([100.0, 101.0, 102.0], 0.0), ([100.0], 0.0), ([], math.nan),
                                                  ([100.0, math.nan, 90.0], math.nan), ([100.0, -20.0], 1.2)])
def test_max_drawdown_edge_cases(equity, expected):
    got = m.max_drawdown(equity)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


@settings(max_examples=80, deadline=None)
@given(finite_returns)
def test_max_drawdown_matches_a_naive_loop(returns):
    equity = equity_from(returns)

    assert m.max_drawdown(equity) == pytest.approx(loop_max_drawdown(equity), abs=1e-12)
    assert 0.0 <= m.max_drawdown(equity) <= 1.0


def test_cvar_hand_values():
    r100 = -np.arange(1, 101) / 1000.0  # losses 0.001 .. 0.100
    assert m.cvar(r100) == pytest.approx(np.mean([0.100, 0.099, 0.098, 0.097, 0.096]))
    assert m.cvar(r100[:20]) == pytest.approx(0.020)  # 20 bars at 95%: the single worst
    r30 = -np.arange(1, 31) / 1000.0  # tail of 1.5 bars: (0.030 + 0.5 * 0.029) / 1.5
    assert m.cvar(r30) == pytest.approx((0.030 + 0.5 * 0.029) / 1.5)
    assert m.cvar([0.01, 0.02]) == pytest.approx(-0.01)  # even the worst bar gains
    assert math.isnan(m.cvar([]))
    assert math.isnan(m.cvar([0.01, math.nan]))


@pytest.mark.parametrize("level", [0.0, 1.0, 95.0])
def test_cvar_rejects_a_bad_level(level):
    with pytest.raises(ValueError, match="level"):
        m.cvar([0.01, -0.02], level=level)


@settings(max_examples=60, deadline=None)
@given(finite_returns, st.sampled_from([(0.95, 20), (0.99, 100), (0.9, 10), (0.975, 40)]))
def test_cvar_matches_the_replicated_sample_oracle(returns, level_copies):
    level, copies = level_copies

    got = m.cvar(returns, level=level)

    assert got == pytest.approx(replicated_cvar(returns, level, copies), abs=1e-12)
    assert -returns.mean() - 1e-12 <= got <= -returns.min() + 1e-12


def test_worst_bar_is_the_signed_minimum():
    assert m.worst_bar([0.01, -0.03, 0.02]) == -0.03
    assert math.isnan(m.worst_bar([]))


# --- VaR exceptions and limit usage --------------------------------------------------------------------

def test_var_exceptions_count_strict_exceedances_and_skip_nan_bars():
    losses = [1.0, 3.0, 2.0, np.nan, 5.0]
    var = [2.0, 2.0, 2.0, 2.0, np.nan]

    assert m.var_exceptions(losses, var) == (1, pytest.approx(1 / 3))  # 2.0 == VaR is not an exception
    count, rate = m.var_exceptions([np.nan], [1.0])
    assert count == 0 and math.isnan(rate)


def test_var_exceptions_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one value per bar"):
        m.var_exceptions([1.0, 2.0], [1.0])


def test_time_over_limit():
    utilisation = [0.5, 1.0, 1.0 + 1e-12, 1.2, np.inf, np.nan]

    assert m.time_over_limit(utilisation) == pytest.approx(2 / 5)
    assert math.isnan(m.time_over_limit([]))


# --- summary -------------------------------------------------------------------------------------------

KEYS = ["n_bars", "initial_equity", "final_equity", "total_return", "annualised_return", "annualised_volatility",
        "sharpe_ratio", "sortino_ratio", "max_drawdown", "cvar", "worst_bar_return", "var_exceptions",
        "var_exception_rate", "time_over_limit", "var_breaches", "margin_calls", "stop_outs", "turnover",
        "costs_paid", "cost_bps_of_turnover"]


def test_summarise_agrees_with_the_single_metrics():
    rng = np.random.default_rng(3)
    returns = rng.normal(2e-4, 3e-3, 500)
    equity = equity_from(returns, 10_000.0)
    losses, var = -returns * 10_000.0, np.full(500, 60.0)
    flags = rng.random(500) < 0.02

    out = m.summarise(equity=equity, bars_per_year=BPY, turnover=np.full((500, 2), 1_000.0), costs=np.full(500, 0.1),
                      margin_calls=flags, stop_outs=np.zeros(500, bool), var_breaches=flags,
                      utilisation=np.where(flags, 1.5, 0.5), var_forecast=var, realised_loss=losses)

    assert list(out) == KEYS
    assert all(isinstance(v, float) for v in out.values())
    assert out["n_bars"] == 500 and out["initial_equity"] == 10_000.0
    assert out["sharpe_ratio"] == pytest.approx(m.sharpe_ratio(returns, BPY))
    assert out["max_drawdown"] == pytest.approx(m.max_drawdown(equity))
    assert out["cvar"] == pytest.approx(m.cvar(returns))
    assert out["annualised_return"] == pytest.approx(m.annualised_return(equity, BPY))
    assert out["var_exceptions"] == m.var_exceptions(losses, var)[0]
    assert out["margin_calls"] == out["var_breaches"] == flags.sum()
    assert out["time_over_limit"] == pytest.approx(flags.mean())
    assert out["stop_outs"] == 0.0
    assert out["turnover"] == 1_000_000.0 and out["costs_paid"] == pytest.approx(50.0)
    assert out["cost_bps_of_turnover"] == pytest.approx(0.5)


@pytest.mark.parametrize("equity", [[], [100.0], [100.0, 101.0]])
def test_summarise_empty_and_tiny_runs_do_not_crash(equity):
    n = max(len(equity) - 1, 0)

    out = m.summarise(equity=equity, bars_per_year=m.bars_per_year(np.arange(len(equity)) * 3_600 * 10**9),
                      turnover=np.zeros(n), costs=np.zeros(n), margin_calls=np.zeros(n, bool))

    assert list(out) == KEYS
    assert out["n_bars"] == n
    assert math.isnan(out["sharpe_ratio"]) and math.isnan(out["var_exceptions"])
    assert math.isnan(out["cost_bps_of_turnover"])  # nothing traded
    assert out["margin_calls"] == 0.0


def test_summarise_rejects_per_bar_arrays_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"len\(equity\) - 1") as err:
        m.summarise(equity=[100.0, 101.0, 102.0], bars_per_year=BPY, costs=np.zeros(3))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="shaped"):
        m.summarise(equity=[100.0, 101.0], bars_per_year=BPY, margin_calls=np.zeros((1, 2), bool))


def test_summarise_needs_var_forecast_and_realised_loss_together():
    with pytest.raises(ValueError, match="together"):
        m.summarise(equity=[100.0, 101.0], bars_per_year=BPY, var_forecast=[1.0])
