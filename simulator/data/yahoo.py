"""Yahoo Finance (yfinance) bars as validated :class:`~simulator.data.market.MarketData`, cached on disk.

Why a cache, offline first: Yahoo is rate limited, sometimes unreachable, and only keeps
intraday history for a rolling window (e.g. 730 days of 1h bars), so a run must be
reproducible from disk. The cache is a plain CSV in our canonical form (``time`` as UTC
ISO 8601, then ``open, high, low, close[, volume]`` as downloaded) — never a pickle — keyed
by symbol, interval, start and end. It is written atomically and only after the
download validated, so a bad download never replaces a good cache.

Yahoo conventions handled here:

* prices: one quote side per bar, treated as **mid** (quote currency per unit of base);
* no spread: it is modelled with :class:`~simulator.data.spread_model.SpreadModel` (noted);
* volume: 0 for FX; kept as reported when present;
* timestamps: tz-aware for intraday (possibly not UTC, e.g. Europe/London), naive for
  daily bars — converted / localised to UTC;
* rows whose prices are all NaN (Yahoo pads weekends and holidays) are dropped (noted);
* failures: ``yfinance.download`` may raise, or print to stderr and return an empty frame;
  both become one :class:`~simulator.common.errors.DataError` line naming the cache path looked
  for and the CSV alternative.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.common.errors import DataError
from simulator.data.market import PRICE_FIELDS, MarketData, validate_bars
from simulator.data.pairs import normalise_symbol, pair_spec
from simulator.data.spread_model import SpreadModel

__all__ = ["default_cache_dir", "load_yfinance", "yahoo_cache_path"]

#: Signature of a download boundary: (symbol, start, end, interval) -> raw yfinance frame.
Downloader = Callable[[str, "str | None", "str | None", str], "pd.DataFrame | None"]

CACHE_ENV_VAR = "FXRISK_CACHE_DIR"
_RAW_FIELDS: tuple[str, ...] = (*PRICE_FIELDS, "volume")
_CSV_HINT = "export bars to CSV and load them with simulator.data.csv_loader.load_csv(path, fmt=...)"


def default_cache_dir() -> Path:
    """``$FXRISK_CACHE_DIR`` if set, else ``~/.cache/fx-risk-gym/yahoo`` (read at call time)."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fx-risk-gym" / "yahoo"


def _key_part(value: object | None) -> str:
    """A file-name-safe token: letters, digits, '.', '-'; everything else becomes '_'."""
    if value is None:
        return "none"
    return re.sub(r"[^A-Za-z0-9.\-]+", "_", str(value)).strip("_") or "none"


def yahoo_cache_path(
    symbol: str,
    interval: str,
    start: str | None,
    end: str | None,
    cache_dir: str | Path | None = None,
) -> Path:
    """The cache file for one request: ``<dir>/<symbol>_<interval>_<start>_<end>.csv`` (sanitised)."""
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    name = "_".join(_key_part(v) for v in (symbol, interval, start, end)) + ".csv"
    return directory / name


def _download(symbol: str, start: str | None, end: str | None, interval: str) -> pd.DataFrame | None:
    """The only network call: ``yfinance.download`` for one ticker, unadjusted, quiet.

    Module level so tests monkeypatch it; may raise or return an empty frame on failure.
    """
    import yfinance  # imported here so importing this module never needs the network stack

    return yfinance.download(
        symbol,
        start=start,
        end=end,
        interval=interval,
        auto_adjust=False,
        progress=False,
        multi_level_index=False,
        threads=False,
    )


def _flatten_columns(frame: pd.DataFrame, symbol: str, source: str) -> pd.DataFrame:
    """Flat lower-case field columns from yfinance's flat or (Price, Ticker) MultiIndex columns."""
    cols = frame.columns
    if isinstance(cols, pd.MultiIndex):
        # Find the level holding the field names (Price); the other is the ticker.
        levels = [{str(v).lower() for v in cols.get_level_values(i)} for i in range(cols.nlevels)]
        field_level = next((i for i, names in enumerate(levels) if "close" in names), None)
        if field_level is None:
            raise DataError(f"no 'Close' column in the download (columns {list(cols)})", source=source,
                            hint="check the symbol and the yfinance version")
        other = [i for i in range(cols.nlevels) if i != field_level]
        if other:
            tickers = list(dict.fromkeys(cols.get_level_values(other[0])))
            if len(tickers) > 1:
                if symbol not in tickers:
                    raise DataError(f"download holds tickers {tickers}, not {symbol}", source=source,
                                    hint="download one ticker at a time")
                frame = frame.xs(symbol, axis=1, level=other[0])
            else:
                frame = frame.droplevel(other, axis=1)
        cols = frame.columns
    renamed = frame.rename(columns=lambda c: str(c).strip().lower().replace(" ", "_"))
    missing = [f for f in PRICE_FIELDS if f not in renamed.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)} in the download (columns {list(map(str, cols))})",
                        source=source, field=missing[0], hint="check the symbol and the yfinance version")
    keep = [f for f in _RAW_FIELDS if f in renamed.columns]  # drops adj_close, dividends, ...
    return renamed[keep]


