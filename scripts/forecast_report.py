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
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from forecasters.backtests import acerbi_szekely_z2, backtest_summary  # noqa: E402
from forecasters.base import Split, VolForecast, realised_next  # noqa: E402
from forecasters.cache import ForecastCache, cached_forecast  # noqa: E402
from forecasters.ewma import EwmaConfig, EwmaForecaster  # noqa: E402
from forecasters.garch import GarchConfig, GarchForecaster  # noqa: E402
from forecasters.var import (  # noqa: E402
    RiskForecast,
    conditional_var,
    garch_var,
    historical_var,
    normal_var,
    residual_quantile_var,
    student_t_var,
)
from simulator.common.cli import ArgumentParser, guard, prepare_out, seed_int  # noqa: E402
from simulator.common.errors import ConfigError, DataError  # noqa: E402
from simulator.data.market import MarketData  # noqa: E402
from simulator.common.run_folder import RunFolder  # noqa: E402
from simulator.data.sources import add_source_arguments, load_from_arguments  # noqa: E402

TRAFFIC_LIGHT_BARS = 250


@dataclass(frozen=True)
class ReportSettings:
    alpha: float
    es_alpha: float
    window: int
    min_window: int
    refit_every: int
    garch_window: int
    train: float
    validation: float
    neural: bool
    seed: int


def check_length(market: MarketData, split: Split, s: ReportSettings) -> None:
    """One clear line when the series cannot hold the warm-ups and a test span."""
    warmup = max(s.min_window + s.window, s.window) + 1
    test_bars = len(market) - split.val_end
    if warmup > split.val_end or test_bars < TRAFFIC_LIGHT_BARS:
        needed = int(np.ceil(max(warmup / (s.train + s.validation),
                                 TRAFFIC_LIGHT_BARS / (1 - s.train - s.validation))))
        raise DataError(
            f"{len(market):,} bars are too short: GARCH min window {s.min_window} + VaR window {s.window} "
            f"must fit before the test span (starts at bar {split.val_end:,}) and the test span needs "
            f">= {TRAFFIC_LIGHT_BARS} bars (has {test_bars:,})",
            source=market.source,
            hint=f"use at least {needed:,} bars or smaller --window / --min-window",
        )


