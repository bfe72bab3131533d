"""Load FX bar exports (HistData, Dukascopy, MetaTrader 4/5, generic, close-only, wide CSV) into :class:`MarketData`.

Why a format object: every vendor writes bars differently (separator, header, date
format, time zone, bid or ask side, spread unit). A :class:`CsvFormat` states those
conventions as data; presets cover the common exports and ``dataclasses.replace``
derives variants (e.g. ``replace(preset('metatrader4'), timezone='Europe/Athens')``).

Output prices are **mid** prices (``mid = bid + spread/2 = ask - spread/2``) and the
spread is in **price units**, as the schema in :mod:`simulator.data.market` requires.

Close-only files (a date and a close column: ECB, FRED and most spreadsheet exports) get
OHLC by :func:`simulator.data.close_only.ohlc_from_close` (open = previous close); rows without a
value (holidays) are dropped. Wide files (a date column and one close column per pair, named
by symbol) are close-only for every pair, aligned by :func:`simulator.data.close_only.align_closes`.
Both get the typical spread of each pair (``simulator/data/spreads.yaml``) unless a spread
is given.

Every malformed file raises :class:`~simulator.common.errors.DataError` with one line naming
the file, the 1-based file line (the header is line 1), the field, the raw text and a
hint. Cleaning is opt-in (``clean=CleaningConfig(...)``) and fully reported.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import types
import zoneinfo
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.data.cleaning import CleaningConfig, clean_bars
from simulator.data.close_only import DEFAULT_MAX_FILL, align_closes, ohlc_from_close
from simulator.common.errors import DataError
from simulator.data.market import FIELD_ORDER, PRICE_FIELDS, MarketData, validate_bars
from simulator.data.pairs import PairSpec, normalise_symbol, pair_spec_with_note
from simulator.data.spread_model import SpreadModel, typical_spread_model

logger = logging.getLogger("fxrisk.data")

ColumnRef = str | int | tuple[str, ...]
"""A file column: a header name, a 0-based position, or alternative header names."""

SEPARATORS: tuple[str, ...] = ("\t", ";", ",")  # detection order: tab, then ';' (decimal-comma files), then ','
KNOWN_FIELDS: tuple[str, ...] = ("datetime", "date", "time", "open", "high", "low", "close", "spread", "volume",
                                 "liquidity")
SPREAD_UNITS: tuple[str, ...] = ("price", "pips", "points")
LAYOUTS: tuple[str, ...] = ("long", "wide")
PRICE_SIDES: tuple[str, ...] = ("mid", "bid", "ask")
_NAN_TOKENS = frozenset({"nan", "na", "n/a", "null", "none", "-nan", "#n/a"})
_CLOSE_ONLY_NAN_TOKENS = _NAN_TOKENS | {"."}  # FRED writes '.' for a day without a value
_ISO_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
#: A one-bar close-to-close move beyond this factor (either way) is flagged in ``notes``: FX bars do
#: not move x1.5 in one bar (SNB 2015 was about x0.8), but a unit or decimal error does (x10, x100).
JUMP_FACTOR = 1.5
_GMT_SUFFIX = re.compile(r"^(?P<body>.*\S)\s+(?:GMT|UTC)(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})$")


def _sep_literal(sep: str) -> str:
    return "'\\t'" if sep == "\t" else f"'{sep}'"


@dataclass(frozen=True, kw_only=True)
class CsvFormat:
    """How a CSV file of bars is written.

    * ``columns`` maps our fields — ``datetime`` or ``date`` + ``time``; ``open, high,
      low, close``; optional ``spread, volume, liquidity`` — to the file's column: a
      header name (matched case-insensitively, surrounding ``<>`` ignored, so MT5's
      ``<DATE>`` matches ``date``), a tuple of alternative names, or a 0-based position
      (required when ``header`` is False).
    * ``sep``: ``','``, ``';'``, ``'\\t'`` or ``None`` (detect from the first line).
    * ``datetime_format``: ``strptime`` format of the date (or of ``date + ' ' + time``),
      a tuple of alternatives tried in order, or ``None`` for ISO 8601. A trailing
      ``GMT+0100`` (Dukascopy "Local time") overrides ``timezone``.
    * ``timezone``: IANA name of the file's clock (e.g. ``'Etc/GMT+5'`` = UTC-5 without
      daylight saving); timestamps are converted to UTC.
    * ``spread_unit``: ``'price'`` (quote currency), ``'pips'`` or ``'points'`` (pip/10).
    * ``price_side``: the side the OHLC prices are quoted on; converted to mid.
    * ``decimal``: the decimal mark of numbers (``'.'`` or ``','``).
    * ``layout``: ``'long'`` — one pair per file, columns as mapped (``close`` alone makes a
      close-only file); ``'wide'`` — ``columns`` maps only the date, and every other column
      is the close of the pair its header names (``EURUSD``, ``EUR/USD``, ``eur_usd``).
    """

    name: str
    columns: Mapping[str, ColumnRef]
    sep: str | None = ","
    header: bool = True
    datetime_format: str | tuple[str, ...] | None = None
    timezone: str = "UTC"
    spread_unit: str = "price"
    price_side: str = "mid"
    decimal: str = "."
    layout: str = "long"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"CsvFormat({self.name}).layout must be one of {LAYOUTS}, got {self.layout!r}")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("CsvFormat.name must be a non-empty string")
        if self.sep not in (*SEPARATORS, None):
            raise ValueError(f"CsvFormat({self.name}).sep must be ',', ';', '\\t' or None (detect), got {self.sep!r}")
        if not isinstance(self.header, bool):
            raise ValueError(f"CsvFormat({self.name}).header must be true or false, got {self.header!r}")
        if not isinstance(self.columns, Mapping):
            raise ValueError(f"CsvFormat({self.name}).columns must be a mapping field -> column, got "
                             f"{type(self.columns).__name__}")
        cols = {str(k): (tuple(v) if isinstance(v, list) else v) for k, v in self.columns.items()}
        unknown = sorted(set(cols) - set(KNOWN_FIELDS))
        if unknown:
            raise ValueError(f"CsvFormat({self.name}).columns has unknown field(s) {unknown}; "
                             f"known fields: {', '.join(KNOWN_FIELDS)}")
        has_dt = "datetime" in cols
        has_date, has_time = "date" in cols, "time" in cols
        if has_dt == (has_date or has_time) or has_date != has_time:
            raise ValueError(f"CsvFormat({self.name}).columns needs either 'datetime' or both 'date' and 'time'")
        if self.layout == "wide":
            extra = sorted(set(cols) - {"datetime", "date", "time"})
            if extra:
                raise ValueError(f"CsvFormat({self.name}) is wide: columns maps only the date (every other column "
                                 f"is a pair's close), got {extra}")
        elif "close" not in cols:
            raise ValueError(f"CsvFormat({self.name}).columns has no 'close' (map at least a close column; "
                             "use preset 'close_only' for a date and a close)")
        else:
            missing = [p for p in ("open", "high", "low") if p not in cols]
            if missing and len(missing) < 3:
                raise ValueError(f"CsvFormat({self.name}).columns is missing price field(s) {missing}: map all of "
                                 "open, high, low, close, or close alone (close-only data)")
        for fld, ref in cols.items():
            ok = (isinstance(ref, int) and not isinstance(ref, bool) and ref >= 0) or (
                isinstance(ref, str) and ref.strip()) or (
                isinstance(ref, tuple) and ref and all(isinstance(r, str) and r.strip() for r in ref))
            if not ok:
                raise ValueError(f"CsvFormat({self.name}).columns['{fld}'] must be a column name, a tuple of "
                                 f"names or a 0-based position, got {ref!r}")
            if not self.header and not isinstance(ref, int):
                raise ValueError(f"CsvFormat({self.name}) has no header, so columns['{fld}'] must be a 0-based "
                                 f"position, got {ref!r}")
        positions = [r for r in cols.values() if isinstance(r, int)]
        if len(positions) != len(set(positions)):
            raise ValueError(f"CsvFormat({self.name}).columns maps two fields to the same position: {positions}")
        object.__setattr__(self, "columns", types.MappingProxyType(cols))
        fmt = self.datetime_format
        if isinstance(fmt, list):
            fmt = tuple(fmt)
            object.__setattr__(self, "datetime_format", fmt)
        if not (fmt is None or (isinstance(fmt, str) and fmt) or (
                isinstance(fmt, tuple) and fmt and all(isinstance(f, str) and f for f in fmt))):
            raise ValueError(f"CsvFormat({self.name}).datetime_format must be a strptime format, a tuple of "
                             f"formats or None (ISO 8601), got {fmt!r}")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"CsvFormat({self.name}).timezone {self.timezone!r} is not an IANA time zone "
                             "(e.g. 'UTC', 'Europe/London', 'Etc/GMT+5' for UTC-5)") from None
        if self.spread_unit not in SPREAD_UNITS:
            raise ValueError(f"CsvFormat({self.name}).spread_unit must be one of {SPREAD_UNITS}, "
                             f"got {self.spread_unit!r}")
        if self.price_side not in PRICE_SIDES:
            raise ValueError(f"CsvFormat({self.name}).price_side must be one of {PRICE_SIDES}, "
                             f"got {self.price_side!r}")
        if self.decimal not in (".", ","):
            raise ValueError(f"CsvFormat({self.name}).decimal must be '.' or ',', got {self.decimal!r}")
        if self.decimal == self.sep:
            raise ValueError(f"CsvFormat({self.name}): decimal mark and separator are both {self.sep!r}")

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.columns.items()), self.sep, self.header, self.datetime_format,
                     self.timezone, self.spread_unit, self.price_side, self.decimal, self.layout))

    @property
    def close_only(self) -> bool:
        """True when the file carries closes only (wide files, or ``close`` mapped without OHLC)."""
        return self.layout == "wide" or "open" not in self.columns

    @property
    def formats(self) -> tuple[str, ...]:
        """The date formats to try, in order (empty: ISO 8601)."""
        fmt = self.datetime_format
        return () if fmt is None else (fmt,) if isinstance(fmt, str) else tuple(fmt)

    def describe_columns(self) -> str:
        """The expected columns, for error messages."""
        parts = []
        for fld, ref in self.columns.items():
            if isinstance(ref, tuple):
                parts.append("|".join(ref))
            elif isinstance(ref, int):
                parts.append(f"{fld}@{ref}")
            else:
                parts.append(ref)
        return ", ".join(parts)


PRESETS: dict[str, CsvFormat] = {
    "generic": CsvFormat(
        name="generic",
        sep=None,
        header=True,
        columns={"datetime": ("time", "datetime", "timestamp", "date"), "open": "open", "high": "high",
                 "low": "low", "close": "close"},
        datetime_format=None,
    ),
    # HistData.com "Generic ASCII" M1/H1 bars: bid prices, EST without daylight saving.
    "histdata": CsvFormat(
        name="histdata",
        sep=";",
        header=False,
        columns={"datetime": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5},
        datetime_format="%Y%m%d %H%M%S",
        timezone="Etc/GMT+5",
        price_side="bid",
    ),
    # Dukascopy historical data export (JForex / web): bid side by default, GMT.
    "dukascopy": CsvFormat(
        name="dukascopy",
        sep=",",
        header=True,
        columns={"datetime": ("Gmt time", "Time", "Local time"), "open": "Open", "high": "High", "low": "Low",
                 "close": "Close", "volume": "Volume"},
        datetime_format="%d.%m.%Y %H:%M:%S.%f",
        timezone="UTC",
        price_side="bid",
    ),
    # MetaTrader 4 History Center export: bid bars on the broker's server clock (set timezone).
    "metatrader4": CsvFormat(
        name="metatrader4",
        sep=",",
        header=False,
        columns={"date": 0, "time": 1, "open": 2, "high": 3, "low": 4, "close": 5, "volume": 6},
        datetime_format="%Y.%m.%d %H:%M",
        timezone="UTC",
        price_side="bid",
    ),
    # MetaTrader 5 "Bars" export: bid bars, spread in points, server clock (set timezone).
    "metatrader5": CsvFormat(
        name="metatrader5",
        sep="\t",
        header=True,
        columns={"date": "DATE", "time": "TIME", "open": "OPEN", "high": "HIGH", "low": "LOW", "close": "CLOSE",
                 "volume": "TICKVOL", "spread": "SPREAD"},
        datetime_format=("%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M"),
        timezone="UTC",
        spread_unit="points",
        price_side="bid",
    ),
    # A date column and one close column (ECB, FRED, spreadsheet exports): the first two columns.
    "close_only": CsvFormat(
        name="close_only",
        sep=None,
        header=True,
        columns={"datetime": 0, "close": 1},
        datetime_format=None,
    ),
    # A date column and one close column per pair, each named by its symbol (EURUSD or EUR/USD).
    "wide": CsvFormat(
        name="wide",
        sep=None,
        header=True,
        columns={"datetime": 0},
        datetime_format=None,
        layout="wide",
    ),
}


def preset(name: str) -> CsvFormat:
    """The preset format called ``name`` (see :data:`PRESETS`)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown CSV format preset {name!r}; presets: {', '.join(PRESETS)}") from None


