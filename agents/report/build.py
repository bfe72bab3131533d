"""The stress-test comparison report: which sizing policy holds up under liquidity stress.

Why: a risk manager reads one report after every policy (PPO agents and rule-based sizing
baselines) has run through every stress scenario with several seeds. Its first screen answers
*who holds up*: a ranking with confidence intervals, a one-sentence verdict computed from the
numbers, and a paired test of the best agent against the best baseline, so "the agent wins" is
never claimed on noise.

Input: a run folder written by ``scripts/stress_test.py``:

* ``results.csv`` — one row per (policy, scenario, seed): ``policy``, ``kind`` (``agent`` or
  ``baseline``), ``scenario`` (``baseline`` is the unstressed test data), ``seed``,
  ``stress_start`` / ``stress_end`` (ISO timestamps of the stress window, empty for the
  baseline) and the metrics of :func:`agents.evaluation.metrics.summarise` plus ``breach_rate``,
  ``turnover_x_equity``, ``var_nominal_rate``, ``bars_per_year``;
* ``cells/<policy>/<scenario>/seed-<seed>.csv.gz`` — per-step records of that run (``t``,
  ``timestamp``, ``equity``, ``equity_before``, ``var``, ``var_limit``, ``exposure_<PAIR>``...);
* ``manifest.yaml`` / ``config.yaml`` — what was run (shown in the footer).

Output (:func:`build_report`): a fresh folder ``report/`` (``report-2/``, ... when taken) with
``report.md``, a self-contained ``report.html`` (plots embedded as base64), the PNG plots,
``interactive.html`` (Plotly, offline: :mod:`agents.report.interactive`), ``ranking.csv``,
``scenarios.csv`` and ``summary.yaml``. It is built in a hidden temporary
folder next to it and renamed into place, so a report folder is always complete and an earlier
one is never touched.

Method (also written into the report):

* **Score**: policies rank by the mean annualised Sharpe ratio over the stressed runs (every
  scenario other than ``baseline``, every seed, each run weighted equally); ties by the Sharpe
  ratio on the test data. Without stressed scenarios, the test-data Sharpe ratio ranks.
* **Intervals across runs**: percentile bootstrap (:func:`agents.evaluation.statistics.bootstrap_ci`)
  of the mean over the runs, each (scenario, seed) run one draw; they show the spread between
  seeds and scenarios, not the uncertainty inside one run. Runs with an undefined Sharpe ratio
  are left out and counted.
* **Paired test**: per (scenario, seed) the two runs' per-bar simple returns
  (``equity / equity_before - 1``) are aligned on the bar index ``t``; bars after a run was
  stopped out count as return 0 (it holds nothing); the aligned cells are **concatenated** in
  (scenario, seed) order and :func:`agents.evaluation.statistics.paired_sharpe_difference` resamples both
  with the same stationary-bootstrap indices. Its Sharpe ratios are those of the concatenated
  series, so they differ slightly from the mean-of-runs Sharpe ratios of the ranking.
* **Deflated Sharpe ratio**: of the top-ranked policy, on the same concatenated per-bar returns
  (stressed runs; the test data when there are none), with ``n_trials`` = the number of
  policies (or more, when more were tried) and the variance of the per-bar Sharpe ratios of all
  policies on those bars.

All randomness comes from one ``numpy.random.Generator`` seeded by ``ReportSettings.seed``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
import os
import re
import shutil
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from agents.evaluation import cells
from agents.report.style import (
    AccountUnits,
    PolicyStyle,
    account_units,
    diverging_limits,
    is_all_zero,
    policy_styles,
    robust_limits,
    trades,
    visible_window,
)
from simulator.common.configuration import safe_load
from simulator.common.errors import ConfigError, DataError
from agents.evaluation.metrics import bars_per_year as _bars_per_year_from_index
from agents.evaluation.metrics import drawdown_series
from simulator.common.run_folder import atomic_write_bytes, atomic_write_csv, atomic_write_text, git_revision
from agents.evaluation.statistics import (
    bootstrap_ci,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    paired_sharpe_difference,
)

__all__ = [
    "BASELINE_SCENARIO",
    "CellStore",
    "REQUIRED_COLUMNS",
    "Report",
    "ReportSettings",
    "aligned_returns",
    "best_of_kind",
    "build_report",
    "deflated_sharpe",
    "load_results",
    "markdown_table",
    "paired_test",
    "per_bar_sharpe",
    "plot_equity_drawdown",
    "plot_heatmap",
    "plot_pnl_var",
    "plot_position_size",
    "rank_policies",
    "read_cell",
    "render_html",
    "scenario_matrix",
    "scenario_summary",
    "severest_scenario",
    "verdict",
]

BASELINE_SCENARIO = "baseline"
KINDS = ("agent", "baseline")
IDENTITY_COLUMNS = ("policy", "kind", "scenario", "seed")
#: Metrics the headline needs; a results.csv without one of them is refused.
REQUIRED_METRICS = ("sharpe_ratio", "total_return", "max_drawdown", "time_over_limit", "stop_outs", "costs_paid")
REQUIRED_COLUMNS = IDENTITY_COLUMNS + REQUIRED_METRICS
#: Metrics shown where present (filled with NaN, shown as n/a, when a results.csv lacks them).
OPTIONAL_METRICS = (
    "n_bars", "initial_equity", "final_equity", "annualised_return", "annualised_volatility", "sortino_ratio",
    "cvar", "worst_bar_return", "var_exceptions", "var_exception_rate", "var_nominal_rate", "var_breaches",
    "breach_rate", "margin_calls", "turnover", "turnover_x_equity", "cost_bps_of_turnover", "mean_var_utilisation",
    "bars_per_year",
)
WINDOW_COLUMNS = ("stress_start", "stress_end")
CELL_REQUIRED = cells.REQUIRED
CELL_OPTIONAL = cells.OPTIONAL
DEFAULT_BARS_PER_YEAR = 6240.0  # hourly FX bars, 24 x 260 (agents.evaluation.metrics.bars_per_year)
_RERUN = "re-run scripts/stress_test.py, whose results.csv has every column, or add the column"


# --------------------------------------------------------------------------------------------------
# Reading the run folder
# --------------------------------------------------------------------------------------------------

def run_key(results: pd.DataFrame) -> list[str]:
    """The columns naming one run: policy, scenario, seed and, where recorded, the agent's training seed."""
    return ["policy", "scenario", "seed", *(["train_seed"] if "train_seed" in results.columns else [])]


def _line(row: int) -> int:
    return row + 2  # header is line 1


def load_results(path: str | Path) -> pd.DataFrame:
    """Read and validate a stress test's ``results.csv``: one row per (policy, scenario, seed).

    Why strict: the ranking is only as good as the table under it, so a missing column, an
    unknown ``kind``, a non-integer seed, an unparsable number or a duplicated run is a
    :class:`simulator.common.errors.DataError` — one line naming the file, the line, the column and
    what to do. Metric columns come back as floats (empty = NaN), ``seed`` as int,
    ``stress_start`` / ``stress_end`` as UTC timestamps (NaT when empty); optional metrics the
    file lacks are added as NaN and listed in ``frame.attrs["filled_columns"]``.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise DataError("file not found", source=source,
                        hint="pass the run folder written by scripts/stress_test.py (it holds results.csv)")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", source=source, hint=_RERUN) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"not a readable CSV file ({first})", source=source,
                        hint="check the separator (a comma) and the encoding (UTF-8)") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        more = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise DataError(f"missing column '{missing[0]}'{more}; the report needs {', '.join(REQUIRED_COLUMNS)}",
                        source=source, hint=_RERUN)
    if raw.empty:
        raise DataError("no rows: the stress test recorded no runs", source=source, hint=_RERUN)
    out = pd.DataFrame(index=raw.index)
    for col in ("policy", "scenario"):
        values = raw[col].str.strip()
        bad = values == ""
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError("empty value", source=source, line=_line(row), field=col,
                            hint="every run needs a policy and a scenario name")
        out[col] = values
    kind = raw["kind"].str.strip().str.lower()
    bad = ~kind.isin(KINDS)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"kind {raw['kind'].iloc[row]!r} is neither 'agent' nor 'baseline'", source=source,
                        line=_line(row), field="kind", hint="write agent for trained policies, baseline for rules")
    out["kind"] = kind
    seed = pd.to_numeric(raw["seed"].str.strip(), errors="coerce")
    bad = ~(np.isfinite(seed) & (seed == np.round(seed)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"seed {raw['seed'].iloc[row]!r} is not an integer", source=source, line=_line(row),
                        field="seed", hint="write the seed of the run as a whole number")
    out["seed"] = seed.astype(np.int64)
    for col in WINDOW_COLUMNS:
        text = raw[col].str.strip() if col in raw.columns else pd.Series("", index=raw.index)
        stamps = pd.to_datetime(text.where(text != ""), utc=True, errors="coerce", format="ISO8601")
        bad = (text != "") & stamps.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"cannot parse timestamp {text.iloc[row]!r}", source=source, line=_line(row), field=col,
                            hint="write ISO 8601 timestamps (2024-03-01T12:00:00Z) or leave it empty")
        out[col] = stamps
    filled = []
    for col in REQUIRED_METRICS + OPTIONAL_METRICS:
        if col not in raw.columns:
            filled.append(col)
            out[col] = np.nan
            continue
        text = raw[col].str.strip()
        values = pd.to_numeric(text.replace({"": "nan", "True": "1", "False": "0"}), errors="coerce")
        bad = values.isna() & ~text.str.lower().isin(("", "nan", "na", "n/a", "none", "null"))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"cannot parse number {text.iloc[row]!r}", source=source, line=_line(row), field=col,
                            hint="write a number, or leave the value empty when it is undefined")
        out[col] = values.astype(np.float64)
    extra = [c for c in raw.columns if c not in out.columns]
    for col in extra:  # kept as given (strings), for whoever reads the frame
        out[col] = raw[col]
    dup = out.duplicated(run_key(out), keep="first")  # an agent's training seeds are runs of their own
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        r = out.iloc[row]
        raise DataError(f"duplicate run: policy {r['policy']}, scenario {r['scenario']}, seed {r['seed']} appears "
                        f"twice", source=source, line=_line(row),
                        hint="keep one row per (policy, scenario, seed, train_seed)")
    kinds = out.groupby("policy")["kind"].nunique()
    if (kinds > 1).any():
        name = str(kinds[kinds > 1].index[0])
        row = int(np.flatnonzero((out["policy"] == name).to_numpy())[-1])
        raise DataError(f"policy {name} is listed both as an agent and as a baseline", source=source,
                        line=_line(row), field="kind", hint="give each policy one kind")
    out.attrs["filled_columns"] = filled
    out.attrs["source"] = source
    return out


def _name_variants(name: str) -> list[str]:
    safe = re.sub(r"[^A-Za-z0-9._=+-]+", "_", name)
    return list(dict.fromkeys([name, safe]))


def _as_bool(values: pd.Series) -> np.ndarray:
    if values.dtype == bool:
        return values.to_numpy()
    text = values.astype(str).str.strip().str.lower()
    return text.isin(("true", "1", "1.0", "yes")).to_numpy()


def read_cell(path: str | Path) -> pd.DataFrame:
    """Per-step records of one run, normalised for the report (one row per step, in order).

    Returns columns ``t`` (bar index; ``step`` when absent), ``timestamp`` (UTC, NaT when absent),
    ``equity``, ``equity_before`` (account currency), ``ret`` (per-bar simple return
    ``equity / equity_before - 1``; 0 where ``equity_before <= 0``), ``pnl`` (account currency),
    ``gross_exposure`` (sum of ``|exposure_<PAIR>|``, account currency), ``leverage`` (gross
    exposure / equity of the same row), ``var``, ``var_limit``, ``var_utilisation`` (NaN when
    absent) and ``stopped_out``, ``var_breach``, ``margin_call`` (bool). An unreadable file or
    one without ``equity`` / ``equity_before`` raises a one-line :class:`DataError`.
    """
    path = Path(path)
    wanted = set(CELL_REQUIRED) | set(CELL_OPTIONAL)
    try:
        frame = pd.read_csv(path, usecols=lambda c: c in wanted or str(c).startswith(cells.EXPOSURE_PREFIX))
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", source=str(path), hint="re-run this cell with scripts/stress_test.py") \
            from None
    except (OSError, EOFError, zlib.error, pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"cannot read the per-step records ({first})", source=str(path),
                        hint="re-run this cell with scripts/stress_test.py") from None
    missing = [c for c in CELL_REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"missing column '{missing[0]}'", source=str(path),
                        hint="per-step records need equity and equity_before; re-run scripts/stress_test.py")
    if frame.empty:
        raise DataError("no steps recorded", source=str(path), hint="re-run this cell with scripts/stress_test.py")
    if "step" in frame.columns:
        frame = frame.sort_values("step", kind="stable")
    frame = frame.reset_index(drop=True)
    n = len(frame)
    out = pd.DataFrame(index=frame.index)
    if "t" in frame.columns:
        out["t"] = pd.to_numeric(frame["t"], errors="coerce")
    elif "step" in frame.columns:
        out["t"] = pd.to_numeric(frame["step"], errors="coerce")
    else:
        out["t"] = np.arange(n)
    if out["t"].isna().any() or out["t"].duplicated().any():
        out["t"] = np.arange(n)  # no usable bar index: align by position
    out["t"] = out["t"].astype(np.int64)
    if "timestamp" in frame.columns:
        out["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    else:
        out["timestamp"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    for col in CELL_REQUIRED:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(np.float64)
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise DataError("not a finite number", source=str(path), row=row, field=col,
                            hint="re-run this cell with scripts/stress_test.py")
        out[col] = values
    eq, eq0 = out["equity"].to_numpy(), out["equity_before"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ret"] = np.where(eq0 > 0, eq / eq0 - 1.0, 0.0)
    out["pnl"] = eq - eq0
    expo = [c for c in frame.columns if str(c).startswith("exposure_")]
    gross = np.abs(frame[expo].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)).sum(axis=1) if expo \
        else np.full(n, np.nan)
    out["gross_exposure"] = gross
    with np.errstate(divide="ignore", invalid="ignore"):
        out["leverage"] = np.where(eq > 0, gross / eq, np.nan)
    for col in ("var", "var_limit", "var_utilisation"):
        out[col] = pd.to_numeric(frame[col], errors="coerce").to_numpy(np.float64) if col in frame.columns \
            else np.full(n, np.nan)
    for col in ("stopped_out", "var_breach", "margin_call"):
        out[col] = _as_bool(frame[col]) if col in frame.columns else np.zeros(n, dtype=bool)
    return out


class CellStore:
    """The per-step records of a run folder, read on first use and kept in memory.

    Why a class: the state is real — the report reads the same cells for several tables and
    plots, and a cell that cannot be read is noted once (``problems``) rather than aborting the
    report. Cells live at ``cells/<policy>/<scenario>/seed-<seed>.csv.gz`` (``-train-<seed>`` before the
    extension for one of an agent's training seeds; ``.csv`` also
    accepted); names with characters outside ``[A-Za-z0-9._=+-]`` are also looked up with those
    replaced by ``_``.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.root = Path(run_dir) / "cells"
        self._cache: dict[tuple[str, str, int], pd.DataFrame | None] = {}
        self.problems: list[str] = []

    def path(self, policy: str, scenario: str, seed: int) -> Path | None:
        for p in _name_variants(policy):
            for s in _name_variants(scenario):
                for ext in (".csv.gz", ".csv"):
                    candidate = self.root / p / s / f"seed-{int(seed)}{ext}"
                    if candidate.is_file():
                        return candidate
                    # an agent of several training seeds: the curves show its lowest seed's run
                    found = {int(m.group(1)): f for f in (self.root / p / s).glob(f"seed-{int(seed)}-train-*{ext}")
                             if (m := re.fullmatch(rf"seed-{int(seed)}-train-(\d+){re.escape(ext)}", f.name))}
                    if found:
                        return found[min(found)]
        return None

    def get(self, policy: str, scenario: str, seed: int) -> pd.DataFrame | None:
        """The normalised records (:func:`read_cell`) of one run, or None when absent or unreadable."""
        key = (policy, scenario, int(seed))
        if key not in self._cache:
            frame = None
            found = self.path(*key)
            if found is not None:
                try:
                    frame = read_cell(found)
                except DataError as exc:
                    self.problems.append(str(exc))
            self._cache[key] = frame
        return self._cache[key]

    @property
    def exists(self) -> bool:
        return self.root.is_dir()


