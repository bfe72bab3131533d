#!/usr/bin/env python
"""Volatility forecasts and VaR/ES models, backtested on the test span of one series.

Fits every volatility forecaster (EWMA; GARCH, GJR-GARCH, EGARCH with normal and
Student-t shocks, walk-forward; LSTM and GRU trained on the training span with early
stopping on the validation span), builds VaR/ES models on them (historical, parametric
normal and t, conditional normal/t, filtered historical simulation, LSTM/GRU scaled by
their training-span residual quantiles), and backtests every model on the same test bars: exceptions, rate,
Kupiec and Christoffersen p-values, Basel zone over the last 250 bars, average VaR,
QLIKE, MSE and the Acerbi–Szekely Z2 of ES(97.5%). Writes report.md, var_table.csv and
var_band.png to a fresh run folder.

Examples:
    python scripts/forecast_report.py                      # bundled EURUSD 2017 hourly sample
    python scripts/forecast_report.py --csv bars.csv --preset dukascopy --symbol GBPUSD
    python scripts/forecast_report.py --yahoo EURUSD=X --start 2025-01-01 --no-neural
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from forecasters.report import ForecastReportSettings, forecast_report, forecast_split  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, prepare_out, seed_int  # noqa: E402
from simulator.common.errors import ConfigError, DataError  # noqa: E402
from simulator.data.sources import add_source_arguments, load_from_arguments  # noqa: E402


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_source_arguments(parser)
    parser.add_argument("--alpha", type=float, default=0.99, help="VaR confidence (default 0.99)")
    parser.add_argument("--es-alpha", type=float, default=0.975, help="ES confidence (default 0.975)")
    parser.add_argument("--window", type=int, default=1000, help="rolling window of HS/normal/t/FHS, bars")
    parser.add_argument("--min-window", type=int, default=1000, help="bars before the first GARCH fit")
    parser.add_argument("--garch-window", type=int, default=3000, help="rolling GARCH estimation window, bars")
    parser.add_argument("--refit-every", type=int, default=250, help="GARCH refit interval, bars")
    parser.add_argument("--train", type=float, default=0.5, help="share of bars for training (LSTM/GRU)")
    parser.add_argument("--validation", type=float, default=0.2, help="share of bars for early stopping")
    parser.add_argument("--train-end", help="last date of the training span (inclusive), instead of --train")
    parser.add_argument("--validation-end", help="last date of the validation span (inclusive); the test follows")
    parser.add_argument("--no-neural", action="store_true", help="skip the LSTM and GRU")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of the neural forecasters")
    parser.add_argument("--cache-dir", type=Path, help="forecast cache (default ~/.cache/fx-risk-gym)")
    parser.add_argument("--out", type=Path, default=REPO / "runs", help="where run folders go (default runs/)")
    args = parser.parse_args(argv)
    prepare_out(args.out)

    market = None
    try:
        settings = ForecastReportSettings(alpha=args.alpha, es_alpha=args.es_alpha, window=args.window,
                                          min_window=args.min_window, refit_every=args.refit_every,
                                          garch_window=args.garch_window, train=args.train,
                                          validation=args.validation, neural=not args.no_neural, seed=args.seed)
        market = load_from_arguments(args)
        split = forecast_split(market, train=args.train, validation=args.validation, train_end=args.train_end,
                               validation_end=args.validation_end)
        report = forecast_report(market, split, settings, runs_root=args.out, cache_dir=args.cache_dir,
                                 argv=sys.argv if argv is None else ["forecast_report.py", *argv])
    except (DataError, ConfigError, ValueError) as err:
        where = "" if isinstance(err, (DataError, ConfigError)) or market is None else f"{market.source}: "
        print(f"error: {where}{' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(f"\nwrote {report.path} (report.md, var_table.csv, var_band.png) in {report.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
