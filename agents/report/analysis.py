"""Everything a report says, computed once from a run folder: the ranking, the tests, the plot choices.

Why one object: the Markdown sections, the plots, the interactive page and ``summary.yaml``
quote the same numbers; computing them in one place keeps them from drifting apart, and each
section then reads only what it shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from agents.report.ranking import (
    aligned_returns,
    best_of_kind,
    deflated_sharpe,
    paired_test,
    rank_policies,
    report_bars_per_year,
    severest_scenario,
)
from agents.report.results import (
    BASELINE_SCENARIO,
    CellStore,
    collapse_seed_invariant,
    merge_identical_policies,
    read_yaml,
    run_cells,
    skipped_scenarios,
    stress_window,
)
from agents.report.style import AccountUnits, PolicyStyle, account_units, policy_styles

if TYPE_CHECKING:
    from agents.report.build import ReportSettings


@dataclass
class Analysis:
    """The numbers of one report. ``notes`` grows while the report is written (plots, unreadable cells)."""

    run_dir: Path
    settings: ReportSettings
    results: pd.DataFrame
    scenarios: list[str]
    store: CellStore
    ranking: pd.DataFrame
    bars_per_year: float
    units: AccountUnits
    styles: dict[str, PolicyStyle]
    notes: list[str]
    invariant_notes: list[str]
    identical_notes: list[str]
    skipped: list[str]
    paired: dict[str, dict[str, Any]] = field(default_factory=dict)
    deflated: dict[str, Any] | None = None

    @cached_property
    def order(self) -> list[str]:
        """Policies in rank order."""
        return self.ranking["policy"].tolist()

    @property
    def stressed(self) -> list[str]:
        return [s for s in self.scenarios if s != BASELINE_SCENARIO]

    @property
    def has_test(self) -> bool:
        return BASELINE_SCENARIO in self.scenarios

    @property
    def agent(self) -> str | None:
        """The best-ranked agent (None: no agent in the run)."""
        return best_of_kind(self.ranking, "agent")

    @property
    def baseline(self) -> str | None:
        return best_of_kind(self.ranking, "baseline")

    @property
    def agents(self) -> list[str]:
        """The agents, in rank order."""
        return self.ranking.loc[self.ranking["kind"] == "agent", "policy"].tolist()

    @property
    def seeds(self) -> list[int]:
        return sorted(set(self.results["seed"].astype(int)))

    @property
    def confidence(self) -> str:
        """The interval level as written (``95%``)."""
        return f"{self.settings.confidence:.0%}"

    @cached_property
    def focus(self) -> str | None:
        """The stressed scenario of the curves: the one chosen, else the severest by mean max drawdown."""
        return self.settings.scenario or severest_scenario(self.results)

    @property
    def main_test(self) -> dict[str, Any] | None:
        """The paired test the verdict quotes: the pooled stressed one, else the test data's."""
        return self.paired.get("stressed (pooled)") or self.paired.get("test data")

    def seed_for(self, scenario: str) -> int:
        """The seed whose run the curves of ``scenario`` show: the chosen plot seed where run, else the smallest."""
        available = sorted(set(self.results.loc[self.results["scenario"] == scenario, "seed"].astype(int)))
        return self.settings.plot_seed if self.settings.plot_seed in available else available[0]

    def window(self, scenario: str, seed: int) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        return stress_window(self.results, scenario, seed)

    def has_cells(self, scenario: str, seed: int) -> bool:
        """Whether any policy has readable per-step records of this run."""
        return any(self.store.get(p, scenario, seed) is not None for p in self.order)


def analyse(run_dir: Path, results: pd.DataFrame, scenarios: list[str], settings: ReportSettings) -> Analysis:
    """Rank the policies, run the paired tests and the deflated Sharpe ratio; one seeded Generator for all."""
    rng = np.random.default_rng(settings.seed)
    notes: list[str] = []
    store = CellStore(run_dir)
    if not store.exists:
        notes.append("The run folder has no cells/ (per-step records): no paired test, deflated Sharpe ratio or "
                     "curves; the ranking comes from results.csv alone.")
    results, invariant_notes = collapse_seed_invariant(results)
    results, identical_notes = merge_identical_policies(results, store if store.exists else None)
    skipped = skipped_scenarios(run_dir)
    notes += invariant_notes + identical_notes
    bpy = report_bars_per_year(results, store, notes)
    ranking = rank_policies(results, rng=rng, confidence=settings.confidence, n_resamples=settings.n_resamples,
                            alpha=settings.alpha, drawdown_limit=settings.drawdown_limit,
                            time_over_limit_tolerance=settings.time_over_limit_tolerance)
    manifest, _ = read_yaml(run_dir / "manifest.yaml")
    config, _ = read_yaml(run_dir / "config.yaml")
    analysis = Analysis(run_dir=run_dir, settings=settings, results=results, scenarios=scenarios, store=store,
                        ranking=ranking, bars_per_year=bpy, units=account_units(results, config, manifest),
                        styles=dict(policy_styles(ranking["policy"].tolist())), notes=notes,
                        invariant_notes=invariant_notes, identical_notes=identical_notes, skipped=skipped)
    analysis.paired = _paired_tests(analysis, rng)
    analysis.deflated = _deflated(analysis)
    return analysis


def _paired_tests(a: Analysis, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """Best agent against best baseline: stressed runs pooled, the test data, then each stressed scenario."""
    agent, base = a.agent, a.baseline
    if agent is None or base is None:
        return {}
    groups = []
    if a.stressed:
        groups.append(("stressed (pooled)", a.stressed))
    if a.has_test:
        groups.append(("test data", [BASELINE_SCENARIO]))
    if len(a.stressed) > 1:
        groups += [(s, [s]) for s in a.stressed]
    s = a.settings
    return {label: paired_test(a.store, agent, base, run_cells(a.results, [agent, base], group),
                               bars_per_year=a.bars_per_year, rng=rng, n_resamples=s.n_resamples,
                               confidence=s.confidence, block=s.block)
            for label, group in groups}


def _deflated(a: Analysis) -> dict[str, Any] | None:
    """DSR of the top policy whose returns vary, on the bars that rank; PSR and DSR of each into the ranking."""
    pool = a.stressed or [BASELINE_SCENARIO]
    order = a.order
    returns, used = aligned_returns(a.store, order, run_cells(a.results, order, pool))
    deflated = None
    passed_over: list[str] = []
    if used:
        for p in order:  # a flat policy has Sharpe 0 by construction: nothing to deflate
            r = returns[p]
            if r.size >= 2 and r.max() > r.min():
                deflated = deflated_sharpe(returns, p, n_trials=a.settings.n_trials, bars_per_year=a.bars_per_year)
                deflated["cells"] = len(used)
                deflated["passed_over"] = passed_over
                break
            passed_over.append(p)
    a.ranking["psr"], a.ranking["dsr"] = math.nan, math.nan
    for i, p in enumerate(order):
        r = returns.get(p) if used else None
        if r is not None and r.size >= 2 and r.max() > r.min():
            each = deflated_sharpe(returns, p, n_trials=a.settings.n_trials, bars_per_year=a.bars_per_year)
            a.ranking.loc[i, ["psr", "dsr"]] = [each["psr"], each["dsr"]]
    return deflated