# --------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------

def _finite(x: Iterable[float]) -> np.ndarray:
    arr = np.asarray(list(x) if not isinstance(x, (np.ndarray, pd.Series)) else x, dtype=np.float64)
    return arr[np.isfinite(arr)]


def _finite_stat(reduce: Callable[[np.ndarray], Any]) -> Callable[[Iterable[float]], float]:
    """``reduce`` over the finite values only; NaN when there are none."""
    def stat(x: Iterable[float]) -> float:
        v = _finite(x)
        return float(reduce(v)) if v.size else math.nan
    return stat


_mean, _max, _min, _sum = (_finite_stat(f) for f in (np.mean, np.max, np.min, np.sum))


RISK_TIERS: tuple[str, ...] = ("passes every risk test", "drawdown beyond the limit", "VaR limit not respected",
                                "ruined in some runs")
"""What each tier of the risk-first ranking means (tier 0 ranks first)."""


def ruined(part: pd.DataFrame) -> np.ndarray:
    """Runs that ended in ruin: stopped out, or equity at or below zero (a gap through the stop-out level)."""
    stopped = part["stop_outs"].fillna(0).to_numpy(np.float64) > 0
    total = part["total_return"].to_numpy(np.float64)
    broke = np.isfinite(total) & (total <= -1.0)
    if "final_equity" in part.columns:
        final = part["final_equity"].to_numpy(np.float64)
        broke |= np.isfinite(final) & (final <= 0.0)
    return stopped | broke


def pooled_kupiec(part: pd.DataFrame) -> tuple[float, float, float]:
    """VaR exceptions, the nominal expectation and Kupiec's p-value, pooled over the runs of ``part``.

    NaN when the results lack the exception counts (``var_exceptions``, ``n_bars``, ``var_nominal_rate``).
    """
    from forecasters.backtests import kupiec_pof

    cols = ("var_exceptions", "n_bars", "var_nominal_rate")
    if part.empty or any(c not in part.columns for c in cols):
        return math.nan, math.nan, math.nan
    x = part["var_exceptions"].to_numpy(np.float64)
    n = part["n_bars"].to_numpy(np.float64)
    rate = part["var_nominal_rate"].to_numpy(np.float64)
    ok = np.isfinite(x) & np.isfinite(n) & np.isfinite(rate) & (n > 0)
    if not ok.any():
        return math.nan, math.nan, math.nan
    exceptions, bars = float(x[ok].sum()), float(n[ok].sum())
    nominal = float(np.average(rate[ok], weights=n[ok]))
    return exceptions, nominal * bars, float(kupiec_pof(int(exceptions), int(bars), nominal).pvalue)


def rank_policies(results: pd.DataFrame, *, rng: np.random.Generator, confidence: float = 0.95,
                  n_resamples: int = 2000, alpha: float = 0.05, drawdown_limit: float = 0.25,
                  time_over_limit_tolerance: float = 0.01) -> pd.DataFrame:
    """The headline ranking, risk first: one row per policy, on the stressed runs pooled and on the test data.

    For each part (``stressed_*``: every scenario but ``baseline``; ``test_*``: ``baseline``):
    ``runs``; ``sharpe_mean`` with the percentile-bootstrap ``sharpe_low`` / ``sharpe_high``
    across runs (annualised; runs with undefined Sharpe left out, counted in
    ``sharpe_undefined``); mean ``total_return`` (fraction); ``worst_max_drawdown`` (largest,
    fraction); mean ``time_over_limit`` and ``breach_rate`` (fractions of bars); ``stopped_runs``
    (runs with a stop-out) and ``ruined_runs`` (stopped out or equity <= 0); ``exceptions``,
    ``expected_exceptions`` and ``kupiec_p`` (VaR exceptions pooled over runs against the
    nominal rate); ``margin_calls`` (total bars); mean ``costs_paid`` (account currency per
    run) and ``turnover_x_equity`` (notional traded / starting equity).

    The order is risk first, on the ranking part (the stressed runs, or the test data when
    nothing is stressed): ``tier`` 3 — ruined in any run (stressed or test), fewest ruined runs
    first; tier 2 — the VaR limit not respected (too many exceptions, Kupiec rejects at
    ``alpha``, or time over the limit above ``time_over_limit_tolerance``); tier 1 — worst
    drawdown beyond ``drawdown_limit``; tier 0 — passes every test. Within a tier: ``score`` =
    mean Sharpe of the ranking part (NaN last), then test Sharpe, then name; ``rank`` from 1.
    ``tier_reason`` says why in words.
    """
    rows = []
    for policy, g in results.groupby("policy", sort=True):
        row: dict[str, Any] = {"policy": policy, "kind": g["kind"].iloc[0]}
        for label, part in (("stressed", g[g["scenario"] != BASELINE_SCENARIO]),
                            ("test", g[g["scenario"] == BASELINE_SCENARIO])):
            sharpe = part["sharpe_ratio"].to_numpy(np.float64)
            ok = sharpe[np.isfinite(sharpe)]
            if ok.size >= 2:
                point, low, high = bootstrap_ci(ok, np.mean, confidence=confidence, n_resamples=n_resamples, rng=rng)
            elif ok.size == 1:
                point, low, high = float(ok[0]), math.nan, math.nan  # one run: no interval to give
            else:
                point = low = high = math.nan
            exceptions, expected, kupiec = pooled_kupiec(part)
            row.update({
                f"{label}_runs": int(len(part)),
                f"{label}_sharpe_mean": point,
                f"{label}_sharpe_low": low,
                f"{label}_sharpe_high": high,
                f"{label}_sharpe_undefined": int(len(part) - ok.size),
                f"{label}_total_return": _mean(part["total_return"]),
                f"{label}_worst_max_drawdown": _max(part["max_drawdown"]),
                f"{label}_time_over_limit": _mean(part["time_over_limit"]),
                f"{label}_breach_rate": _mean(part["breach_rate"]),
                f"{label}_stopped_runs": int((part["stop_outs"].fillna(0) > 0).sum()),
                f"{label}_ruined_runs": int(ruined(part).sum()),
                f"{label}_exceptions": exceptions,
                f"{label}_expected_exceptions": expected,
                f"{label}_kupiec_p": kupiec,
                f"{label}_margin_calls": _sum(part["margin_calls"]),
                f"{label}_costs_paid": _mean(part["costs_paid"]),
                f"{label}_turnover_x_equity": _mean(part["turnover_x_equity"]),
            })
        rows.append(row)
    table = pd.DataFrame(rows)
    stressed = int(table["stressed_runs"].sum()) > 0
    part = "stressed" if stressed else "test"
    table["score"] = table[f"{part}_sharpe_mean"]
    table["ruined_runs"] = table["stressed_ruined_runs"] + table["test_ruined_runs"]
    below = results["total_return"].to_numpy(np.float64) < -1.0
    if "final_equity" in results.columns:
        below |= results["final_equity"].to_numpy(np.float64) < 0.0
    counts = pd.Series(below, index=results.index).groupby(results["policy"]).sum()
    table["negative_equity_runs"] = table["policy"].map(counts).fillna(0).astype(int)
    table["runs"] = table["stressed_runs"] + table["test_runs"]
    tiers, reasons = [], []
    for _, r in table.iterrows():
        too_many = (math.isfinite(r[f"{part}_kupiec_p"]) and r[f"{part}_kupiec_p"] < alpha
                    and r[f"{part}_exceptions"] > r[f"{part}_expected_exceptions"])
        over = _nan0(r[f"{part}_time_over_limit"]) > time_over_limit_tolerance
        if r["ruined_runs"] > 0:
            tiers.append(3)
            reasons.append(f"ruined (stopped out or equity <= 0) in {int(r['ruined_runs'])} of {int(r['runs'])} runs")
        elif too_many or over:
            tiers.append(2)
            why = []
            if too_many:
                expected = r[f"{part}_expected_exceptions"]
                why.append(f"{int(r[f'{part}_exceptions'])} VaR exceptions where {expected:.1f} "
                           f"were expected (Kupiec {_p(r[f'{part}_kupiec_p'])})")
            if over:
                why.append(f"over the VaR limit on {_pct(r[f'{part}_time_over_limit'], 2)} of bars "
                           f"(tolerance {_pct(time_over_limit_tolerance, 1)})")
            reasons.append("; ".join(why))
        elif _nan0(r[f"{part}_worst_max_drawdown"]) > drawdown_limit:
            tiers.append(1)
            reasons.append(f"worst drawdown {_pct(r[f'{part}_worst_max_drawdown'])} beyond the "
                           f"{_pct(drawdown_limit, 0)} limit")
        else:
            tiers.append(0)
            reasons.append(RISK_TIERS[0])
    table["tier"] = tiers
    table["tier_reason"] = reasons
    table.attrs["score"] = f"{part}_sharpe_mean"
    table.attrs["limits"] = {"alpha": alpha, "drawdown_limit": drawdown_limit,
                             "time_over_limit_tolerance": time_over_limit_tolerance}
    table["_ruin_order"] = np.where(table["tier"] == 3, table["ruined_runs"], 0)
    table = table.sort_values(["tier", "_ruin_order", "score", "test_sharpe_mean", "policy"],
                              ascending=[True, True, False, False, True], na_position="last",
                              kind="stable").drop(columns="_ruin_order").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def _nan0(x: float) -> float:
    return 0.0 if not math.isfinite(x) else float(x)


