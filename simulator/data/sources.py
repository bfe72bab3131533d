"""Choose a data source from command-line arguments: the bundled sample, the ECB history, CSV files or Yahoo.

Why here: every script takes the same sources with the same flags, and loads them the same way:

    --source sample                                   (the default: bundled EURUSD 2017 hourly)
    --source ecb --symbols EURUSD USDJPY --start 1999-01-01 --end 2026-10-30
    --csv FILE --preset close_only --symbols EURUSD   (or --preset wide with several --symbols)
    --csv a.csv b.csv --symbols EURUSD USDJPY         (one file per pair, put on one clock)
    --yahoo EURUSD=X --start 2024-01-01 --interval 1h
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from simulator.data.close_only import DEFAULT_MAX_FILL
from simulator.data.csv_loader import CsvFormat
from simulator.common.errors import DataError
from simulator.data.market import MarketData

SOURCES: tuple[str, ...] = ("sample", "ecb", "csv", "yahoo")
PRESET_NAMES = "generic, close_only, wide, histdata, dukascopy, metatrader4, metatrader5"


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The data-source flags shared by the scripts (see the module docstring)."""
    group = parser.add_argument_group("data source")
    group.add_argument("--source", choices=SOURCES,
                       help="sample (bundled EURUSD 2017 hourly, the default), ecb (ECB daily reference rates "
                            "1999 onward), csv (with --csv) or yahoo (with --yahoo)")
    group.add_argument("--csv", type=Path, nargs="+", metavar="FILE",
                       help="CSV file(s) of bars: one file, or one per symbol in the order of --symbols")
    group.add_argument("--yahoo", metavar="SYMBOL", help="a Yahoo Finance symbol, e.g. EURUSD=X (cached on disk)")
    group.add_argument("--preset", default="generic", help=f"CSV layout: {PRESET_NAMES} (default generic)")
    group.add_argument("--symbols", nargs="+", metavar="PAIR",
                       help="pairs to load, e.g. EURUSD USDJPY (ecb, wide CSV, one CSV per pair)")
    group.add_argument("--symbol", help="the pair of a one-pair CSV file (same as one --symbols)")
    group.add_argument("--start", help="first date to use, YYYY-MM-DD (ecb, csv, yahoo)")
    group.add_argument("--end", help="last date to use, inclusive, YYYY-MM-DD (ecb, csv, yahoo)")
    group.add_argument("--interval", default="1h", help="bar interval for --yahoo (default 1h)")


def chosen_source(args: argparse.Namespace) -> str:
    """The source the arguments name (``--csv`` implies csv and ``--yahoo`` yahoo)."""
    implied = "csv" if args.csv else "yahoo" if args.yahoo else None
    source = args.source or implied or "sample"
    if implied and source != implied:
        raise DataError(f"--source {source} does not go with --{implied}", source="command line",
                        field="--source", hint=f"drop --source or use --source {implied}")
    if source == "csv" and not args.csv:
        raise DataError("--source csv needs --csv FILE", source="command line", field="--csv",
                        hint="name the file(s)")
    if source == "yahoo" and not args.yahoo:
        raise DataError("--source yahoo needs --yahoo SYMBOL", source="command line", field="--yahoo",
                        hint="e.g. --yahoo EURUSD=X")
    return source


def chosen_symbols(args: argparse.Namespace) -> list[str] | None:
    """``--symbols`` or ``--symbol`` (None when neither is given)."""
    if args.symbols and args.symbol:
        raise DataError("give --symbols or --symbol, not both", source="command line", field="--symbol",
                        hint="use --symbols PAIR [PAIR ...]")
    if args.symbols:
        return list(args.symbols)
    return [args.symbol] if args.symbol else None


