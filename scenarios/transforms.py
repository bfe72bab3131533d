"""Market transforms of a stress scenario: frozen configs plus pure functions over bars.

Every bar transform is a pure function ``(bars, window, ...) -> new bars``: it works on a
copy of the ``(pair, field)`` bar frame of a :class:`~simulator.data.market.MarketData`, changes
only the named pairs, never touches bars before ``window[0]`` and keeps the bar schema
valid (``high >= max(open, close)``, ``low <= min(open, close)``, prices > 0, spreads and
liquidity positive wherever they were). Windows are bar positions ``[start, end)``.

Units: multipliers are plain factors; ``size`` of a jump or gap is a signed fraction of
the price (``-0.09`` = −9 %); ``recovery`` is the fraction of the jump recovered (0..1);
financing rates are annual fractions and shifts are in basis points.

Price moves are rebuilt in log space so prices stay positive: a transform that changes
the path inside its window shifts every later price by the same factor, so the path stays
continuous (returns after the window are unchanged).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from simulator.broker.settings import BrokerSettings
from scenarios.errors import Invalid
from simulator.common.errors import ConfigError
from simulator.data.frequency import duration_hours, to_bars
from simulator.data.market import MarketData

ALL = "all"
CORRELATION_MODES = ("resample", "flip")
SYMBOLIC_CURRENCIES = ("base", "quote", "account", "all")


# -- validation helpers -----------------------------------------------------------------
def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise Invalid(name, f"must be finite, got {value}", "give a number")


def _positive(name: str, value: float, hint: str = "use a positive factor") -> None:
    _finite(name, value)
    if not value > 0:
        raise Invalid(name, f"must be > 0, got {value:g}", hint)


#: Stated bounds of scenario magnitudes (beyond them results overflow into meaningless numbers:
#: volatility x10000 compounds returns to 1e25, liquidity x1e-300 costs to 1e150).
SPREAD_FACTOR = (1e-3, 1e3)
LIQUIDITY_FACTOR = (1e-6, 1e3)
VOLATILITY_FACTOR = (1e-2, 50.0)
MARKUP_FACTOR = (1e-3, 1e3)
MAX_RATE = 1.0       # annual rates in (-1, 1)
MAX_SHIFT_BPS = 10_000.0


def _factor(name: str, value: float, bounds: tuple[float, float], hint: str = "use a factor within the bounds"
            ) -> None:
    """A multiplier within its stated bounds ``[low, high]``."""
    _positive(name, value)
    low, high = bounds
    if not low <= value <= high:
        raise Invalid(name, f"must be in [{low:g}, {high:g}], got {value:g}", hint)


def _fraction(name: str, value: float, hint: str = "give a fraction between 0 and 1") -> None:
    _finite(name, value)
    if not 0.0 <= value <= 1.0:
        raise Invalid(name, f"must be in [0, 1], got {value:g}", hint)


def _int_at_least(name: str, value: Any, low: int, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise Invalid(name, f"must be an integer >= {low}, got {value!r}", hint)


def _bars_at_least(name: str, value: Any, low: int, hint: str) -> None:
    """A number of bars >= ``low``, or a trading-time duration such as ``"1W"`` (see simulator.data.frequency)."""
    if isinstance(value, str):
        try:
            duration_hours(value, key=name)
        except ConfigError:
            raise Invalid(name, f"{value!r} is not a number of bars or a duration",
                          "write bars (e.g. 120) or a duration: 36h, 5D, 1W, 1M") from None
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise Invalid(name, f"must be an integer >= {low} or a duration like '1W', got {value!r}", hint)


DURATION_KEYS: tuple[str, ...] = ("bars", "offset", "recovery_bars", "bars_down")
"""Transform fields that count time: bars, or durations converted with the market's bar length."""


