"""Cleaning is opt-in, pure, and changes exactly what it reports."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.data.cleaning import CleaningConfig, CleaningReport, clean_bars
from simulator.data.csv_loader import load_csv
from simulator.common.errors import DataError

NOTHING = CleaningConfig(drop_duplicates=False, sort=False, fill_gaps_up_to_bars=0, outlier_z=None,
                         drop_invalid_rows=False)


def hourly(n: int = 60, *, start: str = "2017-01-03 00:00", seed: int = 0) -> pd.DataFrame:
    """Valid hourly bars (Tuesday onwards, no weekend), prices in one unit, volume and spread."""
    rng = np.random.default_rng(seed)
    close = 1.05 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.r_[1.05, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(1e-5, 5e-4, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(1e-5, 5e-4, n))
    index = pd.date_range(start, periods=n, freq="h", tz="UTC", name="time").as_unit("ns")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "spread": rng.uniform(1e-5, 2e-4, n), "volume": rng.uniform(100, 200, n)}, index=index)


def only(**changes: object) -> CleaningConfig:
    """A config with every step off except the given ones."""
    return dataclasses.replace(NOTHING, **changes)


def test_clean_data_is_unchanged_with_defaults() -> None:
    # Arrange
    frame = hourly()
    # Act
    out, report = clean_bars(frame, CleaningConfig(), source="t")
    # Assert
    pd.testing.assert_frame_equal(out, frame)
    assert not report.changed and report.summary() == []


def test_drop_duplicates_keeps_last_and_reports_it() -> None:
    # Arrange: row 10's timestamp appears again right after it with other prices
    frame = hourly()
    extra = frame.iloc[[10]].copy()
    extra[["open", "high", "low", "close"]] *= 1.001
    dup = pd.concat([frame.iloc[:11], extra, frame.iloc[11:]])
    before = dup.copy()
    # Act
    out, report = clean_bars(dup, only(drop_duplicates=True), source="t")
    # Assert
    pd.testing.assert_frame_equal(dup, before)  # input untouched
    assert report.duplicates_dropped == [frame.index[10]]
    assert len(out) == len(frame)
    pd.testing.assert_series_equal(out.iloc[10], extra.iloc[0])  # the later line wins
    pd.testing.assert_frame_equal(out.drop(frame.index[10]), frame.drop(frame.index[10]))


def test_sort_reports_rows_out_of_order() -> None:
    # Arrange: swap rows 5 and 6
    frame = hourly()
    order = list(range(len(frame)))
    order[5], order[6] = 6, 5
    shuffled = frame.iloc[order]
    # Act
    out, report = clean_bars(shuffled, only(sort=True), source="t")
    # Assert
    pd.testing.assert_frame_equal(out, frame, check_freq=False)
    assert report.rows_reordered == [frame.index[5]]


def test_fill_short_gap_with_flat_bars_and_leave_long_gaps() -> None:
    # Arrange: 2 bars missing after row 10 (filled), 5 missing after row 30 (left; limit 3)
    frame = hourly()
    holed = frame.drop(frame.index[[11, 12, 31, 32, 33, 34, 35]])
    # Act
    out, report = clean_bars(holed, only(fill_gaps_up_to_bars=3), source="t")
    # Assert
    assert report.gaps_filled == list(frame.index[[11, 12]])
    assert len(out) == len(holed) + 2
    new = out.loc[frame.index[[11, 12]]]
    prev = frame.iloc[10]
    for p in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(new[p], [prev["close"]] * 2)
    np.testing.assert_array_equal(new["volume"], [0.0, 0.0])
    np.testing.assert_array_equal(new["spread"], [prev["spread"]] * 2)
    pd.testing.assert_frame_equal(out.drop(frame.index[[11, 12]]), holed)  # nothing else moved


def test_weekend_gap_is_never_filled() -> None:
    # Arrange: daily bars Monday-Friday over two weeks: weekend gaps are 2 bars (<= limit) but hold a Saturday
    days = pd.bdate_range("2017-01-02", periods=10, tz="UTC").as_unit("ns")
    frame = hourly(10)
    frame.index = days.rename("time")
    # Act
    out, report = clean_bars(frame, only(fill_gaps_up_to_bars=3), source="t")
    # Assert
    assert report.gaps_filled == []
    pd.testing.assert_frame_equal(out, frame)


def test_outlier_is_clipped_to_threshold_and_only_that_bar_changes() -> None:
    # Arrange: a bad tick: bar 120's close, high and low are 5% too high
    frame = hourly(200)
    spiked = frame.copy()
    spiked.loc[spiked.index[120], ["high", "low", "close"]] *= 1.05
    spiked.loc[spiked.index[120], "high"] = max(spiked["high"].iloc[120], spiked["open"].iloc[120])
    rets = np.diff(np.log(spiked["close"].to_numpy()))
    past = rets[:119]  # the returns before bar 120's (causal statistics)
    med = np.median(past)
    scale = 1.4826 * np.median(np.abs(past - med))
    # Act
    out, report = clean_bars(spiked, only(outlier_z=10.0), source="t")
    # Assert
    assert [t for t, _, _ in report.outliers_clipped] == [frame.index[120]]
    clipped_ret = np.log(out["close"].iloc[120] / out["close"].iloc[119])
    assert clipped_ret == pytest.approx(med + 10.0 * scale)
    pd.testing.assert_frame_equal(out.drop(frame.index[120]), spiked.drop(frame.index[120]))
    row = out.iloc[120]
    assert row["high"] >= max(row["open"], row["close"]) and row["low"] <= min(row["open"], row["close"])


@pytest.mark.parametrize("z", [8.0, 30.0])
def test_outlier_clipping_is_causal_changing_the_future_moves_no_earlier_bar(z) -> None:
    # Arrange: fat-tailed returns with bad ticks before and after bar 1000
    rng = np.random.default_rng(3)
    frame = hourly(1400)
    close = 1.1 * np.exp(np.cumsum(rng.standard_t(3, 1400) * 1e-3))
    for i in (300, 700, 1200):
        close[i] *= 1.04
    frame["close"] = close
    frame["open"] = np.concatenate([[close[0]], close[:-1]])
    frame["high"] = np.maximum(frame["open"], frame["close"]) * 1.0005
    frame["low"] = np.minimum(frame["open"], frame["close"]) * 0.9995
    changed = frame.copy()
    later = changed.index >= changed.index[1000]
    changed.loc[later, ["open", "high", "low", "close"]] *= np.exp(rng.normal(0, 0.05, (later.sum(), 1)))
    # Act
    a, ra = clean_bars(frame, only(outlier_z=z), source="t")
    b, rb = clean_bars(changed, only(outlier_z=z), source="t")
    # Assert: bars before 1000 and which of them were clipped are the same
    pd.testing.assert_frame_equal(a.iloc[:1000], b.iloc[:1000])
    early = frame.index[1000]
    assert [c for c in ra.outliers_clipped if c[0] < early] == [c for c in rb.outliers_clipped if c[0] < early]
    assert any(c[0] == frame.index[300] for c in ra.outliers_clipped)


def test_drop_invalid_rows_reports_reasons() -> None:
    # Arrange
    frame = hourly()
    bad = frame.copy()
    bad.iloc[3, bad.columns.get_loc("close")] = np.nan
    bad.iloc[7, bad.columns.get_loc("low")] = -1.0
    bad.iloc[9, bad.columns.get_loc("high")] = bad["low"].iloc[9] * 0.99
    # Act
    out, report = clean_bars(bad, only(drop_invalid_rows=True), source="t")
    # Assert
    assert [t for t, _ in report.invalid_rows_dropped] == list(frame.index[[3, 7, 9]])
    reasons = [why for _, why in report.invalid_rows_dropped]
    assert "close" in reasons[0] and "low" in reasons[1] and "high < low" in reasons[2]
    pd.testing.assert_frame_equal(out, bad.drop(frame.index[[3, 7, 9]]))


def test_input_frame_is_never_mutated() -> None:
    # Arrange: a frame needing every step
    frame = hourly(100)
    messy = pd.concat([frame.iloc[:50], frame.iloc[[49]], frame.iloc[52:]]).iloc[::-1]
    messy.iloc[10, messy.columns.get_loc("close")] *= 1.2
    snapshot = messy.copy(deep=True)
    # Act
    out, report = clean_bars(messy, CleaningConfig(drop_invalid_rows=True), source="t")
    # Assert
    pd.testing.assert_frame_equal(messy, snapshot)
    assert report.changed and out is not messy


def test_every_action_is_logged_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    # Arrange
    frame = hourly()
    dup = pd.concat([frame, frame.iloc[[5]]])
    # Act
    with caplog.at_level(logging.WARNING, logger="fxrisk.data"):
        _, report = clean_bars(dup, CleaningConfig(), source="file.csv")
    # Assert
    lines = report.summary()
    assert len(lines) == 2  # out of order (the appended row) and duplicate
    assert [r.getMessage() for r in caplog.records if r.name == "fxrisk.data"] == lines
    assert all("\n" not in line and line.startswith("file.csv:") for line in lines)


def test_report_changed_property() -> None:
    assert not CleaningReport(source="s").changed
    assert CleaningReport(source="s", gaps_filled=[pd.Timestamp("2017-01-02", tz="UTC")]).changed


@pytest.mark.parametrize("kwargs", [
    {"fill_gaps_up_to_bars": -1}, {"fill_gaps_up_to_bars": 1.5}, {"outlier_z": 0.0}, {"outlier_z": float("nan")},
    {"sort": "yes"}, {"drop_invalid_rows": 1},
])
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        CleaningConfig(**kwargs)


# -- through the loader -----------------------------------------------------------------------

MESSY = ("Gmt time,Open,High,Low,Close,Volume\n"
         "03.01.2017 00:00:00.000,1.0500,1.0510,1.0490,1.0505,100\n"
         "03.01.2017 02:00:00.000,1.0505,1.0515,1.0495,1.0510,100\n"   # line 3: out of order
         "03.01.2017 01:00:00.000,1.0505,1.0515,1.0495,1.0500,100\n"
         "03.01.2017 01:00:00.000,1.0505,1.0515,1.0495,1.0502,100\n"   # line 5: duplicate of line 4
         "03.01.2017 03:00:00.000,1.0510,1.0520,1.0500,1.0515,100\n"
         "03.01.2017 06:00:00.000,1.0515,1.0525,1.0505,1.0520,100\n")  # 2 bars missing before


def test_same_file_raises_without_cleaning_and_loads_with_it(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "messy.csv"
    path.write_text(MESSY, encoding="utf-8")
    # Act / Assert: no cleaning -> the first problem found, with its line
    with pytest.raises(DataError, match=r"line 4, .*goes back in time"):
        load_csv(path, fmt="dukascopy", fixed_spread_pips=1.0)
    # Act: cleaning
    market = load_csv(path, fmt="dukascopy", fixed_spread_pips=1.0, clean=CleaningConfig(outlier_z=None))
    # Assert
    expected = pd.date_range("2017-01-03 00:00", "2017-01-03 06:00", freq="h", tz="UTC")
    assert market.index.equals(expected)
    bars = market.pair("EURUSD")
    assert bars["close"].iloc[1] == pytest.approx(1.0502 + 0.5e-4)  # the later duplicate line, bid -> mid
    assert list(bars["volume"].iloc[4:6]) == [0.0, 0.0]
    notes = " ".join(market.notes)
    assert "out of order" in notes and "duplicated" in notes and "filled 2 missing bar" in notes


def test_validation_after_cleaning_names_the_original_line(tmp_path: Path) -> None:
    # Arrange: unsorted (cleaned) plus a zero price on line 4 (not cleaned: drop_invalid_rows is off)
    path = tmp_path / "zero.csv"
    path.write_text("Gmt time,Open,High,Low,Close,Volume\n"
                    "03.01.2017 01:00:00.000,1.05,1.06,1.04,1.055,1\n"
                    "03.01.2017 00:00:00.000,1.05,1.06,1.04,1.055,1\n"
                    "03.01.2017 02:00:00.000,1.05,1.06,0,1.055,1\n", encoding="utf-8")
    # Act / Assert
    with pytest.raises(DataError, match=r"line 4, .*price must be > 0"):
        load_csv(path, fmt="dukascopy", fixed_spread_pips=1.0, clean=CleaningConfig(outlier_z=None))


def test_return_across_a_gap_is_not_judged_an_outlier() -> None:
    # Arrange: a 5% jump after a 2-day gap (a weekend-open move), otherwise hourly bars
    frame = hourly(200)
    later = frame.index >= frame.index[100]
    gapped = frame.copy()
    gapped.index = gapped.index.where(~later, gapped.index + pd.Timedelta(days=2))
    gapped.loc[later, ["open", "high", "low", "close"]] *= 1.05
    # Act
    out, report = clean_bars(gapped, only(outlier_z=10.0), source="t")
    # Assert
    assert report.outliers_clipped == []
    pd.testing.assert_frame_equal(out, gapped)
