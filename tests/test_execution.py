"""Execution and financing: fills at bid/ask, costs >= 0, partial fills, square-root impact, swaps.

Pure functions (``simulator.broker.execution``, ``simulator.broker.financing``) under Hypothesis over
random orders and bars, each property checked against a naive per-element oracle.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.broker.execution import ExecutionConfig, execute, fill_caps
from simulator.broker.financing import FinancingConfig, financing, holding_days, rate_differentials
from tests.conftest import make_bars

SETTINGS = settings(max_examples=40, deadline=None)
COST_FIELDS = ("spread_cost", "impact_cost", "slippage_cost", "commission")

# --------------------------------------------------------------------------- strategies

prices = st.floats(0.3, 250.0)
convs = st.floats(0.004, 2.0)
orders = st.one_of(st.just(0.0), st.floats(-1e8, 1e8), st.floats(-10.0, 10.0))
liquidities = st.one_of(st.just(math.inf), st.just(0.0), st.floats(1.0, 1e10))
sigmas = st.one_of(st.just(math.nan), st.floats(0.0, 0.05))
configs = st.builds(
    ExecutionConfig,
    commission_per_million=st.floats(0.0, 100.0),
    slippage_bps=st.floats(0.0, 5.0),
    impact_coefficient=st.floats(0.0, 2.0),
    max_participation=st.floats(1e-3, 1.0),
    spread_multiplier=st.floats(0.1, 10.0),
)


@st.composite
def order_case(draw, max_pairs: int = 3):
    """(order, mid, spread, liquidity, sigma, conv) arrays shaped (batch, pair)."""
    batch = draw(st.integers(1, 3))
    pairs = draw(st.integers(1, max_pairs))
    shape = (batch, pairs)

    def arr(strategy):
        return np.array(draw(st.lists(strategy, min_size=batch * pairs, max_size=batch * pairs))).reshape(shape)

    mid = arr(prices)
    spread = mid * arr(st.floats(0.0, 0.01))
    return arr(orders), mid, spread, arr(liquidities), arr(sigmas), arr(convs)


# --------------------------------------------------------------------------- fills


@SETTINGS
@given(order_case(), configs)
def test_fill_matches_naive_oracle(case, config):
    # Arrange
    order, mid, spread, liquidity, sigma, conv = case
    # Act
    fill = execute(order, mid, spread, liquidity, sigma, conv, config)
    # Assert: one element at a time, written out by hand
    for idx in np.ndindex(order.shape):
        cap = config.max_participation * liquidity[idx]
        filled = max(-cap, min(order[idx], cap))
        size = abs(filled)
        part = size / liquidity[idx] if math.isfinite(liquidity[idx]) and liquidity[idx] > 0 else 0.0
        vol = sigma[idx] if math.isfinite(sigma[idx]) else 0.0
        impact = config.impact_coefficient * vol * math.sqrt(part)
        half = 0.5 * spread[idx] * config.spread_multiplier
        slip = config.slippage_bps * 1e-4
        price = mid[idx] + math.copysign(1.0, filled) * (half + mid[idx] * (impact + slip)) if filled else math.nan
        notional = size * mid[idx] * conv[idx]
        assert fill.filled[idx] == pytest.approx(filled, rel=1e-12, abs=0)
        assert fill.unfilled[idx] == pytest.approx(order[idx] - filled, rel=1e-12, abs=1e-9)
        if filled:
            assert fill.price[idx] == pytest.approx(price, rel=1e-12)
            # the quote-currency cash leg pays (buy) or receives (sell) the fill price
            assert fill.quote_delta[idx] == pytest.approx(-filled * price, rel=1e-12)
        else:
            assert math.isnan(fill.price[idx])
            assert fill.quote_delta[idx] == 0
        assert fill.spread_cost[idx] == pytest.approx(size * half * conv[idx], rel=1e-12, abs=1e-12)
        assert fill.impact_cost[idx] == pytest.approx(notional * impact, rel=1e-12, abs=1e-12)
        assert fill.slippage_cost[idx] == pytest.approx(notional * slip, rel=1e-12, abs=1e-12)
        assert fill.commission[idx] == pytest.approx(notional * config.commission_per_million * 1e-6,
                                                     rel=1e-12, abs=1e-12)


@SETTINGS
@given(order_case(), configs)
def test_every_cost_is_non_negative(case, config):
    order, mid, spread, liquidity, sigma, conv = case
    fill = execute(order, mid, spread, liquidity, sigma, conv, config)
    for name in COST_FIELDS:
        assert (getattr(fill, name) >= 0).all(), name
    assert (fill.total_cost >= 0).all()


@SETTINGS
@given(order_case(), configs)
def test_nothing_traded_costs_nothing(case, config):
    _, mid, spread, liquidity, sigma, conv = case
    zero = np.zeros_like(mid)
    fill = execute(zero, mid, spread, liquidity, sigma, conv, config)
    for name in (*COST_FIELDS, "filled", "unfilled", "quote_delta", "cash_delta"):
        assert (getattr(fill, name) == 0).all(), name
    assert np.isnan(fill.price).all()


@SETTINGS
@given(order_case(), configs)
def test_buys_fill_at_or_above_ask_and_sells_at_or_below_bid(case, config):
    order, mid, spread, liquidity, sigma, conv = case
    fill = execute(order, mid, spread, liquidity, sigma, conv, config)
    half = 0.5 * spread * config.spread_multiplier
    buy, sell = fill.filled > 0, fill.filled < 0
    tol = 1e-12 * mid
    assert (fill.price[buy] >= (mid + half)[buy] - tol[buy]).all()
    assert (fill.price[sell] <= (mid - half)[sell] + tol[sell]).all()


@SETTINGS
@given(order_case(), configs)
def test_cash_delta_is_mid_value_minus_every_cost(case, config):
    """What the trader pays beyond mid is exactly the reported costs (nothing hidden, nothing lost).

    ``quote_delta`` (quote currency, what the engine books on the position's cash leg) is −filled × price;
    ``cash_delta`` is its account-currency value at the fill's rate, commission included.
    """
    order, mid, spread, liquidity, sigma, conv = case
    fill = execute(order, mid, spread, liquidity, sigma, conv, config)
    expected = -fill.filled * mid * conv - fill.total_cost
    scale = np.abs(fill.filled * mid * conv) + 1.0
    np.testing.assert_allclose(fill.cash_delta, expected, rtol=0, atol=1e-9 * scale.max())
    np.testing.assert_allclose(fill.cash_delta, -fill.filled * np.nan_to_num(fill.price) * conv - fill.commission,
                               rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(fill.quote_delta, -fill.filled * np.nan_to_num(fill.price), rtol=1e-12, atol=0)
    np.testing.assert_allclose(fill.cash_delta, fill.quote_delta * conv - fill.commission, rtol=1e-12, atol=1e-9)
    # in the quote currency: the leg pays mid value plus the price costs (spread, impact, slippage) / rate
    price_costs = fill.spread_cost + fill.impact_cost + fill.slippage_cost
    np.testing.assert_allclose(fill.quote_delta * conv, -fill.filled * mid * conv - price_costs, rtol=0,
                               atol=1e-9 * scale.max())


@SETTINGS
@given(order_case(), configs)
def test_partial_fills_never_exceed_participation_cap(case, config):
    order, mid, spread, liquidity, sigma, conv = case
    fill = execute(order, mid, spread, liquidity, sigma, conv, config)
    cap = config.max_participation * liquidity
    assert (np.abs(fill.filled) <= cap * (1 + 1e-12)).all()
    # same direction as the order, never more than asked, and the rest is reported as unfilled
    assert (fill.filled * order >= 0).all()
    assert (np.abs(fill.filled) <= np.abs(order)).all()
    np.testing.assert_array_equal(fill.unfilled, order - fill.filled)
    np.testing.assert_allclose(fill.filled + fill.unfilled, order, rtol=1e-15, atol=0)  # to the last bit or so
    # an order within the cap fills whole
    small = np.abs(order) <= cap
    np.testing.assert_array_equal(fill.filled[small], order[small])


@SETTINGS
@given(units=st.lists(st.floats(-1e7, 1e7), min_size=1, max_size=4), data=st.data(),
       participation=st.floats(1e-3, 1.0), liquidity=st.floats(1.0, 1e9))
def test_fill_caps_cap_everything_but_uncapped_reductions(units, data, participation, liquidity):
    units = np.array(units)
    target = np.array(data.draw(st.lists(st.floats(-1e7, 1e7), min_size=len(units), max_size=len(units))))
    config = ExecutionConfig(max_participation=participation)
    liq = np.full_like(units, liquidity)
    capped = fill_caps(units, target, liq, config)
    uncapped = fill_caps(units, target, liq, config, reductions_uncapped=True)
    np.testing.assert_array_equal(capped, participation * liq)
    for u, tgt, c in zip(units, target, uncapped):
        if abs(tgt) < abs(u):  # shrinks the position: fills whole (a forced de-risking)
            assert c == math.inf
        else:  # adds to or flips into a position at least as large: capped
            assert c == participation * liquidity


def test_uncapped_reduction_fills_whole_but_still_pays_impact():
    # Arrange: a long of 1e6 in a market with 1e5 liquidity per bar; cut it to 1e5
    config = ExecutionConfig(max_participation=0.1, impact_coefficient=0.5)
    units, target = np.array([1e6]), np.array([1e5])
    liquidity, mid, sigma = np.array([1e5]), np.array([1.1]), np.array([0.01])
    cap = fill_caps(units, target, liquidity, config, reductions_uncapped=True)
    # Act
    fill = execute(target - units, mid, np.array([1e-4]), liquidity, sigma, np.ones(1), config, cap=cap)
    # Assert
    assert fill.filled[0] == -9e5
    assert fill.unfilled[0] == 0
    expected_impact = 0.5 * 0.01 * math.sqrt(9e5 / 1e5)
    assert fill.impact_cost[0] == pytest.approx(9e5 * 1.1 * expected_impact)


@SETTINGS
@given(mid=prices, liquidity=st.floats(1e5, 1e10), sigma=st.floats(1e-4, 0.05),
       sizes=st.lists(st.floats(1.0, 1e9), min_size=2, max_size=2, unique=True))
def test_square_root_impact_grows_with_size(mid, liquidity, sigma, sizes):
    config = ExecutionConfig(max_participation=1.0, commission_per_million=0, slippage_bps=0)
    small, large = sorted(sizes)
    fill = execute(np.array([small, large]), np.full(2, mid), np.zeros(2), np.full(2, liquidity), np.full(2, sigma),
                   np.ones(2), config)
    per_unit = fill.impact_cost / np.abs(fill.filled)
    assert per_unit[1] >= per_unit[0] * (1 - 1e-12)
    assert fill.price[1] >= fill.price[0] * (1 - 1e-15)
    # doubling size multiplies the impact cost by 2^1.5 (square root law: cost ~ q^{3/2})
    twice = execute(np.array([small, 2 * small]), np.full(2, mid), np.zeros(2), np.full(2, 1e12),
                    np.full(2, sigma), np.ones(2), config)
    if twice.impact_cost[0] > 0:
        assert twice.impact_cost[1] / twice.impact_cost[0] == pytest.approx(2 ** 1.5, rel=1e-9)


def test_unknown_liquidity_means_full_fill_and_no_impact():
    config = ExecutionConfig(impact_coefficient=1.0)
    fill = execute(np.array([[5e9, -5e9]]), np.array([[1.1, 150.0]]), np.array([[1e-4, 1e-2]]),
                   np.full((1, 2), math.inf), np.array([[0.01, 0.01]]), np.array([[1.0, 1 / 150]]), config)
    np.testing.assert_array_equal(fill.filled, [[5e9, -5e9]])
    np.testing.assert_array_equal(fill.impact_cost, 0.0)
    assert (fill.spread_cost > 0).all()


def test_nan_sigma_means_no_impact_estimate():
    config = ExecutionConfig(impact_coefficient=1.0, max_participation=1.0)
    fill = execute(np.array([1e6]), np.array([1.1]), np.array([1e-4]), np.array([1e6]), np.array([np.nan]),
                   np.ones(1), config)
    assert fill.impact_cost[0] == 0
    assert np.isfinite(fill.price).all()


@pytest.mark.parametrize("kwargs", [
    {"commission_per_million": -1.0}, {"slippage_bps": -0.1}, {"impact_coefficient": -1.0},
    {"max_participation": 0.0}, {"max_participation": 1.5}, {"spread_multiplier": 0.0},
])
def test_execution_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ExecutionConfig(**kwargs)


# --------------------------------------------------------------------------- financing


@SETTINGS
@given(notional=st.floats(1.0, 1e9), differential=st.floats(1e-4, 0.3), markup=st.floats(0.0, 0.05),
       days=st.floats(1e-3, 10.0))
def test_long_earns_and_short_pays_a_positive_differential(notional, differential, markup, days):
    exposure = np.array([notional, -notional])
    carry, cost = financing(exposure, np.full(2, differential), markup, days)
    assert carry[0] > 0  # long the high-yielding base currency earns
    assert carry[1] < 0  # short it pays
    assert carry[0] == pytest.approx(notional * differential * days / 365.0, rel=1e-12)
    assert carry[1] == pytest.approx(-carry[0], rel=1e-12)
    # the markup is a cost on both sides, the same size, never income
    assert (cost >= 0).all()
    np.testing.assert_allclose(cost, notional * markup * days / 365.0, rtol=1e-12)


@SETTINGS
@given(exposure=st.lists(st.floats(-1e9, 1e9), min_size=1, max_size=6), data=st.data(),
       markup=st.floats(0.0, 0.05))
def test_financing_matches_oracle_with_per_account_days(exposure, data, markup):
    # Arrange: (batch, pair) exposures and a (batch,) vector of holding days
    pairs = data.draw(st.integers(1, 3))
    exposure = np.resize(np.array(exposure), (len(exposure), pairs))
    differential = np.array(data.draw(st.lists(st.floats(-0.3, 0.3), min_size=pairs, max_size=pairs)))
    days = np.array(data.draw(st.lists(st.floats(0.0, 4.0), min_size=len(exposure), max_size=len(exposure))))
    # Act
    carry, cost = financing(exposure, differential, markup, days)
    # Assert
    for i, j in np.ndindex(exposure.shape):
        assert carry[i, j] == pytest.approx(exposure[i, j] * differential[j] * days[i] / 365.0, rel=1e-12, abs=1e-12)
        assert cost[i, j] == pytest.approx(abs(exposure[i, j]) * markup * days[i] / 365.0, rel=1e-12, abs=1e-12)
    assert (cost >= 0).all()


def test_no_position_or_no_time_costs_nothing():
    carry, cost = financing(np.zeros((2, 3)), np.array([0.02, -0.03, 0.0]), 0.01, np.array([1.0, 3.0]))
    assert (carry == 0).all() and (cost == 0).all()
    carry, cost = financing(np.array([[1e6, -1e6]]), np.array([0.02, -0.03]), 0.01, np.zeros(1))
    assert (carry == 0).all() and (cost == 0).all()


def test_rate_differentials_are_base_minus_quote(two_pair_market):
    config = FinancingConfig(rates={"EUR": 0.02, "USD": 0.045, "JPY": 0.001}, markup=0.01)
    np.testing.assert_allclose(rate_differentials(two_pair_market, config), [0.02 - 0.045, 0.045 - 0.001])


def test_financing_config_validates():
    with pytest.raises(ValueError, match="markup"):
        FinancingConfig(markup=-0.01)
    with pytest.raises(ValueError, match="no interest rate for XYZ"):
        FinancingConfig(rates={"USD": 0.04}).rate("XYZ")


def test_holding_days_counts_calendar_time_and_the_weekend():
    from simulator.data.market import MarketData
    from simulator.data.pairs import pair_spec

    # Friday 20:00, 21:00 then Sunday 22:00 UTC: the weekend bar holds 49 hours
    bars = make_bars(3)
    bars.index = bars.index.__class__(["2024-01-05 20:00", "2024-01-05 21:00", "2024-01-07 22:00"], tz="UTC",
                                      name="time")
    market = MarketData.from_frames({"EURUSD": bars}, [pair_spec("EURUSD")], source="test")
    days = holding_days(market)
    np.testing.assert_allclose(days, [1 / 24, 49 / 24, 49 / 24])
