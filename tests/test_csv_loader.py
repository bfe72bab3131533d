"""CSV loader: every preset parses a realistic snippet to UTC timestamps, mid prices and price-unit spreads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.data.cleaning import CleaningConfig
from simulator.data.csv_loader import PRESETS, CsvFormat, load_csv, preset
from simulator.data.market import MarketData
from simulator.data.spread_model import SpreadModel

PIP = 1e-4


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def utc(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(stamps, tz="UTC")


# -- presets ------------------------------------------------------------------------------------

def test_generic_iso_dates_mid_prices_fixed_spread(tmp_path: Path) -> None:
    # Arrange
    path = write(tmp_path, "bars.csv",
                 "time,open,high,low,close\n"
                 "2017-01-02 00:00:00,1.0500,1.0600,1.0400,1.0550\n"
                 "2017-01-02 01:00:00,1.0550,1.0570,1.0540,1.0560\n")
    # Act
    market = load_csv(path, fixed_spread_pips=1.5)
    # Assert
    bars = market.pair("EURUSD")
    assert isinstance(market, MarketData)
    assert market.index.equals(utc("2017-01-02 00:00", "2017-01-02 01:00"))
    np.testing.assert_allclose(bars["close"], [1.0550, 1.0560])  # mid side: unchanged
    np.testing.assert_allclose(bars["spread"], [1.5 * PIP] * 2)
    assert all(bars[c].dtype == np.float64 for c in bars.columns)
    assert market.source == str(path)
    assert any("fixed at 1.5 pips" in n for n in market.notes)


def test_generic_detects_separator_and_honours_utc_offsets(tmp_path: Path) -> None:
    # Arrange
    path = write(tmp_path, "bars.csv",
                 "Timestamp;Open;High;Low;Close\n"
                 "2017-01-02T01:00:00+01:00;1.05;1.06;1.04;1.055\n"
                 "2017-01-02T02:00:00+01:00;1.055;1.057;1.054;1.056\n")
    # Act
    market = load_csv(path, fmt="generic", fixed_spread_pips=1.0)
    # Assert
    assert market.index.equals(utc("2017-01-02 00:00", "2017-01-02 01:00"))


def test_histdata_est_without_dst_bid_to_mid(tmp_path: Path) -> None:
    # Arrange: EST = UTC-5 all year (HistData), also in July (no daylight saving)
    path = write(tmp_path, "DAT_ASCII_EURUSD_M1_2017.csv",
                 "20170102 000000;1.05000;1.06000;1.04000;1.05500;0\n"
                 "20170102 000100;1.05500;1.05700;1.05400;1.05600;0\n"
                 "20170703 120000;1.13000;1.13100;1.12900;1.13050;0\n")
    # Act
    market = load_csv(path, fmt="histdata", fixed_spread_pips=1.0)
    # Assert
    assert market.index.equals(utc("2017-01-02 05:00", "2017-01-02 05:01", "2017-07-03 17:00"))
    bars = market.pair("EURUSD")
    np.testing.assert_allclose(bars["open"], [1.05005, 1.05505, 1.13005])  # bid + spread/2
    np.testing.assert_allclose(bars["high"] - bars["low"], [0.02, 0.003, 0.002], atol=1e-12)
    assert "volume" in bars.columns
    assert any("Etc/GMT+5" in n for n in market.notes)


@pytest.mark.parametrize("time_col", ["Gmt time", "Time", "Local time"])
def test_dukascopy_header_alternatives(tmp_path: Path, time_col: str) -> None:
    # Arrange
    path = write(tmp_path, "EURUSD_Candlestick_1_Hour_BID.csv",
                 f"{time_col},Open,High,Low,Close,Volume\n"
                 "01.01.2017 22:00:00.000,1.05155,1.05213,1.05130,1.05150,1234.56\n"
                 "01.01.2017 23:00:00.000,1.05150,1.05280,1.05140,1.05260,2345.67\n")
    # Act
    market = load_csv(path, fmt="dukascopy", fixed_spread_pips=0.4)
    # Assert
    bars = market.pair("EURUSD")
    assert market.index.equals(utc("2017-01-01 22:00", "2017-01-01 23:00"))
    np.testing.assert_allclose(bars["close"], np.array([1.05150, 1.05260]) + 0.2 * PIP)
    np.testing.assert_allclose(bars["volume"], [1234.56, 2345.67])


def test_dukascopy_local_time_with_gmt_offset_goes_to_utc(tmp_path: Path) -> None:
    # Arrange: Dukascopy "Local time" exports append the offset
    path = write(tmp_path, "local.csv",
                 "Local time,Open,High,Low,Close,Volume\n"
                 "02.01.2017 00:00:00.000 GMT+0100,1.05,1.06,1.04,1.055,10\n"
                 "02.01.2017 01:00:00.000 GMT+0100,1.055,1.057,1.054,1.056,10\n")
    # Act
    market = load_csv(path, fmt="dukascopy", fixed_spread_pips=1.0)
    # Assert
    assert market.index.equals(utc("2017-01-01 23:00", "2017-01-02 00:00"))


def test_metatrader4_server_time_override(tmp_path: Path) -> None:
    # Arrange: a broker on UTC+2 without DST
    path = write(tmp_path, "EURUSD60.csv",
                 "2017.01.02,00:00,1.0520,1.0530,1.0510,1.0525,123\n"
                 "2017.01.02,01:00,1.0525,1.0540,1.0520,1.0535,456\n")
    fmt = dataclasses.replace(preset("metatrader4"), timezone="Etc/GMT-2")
    # Act
    market = load_csv(path, fmt=fmt, fixed_spread_pips=2.0)
    # Assert
    bars = market.pair("EURUSD")
    assert market.index.equals(utc("2017-01-01 22:00", "2017-01-01 23:00"))
    np.testing.assert_allclose(bars["close"], [1.0526, 1.0536])
    np.testing.assert_allclose(bars["volume"], [123, 456])


def test_metatrader4_dst_server_clock(tmp_path: Path) -> None:
    # Arrange: Europe/Athens is UTC+3 in summer, UTC+2 in winter
    path = write(tmp_path, "EURUSD60.csv",
                 "2017.07.03,03:00,1.1400,1.1410,1.1390,1.1405,1\n"
                 "2017.12.04,02:00,1.1900,1.1910,1.1890,1.1905,1\n")
    fmt = dataclasses.replace(preset("metatrader4"), timezone="Europe/Athens")
    # Act
    market = load_csv(path, fmt=fmt, fixed_spread_pips=1.0)
    # Assert
    assert market.index.equals(utc("2017-07-03 00:00", "2017-12-04 00:00"))


MT5_TEXT = ("<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
            "2017.01.02\t00:00:00\t1.05200\t1.05300\t1.05100\t1.05250\t1200\t0\t12\n"
            "2017.01.02\t01:00\t1.05250\t1.05400\t1.05200\t1.05350\t1300\t0\t8\n")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])  # MT5 writes UTF-16 with a BOM
def test_metatrader5_spread_points_to_price(tmp_path: Path, encoding: str) -> None:
    # Arrange
    path = write(tmp_path, "EURUSD_H1.csv", MT5_TEXT, encoding=encoding)
    # Act
    market = load_csv(path, fmt="metatrader5")
    # Assert: 12 points = 1.2 pips = 0.00012; mid = bid + spread/2; both time formats parse
    bars = market.pair("EURUSD")
    assert market.index.equals(utc("2017-01-02 00:00", "2017-01-02 01:00"))
    np.testing.assert_allclose(bars["spread"], [12e-5, 8e-5])
    np.testing.assert_allclose(bars["close"], [1.05250 + 6e-5, 1.05350 + 4e-5])
    np.testing.assert_allclose(bars["volume"], [1200, 1300])  # tick volume
    assert any("points" in n for n in market.notes)


def test_metatrader5_jpy_points_use_pair_pip(tmp_path: Path) -> None:
    # Arrange
    path = write(tmp_path, "USDJPY_H1.csv",
                 "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
                 "2017.01.02\t00:00:00\t117.000\t117.200\t116.900\t117.100\t100\t0\t15\n")
    # Act
    market = load_csv(path, fmt="metatrader5", symbol="USDJPY")
    # Assert: a JPY point is 0.001
    np.testing.assert_allclose(market.pair("USDJPY")["spread"], [0.015])


def test_ask_side_subtracts_half_spread(tmp_path: Path) -> None:
    # Arrange
    path = write(tmp_path, "ask.csv", "time,open,high,low,close\n2017-01-02 00:00,1.0502,1.0602,1.0402,1.0552\n")
    fmt = dataclasses.replace(preset("generic"), price_side="ask")
    # Act
    market = load_csv(path, fmt=fmt, fixed_spread_pips=4.0)
    # Assert
    np.testing.assert_allclose(market.pair("EURUSD")["close"], [1.0550])


def test_modelled_spread_is_default_and_noted(tmp_path: Path) -> None:
    # Arrange
    rows = "".join(f"2017-01-02 {h:02d}:00,1.05,1.0510,1.0490,1.0505\n" for h in range(6))
    path = write(tmp_path, "bars.csv", "time,open,high,low,close\n" + rows)
    # Act
    market = load_csv(path, spread_model=SpreadModel(base_pips=2.0))
    # Assert
    pips = market.spread_pips()[:, 0]
    assert np.all(pips >= 2.0 * 0.9) and np.all(pips <= 2.0 * 20)
    assert any("SpreadModel(base_pips=2" in n for n in market.notes)


def test_decimal_comma_format(tmp_path: Path) -> None:
    # Arrange
    path = write(tmp_path, "eu.csv", "time;open;high;low;close\n2017-01-02 00:00;1,05;1,06;1,04;1,055\n")
    fmt = dataclasses.replace(preset("generic"), sep=";", decimal=",")
    # Act
    market = load_csv(path, fmt=fmt, fixed_spread_pips=1.0)
    # Assert
    np.testing.assert_allclose(market.pair("EURUSD")["close"], [1.055])


def test_liquidity_from_volume(tmp_path: Path) -> None:
    # Arrange
    path = write(tmp_path, "d.csv", "Gmt time,Open,High,Low,Close,Volume\n"
                                    "02.01.2017 00:00:00.000,1.05,1.06,1.04,1.055,200\n")
    # Act
    market = load_csv(path, fmt="dukascopy", fixed_spread_pips=1.0, liquidity_per_volume=0.5)
    # Assert
    np.testing.assert_allclose(market.pair("EURUSD")["liquidity"], [100.0])


def test_cleaning_notes_reach_market(tmp_path: Path) -> None:
    # Arrange: line 3 repeats line 2's time
    path = write(tmp_path, "dup.csv", "time,open,high,low,close\n"
                                      "2017-01-02 00:00,1.05,1.06,1.04,1.055\n"
                                      "2017-01-02 00:00,1.05,1.06,1.04,1.056\n"
                                      "2017-01-02 01:00,1.05,1.06,1.04,1.055\n")
    # Act
    market = load_csv(path, fixed_spread_pips=1.0, clean=CleaningConfig(outlier_z=None))
    # Assert
    assert len(market) == 2
    assert market.pair("EURUSD")["close"].iloc[0] == pytest.approx(1.056)  # last occurrence kept
    assert any("duplicated" in n for n in market.notes)


def test_bundled_sample_loads_with_dukascopy_preset() -> None:
    # Arrange
    from simulator.data.sample import SAMPLE_PATH
    # Act
    market = load_csv(SAMPLE_PATH, fmt="dukascopy")
    # Assert
    assert len(market) == 6225
    assert market.index[0] == pd.Timestamp("2017-01-01 22:00", tz="UTC")


# -- format validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("changes, words", [
    ({"sep": "|"}, "sep"),
    ({"spread_unit": "bps"}, "spread_unit"),
    ({"price_side": "last"}, "price_side"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"columns": {"datetime": "t", "open": "o", "high": "h", "low": "l"}}, "close"),
    ({"columns": {"date": "d", "open": "o", "high": "h", "low": "l", "close": "c"}}, "date"),
    ({"columns": {"datetime": "t", "open": "o", "high": "h", "low": "l", "close": "c", "vwap": "v"}}, "unknown"),
    ({"header": False}, "position"),
    ({"datetime_format": ""}, "datetime_format"),
    ({"decimal": ";"}, "decimal"),
])
def test_format_validation(changes: dict, words: str) -> None:
    # Arrange / Act / Assert
    with pytest.raises(ValueError, match=words):
        dataclasses.replace(PRESETS["generic"], **changes)


def test_presets_are_formats_and_hashable() -> None:
    assert set(PRESETS) == {"generic", "histdata", "dukascopy", "metatrader4", "metatrader5", "close_only", "wide"}
    assert all(isinstance(f, CsvFormat) and hash(f) for f in PRESETS.values())
    with pytest.raises(ValueError, match="unknown CSV format preset"):
        preset("bloomberg")


def test_conflicting_arguments_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "bars.csv", "time,open,high,low,close\n2017-01-02 00:00,1.05,1.06,1.04,1.055\n")
    with pytest.raises(ValueError, match="either"):
        load_csv(path, fixed_spread_pips=1.0, spread_model=SpreadModel())
    with pytest.raises(ValueError, match="volume"):
        load_csv(path, liquidity_per_volume=1.0)


@pytest.mark.parametrize("text", [
    'time,open,high,low,close\r\n2017-01-02 00:00,1.05,1.06,1.04,1.055\r\n2017-01-02 01:00,1.05,1.06,1.04,1.056\r\n',
    '"time","open","high","low","close"\n"2017-01-02 00:00","1.05","1.06","1.04","1.055"\n'
    '"2017-01-02 01:00","1.05","1.06","1.04","1.056"\n',
    'time,open,high,low,close,\n2017-01-02 00:00,1.05,1.06,1.04,1.055,\n2017-01-02 01:00,1.05,1.06,1.04,1.056,\n',
    'time,open,high,low,close,\n2017-01-02 00:00,1.05,1.06,1.04,1.055\n2017-01-02 01:00,1.05,1.06,1.04,1.056\n',
], ids=["crlf", "quoted", "trailing-separator", "trailing-separator-in-header-only"])
def test_common_csv_dialects(tmp_path: Path, text: str) -> None:
    # Arrange
    path = write(tmp_path, "bars.csv", text)
    # Act
    market = load_csv(path, fixed_spread_pips=1.0)
    # Assert
    assert market.index.equals(utc("2017-01-02 00:00", "2017-01-02 01:00"))
    np.testing.assert_allclose(market.pair("EURUSD")["close"], [1.055, 1.056])
