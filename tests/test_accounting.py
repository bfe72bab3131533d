"""Accounting (house rule 8): equity = cash + Σ (units × mid + quote_cash) × conv; zero-cost round trips earn
Δprice × quantity in the quote currency, converted into the account currency; costs >= 0; average price,
leverage cap, margin level, margin call and stop-out.

Open positions keep their cash leg in the pair's quote currency (``quote_cash``); account cash moves only by
financing, commissions and realised P&L (a flat position's quote leg converted at that bar's rate).

Pure functions (``simulator.broker.account``, ``simulator.broker.engine``) under Hypothesis over random
values and random sequences of targets and bars, each against a hand-written oracle.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.broker.account import (
    AccountConfig,
    cap_gross_leverage,
    equity,
    exposure,
    margin_level,
    quote_to_account,
    used_margin,
)
from simulator.broker.engine import BarData, step_accounts, update_average_price
from simulator.broker.execution import ExecutionConfig

SETTINGS = settings(max_examples=40, deadline=None)
ZERO_COST = ExecutionConfig(commission_per_million=0.0, slippage_bps=0.0, impact_coefficient=0.0,
                            max_participation=1.0, spread_multiplier=1.0)

# --------------------------------------------------------------------------- strategies

prices = st.floats(0.3, 250.0)
convs = st.floats(0.004, 2.0)
# signed sizes (base units) with no subnormal dust: 0 or 1e-3 <= |x| <= 1e8
signed = st.one_of(st.just(0.0), st.floats(1e-3, 1e8), st.floats(-1e8, -1e-3))
quantities = st.one_of(st.floats(1e-3, 1e7), st.floats(-1e7, -1e-3))


def arrays(draw, strategy, shape):
    n = int(np.prod(shape))
    return np.array(draw(st.lists(strategy, min_size=n, max_size=n)), dtype=float).reshape(shape)


@st.composite
def book(draw):
    """(cash (batch,), units, mid, conv, quote_cash (batch, pair)); quote legs only on open positions."""
    batch, pairs = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    cash = arrays(draw, st.floats(-1e7, 1e8), (batch,))
    units = arrays(draw, signed, (batch, pairs))
    quote = np.where(units != 0, arrays(draw, st.floats(-3e10, 3e10), (batch, pairs)), 0.0)
    return cash, units, arrays(draw, prices, (batch, pairs)), arrays(draw, convs, (batch, pairs)), quote


def random_bar(draw, close_now, conv_now, *, jump: float = 0.05):
    """A bar following ``close_now``: moves up to ``jump``, random spreads, depth, vols, rates."""
    shape = close_now.shape
    open_next = close_now * np.exp(arrays(draw, st.floats(-jump, jump), shape))
    close_next = open_next * np.exp(arrays(draw, st.floats(-jump, jump), shape))
    return BarData(
        close_now=close_now,
        open_next=open_next,
        close_next=close_next,
        spread_next=open_next * arrays(draw, st.floats(0.0, 1e-3), shape),
        liquidity_next=arrays(draw, st.one_of(st.just(math.inf), st.floats(1e3, 1e9)), shape),
        sigma=arrays(draw, st.one_of(st.just(math.nan), st.floats(0.0, 0.02)), shape),
        conv=conv_now,
        conv_next=conv_now * np.exp(arrays(draw, st.floats(-0.01, 0.01), shape)),
        differential=arrays(draw, st.floats(-0.1, 0.1), shape[-1:]),
        days=arrays(draw, st.sampled_from([0.0, 1 / 24, 49 / 24, 3.0]), shape[:1]),
    )


# --------------------------------------------------------------------------- equity and margin


@SETTINGS
@given(book())
def test_equity_is_cash_plus_mark_to_market(state):
    cash, units, mid, conv, quote = state
    eq = equity(cash, units, mid, conv, quote)
    # rounding of sums of terms up to ~1e11 (a quote leg nearly cancelling its position)
    scale = np.abs(cash) + np.sum(np.abs(units * mid * conv) + np.abs(quote * conv), axis=-1) + 1.0
    for i in range(len(cash)):
        # each pair: position and its quote-currency cash leg, valued in the quote currency, then translated
        mtm = sum((units[i, j] * mid[i, j] + quote[i, j]) * conv[i, j] for j in range(units.shape[1]))
        assert eq[i] == pytest.approx(cash[i] + mtm, rel=1e-12, abs=1e-12 * scale[i])
    # without quote legs (the default): cash plus the signed exposures
    bare = equity(cash, units, mid, conv)
    np.testing.assert_allclose(exposure(units, mid, conv).sum(axis=-1), bare - cash, rtol=1e-12, atol=1e-6)
    # the quote legs add their translated value, nothing else
    np.testing.assert_allclose(eq - bare, np.sum(quote * conv, axis=-1), rtol=0, atol=1e-12 * scale.max())


@SETTINGS
@given(book(), st.floats(1.0, 500.0))
def test_used_margin_and_margin_level(state, leverage):
    cash, units, mid, conv, quote = state
    margin = used_margin(units, mid, conv, 1.0 / leverage)
    eq = equity(cash, units, mid, conv, quote)
    level = margin_level(eq, margin)
    for i in range(len(cash)):
        gross = sum(abs(units[i, j] * mid[i, j] * conv[i, j]) for j in range(units.shape[1]))
        assert margin[i] == pytest.approx(gross / leverage, rel=1e-12)
        if gross == 0:
            assert level[i] == math.inf  # no position: no margin call, ever
        else:
            assert level[i] == pytest.approx(eq[i] / margin[i], rel=1e-12)


@SETTINGS
@given(book(), st.floats(1.0, 100.0), st.one_of(st.just(0.0), st.floats(-1e6, -1e-3), st.floats(1e-3, 1e7)))
def test_cap_gross_leverage_caps_gross_notional_along_the_same_direction(state, leverage, equity_value):
    _, target, mid, conv, _ = state
    eq = np.full(len(target), equity_value)
    capped = cap_gross_leverage(target, mid, conv, eq, leverage)
    gross_before = np.abs(target * mid * conv).sum(axis=-1)
    gross_after = np.abs(capped * mid * conv).sum(axis=-1)
    limit = leverage * max(equity_value, 0.0)
    for i in range(len(target)):
        assert gross_after[i] <= max(limit, 0.0) * (1 + 1e-12) + 1e-9
        if gross_before[i] <= limit:
            np.testing.assert_array_equal(capped[i], target[i])  # within the limit: untouched
        else:
            assert gross_after[i] == pytest.approx(limit, rel=1e-9, abs=1e-9)  # scaled to the limit exactly
        # one common factor in [0, 1]: the direction and the mix of pairs are kept
        nz = target[i] != 0
        if nz.any():
            ratio = capped[i][nz] / target[i][nz]
            assert np.allclose(ratio, ratio[0], rtol=1e-12, atol=0)
            assert 0 <= ratio[0] <= 1


def test_account_config_validates():
    for kwargs in ({"currency": "usd"}, {"initial_equity": 0.0}, {"max_leverage": 0.0},
                   {"stop_out_level": 1.5, "margin_call_level": 1.0}, {"stop_out_level": 0.0}):
        with pytest.raises(ValueError):
            AccountConfig(**kwargs)
    assert AccountConfig(max_leverage=20.0).margin_rate == pytest.approx(0.05)


def test_quote_to_account_converts_each_quote_currency(two_pair_market):
    conv = quote_to_account(two_pair_market, "USD")
    close = two_pair_market.field_array("close")
    np.testing.assert_array_equal(conv[:, 0], 1.0)               # EURUSD: quote is USD
    np.testing.assert_allclose(conv[:, 1], 1.0 / close[:, 1])    # USDJPY: JPY → USD at 1 / USDJPY


# --------------------------------------------------------------------------- average price


def average_price_oracle(u: float, avg: float, f: float, p: float) -> float:
    """Average entry price after filling ``f`` at ``p`` on a position ``u`` bought at ``avg``."""
    new = u + f
    if new == 0:
        return math.nan            # flat: no entry price
    if f == 0:
        return avg                 # nothing traded
    if u == 0:
        return p                   # opened
    if (u > 0) == (f > 0):
        return (u * avg + f * p) / new   # added: quantity-weighted
    if (new > 0) == (u > 0):
        return avg                 # reduced: the remaining units keep their entry price
    return p                       # flipped: the new position was opened at this fill


sizes = st.one_of(st.sampled_from([0.0, 1e5, -1e5, 2e5, -2e5, 5e4, -5e4]), signed)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(sizes, sizes, prices, prices), min_size=1, max_size=8))
def test_update_average_price_against_oracle(rows):
    units = np.array([r[0] for r in rows])
    avg = np.array([math.nan if r[0] == 0 else r[2] for r in rows])
    filled = np.array([r[1] for r in rows])
    price = np.array([math.nan if r[1] == 0 else r[3] for r in rows])
    out = update_average_price(units, avg, filled, price)
    for k in range(len(rows)):
        expected = average_price_oracle(units[k], avg[k], filled[k], price[k])
        if math.isnan(expected):
            assert math.isnan(out[k])
        else:
            assert out[k] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("units", "avg", "filled", "price", "expected"), [
    (0.0, math.nan, 100.0, 1.10, 1.10),        # open
    (100.0, 1.10, 100.0, 1.20, 1.15),          # add
    (100.0, 1.10, -40.0, 1.30, 1.10),          # reduce: keep
    (100.0, 1.10, -100.0, 1.30, math.nan),     # close
    (100.0, 1.10, -150.0, 1.30, 1.30),         # flip to short 50 at the fill
    (-100.0, 1.10, -300.0, 1.30, 1.25),        # add to a short
    (-100.0, 1.10, 0.0, math.nan, 1.10),       # nothing traded
])
def test_update_average_price_cases(units, avg, filled, price, expected):
    out = update_average_price(np.array([units]), np.array([avg]), np.array([filled]), np.array([price]))[0]
    assert (math.isnan(out) and math.isnan(expected)) or out == pytest.approx(expected)


# --------------------------------------------------------------------------- step_accounts


@st.composite
def step_sequence(draw):
    batch, pairs = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n_steps = draw(st.integers(1, 6))
    close = arrays(draw, prices, (batch, pairs))
    conv = arrays(draw, convs, (batch, pairs))
    bars, fractions = [], []
    for _ in range(n_steps):
        bar = random_bar(draw, close, conv)
        bars.append(bar)
        fractions.append(arrays(draw, st.one_of(st.just(0.0), st.floats(1e-6, 1.5), st.floats(-1.5, -1e-6)),
                                (batch, pairs)))
        close, conv = bar.close_next, bar.conv_next
    account = AccountConfig(max_leverage=draw(st.sampled_from([1.0, 10.0, 30.0, 100.0])))
    execution = draw(st.one_of(st.just(ZERO_COST), st.builds(
        ExecutionConfig, commission_per_million=st.floats(0, 50), slippage_bps=st.floats(0, 2),
        impact_coefficient=st.floats(0, 1), max_participation=st.floats(0.01, 1.0))))
    markup = draw(st.floats(0.0, 0.02))
    uncapped = draw(st.booleans())
    return bars, fractions, account, execution, markup, uncapped


@settings(max_examples=50, deadline=None)
@given(step_sequence())
def test_step_accounts_keeps_every_accounting_identity(case):
    bars, fractions, account, execution, markup, uncapped = case
    batch, pairs = bars[0].close_now.shape
    cash = np.full(batch, account.initial_equity)
    units = np.zeros((batch, pairs))
    avg = np.full((batch, pairs), np.nan)
    quote = np.zeros((batch, pairs))
    for bar, frac in zip(bars, fractions):
        eq_now = equity(cash, units, bar.close_now, bar.conv, quote)
        # the agent's request: a fraction of the maximum leverage per pair (up to 1.5×: the cap must bite)
        target = frac * account.max_leverage * np.maximum(eq_now, 0)[:, None] / (bar.close_now * bar.conv)
        res = step_accounts(cash, units, avg, target, bar, account, execution, markup, quote_cash=quote,
                            reductions_uncapped=uncapped)
        scale = (account.initial_equity + np.abs(res.units * bar.close_next * bar.conv_next).sum(axis=-1)
                 + np.abs(units * bar.close_now * bar.conv).sum(axis=-1)
                 + np.abs(quote * bar.conv).sum(axis=-1) + np.abs(res.quote_cash * bar.conv_next).sum(axis=-1))
        tol = 1e-9 * scale

        # equity before = cash + (position + quote leg) × rate at the last close
        mark_before = np.sum((units * bar.close_now + quote) * bar.conv, axis=-1)
        np.testing.assert_allclose(res.equity_before, cash + mark_before, rtol=0, atol=tol.max())
        np.testing.assert_allclose(res.equity_before, eq_now, rtol=0, atol=tol.max())
        # equity after = cash + (position + quote leg) × rate at close_next (conv_next), every step
        mark = np.sum((res.units * bar.close_next + res.quote_cash) * bar.conv_next, axis=-1)
        np.testing.assert_allclose(res.equity, res.cash + mark, rtol=0, atol=tol.max())
        # a flat position has no quote leg left: it was realised into account cash
        assert (res.quote_cash[res.units == 0] == 0).all()

        # cash bookkeeping, by hand: the fill moves the quote leg by −filled × price (not account cash);
        # cash pays financing and commissions, and receives the quote leg of every position the step
        # closed, converted at the rate of that trade (the fill's bar; the stop-out's close)
        held = units + res.fill.filled
        assert (res.fill.filled == 0).all() or np.isfinite(res.fill.price[res.fill.filled != 0]).all()
        leg = quote - res.fill.filled * np.nan_to_num(res.fill.price)
        np.testing.assert_allclose(leg, quote + res.fill.quote_delta, rtol=1e-12, atol=1e-6)
        expected_cash = (cash + res.carry.sum(-1) - res.financing_cost.sum(-1) - res.fill.commission.sum(-1)
                         + np.sum(np.where(held == 0, leg * bar.conv, 0.0), axis=-1))
        leg = np.where(held == 0, 0.0, leg)
        if res.liquidation is not None:
            liq = res.liquidation
            np.testing.assert_array_equal(liq.filled[~res.stopped_out], 0.0)
            held = held + liq.filled
            leg = leg - liq.filled * np.nan_to_num(liq.price)
            expected_cash = (expected_cash - liq.commission.sum(-1)
                             + np.sum(np.where(held == 0, leg * bar.conv_next, 0.0), axis=-1))
            leg = np.where(held == 0, 0.0, leg)
        np.testing.assert_array_equal(res.units, held)
        np.testing.assert_allclose(res.quote_cash, leg, rtol=0, atol=1e-6 * (1 + np.abs(leg)).max())
        np.testing.assert_allclose(res.cash, expected_cash, rtol=0, atol=tol.max())
        # no position was closed (one opened and stopped out in the same step counts) → cash moved only
        # by financing and commissions
        closed = ((units != 0) | (res.fill.filled != 0)) & (res.units == 0)
        quiet = ~closed.any(axis=-1)
        liq_commission = 0.0 if res.liquidation is None else res.liquidation.commission.sum(-1)
        np.testing.assert_allclose(
            res.cash[quiet], (cash + res.carry.sum(-1) - res.financing_cost.sum(-1) - res.fill.commission.sum(-1)
                              - liq_commission)[quiet], rtol=0, atol=tol.max())

        # P&L attribution: price moves on what was held (in the quote currency, at the rate of the bar)
        # + translation of the open quote legs from the fill's rate to the mark's + carry − every cost
        open_leg = np.where(units + res.fill.filled == 0, 0.0, quote + res.fill.quote_delta)
        moved = (np.sum(units * (bar.open_next - bar.close_now) * bar.conv, axis=-1)
                 + np.sum((units + res.fill.filled) * (bar.close_next * bar.conv_next - bar.open_next * bar.conv),
                          axis=-1)
                 + np.sum(open_leg * (bar.conv_next - bar.conv), axis=-1))
        np.testing.assert_allclose(res.equity - res.equity_before,
                                   moved + res.carry.sum(-1) - res.costs, rtol=0, atol=tol.max())
        # costs >= 0, and all zero when nothing traded and nothing was held
        fills = [res.fill] + ([] if res.liquidation is None else [res.liquidation])
        for f in fills:
            for name in ("spread_cost", "impact_cost", "slippage_cost", "commission"):
                assert (getattr(f, name) >= 0).all(), name
        assert (res.financing_cost >= 0).all() and (res.costs >= 0).all()
        idle = (units == 0).all(axis=-1) & (res.fill.filled == 0).all(axis=-1)
        assert (res.costs[idle] == 0).all()
        # fills: within the participation cap unless an uncapped reduction
        cap = execution.max_participation * bar.liquidity_next
        over = np.abs(res.fill.filled) > cap * (1 + 1e-12)
        if over.any():
            assert uncapped
            assert (np.abs(units + res.fill.filled)[over] < np.abs(units)[over]).all()
        # margin level, margin call, stop-out
        assert (res.margin_call == (res.margin_level < account.margin_call_level)).all()
        assert (res.units[res.stopped_out] == 0).all()
        assert (res.quote_cash[res.stopped_out] == 0).all()
        np.testing.assert_allclose(res.equity[res.stopped_out], res.cash[res.stopped_out], rtol=0, atol=tol.max())
        live = ~res.stopped_out
        assert (res.margin_level[live] >= account.stop_out_level).all()
        assert np.isfinite(res.equity).all() and np.isfinite(res.cash).all() and np.isfinite(res.quote_cash).all()
        cash, units, avg, quote = res.cash, res.units, res.avg_price, res.quote_cash
        assert (np.isnan(avg) == (units == 0)).all()


# --------------------------------------------------------------------------- round trips


def one_bar(open_next: float, close_next: float, *, close_now: float, conv: float = 1.0, conv_next: float | None = None,
            spread: float = 0.0, liquidity: float = math.inf, differential: float = 0.0, days: float = 1 / 24
            ) -> BarData:
    def a(x: float) -> np.ndarray:
        return np.array([[x]])

    return BarData(close_now=a(close_now), open_next=a(open_next), close_next=a(close_next), spread_next=a(spread),
                   liquidity_next=a(liquidity), sigma=a(0.01), conv=a(conv),
                   conv_next=a(conv if conv_next is None else conv_next), differential=np.array([differential]),
                   days=np.array([days]))


def round_trip(q: float, prices: tuple[float, float, float, float], convs: tuple[float, float, float], *,
               execution: ExecutionConfig = ZERO_COST, markup: float = 0.0, spread: float = 0.0,
               differential: float = 0.0, cash: float = 1e10):
    """Buy q at the open p0 (step 1), hold (step 2), sell at the later open p1 (step 3); returns final cash.

    ``prices`` = (p0, close after the buy, p1, close after the sale); ``convs`` = quote → account
    rate at each decision bar (the fills use the rate of their decision bar; see the engine).
    The account state — cash, units, average price and the quote-currency cash leg — is carried
    from step to step as the environment does.
    """
    p0, c1, p1, c2 = prices
    k0, k1, k2 = convs
    account = AccountConfig(initial_equity=cash, max_leverage=1e6)
    units, avg, cash_arr = np.zeros((1, 1)), np.full((1, 1), np.nan), np.array([cash])
    quote = np.zeros((1, 1))
    steps = [
        (q, one_bar(p0, c1, close_now=p0, conv=k0, conv_next=k1, spread=spread, differential=differential)),
        (q, one_bar(c1, c1, close_now=c1, conv=k1, conv_next=k1, spread=spread, differential=differential)),
        (0.0, one_bar(p1, c2, close_now=c1, conv=k1, conv_next=k2, spread=spread, differential=differential)),
    ]
    results = []
    for target, bar in steps:
        res = step_accounts(cash_arr, units, avg, np.array([[target]]), bar, account, execution, markup,
                            quote_cash=quote)
        cash_arr, units, avg, quote = res.cash, res.units, res.avg_price, res.quote_cash
        results.append(res)
    assert units[0, 0] == 0
    assert quote[0, 0] == 0  # closed: the quote leg was realised into account cash
    assert results[-1].equity[0] == float(cash_arr[0])
    return float(cash_arr[0]), results


@SETTINGS
@given(q=quantities, p0=prices, p1=prices, mid=prices)
def test_zero_cost_round_trip_earns_price_change_times_quantity(q, p0, p1, mid):
    # Arrange: quote currency = account currency (conv = 1), no costs, no financing
    cash0 = 1e10
    # Act
    cash, results = round_trip(q, (p0, mid, p1, mid), (1.0, 1.0, 1.0), cash=cash0)
    # Assert (to the rounding of a 1e10 cash balance)
    assert cash - cash0 == pytest.approx(q * (p1 - p0), rel=1e-9, abs=1e-4)
    for res in results:
        assert res.costs[0] == 0
        assert res.carry[0, 0] == 0
    # while open, the purchase sits in the quote leg and account cash is untouched (nothing realised)
    for res in results[:2]:
        assert res.cash[0] == cash0
        assert res.quote_cash[0, 0] == pytest.approx(-q * p0, rel=1e-12)
        assert res.equity[0] == pytest.approx(cash0 + q * (mid - p0), rel=1e-12, abs=1e-4)


@SETTINGS
@given(q=quantities, p0=prices, p1=prices, mid=prices, conv=convs)
def test_zero_cost_round_trip_translates_pnl_at_a_constant_rate(q, p0, p1, mid, conv):
    """Quote ≠ account currency at a constant rate: the quote P&L q × (p1 − p0) times the rate."""
    cash, _ = round_trip(q, (p0, mid, p1, mid), (conv, conv, conv))
    assert cash - 1e10 == pytest.approx(q * (p1 - p0) * conv, rel=1e-9, abs=1e-4)


@SETTINGS
@given(q=quantities, p0=prices, c1=prices, p1=prices, k0=convs, k1=convs, k2=convs)
def test_zero_cost_round_trip_converts_the_quote_pnl_at_the_rate_of_the_sale(q, p0, c1, p1, k0, k1, k2):
    """A moving rate translates the quote-currency P&L, never the notional: q × (p1 − p0) × k1.

    k1 is the rate of the sale's decision bar (the fill's rate); the purchase's rate k0 and the
    rate after the sale k2 do not matter. While open, equity is the open quote P&L at today's rate.
    """
    cash0 = 1e10
    cash, results = round_trip(q, (p0, c1, p1, c1), (k0, k1, k2), cash=cash0)
    assert cash - cash0 == pytest.approx(q * (p1 - p0) * k1, rel=1e-9, abs=1e-4)
    for res in results[:2]:  # held, marked at c1 with rate k1
        assert res.cash[0] == cash0
        assert res.equity[0] - cash0 == pytest.approx(q * (c1 - p0) * k1, rel=1e-9, abs=1e-4)


def test_round_trip_pnl_in_quote_currency_is_translated_not_the_notional():
    # Arrange: long 1,000,000 USDJPY in a USD account, bought at 150; USDJPY closes at 160 and the
    # position is sold at 160; conv = 1 / USDJPY at every bar
    q, p0, p1 = 1e6, 150.0, 160.0
    # Act
    cash, results = round_trip(q, (p0, p1, p1, p1), (1 / p0, 1 / p1, 1 / p1))
    # Assert: 10 JPY × 1e6 = 10,000,000 JPY = 62,500 USD at 160 (translating the notional would give 0)
    assert cash - 1e10 == pytest.approx(62_500.0, rel=1e-9)
    assert cash - 1e10 == pytest.approx(q * (p1 - p0) / p1, rel=1e-9)
    # already in equity while open: marked at 160, before the sale
    assert results[0].quote_cash[0, 0] == pytest.approx(-150e6, rel=1e-12)
    assert results[0].equity[0] - 1e10 == pytest.approx(62_500.0, rel=1e-9)
    assert results[0].cash[0] == 1e10


@SETTINGS
@given(q=st.floats(1e3, 1e7), p0=prices, spread_frac=st.floats(1e-5, 1e-3), conv=st.one_of(st.just(1.0), convs))
def test_round_trip_at_unchanged_price_loses_exactly_the_costs(q, p0, spread_frac, conv):
    execution = ExecutionConfig(commission_per_million=20.0, slippage_bps=0.1, impact_coefficient=0.0)
    cash, results = round_trip(q, (p0, p0, p0, p0), (conv, conv, conv), execution=execution, markup=0.01,
                               spread=spread_frac * p0, cash=1e8)
    costs = sum(float(r.costs[0]) for r in results)
    assert costs > 0
    assert 1e8 - cash == pytest.approx(costs, rel=1e-9, abs=1e-7)
    # the spread is paid once across the round trip: half on the way in, half on the way out
    spread_paid = sum(float(r.fill.spread_cost[0, 0]) for r in results)
    assert spread_paid == pytest.approx(q * spread_frac * p0 * conv, rel=1e-9)


def test_financing_in_step_long_positive_differential_earns_short_pays():
    account = AccountConfig()
    bar = one_bar(1.1, 1.1, close_now=1.1, differential=0.03, days=1.0)
    for sign in (1.0, -1.0):
        # equity 1e6 with the position held: its cash leg sits in the quote currency
        cash, quote = np.array([1e6]), np.array([[-sign * 1.1e6]])
        res = step_accounts(cash, np.array([[sign * 1e6]]), np.array([[1.1]]), np.array([[sign * 1e6]]),
                            bar, account, ZERO_COST, 0.01, quote_cash=quote)
        expected_carry = sign * 1e6 * 1.1 * 0.03 / 365
        expected_cost = 1e6 * 1.1 * 0.01 / 365
        assert res.equity_before[0] == pytest.approx(1e6)
        assert res.carry[0, 0] == pytest.approx(expected_carry)
        assert res.financing_cost[0, 0] == pytest.approx(expected_cost)
        assert res.fill.filled[0, 0] == 0
        # financing is paid in account cash; the quote leg is untouched
        assert res.cash[0] == pytest.approx(1e6 + expected_carry - expected_cost, rel=1e-12)
        assert res.quote_cash[0, 0] == quote[0, 0]
        assert res.equity[0] - res.equity_before[0] == pytest.approx(expected_carry - expected_cost)


# --------------------------------------------------------------------------- margin call and stop-out


@SETTINGS
@given(drop=st.floats(0.0, 0.5), leverage=st.sampled_from([10.0, 30.0, 50.0]))
def test_stop_out_and_margin_call_follow_the_margin_level(drop, leverage):
    # Arrange: fully levered long bought at 1.0; the bar closes `drop` lower
    account = AccountConfig(initial_equity=1e6, max_leverage=leverage)
    q = leverage * 1e6
    bar = one_bar(1.0, 1.0 - drop, close_now=1.0)
    # Act
    res = step_accounts(np.array([1e6]), np.zeros((1, 1)), np.full((1, 1), np.nan), np.array([[q]]), bar, account,
                        ZERO_COST, 0.0)
    # Assert: the oracle's margin level before any stop-out
    eq = 1e6 - q * drop
    level = eq / (q * (1.0 - drop) / leverage) if drop < 1 else -math.inf
    assert (res.margin_call == (res.margin_level < account.margin_call_level)).all()
    if abs(level - account.stop_out_level) < 1e-9:
        return  # on the boundary rounding decides
    assert bool(res.stopped_out[0]) == (level < account.stop_out_level)
    if res.stopped_out[0]:
        assert res.units[0, 0] == 0
        assert res.liquidation is not None and res.liquidation.filled[0, 0] == -q
        assert res.equity[0] == pytest.approx(eq, rel=1e-9, abs=1e-3)  # zero-cost close at the mark
        assert res.quote_cash[0, 0] == 0 and res.cash[0] == res.equity[0]  # the loss is realised
    else:
        assert res.units[0, 0] == q
        assert res.quote_cash[0, 0] == -q * 1.0 and res.cash[0] == 1e6  # bought at 1.0, nothing realised
        assert res.margin_level[0] == pytest.approx(level, rel=1e-9)
        if abs(level - account.margin_call_level) > 1e-9:
            assert bool(res.margin_call[0]) == (level < account.margin_call_level)


def test_a_loss_large_enough_stops_the_account_out():
    account = AccountConfig(initial_equity=1e6, max_leverage=30.0)
    bar = one_bar(1.10, 1.10 * 0.97, close_now=1.10, spread=1e-4, liquidity=1e8)
    units = np.array([[20e6]])
    res = step_accounts(np.array([1e6]), units, np.array([[1.10]]), units, bar, account, ExecutionConfig(), 0.01,
                        quote_cash=np.array([[-20e6 * 1.10]]))
    assert res.equity_before[0] == pytest.approx(1e6)
    assert res.stopped_out[0]
    assert (res.units == 0).all()
    assert np.isnan(res.avg_price).all()
    assert res.liquidation is not None and res.liquidation.total_cost.sum() > 0  # the close-out pays costs
    assert res.costs[0] >= res.liquidation.total_cost.sum()
    # everything realised: no quote leg left, equity is cash; the loss is the 3% move plus every cost
    assert (res.quote_cash == 0).all()
    assert res.equity[0] == res.cash[0]
    assert res.equity[0] == pytest.approx(1e6 - 20e6 * 1.10 * 0.03 + res.carry.sum() - res.costs[0], rel=1e-9)


def test_margin_call_without_stop_out():
    account = AccountConfig(initial_equity=1e6, max_leverage=30.0)
    bar = one_bar(1.0, 0.99, close_now=1.0)  # 30× long loses 30% of equity: level ≈ 0.71
    units = np.array([[30e6]])
    res = step_accounts(np.array([1e6]), units, np.array([[1.0]]), units, bar, account, ZERO_COST, 0.0,
                        quote_cash=np.array([[-30e6]]))
    assert not res.stopped_out[0]
    assert res.margin_call[0]
    assert res.equity[0] == pytest.approx(0.7e6)
    assert res.margin_level[0] == pytest.approx(0.7e6 / (30e6 * 0.99 / 30))
    assert res.units[0, 0] == 30e6
    assert res.cash[0] == 1e6 and res.quote_cash[0, 0] == -30e6  # the loss is unrealised
