"""Shared fixtures: small deterministic markets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.market import MarketData
from simulator.pairs import pair_spec


def make_bars(n: int = 50, *, start: str = "2024-01-01 00:00", freq: str = "1h", seed: int = 0,
              price: float = 1.1) -> pd.DataFrame:
    """A valid single-pair bar frame (random walk mid prices, 1-pip spread)."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.r_[price, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 5e-4, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 5e-4, n))
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="time")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "spread": np.full(n, 1e-4), "volume": rng.uniform(100, 200, n)}, index=index)


@pytest.fixture
def bars() -> pd.DataFrame:
    return make_bars()


@pytest.fixture
def two_pair_market() -> MarketData:
    frames = {"EURUSD": make_bars(seed=1), "USDJPY": make_bars(seed=2, price=150.0)}
    return MarketData.from_frames(frames, [pair_spec("EURUSD"), pair_spec("USDJPY")], source="test")
