"""The forecaster interface: one-step-ahead volatility, aligned to bars, causal.

Conventions used by every forecaster, VaR model and backtest in this package:

* ``returns[t] = log(close[t] / close[t-1])`` (a fraction; ``returns[0]`` is NaN);
* a forecast array ``sigma`` is shaped (time, pair) and **row t holds the forecast of
  the standard deviation of ``returns[t+1]`` made with bars <= t** — ``sigma(t+1 | <= t)``;
  rows without enough history are NaN (never back-filled);
* the split is by bar position: parameters of fitted models (e.g. LSTM weights) are
  estimated on ``[0, train_end)``, early stopping uses ``[train_end, val_end)``, and a
  fitted model reports NaN for every row before ``val_end`` — rows whose forecast would
  depend on data after them. Walk-forward models (EWMA, GARCH) re-estimate from the past
  only and produce forecasts as soon as their minimum window is filled.

Why this shape: the environment indexes forecasts by integer t at step time, and a
backtest compares ``sigma[t]`` with ``returns[t+1]`` — one shift, in one place
(:func:`realised_next`).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from simulator.common.configuration import to_mapping
from simulator.common.errors import ConfigError
from simulator.data.market import MarketData


@dataclass(frozen=True, kw_only=True)
class Split:
    """Bar positions that end the training and validation spans (test = ``[val_end, T)``)."""

    train_end: int
    val_end: int

    def __post_init__(self) -> None:
        if not 0 < self.train_end <= self.val_end:
            raise ValueError(f"need 0 < train_end <= val_end, got {self.train_end}, {self.val_end}")

    @classmethod
    def by_fraction(cls, n_bars: int, train: float = 0.5, validation: float = 0.2) -> Split:
        """Chronological split: the first ``train`` share for fitting, the next ``validation`` share."""
        if not (0 < train and 0 <= validation and train + validation < 1):
            raise ValueError(f"need 0 < train, 0 <= validation, train + validation < 1; got {train}, {validation}")
        return cls(train_end=int(n_bars * train), val_end=int(n_bars * (train + validation)))

    @classmethod
    def by_date(cls, index: pd.DatetimeIndex, train_end: object, validation_end: object, *,
                source: str = "split", keys: tuple[str, str] = ("train_end", "validation_end")) -> Split:
        """Split at dates: training through ``train_end``, validation through ``validation_end``
        (both inclusive, to the end of that day); the test span is every later bar.

        An empty, reversed or out-of-range span is one :class:`ConfigError` line naming ``keys``.
        """
        if len(index) < 3:
            raise ConfigError(f"{source}: {len(index)} bars are too few to split into train, validation and test")
        bounds = []
        for key, value in zip(keys, (train_end, validation_end)):
            try:
                ts = pd.Timestamp(value)
            except (ValueError, TypeError):
                ts = pd.NaT
            if pd.isna(ts):
                raise ConfigError(f"{source}: {key} {value!r} is not a date — write YYYY-MM-DD")
            ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
            if ts == ts.normalize():  # a date: through the end of that day
                ts = ts + pd.Timedelta(days=1)
            bounds.append((key, value, ts))
        (k1, v1, b1), (k2, v2, b2) = bounds
        first, last = index[0], index[-1]
        if b2 <= b1:
            raise ConfigError(f"{source}: {k2} {v2} must be after {k1} {v1}")
        t_end, v_end = int(index.searchsorted(b1)), int(index.searchsorted(b2))
        if t_end == 0:
            raise ConfigError(f"{source}: {k1} {v1} is before the first bar ({first}) — the training span is empty")
        if v_end == t_end:
            raise ConfigError(f"{source}: no bar between {k1} {v1} and {k2} {v2} — the validation span is empty")
        if v_end >= len(index):
            raise ConfigError(f"{source}: {k2} {v2} is at or after the last bar ({last}) — the test span is empty; "
                              "choose an earlier date")
        return cls(train_end=t_end, val_end=v_end)


@dataclass(frozen=True, eq=False)
class VolForecast:
    """One-step-ahead volatility forecasts of one model (see the module conventions)."""

    name: str
    sigma: np.ndarray
    symbols: tuple[str, ...]
    index: pd.DatetimeIndex
    refits: int = 0
    fallbacks: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sigma.ndim != 2 or self.sigma.shape != (len(self.index), len(self.symbols)):
            raise ValueError(f"sigma must be (time, pair) = {(len(self.index), len(self.symbols))}, "
                             f"got {self.sigma.shape}")
        finite = self.sigma[np.isfinite(self.sigma)]
        if (finite <= 0).any():
            raise ValueError(f"{self.name}: volatility forecasts must be > 0")

    def first_valid(self) -> int:
        """First row where every pair has a forecast."""
        ok = np.flatnonzero(np.isfinite(self.sigma).all(axis=1))
        return int(ok[0]) if ok.size else len(self.index)


def log_returns(market: MarketData) -> np.ndarray:
    """Close-to-close log returns (time, pair), row 0 NaN."""
    return market.log_returns()


def realised_next(values: np.ndarray) -> np.ndarray:
    """Shift an array by one bar so row t holds ``values[t+1]`` (last row NaN).

    Backtests compare a forecast made at t with what happened over bar t+1.
    """
    out = np.full_like(values, np.nan, dtype=float)
    out[:-1] = values[1:]
    return out


def config_hash(obj: Any) -> str:
    """Stable short hash of a config dataclass or mapping (for cache keys)."""
    payload = json.dumps(to_mapping(obj), sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


class VolatilityForecaster(ABC):
    """Produces ``sigma(t+1 | <= t)`` for every bar and pair of a market."""

    name: str

    @abstractmethod
    def forecast(self, market: MarketData, split: Split | None = None) -> VolForecast:
        """Forecasts for every bar; ``split`` bounds what fitted models may learn from."""

    def cache_key(self) -> str:
        """What identifies this forecaster's output for a given market (name + config)."""
        return f"{self.name}-{config_hash(getattr(self, 'config', {}))}"