# -- reading ------------------------------------------------------------------------------
def _read_text(path: Path, src: str) -> str:
    """The file's text (UTF-8 with or without BOM, UTF-16 with BOM as MT5 writes, else Latin-1)."""
    if not path.exists():
        raise DataError("file not found", source=src, hint="check the path and the working directory")
    if path.is_dir():
        raise DataError("is a directory, not a CSV file", source=src, hint="pass the path of a .csv file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror})", source=src, hint="check the file permissions") \
            from None
    if not raw:
        raise DataError("file is empty (0 bytes)", source=src, line=1, hint="export the data again")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16", errors="replace")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    if "\x00" in text:
        raise DataError("file is not a text CSV (it contains NUL bytes)", source=src, line=1,
                        hint="export the data as CSV text (UTF-8)")
    return text


def _first_line(text: str) -> tuple[int, str]:
    """Line number and text of the first non-blank line."""
    for number, line in enumerate(io.StringIO(text, newline=None), start=1):
        if line.strip():
            return number, line.rstrip("\r\n")
    return 0, ""


def _resolve_sep(fmt: CsvFormat, text: str, src: str) -> tuple[str, int, str]:
    """The separator to use; a wrong preset separator is reported with a fix."""
    number, first = _first_line(text)
    if not number:
        raise DataError("file has no data (only blank lines)", source=src, line=1, hint="export the data again")
    needed = len(fmt.columns) if fmt.header else max(fmt.columns.values()) + 1  # type: ignore[type-var]
    if fmt.sep is None:
        for sep in SEPARATORS:
            if sep in first:
                return sep, number, first
        raise DataError(f"cannot detect the separator: the first line contains none of ',', ';', tab "
                        f"(text '{first[:60]}')", source=src, line=number,
                        hint="pass a format with sep=',' or ';' or '\\t'")
    count = len(_split(first, fmt.sep))
    if count < needed:
        for other in SEPARATORS:
            if other != fmt.sep and len(_split(first, other)) >= needed:
                raise DataError(
                    f"file uses {_sep_literal(other)} as separator, format '{fmt.name}' expects "
                    f"{_sep_literal(fmt.sep)} (the first line splits into {count} column(s))",
                    source=src, line=number,
                    hint=f"pass a format with sep={_sep_literal(other)}, e.g. "
                         f"dataclasses.replace(preset('{fmt.name}'), sep={_sep_literal(other)})",
                )
    return fmt.sep, number, first


