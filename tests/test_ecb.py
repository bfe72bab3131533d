"""The ECB reference-rate source: pairs and crosses, the gap rule, conversion rates, causality, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.broker.account import quote_to_account
from simulator.data.ecb import available_currencies, conversion_symbols, ecb_rates, load_ecb
from simulator.common.errors import DataError


def test_four_majors_from_1999_with_more_than_6000_daily_bars() -> None:
    # Act
    market = load_ecb(["EURUSD", "USDJPY", "GBPUSD", "EURCHF"])
    # Assert
    assert market.symbols == ("EURUSD", "USDJPY", "GBPUSD", "EURCHF")
    assert market.index[0] == pd.Timestamp("1999-01-04", tz="UTC")
    assert len(market) > 6000
    assert 240 < market.bars_per_year() < 270  # TARGET business days
    assert any("reference rate, not a traded close" in n for n in market.notes)


def test_crosses_are_computed_through_eur_from_the_raw_fixes() -> None:
    # Arrange
    rates = ecb_rates()
    # Act
    market = load_ecb(["USDJPY", "EURGBP"], start="2010-01-01", end="2010-12-31", account_currency=None)
    # Assert
    day = pd.Timestamp("2010-06-15", tz="UTC")
    assert market.bars.loc[day, ("USDJPY", "close")] == pytest.approx(rates.loc[day, "JPY"] / rates.loc[day, "USD"],
                                                                      rel=1e-15)
    assert market.bars.loc[day, ("EURGBP", "close")] == pytest.approx(rates.loc[day, "GBP"], rel=1e-15)


def test_close_only_ohlc_convention_and_modelled_costs() -> None:
    # Act
    market = load_ecb(["EURUSD"], start="2015-01-01", end="2015-12-31")
    bars = market.pair("EURUSD")
    # Assert: open is the previous fix, the range is the close-to-close move, spread and depth are set
    np.testing.assert_array_equal(bars["open"].to_numpy()[1:], bars["close"].to_numpy()[:-1])
    np.testing.assert_array_equal(bars["high"], np.maximum(bars["open"], bars["close"]))
    np.testing.assert_array_equal(bars["low"], np.minimum(bars["open"], bars["close"]))
    pips = market.spread_pips()[:, 0]
    assert 0.3 < np.median(pips) < 2.0  # about the 1-pip retail EURUSD spread in spreads.yaml
    assert (bars["liquidity"] > 1e10).all()  # BIS 2022 EURUSD turnover, spread over a day
    assert any("BIS Triennial Survey 2022" in n for n in market.notes)


def test_infinite_depth_keeps_the_liquidity_field_out_and_says_so() -> None:
    market = load_ecb(["EURUSD"], start="2015-01-01", end="2015-03-31", depth="infinite")
    assert "liquidity" not in market.fields
    assert any("infinite depth" in n for n in market.notes)


def test_account_conversion_pairs_are_added_for_a_cross() -> None:
    # Act
    market = load_ecb(["EURCHF"], start="2014-01-01", end="2016-12-31", account_currency="USD")
    # Assert
    assert conversion_symbols(["EURCHF"], "USD") == ["USDCHF"]
    assert market.conversion is not None and list(market.conversion.columns) == ["USDCHF"]
    conv = quote_to_account(market, "USD")[:, 0]
    rates = ecb_rates().loc[market.index]
    np.testing.assert_allclose(conv, rates["USD"] / rates["CHF"], rtol=1e-12)  # USD per CHF
    assert market.symbols == ("EURCHF",)  # conversion rates are not traded
    # A slice keeps them on the same clock.
    part = market.slice("2015-01-01", "2015-02-01")
    assert part.conversion.index.equals(part.index)


def test_a_currency_that_starts_later_moves_the_start_and_says_so() -> None:
    # CNY fixes start in 2005 (N/A before).
    market = load_ecb(["USDCNY"], start="2004-01-01", end="2006-12-31")
    assert market.index[0].year == 2005
    assert any("start moved" in n and "USDCNY" in n for n in market.notes)


def test_a_gap_longer_than_the_fill_limit_is_one_line_naming_the_currency() -> None:
    # ISK: no fixes from December 2008 to 2018.
    with pytest.raises(DataError) as err:
        load_ecb(["EURISK"], start="2008-01-01", end="2019-12-31")
    message = str(err.value)
    assert "\n" not in message and "EURISK" in message and "consecutive missing" in message


def test_unknown_currency_lists_what_is_available() -> None:
    with pytest.raises(DataError) as err:
        load_ecb(["EURXYZ"])
    message = str(err.value)
    assert "XYZ" in message and "available:" in message and "JPY" in message
    assert len(available_currencies()) >= 40


@pytest.mark.parametrize(("start", "end", "pattern"), [
    ("2010-01-01", "2009-01-01", "before start"),
    ("2040-01-01", None, "outside the ECB history"),
    ("not a date", None, "cannot parse start"),
])
def test_bad_spans_are_one_clear_line(start, end, pattern) -> None:
    with pytest.raises(DataError, match=pattern) as err:
        load_ecb(["EURUSD"], start=start, end=end)
    assert "\n" not in str(err.value)


def test_changing_the_future_does_not_move_the_past() -> None:
    # The spread model and the gap rule use past fixes only: a later end leaves earlier bars unchanged.
    short = load_ecb(["EURUSD", "USDJPY"], start="2008-01-01", end="2009-06-30")
    long = load_ecb(["EURUSD", "USDJPY"], start="2008-01-01", end="2012-12-31")
    pd.testing.assert_frame_equal(short.bars, long.bars.loc[short.index])