def transform_in_bars(transform: Transform, hours_per_bar: float) -> Transform:
    """``transform`` with its durations converted to bars at ``hours_per_bar`` (bars stay as they are)."""
    values = {}
    for key in DURATION_KEYS:
        value = getattr(transform, key, None)
        if isinstance(value, str):
            values[key] = to_bars(value, hours_per_bar, key=key, minimum=0 if key == "offset" else 1)
    if not values:
        return transform
    if isinstance(transform.bars, str):  # type: ignore[attr-defined]
        # A window given as a duration holds its event: on coarse bars "4h" of a flash crash with a
        # 1-bar drop and 1-bar recovery becomes 2 bars, not 1.
        need = replace(transform, **{**values, "bars": None}).min_length()  # type: ignore[attr-defined]
        values["bars"] = max(values["bars"], need)
    return replace(transform, **values)


# -- array helpers ----------------------------------------------------------------------
def _column(frame: pd.DataFrame, pair: str, name: str) -> np.ndarray:
    return frame[(pair, name)].to_numpy(dtype=np.float64).copy()


def _set_prices(frame: pd.DataFrame, pair: str, o: np.ndarray, h: np.ndarray, lo: np.ndarray,
                c: np.ndarray) -> None:
    """Write prices back, enforcing ``high >= max(open, close)`` and ``low <= min(open, close)``
    against floating-point rounding."""
    frame[(pair, "open")] = o
    frame[(pair, "close")] = c
    frame[(pair, "high")] = np.maximum(h, np.maximum(o, c))
    frame[(pair, "low")] = np.minimum(lo, np.minimum(o, c))


def _scale_field(frame: pd.DataFrame, pairs: tuple[str, ...], name: str, window: tuple[int, int],
                 factor: float) -> None:
    if factor == 1.0 or name not in frame.columns.get_level_values(1):
        return
    a, b = window
    for pair in pairs:
        values = _column(frame, pair, name)
        values[a:b] *= factor
        frame[(pair, name)] = values


def _rebuild_window(frame: pd.DataFrame, pair: str, window: tuple[int, int], steps) -> None:
    """Rebuild one pair's OHLC inside ``window`` from transformed log steps, shift the rest.

    Each bar is decomposed into log steps relative to its open — the gap from the previous
    close ``g``, ``up = log(high/open)``, ``down = log(low/open)``, ``body = log(close/open)``
    — ``steps(g, up, down, body)`` returns the new steps, and the path is rebuilt from the
    last close before the window (the first bar's open when the window starts at bar 0).
    Later bars are multiplied by the factor that keeps the path continuous.
    """
    a, b = window
    o, h, lo, c = (np.log(_column(frame, pair, f)) for f in ("open", "high", "low", "close"))
    level = c[a - 1] if a > 0 else o[0]
    previous = np.r_[level, c[a:b - 1]]
    g, up, down, body = steps(o[a:b] - previous, h[a:b] - o[a:b], lo[a:b] - o[a:b], c[a:b] - o[a:b])
    new_close = level + np.cumsum(g + body)
    new_open = np.r_[level, new_close[:-1]] + g
    shift = new_close[-1] - c[b - 1]
    o[a:b], c[a:b] = new_open, new_close
    h[a:b], lo[a:b] = new_open + up, new_open + down
    for arr in (o, h, lo, c):
        arr[b:] += shift
    _set_prices(frame, pair, np.exp(o), np.exp(h), np.exp(lo), np.exp(c))


def _apply_offsets(frame: pd.DataFrame, pair: str, d_open: np.ndarray, d_close: np.ndarray) -> None:
    """Multiply a pair's prices by ``exp(offset)``: the open by ``d_open``, the close by ``d_close``.

    Inside a bar the offset moves from its open value to its close value, so the high takes
    the larger and the low the smaller of the two: a crash bar's low reaches the crash level.
    """
    o, h, lo, c = (_column(frame, pair, f) for f in ("open", "high", "low", "close"))
    new_open, new_close = o * np.exp(d_open), c * np.exp(d_close)
    new_high = h * np.exp(np.maximum(d_open, d_close))
    new_low = lo * np.exp(np.minimum(d_open, d_close))
    _set_prices(frame, pair, new_open, new_high, new_low, new_close)


# -- pure transform functions -----------------------------------------------------------
def scale_spread(bars: pd.DataFrame, window: tuple[int, int], *, pairs: tuple[str, ...],
                 multiplier: float) -> pd.DataFrame:
    """Spreads (price units) × ``multiplier`` inside ``window``; a new frame."""
    out = bars.copy(deep=True)
    _scale_field(out, pairs, "spread", window, multiplier)
    return out


