"""The report's words: the verdict, the display tables and each Markdown section.

Why generated: every sentence quotes the numbers of :mod:`agents.report.analysis`, so "the
agent wins" is never written where the numbers do not say it. Sections take the analysis and
the drawn figures (:mod:`agents.report.plots`) and return Markdown lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from agents.report.analysis import Analysis
from agents.report.formatting import fnum, interval, markdown_table, md_escape, minus, money_text, p_text, pct
from agents.report.plots import Figure
from agents.report.ranking import best_of_kind
from agents.report.results import BASELINE_SCENARIO, WINDOW_COLUMNS, data_notes, training_runs


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
    sharpe = minus(interval(top[f"{part}_sharpe_mean"], top[f"{part}_sharpe_low"], top[f"{part}_sharpe_high"]))
    risk = []
    trades = not top.get(f"{part}_turnover_x_equity", math.nan) == 0  # a policy that never trades has no VaR
    stated = str(top.get("tier_reason", "")) if int(top.get("tier", 0)) else ""
    if "tier" in ranking.columns and trades:
        if math.isfinite(top.get(f"{part}_kupiec_p", math.nan)) and "VaR exceptions" not in stated:
            risk.append(f"{int(top[f'{part}_exceptions'])} VaR exceptions against "
                        f"{top[f'{part}_expected_exceptions']:.1f} expected (Kupiec {p_text(top[f'{part}_kupiec_p'])})")
        if "over the VaR limit" not in stated:
            risk.append(f"over the limit on {pct(top[f'{part}_time_over_limit'], 2)} of bars")
    if "worst drawdown" not in stated:
        risk.append(f"worst drawdown {pct(top[f'{part}_worst_max_drawdown'])}")
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
        numbers = minus(f"Sharpe difference {fnum(d, signed=True)} [{fnum(paired['low'], signed=True)}, "
                         f"{fnum(paired['high'], signed=True)}], {p_text(p)}")
        if math.isfinite(p) and p < alpha:
            words = (f"significant at the {alpha:.0%} level: {agent} beats {base}." if d > 0 else
                     f"significant at the {alpha:.0%} level: {agent} does worse than {base}.")
        elif d > 0:
            words = f"not significant: {agent}'s edge over {base} is within what chance gives."
        else:
            words = f"not significant: {agent} does not beat {base}."
        second = f"Best agent {agent} vs best baseline {base} on {data}: {numbers}: {words}"
    return f"{first} {second}"


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
            sharpe = interval(r[f"{part}_sharpe_mean"], r[f"{part}_sharpe_low"], r[f"{part}_sharpe_high"])
            rows.append({
                "rank": str(int(r["rank"])) if i == 0 else "",
                "policy": str(r["policy"]) if i == 0 else "",
                "kind": str(r["kind"]) if i == 0 else "",
                "data": label,
                "Sharpe [95% CI]": sharpe + (f" ({undefined} n/a)" if undefined else ""),
                "mean return": pct(r[f"{part}_total_return"], 2),
                "worst max DD": pct(r[f"{part}_worst_max_drawdown"]),
                "time over limit": pct(r[f"{part}_time_over_limit"], 2),
                "stop-outs": f"{int(r[f'{part}_stopped_runs'])}/{n}",
                f"mean costs, {money}": money_text(r[f"{part}_costs_paid"]),
                "runs": str(n),
            })
    return pd.DataFrame(rows)


def scenario_display(summary: pd.DataFrame, money: str = "account currency") -> pd.DataFrame:
    rows = []
    for _, r in summary.iterrows():
        exc = "n/a" if not math.isfinite(r["var_exceptions_total"]) else (
            f"{int(r['var_exceptions_total'])} ({pct(r['var_exception_rate_mean'])} vs "
            f"{pct(r['var_nominal_rate'])})")
        costs = money_text(r["costs_paid_mean"]) + (f" ({r['cost_bps_mean']:.1f} bps)"
                                                if math.isfinite(r["cost_bps_mean"]) else "")
        rows.append({
            "policy": str(r["policy"]), "kind": str(r["kind"]),
            "Sharpe": fnum(r["sharpe_mean"]),
            "return": pct(r["total_return_mean"], 2),
            "max DD mean (worst)": f"{pct(r['max_drawdown_mean'])} ({pct(r['max_drawdown_worst'])})",
            "CVaR 95%": pct(r["cvar_mean"], 2),
            "worst bar": pct(r["worst_bar_worst"], 2),
            "VaR exceptions (rate vs nominal)": exc,
            "time over limit": pct(r["time_over_limit_mean"], 2),
            "margin calls": "n/a" if not math.isfinite(r["margin_calls_total"]) else str(int(r["margin_calls_total"])),
            "stop-outs": f"{int(r['stopped_runs'])}/{int(r['runs'])}",
            "turnover (x equity)": fnum(r["turnover_x_equity_mean"], 1),
            f"mean costs, {money}": costs,
        })
    return pd.DataFrame(rows)


def _image(figure: Figure) -> list[str]:
    return [f"![{md_escape(figure.caption)}]({figure.path.name})", ""]


def _of(figures: Mapping[str, Figure], section: str) -> list[Figure]:
    return [f for f in figures.values() if f.section == section]


def title(a: Analysis) -> str:
    return f"Which sizing policy holds up? Stress test {a.run_dir.name.removesuffix('.partial')}"


def intro_section(a: Analysis, verdict_text: str) -> list[str]:
    """The title, what was run, the verdict and the notes a reader must see first."""
    order, n_agents = a.order, len(a.agents)
    md = [f"# {md_escape(title(a))}", ""]
    md.append(f"{len(order)} policies ({n_agents} agent{'s' * (n_agents != 1)}, {len(order) - n_agents} "
              f"baseline{'s' * (len(order) - n_agents != 1)}) × {len(a.scenarios)} scenarios "
              f"({'test data + ' if a.has_test else ''}{len(a.stressed)} stressed) × {len(a.seeds)} seeds: "
              f"{len(a.results)} distinct runs.")
    md += ["", f"**Verdict.** {md_escape(verdict_text)}", ""]
    md += [f"*{md_escape(n)}*" for n in first_notes(a)]
    return md


def first_notes(a: Analysis) -> list[str]:
    """Notes shown under the verdict: merged policies, seed-invariant scenarios, skipped scenarios."""
    return [*a.identical_notes, *a.invariant_notes, *a.skipped]


def ranking_section(a: Analysis, headline: str) -> list[str]:
    s, ranking = a.settings, a.ranking
    md = ["", "## Ranking", "", headline, ""]
    score_words = ("mean Sharpe ratio over the stressed runs" if ranking.attrs.get("score") == "stressed_sharpe_mean"
                   else "mean Sharpe ratio on the test data")
    limits = ranking.attrs.get("limits", {})
    md += [f"Risk first: policies ruined in any run (stopped out, or equity at or below zero) rank last, fewest "
           f"ruined runs first; then those that do not respect the VaR limit (more exceptions than nominal with "
           f"Kupiec's test rejecting at {limits.get('alpha', s.alpha):.0%}, or over the limit on more than "
           f"{pct(limits.get('time_over_limit_tolerance', s.time_over_limit_tolerance), 1)} of bars); then "
           f"those whose worst drawdown exceeds {pct(limits.get('drawdown_limit', s.drawdown_limit), 0)}; "
           f"within each group by the {score_words}. `ranking.csv` has the group and its reason per policy.", ""]
    md += [f"Sharpe ratios are annualised; each distinct scenario × seed run counts once; ties by the test-data "
           f"Sharpe. Brackets: {a.confidence} percentile-bootstrap interval of the mean across runs, i.e. the spread "
           f"between seeds and scenarios. *stressed*: every scenario except `baseline`, pooled; *test data*: "
           f"the unstressed test span (`baseline`). Mean return: total return per run. Worst max DD: the "
           f"largest peak-to-trough fall of any run. Time over limit: share of bars with the position's VaR "
           f"above the VaR limit. Stop-outs: runs stopped out / runs. Mean costs: trading costs per run, "
           f"{a.units.money}, against a starting equity of {a.units.start}.", ""]
    return md


def paired_section(a: Analysis) -> list[str]:
    agent, base, paired, conf = a.agent, a.baseline, a.paired, a.confidence
    md = ["## Best agent against best baseline (paired test)", ""]
    if agent is None or base is None:
        return md + [("No agent in this run" if agent is None else "No baseline in this run")
                     + ": the paired test is skipped.", ""]
    if not paired or all(r["n_bars"] < 2 for r in paired.values()):
        return md + [f"No paired per-step records for {md_escape(agent)} and {md_escape(base)}: the paired test is "
                     f"skipped.", ""]
    rows = [{"data": label, "cells": str(r["n_cells"]), "bars": f"{r['n_bars']:,}",
             f"Sharpe {agent}": fnum(r["sharpe_a"]), f"Sharpe {base}": fnum(r["sharpe_b"]),
             f"difference [{conf} CI]": (f"{fnum(r['diff'], signed=True)} [{fnum(r['low'], signed=True)}, "
                                         f"{fnum(r['high'], signed=True)}]"),
             "p-value": p_text(r["p_value"]).removeprefix("p = ").removeprefix("p "),
             "mean block (bars)": fnum(r["block"], 1)}
            for label, r in paired.items()]
    md += [markdown_table(pd.DataFrame(rows), left=("data",)), ""]
    md += [f"Annualised Sharpe ratio of {md_escape(agent)} minus {md_escape(base)} on the same bars. Per (scenario, "
           f"seed) the two runs' per-bar returns are aligned on the bar index (bars after a stop-out count as 0: "
           f"nothing is held), the cells are concatenated, and both series are resampled with the same "
           f"stationary-bootstrap indices ({a.settings.n_resamples:,} resamples, mean block length automatic "
           f"unless set): the shared market shocks cancel out of the difference. Two-sided p-value. The "
           f"verdict uses the first row; per-scenario rows are not corrected for multiple comparisons. "
           f"These Sharpe ratios are of the concatenated series, so they differ a little from the "
           f"mean-of-runs ones above.", ""]
    return md


def deflated_section(a: Analysis) -> list[str]:
    md = ["## Deflated Sharpe ratio", ""]
    d = a.deflated
    if d is None:
        return md + ["Needs per-step records of every policy on the same runs: skipped.", ""]
    if d["passed_over"]:
        md += [f"{', '.join(md_escape(p) for p in d['passed_over'])} ranked higher but never changed equity on these "
               f"bars (Sharpe ratio 0 by construction, nothing to deflate), so this is the next policy.", ""]
    rank = a.order.index(d["policy"]) + 1
    pool_label = "stressed runs" if a.stressed else "test data"
    md += [f"{'Policy' if d['passed_over'] else 'Top policy'} {md_escape(d['policy'])} (rank {rank}) on the "
           f"{pool_label} ({d['cells']} cells, {d['n_bars']:,} bars): "
           f"Sharpe ratio {fnum(d['sharpe_annualised'])} annualised ({fnum(d['sharpe_per_bar'], 4)} per bar). "
           f"With {d['n_trials']} policies tried and a variance of the per-bar Sharpe ratios across them of "
           f"{d['sr_variance']:.3g}, the best of {d['n_trials']} skill-less policies would reach "
           f"{fnum(d['sr_benchmark_annualised'])} annualised by luck alone. Probability that the true Sharpe ratio "
           f"exceeds 0 (PSR): {fnum(d['psr'], 3)}; that it exceeds that luck benchmark (deflated Sharpe ratio, "
           f"DSR): **{fnum(d['dsr'], 3)}**. A DSR above 0.95 means the result survives the number of policies "
           f"tried; if more configurations were tried than appear here, re-run with `--trials N`.", ""]
    return md


def heatmap_section(figures: Mapping[str, Figure]) -> list[str]:
    md = ["## Sharpe ratio, drawdown and limit breaches by scenario", ""]
    for figure in _of(figures, "scenarios"):
        md += _image(figure)
    return md


def equity_section(a: Analysis, figures: Mapping[str, Figure]) -> list[str]:
    md = ["## Equity and drawdown", ""]
    if a.focus and not a.settings.scenario:
        md += [f"The stressed scenario shown is the severest by mean max drawdown: {md_escape(a.focus)}.", ""]
    curves = _of(figures, "equity")
    for figure in curves:
        md += _image(figure)
    if not curves:
        md += ["No per-step records: skipped.", ""]
    return md


def position_section(figures: Mapping[str, Figure]) -> list[str]:
    md = ["## Position size through the stress window", ""]
    for figure in _of(figures, "position"):
        md += [f"Gross exposure (sum of absolute exposures over pairs) divided by equity, "
               f"{md_escape(figure.scenario)}, seed {figure.seed}; the stress window is shaded.", "", *_image(figure)]
    if not _of(figures, "position"):
        md += ["No stressed scenario with per-step records: skipped.", ""]
    return md


def pnl_var_section(figures: Mapping[str, Figure]) -> list[str]:
    md = ["## P&L against VaR", ""]
    for figure in _of(figures, "pnl_var"):
        d = figure.details
        nominal = d["nominal"]
        md += [f"Realised P&L per bar of the best-ranked policy that trades, {md_escape(d['policy'])} on "
               f"{md_escape(figure.scenario)}, seed {d['seed']}, against minus the one-bar VaR of the position it "
               f"held: {d['exceptions']} exceptions in {d['bars_with_position']} bars with a position "
               f"({pct(d['rate'])}" + (f" against {pct(nominal)} nominal" if math.isfinite(nominal) else "") + ").",
               "", *_image(figure)]
    if not _of(figures, "pnl_var"):
        md += ["No stressed scenario with per-step records: skipped.", ""]
    return md


def every_scenario_section(a: Analysis, summary: pd.DataFrame) -> list[str]:
    """One table per scenario (test data first), with its stress window."""
    md = ["## Every scenario", ""]
    money = a.units.money
    display = scenario_display(summary, money)
    for scenario in a.scenarios:
        rows = display[summary["scenario"].to_numpy() == scenario]
        label = "test data, unstressed" if scenario == BASELINE_SCENARIO else "stressed"
        window = a.results.loc[a.results["scenario"] == scenario, list(WINDOW_COLUMNS)].dropna()
        span = ""
        if not window.empty and scenario != BASELINE_SCENARIO:
            if len(window.drop_duplicates()) == 1:
                start, end = window.iloc[0]
                span = f"; stress window {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
            else:
                span = "; the stress window differs by seed"
        md += [f"### {md_escape(scenario)} ({label}{span})", "",
               markdown_table(rows.reset_index(drop=True), left=("policy", "kind")), ""]
    md += ["Means over seeds except: max DD (worst) and worst bar are the worst run; VaR exceptions, margin calls "
           "and stop-outs are totals (stop-outs as runs stopped / runs). Turnover: notional traded / starting "
           f"equity. Costs: {money} per run (starting equity {a.units.start}), and per unit traded in basis "
           f"points.", ""]
    return md


def training_section(a: Analysis, figures: Mapping[str, Figure]) -> list[str]:
    """The agents' training (seed, budget, kept checkpoint, learning curves) from their run folders."""
    from agents.report.training_curves import training_table

    if not a.agents:
        return []
    present, missing = training_runs(a.run_dir, a.agents)
    md = ["## Training", ""]
    if present:
        md += [markdown_table(training_table(present), left=("agent", "training run")), ""]
        md += ["Kept checkpoint: among the evaluations on the validation span that were never stopped out and kept "
               "their drawdown and time over the VaR limit within the training config's `selection` bounds, the "
               "highest validation objective (the test span is never used to choose); an agent with none eligible "
               "is stress-tested with its final model as `<name>_unselected`. Seeds are the training seeds; each "
               "agent was trained once, so the intervals above contain scenario and stress-seed spread, not "
               "training-seed spread.", ""]
        curves = _of(figures, "training")
        for figure in curves:
            md += _image(figure)
        if not curves:
            md += ["The training runs logged no learning curves (too short a run for one episode or evaluation).", ""]
    if missing:
        md += [f"No training run folder found for {', '.join(missing)} (moved or deleted): training not shown.", ""]
    return md


def method_section(a: Analysis) -> list[str]:
    """Settings, what was run, every note, and the data's own notes."""
    s = a.settings
    md = ["## Method and notes", "",
          f"- Bootstrap seed {s.seed}; {s.n_resamples:,} resamples; intervals at {a.confidence}; "
          f"significance at {s.alpha:.0%}; {a.bars_per_year:,.0f} bars a year.",
          f"- {len(a.order)} policies, {len(a.seeds)} seeds ({', '.join(map(str, a.seeds))}), scenarios: "
          f"{', '.join(md_escape(x) for x in a.scenarios)}."]
    md += [f"- {md_escape(n)}" for n in a.notes]
    md += [""]
    notes = data_notes(a.results)
    if notes:
        md += ["### The data", "", "What the market data lacked and what stood in for it (from the runs' notes):", ""]
        md += [f"- {md_escape(n)}" for n in notes]
        md += [""]
    return md
