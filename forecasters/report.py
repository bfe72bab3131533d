"""The forecast report: every volatility forecaster and VaR/ES model backtested on the test span of one series.

Why a library module: ``scripts/forecast_report.py`` and the main job (:mod:`agents.pipeline`) run the
same report; each only parses its arguments and calls :func:`forecast_report`, which returns the
finished run folder (``forecast-<UTC time>/``: report.md, var_table.csv, var_band.png).

Fits every volatility forecaster (EWMA; GARCH, GJR-GARCH, EGARCH with normal and Student-t
shocks, walk-forward; LSTM and GRU trained on the training span with early stopping on the
validation span), builds VaR/ES models on them (historical, parametric normal and t, conditional
normal/t, filtered historical simulation, LSTM/GRU scaled by their training-span residual
quantiles), and backtests every model on the same test bars: exceptions, rate, Kupiec and
Christoffersen p-values, Basel zone over the last 250 bars, average VaR, QLIKE, MSE and the
Acerbi–Szekely Z2 of ES(97.5%).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasters.backtests import acerbi_szekely_z2, backtest_summary
from forecasters.base import Split, VolForecast, realised_next
from forecasters.cache import ForecastCache, cached_forecast
from forecasters.ewma import EwmaConfig, EwmaForecaster
from forecasters.garch import GarchConfig, GarchForecaster
from forecasters.var import (
    RiskForecast,
    conditional_var,
    garch_var,
    historical_var,
    normal_var,
    residual_quantile_var,
    student_t_var,
)
from simulator.common.errors import ConfigError, DataError
from simulator.common.run_folder import RunFolder
from simulator.data.market import MarketData

TRAFFIC_LIGHT_BARS = 250


@dataclass(frozen=True, kw_only=True)
class ForecastReportSettings:
    """What the forecast report fits and backtests: confidences (fractions), windows and refit interval (bars),
    the LSTM/GRU training and validation shares (fractions of the bars) and their seed."""

    alpha: float = 0.99
    es_alpha: float = 0.975
    window: int = 1000
    min_window: int = 1000
    refit_every: int = 250
    garch_window: int = 3000
    train: float = 0.5
    validation: float = 0.2
    neural: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0.5 < self.alpha < 1 and 0.5 < self.es_alpha < 1):
            raise ConfigError(f"--alpha and --es-alpha must be in (0.5, 1), got {self.alpha}, {self.es_alpha}")


def check_length(market: MarketData, split: Split, s: ForecastReportSettings) -> None:
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


def volatility_forecasts(market: MarketData, split: Split, s: ForecastReportSettings, cache: ForecastCache,
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
                s: ForecastReportSettings) -> dict[str, tuple[RiskForecast, np.ndarray | None]]:
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


def evaluate(returns: np.ndarray, models_var: dict, models_es: dict, split: Split, s: ForecastReportSettings,
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



@dataclass(frozen=True)
class ForecastReport:
    """A finished forecast report: its run folder and the backtest table per pair."""

    path: Path
    tables: dict[str, pd.DataFrame]
    seconds: float


def forecast_split(market: MarketData, *, train: float = 0.5, validation: float = 0.2, train_end: str | None = None,
                   validation_end: str | None = None) -> Split:
    """The report's split: by dates when both ends are given (inclusive), else by shares of the bars."""
    if (train_end is None) != (validation_end is None):
        raise ConfigError("give both --train-end and --validation-end, or neither (then --train/--validation)")
    if train_end is not None:
        return Split.by_date(market.index, train_end, validation_end, source="command line",
                             keys=("--train-end", "--validation-end"))
    try:
        return Split.by_fraction(len(market), train=train, validation=validation)
    except ValueError as exc:
        raise DataError(f"{len(market)} bar(s) cannot be split into train / validation / test ({exc})",
                        source=market.source, hint="use a longer file") from None


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def forecast_report(market: MarketData, split: Split, settings: ForecastReportSettings, *, runs_root: str | Path,
                    cache_dir: str | Path | None = None, argv: Sequence[str] | None = None,
                    log: Callable[[str], None] = print, warn: Callable[[str], None] | None = None,
                    progress: bool = True) -> ForecastReport:
    """Fit, backtest and write the report into a fresh ``runs_root/forecast-<UTC time>/``; returns it finished.

    A series too short for the warm-ups and a 250-bar test span is one :class:`DataError` line
    before any folder exists. ``log`` receives the backtest tables (text) when the folder is done,
    ``warn`` the data's notes on suspicious jumps (default: stderr).
    """
    from tqdm import tqdm

    started = time.perf_counter()
    for note in market.notes:
        if "jump" in note:
            (warn or _to_stderr)(f"note: {note}")
    check_length(market, split, settings)
    cache = ForecastCache(cache_dir)
    n_steps = 7 + (2 if settings.neural else 0) + 2
    with tqdm(total=n_steps, unit="step", file=sys.stderr, disable=not progress) as bar:
        vols = volatility_forecasts(market, split, settings, cache, bar)
        returns = market.log_returns()
        bar.set_description("VaR/ES models")
        models_var = risk_models(returns, vols, split, settings.alpha, settings)
        models_es = risk_models(returns, vols, split, settings.es_alpha, settings)
        bar.update(1)
        bar.set_description("backtests")
        tables = {sym: evaluate(returns, models_var, models_es, split, settings, j)
                  for j, sym in enumerate(market.symbols)}
        bar.update(1)
    run_config = {"source": market.source, "bars": len(market), "split": {"train_end": split.train_end,
                  "val_end": split.val_end}, **asdict(settings)}
    alpha, es_alpha = settings.alpha, settings.es_alpha
    with RunFolder(runs_root, "forecast", config=run_config, argv=list(argv) if argv is not None else None) as run:
        md = [f"# Forecast report: {market.source}", "",
              f"{len(market):,} bars from {market.index[0]} to {market.index[-1]}; training bars "
              f"[0, {split.train_end:,}), validation [{split.train_end:,}, {split.val_end:,}), "
              f"test [{split.val_end:,}, {len(market):,}). Every model is backtested on the same test bars: "
              f"VaR at {alpha:.1%} (one bar, long position), ES at {es_alpha:.1%}.", "",
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
                  ["historical", "garch-t", "lstm-scaled" if settings.neural else "ewma-normal"], alpha)
        md += ["![returns against the VaR band](var_band.png)", ""]
        run.write_text("report.md", "\n".join(md))
    for sym, table in tables.items():
        log(f"\n{sym}: VaR {alpha:.0%} backtests on {int(table['test_bars'].iloc[0]):,} test bars")
        log(table.to_string(float_format=lambda v: f"{v:.4g}"))
    return ForecastReport(path=run.final_path, tables=tables, seconds=time.perf_counter() - started)


__all__ = ["TRAFFIC_LIGHT_BARS", "ForecastReport", "ForecastReportSettings", "check_length", "evaluate",
           "forecast_report", "forecast_split", "markdown_table", "plot_band", "risk_models", "volatility_forecasts"]
