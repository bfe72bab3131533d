"""The numbers behind the ranking: risk tiers, intervals, the paired test, the deflated Sharpe ratio.

Why apart from the text: these are the figures the verdict and the tables quote, and the tests
check them against planted edges; nothing here formats or writes a file (except the tier
reasons, which are words by design).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from agents.evaluation.metrics import bars_per_year as _bars_per_year_from_index
from agents.evaluation.statistics import (
    bootstrap_ci,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    paired_sharpe_difference,
)
from agents.report.formatting import p_text, pct
from agents.report.results import BASELINE_SCENARIO, PNL, RET, TIMESTAMP, VAR, CellStore, T
from simulator.common.errors import ConfigError

DEFAULT_BARS_PER_YEAR = 6240.0  # hourly FX bars, 24 x 260 (agents.evaluation.metrics.bars_per_year)


def finite(x: Iterable[float]) -> np.ndarray:
    arr = np.asarray(list(x) if not isinstance(x, (np.ndarray, pd.Series)) else x, dtype=np.float64)
    return arr[np.isfinite(arr)]


def _finite_stat(reduce: Callable[[np.ndarray], Any]) -> Callable[[Iterable[float]], float]:
    """``reduce`` over the finite values only; NaN when there are none."""
    def stat(x: Iterable[float]) -> float:
        v = finite(x)
        return float(reduce(v)) if v.size else math.nan
    return stat


finite_mean, finite_max, finite_min, finite_sum = (_finite_stat(f) for f in (np.mean, np.max, np.min, np.sum))


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
                f"{label}_total_return": finite_mean(part["total_return"]),
                f"{label}_worst_max_drawdown": finite_max(part["max_drawdown"]),
                f"{label}_time_over_limit": finite_mean(part["time_over_limit"]),
                f"{label}_breach_rate": finite_mean(part["breach_rate"]),
                f"{label}_stopped_runs": int((part["stop_outs"].fillna(0) > 0).sum()),
                f"{label}_ruined_runs": int(ruined(part).sum()),
                f"{label}_exceptions": exceptions,
                f"{label}_expected_exceptions": expected,
                f"{label}_kupiec_p": kupiec,
                f"{label}_margin_calls": finite_sum(part["margin_calls"]),
                f"{label}_costs_paid": finite_mean(part["costs_paid"]),
                f"{label}_turnover_x_equity": finite_mean(part["turnover_x_equity"]),
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
                           f"were expected (Kupiec {p_text(r[f'{part}_kupiec_p'])})")
            if over:
                why.append(f"over the VaR limit on {pct(r[f'{part}_time_over_limit'], 2)} of bars "
                           f"(tolerance {pct(time_over_limit_tolerance, 1)})")
            reasons.append("; ".join(why))
        elif _nan0(r[f"{part}_worst_max_drawdown"]) > drawdown_limit:
            tiers.append(1)
            reasons.append(f"worst drawdown {pct(r[f'{part}_worst_max_drawdown'])} beyond the "
                           f"{pct(drawdown_limit, 0)} limit")
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
        index = np.unique(np.concatenate([f[T].to_numpy() for f in frames]))
        for p, f in zip(unique, frames, strict=True):
            series = pd.Series(f[RET].to_numpy(), index=f[T].to_numpy())
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
    defined = finite(srs.values())
    variance = float(np.var(defined, ddof=1)) if defined.size >= 2 else 0.0
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
                "sharpe_mean": finite_mean(g["sharpe_ratio"]),
                "total_return_mean": finite_mean(g["total_return"]),
                "max_drawdown_mean": finite_mean(g["max_drawdown"]),
                "max_drawdown_worst": finite_max(g["max_drawdown"]),
                "cvar_mean": finite_mean(g["cvar"]),
                "worst_bar_worst": finite_min(g["worst_bar_return"]),
                "var_exceptions_total": finite_sum(g["var_exceptions"]),
                "var_exception_rate_mean": finite_mean(g["var_exception_rate"]),
                "var_nominal_rate": finite_mean(g["var_nominal_rate"]),
                "time_over_limit_mean": finite_mean(g["time_over_limit"]),
                "margin_calls_total": finite_sum(g["margin_calls"]),
                "stopped_runs": int((g["stop_outs"].fillna(0) > 0).sum()),
                "turnover_x_equity_mean": finite_mean(g["turnover_x_equity"]),
                "costs_paid_mean": finite_mean(g["costs_paid"]),
                "cost_bps_mean": finite_mean(g["cost_bps_of_turnover"]),
            })
    return pd.DataFrame(rows)


def report_bars_per_year(results: pd.DataFrame, store: CellStore, notes: list[str]) -> float:
    """Bars a year for annualising: results.csv's median, else from a cell's timestamps, else hourly (noted)."""
    values = finite(results["bars_per_year"])
    values = values[values > 0]
    if values.size:
        return float(np.median(values))
    for row in results.itertuples(index=False):
        frame = store.get(row.policy, row.scenario, row.seed)
        if frame is not None and len(frame) > 1 and frame[TIMESTAMP].notna().all():
            bpy = _bars_per_year_from_index(frame[TIMESTAMP].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy())
            if math.isfinite(bpy):
                notes.append(f"results.csv has no bars_per_year: {bpy:,.0f} bars a year from the bar timestamps.")
                return bpy
    notes.append(f"No bars_per_year and no timestamps: Sharpe ratios of the paired test assume "
                 f"{DEFAULT_BARS_PER_YEAR:,.0f} bars a year (hourly).")
    return DEFAULT_BARS_PER_YEAR


def var_exception_stats(frame: pd.DataFrame) -> dict[str, float]:
    """VaR exceptions of one run: bars with a position (``var > 0``) whose loss exceeds the VaR (currency)."""
    var = frame[VAR].to_numpy()
    loss = -frame[PNL].to_numpy()
    held = np.isfinite(var) & (var > 0)
    exc = held & (loss > var)
    n = int(held.sum())
    return {"bars_with_position": n, "exceptions": int(exc.sum()),
            "rate": (float(exc.sum()) / n) if n else math.nan}
