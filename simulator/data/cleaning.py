"""Opt-in cleaning of one pair's bars, with a report of everything it changed.

Why opt-in: a data error should stop a run by default (``DataError``), because silently
"fixing" prices changes results. When a user asks for cleaning, every change is listed
in a :class:`CleaningReport`, logged at WARNING on ``fxrisk.data`` and copied into
``MarketData.notes`` by the loaders — never silent.

Order of the steps (each optional): drop invalid rows → sort by time → drop duplicated
timestamps (keep the last occurrence) → clip outlier returns → fill short gaps. Gap
fills use the previous bar only (forward fill), so no future data leaks into the past.
"""

from __future__ import annotations

import heapq
import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simulator.data.market import PRICE_FIELDS

logger = logging.getLogger("fxrisk.data")

# 1.4826 × MAD estimates the standard deviation of normally distributed data.
_MAD_TO_SIGMA = 1.4826
# A gap that contains a Saturday (UTC) is the FX weekend: never filled.
_SATURDAY = 5
_EXAMPLES = 3


@dataclass(frozen=True, kw_only=True)
class CleaningConfig:
    """What :func:`clean_bars` may change (all steps are reported).

    * ``drop_duplicates``: drop rows whose timestamp repeats, keeping the last occurrence
      (the later line of a file is usually the corrected one).
    * ``sort``: sort rows by timestamp (stable, so duplicates keep their file order).
    * ``fill_gaps_up_to_bars``: insert up to this many missing bars inside a session —
      the expected step is the median bar spacing — as flat bars at the previous close
      with volume 0 and spread/liquidity carried forward. Longer gaps and gaps containing
      a Saturday (UTC; the FX weekend) are left alone. 0 disables.
    * ``outlier_z``: clip close-to-close log returns whose robust z-score
      ``(r - median) / (1.4826 × MAD)`` exceeds this, by rescaling that bar's close,
      high and low so the return equals the threshold. Returns across a gap (e.g. the
      weekend open) are not judged. ``None`` disables. The default 30 is meant for bad
      ticks: genuine hourly news moves in EURUSD 2017 (FOMC, ECB) score 10–25. Median and
      MAD are causal: those of the ``outlier_window`` returns before the bar (no later bar
      moves a verdict); bars with fewer than ``outlier_min_periods`` earlier returns are
      not judged.
    * ``drop_invalid_rows``: drop rows with missing/non-finite or non-positive prices,
      high below low (or below open/close, or low above them), or negative
      spread/volume/liquidity.
    """

    drop_duplicates: bool = True
    sort: bool = True
    fill_gaps_up_to_bars: int = 3
    outlier_z: float | None = 30.0
    outlier_window: int = 500
    outlier_min_periods: int = 50
    drop_invalid_rows: bool = False

    def __post_init__(self) -> None:
        for name in ("drop_duplicates", "sort", "drop_invalid_rows"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"CleaningConfig.{name} must be true or false, got {getattr(self, name)!r}")
        gaps = self.fill_gaps_up_to_bars
        if isinstance(gaps, bool) or not isinstance(gaps, int) or gaps < 0:
            raise ValueError(f"CleaningConfig.fill_gaps_up_to_bars must be an integer >= 0 (0 disables), got {gaps!r}")
        for name in ("outlier_window", "outlier_min_periods"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 3:
                raise ValueError(f"CleaningConfig.{name} must be an integer >= 3, got {value!r}")
        if self.outlier_min_periods > self.outlier_window:
            raise ValueError("CleaningConfig.outlier_min_periods must be <= outlier_window")
        z = self.outlier_z
        if z is not None and (isinstance(z, bool) or not isinstance(z, (int, float)) or not np.isfinite(z) or z <= 0):
            raise ValueError(f"CleaningConfig.outlier_z must be a number > 0 or None (disabled), got {z!r}")


@dataclass
class CleaningReport:
    """Everything :func:`clean_bars` changed, by timestamp (UTC bar open times).

    ``outliers_clipped`` holds ``(timestamp, raw log return, clipped log return)``;
    ``invalid_rows_dropped`` holds ``(timestamp, reason)``; ``skipped`` says which
    steps could not run and why.
    """

    source: str
    invalid_rows_dropped: list[tuple[pd.Timestamp, str]] = field(default_factory=list)
    rows_reordered: list[pd.Timestamp] = field(default_factory=list)
    duplicates_dropped: list[pd.Timestamp] = field(default_factory=list)
    outliers_clipped: list[tuple[pd.Timestamp, float, float]] = field(default_factory=list)
    gaps_filled: list[pd.Timestamp] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    outlier_threshold: float | None = None

    @property
    def changed(self) -> bool:
        """True when cleaning changed any row."""
        return bool(self.invalid_rows_dropped or self.rows_reordered or self.duplicates_dropped
                    or self.outliers_clipped or self.gaps_filled)

    def summary(self) -> list[str]:
        """One line per action (and per skipped step), naming the source and examples."""
        out: list[str] = []
        s = self.source
        if self.invalid_rows_dropped:
            ex = [f"{t} ({why})" for t, why in self.invalid_rows_dropped]
            out.append(f"{s}: cleaning dropped {len(ex)} invalid row(s): {_examples(ex)}")
        if self.rows_reordered:
            out.append(f"{s}: cleaning sorted the bars by time; {len(self.rows_reordered)} row(s) were out of "
                       f"order: {_examples(self.rows_reordered)}")
        if self.duplicates_dropped:
            out.append(f"{s}: cleaning dropped {len(self.duplicates_dropped)} duplicated timestamp row(s), kept the "
                       f"last occurrence: {_examples(self.duplicates_dropped)}")
        if self.outliers_clipped:
            ex = [f"{t} (log return {r:+.5f} -> {c:+.5f})" for t, r, c in self.outliers_clipped]
            out.append(f"{s}: cleaning clipped {len(ex)} outlier return(s) to robust |z| = "
                       f"{self.outlier_threshold:g} (median/MAD of the bars before each): {_examples(ex)}")
        if self.gaps_filled:
            out.append(f"{s}: cleaning filled {len(self.gaps_filled)} missing bar(s) with flat bars at the previous "
                       f"close (volume 0, spread carried forward): {_examples(self.gaps_filled)}")
        out.extend(f"{s}: {why}" for why in self.skipped)
        return [" ".join(line.split()) for line in out]


def _examples(items: list) -> str:
    shown = ", ".join(str(x) for x in items[:_EXAMPLES])
    more = len(items) - _EXAMPLES
    return shown + (f" (+{more} more)" if more > 0 else "")


def clean_bars(frame: pd.DataFrame, config: CleaningConfig, *, source: str) -> tuple[pd.DataFrame, CleaningReport]:
    """Clean one pair's bars (prices in any one unit, index = bar open times).

    Pure: returns a new frame and a report; ``frame`` is never modified. Columns other
    than ``open, high, low, close, volume`` are carried forward over filled gaps.
    Each line of ``report.summary()`` is logged at WARNING on ``fxrisk.data``.
    """
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise TypeError(f"{source}: clean_bars needs a DatetimeIndex, got {type(frame.index).__name__}")
    missing = [p for p in PRICE_FIELDS if p not in frame.columns]
    if missing:
        raise ValueError(f"{source}: clean_bars needs columns {', '.join(PRICE_FIELDS)}; missing {', '.join(missing)}")
    out = frame.copy(deep=True)
    report = CleaningReport(source=source, outlier_threshold=config.outlier_z)
    if config.drop_invalid_rows:
        out = _drop_invalid(out, report)
    if config.sort:
        out = _sort(out, report)
    if config.drop_duplicates:
        dup = out.index.duplicated(keep="last")
        if dup.any():
            report.duplicates_dropped = list(out.index[dup])
            out = out.loc[~dup]
    ordered = out.index.is_monotonic_increasing and out.index.is_unique and not out.index.hasnans
    if config.outlier_z is not None:
        if ordered:
            out = _clip_outliers(out, config.outlier_z, report, window=config.outlier_window,
                                 min_periods=config.outlier_min_periods)
        else:
            report.skipped.append("outlier clipping skipped: timestamps are not sorted and unique")
    if config.fill_gaps_up_to_bars > 0:
        if ordered:
            out = _fill_gaps(out, config.fill_gaps_up_to_bars, report)
        else:
            report.skipped.append("gap filling skipped: timestamps are not sorted and unique")
    for line in report.summary():
        logger.warning(line)
    return out, report


def _drop_invalid(out: pd.DataFrame, report: CleaningReport) -> pd.DataFrame:
    """Drop rows that break the bar schema, recording one reason per row."""
    n = len(out)
    reasons = np.full(n, "", dtype=object)

    def mark(mask: np.ndarray, why: str) -> None:
        new = mask & (reasons == "")
        reasons[new] = why

    mark(np.asarray(out.index.isna()), "missing timestamp")
    prices = {p: pd.to_numeric(out[p], errors="coerce").to_numpy(np.float64) for p in PRICE_FIELDS}
    for p, v in prices.items():
        mark(~np.isfinite(v), f"{p} missing or not finite")
        with np.errstate(invalid="ignore"):
            mark(v <= 0, f"{p} <= 0")
    o, h, lo, c = (prices[p] for p in PRICE_FIELDS)
    with np.errstate(invalid="ignore"):
        mark(h < lo, "high < low")
        mark(h < np.maximum(o, c), "high < open/close")
        mark(lo > np.minimum(o, c), "low > open/close")
    for name in ("spread", "volume", "liquidity"):
        if name in out.columns:
            v = pd.to_numeric(out[name], errors="coerce").to_numpy(np.float64)
            mark(~np.isfinite(v), f"{name} missing or not finite")
            with np.errstate(invalid="ignore"):
                mark(v < 0, f"{name} < 0")
    bad = reasons != ""
    if bad.any():
        report.invalid_rows_dropped = [(out.index[i], str(reasons[i])) for i in np.flatnonzero(bad)]
        out = out.loc[~bad]
    return out


def _sort(out: pd.DataFrame, report: CleaningReport) -> pd.DataFrame:
    """Stable sort by time; record the rows that were earlier than a row before them."""
    if out.index.is_monotonic_increasing or len(out) < 2:
        return out
    stamps = out.index.asi8
    running_max = np.maximum.accumulate(stamps)
    back = np.flatnonzero(stamps[1:] < running_max[:-1]) + 1
    report.rows_reordered = list(out.index[back])
    return out.sort_index(kind="stable")


def _causal_stats(rets: np.ndarray, window: int, min_periods: int) -> tuple[np.ndarray, np.ndarray]:
    """``(median, MAD)`` of the raw returns strictly before each return (the last ``window`` of them);
    NaN where fewer than ``min_periods`` past returns exist. Row k uses returns < k only (causal)."""
    n = len(rets)
    med = np.full(n, np.nan)
    mad = np.full(n, np.nan)
    if n <= min_periods:
        return med, mad
    padded = np.concatenate([np.full(window - 1, np.nan), rets])
    views = np.lib.stride_tricks.sliding_window_view(padded, window)  # views[k] = rets[k-window+1 .. k]
    chunk = 4096
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows at the start
        for lo in range(min_periods, n, chunk):
            hi = min(n, lo + chunk)
            past = views[lo - 1 : hi - 1]  # for return k: returns k-window .. k-1
            count = np.isfinite(past).sum(axis=1)
            m = np.nanmedian(past, axis=1)
            d = np.nanmedian(np.abs(past - m[:, None]), axis=1)
            enough = count >= min_periods
            med[lo:hi] = np.where(enough, m, np.nan)
            mad[lo:hi] = np.where(enough, d, np.nan)
    return med, mad


def _clip_outliers(out: pd.DataFrame, threshold: float, report: CleaningReport, *, window: int = 500,
                   min_periods: int = 50) -> pd.DataFrame:
    """Clip log returns beyond ``threshold`` robust z-scores, in time order, causally.

    Each bar's return is judged against the median and MAD of the raw returns of the
    ``window`` bars before it (none after it: changing later bars never changes an earlier
    verdict); bars with fewer than ``min_periods`` returns before them are not judged. A
    clipped close changes the next bar's return, so bars are re-checked in time order after
    each clip (a lone bad tick is clipped once, and the bar after it is then judged against
    the clipped close). Returns across a gap longer than the median spacing of the bars up
    to it (the weekend open, a trading halt) span more time than one bar and are not judged.
    """
    if len(out) < 3:
        return out
    close = out["close"].to_numpy(np.float64).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        logc = np.log(close)
        rets = np.diff(logc)
    spacing = pd.Series(np.diff(out.index.asi8).astype(np.float64))
    one_bar = (spacing <= spacing.rolling(window, min_periods=1).median()).to_numpy()  # bars <= t only
    rets = np.where(np.isfinite(rets), rets, np.nan)
    med, mad = _causal_stats(rets, window, min_periods)
    scale = _MAD_TO_SIGMA * mad
    judged = np.isfinite(med) & (scale > 0)
    if not judged.any():
        report.skipped.append(f"outlier clipping skipped: no bar has {min_periods} earlier returns with a non-zero "
                              f"median absolute deviation")
        return out
    limit = np.where(judged, threshold * scale, np.inf)
    with np.errstate(invalid="ignore"):
        candidates = list(np.flatnonzero(judged & one_bar & (np.abs(rets - med) > limit)) + 1)
    if not candidates:
        return out
    high = out["high"].to_numpy(np.float64).copy()
    low = out["low"].to_numpy(np.float64).copy()
    opn = out["open"].to_numpy(np.float64)
    heapq.heapify(candidates)
    seen: set[int] = set()
    clipped: list[tuple[pd.Timestamp, float, float]] = []
    while candidates:
        i = int(heapq.heappop(candidates))
        if i in seen or i >= len(close) or not one_bar[i - 1] or not judged[i - 1]:
            continue
        seen.add(i)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = float(np.log(close[i] / close[i - 1]))
        m, lim = float(med[i - 1]), float(limit[i - 1])
        if not np.isfinite(r) or abs(r - m) <= lim:
            continue
        target = m + np.sign(r - m) * lim
        factor = float(np.exp(target - r))
        close[i] *= factor
        high[i] = max(high[i] * factor, opn[i], close[i])
        low[i] = min(low[i] * factor, opn[i], close[i])
        clipped.append((out.index[i], r, float(target)))
        heapq.heappush(candidates, i + 1)  # its return now starts from the clipped close
    if clipped:
        out = out.copy()
        out["close"] = close
        out["high"] = high
        out["low"] = low
        report.outliers_clipped = clipped
    return out


def _fill_gaps(out: pd.DataFrame, max_bars: int, report: CleaningReport) -> pd.DataFrame:
    """Insert flat bars into gaps of at most ``max_bars`` missing bars (not weekends)."""
    if len(out) < 3:
        return out
    stamps = out.index.asi8
    diffs = np.diff(stamps)
    step = int(np.median(diffs))
    if step <= 0:
        return out
    unit = out.index.unit
    new: list[pd.DatetimeIndex] = []
    for g in np.flatnonzero(diffs > step):
        n_missing = -(-int(diffs[g]) // step) - 1  # ceil(diff / step) - 1
        if not 1 <= n_missing <= max_bars:
            continue
        span = out.index[g : g + 2]
        days = pd.date_range(span[0].normalize(), span[1].normalize(), freq="D")
        if (days.day_of_week == _SATURDAY).any():
            continue  # the FX weekend, not a gap inside a session
        inserted = stamps[g] + step * np.arange(1, n_missing + 1, dtype=np.int64)
        inserted = inserted[inserted < stamps[g + 1]]
        when = pd.DatetimeIndex(inserted.astype(f"datetime64[{unit}]"))  # asi8 counts from the UTC epoch
        if out.index.tz is not None:
            when = when.tz_localize("UTC").tz_convert(out.index.tz)
        new.append(when)
    if not new:
        return out
    added = new[0].append(new[1:]) if len(new) > 1 else new[0]
    full = out.index.append(added).sort_values().rename(out.index.name)
    filled = out.reindex(full)
    mask = full.isin(added)
    prev_close = filled["close"].ffill().to_numpy()
    for p in PRICE_FIELDS:
        filled.loc[mask, p] = prev_close[mask]
    if "volume" in filled.columns:
        filled.loc[mask, "volume"] = 0.0
    for name in filled.columns:
        if name in PRICE_FIELDS or name == "volume":
            continue
        filled.loc[mask, name] = filled[name].ffill().to_numpy()[mask]
    report.gaps_filled = list(added)
    return filled