def load_from_arguments(args: argparse.Namespace) -> MarketData:
    """The market the arguments name; the bundled EURUSD 2017 sample by default."""
    source = chosen_source(args)
    symbols = chosen_symbols(args)
    if source == "ecb":
        from simulator.data.ecb import load_ecb

        return load_ecb(symbols or ["EURUSD"], start=args.start, end=args.end)
    if source == "csv":
        return cut_to_dates(load_csv_files(list(args.csv), args.preset, symbols), args.start, args.end)
    if source == "yahoo":
        from simulator.data.yahoo import load_yfinance

        return load_yfinance(args.yahoo, start=args.start, end=args.end, interval=args.interval)
    from simulator.data.sample import load_sample

    return cut_to_dates(load_sample(), args.start, args.end)


def load_csv_files(paths: list[Path], fmt: CsvFormat | str, symbols: list[str] | None, *,
                   max_fill: int = DEFAULT_MAX_FILL) -> MarketData:
    """One CSV file (any preset; ``wide`` for several pairs) or one file per symbol on one clock.

    Several files are aligned by an inner join: a bar is kept when every pair has it, and the
    bars dropped from each file are counted in ``market.notes``.
    """
    from simulator.data.csv_loader import PRESETS, load_csv

    if isinstance(fmt, str):
        if fmt not in PRESETS:
            raise DataError(f"unknown CSV preset '{fmt}'", source="command line", field="--preset",
                            hint=f"presets: {PRESET_NAMES}")
        fmt = PRESETS[fmt]
    if len(paths) == 1:
        if fmt.layout == "wide":
            return load_csv(paths[0], fmt=fmt, symbols=symbols, max_fill=max_fill)
        if symbols is not None and len(symbols) > 1:
            raise DataError(f"one '{fmt.name}' file holds one pair, but {len(symbols)} symbols were named",
                            source=str(paths[0]), field="symbols",
                            hint="give one file per symbol, or a wide file (preset wide)")
        return load_csv(paths[0], fmt=fmt, symbol=(symbols or ["EURUSD"])[0])
    if symbols is None or len(symbols) != len(paths):
        raise DataError(f"{len(paths)} CSV files need as many symbols (one pair per file, in order)",
                        source="command line", field="--symbols", hint="e.g. --csv a.csv b.csv --symbols EURUSD USDJPY")
    if fmt.layout == "wide":
        raise DataError("a wide file holds every pair: pass one file", source=", ".join(map(str, paths)),
                        field="preset", hint="pass one wide file, or per-pair files with another preset")
    loaded = [load_csv(path, fmt=fmt, symbol=sym) for path, sym in zip(paths, symbols)]
    frames = {m.symbols[0]: m.pair(m.symbols[0]) for m in loaded}
    notes = [f"{m.symbols[0]}: {n}" for m in loaded for n in m.notes]
    notes.append("one file per pair, put on one clock by an inner join (bars every pair has)")
    return MarketData.from_frames(frames, [m.pairs[0] for m in loaded], source=", ".join(map(str, paths)),
                                  join="inner", notes=notes)


def cut_to_dates(market: MarketData, start: str | None, end: str | None) -> MarketData:
    """Bars from ``start`` through ``end`` (dates, inclusive); an empty result is one clear line."""
    if start is None and end is None:
        return market
    end_excl = None if end is None else pd.Timestamp(end) + pd.Timedelta(days=1)
    cut = market.slice(start, end_excl)
    if len(cut) < 3:
        raise DataError(f"only {len(cut)} bars between {start} and {end} (data spans {market.index[0]} .. "
                        f"{market.index[-1]})", source=market.source, field="start/end",
                        hint="choose dates inside the data")
    return MarketData(bars=cut.bars, pairs=cut.pairs, source=cut.source,
                      notes=(*cut.notes, f"cut to {start or 'start'} .. {end or 'end'}"), conversion=cut.conversion)


__all__ = ["SOURCES", "add_source_arguments", "chosen_source", "chosen_symbols", "cut_to_dates", "load_csv_files",
           "load_from_arguments"]