def volatility_forecasts(market: MarketData, split: Split, s: ReportSettings, cache: ForecastCache,
                         progress) -> dict[str, VolForecast]:
    forecasters = [EwmaForecaster(EwmaConfig())]
    for vol in ("garch", "gjr", "egarch"):
        for dist in ("normal", "t"):
            # garch-t keeps each refit window's residual tails: its FHS covers the whole span
            tails = int(np.ceil(0.03 * s.garch_window)) + 2 if (vol, dist) == ("garch", "t") else 0
            forecasters.append(GarchForecaster(GarchConfig(
                vol=vol, dist=dist, refit_every=s.refit_every, window="rolling", window_size=s.garch_window,
                min_window=s.min_window, residual_tails=min(tails, s.min_window // 2))))
    if s.neural:
        from forecasters.neural import RecurrentVolConfig, RecurrentVolForecaster

        for cell in ("lstm", "gru"):
            forecasters.append(RecurrentVolForecaster(RecurrentVolConfig(cell=cell, seed=s.seed)))
    out: dict[str, VolForecast] = {}
    for forecaster in forecasters:
        progress.set_description(f"forecast {forecaster.name}")
        forecast, _ = cached_forecast(forecaster, market, split, cache)
        out[forecast.name] = forecast
        progress.update(1)
    return out


def risk_models(returns: np.ndarray, vols: dict[str, VolForecast], split: Split, alpha: float,
                s: ReportSettings) -> dict[str, tuple[RiskForecast, np.ndarray | None]]:
    """name -> (VaR/ES model, the volatility forecast behind it, if any)."""
    models: dict[str, tuple[RiskForecast, np.ndarray | None]] = {}
    normal = normal_var(returns, alpha, window=s.window)
    models["historical"] = (historical_var(returns, alpha, window=s.window), None)
    models["normal"] = (normal, None)
    models["student-t"] = (student_t_var(returns, alpha, window=s.window, refit_every=s.refit_every), None)
    for name, fc in vols.items():
        sigma = fc.sigma
        if name in ("lstm", "gru"):
            # Volatility-scaled with the training span's standardised residuals: the LSTM's own
            # forecasts start at the test span, so FHS or a quantile regression would need test data.
            models[f"{name}-scaled"] = (residual_quantile_var(sigma, alpha, fc.info["residual_grid"],
                                                              fc.info["residual_quantiles"],
                                                              name=f"{name}-scaled"), sigma)
            continue
        if name == "ewma":
            models["ewma-normal"] = (conditional_var(sigma, alpha, dist="normal", name="ewma-normal"), sigma)
            continue
        dist = fc.info.get("dist", "normal")
        # the forecast itself, not its sigma: VaR uses the fitted mean and shape parameters in info
        models[name] = (conditional_var(fc, alpha, dist=dist, name=name), sigma)
        if name == "garch-t":
            models["garch-fhs"] = (garch_var(fc, alpha, method="fhs", name="garch-fhs"), sigma)
    return models


def evaluate(returns: np.ndarray, models_var: dict, models_es: dict, split: Split, s: ReportSettings,
             j: int) -> pd.DataFrame:
    """Backtests of every model on the test rows [val_end, T-1) of pair ``j``."""
    test = np.zeros(len(returns), dtype=bool)
    test[split.val_end : len(returns) - 1] = True
    r_next = realised_next(returns[:, j])
    rows = []
    for name, (risk, sigma) in models_var.items():
        var = np.where(test, risk.var[:, j], np.nan)
        summary = backtest_summary(r_next, var, alpha=s.alpha,
                                   sigma=None if sigma is None else np.where(test, sigma[:, j], np.nan))
        es_risk, _ = models_es[name]
        es_var = np.where(test, es_risk.var[:, j], np.nan)
        es_es = np.where(test, es_risk.es[:, j], np.nan)
        usable = np.isfinite(es_var) & np.isfinite(es_es) & np.isfinite(r_next) & (es_var > 0)
        z2 = acerbi_szekely_z2(r_next[usable], es_var[usable], es_es[usable], 1 - s.es_alpha) if usable.any() \
            else float("nan")
        rows.append({
            "model": name,
            "test_bars": summary["n_obs"],
            "exceptions": summary["exceptions"],
            "rate_pct": 100 * summary["rate"],
            "kupiec_p": summary["kupiec_p"],
            "christoffersen_p": summary["christoffersen_p"],
            "zone_last_250": summary["traffic_light"],
            "avg_var_pct": 100 * summary["avg_var"],
            "avg_es975_pct": 100 * float(np.nanmean(es_es)),
            "es975_z2": z2,
            "qlike": summary["qlike"],
            "mse_var": summary["mse_variance"],
        })
    return pd.DataFrame(rows).set_index("model")


def plot_band(path: Path, market: MarketData, returns: np.ndarray, models_var: dict, split: Split, j: int,
              names: list[str], alpha: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = market.index
    r_next = realised_next(returns[:, j])
    span = slice(split.val_end, len(idx) - 1)
    times = idx[split.val_end + 1 :]  # the bar each return belongs to
    fig, ax = plt.subplots(figsize=(12, 5), dpi=110)
    ax.plot(times, 100 * r_next[span], lw=0.5, color="0.35", label="next-bar return")
    colors = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
    for name, color in zip(names, colors, strict=False):
        if name not in models_var:
            continue
        var = models_var[name][0].var[span, j]
        ax.plot(times, -100 * var, lw=0.9, color=color, label=f"-VaR {alpha:.0%} {name}")
        hits = r_next[span] < -var
        ax.scatter(times[hits], 100 * r_next[span][hits], s=18, color=color, zorder=3,
                   label=f"exceptions {name} ({int(hits.sum())})")
    ax.set_ylabel("log return, %")
    ax.set_title(f"{market.symbols[j]}: returns on the test span against the {alpha:.0%} VaR band")
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def markdown_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in frame.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if isinstance(v, float):
                cells.append("" if np.isnan(v) else (f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.3f}"))
            else:
                cells.append(str(v))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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

    from tqdm import tqdm

    settings = ReportSettings(alpha=args.alpha, es_alpha=args.es_alpha, window=args.window,
                              min_window=args.min_window, refit_every=args.refit_every,
                              garch_window=args.garch_window, train=args.train, validation=args.validation,
                              neural=not args.no_neural, seed=args.seed)
    started = time.perf_counter()
    market = None
    try:
        if not (0.5 < args.alpha < 1 and 0.5 < args.es_alpha < 1):
            raise ConfigError(f"--alpha and --es-alpha must be in (0.5, 1), got {args.alpha}, {args.es_alpha}")
        market = load_from_arguments(args)
        for note in market.notes:
            if "jump" in note:
                print(f"note: {note}", file=sys.stderr)
        if (args.train_end is None) != (args.validation_end is None):
            raise ConfigError("give both --train-end and --validation-end, or neither (then --train/--validation)")
        if args.train_end is not None:
            split = Split.by_date(market.index, args.train_end, args.validation_end, source="command line",
                                  keys=("--train-end", "--validation-end"))
        else:
            try:
                split = Split.by_fraction(len(market), train=args.train, validation=args.validation)
            except ValueError as exc:
                raise DataError(f"{len(market)} bar(s) cannot be split into train / validation / test ({exc})",
                                source=market.source, hint="use a longer file") from None
        check_length(market, split, settings)
        cache = ForecastCache(args.cache_dir)
        n_steps = 7 + (2 if settings.neural else 0) + 2
        with tqdm(total=n_steps, unit="step", file=sys.stderr) as progress:
            vols = volatility_forecasts(market, split, settings, cache, progress)
            returns = market.log_returns()
            progress.set_description("VaR/ES models")
            models_var = risk_models(returns, vols, split, args.alpha, settings)
            models_es = risk_models(returns, vols, split, args.es_alpha, settings)
            progress.update(1)
            progress.set_description("backtests")
            tables = {sym: evaluate(returns, models_var, models_es, split, settings, j)
                      for j, sym in enumerate(market.symbols)}
            progress.update(1)
    except (DataError, ConfigError, ValueError) as err:
        where = "" if isinstance(err, (DataError, ConfigError)) or market is None else f"{market.source}: "
        print(f"error: {where}{' '.join(str(err).split())}", file=sys.stderr)
        return 2

    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    run_config = {"source": market.source, "bars": len(market), "split": {"train_end": split.train_end,
                  "val_end": split.val_end}, **settings.__dict__}
    with RunFolder(args.out, "forecast", config=run_config, argv=sys.argv) as run:
        md = [f"# Forecast report: {market.source}", "",
              f"{len(market):,} bars from {market.index[0]} to {market.index[-1]}; training bars "
              f"[0, {split.train_end:,}), validation [{split.train_end:,}, {split.val_end:,}), "
              f"test [{split.val_end:,}, {len(market):,}). Every model is backtested on the same test bars: "
              f"VaR at {args.alpha:.1%} (one bar, long position), ES at {args.es_alpha:.1%}.", "",
              "Columns: exceptions and rate of VaR exceptions; Kupiec (coverage) and Christoffersen "
              "(independence) p-values; Basel zone over the last 250 test bars; average VaR and ES in % of "
              "position value; Acerbi–Szekely Z2 of ES (0 when right, negative when ES is too small); QLIKE "
              "(Patton) and MSE of the variance forecast against squared next returns.", ""]
        for sym, table in tables.items():
            run.write_csv(f"var_table_{sym}.csv" if len(tables) > 1 else "var_table.csv", table)
            md += [f"## {sym}", "", markdown_table(table), ""]
            fallbacks = {n: (f.refits, f.fallbacks) for n, f in vols.items() if f.refits}
            md += ["GARCH refits (fallbacks to the last good parameters): "
                   + ", ".join(f"{n} {r} ({fb})" for n, (r, fb) in fallbacks.items()), ""]
        plot_band(run.file("var_band.png"), market, returns, models_var, split, 0,
                  ["historical", "garch-t", "lstm-scaled" if settings.neural else "ewma-normal"], args.alpha)
        md += ["![returns against the VaR band](var_band.png)", ""]
        run.write_text("report.md", "\n".join(md))
    for sym, table in tables.items():
        print(f"\n{sym}: VaR {args.alpha:.0%} backtests on {int(table['test_bars'].iloc[0]):,} test bars")
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"\nwrote {run.final_path} (report.md, var_table.csv, var_band.png) in "
          f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
