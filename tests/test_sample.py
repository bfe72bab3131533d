"""The bundled EURUSD 2017 hourly sample: shape, clock, mid prices, modelled spread (causal), liquidity."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.data.csv_loader import load_csv, preset
from simulator.data.market import MarketData
from simulator.data.sample import SAMPLE_ORIGIN, SAMPLE_PATH, load_sample
from simulator.data.spread_model import SpreadModel


@pytest.fixture(scope="module")
def sample() -> MarketData:
    return load_sample()


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(SAMPLE_PATH)


def test_shape_year_and_clock(sample: MarketData) -> None:
    assert sample.symbols == ("EURUSD",)
    assert len(sample) == 6225
    assert str(sample.index.tz) == "UTC"
    assert set(sample.index.year) == {2017}
    steps = np.diff(sample.index.asi8) / 3.6e12  # hours
    assert np.mean(steps == 1.0) > 0.98
    assert steps.min() > 0


def test_spread_is_plausible_retail(sample: MarketData) -> None:
    pips = sample.spread_pips()[:, 0]
    assert pips.min() >= 0.5 and pips.max() <= 25.0
    assert 0.8 <= np.median(pips) <= 1.5


def test_mid_is_below_the_files_ask(sample: MarketData, raw: pd.DataFrame) -> None:
    bars = sample.pair("EURUSD")
    ask_close = raw["Close"].to_numpy()
    np.testing.assert_allclose(bars["close"].to_numpy() + bars["spread"].to_numpy() / 2, ask_close, rtol=0,
                               atol=1e-12)
    assert np.all(bars["close"].to_numpy() < ask_close)


def test_liquidity_is_positive_and_from_volume(sample: MarketData, raw: pd.DataFrame) -> None:
    bars = sample.pair("EURUSD")
    assert np.all(bars["liquidity"] > 0)
    np.testing.assert_allclose(bars["liquidity"], raw["Volume"].to_numpy())  # documented factor 1.0


def test_spread_model_is_a_parameter() -> None:
    wide = load_sample(SpreadModel(base_pips=2.0))
    assert np.median(wide.spread_pips()) > 1.6


def test_spread_is_causal(tmp_path: Path) -> None:
    # Arrange: a copy of the file whose bars after t are changed (wider ranges, other volume)
    t = 3000
    text = SAMPLE_PATH.read_text(encoding="utf-8").splitlines()
    header, rows = text[0], text[1:]
    changed = []
    for i, row in enumerate(rows):
        if i > t:
            stamp, o, h, lo, c, v = row.split(",")
            row = ",".join([stamp, o, f"{float(h) * 1.01:.5f}", f"{float(lo) * 0.99:.5f}", c, v])
        changed.append(row)
    path = tmp_path / "future_changed.csv"
    path.write_text("\n".join([header, *changed]) + "\n", encoding="utf-8")
    fmt = replace(preset("dukascopy"), price_side="ask")
    # Act
    base = load_sample()
    other = load_csv(path, fmt=fmt, spread_model=SpreadModel(), liquidity_per_volume=1.0)
    # Assert: the past did not move, the future did
    a, b = base.field_array("spread")[:, 0], other.field_array("spread")[:, 0]
    np.testing.assert_array_equal(a[: t + 1], b[: t + 1])
    assert not np.allclose(a[t + 1 :], b[t + 1 :])


def test_origin_names_source_and_licence() -> None:
    assert "gym-anytrading" in SAMPLE_ORIGIN and "MIT" in SAMPLE_ORIGIN
    assert SAMPLE_PATH.is_file()
    assert (SAMPLE_PATH.parent / "LICENSE-gym-anytrading.txt").is_file()
