#!/usr/bin/env python
"""Choose the default no-trade band on the validation span, never the test span.

Every rule-based baseline (the same band for all) on each market of the ECB history — EURUSD,
USDJPY, GBPUSD, EURCHF and the three-pair EURUSD/USDJPY/GBPUSD market, train 1999-2013,
validation 2014-2017 (agents/hyperparams/ppo_ecb.yaml) — at each candidate band, on the
validation span. The rule: the band with the highest median validation Sharpe ratio over
(market, baseline); a smaller band wins a tie within 0.01. Prints the table and writes
``band_validation.csv`` and ``choice.yaml`` to a fresh run folder.

    python scripts/experiment_band.py                    # about two minutes on 2 cores
    python scripts/experiment_band.py --bands 0 0.1 0.2  # other candidates
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.baselines import make_baseline  # noqa: E402
from agents.evaluation.rollout import evaluation_config, run_policy  # noqa: E402
from agents.hyperparams import TrainConfig  # noqa: E402
from agents.training import load_market, split_data  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, prepare_out  # noqa: E402
from simulator.common.configuration import from_mapping, load_yaml  # noqa: E402
from simulator.common.run_folder import RunFolder  # noqa: E402

CONFIG = REPO / "agents" / "hyperparams" / "ppo_ecb.yaml"
MARKETS = (("EURUSD",), ("USDJPY",), ("GBPUSD",), ("EURCHF",), ("EURUSD", "USDJPY", "GBPUSD"))
BASELINES = ("vol_target", "var_budget", "fixed_fraction", "raw_signal", "fractional_kelly", "atr_stop")
BANDS = (0.0, 0.1, 0.2, 0.3, 0.5)


def band_table(config: TrainConfig, markets, baselines, bands, split: str = "validation") -> pd.DataFrame:
    """One row per (market, baseline, band): the summary of the run on ``split``."""
    rows = []
    for symbols in markets:
        data_config = dataclasses.replace(config.data, symbols=tuple(symbols))
        market = load_market(data_config, account_currency=config.env.account.currency)
        data = split_data(market, config.env, data_config)
        span = data.span(split)
        for band in bands:
            env = evaluation_config(dataclasses.replace(config.env, rebalance_band=float(band)))
            for name in baselines:
                summary = run_policy(make_baseline(name), span, env, label=name).summary.iloc[0]
                rows.append({"market": "+".join(symbols), "baseline": name, "band": float(band),
                             "sharpe_ratio": float(summary["sharpe_ratio"]),
                             "total_return": float(summary["total_return"]),
                             "max_drawdown": float(summary["max_drawdown"]),
                             "turnover_x_equity": float(summary["turnover_x_equity"]),
                             "costs_paid": float(summary["costs_paid"]), "stop_outs": int(summary["stop_outs"])})
    return pd.DataFrame(rows)


def choose_band(table: pd.DataFrame, tie: float = 0.01) -> tuple[float, pd.DataFrame]:
    """The band with the highest median Sharpe over (market, baseline); the smallest within ``tie`` of it."""
    by_band = table.groupby("band").agg(median_sharpe=("sharpe_ratio", "median"),
                                        mean_sharpe=("sharpe_ratio", "mean"),
                                        median_turnover=("turnover_x_equity", "median"),
                                        median_costs=("costs_paid", "median")).reset_index()
    best = by_band["median_sharpe"].max()
    chosen = float(by_band.loc[by_band["median_sharpe"] >= best - tie, "band"].min())
    return chosen, by_band


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bands", type=float, nargs="+", default=list(BANDS), help="candidate bands")
    parser.add_argument("--config", type=Path, default=CONFIG, help="training YAML naming the data and the env")
    parser.add_argument("--out", type=Path, default=REPO / "runs", help="where run folders go (default runs/)")
    args = parser.parse_args(argv)
    prepare_out(args.out)
    config = from_mapping(TrainConfig, load_yaml(args.config), source=str(args.config))
    table = band_table(config, MARKETS, BASELINES, args.bands)
    chosen, by_band = choose_band(table)
    with pd.option_context("display.width", 160, "display.max_rows", 500):
        print("validation span, every baseline, by band:")
        print(by_band.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        pivot = table.pivot_table(index=["market", "baseline"], columns="band", values="sharpe_ratio")
        print("\nvalidation Sharpe ratio by market and baseline:")
        print(pivot.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"\nchosen band (highest median validation Sharpe, smallest within 0.01): {chosen:g}")
    resolved = {"config": str(args.config), "bands": [float(b) for b in args.bands], "split": "validation",
                "markets": ["+".join(m) for m in MARKETS], "baselines": list(BASELINES)}
    with RunFolder(args.out, "experiment-band", config=resolved,
                   argv=sys.argv if argv is None else ["experiment_band.py", *argv]) as folder:
        folder.write_csv("band_validation.csv", table, index=False)
        folder.write_csv("by_band.csv", by_band, index=False)
        folder.write_yaml("choice.yaml", {"rebalance_band": chosen, "rule": "highest median validation Sharpe "
                                          "over (market, baseline); the smallest band within 0.01",
                                          "median_sharpe": {float(b): float(s) for b, s in
                                                            zip(by_band["band"], by_band["median_sharpe"])}})
    print(f"run folder: {folder.path}")
    return 0 if np.isfinite(chosen) else 1


if __name__ == "__main__":
    raise SystemExit(main())
