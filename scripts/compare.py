#!/usr/bin/env python
"""Compare sizing policies on a stress-test run: which one holds up under liquidity stress.

Reads RUN_DIR/results.csv (one row per policy, scenario and seed) and the per-step records
RUN_DIR/cells/<policy>/<scenario>/seed-<seed>.csv.gz written by scripts/stress_test.py, and
writes a report folder RUN_DIR/report/ (report-2/, report-3/, ... when one exists already; an
earlier report is never touched): report.md, a self-contained report.html, PNG plots, an
interactive self-contained interactive.html (Plotly, offline), ranking.csv, scenarios.csv and
summary.yaml. The folder is built under a temporary name and
renamed when complete. Prints the path of report.html and the headline ranking.

The first screen: a ranking of the policies by mean Sharpe ratio over the stressed runs
(with bootstrap intervals, returns, worst drawdown, time over the VaR limit, stop-outs,
costs; the unstressed test data beside it), a verdict in words, a paired bootstrap test of the
best agent against the best baseline on the same bars, and the deflated Sharpe ratio of the
top policy for the number of policies tried. Then heatmaps by scenario, equity and drawdown
curves, position size through the stress window, P&L against VaR, and a table per scenario.

Examples:
    python scripts/compare.py runs/stress-20261201-120000
    python scripts/compare.py runs/stress-20261201-120000 --seed 7 --resamples 5000
    python scripts/compare.py runs/stress-20261201-120000 --scenario snb_gap --plot-seed 2
    python scripts/compare.py runs/stress-20261201-120000 --trials 40 --out /tmp/reports
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.report.build import ReportSettings, build_report  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, prepare_out, seed_int  # noqa: E402
from simulator.common.errors import ConfigError, DataError  # noqa: E402


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="stress-test run folder (holds results.csv)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="folder that receives report/ (default: RUN_DIR itself)")
    parser.add_argument("--seed", type=seed_int, default=0,
                        help="seed of the bootstrap random generator (default 0; same seed, same report)")
    parser.add_argument("--plot-seed", type=int, metavar="N",
                        help="run seed drawn in the curves (default: the smallest seed of each scenario)")
    parser.add_argument("--scenario", metavar="NAME",
                        help="stressed scenario of the curves (default: the severest by mean max drawdown)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--trials", type=int, metavar="N",
                        help="policies/configurations tried in total, for the deflated Sharpe ratio "
                             "(default: the policies in results.csv)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level of the verdict (default 0.05)")
    args = parser.parse_args(argv)
    if args.out is not None:
        prepare_out(args.out)
    shown = ["compare.py", *(sys.argv[1:] if argv is None else argv)]
    try:
        settings = ReportSettings(seed=args.seed, plot_seed=args.plot_seed, scenario=args.scenario,
                                  n_resamples=args.resamples, n_trials=args.trials, alpha=args.alpha)
        report = build_report(args.run_dir, out_dir=args.out, settings=settings, argv=shown)
    except (DataError, ConfigError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(report.headline)
    print()
    print(report.verdict)
    print()
    print(f"report: {report.html}")
    print(f"interactive report: {report.interactive}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
