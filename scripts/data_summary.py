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
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simulator.synthetic.calibration import calibrate  # noqa: E402
from simulator.common.cli import ArgumentParser, finite_float, guard, prepare_out, seed_int  # noqa: E402
from simulator.common.configuration import to_mapping  # noqa: E402
from simulator.common.errors import ConfigError, DataError  # noqa: E402
from simulator.data.market import MarketData  # noqa: E402
from simulator.common.run_folder import RunFolder  # noqa: E402
from simulator.data.sources import add_source_arguments, load_from_arguments  # noqa: E402
from simulator.synthetic.generator import SyntheticConfig, generate_market  # noqa: E402

G10_CONFIG = REPO / "simulator" / "data" / "synthetic_g10.yaml"


def stylised_facts(market: MarketData, symbol: str) -> dict[str, float]:
    """The realism checks of the data layer for one pair (hourly returns)."""
    j = market.symbols.index(symbol)
    r = pd.Series(market.log_returns()[1:, j])
    abs_acf = [r.abs().autocorr(lag) for lag in range(1, 11)]
    spread = market.bars[(symbol, "spread")].iloc[1:].reset_index(drop=True)
    realised = r.pow(2).rolling(24).mean().pow(0.5)
    return {
        "ann_vol_pct": float(r.std() * np.sqrt(market.bars_per_year()) * 100),
        "excess_kurtosis": float(r.kurt()),
        "acf1_returns": float(r.autocorr(1)),
        "min_acf_abs_returns_lags_1_10": float(min(abs_acf)),
        "corr_spread_realised_vol": float(spread.corr(realised)),
        "median_spread_pips": float(np.median(market.spread_pips()[:, j])),
    }


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

    started = time.perf_counter()
    try:
        real = load_from_arguments(args)
        print(f"[1/4] loaded {real.source}: {len(real):,} bars, pairs {', '.join(real.symbols)}")
        for note in real.notes:
            print(f"      note: {note}")
        symbol = real.symbols[0]
        try:
            config, fit = calibrate(real, symbol=symbol)
        except (ConfigError, DataError):
            raise
        except ValueError as exc:  # e.g. an implausible annual volatility: name the file
            raise DataError(f"cannot calibrate the generator to {symbol}: {exc}", source=real.source,
                            hint="check the file for unit or decimal errors (see the notes above)") from None
        print(f"[2/4] GARCH(1,1)-t fit on de-seasonalised {symbol} returns: alpha={fit.alpha:.4f} "
              f"beta={fit.beta:.4f} nu={fit.nu:.2f} (log-likelihood {fit.loglik:.1f})")
        rng = np.random.default_rng(args.seed)
        n_bars = int(args.years * config.bars_per_year)
        calibrated = generate_market(config, n_bars, rng=rng)
        g10_config = SyntheticConfig.from_yaml(G10_CONFIG)
        g10 = generate_market(g10_config, int(g10_config.bars_per_year), rng=rng)
        print(f"[3/4] generated {n_bars:,} calibrated {symbol} bars and {len(g10.market):,} bars of "
              f"{', '.join(g10.market.symbols)} (seed {args.seed})")
    except (DataError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    facts = pd.DataFrame({
        f"real {symbol}": stylised_facts(real, symbol),
        f"calibrated {symbol}": stylised_facts(calibrated.market, symbol),
    })
    pd.set_option("display.width", 160)
    pd.set_option("display.max_columns", 20)
    print("\nReal sample:")
    print(real.summary().T.to_string())
    print("\nThree-pair synthetic market (synthetic_g10.yaml):")
    print(g10.market.summary().T.to_string())
    print("\nStylised facts, real vs calibrated generator:")
    print(facts.to_string(float_format=lambda x: f"{x:,.4f}"))
    corr = pd.DataFrame(np.corrcoef(g10.market.log_returns()[1:].T), index=g10.market.symbols,
                        columns=g10.market.symbols)
    print("\nReturn correlation of the three-pair market:")
    print(corr.round(3).to_string())

    run_config = {"source": real.source, "seed": args.seed, "years": args.years,
                  "calibrated": to_mapping(config), "g10": to_mapping(g10_config)}
    with RunFolder(args.out, "data", config=run_config, argv=sys.argv) as run:
        run.write_csv("real_summary.csv", real.summary())
        run.write_csv("g10_summary.csv", g10.market.summary())
        run.write_csv("stylised_facts.csv", facts)
        run.write_yaml("garch_t_fit.yaml", to_mapping(fit))
        run.write_csv("calibrated_bars.csv", calibrated.market.pair(symbol))
        run.write_csv("g10_bars.csv", g10.market.bars)
    print(f"\n[4/4] wrote {run.final_path} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
