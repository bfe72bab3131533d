#!/usr/bin/env python
"""VaR/ES backtest of textbook and tail-aware models over several pairs, written to a fresh run folder.

Every model (see ``forecasters/var_suite.py``) is walked forward with one set of settings for
every pair (a rolling ``--window``, a GARCH refit every ``--refit-every`` bars), from the first
row with a full window to the end, and backtested on the same rows at each ``--levels``:
Kupiec, exact binomial, Christoffersen independence and conditional coverage,
Engle–Manganelli DQ, Christoffersen–Pelletier duration, the Basel zone of the last 250 rows,
Acerbi–Szekely Z1/Z2/Z3 and McNeil–Frey of ES, tick loss with a model confidence set.
Writes backtest.csv, mcs.csv, report.md, report.html and VaR band plots.

Examples:
    python scripts/var_backtest.py --source ecb --symbols EURUSD USDJPY GBPUSD EURCHF --window 500 \\
        --refit-every 1 --levels 0.99 0.95
    python scripts/var_backtest.py --source sample --window 500 --refit-every 20
    python scripts/var_backtest.py --source csv --csv bars.csv --preset dukascopy --symbol GBPUSD
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from forecasters.var_report import load_closes as _load_closes  # noqa: E402
from forecasters.var_report import var_backtest_report  # noqa: E402
from forecasters.var_suite import DEFAULT_MODELS, PRIMARY_MODEL, SuiteConfig  # noqa: E402
from simulator.common.errors import ConfigError, DataError  # noqa: E402


def load_closes(args: argparse.Namespace) -> tuple[pd.DataFrame, str]:
    """(closes by symbol, a description of the source) for the command line's ``--source`` and its options."""
    return _load_closes(args.source, symbols=args.symbols, start=args.start, end=args.end,
                        csv=getattr(args, "csv", None), preset=getattr(args, "preset", "generic"),
                        symbol=getattr(args, "symbol", "EURUSD"))


def add_protocol_arguments(parser: argparse.ArgumentParser, *, end: str | None = None) -> None:
    """The walk-forward protocol options this script and ``scripts/var_select.py`` share."""
    parser.add_argument("--window", type=int, default=500, help="rolling window of every model, bars (default 500)")
    parser.add_argument("--refit-every", type=int, default=1, help="GARCH refit interval, bars (default 1)")
    parser.add_argument("--levels", nargs="+", type=float, default=[0.99, 0.95], help="VaR levels (default 0.99 0.95)")
    parser.add_argument("--start", help="first date of the data (the window warm-up comes out of it)")
    parser.add_argument("--end", default=end, help=f"last date of the data (default {end or 'the last fix'})")
    parser.add_argument("--mcs-reps", type=int, default=1000, help="MCS bootstrap replications (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstraps (default 0)")
    parser.add_argument("--out", type=Path, default=REPO / "runs", help="where run folders go (default runs/)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--source", choices=("ecb", "sample", "csv"), default="ecb",
                        help="ECB reference rates, the bundled sample, or a CSV file (default ecb)")
    parser.add_argument("--csv", type=Path, help="CSV file of bars for --source csv")
    parser.add_argument("--preset", default="generic", help="CSV layout for --csv (default generic)")
    parser.add_argument("--symbol", default="EURUSD", help="pair of the CSV file (default EURUSD)")
    parser.add_argument("--symbols", nargs="+", default=["EURUSD", "USDJPY", "GBPUSD", "EURCHF"],
                        help="pairs for --source ecb (default EURUSD USDJPY GBPUSD EURCHF)")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        help=f"models (default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--primary", default=PRIMARY_MODEL, help=f"the model fixed in advance (default {PRIMARY_MODEL})")
    add_protocol_arguments(parser)
    args = parser.parse_args(argv)

    try:
        models = tuple(args.models)
        primary = args.primary if args.primary in models else models[0]
        config = SuiteConfig(window=args.window, refit_every=args.refit_every, models=models,
                             levels=tuple(args.levels), mcs_reps=args.mcs_reps, seed=args.seed, primary=primary)
        closes, source = load_closes(args)
        report = var_backtest_report(closes, source, config, runs_root=args.out, start=args.start, end=args.end,
                                     argv=sys.argv if argv is None else argv)
    except (DataError, ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"\nwrote {report.path} (backtest.csv, mcs.csv, report.md, report.html, var_band_*.png) "
          f"in {report.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
