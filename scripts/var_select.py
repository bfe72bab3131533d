#!/usr/bin/env python
"""Choose the best VaR model on held-out ECB currencies, by a rule declared before the run.

The candidates (``forecasters.var_suite.SELECTION_CANDIDATES``) are walked forward with the
protocol of ``scripts/var_backtest.py`` (rolling window, daily refits, 99% and 95%) on pairs
that are not the four reported ones, on data up to 2017-12-31 only. Rule: most pairs passing
Kupiec and Christoffersen CC at 5% at 99%; ties by mean tick loss at 99%. Writes
``selection.csv`` (the ranking), ``backtest.csv`` (every row), ``chosen.yaml`` and
``report.md`` to a fresh run folder ``runs/var-select-<UTC time>/``.

Example:
    python scripts/var_select.py   # EURSEK EURNOK AUDUSD USDCAD NZDUSD EURPLN, to 2017-12-31
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from forecasters.var_suite import (  # noqa: E402
    HELD_OUT_END,
    HELD_OUT_SYMBOLS,
    SELECTION_CANDIDATES,
    SuiteConfig,
    garch_filters,
    select_model,
)
from simulator.common.errors import ConfigError, DataError  # noqa: E402
from simulator.common.run_folder import RunFolder  # noqa: E402
from scripts.var_backtest import add_protocol_arguments  # noqa: E402

#: The pairs the issue reports: never used to choose.
REPORTED = ("EURUSD", "USDJPY", "GBPUSD", "EURCHF")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--symbols", nargs="+", default=list(HELD_OUT_SYMBOLS),
                        help=f"held-out ECB pairs (default {' '.join(HELD_OUT_SYMBOLS)})")
    parser.add_argument("--candidates", nargs="+", default=list(SELECTION_CANDIDATES),
                        help=f"models to choose from (default {' '.join(SELECTION_CANDIDATES)})")
    parser.add_argument("--select-level", type=float, default=0.99, help="level the rule reads (default 0.99)")
    add_protocol_arguments(parser, end=HELD_OUT_END)
    args = parser.parse_args(argv)

    from tqdm import tqdm

    started = time.perf_counter()
    try:
        symbols = [s.upper() for s in args.symbols]
        reported = sorted(set(symbols) & set(REPORTED))
        if reported:
            raise ConfigError(f"--symbols {' '.join(reported)}: the reported pairs cannot be used to choose; "
                              f"name held-out pairs (default {' '.join(HELD_OUT_SYMBOLS)})")
        config = SuiteConfig(window=args.window, refit_every=args.refit_every, models=tuple(args.candidates),
                             levels=tuple(args.levels), mcs_reps=args.mcs_reps, seed=args.seed,
                             primary=args.candidates[0])
        from simulator.data.ecb import load_ecb

        market = load_ecb(symbols, start=args.start, end=args.end, account_currency=None, depth="infinite")
        closes = np.column_stack([market.bars[(s, "close")].to_numpy(dtype=float) for s in market.symbols])
        returns = np.vstack([np.full((1, closes.shape[1]), np.nan), np.diff(np.log(closes), axis=0)])
        n_filters = len(garch_filters(config.models))
        refits = len(range(config.window, len(closes), config.refit_every))
        with tqdm(total=n_filters * len(symbols) * refits, unit="fit", desc="GARCH walk-forward",
                  file=sys.stderr, mininterval=1.0) as bar:
            winner, ranking, result = select_model(returns, market.index, tuple(market.symbols), config,
                                                   level=args.select_level, progress=bar.update)
    except (DataError, ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    index = market.index
    test_rows = [str(index[result.start].date()), str(index[result.stop - 1].date())]
    settings = {"symbols": list(market.symbols), "candidates": list(config.models), "window": config.window,
                "refit_every": config.refit_every, "levels": list(config.levels), "select_level": args.select_level,
                "tail_fraction": config.tail_fraction, "long_window": config.long_window, "start": args.start,
                "end": args.end, "test_rows": test_rows, "seed": config.seed,
                "rule": "most pairs passing Kupiec and CC at 5% at select_level; ties by mean tick loss there"}
    t = result.table
    cols = ["symbol", "model", "level", "n", "exceptions", "rate", "kupiec_p", "cc_p", "tick_loss", "passes"]
    with RunFolder(args.out, "var-select", config=settings, argv=sys.argv if argv is None else argv) as run:
        run.write_csv("selection.csv", ranking, index=False)
        run.write_csv("backtest.csv", t, index=False)
        run.write_yaml("chosen.yaml", {"best": winner, "test_rows": test_rows, "symbols": list(market.symbols)})
        lines = [f"# VaR model selection on held-out pairs: {' '.join(market.symbols)}", "",
                 f"Test rows {test_rows[0]} … {test_rows[1]} ({result.stop - result.start:,} per pair); rule: "
                 f"{settings['rule']}. **Chosen: `{winner}`.**", "", "| rank | model | passes | pairs | mean tick loss |",
                 "|---|---|---|---|---|"]
        lines += [f"| {r.rank} | {r.model} | {r.passes} | {r.pairs} | {r.mean_tick_loss:.6g} |"
                  for r in ranking.itertuples()]
        lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
                  for row in t[cols].itertuples(index=False)]
        run.write_text("report.md", "\n".join(lines) + f"\n\nRun time {elapsed:.0f} s.\n")
    print(t[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("\nselection (rule: most passes at 99%, ties by mean tick loss):")
    print(ranking.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    print(f"\nchosen: {winner}\nwrote {run.final_path} (selection.csv, backtest.csv, chosen.yaml, report.md) "
          f"in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