def scale_liquidity(bars: pd.DataFrame, window: tuple[int, int], *, pairs: tuple[str, ...],
                    multiplier: float) -> pd.DataFrame:
    """Depth per bar (base-currency units) × ``multiplier`` inside ``window``: with k < 1 the
    simulator fills less than ``max_participation × liquidity`` allows and charges more
    square-root impact."""
    out = bars.copy(deep=True)
    _scale_field(out, pairs, "liquidity", window, multiplier)
    return out


def volatility_shock(bars: pd.DataFrame, window: tuple[int, int], *, pairs: tuple[str, ...],
                     multiplier: float, spread_elasticity: float = 0.0) -> pd.DataFrame:
    """Log returns (gaps, bodies and ranges) inside ``window`` × ``multiplier``, around the
    last close before the window; later prices shifted to stay continuous. Spreads inside the
    window × ``1 + spread_elasticity × (multiplier − 1)``."""
    out = bars.copy(deep=True)
    k = float(multiplier)
    for pair in pairs:
        _rebuild_window(out, pair, window, lambda g, up, dn, body: (k * g, k * up, k * dn, k * body))
    _scale_field(out, pairs, "spread", window, 1.0 + spread_elasticity * (k - 1.0))
    return out


def price_jump(bars: pd.DataFrame, window: tuple[int, int], *, pairs: tuple[str, ...], size: float,
               bars_down: int = 1, recovery: float = 0.0, recovery_bars: int = 0,
               spread_multiplier: float = 1.0, liquidity_multiplier: float = 1.0) -> pd.DataFrame:
    """A jump of ``size`` (signed fraction) from the window's first bar over ``bars_down`` bars,
    then ``recovery`` of it recovered over the next ``recovery_bars`` bars (log-linear); the
    rest of the path keeps the unrecovered part. At the close of the last down bar the price
    is ``(1 + size)`` × the unstressed close; after the recovery ``(1 + size (1 − recovery))``×.
    Spreads and liquidity × their multipliers over the whole window (the event)."""
    out = bars.copy(deep=True)
    a, _ = window
    n = len(out)
    drop, final = math.log1p(size), math.log1p(size * (1.0 - recovery))
    d_close = np.zeros(n)
    d_close[a:a + bars_down] = drop * np.arange(1, bars_down + 1) / bars_down
    if recovery_bars:
        d_close[a + bars_down:a + bars_down + recovery_bars] = (
            drop + (final - drop) * np.arange(1, recovery_bars + 1) / recovery_bars)
    d_close[a + bars_down + recovery_bars:] = final
    d_open = np.r_[0.0, d_close[:-1]]
    for pair in pairs:
        _apply_offsets(out, pair, d_open, d_close)
    _scale_field(out, pairs, "spread", window, spread_multiplier)
    _scale_field(out, pairs, "liquidity", window, liquidity_multiplier)
    return out


def price_gap(bars: pd.DataFrame, window: tuple[int, int], *, pairs: tuple[str, ...], size: float,
              recovery: float = 0.0, recovery_bars: int = 0, spread_multiplier: float = 1.0,
              liquidity_multiplier: float = 1.0) -> pd.DataFrame:
    """An opening gap: the open of the window's first bar is exactly ``(1 + size)`` × the
    previous close (no trading in between — stops fill at the gapped price), the rest of the
    path shifted with it; optionally ``recovery`` of the gap recovered over ``recovery_bars``
    bars starting with the gap bar's own close. Needs a bar before the window."""
    out = bars.copy(deep=True)
    a, _ = window
    if a < 1:
        raise ValueError("a gap needs a bar before its window")
    n = len(out)
    for pair in pairs:
        o, c = _column(out, pair, "open"), _column(out, pair, "close")
        base = math.log(c[a - 1]) - math.log(o[a])  # removes the bar's own gap, if any
        gap = base + math.log1p(size)
        final = base + math.log1p(size * (1.0 - recovery))
        d_close = np.zeros(n)
        if recovery_bars:
            d_close[a:a + recovery_bars] = gap + (final - gap) * np.arange(1, recovery_bars + 1) / recovery_bars
        d_close[a + recovery_bars:] = final if recovery_bars else gap
        d_open = np.r_[0.0, d_close[:-1]]
        d_open[a] = gap
        _apply_offsets(out, pair, d_open, d_close)
    _scale_field(out, pairs, "spread", window, spread_multiplier)
    _scale_field(out, pairs, "liquidity", window, liquidity_multiplier)
    return out


