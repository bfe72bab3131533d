"""RiskMetrics EWMA volatility: ``s2[t+1] = lam * s2[t] + (1 - lam) * r[t]^2``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from forecasters.base import Split, VolatilityForecaster, VolForecast
from forecasters.seasonality import deseasonalise
from simulator.data.market import MarketData


@dataclass(frozen=True, kw_only=True)
class EwmaConfig:
    """``lam``: decay per bar (RiskMetrics 0.94 for daily data); ``min_periods``: warm-up bars.

    ``seasonal``: divide returns by the causal hour-of-day profile and multiply the
    forecast back by the profile of the next bar's hour (intraday data).
    """

    lam: float = 0.94
    min_periods: int = 30
    seasonal: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.lam < 1:
            raise ValueError(f"lam must be in (0, 1), got {self.lam}")
        if self.min_periods < 2:
            raise ValueError(f"min_periods must be >= 2, got {self.min_periods}")


def ewma_variance(returns: np.ndarray, lam: float, min_periods: int) -> np.ndarray:
    """Forecast variance of ``returns[t+1]`` at each row t (1-D, zero-mean returns, row 0 may be NaN).

    Seeded with the mean square of the first ``min_periods`` returns; rows before that NaN.
    """
    r = np.asarray(returns, dtype=float)
    finite = np.flatnonzero(np.isfinite(r))
    out = np.full(r.shape, np.nan)
    if finite.size < min_periods:
        return out
    start = finite[0]
    seed_end = start + min_periods  # rows start .. seed_end-1 seed the recursion
    x = np.nan_to_num(r[start:], nan=0.0)
    seed = float(np.mean(x[:min_periods] ** 2))
    # y[i] = lam * y[i-1] + (1 - lam) * x[i]^2, started after the seed window
    tail = x[min_periods:] ** 2
    y, _ = lfilter([1.0 - lam], [1.0, -lam], tail, zi=[lam * seed])
    out[seed_end - 1] = seed
    out[seed_end:] = y
    return out


class EwmaForecaster(VolatilityForecaster):
    """Exponentially weighted volatility (no fitted parameters: fully walk-forward)."""

    name = "ewma"

    def __init__(self, config: EwmaConfig | None = None) -> None:
        self.config = config or EwmaConfig()

    def forecast(self, market: MarketData, split: Split | None = None) -> VolForecast:
        returns = market.log_returns()
        adjusted, profile_next = deseasonalise(market.index, returns, self.config.seasonal)
        var = np.column_stack([ewma_variance(adjusted[:, j], self.config.lam, self.config.min_periods)
                               for j in range(returns.shape[1])])
        return VolForecast(name=self.name, sigma=np.sqrt(var) * profile_next, symbols=market.symbols,
                           index=market.index, info={"lam": self.config.lam})
