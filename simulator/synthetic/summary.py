"""The data summary: a real series, the synthetic generator calibrated to it, and their stylised facts.

Why a library module: ``scripts/data_summary.py`` and the main job (:mod:`agents.pipeline`) run the
same summary; each parses its arguments and calls :func:`data_summary`, which returns the finished
run folder (``data-<UTC time>/``: summaries, stylised facts, the GARCH-t fit, the generated bars).

Steps: a GARCH(1,1)-t fit on the de-seasonalised returns of the first pair calibrates the
generator; it generates ``years`` of calibrated bars and a year of the three-pair correlated
market (``simulator/data/synthetic_g10.yaml``); the realism checks of the data layer are set side
by side for the real and the calibrated series.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.common.configuration import to_mapping
from simulator.common.errors import ConfigError, DataError
from simulator.common.run_folder import RunFolder
from simulator.data.market import MarketData
from simulator.synthetic.calibration import calibrate
from simulator.synthetic.generator import SyntheticConfig, generate_market

G10_CONFIG = Path(__file__).resolve().parents[1] / "data" / "synthetic_g10.yaml"


@dataclass(frozen=True)
class DataSummary:
    """A finished data summary: its run folder and the stylised facts, real against calibrated."""

    path: Path
    facts: pd.DataFrame
    seconds: float


def stylised_facts(market: MarketData, symbol: str) -> dict[str, float]:
    """The realism checks of the data layer for one pair (bar returns; volatility annualised, in %)."""
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


def data_summary(real: MarketData, *, years: float = 4.0, seed: int = 42, runs_root: str | Path,
                 argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> DataSummary:
    """Calibrate, generate, compare and write a fresh ``runs_root/data-<UTC time>/``; returns it finished.

    ``years``: calibrated synthetic years to generate; ``seed``: the generator's seed (same seed,
    same bars). A series the fit cannot calibrate to is one :class:`DataError` naming the source.
    """
    if not (np.isfinite(years) and years > 0):
        raise ConfigError(f"years must be a positive number, got {years}")
    started = time.perf_counter()
    log(f"loaded {real.source}: {len(real):,} bars, pairs {', '.join(real.symbols)}")
    for note in real.notes:
        log(f"      note: {note}")
    symbol = real.symbols[0]
    try:
        config, fit = calibrate(real, symbol=symbol)
    except (ConfigError, DataError):
        raise
    except ValueError as exc:  # e.g. an implausible annual volatility: name the file
        raise DataError(f"cannot calibrate the generator to {symbol}: {exc}", source=real.source,
                        hint="check the file for unit or decimal errors (see the notes above)") from None
    log(f"GARCH(1,1)-t fit on de-seasonalised {symbol} returns: alpha={fit.alpha:.4f} "
        f"beta={fit.beta:.4f} nu={fit.nu:.2f} (log-likelihood {fit.loglik:.1f})")
    rng = np.random.default_rng(seed)
    n_bars = int(years * config.bars_per_year)
    calibrated = generate_market(config, n_bars, rng=rng)
    g10_config = SyntheticConfig.from_yaml(G10_CONFIG)
    g10 = generate_market(g10_config, int(g10_config.bars_per_year), rng=rng)
    log(f"generated {n_bars:,} calibrated {symbol} bars and {len(g10.market):,} bars of "
        f"{', '.join(g10.market.symbols)} (seed {seed})")
    facts = pd.DataFrame({
        f"real {symbol}": stylised_facts(real, symbol),
        f"calibrated {symbol}": stylised_facts(calibrated.market, symbol),
    })
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        log("\nReal sample:")
        log(real.summary().T.to_string())
        log("\nThree-pair synthetic market (synthetic_g10.yaml):")
        log(g10.market.summary().T.to_string())
        log("\nStylised facts, real vs calibrated generator:")
        log(facts.to_string(float_format=lambda x: f"{x:,.4f}"))
        corr = pd.DataFrame(np.corrcoef(g10.market.log_returns()[1:].T), index=g10.market.symbols,
                            columns=g10.market.symbols)
        log("\nReturn correlation of the three-pair market:")
        log(corr.round(3).to_string())
    run_config = {"source": real.source, "seed": seed, "years": years,
                  "calibrated": to_mapping(config), "g10": to_mapping(g10_config)}
    with RunFolder(runs_root, "data", config=run_config, argv=list(argv) if argv is not None else None) as run:
        run.write_csv("real_summary.csv", real.summary())
        run.write_csv("g10_summary.csv", g10.market.summary())
        run.write_csv("stylised_facts.csv", facts)
        run.write_yaml("garch_t_fit.yaml", to_mapping(fit))
        run.write_csv("calibrated_bars.csv", calibrated.market.pair(symbol))
        run.write_csv("g10_bars.csv", g10.market.bars)
    return DataSummary(path=run.final_path, facts=facts, seconds=time.perf_counter() - started)


__all__ = ["G10_CONFIG", "DataSummary", "data_summary", "stylised_facts"]