def correlation_break(bars: pd.DataFrame, window: tuple[int, int], *, pairs: tuple[str, ...],
                      rng: np.random.Generator, mode: str = "resample") -> pd.DataFrame:
    """Break the co-movement of ``pairs`` with the other pairs inside ``window``.

    ``resample``: each pair's in-window bars (gap, range and body together) are put in an
    independent random order drawn from ``rng`` — same marginal distribution and same total
    move over the window, no correlation with the others; ``flip``: the pair's in-window log
    moves change sign (its correlation with the others changes sign). Later prices shifted so
    the path stays continuous. Spreads and liquidity stay where they were.
    """
    if mode not in CORRELATION_MODES:
        raise ValueError(f"mode must be one of {CORRELATION_MODES}, got {mode!r}")
    out = bars.copy(deep=True)
    a, b = window
    for pair in pairs:
        if mode == "resample":
            order = rng.permutation(b - a)
            steps = (lambda g, up, dn, body, order=order: (g[order], up[order], dn[order], body[order]))
        else:
            steps = (lambda g, up, dn, body: (-g, -dn, -up, -body))
        _rebuild_window(out, pair, window, steps)
    return out


# -- configs ----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Transform:
    """Base of every transform config: ``kind`` names it in the YAML file."""

    kind: str
    KIND: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if self.kind != self.KIND:
            raise Invalid("kind", f"expected {self.KIND!r}, got {self.kind!r}", "fix the kind")


@dataclass(frozen=True, kw_only=True)
class WindowedTransform(Transform, ABC):
    """A transform of the bars over a window of the evaluation span.

    ``pairs``: ``"all"`` or a list of symbols. ``start``: fraction of the span (0..1) where the
    window starts, or ``"random"`` (drawn from the scenario's generator so that the window
    fits); ``bars``: window length. Both default to the scenario's ``window`` (so several
    transforms share one randomly placed event); ``offset`` moves the start later by that many
    bars. ``analogue``: when none of the named pairs is in the market, apply the transform to
    the market's other pairs instead (see :func:`scenarios.apply.resolve_pairs`).
    """

    pairs: str | tuple[str, ...] = ALL
    start: float | str | None = None
    bars: int | str | None = None
    offset: int | str = 0
    analogue: bool = False
    FAMILY: ClassVar[str] = ""  # transforms of one family share analogue pairs (no double stress)

    def __post_init__(self) -> None:
        super().__post_init__()
        pairs = self.pairs
        if isinstance(pairs, str):
            pairs = ALL if pairs == ALL else (pairs,)
        elif isinstance(pairs, (list, tuple)):
            if not pairs:
                raise Invalid("pairs", "is empty", 'list symbols like [EURUSD] or write "all"')
            for i, p in enumerate(pairs):
                if not isinstance(p, str) or not p:
                    raise Invalid(f"pairs[{i}]", f"expected a pair symbol, got {p!r}", "write symbols like EURUSD")
            if len(set(pairs)) != len(pairs):
                raise Invalid("pairs", f"duplicated symbol in {list(pairs)}", "list each pair once")
            pairs = tuple(pairs)
        else:
            raise Invalid("pairs", f"expected \"all\" or a list of symbols, got {pairs!r}", 'e.g. [EURUSD] or "all"')
        object.__setattr__(self, "pairs", pairs)
        start = self.start
        if start is not None:
            if isinstance(start, bool) or not isinstance(start, (int, float, str)):
                raise Invalid("start", f"expected a fraction of the span or \"random\", got {start!r}",
                              "e.g. start: 0.25 or start: random")
            if isinstance(start, str):
                if start != "random":
                    raise Invalid("start", f"expected a fraction of the span or \"random\", got {start!r}",
                                  "e.g. start: 0.25 or start: random")
            else:
                _fraction("start", float(start), "give the window start as a fraction of the span (0..1) or random")
                object.__setattr__(self, "start", float(start))
        if self.bars is not None:
            _bars_at_least("bars", self.bars, 1, "give the window length in bars")
        _bars_at_least("offset", self.offset, 0, "give a number of bars >= 0")
        if isinstance(self.bars, int) and self.resolved():
            self.check_length(self.bars)

    def resolved(self) -> bool:
        """True when every duration field is a number of bars (checks that compare them can run)."""
        return all(not isinstance(getattr(self, k, 0), str) for k in DURATION_KEYS)

    def check_length(self, bars: int) -> None:
        """Raise :class:`Invalid` when the event does not fit in ``bars`` bars (override)."""

    def min_length(self) -> int:
        """The fewest bars that hold the event (durations already in bars)."""
        return 1

    def named(self) -> tuple[str, ...]:
        """The explicitly named pairs (empty for ``"all"``)."""
        return () if self.pairs == ALL else self.pairs  # type: ignore[return-value]

    @abstractmethod
    def apply(self, bars: pd.DataFrame, window: tuple[int, int], rng: np.random.Generator,
              pairs: tuple[str, ...]) -> pd.DataFrame:
        """New bars with this transform applied to ``pairs`` over bar positions ``window``."""


