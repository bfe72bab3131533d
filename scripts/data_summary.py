#!/usr/bin/env python
"""Run the market-data pipeline end to end and print what it produced.

Loads the bundled real sample (or the ECB history, your CSV files, a Yahoo symbol), calibrates the synthetic
generator to it with a GARCH-t fit, generates a calibrated series and a three-pair
correlated market, checks the stylised facts side by side, and writes everything to a
fresh run folder (``runs/data-<time>/``).

Examples:
    python scripts/data_summary.py
    python scripts/data_summary.py --source ecb --symbols EURUSD USDJPY GBPUSD EURCHF
    python scripts/data_summary.py --csv my_eurusd.csv --preset histdata --symbol EURUSD
    python scripts/data_summary.py --csv fred_dexuseu.csv --preset close_only --symbol EURUSD
    python scripts/data_summary.py --csv rates.csv --preset wide --symbols EURUSD USDJPY
    python scripts/data_summary.py --yahoo EURUSD=X --start 2024-01-01
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simulator.common.cli import ArgumentParser, finite_float, guard, prepare_out, seed_int  # noqa: E402
from simulator.common.errors import ConfigError, DataError  # noqa: E402
from simulator.data.sources import add_source_arguments, load_from_arguments  # noqa: E402
from simulator.synthetic.summary import data_summary  # noqa: E402


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(parser)
    parser.add_argument("--years", type=finite_float(0.0, 100.0, open_low=True), default=4.0,
                        help="years of calibrated synthetic bars (default 4)")
    parser.add_argument("--seed", type=seed_int, default=42, help="seed of the generator (default 42)")
    parser.add_argument("--out", type=Path, default=REPO / "runs", help="where run folders go (default runs/)")
    args = parser.parse_args(argv)
    prepare_out(args.out)

    try:
        summary = data_summary(load_from_arguments(args), years=args.years, seed=args.seed, runs_root=args.out,
                               argv=sys.argv if argv is None else ["data_summary.py", *argv])
    except (DataError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"\nwrote {summary.path} in {summary.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
