"""Causal intraday volatility profile: de-seasonalise hourly returns without lookahead.

Why: hourly FX volatility follows the clock (London and New York sessions, the 21 UTC
lull); a volatility model that ignores it under-forecasts busy hours and over-forecasts
quiet ones, so its VaR exceptions cluster by hour. The profile at row t is estimated
from returns <= t only (expanding, shrunk toward 1 while an hour has few observations).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRIOR_OBS = 20.0


def causal_hourly_profile(index: pd.DatetimeIndex, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Profiles ``(now, next_bar)`` shaped like ``returns`` (time, pair).

    ``now[t]``: the RMS-ratio of the hour of bar t, estimated with returns <= t.
    ``next_bar[t]``: the same profile (still estimated with returns <= t) evaluated at the
    hour of bar t+1 — the calendar is known in advance, prices are not. The last row uses
    the hour one bar spacing later.
    """
    r2 = np.where(np.isfinite(returns), returns * returns, 0.0)
    seen = np.isfinite(returns).astype(float)
    hours = np.asarray(index.hour, dtype=np.int64)
    next_hours = np.empty_like(hours)
    next_hours[:-1] = hours[1:]
    if len(index) > 1:
        step = index[-1] - index[-2]
        next_hours[-1] = (index[-1] + step).hour
    else:
        next_hours[-1] = hours[-1]
    total = np.cumsum(r2, axis=0)
    count = np.cumsum(seen, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        overall = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    now = np.ones_like(r2)
    nxt = np.ones_like(r2)
    for hour in np.unique(np.r_[hours, next_hours]):
        mask = (hours == hour)[:, None]
        h_total = np.cumsum(r2 * mask, axis=0)
        h_count = np.cumsum(seen * mask, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = (h_total + PRIOR_OBS * overall) / ((h_count + PRIOR_OBS) * overall)
        ratio = np.sqrt(np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0))
        now = np.where(mask, ratio, now)
        nxt = np.where((next_hours == hour)[:, None], ratio, nxt)
    return now, nxt


def deseasonalise(index: pd.DatetimeIndex, returns: np.ndarray, enabled: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(returns / profile_now, profile_next)``; identity and ones when ``enabled`` is False."""
    if not enabled:
        return returns, np.ones_like(returns)
    now, nxt = causal_hourly_profile(index, returns)
    return returns / now, nxt