_SAME_RUN_METRICS = ("sharpe_ratio", "total_return", "max_drawdown", "costs_paid", "turnover_x_equity", "n_bars",
                     "var_exceptions", "time_over_limit")


def _metric_key(frame: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in _SAME_RUN_METRICS if c in frame.columns]
    return frame[cols].astype(np.float64).round(12)


def collapse_seed_invariant(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep one run of a scenario that gives every policy the same result on every seed.

    Why: the unstressed test data or a whole-run rate shock do not depend on the seed; counting
    their seeds as separate runs would shrink intervals to zero width without new information.
    """
    keep = pd.Series(True, index=results.index)
    invariant = []
    for scenario, g in results.groupby("scenario", sort=False):
        if g["seed"].nunique() < 2:
            continue
        per_model = ["policy", "train_seed"] if "train_seed" in g.columns else ["policy"]  # each training seed apart
        same = all(len(_metric_key(p).drop_duplicates()) == 1 for _, p in g.groupby(per_model, dropna=False))
        if same:
            first = g["seed"].min()
            keep[g.index[g["seed"] != first]] = False
            invariant.append(str(scenario))
    notes = []
    if invariant:
        notes.append(f"{', '.join(invariant)}: the same result on every seed (nothing in the scenario is drawn), "
                     f"so each counts as one run per policy, not one per seed.")
    return results[keep].reset_index(drop=True), notes


def merge_identical_policies(results: pd.DataFrame, store: CellStore | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Show once the policies that act identically in every run (the first in name order stays).

    Two policies are identical when every (scenario, seed) run has the same metrics and, where
    per-step records exist, the same positions on the first shared run.
    """
    policies = sorted(results["policy"].unique())
    key = run_key(results)[1:]
    runs = {p: results[results["policy"] == p].sort_values(key, kind="stable") for p in policies}
    merged: dict[str, list[str]] = {}
    dropped: set[str] = set()
    for i, a in enumerate(policies):
        if a in dropped:
            continue
        for b in policies[i + 1:]:
            if b in dropped or runs[a]["kind"].iloc[0] != runs[b]["kind"].iloc[0]:
                continue
            ka, kb = runs[a][["scenario", "seed"]].to_numpy(), runs[b][["scenario", "seed"]].to_numpy()
            if ka.shape != kb.shape or not (ka == kb).all():
                continue
            if not np.array_equal(_metric_key(runs[a]).to_numpy(), _metric_key(runs[b]).to_numpy(), equal_nan=True):
                continue
            if store is not None:
                scenario, seed = ka[0]
                fa, fb = store.get(a, scenario, int(seed)), store.get(b, scenario, int(seed))
                if fa is not None and fb is not None:
                    cols = [c for c in fa.columns if c.startswith("exposure_")]
                    if cols and not np.array_equal(fa[cols].to_numpy(), fb.reindex(columns=cols).to_numpy(),
                                                   equal_nan=True):
                        continue
            merged.setdefault(a, []).append(b)
            dropped.add(b)
    notes = [f"{', '.join(bs)} acted exactly like {a} in every run (same metrics, same positions): shown once, "
             f"as {a}." for a, bs in merged.items()]
    return results[~results["policy"].isin(dropped)].reset_index(drop=True), notes


def skipped_scenarios(run_dir: Path) -> list[str]:
    """Scenarios the stress test could not apply, with their reasons (from ``skipped.csv``)."""
    path = run_dir / "skipped.csv"
    if not path.is_file():
        return []
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return [f"{path}: unreadable list of skipped scenarios"]
    out = []
    for (scenario, reason), g in table.groupby(["scenario", "reason"], sort=True):
        seeds = ", ".join(str(int(x)) for x in sorted(g["seed"]))
        out.append(f"{scenario} (seed {seeds}) skipped: {reason}")
    return out


def ranking_table(ranking: pd.DataFrame) -> pd.DataFrame:
    """The machine-readable risk-first ranking (``report/ranking.csv``), on the part that ranks.

    Columns: rank, policy, kind, tier (0 passes every risk test ... 3 ruined) and its reason,
    ruined runs, runs, VaR exceptions, the nominal count, Kupiec p, time over the limit
    (fraction of bars), worst drawdown (fraction), mean Sharpe with its interval, PSR and DSR
    (NaN where the per-step records are missing or the policy never trades).
    """
    part = "stressed" if ranking.attrs.get("score", "stressed_sharpe_mean") == "stressed_sharpe_mean" else "test"
    out = pd.DataFrame({
        "rank": ranking["rank"], "policy": ranking["policy"], "kind": ranking["kind"],
        "data": "stressed" if part == "stressed" else "test",
        "tier": ranking.get("tier", 0), "tier_reason": ranking.get("tier_reason", ""),
        "ruined_runs": ranking.get("ruined_runs", 0), "runs": ranking.get("runs", ranking[f"{part}_runs"]),
        "exceptions": ranking[f"{part}_exceptions"], "nominal_exceptions": ranking[f"{part}_expected_exceptions"],
        "kupiec_p": ranking[f"{part}_kupiec_p"], "time_over_limit": ranking[f"{part}_time_over_limit"],
        "worst_max_drawdown": ranking[f"{part}_worst_max_drawdown"], "sharpe": ranking[f"{part}_sharpe_mean"],
        "sharpe_low": ranking[f"{part}_sharpe_low"], "sharpe_high": ranking[f"{part}_sharpe_high"],
        "psr": ranking.get("psr", math.nan), "dsr": ranking.get("dsr", math.nan),
    })
    return out


def best_of_kind(ranking: pd.DataFrame, kind: str) -> str | None:
    """The top-ranked policy of ``kind`` (``agent`` or ``baseline``), or None when there is none."""
    rows = ranking[ranking["kind"] == kind]
    return None if rows.empty else str(rows["policy"].iloc[0])


def aligned_returns(store: CellStore, policies: Sequence[str], cells: Iterable[tuple[str, int]]
                    ) -> tuple[dict[str, np.ndarray], list[tuple[str, int]]]:
    """Per-bar simple returns of several policies on the same bars, concatenated over cells.

    Why aligned: a paired comparison and a Sharpe-variance across policies need every series on
    the same bars. In each (scenario, seed) cell the runs are keyed by the bar index ``t``; bars
    a run did not reach (it was stopped out and holds nothing) count as return 0. A cell where
    any of the policies has no readable record is left out for all, so the series stay paired.
    Returns the series (fractions per bar) and the cells used, in the order given.
    """
    unique = list(dict.fromkeys(policies))
    parts: dict[str, list[np.ndarray]] = {p: [] for p in unique}
    used = []
    for scenario, seed in cells:
        frames = [store.get(p, scenario, seed) for p in unique]
        if any(f is None for f in frames):
            continue
        index = np.unique(np.concatenate([f["t"].to_numpy() for f in frames]))
        for p, f in zip(unique, frames, strict=True):
            series = pd.Series(f["ret"].to_numpy(), index=f["t"].to_numpy())
            parts[p].append(series.reindex(index).fillna(0.0).to_numpy(np.float64))
        used.append((scenario, int(seed)))
    return {p: (np.concatenate(v) if v else np.empty(0)) for p, v in parts.items()}, used


def paired_test(store: CellStore, policy_a: str, policy_b: str, cells: Iterable[tuple[str, int]], *,
                bars_per_year: float, rng: np.random.Generator, n_resamples: int = 2000,
                confidence: float = 0.95, block: float | None = None) -> dict[str, Any]:
    """Annualised Sharpe ratio of A minus B on their paired per-bar returns, with a bootstrap test.

    The cells' aligned returns (:func:`aligned_returns`) are concatenated and passed to
    :func:`agents.evaluation.statistics.paired_sharpe_difference` (stationary bootstrap, both series
    resampled with the same indices; ``block`` mean block length in bars, None = automatic).
    Returns ``policy_a``, ``policy_b``, ``n_cells``, ``n_bars`` and that function's ``diff``,
    ``low``, ``high``, ``p_value``, ``sharpe_a``, ``sharpe_b``, ``block`` (NaN when fewer than 2
    paired bars).
    """
    returns, used = aligned_returns(store, [policy_a, policy_b], cells)
    ra, rb = returns[policy_a], returns[policy_b]
    out: dict[str, Any] = {"policy_a": policy_a, "policy_b": policy_b, "n_cells": len(used), "n_bars": int(ra.size)}
    nan = {k: math.nan for k in ("diff", "low", "high", "p_value", "sharpe_a", "sharpe_b", "block")}
    if ra.size < 2:
        out.update(nan)
        return out
    out.update(paired_sharpe_difference(ra, rb, bars_per_year, rng=rng, n_resamples=n_resamples, block=block,
                                        confidence=confidence))
    return out


def per_bar_sharpe(returns: np.ndarray) -> float:
    """Per-bar (not annualised) Sharpe ratio ``mean / std(ddof=1)``; flat run 0; < 2 bars or constant: NaN."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2 or not np.isfinite(r).all():
        return math.nan
    if r.max() == r.min():
        return 0.0 if not r.any() else math.nan
    return float(r.mean() / r.std(ddof=1))


def deflated_sharpe(returns_by_policy: Mapping[str, np.ndarray], best: str, *, n_trials: int | None = None,
                    bars_per_year: float | None = None) -> dict[str, Any]:
    """Deflated Sharpe ratio of ``best`` given every policy tried (Bailey & López de Prado 2014).

    ``returns_by_policy`` holds each policy's per-bar simple returns on the same bars.
    ``n_trials`` defaults to the number of policies; pass more when more configurations were
    tried than the run shows (it may not be fewer). The variance of the per-bar Sharpe ratios
    across the policies (ddof=1; 0 with one policy) sets the luck benchmark
    ``sr_benchmark`` = :func:`agents.evaluation.statistics.expected_max_sharpe`. Returns ``policy``,
    ``n_trials``, ``n_bars``, ``sharpe_per_bar``, ``sharpe_annualised``, ``sr_variance``,
    ``sr_benchmark`` (per bar) and its annualised value, ``psr`` (probability the true Sharpe
    ratio is above 0) and ``dsr`` (above the benchmark), both in [0, 1] or NaN.
    """
    if best not in returns_by_policy:
        raise ValueError(f"deflated_sharpe: {best!r} is not among the policies {sorted(returns_by_policy)}")
    n_policies = len(returns_by_policy)
    n = n_policies if n_trials is None else int(n_trials)
    if n < n_policies:
        raise ConfigError(f"n_trials ({n}) cannot be fewer than the policies compared ({n_policies}): pass the "
                          f"number of policies or configurations tried in total")
    srs = {p: per_bar_sharpe(r) for p, r in returns_by_policy.items()}
    finite = _finite(srs.values())
    variance = float(np.var(finite, ddof=1)) if finite.size >= 2 else 0.0
    r = np.asarray(returns_by_policy[best], dtype=np.float64)
    usable = r.size >= 2 and np.isfinite(r).all()
    dsr = deflated_sharpe_ratio(r, n, variance) if usable else math.nan
    psr = deflated_sharpe_ratio(r, 1, variance) if usable else math.nan
    benchmark = expected_max_sharpe(n, variance)
    scale = math.sqrt(bars_per_year) if bars_per_year else math.nan
    return {"policy": best, "n_trials": n, "n_bars": int(r.size), "sharpe_per_bar": srs[best],
            "sharpe_annualised": srs[best] * scale, "sr_variance": variance, "sr_benchmark": benchmark,
            "sr_benchmark_annualised": benchmark * scale, "psr": psr, "dsr": dsr}


def severest_scenario(results: pd.DataFrame) -> str | None:
    """The stressed scenario with the largest mean max drawdown over all policies and seeds (None if none)."""
    stressed = results[results["scenario"] != BASELINE_SCENARIO]
    if stressed.empty:
        return None
    dd = stressed.groupby("scenario", sort=False)["max_drawdown"].mean()
    if dd.isna().all():
        return str(stressed["scenario"].iloc[0])
    return str(dd.idxmax())


def scenario_matrix(results: pd.DataFrame, metric: str, policies: Sequence[str], scenarios: Sequence[str],
                    agg: str = "mean") -> pd.DataFrame:
    """Policy × scenario table of ``metric`` aggregated over seeds (``mean``, ``max``, ``min``), NaN-skipping."""
    table = results.pivot_table(index="policy", columns="scenario", values=metric, aggfunc=agg, dropna=False)
    return table.reindex(index=list(policies), columns=list(scenarios)).astype(np.float64)


def scenario_summary(results: pd.DataFrame, policies: Sequence[str], scenarios: Sequence[str]) -> pd.DataFrame:
    """Numbers of the per-scenario tables: one row per (scenario, policy), aggregated over seeds.

    Means over seeds unless named otherwise: ``sharpe_mean``, ``total_return_mean``,
    ``max_drawdown_mean`` and ``_worst``, ``cvar_mean`` (positive loss fractions),
    ``worst_bar_worst`` (signed fraction), ``var_exceptions_total`` (bars) and
    ``var_exception_rate_mean`` against ``var_nominal_rate``, ``time_over_limit_mean``,
    ``margin_calls_total``, ``stopped_runs``, ``turnover_x_equity_mean`` (notional traded /
    starting equity), ``costs_paid_mean`` (account currency) and ``cost_bps_mean``.
    """
    rows = []
    for scenario in scenarios:
        for policy in policies:
            g = results[(results["scenario"] == scenario) & (results["policy"] == policy)]
            if g.empty:
                continue
            rows.append({
                "scenario": scenario, "policy": policy, "kind": g["kind"].iloc[0], "runs": len(g),
                "sharpe_mean": _mean(g["sharpe_ratio"]),
                "total_return_mean": _mean(g["total_return"]),
                "max_drawdown_mean": _mean(g["max_drawdown"]),
                "max_drawdown_worst": _max(g["max_drawdown"]),
                "cvar_mean": _mean(g["cvar"]),
                "worst_bar_worst": _min(g["worst_bar_return"]),
                "var_exceptions_total": _sum(g["var_exceptions"]),
                "var_exception_rate_mean": _mean(g["var_exception_rate"]),
                "var_nominal_rate": _mean(g["var_nominal_rate"]),
                "time_over_limit_mean": _mean(g["time_over_limit"]),
                "margin_calls_total": _sum(g["margin_calls"]),
                "stopped_runs": int((g["stop_outs"].fillna(0) > 0).sum()),
                "turnover_x_equity_mean": _mean(g["turnover_x_equity"]),
                "costs_paid_mean": _mean(g["costs_paid"]),
                "cost_bps_mean": _mean(g["cost_bps_of_turnover"]),
            })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# Words and tables
# --------------------------------------------------------------------------------------------------

def _minus(text: str) -> str:
    return text.replace("-", "\u2212")


def _f(x: float, digits: int = 2, *, signed: bool = False) -> str:
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _pct(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or not math.isfinite(float(x)) else f"{100 * x:.{digits}f}%"


def _ci(point: float, low: float, high: float, digits: int = 2) -> str:
    if not math.isfinite(point):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _money(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def _md(text: object) -> str:
    """Escape text for Markdown: emphasis, code spans, table pipes and anything that could open an HTML tag."""
    s = str(text).replace("\\", "\\\\")
    for ch in "`*|":
        s = s.replace(ch, "\\" + ch)
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", s)  # only what could open an HTML tag


def verdict(ranking: pd.DataFrame, paired: Mapping[str, Any] | None = None, *, alpha: float = 0.05) -> str:
    """The plain-words verdict of the first screen, generated from the numbers.

    First sentence: the top-ranked policy of the risk-first ranking (:func:`rank_policies`) —
    whether it passes every risk test or is only the least bad, with its VaR exceptions against
    the nominal count, time over the limit, worst drawdown, Sharpe interval and stop-outs; the
    policies ruined in some runs, named; runs that ended below zero equity, explained. Second:
    the best agent against the best baseline from ``paired`` (a
    :func:`paired_test` result on the stressed runs, or on the test data when none were
    stressed) — significant or not at ``alpha``, in words, including when the agent loses; or
    why there is no such test (no agent, no baseline, no paired records).
    """
    if ranking.empty:
        return "No runs to compare."
    top = ranking.iloc[0]
    stressed = ranking.attrs.get("score", "stressed_sharpe_mean") == "stressed_sharpe_mean"
    part = "stressed" if stressed else "test"
    where = "under stress" if stressed else "on the test data (no stressed scenario in this run)"
    runs = int(top[f"{part}_runs"])
    sharpe = _minus(_ci(top[f"{part}_sharpe_mean"], top[f"{part}_sharpe_low"], top[f"{part}_sharpe_high"]))
    risk = []
    trades = not top.get(f"{part}_turnover_x_equity", math.nan) == 0  # a policy that never trades has no VaR
    stated = str(top.get("tier_reason", "")) if int(top.get("tier", 0)) else ""
    if "tier" in ranking.columns and trades:
        if math.isfinite(top.get(f"{part}_kupiec_p", math.nan)) and "VaR exceptions" not in stated:
            risk.append(f"{int(top[f'{part}_exceptions'])} VaR exceptions against "
                        f"{top[f'{part}_expected_exceptions']:.1f} expected (Kupiec {_p(top[f'{part}_kupiec_p'])})")
        if "over the VaR limit" not in stated:
            risk.append(f"over the limit on {_pct(top[f'{part}_time_over_limit'], 2)} of bars")
    if "worst drawdown" not in stated:
        risk.append(f"worst drawdown {_pct(top[f'{part}_worst_max_drawdown'])}")
    detail = (f"{', '.join(risk)}; mean Sharpe {sharpe} over {runs} {'stressed ' if stressed else ''}runs, "
              f"stopped out in {int(top[f'{part}_stopped_runs'])} of {runs}")
    if int(top.get("tier", 0)) == 0:
        first = f"Holds up best {where}: {top['policy']} ({top['kind']}) passes every risk test: {detail}."
    else:
        first = (f"No policy passes every risk test {where}; the least bad is {top['policy']} ({top['kind']}), "
                 f"{top['tier_reason']}: {detail}.")
    others = ranking["score"].iloc[1:]
    if top.get(f"{part}_turnover_x_equity", math.nan) == 0 and not (others > 0).any():
        first = first[:-1] + (f"; it never trades, and no policy that trades has a positive mean Sharpe ratio "
                              f"{'under stress' if stressed else 'here'}.")
    if "tier" in ranking.columns:
        ruin = ranking[ranking["tier"] == 3]
        if not ruin.empty:
            names = ", ".join(f"{r['policy']} ({int(r['ruined_runs'])} of {int(r['runs'])} runs)"
                              for _, r in ruin.iterrows())
            first += (f" Ruined in some runs (stopped out, or equity at or below zero), so ranked last whatever "
                      f"their Sharpe: {names}.")
        below = int(ranking.get("negative_equity_runs", pd.Series(dtype=float)).fillna(0).sum())
        if below:
            first += (f" {below} run{'s' if below != 1 else ''} ended with equity below zero: a gap moved the price "
                      f"through the stop-out level before the positions could be closed, so the loss exceeded the "
                      f"account (drawdowns above 100%).")
    agent, base = best_of_kind(ranking, "agent"), best_of_kind(ranking, "baseline")
    data = "stressed data" if stressed else "the test data"
    if agent is None:
        second = "No agent in this run, so there is no agent-versus-baseline test: the ranking compares baselines only."
    elif base is None:
        second = "No baseline in this run, so there is no agent-versus-baseline test: the ranking compares agents only."
    elif paired is None or not math.isfinite(paired.get("diff", math.nan)) or paired.get("n_bars", 0) < 2:
        second = (f"Best agent {agent} vs best baseline {base}: no paired per-step records were found, so there is "
                  f"no paired test.")
    else:
        d, p = paired["diff"], paired["p_value"]
        numbers = _minus(f"Sharpe difference {_f(d, signed=True)} [{_f(paired['low'], signed=True)}, "
                         f"{_f(paired['high'], signed=True)}], {_p(p)}")
        if math.isfinite(p) and p < alpha:
            words = (f"significant at the {alpha:.0%} level: {agent} beats {base}." if d > 0 else
                     f"significant at the {alpha:.0%} level: {agent} does worse than {base}.")
        elif d > 0:
            words = f"not significant: {agent}'s edge over {base} is within what chance gives."
        else:
            words = f"not significant: {agent} does not beat {base}."
        second = f"Best agent {agent} vs best baseline {base} on {data}: {numbers}: {words}"
    return f"{first} {second}"


def markdown_table(frame: pd.DataFrame, *, left: Iterable[str] = ()) -> str:
    """A GitHub-style Markdown table of ``frame`` (cells as given, ``str``'d), padded to align.

    Why our own: ``DataFrame.to_markdown`` needs ``tabulate``, which the project does not
    install. Columns named in ``left`` are left-aligned, the rest right-aligned; pipes and
    Markdown markup in cells are escaped. Readable as plain text too (the CLI prints it).
    """
    left = set(left)
    cols = [str(c) for c in frame.columns]
    body = [[_md(v) for v in row] for row in frame.astype(object).itertuples(index=False, name=None)]
    head = [_md(c) for c in cols]
    widths = [max([len(h), 3, *(len(r[j]) for r in body)]) for j, h in enumerate(head)]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if col in left else c.rjust(w)
                                 for c, w, col in zip(cells, widths, cols, strict=True)) + " |"

    rule = "|" + "|".join(("-" * (w + 2)) if col in left else ("-" * (w + 1) + ":")
                          for w, col in zip(widths, cols, strict=True)) + "|"
    return "\n".join([fmt(head), rule, *(fmt(r) for r in body)])


def headline_table(ranking: pd.DataFrame, *, money: str = "account currency") -> pd.DataFrame:
    """The ranking as display strings: two rows per policy (stressed runs first, then the test data).

    ``money`` names the currency of the costs column (``USD``; ``account currency`` when unknown).
    """
    rows = []
    stressed_any = int(ranking["stressed_runs"].sum()) > 0
    parts = (("stressed", "stressed"), ("test", "test data")) if stressed_any else (("test", "test data"),)
    for _, r in ranking.iterrows():
        for i, (part, label) in enumerate(parts):
            n = int(r[f"{part}_runs"])
            if n == 0 and i > 0:
                continue
            undefined = int(r[f"{part}_sharpe_undefined"])
            sharpe = _ci(r[f"{part}_sharpe_mean"], r[f"{part}_sharpe_low"], r[f"{part}_sharpe_high"])
            rows.append({
                "rank": str(int(r["rank"])) if i == 0 else "",
                "policy": str(r["policy"]) if i == 0 else "",
                "kind": str(r["kind"]) if i == 0 else "",
                "data": label,
                "Sharpe [95% CI]": sharpe + (f" ({undefined} n/a)" if undefined else ""),
                "mean return": _pct(r[f"{part}_total_return"], 2),
                "worst max DD": _pct(r[f"{part}_worst_max_drawdown"]),
                "time over limit": _pct(r[f"{part}_time_over_limit"], 2),
                "stop-outs": f"{int(r[f'{part}_stopped_runs'])}/{n}",
                f"mean costs, {money}": _money(r[f"{part}_costs_paid"]),
                "runs": str(n),
            })
    return pd.DataFrame(rows)


def _scenario_display(summary: pd.DataFrame, money: str = "account currency") -> pd.DataFrame:
    rows = []
    for _, r in summary.iterrows():
        exc = "n/a" if not math.isfinite(r["var_exceptions_total"]) else (
            f"{int(r['var_exceptions_total'])} ({_pct(r['var_exception_rate_mean'])} vs "
            f"{_pct(r['var_nominal_rate'])})")
        costs = _money(r["costs_paid_mean"]) + (f" ({r['cost_bps_mean']:.1f} bps)"
                                                if math.isfinite(r["cost_bps_mean"]) else "")
        rows.append({
            "policy": str(r["policy"]), "kind": str(r["kind"]),
            "Sharpe": _f(r["sharpe_mean"]),
            "return": _pct(r["total_return_mean"], 2),
            "max DD mean (worst)": f"{_pct(r['max_drawdown_mean'])} ({_pct(r['max_drawdown_worst'])})",
            "CVaR 95%": _pct(r["cvar_mean"], 2),
            "worst bar": _pct(r["worst_bar_worst"], 2),
            "VaR exceptions (rate vs nominal)": exc,
            "time over limit": _pct(r["time_over_limit_mean"], 2),
            "margin calls": "n/a" if not math.isfinite(r["margin_calls_total"]) else str(int(r["margin_calls_total"])),
            "stop-outs": f"{int(r['stopped_runs'])}/{int(r['runs'])}",
            "turnover (x equity)": _f(r["turnover_x_equity_mean"], 1),
            f"mean costs, {money}": costs,
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# Plots (matplotlib's Agg canvas, no pyplot state; each returns the PNG path)
# --------------------------------------------------------------------------------------------------

def _figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], sharex: bool = False,
            height_ratios: Sequence[float] | None = None):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, sharex=sharex, squeeze=False,
                        gridspec_kw={"height_ratios": list(height_ratios)} if height_ratios else None)
    return fig, axes


def _save(fig: Any, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return atomic_write_bytes(path, buffer.getvalue())


def _styles(policies: Sequence[str], styles: Mapping[str, PolicyStyle] | None) -> Mapping[str, PolicyStyle]:
    """The given styles, or fresh ones (:func:`agents.report.style.policy_styles`) for ``policies``."""
    return styles if styles is not None and all(p in styles for p in policies) else policy_styles(policies)


def _x(frame: pd.DataFrame) -> tuple[np.ndarray, bool]:
    """The x-axis of a cell: naive-UTC datetime64 when every timestamp parsed, else the bar index."""
    ts = frame["timestamp"]
    if len(ts) and ts.notna().all():
        return ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), True
    return frame["t"].to_numpy(), False


def _naive(stamp: pd.Timestamp) -> np.datetime64:
    return stamp.tz_convert("UTC").tz_localize(None).to_datetime64()


def _shade(ax: Any, window: tuple[pd.Timestamp, pd.Timestamp] | None, is_time: bool, label: bool = True,
           x: np.ndarray | None = None) -> None:
    """Shade the stress window; at least 1.2% of the x-range ``x`` wide, so a one-bar gap is not a hairline."""
    if window is None or not is_time:
        return
    lo, hi = _naive(window[0]), _naive(window[1])
    widened = False
    if x is not None and len(x) > 1:
        wlo, whi = visible_window(lo, hi, np.min(x), np.max(x))
        widened, lo, hi = (wlo, whi) != (lo, hi), wlo, whi
    ax.axvspan(lo, hi, color="#E69F00", alpha=0.2,
               label=("stress window" + (" (drawn wider)" if widened else "")) if label else None)


def plot_heatmap(matrix: pd.DataFrame, path: str | Path, *, title: str, fmt: str = "{:.2f}", cmap: str = "RdYlGn",
                 center: float | None = 0.0, colorbar_label: str = "", scale: float = 1.0,
                 floor: float | None = None) -> Path:
    """Policy × scenario heatmap with every cell annotated (``fmt`` of value × ``scale``; NaN: n/a).

    ``center`` (in the scaled units) is the midpoint of a diverging scale whose limits are
    symmetric about it (:func:`agents.report.style.diverging_limits`): Sharpe 0, or a risk
    limit; ``floor`` cuts the lower limit where values cannot go (0 for a drawdown), the centre
    staying the colours' midpoint; pass ``center=None`` for a plain min–max range. A matrix
    that is 0 everywhere is painted one neutral grey without a colour bar, and the title says
    "0 everywhere".
    """
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap, Normalize, TwoSlopeNorm

    path = Path(path)
    values = matrix.to_numpy(np.float64) * scale
    n_rows, n_cols = values.shape
    fig, axes = _figure(figsize=(max(5.0, 1.4 * n_cols + 3.0), max(2.5, 0.55 * n_rows + 1.8)))
    ax = axes[0, 0]
    zero = is_all_zero(values)
    cm = (ListedColormap(["#e6e6e6"]) if zero else colormaps[cmap]).with_extremes(bad="#f4f4f4")
    finite = values[np.isfinite(values)]
    if center is not None and not zero:
        lo, hi = diverging_limits(values, center, floor=floor)
        norm = TwoSlopeNorm(center, lo, hi) if lo < center < hi else Normalize(lo, hi)
    elif zero:
        norm = Normalize(-1.0, 1.0)
    else:
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if hi == lo:
            lo, hi = lo - 0.5, hi + 0.5
        norm = Normalize(lo, hi)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cm, norm=norm, aspect="auto")
    ax.set_xticks(range(n_cols), [str(c) for c in matrix.columns], rotation=30, ha="right")
    ax.set_yticks(range(n_rows), [str(i) for i in matrix.index])
    for i in range(n_rows):
        for j in range(n_cols):
            v = values[i, j]
            if math.isfinite(v):
                r, g, b, _ = cm(norm(v))
                colour = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
                ax.text(j, i, fmt.format(v), ha="center", va="center", color=colour, fontsize=9)
            else:
                ax.text(j, i, "n/a", ha="center", va="center", color="black", fontsize=9)
    ax.set_title(f"{title} — 0 everywhere" if zero else title)
    if not zero:
        fig.colorbar(image, ax=ax, label=colorbar_label)
    return _save(fig, path)


def plot_equity_drawdown(store: CellStore, policies: Sequence[str], scenario: str, seed: int, path: str | Path, *,
                         window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
                         styles: Mapping[str, PolicyStyle] | None = None,
                         units: AccountUnits | None = None) -> Path:
    """Equity (account currency) and drawdown (% of peak) of each policy for one scenario and seed.

    One colour and dash pattern per policy (:func:`agents.report.style.policy_styles`), so
    overlapping lines stay apart; the equity axis names the currency and the starting equity. A
    run that was stopped out ends with an ``x``; the stress window, when given, is shaded.
    """
    path = Path(path)
    styles = _styles(policies, styles)
    units = units or AccountUnits(None, math.nan)
    fig, axes = _figure(2, 1, figsize=(10, 6.4), sharex=True, height_ratios=(2, 1))
    ax_eq, ax_dd = axes[0, 0], axes[1, 0]
    is_time = False
    x_all: list[np.ndarray] = []
    for p in policies:
        frame = store.get(p, scenario, seed)
        if frame is None:
            continue
        x, is_time = _x(frame)
        x_all.append(x)
        equity = np.concatenate([frame["equity_before"].to_numpy()[:1], frame["equity"].to_numpy()])
        dd = drawdown_series(equity)[1:]
        stopped = bool(frame["stopped_out"].any())
        label = p + (" (stopped out)" if stopped else "")
        style = styles[p]
        ax_eq.plot(x, equity[1:], color=style.colour, ls=style.mpl_dash, lw=1.4, label=label)
        ax_dd.plot(x, -100 * dd, color=style.colour, ls=style.mpl_dash, lw=1.1)
        if stopped:
            ax_eq.plot(x[-1:], equity[-1:], "x", color=style.colour, ms=9, mew=2)
    span = np.concatenate(x_all) if x_all else None
    _shade(ax_eq, window, is_time, x=span)
    _shade(ax_dd, window, is_time, label=False, x=span)
    if math.isfinite(units.initial_equity):
        ax_eq.axhline(units.initial_equity, color="grey", lw=0.6)
    ax_eq.set_ylabel(units.axis("equity"))
    ax_eq.yaxis.set_major_formatter(_thousands())
    ax_dd.set_ylabel("drawdown, % of peak")
    ax_dd.set_xlabel("bar time (UTC)" if is_time else "bar index t")
    ax_eq.set_title(f"Equity and drawdown: {scenario}, seed {seed}")
    ax_eq.legend(loc="best", fontsize=8, ncols=2 if len(policies) > 5 else 1, handlelength=3.5)
    for ax in (ax_eq, ax_dd):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:,.0f}")


def _zoom(x: np.ndarray, window: tuple[pd.Timestamp, pd.Timestamp] | None, is_time: bool) -> np.ndarray:
    """Mask of the bars around the stress window: the window plus its own length (at least 20 bars) each side."""
    if window is None or not is_time or x.size < 2:
        return np.ones(x.size, dtype=bool)
    start, end = _naive(window[0]), _naive(window[1])
    spacing = np.median(np.diff(x))
    pad = max(end - start, 20 * spacing)
    mask = (x >= start - pad) & (x <= end + pad)
    return mask if mask.any() else np.ones(x.size, dtype=bool)


def plot_position_size(store: CellStore, policies: Sequence[str], scenario: str, seed: int, path: str | Path, *,
                       window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
                       styles: Mapping[str, PolicyStyle] | None = None) -> Path:
    """Position size — gross exposure / equity (×, account currency over account currency) — through the window.

    Shows the stress window (shaded) plus its own length (at least 20 bars) on each side, so
    the reader sees who cut risk going in and who was still fully invested.
    """
    path = Path(path)
    styles = _styles(policies, styles)
    fig, axes = _figure(figsize=(10, 4.5))
    ax = axes[0, 0]
    is_time = False
    x_all: list[np.ndarray] = []
    for p in policies:
        frame = store.get(p, scenario, seed)
        if frame is None:
            continue
        x, is_time = _x(frame)
        keep = _zoom(x, window, is_time)
        x_all.append(x[keep])
        stopped = bool(frame["stopped_out"].any())
        style = styles[p]
        ax.plot(x[keep], frame["leverage"].to_numpy()[keep], color=style.colour, ls=style.mpl_dash, lw=1.4,
                label=p + (" (stopped out)" if stopped else ""))
    _shade(ax, window, is_time, x=np.concatenate(x_all) if x_all else None)
    ax.set_ylabel("gross exposure / equity (×)")
    ax.set_xlabel("bar time (UTC)" if is_time else "bar index t")
    ax.set_title(f"Position size through the stress window: {scenario}, seed {seed}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8, ncols=2 if len(policies) > 5 else 1, handlelength=3.5)
    return _save(fig, path)


def var_exception_stats(frame: pd.DataFrame) -> dict[str, float]:
    """VaR exceptions of one run: bars with a position (``var > 0``) whose loss exceeds the VaR (currency)."""
    var = frame["var"].to_numpy()
    loss = -frame["pnl"].to_numpy()
    held = np.isfinite(var) & (var > 0)
    exc = held & (loss > var)
    n = int(held.sum())
    return {"bars_with_position": n, "exceptions": int(exc.sum()),
            "rate": (float(exc.sum()) / n) if n else math.nan}


def best_trading_policy(store: CellStore, order: Sequence[str], scenario: str, seed: int) -> str | None:
    """The best-ranked policy of ``order`` that holds a position on this run (None: none trades or no records).

    Why: the P&L-against-VaR plot of a policy that never trades (``flat``) is blank.
    """
    for p in order:
        if trades(store.get(p, scenario, seed)):
            return p
    return None


def plot_pnl_var(store: CellStore, policy: str, scenario: str, seed: int, path: str | Path, *,
                 window: tuple[pd.Timestamp, pd.Timestamp] | None = None, nominal_rate: float | None = None,
                 units: AccountUnits | None = None) -> Path:
    """Realised P&L per bar (account currency) against the −VaR band, exceptions marked, window shaded.

    The y-range holds the 0.5–99.5% quantiles (:func:`agents.report.style.robust_limits`), so one
    gap bar does not flatten the rest; bars beyond it are drawn as triangles on the edge and
    counted in a note with the largest of them.
    """
    path = Path(path)
    units = units or AccountUnits(None, math.nan)
    frame = store.get(policy, scenario, seed)
    fig, axes = _figure(figsize=(10, 4.8))
    ax = axes[0, 0]
    if frame is None:
        ax.text(0.5, 0.5, f"no per-step records for {policy} / {scenario} / seed {seed}", ha="center",
                transform=ax.transAxes)
        return _save(fig, path)
    x, is_time = _x(frame)
    pnl, var = frame["pnl"].to_numpy(), frame["var"].to_numpy()
    held = np.isfinite(var) & (var > 0)
    exc = held & (-pnl > var)
    stats = var_exception_stats(frame)
    lo, hi, _ = robust_limits(np.concatenate([pnl, -var[held]]))
    ax.vlines(x, 0, np.clip(pnl, lo, hi), color="#0072B2", lw=0.7, label="P&L per bar")
    ax.plot(x, np.where(held, -var, np.nan), color="#D55E00", lw=1.0, ls=(0, (6, 3)), label="-VaR (one bar)")
    ax.plot(x[exc], np.clip(pnl[exc], lo, hi), "o", mfc="none", color="#D55E00", ms=5,
            label=f"exceptions ({stats['exceptions']})")
    below, above = pnl < lo, pnl > hi
    if below.any() or above.any():
        ax.plot(x[below], np.full(int(below.sum()), lo), "v", color="black", ms=8, clip_on=False)
        ax.plot(x[above], np.full(int(above.sum()), hi), "^", color="black", ms=8, clip_on=False)
        k = int(below.sum() + above.sum())
        worst = float(pnl.min()) if below.any() else float(pnl.max())
        ax.annotate(f"{k} bar{'s' * (k != 1)} beyond the view (triangles on the edge), largest {worst:,.0f} "
                    f"{units.money}", xy=(0.01, 0.02), xycoords="axes fraction", fontsize=8, color="#333")
    ax.set_ylim(lo, hi)
    _shade(ax, window, is_time, x=x)
    ax.axhline(0, color="grey", lw=0.6)
    nominal = f" vs {nominal_rate:.1%} nominal" if nominal_rate is not None and math.isfinite(nominal_rate) else ""
    rate = "n/a" if not math.isfinite(stats["rate"]) else f"{stats['rate']:.1%}"
    ax.set_title(f"P&L against VaR: {policy} on {scenario}, seed {seed} — {stats['exceptions']} exceptions in "
                 f"{stats['bars_with_position']} bars with a position ({rate}{nominal})", fontsize=10)
    ax.set_ylabel(units.axis("P&L per bar"))
    ax.yaxis.set_major_formatter(_thousands())
    ax.set_xlabel("bar time (UTC)" if is_time else "bar index t")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 0.06), fontsize=8)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------------
# HTML and publishing
# --------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1200px; margin: 1.5em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; }
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 0.2em; }
.verdict { font-size: 1.05em; }
footer, .footer { color: #666; font-size: 0.85em; }
"""


def render_html(markdown_text: str, folder: str | Path, *, title: str) -> str:
    """Self-contained HTML of the report: Markdown converted, each relative PNG embedded as base64."""
    import markdown

    folder = Path(folder)
    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")

    def embed(match: re.Match[str]) -> str:
        name = html.unescape(match.group(2))
        png = folder / name
        if "/" in name or "\\" in name or not png.is_file():
            return match.group(0)
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        return f"{match.group(1)}data:image/png;base64,{data}{match.group(3)}"

    body = re.sub(r'(<img[^>]*?\bsrc=")([^"]+?\.png)(")', embed, body)
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _publish(tmp: Path, parent: Path, base: str = "report") -> Path:
    """Rename the finished temporary folder to ``report`` or, when taken, ``report-2``, ``report-3``, ...

    The temporary folder and files are private while built (``mkdtemp`` / ``mkstemp``); they get
    the usual permissions under the user's umask before they appear under the final name.
    """
    mask = os.umask(0)
    os.umask(mask)
    for item in tmp.iterdir():
        item.chmod(0o666 & ~mask)
    tmp.chmod(0o777 & ~mask)
    for n in range(1, 10_000):
        candidate = parent / (base if n == 1 else f"{base}-{n}")
        if candidate.exists() or candidate.is_symlink():
            continue
        try:
            os.rename(tmp, candidate)
        except OSError:  # someone else took the name in the meantime
            if candidate.exists():
                continue
            raise
        return candidate
    raise RuntimeError(f"{parent}: no free report folder name (report-2 ... report-9999 all exist)")


# --------------------------------------------------------------------------------------------------
# The whole report
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class ReportSettings:
    """How the report is computed.

    ``seed``: seed of the bootstrap ``Generator`` (same seed, same report). ``plot_seed``: the
    seed of the runs drawn in the curves (default: the smallest one a scenario has).
    ``scenario``: the stressed scenario of the equity, position and VaR plots (default: the
    severest by mean max drawdown). ``n_resamples``: bootstrap resamples. ``confidence``:
    interval level. ``alpha``: significance level of the verdict. ``n_trials``: strategies tried
    in total, for the deflated Sharpe ratio (default: the policies in the run). ``block``: mean
    block length of the paired stationary bootstrap, bars (default: automatic).
    """

    seed: int = 0
    plot_seed: int | None = None
    scenario: str | None = None
    n_resamples: int = 2000
    confidence: float = 0.95
    alpha: float = 0.05
    n_trials: int | None = None
    block: float | None = None
    drawdown_limit: float = 0.25
    """Worst drawdown (fraction of equity) a policy may reach and still pass the risk tests."""
    time_over_limit_tolerance: float = 0.01
    """Share of bars a policy may spend over its VaR limit and still respect it."""

    def __post_init__(self) -> None:
        if not 0.0 < self.drawdown_limit <= 1.0:
            raise ConfigError(f"drawdown_limit must be in (0, 1], got {self.drawdown_limit!r}")
        if not 0.0 <= self.time_over_limit_tolerance < 1.0:
            raise ConfigError(f"time_over_limit_tolerance must be in [0, 1), got {self.time_over_limit_tolerance!r}")
        if int(self.seed) != self.seed:
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        if int(self.n_resamples) != self.n_resamples or self.n_resamples < 100:
            raise ConfigError(f"n_resamples must be an integer >= 100 (e.g. 2000), got {self.n_resamples!r}")
        if not 0.5 < self.confidence < 1.0:
            raise ConfigError(f"confidence must be between 0.5 and 1 (e.g. 0.95), got {self.confidence!r}")
        if not 0.0 < self.alpha < 0.5:
            raise ConfigError(f"alpha must be between 0 and 0.5 (e.g. 0.05), got {self.alpha!r}")
        if self.n_trials is not None and (int(self.n_trials) != self.n_trials or self.n_trials < 1):
            raise ConfigError(f"n_trials must be a positive integer, got {self.n_trials!r}")
        if self.block is not None and not 1.0 <= self.block < math.inf:
            raise ConfigError(f"block must be a mean block length >= 1 bar, got {self.block!r}")


@dataclass(frozen=True)
class Report:
    """A finished report folder and the numbers on its first screen."""

    path: Path
    ranking: pd.DataFrame
    verdict: str
    headline: str
    paired: dict[str, dict[str, Any]]
    deflated: dict[str, Any] | None
    plots: dict[str, Path]
    notes: list[str] = field(default_factory=list)
    interactive_plots: list[str] = field(default_factory=list)
    """Names of the plots on ``interactive.html`` (:data:`agents.report.interactive.PLOTS`)."""

    @property
    def html(self) -> Path:
        return self.path / "report.html"

    @property
    def interactive(self) -> Path:
        """The interactive, self-contained Plotly page (``interactive.html``)."""
        return self.path / "interactive.html"

    @property
    def markdown(self) -> Path:
        return self.path / "report.md"


def _read_yaml(path: Path) -> tuple[Any, str | None]:
    if not path.is_file():
        return None, None
    try:
        return safe_load(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, f"{path.name} could not be read ({first})"


def _bars_per_year(results: pd.DataFrame, store: CellStore, notes: list[str]) -> float:
    values = _finite(results["bars_per_year"])
    values = values[values > 0]
    if values.size:
        return float(np.median(values))
    for row in results.itertuples(index=False):
        frame = store.get(row.policy, row.scenario, row.seed)
        if frame is not None and len(frame) > 1 and frame["timestamp"].notna().all():
            bpy = _bars_per_year_from_index(frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy())
            if math.isfinite(bpy):
                notes.append(f"results.csv has no bars_per_year: {bpy:,.0f} bars a year from the bar timestamps.")
                return bpy
    notes.append(f"No bars_per_year and no timestamps: Sharpe ratios of the paired test assume "
                 f"{DEFAULT_BARS_PER_YEAR:,.0f} bars a year (hourly).")
    return DEFAULT_BARS_PER_YEAR


def _cells(results: pd.DataFrame, policies: Sequence[str], scenarios: Sequence[str]) -> list[tuple[str, int]]:
    """(scenario, seed) pairs every one of ``policies`` ran, in scenario order then seed."""
    out = []
    for scenario in scenarios:
        g = results[results["scenario"] == scenario]
        seeds = None
        for p in dict.fromkeys(policies):
            s = set(g.loc[g["policy"] == p, "seed"].astype(int))
            seeds = s if seeds is None else seeds & s
        out += [(scenario, seed) for seed in sorted(seeds or ())]
    return out


def _window(results: pd.DataFrame, scenario: str, seed: int) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    if scenario == BASELINE_SCENARIO:
        return None  # the unstressed test data has no stress window (whatever span the file gives)
    g = results[(results["scenario"] == scenario) & (results["seed"] == seed)]
    g = g[g["stress_start"].notna() & g["stress_end"].notna()]
    if g.empty:
        return None
    return g["stress_start"].iloc[0], g["stress_end"].iloc[0]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "scenario"


def training_section(run_dir: Path, agents: Sequence[str], folder: Path, plots: dict[str, Path]) -> list[str]:
    """Markdown on the agents' training (seed, budget, kept checkpoint, learning curves) from their run folders.

    The agents' model paths come from the stress run's ``plan.yaml``; a run folder that is gone
    is said, not guessed.
    """
    from agents.report.training_curves import plot_learning_curves, run_folder_of, training_table

    if not agents:
        return []
    plan, _ = _read_yaml(run_dir / "plan.yaml")
    paths = {}
    for spec in (plan or {}).get("policies", []) if isinstance(plan, Mapping) else []:
        if isinstance(spec, Mapping) and spec.get("name") in agents and spec.get("model_path"):
            paths[str(spec["name"])] = run_folder_of(spec["model_path"])
    md = ["## Training", ""]
    present = {name: path for name, path in paths.items() if path.is_dir()}
    missing = sorted(set(agents) - set(present))
    if present:
        md += [markdown_table(training_table(present), left=("agent", "training run")), ""]
        md += ["Kept checkpoint: among the evaluations on the validation span that were never stopped out and kept "
               "their drawdown and time over the VaR limit within the training config's `selection` bounds, the "
               "highest validation objective (the test span is never used to choose); an agent with none eligible "
               "is stress-tested with its final model as `<name>_unselected`. Seeds are the training seeds; each "
               "agent was trained once, so the intervals above contain scenario and stress-seed spread, not "
               "training-seed spread.", ""]
        png = plot_learning_curves(present, folder / "learning_curves.png")
        if png is not None:
            plots["learning_curves"] = png
            md += ["![learning curves](learning_curves.png)", ""]
        else:
            md += ["The training runs logged no learning curves (too short a run for one episode or evaluation).", ""]
    if missing:
        md += [f"No training run folder found for {', '.join(missing)} (moved or deleted): training not shown.", ""]
    return md


def _data_notes(results: pd.DataFrame) -> list[str]:
    """Distinct data notes of the cells (source, spread and depth models, lookbacks in bars), in order."""
    if "data_notes" not in results.columns:
        return []
    seen: dict[str, None] = {}
    for text in results["data_notes"].dropna().astype(str):
        for note in text.split(" | "):
            if note.strip():
                seen.setdefault(note.strip(), None)
    return list(seen)


def _footer(run_dir: Path, argv: Sequence[str] | None, notes: list[str]) -> list[str]:
    manifest, problem = _read_yaml(run_dir / "manifest.yaml")
    if problem:
        notes.append(problem)
    config, problem = _read_yaml(run_dir / "config.yaml")
    if problem:
        notes.append(problem)
    lines = ["---", ""]
    if isinstance(manifest, Mapping):
        parts = []
        if manifest.get("command"):
            parts.append(f"command `{str(manifest['command']).replace('`', '')}`")
        if manifest.get("git_revision"):
            parts.append(f"git revision `{manifest['git_revision']}`")
        if manifest.get("created_utc"):
            parts.append(f"started {manifest['created_utc']} UTC")
        if parts:
            lines.append(f"Stress test: {', '.join(parts)}.")
    else:
        lines.append("Stress test: no manifest.yaml in the run folder (command and revision unknown).")
    if isinstance(config, Mapping):
        lines.append(f"Its resolved config is in `config.yaml` (keys: {', '.join(map(str, list(config)[:12]))}).")
    lines.append("")
    cmd = " ".join(argv) if argv is not None else " ".join(sys.argv)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    lines.append(f"Report: `{cmd.replace('`', '')}` at {stamp} UTC, git revision `{git_revision()}`.")
    return lines


def build_report(run_dir: str | Path, *, out_dir: str | Path | None = None, settings: ReportSettings | None = None,
                 argv: Sequence[str] | None = None) -> Report:
    """Build the comparison report of a stress-test run folder; returns the finished :class:`Report`.

    The folder ``report/`` (or ``report-2/``, ... when taken) is created under ``out_dir``
    (default: ``run_dir``), built in a hidden temporary folder there and renamed into place; an
    earlier report is never touched and a failure leaves no report folder. ``argv`` is the
    command shown in the footer (default ``sys.argv``). A missing or malformed ``results.csv``
    raises :class:`DataError`; bad settings (unknown scenario or seed) :class:`ConfigError`.
    """
    settings = settings or ReportSettings()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError("no such folder", source=str(run_dir),
                        hint="pass the run folder written by scripts/stress_test.py (runs/stress-...)")
    results = load_results(run_dir / "results.csv")
    named = list(dict.fromkeys(results["scenario"]))  # the test data first, then the stressed in file order
    scenarios = [s for s in named if s == BASELINE_SCENARIO] + [s for s in named if s != BASELINE_SCENARIO]
    if settings.scenario is not None:
        stressed_names = [s for s in scenarios if s != BASELINE_SCENARIO]
        if settings.scenario not in stressed_names:
            raise ConfigError(f"scenario {settings.scenario!r} is not a stressed scenario of {run_dir / 'results.csv'}"
                              f" — choose one of: {', '.join(stressed_names) or '(none)'}")
    if settings.plot_seed is not None and settings.plot_seed not in set(results["seed"]):
        raise ConfigError(f"seed {settings.plot_seed} was not run in {run_dir / 'results.csv'} — choose one of: "
                          f"{', '.join(map(str, sorted(set(results['seed']))))}")
    parent = Path(out_dir) if out_dir is not None else run_dir
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".report-", suffix=".partial", dir=parent))
    try:
        content = _write(tmp, run_dir, results, scenarios, settings, argv)
        final = _publish(tmp, parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Report(path=final, plots={k: final / v.name for k, v in content["plots"].items()},
                  **{k: v for k, v in content.items() if k != "plots"})


def _write(folder: Path, run_dir: Path, results: pd.DataFrame, scenarios: list[str], settings: ReportSettings,
           argv: Sequence[str] | None) -> dict[str, Any]:
    """Compute everything and write the report files into ``folder`` (the temporary one)."""
    notes: list[str] = []
    rng = np.random.default_rng(settings.seed)
    store = CellStore(run_dir)
    if not store.exists:
        notes.append("The run folder has no cells/ (per-step records): no paired test, deflated Sharpe ratio or "
                     "curves; the ranking comes from results.csv alone.")
    results, invariant_notes = collapse_seed_invariant(results)
    results, identical_notes = merge_identical_policies(results, store if store.exists else None)
    skipped = skipped_scenarios(run_dir)
    notes += invariant_notes + identical_notes
    bpy = _bars_per_year(results, store, notes)
    ranking = rank_policies(results, rng=rng, confidence=settings.confidence, n_resamples=settings.n_resamples,
                            alpha=settings.alpha, drawdown_limit=settings.drawdown_limit,
                            time_over_limit_tolerance=settings.time_over_limit_tolerance)
    order = ranking["policy"].tolist()
    styles = policy_styles(order)
    manifest, _ = _read_yaml(run_dir / "manifest.yaml")
    config, _ = _read_yaml(run_dir / "config.yaml")
    units = account_units(results, config, manifest)
    stressed = [s for s in scenarios if s != BASELINE_SCENARIO]
    has_test = BASELINE_SCENARIO in scenarios
    agent, base = best_of_kind(ranking, "agent"), best_of_kind(ranking, "baseline")
    n_agents = int((ranking["kind"] == "agent").sum())
    kinds_agent = set(ranking.loc[ranking["kind"] == "agent", "policy"])
    seeds = sorted(set(results["seed"].astype(int)))
    conf = f"{settings.confidence:.0%}"

    # Paired tests: the verdict uses the pooled stressed one (the test data when nothing is stressed).
    paired: dict[str, dict[str, Any]] = {}
    if agent is not None and base is not None:
        groups = []
        if stressed:
            groups.append(("stressed (pooled)", stressed))
        if has_test:
            groups.append(("test data", [BASELINE_SCENARIO]))
        if len(stressed) > 1:
            groups += [(s, [s]) for s in stressed]
        for label, group in groups:
            cells = _cells(results, [agent, base], group)
            paired[label] = paired_test(store, agent, base, cells, bars_per_year=bpy, rng=rng,
                                        n_resamples=settings.n_resamples, confidence=settings.confidence,
                                        block=settings.block)
    main_test = paired.get("stressed (pooled)") or paired.get("test data")
    text = verdict(ranking, main_test, alpha=settings.alpha)

    # Deflated Sharpe ratio of the top policy on the bars that rank it.
    pool = stressed if stressed else [BASELINE_SCENARIO]
    pool_label = "stressed runs" if stressed else "test data"
    returns, used = aligned_returns(store, order, _cells(results, order, pool))
    deflated = None
    passed_over: list[str] = []
    if used:
        for p in order:  # the top-ranked policy whose returns vary (a flat one has Sharpe 0 by construction)
            r = returns[p]
            if r.size >= 2 and r.max() > r.min():
                deflated = deflated_sharpe(returns, p, n_trials=settings.n_trials, bars_per_year=bpy)
                deflated["cells"] = len(used)
                deflated["passed_over"] = passed_over
                break
            passed_over.append(p)
    # PSR and DSR of every policy whose returns vary (for ranking.csv), with the same trial count.
    ranking["psr"], ranking["dsr"] = math.nan, math.nan
    for i, p in enumerate(order):
        r = returns.get(p) if used else None
        if r is not None and r.size >= 2 and r.max() > r.min():
            each = deflated_sharpe(returns, p, n_trials=settings.n_trials, bars_per_year=bpy)
            ranking.loc[i, ["psr", "dsr"]] = [each["psr"], each["dsr"]]

    # Plots.
    plots: dict[str, Path] = {}
    sharpe = scenario_matrix(results, "sharpe_ratio", order, scenarios)
    plots["heatmap_sharpe"] = plot_heatmap(sharpe, folder / "heatmap_sharpe.png",
                                           title="Mean Sharpe ratio (annualised) over seeds; centre: 0",
                                           cmap="RdYlGn", center=0.0, colorbar_label="Sharpe ratio")
    dd = scenario_matrix(results, "max_drawdown", order, scenarios)
    plots["heatmap_drawdown"] = plot_heatmap(
        dd, folder / "heatmap_drawdown.png",
        title=f"Mean max drawdown over seeds (%); centre (yellow): the {settings.drawdown_limit:.0%} limit",
        fmt="{:.1f}", cmap="RdYlGn_r", center=100.0 * settings.drawdown_limit,
        colorbar_label="max drawdown (%, centre: the limit)", scale=100.0, floor=0.0)
    tol = scenario_matrix(results, "time_over_limit", order, scenarios)
    if np.isfinite(tol.to_numpy()).any():
        plots["heatmap_time_over_limit"] = plot_heatmap(
            tol, folder / "heatmap_time_over_limit.png",
            title=f"Mean time over the VaR limit (% of bars); centre: the {settings.time_over_limit_tolerance:.0%} "
                  f"tolerance", fmt="{:.1f}", cmap="RdYlGn_r", center=100.0 * settings.time_over_limit_tolerance,
            colorbar_label="% of bars over limit (centre: tolerance)", scale=100.0, floor=0.0)
    focus = settings.scenario or severest_scenario(results)

    def seed_for(scenario: str) -> int:
        available = sorted(set(results.loc[results["scenario"] == scenario, "seed"].astype(int)))
        return settings.plot_seed if settings.plot_seed in available else available[0]

    def have(policies: Sequence[str], scenario: str, seed: int) -> bool:
        return any(store.get(p, scenario, seed) is not None for p in policies)

    curve_scenarios = ([BASELINE_SCENARIO] if has_test else []) + ([focus] if focus else [])
    curves: list[tuple[str, int, str]] = []
    for i, scenario in enumerate(curve_scenarios, start=1):
        seed = seed_for(scenario)
        if have(order, scenario, seed):
            key = f"equity_{i}_{_slug(scenario)}"
            plots[key] = plot_equity_drawdown(store, order, scenario, seed, folder / f"{key}.png",
                                              window=_window(results, scenario, seed), styles=styles, units=units)
            curves.append((scenario, seed, key))
        elif store.exists:
            notes.append(f"No per-step records for {scenario}, seed {seed}: equity curves skipped.")
    var_policy = None
    position_key = pnl_key = None
    pnl_stats = None
    nominal = math.nan
    if focus:
        seed = seed_for(focus)
        window = _window(results, focus, seed)
        if have(order, focus, seed):
            position_key = "position_size"
            plots[position_key] = plot_position_size(store, order, focus, seed, folder / "position_size.png",
                                                     window=window, styles=styles)
        elif store.exists:
            notes.append(f"No per-step records for {focus}, seed {seed}: position-size plot skipped.")
        var_policy = best_trading_policy(store, order, focus, seed)
        frame = store.get(var_policy, focus, seed) if var_policy else None
        if frame is not None:
            g = results[(results["policy"] == var_policy) & (results["scenario"] == focus)]
            nominal = _mean(g["var_nominal_rate"])
            pnl_key = "pnl_var"
            plots[pnl_key] = plot_pnl_var(store, var_policy, focus, seed, folder / "pnl_var.png", window=window,
                                          nominal_rate=nominal, units=units)
            pnl_stats = {**var_exception_stats(frame), "nominal": nominal, "seed": seed}
        elif store.exists and have(order, focus, seed):
            notes.append(f"No policy holds a position on {focus}, seed {seed}: P&L-against-VaR plot skipped.")

    summary = scenario_summary(results, order, scenarios)
    if store.problems:
        notes += [f"Unreadable cell skipped: {p}" for p in store.problems]
    if results.attrs.get("filled_columns"):
        notes.append("results.csv lacks " + ", ".join(results.attrs["filled_columns"]) + ": shown as n/a.")
    if run_dir.name.endswith(".partial"):
        notes.append("The stress-test run folder is unfinished (.partial): results may be incomplete.")

    footer = _footer(run_dir, argv, notes)

    # ---- Markdown ----
    head = headline_table(ranking, money=units.money)
    headline = markdown_table(head, left=("rank", "policy", "kind", "data"))
    title = f"Which sizing policy holds up? Stress test {run_dir.name.removesuffix('.partial')}"
    md = [f"# {_md(title)}", ""]
    md.append(f"{len(order)} policies ({n_agents} agent{'s' * (n_agents != 1)}, {len(order) - n_agents} "
              f"baseline{'s' * (len(order) - n_agents != 1)}) × {len(scenarios)} scenarios "
              f"({'test data + ' if has_test else ''}{len(stressed)} stressed) × {len(seeds)} seeds: "
              f"{len(results)} distinct runs.")
    md += ["", f"**Verdict.** {_md(text)}", ""]
    md += [f"*{_md(n)}*" for n in (*identical_notes, *invariant_notes, *skipped)]
    md += ["", "## Ranking", "", headline, ""]
    score_words = ("mean Sharpe ratio over the stressed runs" if ranking.attrs.get("score") == "stressed_sharpe_mean"
                   else "mean Sharpe ratio on the test data")
    limits = ranking.attrs.get("limits", {})
    md += [f"Risk first: policies ruined in any run (stopped out, or equity at or below zero) rank last, fewest "
           f"ruined runs first; then those that do not respect the VaR limit (more exceptions than nominal with "
           f"Kupiec's test rejecting at {limits.get('alpha', settings.alpha):.0%}, or over the limit on more than "
           f"{_pct(limits.get('time_over_limit_tolerance', settings.time_over_limit_tolerance), 1)} of bars); then "
           f"those whose worst drawdown exceeds {_pct(limits.get('drawdown_limit', settings.drawdown_limit), 0)}; "
           f"within each group by the {score_words}. `ranking.csv` has the group and its reason per policy.", ""]
    md += [f"Sharpe ratios are annualised; each distinct scenario × seed run counts once; ties by the test-data "
           f"Sharpe. Brackets: {conf} percentile-bootstrap interval of the mean across runs, i.e. the spread "
           f"between seeds and scenarios. *stressed*: every scenario except `baseline`, pooled; *test data*: "
           f"the unstressed test span (`baseline`). Mean return: total return per run. Worst max DD: the "
           f"largest peak-to-trough fall of any run. Time over limit: share of bars with the position's VaR "
           f"above the VaR limit. Stop-outs: runs stopped out / runs. Mean costs: trading costs per run, "
           f"{units.money}, against a starting equity of {units.start}.", ""]

    md += ["## Best agent against best baseline (paired test)", ""]
    if agent is None or base is None:
        md += [("No agent in this run" if agent is None else "No baseline in this run")
               + ": the paired test is skipped.", ""]
    elif not paired or all(r["n_bars"] < 2 for r in paired.values()):
        md += [f"No paired per-step records for {_md(agent)} and {_md(base)}: the paired test is skipped.", ""]
    else:
        rows = [{"data": label, "cells": str(r["n_cells"]), "bars": f"{r['n_bars']:,}",
                 f"Sharpe {agent}": _f(r["sharpe_a"]), f"Sharpe {base}": _f(r["sharpe_b"]),
                 f"difference [{conf} CI]": (f"{_f(r['diff'], signed=True)} [{_f(r['low'], signed=True)}, "
                                             f"{_f(r['high'], signed=True)}]"),
                 "p-value": _p(r["p_value"]).removeprefix("p = ").removeprefix("p "),
                 "mean block (bars)": _f(r["block"], 1)}
                for label, r in paired.items()]
        md += [markdown_table(pd.DataFrame(rows), left=("data",)), ""]
        md += [f"Annualised Sharpe ratio of {_md(agent)} minus {_md(base)} on the same bars. Per (scenario, seed) "
               f"the two runs' per-bar returns are aligned on the bar index (bars after a stop-out count as 0: "
               f"nothing is held), the cells are concatenated, and both series are resampled with the same "
               f"stationary-bootstrap indices ({settings.n_resamples:,} resamples, mean block length automatic "
               f"unless set): the shared market shocks cancel out of the difference. Two-sided p-value. The "
               f"verdict uses the first row; per-scenario rows are not corrected for multiple comparisons. "
               f"These Sharpe ratios are of the concatenated series, so they differ a little from the "
               f"mean-of-runs ones above.", ""]

    md += ["## Deflated Sharpe ratio", ""]
    if deflated is None:
        md += ["Needs per-step records of every policy on the same runs: skipped.", ""]
    else:
        d = deflated
        if d["passed_over"]:
            md += [f"{', '.join(_md(p) for p in d['passed_over'])} ranked higher but never changed equity on these "
                   f"bars (Sharpe ratio 0 by construction, nothing to deflate), so this is the next policy.", ""]
        rank = order.index(d["policy"]) + 1
        md += [f"{'Policy' if d['passed_over'] else 'Top policy'} {_md(d['policy'])} (rank {rank}) on the "
               f"{pool_label} ({d['cells']} cells, {d['n_bars']:,} bars): "
               f"Sharpe ratio {_f(d['sharpe_annualised'])} annualised ({_f(d['sharpe_per_bar'], 4)} per bar). "
               f"With {d['n_trials']} policies tried and a variance of the per-bar Sharpe ratios across them of "
               f"{d['sr_variance']:.3g}, the best of {d['n_trials']} skill-less policies would reach "
               f"{_f(d['sr_benchmark_annualised'])} annualised by luck alone. Probability that the true Sharpe ratio "
               f"exceeds 0 (PSR): {_f(d['psr'], 3)}; that it exceeds that luck benchmark (deflated Sharpe ratio, "
               f"DSR): **{_f(d['dsr'], 3)}**. A DSR above 0.95 means the result survives the number of policies "
               f"tried; if more configurations were tried than appear here, re-run with `--trials N`.", ""]

    md += ["## Sharpe ratio, drawdown and limit breaches by scenario", "",
           "![Mean Sharpe ratio by policy and scenario](heatmap_sharpe.png)", "",
           "![Mean max drawdown by policy and scenario](heatmap_drawdown.png)", ""]
    if "heatmap_time_over_limit" in plots:
        md += ["![Mean time over the VaR limit by policy and scenario](heatmap_time_over_limit.png)", ""]

    md += ["## Equity and drawdown", ""]
    if focus and not settings.scenario:
        md += [f"The stressed scenario shown is the severest by mean max drawdown: {_md(focus)}.", ""]
    for scenario, seed, key in curves:
        md += [f"![Equity and drawdown, {_md(scenario)}, seed {seed}]({key}.png)", ""]
    if not curves:
        md += ["No per-step records: skipped.", ""]

    md += ["## Position size through the stress window", ""]
    if position_key:
        md += [f"Gross exposure (sum of absolute exposures over pairs) divided by equity, {_md(focus)}, seed "
               f"{seed_for(focus)}; the stress window is shaded.", "", "![Position size](position_size.png)", ""]
    else:
        md += ["No stressed scenario with per-step records: skipped.", ""]

    md += ["## P&L against VaR", ""]
    if pnl_key and pnl_stats is not None:
        who = "best-ranked policy that trades,"
        nominal = pnl_stats["nominal"]
        md += [f"Realised P&L per bar of the {who} {_md(var_policy)} on {_md(focus)}, seed {pnl_stats['seed']}, "
               f"against minus the one-bar VaR of the position it held: {pnl_stats['exceptions']} exceptions in "
               f"{pnl_stats['bars_with_position']} bars with a position ({_pct(pnl_stats['rate'])}"
               + (f" against {_pct(nominal)} nominal" if math.isfinite(nominal) else "") + ").", "",
               "![P&L against VaR](pnl_var.png)", ""]
    else:
        md += ["No stressed scenario with per-step records: skipped.", ""]

    md += ["## Every scenario", ""]
    display = _scenario_display(summary, units.money)
    for scenario in scenarios:
        rows = display[summary["scenario"].to_numpy() == scenario]
        label = "test data, unstressed" if scenario == BASELINE_SCENARIO else "stressed"
        window = results.loc[results["scenario"] == scenario, ["stress_start", "stress_end"]].dropna()
        span = ""
        if not window.empty and scenario != BASELINE_SCENARIO:
            if len(window.drop_duplicates()) == 1:
                span = (f"; stress window {window['stress_start'].iloc[0]:%Y-%m-%d %H:%M} to "
                        f"{window['stress_end'].iloc[0]:%Y-%m-%d %H:%M} UTC")
            else:
                span = "; the stress window differs by seed"
        md += [f"### {_md(scenario)} ({label}{span})", "",
               markdown_table(rows.reset_index(drop=True), left=("policy", "kind")), ""]
    md += ["Means over seeds except: max DD (worst) and worst bar are the worst run; VaR exceptions, margin calls "
           "and stop-outs are totals (stop-outs as runs stopped / runs). Turnover: notional traded / starting "
           f"equity. Costs: {units.money} per run (starting equity {units.start}), and per unit traded in basis "
           f"points.", ""]

    md += training_section(run_dir, [p for p in order if p in kinds_agent], folder, plots)
    md += ["## Method and notes", "",
           f"- Bootstrap seed {settings.seed}; {settings.n_resamples:,} resamples; intervals at {conf}; "
           f"significance at {settings.alpha:.0%}; {bpy:,.0f} bars a year.",
           f"- {len(order)} policies, {len(seeds)} seeds ({', '.join(map(str, seeds))}), scenarios: "
           f"{', '.join(_md(s) for s in scenarios)}."]
    md += [f"- {_md(n)}" for n in notes]
    md += [""]
    data_notes = _data_notes(results)
    if data_notes:
        md += ["### The data", "", "What the market data lacked and what stood in for it (from the runs' notes):", ""]
        md += [f"- {_md(n)}" for n in data_notes]
        md += [""]
    md += footer
    md_text = "\n".join(md) + "\n"

    atomic_write_text(folder / "report.md", md_text)
    atomic_write_text(folder / "report.html", render_html(md_text, folder, title=title))
    shown = focus or (BASELINE_SCENARIO if has_test else None)  # the test data when nothing is stressed
    shown_seed = seed_for(shown) if shown else None
    interactive = _write_interactive(
        folder / "interactive.html", title=title, verdict_text=text, ranking=ranking, head=head,
        notes=[*identical_notes, *invariant_notes, *skipped], order=order, units=units, store=store,
        scenario=shown, seed=shown_seed, window=_window(results, shown, shown_seed) if shown else None,
        matrices={m: scenario_matrix(results, m, order, scenarios)
                  for m in ("sharpe_ratio", "total_return", "max_drawdown", "time_over_limit")},
        settings=settings, pnl_policy=var_policy if pnl_key else None, nominal_rate=nominal,
        run_name=run_dir.name.removesuffix(".partial"))
    atomic_write_csv(folder / "ranking.csv", ranking_table(ranking), index=False)
    atomic_write_csv(folder / "ranking_full.csv", ranking, index=False)
    atomic_write_csv(folder / "scenarios.csv", summary, index=False)
    atomic_write_text(folder / "summary.yaml", yaml.safe_dump(_plain({
        "verdict": text, "score": ranking.attrs.get("score"), "best_policy": order[0], "best_agent": agent,
        "best_baseline": base, "paired_tests": paired, "deflated_sharpe": deflated, "bars_per_year": bpy,
        "settings": settings.__dict__, "notes": notes}), sort_keys=False, allow_unicode=True))
    return {"ranking": ranking, "verdict": text, "headline": headline, "paired": paired, "deflated": deflated,
            "plots": plots, "notes": notes, "interactive_plots": interactive}


def _write_interactive(path: Path, *, title: str, verdict_text: str, ranking: pd.DataFrame, head: pd.DataFrame,
                       notes: Sequence[str], order: Sequence[str], units: AccountUnits, store: CellStore,
                       scenario: str | None, seed: int | None, window: tuple[pd.Timestamp, pd.Timestamp] | None,
                       matrices: Mapping[str, pd.DataFrame], settings: ReportSettings, pnl_policy: str | None,
                       nominal_rate: float, run_name: str) -> list[str]:
    """Write ``interactive.html`` (:mod:`agents.report.interactive`) from the numbers of this report.

    Returns the names of the plots on the page.
    """
    from agents.report.interactive import InteractiveInputs, footer_text, render_interactive

    reasons = dict(zip(ranking["policy"], ranking.get("tier_reason", pd.Series([""] * len(ranking))), strict=True))
    rows = head.copy()
    rows["risk test"] = [reasons.get(p, "") if p else "" for p in rows["policy"]]
    cells = {}
    if scenario is not None and seed is not None:
        for p in order:
            frame = store.get(p, scenario, seed)
            if frame is not None:
                cells[p] = frame
    inputs = InteractiveInputs(
        title=title, verdict=verdict_text, ranking_rows=rows, notes=list(notes), order=list(order), units=units,
        scenario=scenario, seed=seed, window=window, cells=cells, matrices=dict(matrices),
        drawdown_limit=settings.drawdown_limit, time_over_limit_tolerance=settings.time_over_limit_tolerance,
        pnl_policy=pnl_policy, nominal_rate=nominal_rate, footer=footer_text(run_name))
    page, drawn = render_interactive(inputs)
    atomic_write_text(path, page)
    return drawn


def _plain(value: Any) -> Any:
    """YAML-safe copy: numpy scalars to Python, NaN kept as .nan, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