def _to_utc_index(index: pd.Index, source: str) -> pd.DatetimeIndex:
    """UTC DatetimeIndex at ns resolution: tz-aware converted, naive (daily) localised as UTC."""
    if not isinstance(index, pd.DatetimeIndex):
        try:
            index = pd.DatetimeIndex(pd.to_datetime(index, utc=True))
        except (ValueError, TypeError) as exc:
            raise DataError(f"timestamps could not be parsed ({exc})", source=source,
                            hint="check the yfinance version") from exc
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return index.as_unit("ns").rename("time")


def _canonical(raw: pd.DataFrame, symbol: str, source: str) -> tuple[pd.DataFrame, str]:
    """Raw yfinance frame → canonical cache frame (UTC index 'time', fields as downloaded).

    Returns the frame and a note on how timestamps were brought to UTC.
    """
    frame = _flatten_columns(raw, symbol, source)
    tz = getattr(raw.index, "tz", None)
    tz_note = ("naive (daily) Yahoo timestamps taken as UTC" if tz is None
               else f"Yahoo timestamps converted from {tz} to UTC")
    frame = frame.copy()
    frame.index = _to_utc_index(frame.index, source)
    for name in frame.columns:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    return frame, tz_note


def _write_cache(frame: pd.DataFrame, path: Path) -> None:
    """Write the canonical frame to ``path`` atomically (temp file in the same dir + os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = frame.copy()
    out.index = pd.Index([ts.isoformat() for ts in frame.index], name="time")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            out.to_csv(fh, index=True, lineterminator="\n")  # repr floats: exact round trip
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _read_cache(path: Path) -> pd.DataFrame:
    """Read a cache CSV back into the canonical frame; a corrupt file is a one-line DataError."""
    source = str(path)
    hint = "delete the file or load with refresh=True to download it again"
    try:
        table = pd.read_csv(path, dtype={"time": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read the Yahoo cache file ({exc})", source=source, hint=hint) from exc
    if "time" not in table.columns:
        raise DataError(f"no 'time' column in the cache file (columns {list(table.columns)})",
                        source=source, field="time", hint=hint)
    missing = [f for f in PRICE_FIELDS if f not in table.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)} in the cache file", source=source,
                        field=missing[0], hint=hint)
    index = pd.DatetimeIndex(pd.to_datetime(table["time"], utc=True, format="ISO8601", errors="coerce"))
    frame = table[[f for f in _RAW_FIELDS if f in table.columns]].copy()
    frame.index = index.as_unit("ns").rename("time")
    return frame


def _clean(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Drop all-NaN price rows, fill missing volume with 0; returns kept row positions and notes."""
    notes: list[str] = []
    prices = frame[list(PRICE_FIELDS)]
    keep = ~prices.isna().all(axis=1).to_numpy()
    dropped = int((~keep).sum())
    if dropped:
        plural = "s" if dropped != 1 else ""
        notes.append(f"dropped {dropped} row{plural} with all prices missing (Yahoo pads weekends and holidays)")
    positions = np.flatnonzero(keep)
    frame = frame.iloc[positions].copy()
    if "volume" in frame.columns:
        vol_nan = int(frame["volume"].isna().sum())
        if vol_nan == len(frame):
            frame = frame.drop(columns="volume")
            notes.append("volume was missing on every bar and was dropped")
        elif vol_nan:
            frame["volume"] = frame["volume"].fillna(0.0)
            notes.append(f"{vol_nan} missing volumes set to 0")
    return frame, positions, notes


def _offline_error(symbol: str, interval: str, start: str | None, end: str | None, path: Path,
                   reason: str, cache_exists: bool) -> DataError:
    """The one-line message for 'no data from Yahoo': cache path looked for + CSV alternative."""
    span = f"{interval} bars, start={start or 'default'}, end={end or 'default'}"
    reason = " ".join(reason.split())
    if len(reason) > 300:
        reason = reason[:297] + "..."
    problem = f"Yahoo could not be reached or returned no data for {symbol} ({span})"
    if reason:
        problem += f" [{reason}]"
    if cache_exists:
        problem += f"; a cache exists at {path} but refresh=True asked for a new download"
        hint = f"retry later, load without refresh=True to use the cache, or {_CSV_HINT}"
    else:
        problem += f"; no cache at {path}"
        hint = f"check the connection, symbol and date range (Yahoo keeps 1h bars for ~730 days), or {_CSV_HINT}"
    return DataError(problem, source=f"yahoo:{symbol}", hint=hint)