def _split(line: str, sep: str) -> list[str]:
    return next(csv.reader([line], delimiter=sep), [])


def _records(text: str, sep: str) -> tuple[list[list[str]], list[int]]:
    """Non-blank records as lists of strings and the file line each ends on (1-based).

    Bar exports never quote fields, so the fast path splits lines directly; a file with
    quotes goes through the ``csv`` module (quoted separators, quoted newlines).
    """
    rows: list[list[str]] = []
    lines: list[int] = []
    if '"' not in text:
        for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
            if line.strip():
                rows.append(line.split(sep))
                lines.append(number)
        return rows, lines
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        rows.append(row)
        lines.append(reader.line_num)
    return rows, lines


def _normal(name: str) -> str:
    """Header name for matching: trimmed, lower case, without surrounding <> (MT5)."""
    n = name.strip().strip('"').strip()
    if n.startswith("<") and n.endswith(">"):
        n = n[1:-1].strip()
    return " ".join(n.lower().split())


def _looks_numeric(text: str) -> bool:
    try:
        float(text.replace(",", "."))
    except ValueError:
        return bool(re.fullmatch(r"[\d.:/\- ]+", text.strip()))
    return True


def _locate_columns(fmt: CsvFormat, first: list[str], line: int, src: str) -> dict[str, int]:
    """Position of each mapped field in the file's rows."""
    found: dict[str, int] = {}
    if fmt.header:
        names = {}
        for i, name in enumerate(first):
            names.setdefault(_normal(name), i)
        missing = []
        for fld, ref in fmt.columns.items():
            if isinstance(ref, int):
                if ref < len(first):
                    found[fld] = ref
                else:
                    missing.append(f"{fld} (position {ref})")
                continue
            options = ref if isinstance(ref, tuple) else (ref,)
            hit = next((names[_normal(o)] for o in options if _normal(o) in names), None)
            if hit is None:
                missing.append(f"{fld} ({' or '.join(repr(o) for o in options)})")
            else:
                found[fld] = hit
        if missing:
            shown = ", ".join(repr(n.strip()) for n in first[:12]) + (" ..." if len(first) > 12 else "")
            looks_data = sum(_looks_numeric(n) for n in first) >= max(2, len(first) // 2)
            hint = ("the first line looks like data, not a header: use a format with header=False and 0-based "
                    "positions" if looks_data else
                    f"rename the columns or pass a format with columns matching the header, e.g. "
                    f"dataclasses.replace(preset('{fmt.name}'), columns={{...}})")
            raise DataError(
                f"missing column(s) {', '.join(missing)}; expected columns {fmt.describe_columns()}; found {shown}",
                source=src, line=line, hint=hint,
            )
        return found
    too_far = {fld: ref for fld, ref in fmt.columns.items() if isinstance(ref, int) and ref >= len(first)}
    if too_far:
        need = max(fmt.columns.values()) + 1  # type: ignore[type-var]
        raise DataError(
            f"line has {len(first)} column(s) but format '{fmt.name}' reads {need} "
            f"({fmt.describe_columns()}); missing {', '.join(f'{k} (position {v})' for k, v in too_far.items())}",
            source=src, line=line, hint="check the separator and the column positions of the format",
        )
    return {fld: int(ref) for fld, ref in fmt.columns.items()}  # type: ignore[arg-type]


def _check_widths(rows: list[list[str]], lines: list[int], width: int, src: str, header: bool) -> None:
    """Every row must have ``width`` fields (trailing empty fields are tolerated)."""
    for row, line in zip(rows, lines):
        n = len(row)
        if n == width:
            continue
        if n > width and not any(x.strip() for x in row[width:]):
            del row[width:]
            continue
        like = "the header" if header else "most lines"
        raise DataError(f"row has {n} field(s), expected {width} like {like}", source=src, line=line,
                        hint="fix or remove the row (a stray or missing separator?)")


# -- parsing ------------------------------------------------------------------------------
def _example(formats: tuple[str, ...]) -> str:
    if not formats:
        return "ISO 8601, e.g. 2017-01-02 00:00:00"
    sample = datetime(2017, 1, 2, 13, 0, 0)
    # %f prints six digits; exports usually write milliseconds, so show three.
    return " or ".join(f"'{f}' (e.g. {sample.strftime(f.replace('%f', '000'))})" for f in formats)


def _parse_times(raw: list[str], fmt: CsvFormat, src: str, lines: np.ndarray, field: str
                 ) -> tuple[pd.DatetimeIndex, list[str]]:
    """UTC bar times from the raw date strings (one DataError per unparsable row)."""
    notes: list[str] = []
    text = [x.strip() for x in raw]
    empty = [i for i, x in enumerate(text) if not x]
    if empty:
        raise DataError("missing timestamp (empty field)", source=src, line=int(lines[empty[0]]), field=field,
                        hint="fix or remove the row")
    offset = None
    if any(("GMT" in x or "UTC" in x) for x in (text[0], text[-1])):
        matches = [_GMT_SUFFIX.match(x) for x in text]
        missing = [i for i, m in enumerate(matches) if m is None]
        if missing:
            pos = missing[0]
            raise DataError(f"timestamp '{raw[pos]}' has no GMT offset while others do", source=src,
                            line=int(lines[pos]), field=field, hint="use one clock for the whole file")
        text = [m["body"] for m in matches]  # type: ignore[index]
        minutes = np.array([(-1 if m["sign"] == "-" else 1) * (int(m["hh"]) * 60 + int(m["mm"]))  # type: ignore[index]
                            for m in matches], dtype=np.int64)
        offset = pd.to_timedelta(minutes, unit="min")
    values = pd.Series(np.array(text, dtype=object), dtype=object)
    formats = fmt.formats
    if formats:
        parsed = pd.to_datetime(values, format=formats[0], errors="coerce")
        for f in formats[1:]:
            todo = parsed.isna()
            if not todo.any():
                break
            parsed = parsed.where(~todo, pd.to_datetime(values.where(todo, ""), format=f, errors="coerce"))
    else:
        try:
            parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
        except ValueError:  # mixed UTC offsets: convert each to UTC (only when every stamp has one)
            aware = np.array([bool(_ISO_OFFSET.search(x)) for x in text])
            if not aware.all():
                pos = int(np.flatnonzero(~aware)[0] if aware.sum() >= (~aware).sum() else np.flatnonzero(aware)[0])
                kind = ("no UTC offset while others have one" if not aware[pos]
                        else "a UTC offset while others have none")
                raise DataError(f"timestamp '{raw[pos]}' has {kind} (naive and offset-aware timestamps mixed)",
                                source=src, line=int(lines[pos]), field=field,
                                hint="use one clock for the whole file") from None
            parsed = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        pos = int(bad[0])
        hint = f"expected {_example(formats)}; pass a format with the right datetime_format"
        if not fmt.header and pos == 0:
            hint += " (or header=True if line 1 is a header)"
        raise DataError(f"cannot parse date '{raw[pos]}'", source=src, line=int(lines[pos]), field=field, hint=hint)
    index = pd.DatetimeIndex(parsed).as_unit("ns")
    if offset is not None:
        index = (index.tz_localize(None) if index.tz is not None else index) - pd.TimedeltaIndex(offset)
        index = index.tz_localize("UTC")
        notes.append("timestamps carry their own GMT offset; converted to UTC")
    elif index.tz is not None:
        index = index.tz_convert("UTC")
    else:
        index = _localise(index, fmt.timezone, src, lines, field, raw)
        if fmt.timezone != "UTC":
            notes.append(f"timestamps converted from {fmt.timezone} to UTC")
    return index.rename("time"), notes


def _localise(index: pd.DatetimeIndex, tz: str, src: str, lines: np.ndarray, field: str, raw: list[str]
              ) -> pd.DatetimeIndex:
    """Naive local times in ``tz`` → UTC; a time that does not exist or is ambiguous is an error."""
    try:
        return index.tz_localize(tz, ambiguous="infer", nonexistent="raise").tz_convert("UTC")
    except (ValueError, TypeError, OverflowError):
        probe = index.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        bad = np.flatnonzero(probe.isna())
        pos = int(bad[0]) if bad.size else 0
        raise DataError(f"local time '{raw[pos]}' does not exist or is ambiguous in time zone {tz} "
                        "(a daylight-saving change)", source=src, line=int(lines[pos]), field=field,
                        hint="pass the file's real time zone, or a fixed-offset zone like 'Etc/GMT-2'") from None


def _parse_numbers(raw: list[str], name: str, decimal: str, src: str, lines: np.ndarray,
                   nan_tokens: frozenset[str] = _NAN_TOKENS) -> np.ndarray:
    """float64 values; empty or NaN text becomes NaN (reported later), anything else unparsable is an error."""
    text = [x.replace(",", ".") for x in raw] if decimal == "," else raw
    try:  # fast path: every field is a plain number (surrounding blanks allowed)
        return np.array(text, dtype=object).astype(np.float64)
    except (ValueError, TypeError):
        pass
    series = pd.Series(np.array(text, dtype=object), dtype=object).str.strip()
    values = pd.to_numeric(series, errors="coerce").to_numpy(np.float64)
    allowed = (series == "") | series.str.lower().isin(nan_tokens)
    bad = np.flatnonzero(np.isnan(values) & ~allowed.to_numpy())
    if bad.size:
        pos = int(bad[0])
        shown = raw[pos]
        hint = "fix the value or the column mapping"
        if "," in shown and decimal == ".":
            hint = "the number has a decimal comma: pass a format with decimal=','"
        raise DataError(f"cannot parse number '{shown}'", source=src, line=int(lines[pos]), field=name, hint=hint)
    return values


def _modelled_spread(frame: pd.DataFrame, spec: PairSpec, spread_model: SpreadModel | None, close_only: bool
                     ) -> tuple[np.ndarray, str]:
    """Spread (price units) for a file without one, and its note: the given model, else by the data's kind."""
    if spread_model is None and close_only:
        spread_model, where = typical_spread_model(spec.base, spec.quote)
        prefix = f"spread modelled (no spread column): {where}; "
    else:
        spread_model = spread_model or SpreadModel()
        prefix = "spread modelled (no spread column in the file): "
    spread = spread_model.spread_price(frame.index, frame["high"].to_numpy(), frame["low"].to_numpy(),
                                       spec.pip_size, close=frame["close"].to_numpy())
    return spread, prefix + spread_model.describe()


# -- loading ------------------------------------------------------------------------------
def load_csv(
    path: str | PathLike[str],
    *,
    fmt: CsvFormat | str = "generic",
    symbol: str = "EURUSD",
    spread_model: SpreadModel | None = None,
    fixed_spread_pips: float | None = None,
    clean: CleaningConfig | None = None,
    liquidity_per_volume: float | None = None,
    symbols: Sequence[str] | None = None,
    max_fill: int = DEFAULT_MAX_FILL,
) -> MarketData:
    """Load one pair's bars from a CSV export as validated :class:`MarketData` (mid prices, UTC).

    A wide file (``fmt='wide'``) holds several pairs: ``symbols`` picks them (default: every
    pair column), and gaps follow :func:`simulator.data.close_only.align_closes` with ``max_fill``.

    Spread (price units): the file's spread column when ``fmt`` maps one (converted from
    ``fmt.spread_unit``); else ``fixed_spread_pips`` (pips) on every bar; else
    ``spread_model or SpreadModel()`` (modelled, causal; noted in ``notes``).
    ``liquidity_per_volume`` sets ``liquidity = volume × factor`` (base-currency units of
    depth per unit of the file's volume). ``clean`` is opt-in: without it any data error
    raises :class:`DataError`; with it, cleaning runs before validation and every change
    goes into ``notes``.
    """
    fmt = preset(fmt) if isinstance(fmt, str) else fmt
    if not isinstance(fmt, CsvFormat):
        raise TypeError(f"fmt must be a CsvFormat or a preset name, got {type(fmt).__name__}")
    if fixed_spread_pips is not None and not (math.isfinite(fixed_spread_pips) and fixed_spread_pips >= 0):
        raise ValueError(f"fixed_spread_pips must be a finite number >= 0, got {fixed_spread_pips!r}")
    if fixed_spread_pips is not None and spread_model is not None:
        raise ValueError("pass either fixed_spread_pips or spread_model, not both")
    if liquidity_per_volume is not None:
        if not (math.isfinite(liquidity_per_volume) and liquidity_per_volume > 0):
            raise ValueError(f"liquidity_per_volume must be a finite number > 0, got {liquidity_per_volume!r}")
        if "volume" not in fmt.columns:
            raise ValueError(f"liquidity_per_volume needs a volume column, but format '{fmt.name}' maps none")
        if "liquidity" in fmt.columns:
            raise ValueError(f"format '{fmt.name}' maps a liquidity column; do not also pass liquidity_per_volume")
    src = str(path)
    if fmt.layout == "wide":
        if clean is not None or liquidity_per_volume is not None:
            raise ValueError("a wide file is close-only: cleaning and liquidity_per_volume do not apply")
        return _load_wide(Path(path), fmt, symbols, spread_model=spread_model, fixed_spread_pips=fixed_spread_pips,
                          max_fill=max_fill)
    if symbols is not None:
        if len(symbols) != 1:
            raise DataError(f"a '{fmt.name}' file holds one pair, but {len(symbols)} symbols were named "
                            f"({', '.join(symbols)})", source=src, hint="give one file per pair, or a wide file")
        symbol = symbols[0]
    spec, meta_note = pair_spec_with_note(symbol)
    text = _read_text(Path(path), src)

    sep, _, _ = _resolve_sep(fmt, text, src)
    rows, line_list = _records(text, sep)
    if not rows:
        raise DataError("file has no data (only blank lines)", source=src, line=1, hint="export the data again")
    if fmt.header:
        header, header_line = rows[0], line_list[0]
        while len(header) > 1 and not header[-1].strip():  # a trailing separator names no column
            header = header[:-1]
        width = len(header)
        positions = _locate_columns(fmt, header, header_line, src)
        rows, line_list = rows[1:], line_list[1:]
        if not rows:
            raise DataError("only a header line, no data rows", source=src, line=header_line,
                            hint="export the data again (the date range may be empty)")
    else:
        # Without a header, the usual width is that of most of the first rows.
        width = Counter(len(r) for r in rows[:1000]).most_common(1)[0][0]
        first = next((i for i, r in enumerate(rows) if len(r) == width), 0)
        positions = _locate_columns(fmt, rows[first], line_list[first], src)
    _check_widths(rows, line_list, width, src, fmt.header)
    lines = np.asarray(line_list, dtype=np.int64)

    def column(i: int) -> list[str]:
        return [r[i] for r in rows]

    notes: list[str] = [f"loaded {len(rows)} rows with CSV format '{fmt.name}' (prices on the {fmt.price_side} "
                        f"side, clock {fmt.timezone})"]
    if meta_note:
        notes.append(meta_note)
    if "datetime" in positions:
        raw_time = column(positions["datetime"])
        time_field = "datetime"
    else:
        d, t = positions["date"], positions["time"]
        raw_time = [f"{r[d].strip()} {r[t].strip()}" for r in rows]
        time_field = "date/time"
    index, time_notes = _parse_times(raw_time, fmt, src, lines, time_field)
    notes += time_notes

    nan_tokens = _CLOSE_ONLY_NAN_TOKENS if fmt.close_only else _NAN_TOKENS
    data: dict[str, np.ndarray] = {}
    for name in FIELD_ORDER:
        if name in positions:
            data[name] = _parse_numbers(column(positions[name]), name, fmt.decimal, src, lines, nan_tokens)
    if liquidity_per_volume is not None:
        data["liquidity"] = data["volume"] * liquidity_per_volume
        notes.append(f"liquidity = volume × {liquidity_per_volume:g} (base-currency depth per bar, assumed)")
    frame = pd.DataFrame(data, index=index)

    if fmt.close_only:
        empty = frame["close"].isna().to_numpy()
        if empty.all():
            raise DataError("no close values (every row is empty)", source=src, field="close",
                            hint="check the column mapping: close-only files are a date and a close column")
        if empty.any():
            notes.append(f"{int(empty.sum())} rows without a close value (holidays) dropped")
            frame, lines = frame.loc[~empty], lines[~empty]
        validate_bars(frame, source=src, lines=lines, require=("close",))
        ohlc = ohlc_from_close(frame["close"])
        for p in ("open", "high", "low"):
            frame[p] = ohlc[p]
        notes.append("close-only data: open = previous close, high/low = max/min(open, close)")
    if clean is not None:
        frame, report = clean_bars(frame, clean, source=src)
        notes += report.summary()
        lines = _remap_lines(index, lines, frame.index)
    validate_bars(frame, source=src, lines=lines, require=PRICE_FIELDS)

    pip = spec.pip_size
    if "spread" in frame.columns:
        factor = {"price": 1.0, "pips": pip, "points": pip / 10.0}[fmt.spread_unit]
        frame["spread"] = frame["spread"] * factor
        notes.append(f"spread from the file's spread column ({fmt.spread_unit}"
                     + (f" × {factor:g} to price units)" if fmt.spread_unit != "price" else ")"))
        if fixed_spread_pips is not None or spread_model is not None:
            msg = f"{src}: the file has a spread column; fixed_spread_pips/spread_model were not used"
            logger.warning(msg)
            notes.append(msg)
    elif fixed_spread_pips is not None:
        frame["spread"] = fixed_spread_pips * pip
        notes.append(f"spread fixed at {fixed_spread_pips:g} pips (no spread column in the file)")
    else:
        frame["spread"], note = _modelled_spread(frame, spec, spread_model, fmt.close_only)
        notes.append(note)
    if fmt.price_side != "mid":
        shift = frame["spread"] / 2.0 if fmt.price_side == "bid" else -frame["spread"] / 2.0
        for p in PRICE_FIELDS:
            frame[p] = frame[p] + shift
        notes.append(f"prices converted from {fmt.price_side} to mid ({'+' if fmt.price_side == 'bid' else '-'} "
                     "spread/2)")
    frame = frame[[f for f in FIELD_ORDER if f in frame.columns]].astype(np.float64)
    validate_bars(frame, source=src, lines=lines)
    notes += jump_notes(frame, source=src, lines=lines)
    return MarketData.from_frames({spec.symbol: frame}, [spec], source=src, notes=notes)


def jump_notes(frame: pd.DataFrame, *, source: str, lines: np.ndarray | None = None,
               factor: float = JUMP_FACTOR) -> list[str]:
    """One note per close-to-close move beyond ``factor`` (x``factor`` up or down) in one bar, naming the
    bar (and file line): such a move is almost always a unit or decimal error, not a market move."""
    close = frame["close"].to_numpy(np.float64)
    if len(close) < 2:
        return []
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = close[1:] / close[:-1]
    bad = np.flatnonzero((ratio > factor) | (ratio < 1.0 / factor))
    out = []
    for k in bad[:3]:
        where = f" (line {int(lines[k + 1])})" if lines is not None and len(lines) == len(close) else ""
        out.append(f"{source}: one-bar jump x{ratio[k]:.4g} at {frame.index[k + 1]}{where}: close "
                   f"{close[k]:.6g} -> {close[k + 1]:.6g} — a unit or decimal error? check the file")
    if len(bad) > 3:
        out.append(f"{source}: {len(bad) - 3} more one-bar jumps beyond x{factor:g}")
    for line in out:
        logger.warning(line)
    return out


def _remap_lines(before: pd.DatetimeIndex, lines: np.ndarray, after: pd.DatetimeIndex) -> np.ndarray:
    """File lines for the cleaned rows: by timestamp (last occurrence); filled bars get the previous bar's line."""
    by_time = pd.Series(lines, index=before)
    by_time = by_time[~by_time.index.duplicated(keep="last")]
    mapped = by_time.reindex(after).ffill().bfill()
    return mapped.fillna(0).to_numpy(np.int64)


def _load_wide(path: Path, fmt: CsvFormat, symbols: Sequence[str] | None, *, spread_model: SpreadModel | None,
               fixed_spread_pips: float | None, max_fill: int) -> MarketData:
    """A date column and one close column per pair (see the module docstring)."""
    src = str(path)
    text = _read_text(path, src)
    sep, _, _ = _resolve_sep(fmt, text, src)
    rows, line_list = _records(text, sep)
    header, header_line = rows[0], line_list[0]
    while len(header) > 1 and not header[-1].strip():
        header = header[:-1]
    rows, line_list = rows[1:], line_list[1:]
    if not rows:
        raise DataError("only a header line, no data rows", source=src, line=header_line,
                        hint="export the data again (the date range may be empty)")
    positions = _locate_columns(fmt, header, header_line, src)
    date_cols = set(positions.values())
    by_symbol: dict[str, int] = {}
    for i, name in enumerate(header):
        if i in date_cols or not name.strip():
            continue
        sym = normalise_symbol(name)
        if len(sym) != 6:
            raise DataError(f"column '{name.strip()}' does not name a currency pair", source=src, line=header_line,
                            field=name.strip(), hint="name each close column by its pair, e.g. EURUSD or EUR/USD")
        if sym in by_symbol:
            raise DataError(f"two columns name {sym}", source=src, line=header_line, field=name.strip(),
                            hint="keep one column per pair")
        by_symbol[sym] = i
    if not by_symbol:
        raise DataError("no pair columns beside the date", source=src, line=header_line,
                        hint="a wide file has a date column and one close column per pair")
    wanted = [normalise_symbol(s) for s in symbols] if symbols else list(by_symbol)
    for sym in wanted:
        if sym not in by_symbol:
            raise DataError(f"symbol {sym} is not a column of the file", source=src, line=header_line, field=sym,
                            hint=f"columns: {', '.join(by_symbol)}")
    _check_widths(rows, line_list, len(header), src, True)
    lines = np.asarray(line_list, dtype=np.int64)
    if "datetime" in positions:
        raw_time, time_field = [r[positions["datetime"]] for r in rows], "datetime"
    else:
        d, t = positions["date"], positions["time"]
        raw_time, time_field = [f"{r[d].strip()} {r[t].strip()}" for r in rows], "date/time"
    index, notes = _parse_times(raw_time, fmt, src, lines, time_field)
    notes = [f"loaded {len(rows)} rows of {len(wanted)} pair(s) from a wide close-only file", *notes]
    closes = pd.DataFrame({sym: _parse_numbers([r[by_symbol[sym]] for r in rows], header[by_symbol[sym]].strip(),
                                               fmt.decimal, src, lines, _CLOSE_ONLY_NAN_TOKENS)
                           for sym in wanted}, index=index)
    empty = closes.isna().all(axis=1).to_numpy()
    if empty.any():
        notes.append(f"{int(empty.sum())} rows without any value (holidays) dropped")
        closes, lines = closes.loc[~empty], lines[~empty]
    _check_clock(closes.index, src, lines)
    closes, gap_notes = align_closes(closes, source=src, max_fill=max_fill, lines=lines)
    notes += gap_notes
    frames, specs = {}, []
    for sym in wanted:
        spec, meta_note = pair_spec_with_note(sym)
        if meta_note:
            notes.append(meta_note)
        col = closes[sym]
        bad = np.flatnonzero(col.to_numpy() <= 0)
        if bad.size:
            raise DataError(f"price must be > 0, got {col.iloc[int(bad[0])]}", source=src,
                            timestamp=col.index[int(bad[0])], field=header[by_symbol[sym]].strip(),
                            hint="fix or drop the row")
        frame = ohlc_from_close(col)
        if fixed_spread_pips is not None:
            frame["spread"] = fixed_spread_pips * spec.pip_size
            notes.append(f"{sym}: spread fixed at {fixed_spread_pips:g} pips")
        else:
            frame["spread"], note = _modelled_spread(frame, spec, spread_model, True)
            notes.append(f"{sym}: {note}")
        frames[sym] = frame
        specs.append(spec)
    notes.append("close-only data: open = previous close, high/low = max/min(open, close)")
    return MarketData.from_frames(frames, specs, source=src, notes=notes)


def _check_clock(index: pd.DatetimeIndex, src: str, lines: np.ndarray) -> None:
    """Timestamps strictly increasing and unique (the schema's clock), with the file line on failure."""
    stamps = index.asi8
    step = np.diff(stamps)
    bad = np.flatnonzero(step <= 0)
    if bad.size:
        pos = int(bad[0]) + 1
        what = "duplicated timestamp" if step[pos - 1] == 0 else "timestamp goes back in time"
        raise DataError(what, source=src, line=int(lines[pos]), timestamp=index[pos],
                        hint="sort the file by date and keep one row per date")


__all__ = ["JUMP_FACTOR", "PRESETS", "CsvFormat", "jump_notes", "load_csv", "preset"]
