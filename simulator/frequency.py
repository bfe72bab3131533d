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

from simulator.errors import ConfigError

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


__all__ = ["Duration", "HOURS_PER_UNIT", "bar_hours", "check_duration", "describe_bar", "duration_hours", "to_bars"]
