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

Where it lives: :mod:`~agents.report.results` reads the run folder, :mod:`~agents.report.ranking`
computes, :mod:`~agents.report.analysis` holds one report's numbers, :mod:`~agents.report.plots`
is the plot registry, :mod:`~agents.report.text` writes the words, :mod:`~agents.report.publish`
the HTML and the folder; this module ties them together.
"""

from __future__ import annotations

import datetime as _dt
import math
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from agents.report import text
from agents.report.analysis import Analysis, analyse
from agents.report.formatting import markdown_table
from agents.report.plots import Figure, draw_all
from agents.report.publish import publish, render_html
from agents.report.ranking import ranking_table, scenario_matrix, scenario_summary
from agents.report.results import BASELINE_SCENARIO, load_results, read_yaml
from simulator.common.errors import ConfigError, DataError
from simulator.common.run_folder import atomic_write_csv, atomic_write_text, git_revision

__all__ = ["Report", "ReportSettings", "build_report"]


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
        final = publish(tmp, parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Report(path=final, plots={k: final / v.name for k, v in content["plots"].items()},
                  **{k: v for k, v in content.items() if k != "plots"})


def _write(folder: Path, run_dir: Path, results: pd.DataFrame, scenarios: list[str], settings: ReportSettings,
           argv: Sequence[str] | None) -> dict[str, Any]:
    """Compute everything and write the report files into ``folder`` (the temporary one)."""
    a = analyse(run_dir, results, scenarios, settings)
    verdict_text = text.verdict(a.ranking, a.main_test, alpha=settings.alpha)
    figures, plot_notes = draw_all(a, folder)
    a.notes += plot_notes + _reading_notes(a)
    footer = _footer(run_dir, argv, a.notes)
    summary = scenario_summary(a.results, a.order, a.scenarios)
    head = text.headline_table(a.ranking, money=a.units.money)
    headline = markdown_table(head, left=("rank", "policy", "kind", "data"))
    md_text = "\n".join(_markdown(a, verdict_text, headline, summary, figures) + footer) + "\n"
    atomic_write_text(folder / "report.md", md_text)
    atomic_write_text(folder / "report.html", render_html(md_text, folder, title=text.title(a)))
    interactive = _write_interactive(folder / "interactive.html", a, verdict_text, head, figures.get("pnl_var"))
    _write_tables(folder, a, summary, verdict_text)
    return {"ranking": a.ranking, "verdict": verdict_text, "headline": headline, "paired": a.paired,
            "deflated": a.deflated, "plots": {k: f.path for k, f in figures.items()}, "notes": a.notes,
            "interactive_plots": interactive}


def _reading_notes(a: Analysis) -> list[str]:
    """What the reader should know about the inputs: unreadable cells, missing columns, an unfinished run."""
    notes = [f"Unreadable cell skipped: {p}" for p in a.store.problems]
    if a.results.attrs.get("filled_columns"):
        notes.append("results.csv lacks " + ", ".join(a.results.attrs["filled_columns"]) + ": shown as n/a.")
    if a.run_dir.name.endswith(".partial"):
        notes.append("The stress-test run folder is unfinished (.partial): results may be incomplete.")
    return notes


def _markdown(a: Analysis, verdict_text: str, headline: str, summary: pd.DataFrame,
              figures: Mapping[str, Figure]) -> list[str]:
    """The report's sections in reading order (the footer follows)."""
    return [*text.intro_section(a, verdict_text), *text.ranking_section(a, headline), *text.paired_section(a),
            *text.deflated_section(a), *text.heatmap_section(figures), *text.equity_section(a, figures),
            *text.position_section(figures), *text.pnl_var_section(figures),
            *text.every_scenario_section(a, summary), *text.training_section(a, figures), *text.method_section(a)]


def _write_tables(folder: Path, a: Analysis, summary: pd.DataFrame, verdict_text: str) -> None:
    """``ranking.csv``, ``ranking_full.csv``, ``scenarios.csv`` and ``summary.yaml``."""
    atomic_write_csv(folder / "ranking.csv", ranking_table(a.ranking), index=False)
    atomic_write_csv(folder / "ranking_full.csv", a.ranking, index=False)
    atomic_write_csv(folder / "scenarios.csv", summary, index=False)
    atomic_write_text(folder / "summary.yaml", yaml.safe_dump(_plain({
        "verdict": verdict_text, "score": a.ranking.attrs.get("score"), "best_policy": a.order[0],
        "best_agent": a.agent, "best_baseline": a.baseline, "paired_tests": a.paired, "deflated_sharpe": a.deflated,
        "bars_per_year": a.bars_per_year, "settings": a.settings.__dict__, "notes": a.notes}),
        sort_keys=False, allow_unicode=True))


def _write_interactive(path: Path, a: Analysis, verdict_text: str, head: pd.DataFrame,
                       pnl: Figure | None) -> list[str]:
    """Write ``interactive.html`` (:mod:`agents.report.interactive`) from the numbers of this report.

    It shows the focus scenario (the test data when nothing is stressed) and the P&L plot's
    policy. Returns the names of the plots on the page.
    """
    from agents.report.interactive import InteractiveInputs, footer_text, render_interactive

    ranking = a.ranking
    scenario = a.focus or (BASELINE_SCENARIO if a.has_test else None)
    seed = a.seed_for(scenario) if scenario else None
    reasons = dict(zip(ranking["policy"], ranking.get("tier_reason", pd.Series([""] * len(ranking))), strict=True))
    rows = head.copy()
    rows["risk test"] = [reasons.get(p, "") if p else "" for p in rows["policy"]]
    cells = {}
    if scenario is not None and seed is not None:
        for p in a.order:
            frame = a.store.get(p, scenario, seed)
            if frame is not None:
                cells[p] = frame
    matrices = {m: scenario_matrix(a.results, m, a.order, a.scenarios)
                for m in ("sharpe_ratio", "total_return", "max_drawdown", "time_over_limit")}
    s = a.settings
    inputs = InteractiveInputs(
        title=text.title(a), verdict=verdict_text, ranking_rows=rows, notes=text.first_notes(a), order=a.order,
        units=a.units, scenario=scenario, seed=seed, window=a.window(scenario, seed) if scenario else None,
        cells=cells, matrices=matrices, drawdown_limit=s.drawdown_limit,
        time_over_limit_tolerance=s.time_over_limit_tolerance,
        pnl_policy=pnl.details["policy"] if pnl else None, nominal_rate=pnl.details["nominal"] if pnl else math.nan,
        footer=footer_text(a.run_dir.name.removesuffix(".partial")))
    page, drawn = render_interactive(inputs)
    atomic_write_text(path, page)
    return drawn


def _footer(run_dir: Path, argv: Sequence[str] | None, notes: list[str]) -> list[str]:
    manifest, problem = read_yaml(run_dir / "manifest.yaml")
    if problem:
        notes.append(problem)
    config, problem = read_yaml(run_dir / "config.yaml")
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
