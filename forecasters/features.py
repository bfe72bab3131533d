"""Causal per-bar features for every pair, as float arrays shaped (time, pair, feature).

Every feature in row t is computed from bars <= t only (no centred windows, no
back-filling, no statistics of the whole sample). Rows without enough history — the
warm-up of a rolling window or an EWMA — are NaN, never filled.

Features (names as they appear in :attr:`FeatureSet.names`; ``r[t] = ln(C[t]/C[t-1])``):

========================  =================================================================
``log_return``            ``r[t]`` (a fraction); row 0 NaN
``abs_return``            ``|r[t]|``
``hl_range``              ``ln(H[t]/L[t])``, the Parkinson log range; ``hl_range**2 / (4 ln 2)``
                          is Parkinson's variance estimate of the bar
``gk_var``                Garman–Klass variance of the bar, ``0.5 ln(H/L)^2 - (2 ln 2 - 1)
                          ln(C/O)^2`` (>= 0 because ``|ln(C/O)| <= ln(H/L)``), fraction²
``ewma_vol_<h>``          ``sqrt`` of the EWMA of ``r^2`` with half-life ``h`` bars
                          (``adjust=False``); NaN until ``ceil(h)`` returns were seen
``atr_<n>``               ``ta`` AverageTrueRange(n) / close (fraction of price); NaN for
                          rows < n - 1 (``ta`` writes zeros there: masked)
``rsi_<n>``               ``ta`` RSIIndicator(n) mapped from [0, 100] to [-1, 1]
``bb_width_<n>``          ``ta`` BollingerBands(n, dev).bollinger_wband() / 100: band width
                          as a fraction of the moving average
``hour_sin, hour_cos``    UTC time of day on the unit circle (hour + minute/60)
``log_spread_pips``       ``ln(max(spread / pip_size, spread_floor_pips))``
``log_liquidity``         ``ln(max(liquidity, 1))`` (base currency); only when the market
                          has a ``liquidity`` field
========================  =================================================================

``ta`` is always called with ``fillna=False``: with ``fillna=True`` some indicators are
back-filled (``ffill().bfill()``), which copies later values into earlier rows — a
lookahead (see REFERENCES.md, Known traps).

Normalisation without lookahead: :func:`causal_standardise` (two modes, documented there)
and :class:`Standardisation` (statistics from a fitting span, stored for reuse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from ta.momentum import RSIIndicator
from ta.volatility import AverageTrueRange, BollingerBands

from simulator.data.market import MarketData

FEATURE_GROUPS: tuple[str, ...] = (
    "log_return",
    "abs_return",
    "hl_range",
    "gk_var",
    "ewma_vol",
    "atr",
    "rsi",
    "bb_width",
    "hour",
    "spread",
    "liquidity",
)
"""Feature groups a :class:`FeatureConfig` may select (``hour`` gives sin and cos)."""

GK_COEF = 2.0 * math.log(2.0) - 1.0

# Features that are positive scales (volatilities, variances, widths): log_scale() maps
# them to logs. Matched by name prefix.
_VOL_PREFIXES: tuple[str, ...] = ("abs_return", "hl_range", "ewma_vol_", "atr_", "bb_width_")
_VAR_PREFIXES: tuple[str, ...] = ("gk_var",)


@dataclass(frozen=True, kw_only=True)
class FeatureConfig:
    """Which features to compute and their windows (in bars)."""

    groups: tuple[str, ...] = FEATURE_GROUPS
    ewma_halflives: tuple[float, ...] = (12.0, 48.0)
    atr_window: int = 14
    rsi_window: int = 14
    bollinger_window: int = 20
    bollinger_dev: float = 2.0
    spread_floor_pips: float = 1e-3

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError("groups: select at least one feature group")
        unknown = [g for g in self.groups if g not in FEATURE_GROUPS]
        if unknown:
            raise ValueError(f"groups: unknown feature group(s) {unknown}; valid: {', '.join(FEATURE_GROUPS)}")
        if len(set(self.groups)) != len(self.groups):
            raise ValueError(f"groups: duplicated entry in {self.groups}")
        if "ewma_vol" in self.groups and not self.ewma_halflives:
            raise ValueError("ewma_halflives: give at least one half-life when 'ewma_vol' is selected")
        if any(not h > 0 for h in self.ewma_halflives):
            raise ValueError(f"ewma_halflives must be > 0, got {self.ewma_halflives}")
        if len(set(self.ewma_halflives)) != len(self.ewma_halflives):
            raise ValueError(f"ewma_halflives: duplicated entry in {self.ewma_halflives}")
        for name in ("atr_window", "rsi_window", "bollinger_window"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}")
        if not self.bollinger_dev > 0:
            raise ValueError(f"bollinger_dev must be > 0, got {self.bollinger_dev}")
        if not self.spread_floor_pips > 0:
            raise ValueError(f"spread_floor_pips must be > 0, got {self.spread_floor_pips}")


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Feature values (time, pair, feature), float64, with their names (and clock, pairs)."""

    values: np.ndarray
    names: tuple[str, ...]
    symbols: tuple[str, ...] = ()
    index: pd.DatetimeIndex | None = None

    def __post_init__(self) -> None:
        if self.values.ndim != 3 or self.values.shape[2] != len(self.names):
            raise ValueError(f"values must be (time, pair, {len(self.names)}), got {self.values.shape}")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicated feature name in {self.names}")
        if self.symbols and len(self.symbols) != self.values.shape[1]:
            raise ValueError(f"{len(self.symbols)} symbols for {self.values.shape[1]} pairs")
        if self.index is not None and len(self.index) != self.values.shape[0]:
            raise ValueError(f"index has {len(self.index)} rows, values {self.values.shape[0]}")

    def __getitem__(self, name: str) -> np.ndarray:
        """One feature for every bar and pair, shaped (time, pair)."""
        try:
            k = self.names.index(name)
        except ValueError:
            raise KeyError(f"feature {name!r} not in this set (features: {', '.join(self.names)})") from None
        return self.values[:, :, k]

    def first_valid(self) -> int:
        """First row where every feature of every pair is finite (the end of the warm-up)."""
        ok = np.flatnonzero(np.isfinite(self.values).all(axis=(1, 2)))
        return int(ok[0]) if ok.size else self.values.shape[0]


