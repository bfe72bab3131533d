"""Shared fixtures: small deterministic markets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from simulator.data.market import PRICE_FIELDS, MarketData
from simulator.data.pairs import pair_spec


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """A command-line script as a module, to call its ``main(argv)`` as a user runs it."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


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


def simulate_garch_t(n: int, omega: float, alpha: float, beta: float, nu: float, rng: np.random.Generator,
                     gamma: float = 0.0) -> np.ndarray:
    """A GARCH(1,1)/GJR-t series with unit-variance t shocks (numpy, seeded)."""
    z = rng.standard_t(nu, n) * np.sqrt((nu - 2) / nu)
    out = np.empty(n)
    h = omega / (1 - alpha - beta - gamma / 2)
    for t in range(n):
        e = np.sqrt(h) * z[t]
        out[t] = e
        h = omega + (alpha + gamma * (e < 0)) * e * e + beta * h
    return out


@pytest.fixture
def bars() -> pd.DataFrame:
    return make_bars()


@pytest.fixture
def two_pair_market() -> MarketData:
    frames = {"EURUSD": make_bars(seed=1), "USDJPY": make_bars(seed=2, price=150.0)}
    return MarketData.from_frames(frames, [pair_spec("EURUSD"), pair_spec("USDJPY")], source="test")


def change_future(market: MarketData, t: int) -> MarketData:
    """Bars after t moved (prices × 1.3, spreads × 4, liquidity ÷ 10); bars <= t untouched.

    The no-lookahead tests compute something on both markets and assert rows <= t agree.
    """
    bars = market.bars.copy()
    for s in market.symbols:
        for f in PRICE_FIELDS:
            bars.iloc[t + 1:, bars.columns.get_loc((s, f))] *= 1.3
        bars.iloc[t + 1:, bars.columns.get_loc((s, "spread"))] *= 4.0
        if "liquidity" in market.fields:
            bars.iloc[t + 1:, bars.columns.get_loc((s, "liquidity"))] /= 10.0
    return MarketData(bars=bars, pairs=market.pairs, source="changed future")