def load_yfinance(
    symbol: str = "EURUSD=X",
    *,
    start: str | None = None,
    end: str | None = None,
    interval: str = "1h",
    cache_dir: str | Path | None = None,
    refresh: bool = False,
    spread_model: SpreadModel | None = None,
    downloader: Downloader | None = None,
) -> MarketData:
    """Yahoo FX bars for ``symbol`` (e.g. ``'EURUSD=X'``) as validated mid bars with a modelled spread.

    Offline first: an existing cache file (see :func:`yahoo_cache_path`) is loaded without
    touching the network unless ``refresh=True``. ``start``/``end`` are dates as yfinance
    takes them (end exclusive); ``interval`` is a yfinance interval ('1h', '1d', ...).
    Prices are in quote currency per unit of base; ``spread`` is in price units, from
    ``spread_model`` (default :class:`SpreadModel()`). ``downloader`` replaces the network
    boundary ``_download(symbol, start, end, interval)``.
    Raises :class:`DataError` (one line) when Yahoo gives nothing and there is no cache,
    or when the data breaks the bar schema.
    """
    path = yahoo_cache_path(symbol, interval, start, end, cache_dir)
    pair = normalise_symbol(symbol)
    spec = pair_spec(pair)
    model = spread_model if spread_model is not None else SpreadModel()
    notes: list[str] = []
    from_cache = path.exists() and not refresh

    if from_cache:
        canonical = _read_cache(path)
        check_source = str(path)
        notes.append(f"Yahoo {interval} bars for {symbol} loaded from cache {path}")
    else:
        fetch = downloader if downloader is not None else _download
        try:
            raw = fetch(symbol, start, end, interval)
        except Exception as exc:  # any failure of the network boundary (DNS, HTTP, rate limit, ...)
            raise _offline_error(symbol, interval, start, end, path, f"{type(exc).__name__}: {exc}",
                                 path.exists()) from exc
        if raw is None or len(raw) == 0:
            raise _offline_error(symbol, interval, start, end, path,
                                 "empty download; yfinance prints the cause to stderr", path.exists())
        check_source = f"yahoo:{symbol} download ({interval})"
        canonical, tz_note = _canonical(raw, symbol, check_source)
        notes.append(f"Yahoo {interval} bars for {symbol} downloaded "
                     f"{pd.Timestamp.now(tz='UTC').isoformat(timespec='seconds')}; {tz_note}")

    bars, positions, clean_notes = _clean(canonical)
    if len(bars) == 0 and not from_cache:
        raise _offline_error(symbol, interval, start, end, path, "every bar had missing prices", path.exists())
    # Name the cache file's line (header is line 1) or the row of the downloaded frame.
    try:
        validate_bars(bars, source=check_source, lines=positions + 2 if from_cache else None,
                      require=PRICE_FIELDS)
    except DataError as err:
        if from_cache or err.row is None:
            raise
        raise DataError(err.problem, source=err.source, row=int(positions[err.row]), timestamp=err.timestamp,
                        field=err.field, hint=err.hint) from err

    notes.extend(clean_notes)
    notes.append("Yahoo prices treated as mid quotes (Yahoo publishes one side, no bid/ask)")
    bars = bars.copy()
    bars["spread"] = model.spread_price(bars.index, bars["high"].to_numpy(), bars["low"].to_numpy(),
                                        spec.pip_size)
    notes.append(
        f"spread modelled (Yahoo has none): SpreadModel(base_pips={model.base_pips}, "
        f"vol_elasticity={model.vol_elasticity}, vol_halflife_hours={model.vol_halflife_hours}, "
        f"max_multiple={model.max_multiple}) with a UTC hour-of-day profile"
    )
    if "volume" in bars.columns and bool((bars["volume"] == 0).all()):
        notes.append("volume is 0 on every bar (Yahoo reports no FX volume)")
    ordered = [f for f in ("open", "high", "low", "close", "spread", "volume") if f in bars.columns]
    market = MarketData.from_frames({pair: bars[ordered]}, [spec], source=f"yahoo:{symbol}", notes=notes)

    if not from_cache:
        try:
            _write_cache(canonical, path)
        except OSError as exc:  # the data is good; a read-only cache dir must not lose it
            warnings.warn(f"could not write the Yahoo cache {path}: {exc}", RuntimeWarning, stacklevel=2)
    return market