@dataclass(frozen=True, kw_only=True)
class SpreadTransform(WindowedTransform):
    """Spread × ``multiplier`` over the window."""

    kind: str = "spread"
    multiplier: float = 1.0
    KIND: ClassVar[str] = "spread"
    FAMILY: ClassVar[str] = "spread"

    def __post_init__(self) -> None:
        super().__post_init__()
        _factor("multiplier", self.multiplier, SPREAD_FACTOR)

    def apply(self, bars, window, rng, pairs):
        return scale_spread(bars, window, pairs=pairs, multiplier=self.multiplier)


@dataclass(frozen=True, kw_only=True)
class LiquidityTransform(WindowedTransform):
    """Liquidity (depth per bar) × ``multiplier`` (< 1: partial fills, more impact) over the window."""

    kind: str = "liquidity"
    multiplier: float = 1.0
    KIND: ClassVar[str] = "liquidity"
    FAMILY: ClassVar[str] = "liquidity"

    def __post_init__(self) -> None:
        super().__post_init__()
        _factor("multiplier", self.multiplier, LIQUIDITY_FACTOR, "use a positive factor (0.05 keeps 5% of the depth)")

    def apply(self, bars, window, rng, pairs):
        return scale_liquidity(bars, window, pairs=pairs, multiplier=self.multiplier)


@dataclass(frozen=True, kw_only=True)
class VolatilityTransform(WindowedTransform):
    """Returns inside the window × ``multiplier``; spreads × ``1 + spread_elasticity (k − 1)``."""

    kind: str = "volatility"
    multiplier: float = 1.0
    spread_elasticity: float = 0.0
    KIND: ClassVar[str] = "volatility"
    FAMILY: ClassVar[str] = "volatility"

    def __post_init__(self) -> None:
        super().__post_init__()
        _factor("multiplier", self.multiplier, VOLATILITY_FACTOR)
        _finite("spread_elasticity", self.spread_elasticity)
        if not 1.0 + self.spread_elasticity * (self.multiplier - 1.0) <= SPREAD_FACTOR[1]:
            raise Invalid("spread_elasticity", f"makes the spread factor above {SPREAD_FACTOR[1]:g}",
                          "use a smaller elasticity")
        if not 1.0 + self.spread_elasticity * (self.multiplier - 1.0) > 0:
            raise Invalid("spread_elasticity", f"makes the spread factor 1 + {self.spread_elasticity:g} × "
                          f"({self.multiplier:g} − 1) <= 0", "use a smaller elasticity")

    def apply(self, bars, window, rng, pairs):
        return volatility_shock(bars, window, pairs=pairs, multiplier=self.multiplier,
                                spread_elasticity=self.spread_elasticity)


