"""Choose a data source from command-line arguments: the bundled sample, a CSV file or Yahoo.

Why here: every script takes the same three sources with the same flags, and loads
them the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from simulator.market import MarketData


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``--csv FILE --preset NAME --symbol PAIR`` or ``--yahoo SYMBOL --start --end --interval``."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--csv", type=Path, help="a CSV file of bars instead of the bundled sample")
    source.add_argument("--yahoo", metavar="SYMBOL", help="a Yahoo Finance symbol, e.g. EURUSD=X (cached on disk)")
    parser.add_argument("--preset", default="generic",
                        help="CSV layout: generic, histdata, dukascopy, metatrader4, metatrader5 (default generic)")
    parser.add_argument("--symbol", default="EURUSD", help="pair of the CSV file (default EURUSD)")
    parser.add_argument("--start", help="first date for --yahoo")
    parser.add_argument("--end", help="end date for --yahoo")
    parser.add_argument("--interval", default="1h", help="bar interval for --yahoo (default 1h)")


def load_from_arguments(args: argparse.Namespace) -> MarketData:
    """The market the arguments name; the bundled EURUSD 2017 sample by default."""
    if args.csv:
        from simulator.csv_loader import load_csv

        return load_csv(args.csv, fmt=args.preset, symbol=args.symbol)
    if args.yahoo:
        from simulator.yahoo import load_yfinance

        return load_yfinance(args.yahoo, start=args.start, end=args.end, interval=args.interval)
    from simulator.sample import load_sample

    return load_sample()
