"""Durations in trading time, converted to bars with the market's bar length.

Why: a lookback of "24 bars" is a day on hourly data and a month on daily data. Settings
that mean time (momentum lookbacks, half-lives, estimation windows, refit cadence, episode
length, scenario windows) are written as durations and converted with the bar length of the
market at hand, so one config means the same calendar time on hourly and on daily bars.

A duration is either an ``int`` (a number of bars, taken as it is) or text ``"<number><unit>"``
in FX trading time, which runs 24 hours a day, five days a week:

======  ===================================  ==========  ===========
unit    meaning                              hourly bars daily bars
======  ===================================  ==========  ===========
``h``   hours                                1 per h     1/24 per h
``D``   trading days (24 h)                  24          1
``W``   weeks (5 trading days)               120         5
``M``   months (21 trading days)             504         21
``Y``   years (252 trading days)             6,048       252
======  ===================================  ==========  ===========

The bar length is the median spacing of the bar timestamps (so weekends and holidays do not
count); bars a week or more apart (weekly, monthly data) count 5/7 of their calendar length.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from simulator.common.errors import ConfigError

Duration = int | str
"""A number of bars (int) or a trading-time duration such as ``"1D"``, ``"6M"``, ``"36h"``."""

HOURS_PER_UNIT: dict[str, float] = {"h": 1.0, "D": 24.0, "W": 5 * 24.0, "M": 21 * 24.0, "Y": 252 * 24.0}
_PATTERN = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[hDWMY])\s*$")


def duration_hours(value: str, *, key: str = "duration") -> float:
    """Trading hours in a duration text like ``"6M"`` (one clear error naming ``key`` otherwise)."""
    match = _PATTERN.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f"{key}: {value!r} is not a duration — write a number of bars (e.g. 24) or a number and "
                          f"a unit: h (hours), D (trading days), W (weeks), M (21-day months), Y (252-day years), "
                          f"e.g. '1D' or '6M'")
    hours = float(match["n"]) * HOURS_PER_UNIT[match["unit"]]
    if not hours > 0:
        raise ConfigError(f"{key}: {value!r} must be a positive duration")
    return hours


def check_duration(value: object, *, key: str, minimum_bars: int = 1) -> None:
    """Validate a duration setting: an int >= ``minimum_bars`` or a parseable duration text."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a number of bars or a duration like '1D', got {value!r}")
    if isinstance(value, int):
        if value < minimum_bars:
            raise ConfigError(f"{key}: must be >= {minimum_bars} bars, got {value}")
        return
    if isinstance(value, str):
        duration_hours(value, key=key)
        return
    raise ConfigError(f"{key}: expected a number of bars or a duration like '1D', got {value!r}")


def bar_hours(index: pd.DatetimeIndex | np.ndarray) -> float:
    """Trading hours one bar stands for: the median timestamp spacing (weekly+ bars × 5/7)."""
    stamps = index.as_unit("ns").asi8 if isinstance(index, pd.DatetimeIndex) else np.asarray(index, np.int64)
    if stamps.size < 2:
        return 1.0
    spacing = float(np.median(np.diff(stamps))) / 3.6e12
    if spacing >= 7 * 24.0:
        spacing *= 5.0 / 7.0
    return spacing if spacing > 0 else 1.0


def to_bars(value: Duration, hours_per_bar: float, *, key: str = "duration", minimum: int = 1) -> int:
    """Bars covering ``value`` at ``hours_per_bar`` (rounded, at least ``minimum``); ints pass through."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a number of bars or a duration, got {value!r}")
    if isinstance(value, int):
        return value
    hours = duration_hours(value, key=key)
    return max(int(minimum), int(math.floor(hours / hours_per_bar + 0.5)))


def describe_bar(hours_per_bar: float) -> str:
    """'1 hour', '1 trading day', '5 trading days' — for notes and reports."""
    if hours_per_bar < 24.0:
        minutes = hours_per_bar * 60.0
        return f"{hours_per_bar:g} hour(s)" if minutes >= 60 else f"{minutes:g} minute(s)"
    return f"{hours_per_bar / 24.0:g} trading day(s)"


TRADING_DAYS_PER_YEAR = 260.0  # FX trades Sunday 22:00 to Friday 22:00 UTC: ~52 weeks x 5 days
NS_PER_DAY = 86_400 * 10**9
CALENDAR_DAYS_PER_YEAR = 365.25


def bars_per_year(index_ns: np.ndarray, *, trading_days_per_year: float = TRADING_DAYS_PER_YEAR) -> float:
    """Bars per year from the **median** bar spacing of bar-open timestamps (int64 ns since epoch).

    Why the median: weekend and holiday gaps do not distort it. Spacings up to one day count
    trading days: ``bars_per_day = 1 day / spacing`` times ``trading_days_per_year`` (260), so
    hourly FX bars give 6,240 and daily bars 260. Longer spacings (weekly, monthly bars) are
    calendar bars: ``365.25 days / spacing`` (weekly: 52.18). Pass ``market.index.as_unit("ns").asi8``
    (a ``datetime64`` array works too). Fewer than two stamps: NaN. (``MarketData.bars_per_year``
    instead counts bars over the calendar span, ~6,200 for hourly bars with weekend gaps.)
    """
    stamps = np.asarray(index_ns)
    if stamps.dtype.kind == "M":
        stamps = stamps.astype("datetime64[ns]").astype(np.int64)
    stamps = stamps.astype(np.int64, copy=False)
    if stamps.ndim != 1:
        raise ValueError(f"index_ns must be a 1-D array of bar timestamps, got shape {stamps.shape}")
    if not trading_days_per_year > 0:
        raise ValueError(f"trading_days_per_year must be > 0, got {trading_days_per_year}")
    if stamps.size < 2:
        return math.nan
    spacing = float(np.median(np.diff(stamps)))
    if not spacing > 0:
        raise ValueError("bar timestamps must be strictly increasing (median spacing <= 0): sort the index and drop "
                         "duplicates")
    if spacing <= NS_PER_DAY:
        return float(trading_days_per_year) * NS_PER_DAY / spacing
    return CALENDAR_DAYS_PER_YEAR * NS_PER_DAY / spacing


__all__ = ["CALENDAR_DAYS_PER_YEAR", "Duration", "HOURS_PER_UNIT", "NS_PER_DAY", "TRADING_DAYS_PER_YEAR", "bar_hours",
           "bars_per_year", "check_duration", "describe_bar", "duration_hours", "to_bars"]