@dataclass(frozen=True, kw_only=True)
class _EventTransform(WindowedTransform):
    """Shared fields of price events (jump, gap)."""

    size: float = 0.0
    recovery: float = 0.0
    recovery_bars: int | str = 0
    spread_multiplier: float = 1.0
    liquidity_multiplier: float = 1.0
    FAMILY: ClassVar[str] = "price"

    def __post_init__(self) -> None:
        _finite("size", self.size)
        if not -1.0 < self.size != 0.0:
            raise Invalid("size", f"must be a signed fraction > -1 and != 0, got {self.size:g}",
                          "e.g. -0.09 for a 9% drop")
        _fraction("recovery", self.recovery, "give the recovered share of the move (0..1)")
        _bars_at_least("recovery_bars", self.recovery_bars, 0, "give a number of bars")
        if self.recovery > 0 and self.recovery_bars == 0:
            raise Invalid("recovery_bars", "must be >= 1 when recovery > 0", "give the bars the recovery takes")
        _factor("spread_multiplier", self.spread_multiplier, SPREAD_FACTOR)
        _factor("liquidity_multiplier", self.liquidity_multiplier, LIQUIDITY_FACTOR,
                "use a positive factor (0.05 keeps 5% of the depth)")
        super().__post_init__()


@dataclass(frozen=True, kw_only=True)
class JumpTransform(_EventTransform):
    """A jump of ``size`` over ``bars_down`` bars and a partial recovery (flash crash)."""

    kind: str = "jump"
    bars_down: int | str = 1
    KIND: ClassVar[str] = "jump"

    def __post_init__(self) -> None:
        _bars_at_least("bars_down", self.bars_down, 1, "give the bars the move takes")
        super().__post_init__()

    def min_length(self) -> int:
        return int(self.bars_down) + int(self.recovery_bars)

    def check_length(self, bars: int) -> None:
        if bars < self.bars_down + self.recovery_bars:
            raise Invalid("bars", f"window of {bars} bars is shorter than bars_down + recovery_bars "
                          f"({self.bars_down} + {self.recovery_bars})", "make the window longer")

    def apply(self, bars, window, rng, pairs):
        return price_jump(bars, window, pairs=pairs, size=self.size, bars_down=self.bars_down,
                          recovery=self.recovery, recovery_bars=self.recovery_bars,
                          spread_multiplier=self.spread_multiplier, liquidity_multiplier=self.liquidity_multiplier)


@dataclass(frozen=True, kw_only=True)
class GapTransform(_EventTransform):
    """The open of the window's first bar gaps by ``size`` from the previous close."""

    kind: str = "gap"
    KIND: ClassVar[str] = "gap"

    def min_length(self) -> int:
        return max(1, int(self.recovery_bars))

    def check_length(self, bars: int) -> None:
        if bars < self.recovery_bars:
            raise Invalid("bars", f"window of {bars} bars is shorter than recovery_bars ({self.recovery_bars})",
                          "make the window longer")

    def apply(self, bars, window, rng, pairs):
        return price_gap(bars, window, pairs=pairs, size=self.size, recovery=self.recovery,
                         recovery_bars=self.recovery_bars, spread_multiplier=self.spread_multiplier,
                         liquidity_multiplier=self.liquidity_multiplier)


@dataclass(frozen=True, kw_only=True)
class CorrelationBreakTransform(WindowedTransform):
    """In-window returns of ``pairs`` resampled independently (``mode: resample``) or sign-flipped
    (``mode: flip``); needs a market with at least two pairs."""

    kind: str = "correlation_break"
    mode: str = "resample"
    KIND: ClassVar[str] = "correlation_break"
    FAMILY: ClassVar[str] = "correlation"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in CORRELATION_MODES:
            raise Invalid("mode", f"unknown mode {self.mode!r}", f"use one of {', '.join(CORRELATION_MODES)}")

    def min_length(self) -> int:
        return 2

    def check_length(self, bars: int) -> None:
        if bars < 2:
            raise Invalid("bars", f"a correlation break needs at least 2 bars, got {bars}", "make the window longer")

    def apply(self, bars, window, rng, pairs):
        return correlation_break(bars, window, pairs=pairs, rng=rng, mode=self.mode)


