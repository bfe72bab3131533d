"""The one bar schema every data source yields, and its validation.

A :class:`MarketData` holds one or several currency pairs on one clock:

* index: a UTC ``DatetimeIndex``, strictly increasing and unique (bar open times);
* columns: a two-level ``MultiIndex`` ``(pair, field)`` with fields
  ``open, high, low, close`` — **mid** prices in quote currency per unit of base —
  ``spread`` — the full bid-ask spread in **price units** (quote currency; divide by
  the pair's ``pip_size`` for pips), so ``bid = mid - spread/2`` and ``ask = mid + spread/2``
  — and, where the source has them, ``volume`` (as reported by the source, e.g. tick
  volume) and ``liquidity`` (volume tradable per bar, in units of base currency: the V
  of the square-root impact law and the base of participation limits on fills);
* pair metadata (:class:`~simulator.data.pairs.PairSpec`) as data.

Why one schema: forecasters, scenarios, the simulator and the environment read only
this, so a new source needs a loader and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simulator.common.errors import DataError
from simulator.data.pairs import PairSpec

PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close")
REQUIRED_FIELDS: tuple[str, ...] = (*PRICE_FIELDS, "spread")
OPTIONAL_FIELDS: tuple[str, ...] = ("volume", "liquidity")
FIELD_ORDER: tuple[str, ...] = (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)

HOURS_PER_YEAR = 365.25 * 24.0


def _locate(source: str, index: pd.Index, pos: int, lines: np.ndarray | None) -> dict:
    """Keyword arguments for :class:`DataError` that point at row ``pos``."""
    where: dict = {"source": source}
    if lines is not None:
        where["line"] = int(lines[pos])
    else:
        where["row"] = int(pos)
    ts = index[pos]
    if not pd.isna(ts):
        where["timestamp"] = ts
    return where


def validate_bars(
    frame: pd.DataFrame,
    *,
    source: str,
    lines: np.ndarray | None = None,
    require: Sequence[str] = REQUIRED_FIELDS,
) -> None:
    """Raise :class:`DataError` at the first violation of the bar schema in ``frame``.

    ``frame`` is one pair's bars (columns are field names). ``lines`` optionally maps
    row positions to line numbers of the file the rows came from, so the error can
    name the line a user can open in an editor.
    """
    if len(frame) == 0:
        raise DataError("no bars (the data is empty)", source=source, hint="check the file or the date range")
    missing = [f for f in require if f not in frame.columns]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}",
            source=source,
            field=missing[0],
            hint="rename the columns or pass a column mapping",
        )
    unknown = [c for c in frame.columns if c not in FIELD_ORDER]
    if unknown:
        raise DataError(
            f"unknown column(s) {', '.join(map(str, unknown))}",
            source=source,
            field=str(unknown[0]),
            hint=f"the schema's fields are {', '.join(FIELD_ORDER)}",
        )
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError("the index is not a DatetimeIndex", source=source, hint="parse the timestamps first")
    if index.tz is None or str(index.tz) != "UTC":
        raise DataError(
            f"timestamps are not in UTC (tz={index.tz})",
            source=source,
            hint="localise or convert them with tz_convert('UTC')",
        )
    nat = np.flatnonzero(index.isna())
    if nat.size:
        raise DataError("unparsable or missing timestamp", **_locate(source, index, int(nat[0]), lines),
                        hint="fix the date or pass the right date format")
    stamps = index.asi8
    if stamps.size > 1:
        step = np.diff(stamps)
        bad = np.flatnonzero(step <= 0)
        if bad.size:
            pos = int(bad[0]) + 1
            if step[pos - 1] == 0:
                raise DataError(
                    "duplicated timestamp",
                    **_locate(source, index, pos, lines),
                    hint="remove the duplicate or load with cleaning (drop_duplicates)",
                )
            raise DataError(
                f"timestamp goes back in time (previous bar {index[pos - 1]})",
                **_locate(source, index, pos, lines),
                hint="sort the file by time or load with cleaning (sort)",
            )
    values = {}
    for name in frame.columns:
        col = frame[name]
        if not pd.api.types.is_numeric_dtype(col.dtype):
            raise DataError(f"column is not numeric (dtype {col.dtype})", source=source, field=str(name),
                            hint="check the separator and the decimal mark")
        arr = col.to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise DataError("missing or non-finite value", **_locate(source, index, int(bad[0]), lines),
                            field=str(name), hint="fix or drop the row, or load with cleaning (drop_invalid_rows)")
        values[name] = arr
    for name in PRICE_FIELDS:
        if name not in values:
            continue
        bad = np.flatnonzero(values[name] <= 0)
        if bad.size:
            pos = int(bad[0])
            raise DataError(f"price must be > 0, got {values[name][pos]}", **_locate(source, index, pos, lines),
                            field=name, hint="fix or drop the row")
    if all(p in values for p in PRICE_FIELDS):
        o, h, lo, c = (values[p] for p in PRICE_FIELDS)
        bad = np.flatnonzero(h < lo)
        if bad.size:
            pos = int(bad[0])
            raise DataError(f"high {h[pos]} is below low {lo[pos]}", **_locate(source, index, pos, lines),
                            field="high", hint="check the column order (open, high, low, close)")
        bad = np.flatnonzero(h < np.maximum(o, c))
        if bad.size:
            pos = int(bad[0])
            raise DataError(f"high {h[pos]} is below open/close {max(o[pos], c[pos])}",
                            **_locate(source, index, pos, lines), field="high",
                            hint="check the column order (open, high, low, close)")
        bad = np.flatnonzero(lo > np.minimum(o, c))
        if bad.size:
            pos = int(bad[0])
            raise DataError(f"low {lo[pos]} is above open/close {min(o[pos], c[pos])}",
                            **_locate(source, index, pos, lines), field="low",
                            hint="check the column order (open, high, low, close)")
    for name in ("spread", "volume", "liquidity"):
        if name not in values:
            continue
        bad = np.flatnonzero(values[name] < 0)
        if bad.size:
            pos = int(bad[0])
            raise DataError(f"{name} must be >= 0, got {values[name][pos]}", **_locate(source, index, pos, lines),
                            field=name, hint="fix or drop the row")


@dataclass(frozen=True, eq=False)
class MarketData:
    """Validated bars for one or several pairs on one clock (see the module docstring).

    Construct through :meth:`from_frames` or a loader; the constructor validates too.
    ``notes`` records what loaders and cleaning did to the raw data (never silent).
    """

    bars: pd.DataFrame
    pairs: tuple[PairSpec, ...]
    source: str = "market data"
    notes: tuple[str, ...] = field(default_factory=tuple)
    conversion: pd.DataFrame | None = None
    """Close rates of pairs held for currency conversion only (columns: symbols such as USDCHF),
    on the same clock; they are not traded. E.g. CHF → USD for a EURCHF position in a USD account."""

    def __post_init__(self) -> None:
        if self.conversion is not None:
            conv = self.conversion
            if not conv.index.equals(self.bars.index):
                raise DataError("conversion rates are not on the bars' clock", source=self.source,
                                hint="reindex them to the bars' timestamps")
            values = conv.to_numpy(np.float64)
            if not (np.isfinite(values).all() and (values > 0).all()):
                raise DataError("conversion rates must be finite and > 0", source=self.source,
                                field=str(conv.columns[0]))
        cols = self.bars.columns
        if not isinstance(cols, pd.MultiIndex) or cols.nlevels != 2:
            raise DataError("bars must have (pair, field) MultiIndex columns", source=self.source)
        symbols = tuple(dict.fromkeys(cols.get_level_values(0)))
        if symbols != tuple(p.symbol for p in self.pairs):
            raise DataError(
                f"pair metadata {[p.symbol for p in self.pairs]} does not match the columns {list(symbols)}",
                source=self.source,
            )
        fields_per_pair = {s: tuple(self.bars[s].columns) for s in symbols}
        first = fields_per_pair[symbols[0]]
        for s, f in fields_per_pair.items():
            if f != first:
                raise DataError(f"pair {s} has fields {f} but {symbols[0]} has {first}", source=self.source,
                                hint="give every pair the same fields")
        for s in symbols:
            validate_bars(self.bars[s], source=f"{self.source} [{s}]")

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_frames(
        cls,
        frames: Mapping[str, pd.DataFrame],
        pairs: Sequence[PairSpec],
        *,
        source: str,
        join: str = "inner",
        notes: Sequence[str] = (),
    ) -> MarketData:
        """Put per-pair frames on one clock.

        ``join='inner'`` keeps the timestamps every pair has; ``'outer'`` keeps all and
        carries each pair's last close forward over its missing bars (flat bar, zero
        volume), which is reported in ``notes``. Carrying forward uses past data only.
        """
        specs = {p.symbol: p for p in pairs}
        if set(specs) != set(frames):
            raise DataError(f"frames {sorted(frames)} and pair metadata {sorted(specs)} differ", source=source)
        notes = list(notes)
        symbols = list(frames)
        for s in symbols:
            validate_bars(frames[s], source=f"{source} [{s}]")
        fields = [f for f in FIELD_ORDER if all(f in frames[s].columns for s in symbols)]
        dropped_fields = sorted({c for s in symbols for c in frames[s].columns} - set(fields))
        if dropped_fields:
            notes.append(f"fields not present for every pair were dropped: {', '.join(dropped_fields)}")
        if join == "inner":
            index = frames[symbols[0]].index
            for s in symbols[1:]:
                index = index.intersection(frames[s].index)
            for s in symbols:
                lost = len(frames[s]) - len(index)
                if lost:
                    notes.append(f"{s}: {lost} bars without a counterpart in every pair were dropped (inner join)")
            aligned = {s: frames[s].loc[index, fields] for s in symbols}
        elif join == "outer":
            index = frames[symbols[0]].index
            for s in symbols[1:]:
                index = index.union(frames[s].index)
            aligned = {}
            for s in symbols:
                f = frames[s][fields].reindex(index)
                missing = f["close"].isna()
                if missing.any():
                    close = f["close"].ffill()
                    for p in PRICE_FIELDS:
                        f[p] = f[p].fillna(close)
                    for carried in ("spread", "liquidity"):
                        if carried in f:
                            f[carried] = f[carried].ffill()
                    if "volume" in f:
                        f["volume"] = f["volume"].fillna(0.0)
                    notes.append(f"{s}: {int(missing.sum())} missing bars carried forward (outer join)")
                aligned[s] = f
            start = max(frames[s].index[0] for s in symbols)
            aligned = {s: a.loc[start:] for s, a in aligned.items()}
        else:
            raise ValueError(f"join must be 'inner' or 'outer', got {join!r}")
        bars = pd.concat(aligned, axis=1, names=["pair", "field"])
        bars.index.name = "time"
        return cls(bars=bars.astype(np.float64), pairs=tuple(specs[s] for s in symbols), source=source,
                   notes=tuple(notes))

    # -- access ----------------------------------------------------------------------
    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(p.symbol for p in self.pairs)

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.bars.index  # type: ignore[return-value]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.bars[self.symbols[0]].columns)

    def __len__(self) -> int:
        return len(self.bars)

    def spec(self, symbol: str) -> PairSpec:
        for p in self.pairs:
            if p.symbol == symbol:
                return p
        raise KeyError(f"pair {symbol} not in this market (pairs: {', '.join(self.symbols)})")

    def pair(self, symbol: str) -> pd.DataFrame:
        """One pair's bars as a (time × field) frame (a copy)."""
        self.spec(symbol)
        return self.bars[symbol].copy()

    def field_array(self, name: str) -> np.ndarray:
        """Values of one field for all pairs, float64 shaped (time, pair)."""
        if name not in self.fields:
            raise KeyError(f"field {name} not in this market (fields: {', '.join(self.fields)})")
        return np.stack([self.bars[(s, name)].to_numpy(np.float64) for s in self.symbols], axis=1)

    def to_array(self, fields: Sequence[str] | None = None) -> np.ndarray:
        """Bars as float64 shaped (time, pair, field), for the array-based layers."""
        fields = tuple(fields or self.fields)
        return np.stack([self.field_array(f) for f in fields], axis=2)

    def spread_pips(self) -> np.ndarray:
        """Spread in pips, shaped (time, pair)."""
        return self.field_array("spread") / np.array([p.pip_size for p in self.pairs])

    def log_returns(self) -> np.ndarray:
        """Close-to-close log returns shaped (time, pair); row 0 is NaN (no previous close)."""
        close = self.field_array("close")
        out = np.full_like(close, np.nan)
        out[1:] = np.diff(np.log(close), axis=0)
        return out

    def bars_per_year(self) -> float:
        """Bars per calendar year observed in this data (FX hourly: about 6,200)."""
        if len(self) < 2:
            raise DataError("need at least two bars to measure the bar frequency", source=self.source)
        span_hours = (self.index[-1] - self.index[0]) / pd.Timedelta(hours=1)
        return (len(self) - 1) / span_hours * HOURS_PER_YEAR

    def slice(self, start: object | None = None, end: object | None = None) -> MarketData:
        """Bars with ``start <= time < end`` (end exclusive), as a new MarketData."""
        idx = self.index
        lo = 0 if start is None else idx.searchsorted(pd.Timestamp(start, tz="UTC") if pd.Timestamp(start).tz is None
                                                       else pd.Timestamp(start))
        hi = len(idx) if end is None else idx.searchsorted(pd.Timestamp(end, tz="UTC") if pd.Timestamp(end).tz is None
                                                            else pd.Timestamp(end))
        conversion = None if self.conversion is None else self.conversion.iloc[lo:hi].copy()
        return MarketData(bars=self.bars.iloc[lo:hi].copy(), pairs=self.pairs, source=self.source, notes=self.notes,
                          conversion=conversion)

    def select(self, symbols: Sequence[str]) -> MarketData:
        """A market with only the given pairs."""
        pairs = tuple(self.spec(s) for s in symbols)
        return MarketData(bars=self.bars[list(symbols)].copy(), pairs=pairs, source=self.source, notes=self.notes,
                          conversion=self.conversion)

    def rate(self, symbol: str) -> np.ndarray | None:
        """Close rates of ``symbol`` (time,) from the traded pairs or the conversion rates; None if absent."""
        if symbol in self.symbols:
            return self.bars[(symbol, "close")].to_numpy(np.float64)
        if self.conversion is not None and symbol in self.conversion.columns:
            return self.conversion[symbol].to_numpy(np.float64)
        return None

    def fingerprint(self) -> str:
        """Stable content hash (for cache keys): values, timestamps and pair metadata."""
        h = hashlib.sha256()
        h.update(self.index.as_unit("ns").asi8.tobytes())
        h.update(np.ascontiguousarray(self.bars.to_numpy(np.float64)).tobytes())
        h.update(repr([tuple(self.bars.columns)]).encode())
        h.update(repr(self.pairs).encode())
        if self.conversion is not None:
            h.update(np.ascontiguousarray(self.conversion.to_numpy(np.float64)).tobytes())
            h.update(repr(list(self.conversion.columns)).encode())
        return h.hexdigest()[:16]

    def summary(self) -> pd.DataFrame:
        """One row per pair: span, bars, annualised volatility, return moments, spread, liquidity."""
        rows = []
        bpy = self.bars_per_year()
        rets = self.log_returns()[1:]
        spread = self.spread_pips()
        for j, p in enumerate(self.pairs):
            r = rets[:, j]
            s = pd.Series(r)
            row = {
                "pair": p.symbol,
                "start": self.index[0],
                "end": self.index[-1],
                "bars": len(self),
                "first_close": float(self.bars[(p.symbol, "close")].iloc[0]),
                "last_close": float(self.bars[(p.symbol, "close")].iloc[-1]),
                "ann_vol_pct": float(np.std(r, ddof=1) * np.sqrt(bpy) * 100),
                "excess_kurtosis": float(s.kurt()),
                "acf1_returns": float(s.autocorr(1)),
                "acf1_abs_returns": float(s.abs().autocorr(1)),
                "median_spread_pips": float(np.median(spread[:, j])),
                "p99_spread_pips": float(np.quantile(spread[:, j], 0.99)),
            }
            if "liquidity" in self.fields:
                row["median_liquidity"] = float(np.median(self.bars[(p.symbol, "liquidity")]))
            rows.append(row)
        return pd.DataFrame(rows).set_index("pair")