def _ewma_vol(r: np.ndarray, halflife: float) -> np.ndarray:
    """sqrt(EWMA of r²) per column, NaN until ceil(halflife) returns were seen (causal)."""
    frame = pd.DataFrame(r * r)
    ewm = frame.ewm(halflife=halflife, adjust=False, min_periods=int(math.ceil(halflife))).mean()
    return np.sqrt(ewm.to_numpy(np.float64))


def _wilder_python(true_range: np.ndarray, first: float, window: int) -> np.ndarray:
    """``ta``'s ATR recursion: row ``window-1`` holds ``first``, then ``(a·(w-1) + tr) / w``; zeros before."""
    atr = np.zeros(true_range.shape[0])
    atr[window - 1] = first
    for i in range(window, atr.shape[0]):
        atr[i] = (atr[i - 1] * (window - 1) + true_range[i]) / float(window)
    return atr


try:  # pragma: no cover - numba is a dependency; the Python runs without it
    from numba import njit

    _wilder = njit(cache=True, nogil=True)(_wilder_python)
except ImportError:  # pragma: no cover
    _wilder = _wilder_python


def average_true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """``ta.volatility.AverageTrueRange(..., fillna=False).average_true_range()`` as an array, bit for bit.

    Why: ``ta`` runs Wilder's recursion as a Python loop over ``Series.iloc`` (about 0.1 s per
    7,000 bars); the true range and the first window's mean here are ``ta``'s own pandas code and
    the recursion is the same arithmetic compiled (a test holds the two equal). Needs
    ``len(close) >= window``, as ``ta`` does.
    """
    h, lo, c = pd.Series(high), pd.Series(low), pd.Series(close)
    true_range = AverageTrueRange._true_range(h, lo, c.shift(1))
    first = float(true_range[0:window].mean())
    return _wilder(np.ascontiguousarray(true_range.to_numpy(np.float64)), first, int(window))