@dataclass(frozen=True, kw_only=True)
class FinancingTransform(Transform):
    """A financing-rate shock: changes ``BrokerSettings.financing``, not the bars (rates are not per bar,
    so it holds for the whole run).

    ``rates``: new annual rates by currency (fractions); ``shift_bps``: shifts in basis points;
    ``markup``: new broker markup (annual fraction), then × ``markup_multiplier``. Currency keys
    are codes (``USD``) or ``base`` / ``quote`` (every base / quote currency of the market's
    pairs), ``account`` (the account currency) or ``all`` (every currency with a rate).
    """

    kind: str = "financing"
    rates: dict[str, float] = field(default_factory=dict)
    shift_bps: dict[str, float] = field(default_factory=dict)
    markup: float | None = None
    markup_multiplier: float = 1.0
    KIND: ClassVar[str] = "financing"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rates", "shift_bps"):
            for key, value in getattr(self, name).items():
                if not isinstance(key, str) or not (key in SYMBOLIC_CURRENCIES or (len(key) == 3 and key.isupper()
                                                                                  and key.isalpha())):
                    raise Invalid(f"{name}.{key}", "is not a currency",
                                  f"use a code like USD or one of {', '.join(SYMBOLIC_CURRENCIES)}")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise Invalid(f"{name}.{key}", f"expected a number, got {value!r}",
                                  "rates are annual fractions (0.05), shifts basis points (300)")
                bound = MAX_RATE if name == "rates" else MAX_SHIFT_BPS
                if not -bound < value < bound:
                    raise Invalid(f"{name}.{key}", f"must be in ({-bound:g}, {bound:g}), got {value:g}",
                                  "rates are annual fractions (0.05), shifts basis points (300)")
        if self.markup is not None:
            _finite("markup", self.markup)
            if self.markup < 0:
                raise Invalid("markup", f"must be >= 0, got {self.markup:g}", "give an annual fraction like 0.01")
        _factor("markup_multiplier", self.markup_multiplier, MARKUP_FACTOR)
        if not (self.rates or self.shift_bps or self.markup is not None or self.markup_multiplier != 1.0):
            raise Invalid("rates", "the financing shock changes nothing",
                          "give rates, shift_bps, markup or markup_multiplier")

    @staticmethod
    def _currencies(key: str, market: MarketData, config: BrokerSettings, rates: dict[str, float]) -> list[str]:
        if key == "base":
            return list(dict.fromkeys(p.base for p in market.pairs))
        if key == "quote":
            return list(dict.fromkeys(p.quote for p in market.pairs))
        if key == "account":
            return [config.account.currency]
        if key == "all":
            return list(rates)
        return [key]

    def apply_config(self, config: BrokerSettings, market: MarketData) -> tuple[BrokerSettings, list[str]]:
        """A new env config with the shocked financing; raises ``KeyError(currency)`` when a
        shifted currency has no rate."""
        old = config.financing
        rates = dict(old.rates)
        changed: dict[str, float] = {}
        for key, value in self.rates.items():
            for cur in self._currencies(key, market, config, rates):
                rates[cur] = float(value)
                changed[cur] = rates[cur]
        for key, bps in self.shift_bps.items():
            for cur in self._currencies(key, market, config, rates):
                if cur not in rates:
                    raise KeyError(cur)
                rates[cur] = rates[cur] + float(bps) / 1e4
                changed[cur] = rates[cur]
        markup = (old.markup if self.markup is None else float(self.markup)) * self.markup_multiplier
        notes = [f"financing: {cur} rate {old.rates.get(cur, float('nan')):.4%} → {rate:.4%}"
                 for cur, rate in changed.items()]
        if markup != old.markup:
            notes.append(f"financing: markup {old.markup:.4%} → {markup:.4%}")
        return replace(config, financing=replace(old, rates=rates, markup=markup)), notes


TRANSFORMS: dict[str, type[Transform]] = {
    cls.KIND: cls for cls in (SpreadTransform, LiquidityTransform, VolatilityTransform, JumpTransform,
                              GapTransform, CorrelationBreakTransform, FinancingTransform)
}
