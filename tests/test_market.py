"""The bar schema: validation of frames and the MarketData container."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.common.errors import DataError
from simulator.data.market import MarketData, validate_bars
from simulator.data.pairs import pair_spec
from tests.conftest import make_bars


def _break(frame: pd.DataFrame, row: int, column: str, value: float) -> pd.DataFrame:
    out = frame.copy()
    out.iloc[row, out.columns.get_loc(column)] = value
    return out


@pytest.mark.parametrize(
    ("mutate", "words", "row"),
    [
        (lambda f: _break(f, 7, "close", np.nan), "non-finite", 7),
        (lambda f: _break(f, 8, "open", 0.0), "> 0", 8),
        (lambda f: _break(f, 9, "low", -1.0), "> 0", 9),
        (lambda f: _break(_break(f, 10, "high", 0.5), 10, "low", 0.6), "below low", 10),
        (lambda f: _break(f, 11, "open", f["high"].iloc[11] * 1.001), "below open/close", 11),
        (lambda f: _break(f, 12, "close", f["low"].iloc[12] * 0.999), "above open/close", 12),
        (lambda f: _break(f, 13, "spread", -1e-5), "spread must be >= 0", 13),
        (lambda f: f.set_axis(f.index.where(np.arange(len(f)) != 5, f.index[4])), "duplicated", 5),
        (lambda f: f.iloc[[0, 1, 3, 2, 4]], "back in time", 3),
    ],
)
def test_validation_names_row_and_problem_in_one_line(bars, mutate, words, row) -> None:
    with pytest.raises(DataError) as err:
        validate_bars(mutate(bars), source="prices.csv")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("prices.csv")
    assert words in message
    assert f"row {row}" in message


def test_validation_uses_file_line_numbers_when_given(bars) -> None:
    broken = _break(bars, 3, "close", -2.0)
    with pytest.raises(DataError, match="line 5"):
        validate_bars(broken, source="f.csv", lines=np.arange(len(bars)) + 2)


def test_empty_missing_columns_and_naive_timestamps_are_rejected(bars) -> None:
    with pytest.raises(DataError, match="empty"):
        validate_bars(bars.iloc[:0], source="x")
    with pytest.raises(DataError, match="missing column.*spread"):
        validate_bars(bars.drop(columns="spread"), source="x")
    with pytest.raises(DataError, match="UTC"):
        validate_bars(bars.tz_localize(None), source="x")
    with pytest.raises(DataError, match="unknown column"):
        validate_bars(bars.assign(foo=1.0), source="x")


def test_valid_frame_passes(bars) -> None:
    validate_bars(bars, source="x")


def test_inner_join_keeps_common_clock_and_reports_it() -> None:
    a = make_bars(30, seed=1)
    b = make_bars(30, seed=2).iloc[5:]
    market = MarketData.from_frames({"EURUSD": a, "GBPUSD": b}, [pair_spec("EURUSD"), pair_spec("GBPUSD")],
                                    source="t")
    assert len(market) == 25
    assert market.index.equals(b.index)
    assert any("inner join" in note for note in market.notes)


def test_outer_join_carries_last_close_forward_only() -> None:
    a = make_bars(30, seed=1)
    b = make_bars(30, seed=2).drop(index=make_bars(30).index[[10, 11]])
    market = MarketData.from_frames({"EURUSD": a, "GBPUSD": b}, [pair_spec("EURUSD"), pair_spec("GBPUSD")],
                                    source="t", join="outer")
    filled = market.pair("GBPUSD")
    assert len(market) == 30
    prev_close = b["close"].iloc[9]
    for ts in a.index[[10, 11]]:
        assert (filled.loc[ts, ["open", "high", "low", "close"]] == prev_close).all()
        assert filled.loc[ts, "volume"] == 0.0


def test_arrays_are_time_pair_field(two_pair_market) -> None:
    arr = two_pair_market.to_array(["close", "spread"])
    assert arr.shape == (50, 2, 2)
    np.testing.assert_array_equal(arr[:, 1, 0], two_pair_market.bars[("USDJPY", "close")].to_numpy())
    pips = two_pair_market.spread_pips()
    np.testing.assert_allclose(pips[:, 0], 1.0)
    np.testing.assert_allclose(pips[:, 1], 0.01)  # 1e-4 price units on a JPY pair
    rets = two_pair_market.log_returns()
    assert np.isnan(rets[0]).all() and np.isfinite(rets[1:]).all()


def test_slice_select_and_fingerprint(two_pair_market) -> None:
    part = two_pair_market.slice("2024-01-01 10:00", "2024-01-01 20:00")
    assert len(part) == 10 and part.index[0] == pd.Timestamp("2024-01-01 10:00", tz="UTC")
    assert two_pair_market.select(["USDJPY"]).symbols == ("USDJPY",)
    assert part.fingerprint() != two_pair_market.fingerprint()
    same = MarketData(bars=two_pair_market.bars.copy(), pairs=two_pair_market.pairs)
    assert same.fingerprint() == two_pair_market.fingerprint()
    micro = two_pair_market.bars.copy()
    micro.index = micro.index.as_unit("us")
    assert MarketData(bars=micro, pairs=two_pair_market.pairs).fingerprint() == two_pair_market.fingerprint()


def test_pairs_with_different_fields_are_rejected() -> None:
    a = make_bars(10)
    b = make_bars(10).drop(columns="volume")
    bars = pd.concat({"EURUSD": a, "GBPUSD": b}, axis=1)
    with pytest.raises(DataError, match="same fields"):
        MarketData(bars=bars, pairs=(pair_spec("EURUSD"), pair_spec("GBPUSD")))


def test_pair_metadata_is_data() -> None:
    assert pair_spec("USDJPY").pip_size == 0.01
    assert pair_spec("eur/usd").symbol == "EURUSD"
    assert pair_spec("EURUSD=X").quote == "USD"
    assert pair_spec("CADJPY").pip_size == 0.01  # not listed: JPY-quote default
    with pytest.raises(DataError, match="not a currency pair"):
        pair_spec("EURO")


def test_summary_reports_every_pair(two_pair_market) -> None:
    summary = two_pair_market.summary()
    assert list(summary.index) == ["EURUSD", "USDJPY"]
    assert (summary["ann_vol_pct"] > 0).all()