def _ta_features(high: np.ndarray, low: np.ndarray, close: np.ndarray, config: FeatureConfig,
                 groups: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``ta`` indicators for one pair (1-D arrays), fillna=False, warm-up masked to NaN."""
    out: dict[str, np.ndarray] = {}
    h, lo, c = pd.Series(high), pd.Series(low), pd.Series(close)
    n = close.size
    if "atr" in groups:
        w = config.atr_window
        atr = np.full(n, np.nan)
        if n >= w:  # ta indexes row w-1 directly; shorter inputs have no ATR at all
            atr = average_true_range(high, low, close, w)
            atr[: w - 1] = np.nan  # ta leaves zeros in the warm-up
        out[f"atr_{w}"] = atr / close
    if "rsi" in groups:
        w = config.rsi_window
        rsi = RSIIndicator(c, window=w, fillna=False).rsi().to_numpy(np.float64).copy()
        rsi[: min(w, n)] = np.nan  # first w rows lack w price changes
        out[f"rsi_{w}"] = (rsi - 50.0) / 50.0
    if "bb_width" in groups:
        w = config.bollinger_window
        bb = BollingerBands(c, window=w, window_dev=config.bollinger_dev, fillna=False)  # type: ignore[arg-type]
        width = bb.bollinger_wband().to_numpy(np.float64).copy()
        width[: min(w - 1, n)] = np.nan
        out[f"bb_width_{w}"] = width / 100.0
    return out


def compute_features(market: MarketData, config: FeatureConfig | None = None) -> FeatureSet:
    """Causal features of every pair of ``market`` (see the module table for names and units).

    Row t uses bars <= t only; warm-up rows are NaN. ``liquidity`` is skipped when the
    market has no such field (the names say what was computed).
    """
    config = config or FeatureConfig()
    groups = config.groups
    open_, high, low, close = (market.field_array(f) for f in ("open", "high", "low", "close"))
    n, n_pairs = close.shape
    cols: dict[str, np.ndarray] = {}
    r = market.log_returns()
    log_hl = np.log(high / low)
    for g in groups:
        if g == "log_return":
            cols["log_return"] = r
        elif g == "abs_return":
            cols["abs_return"] = np.abs(r)
        elif g == "hl_range":
            cols["hl_range"] = log_hl
        elif g == "gk_var":
            log_co = np.log(close / open_)
            cols["gk_var"] = np.maximum(0.5 * log_hl * log_hl - GK_COEF * log_co * log_co, 0.0)
        elif g == "ewma_vol":
            for hl in config.ewma_halflives:
                cols[f"ewma_vol_{hl:g}"] = _ewma_vol(r, hl)
        elif g in ("atr", "rsi", "bb_width"):
            per_pair = [_ta_features(high[:, j], low[:, j], close[:, j], config, (g,)) for j in range(n_pairs)]
            for name in per_pair[0]:
                cols[name] = np.stack([p[name] for p in per_pair], axis=1)
        elif g == "hour":
            idx = market.index
            angle = 2.0 * np.pi * (idx.hour.to_numpy() + idx.minute.to_numpy() / 60.0) / 24.0
            cols["hour_sin"] = np.repeat(np.sin(angle)[:, None], n_pairs, axis=1)
            cols["hour_cos"] = np.repeat(np.cos(angle)[:, None], n_pairs, axis=1)
        elif g == "spread":
            cols["log_spread_pips"] = np.log(np.maximum(market.spread_pips(), config.spread_floor_pips))
        elif g == "liquidity":
            if "liquidity" in market.fields:
                cols["log_liquidity"] = np.log(np.maximum(market.field_array("liquidity"), 1.0))
    names = tuple(cols)
    values = np.empty((n, n_pairs, len(names)), dtype=np.float64)
    for k, name in enumerate(names):
        values[:, :, k] = cols[name]
    return FeatureSet(values=values, names=names, symbols=market.symbols, index=market.index)


def log_scale(features: FeatureSet, *, vol_floor: float = 1e-7) -> FeatureSet:
    """Positive scale features (vols, ranges, widths, variances) replaced by their logs.

    Why: these are heavy-tailed; a network sees their logs better. A fixed floor (not a
    data statistic, so still causal) keeps flat bars finite: vol-like features use
    ``ln(max(x, vol_floor))`` and ``gk_var`` uses ``ln(max(x, vol_floor**2))``; the new
    names carry a ``log_`` prefix (``hl_range`` becomes ``log_hl_range``). NaN stays NaN.
    """
    values = features.values.copy()
    names = list(features.names)
    for k, name in enumerate(features.names):
        if name.startswith(_VAR_PREFIXES):
            floor = vol_floor * vol_floor
        elif name.startswith(_VOL_PREFIXES):
            floor = vol_floor
        else:
            continue
        x = values[:, :, k]
        with np.errstate(invalid="ignore"):
            values[:, :, k] = np.where(np.isnan(x), np.nan, np.log(np.maximum(x, floor)))
        names[k] = f"log_{name}"
    return FeatureSet(values=values, names=tuple(names), symbols=features.symbols, index=features.index)


@dataclass(frozen=True, eq=False)
class Standardisation:
    """Mean and standard deviation per (pair, feature) estimated on rows ``< fit_end``.

    ``apply`` gives ``(x - mean) / std``; a feature constant over the fitting span
    (std ~ 0) is only centred. Stored as plain lists by :meth:`to_dict` (JSON, no pickle).
    """

    mean: np.ndarray
    std: np.ndarray
    fit_end: int
    extra: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, x: np.ndarray, fit_end: int, *, tiny: float = 1e-12) -> Standardisation:
        """Statistics of ``x[:fit_end]`` (time first), ignoring NaN; all-NaN columns get (0, 1)."""
        if not 0 < fit_end <= x.shape[0]:
            raise ValueError(f"fit_end must be in (0, {x.shape[0]}], got {fit_end}")
        head = x[:fit_end]
        finite = np.isfinite(head)
        count = finite.sum(axis=0)
        safe = np.where(finite, head, 0.0)
        mean = np.divide(safe.sum(axis=0), count, out=np.zeros(count.shape), where=count > 0)
        dev = np.where(finite, head - mean, 0.0)
        var = np.divide((dev * dev).sum(axis=0), count, out=np.zeros(count.shape), where=count > 0)
        std = np.sqrt(var)
        std = np.where(std > tiny, std, 1.0)
        return cls(mean=mean, std=std, fit_end=int(fit_end))

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "fit_end": self.fit_end}

    @classmethod
    def from_dict(cls, data: dict) -> Standardisation:
        return cls(mean=np.asarray(data["mean"], dtype=np.float64), std=np.asarray(data["std"], dtype=np.float64),
                   fit_end=int(data["fit_end"]))


def causal_standardise(x: np.ndarray, fit_end: int | None = None, *, min_periods: int = 100) -> np.ndarray:
    """Standardise ``x`` (time first, any trailing shape) without lookahead; NaN stays NaN.

    Two modes:

    * ``fit_end`` given — **fixed statistics**: mean and std per column from rows
      ``< fit_end`` only (the training span), applied to every row. Row t's value then
      depends on bars <= t and on the training span; use it when ``fit_end`` precedes the
      rows you evaluate (validation/test), as for a fitted model.
    * ``fit_end=None`` — **expanding statistics**: row t is standardised with the mean
      and std (ddof=0) of that column's finite values in rows ``<= t`` (row t included,
      so nothing later than t). Rows with fewer than ``min_periods`` finite values are
      NaN. Early rows are noisy; nothing needs to be fitted.

    A column with zero spread is centred only (divided by 1).
    """
    x = np.asarray(x, dtype=np.float64)
    if fit_end is not None:
        return Standardisation.fit(x, fit_end).apply(x)
    if min_periods < 1:
        raise ValueError(f"min_periods must be >= 1, got {min_periods}")
    flat = pd.DataFrame(x.reshape(x.shape[0], -1))
    expanding = flat.expanding(min_periods=min_periods)
    mean = expanding.mean().to_numpy(np.float64)
    std = expanding.std(ddof=0).to_numpy(np.float64)
    std = np.where(std > 1e-12, std, 1.0)
    out = (flat.to_numpy(np.float64) - mean) / std
    return out.reshape(x.shape)
