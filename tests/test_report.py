"""The stress-test comparison report (agents/report/, scripts/compare.py) on a synthetic run folder.

The fixture writes what scripts/stress_test.py writes: results.csv (metrics from
agents.evaluation.metrics.summarise, so the numbers are self-consistent) and per-step cells, for three
policies (one agent with a planted edge), three scenarios (test data and two stressed ones)
and three seeds of 200 bars. Every policy sees the same market shocks per (scenario, seed), so
the paired test has something to pair.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from agents.report.build import ReportSettings, build_report
from agents.report.formatting import markdown_table
from agents.report.ranking import aligned_returns, deflated_sharpe, paired_test, rank_policies
from agents.report.results import CellStore, load_results
from agents.report.text import verdict
from simulator.common.errors import DataError
from agents.evaluation.metrics import summarise

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "compare.py"
SCENARIOS = ("baseline", "spread_x10", "snb_gap")
SEEDS = (0, 1, 2)
N_BARS = 200
BPY = 6240.0
START_EQUITY = 100_000.0
WINDOW = (80, 120)  # bars of the stress window
#: policy -> (kind, market weight, drift per bar): ppo carries the planted edge.
POLICIES = {"ppo": ("agent", 0.5, 1.5e-4), "vol_target": ("baseline", 0.5, 0.0),
            "fixed_fraction": ("baseline", 1.0, 0.0)}
STOPPED = ("fixed_fraction", "snb_gap", 2)  # this run is stopped out at the gap
SETTINGS = ReportSettings(seed=1, n_resamples=1000)


def _market(scenario: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar market returns and their true volatility; stressed scenarios triple it in the window."""
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario)])
    sd = np.full(N_BARS, 0.002)
    if scenario != "baseline":
        sd[WINDOW[0]:WINDOW[1]] *= 3.0
    m = rng.normal(0.0, 1.0, N_BARS) * sd
    if scenario == "snb_gap":
        m[100] -= 0.03
    return m, sd


def _cell(policy: str, scenario: str, seed: int, *, kind: str, weight: float, edge: float,
          noise_key: int) -> tuple[pd.DataFrame, dict]:
    m, sd = _market(scenario, seed)
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario), noise_key, 99])
    r = weight * m + edge + rng.normal(0.0, 5e-4, N_BARS)
    n = N_BARS
    stopped = np.zeros(n, dtype=bool)
    if (policy, scenario, seed) == STOPPED:
        r[100] = -0.45
        n = 101
        r = r[:n]
        stopped = np.zeros(n, dtype=bool)
        stopped[-1] = True
    equity = START_EQUITY * np.cumprod(1.0 + r)
    before = np.concatenate([[START_EQUITY], equity[:-1]])
    t = 500 + np.arange(n)
    stamps = pd.date_range("2024-03-04", periods=N_BARS, freq="1h", tz="UTC")[:n]
    exposure = weight * 10.0 * before * (1.0 + 0.1 * np.sin(np.arange(n) / 7.0))
    turnover = np.abs(np.diff(np.concatenate([[0.0], exposure])))
    costs = turnover * 1e-5
    var = 2.326 * sd[:n] * weight * before
    limit = 0.01 * before
    util = var / limit
    frame = pd.DataFrame({
        "step": np.arange(n), "t": t, "timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "equity": equity, "equity_before": before, "log_return": np.log1p(r), "costs": costs, "var": var,
        "var_limit": limit, "var_utilisation": util, "var_breach": util > 1 + 1e-9, "stopped_out": stopped,
        "margin_call": np.zeros(n, dtype=bool), "turnover": turnover, "exposure_EURUSD": exposure,
        "exposure_USDJPY": -0.3 * exposure, "shield_scale": np.ones(n),
    })
    pnl = equity - before
    row = summarise(equity=np.concatenate([[START_EQUITY], equity]), bars_per_year=BPY, turnover=turnover,
                    costs=costs, margin_calls=frame["margin_call"].to_numpy(), stop_outs=stopped,
                    var_breaches=frame["var_breach"].to_numpy(), utilisation=util,
                    var_forecast=np.where(var > 0, var, np.nan), realised_loss=-pnl)
    row.update(breach_rate=row["var_breaches"] / row["n_bars"], turnover_x_equity=row["turnover"] / START_EQUITY,
               mean_var_utilisation=float(util.mean()), var_nominal_rate=0.01, bars_per_year=BPY)
    stressed = scenario != "baseline"
    full = pd.date_range("2024-03-04", periods=N_BARS, freq="1h", tz="UTC")
    ident = {"policy": policy, "kind": kind, "scenario": scenario, "seed": seed,
             "stress_start": full[WINDOW[0]].isoformat() if stressed else "",
             "stress_end": full[WINDOW[1] - 1].isoformat() if stressed else ""}
    return frame, {**ident, **row}


def make_run(root: Path, policies: dict[str, tuple[str, float, float]] = POLICIES) -> Path:
    """A stress-test run folder like scripts/stress_test.py writes."""
    run = root / "stress-20260101-000000"
    rows = []
    for key, (policy, (kind, weight, edge)) in enumerate(policies.items()):
        for scenario in SCENARIOS:
            for seed in SEEDS:
                frame, row = _cell(policy, scenario, seed, kind=kind, weight=weight, edge=edge, noise_key=key)
                path = run / "cells" / policy / scenario / f"seed-{seed}.csv.gz"
                path.parent.mkdir(parents=True, exist_ok=True)
                frame.to_csv(path, index=False)
                rows.append(row)
    pd.DataFrame(rows).to_csv(run / "results.csv", index=False)
    (run / "manifest.yaml").write_text(yaml.safe_dump({
        "created_utc": "20260101-000000", "command": "stress_test.py --policies ppo vol_target fixed_fraction",
        "git_revision": "abc1234", "config": {"scenarios": list(SCENARIOS)}}))
    (run / "config.yaml").write_text(yaml.safe_dump({"scenarios": list(SCENARIOS), "seeds": list(SEEDS)}))
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("stress"))


@pytest.fixture(scope="module")
def report(run_dir):
    return build_report(run_dir, settings=SETTINGS, argv=["compare.py", str(run_dir)])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_report_writes_markdown_html_plots_and_ranking(report, run_dir) -> None:
    assert report.path == run_dir / "report"
    for name in ("report.md", "report.html", "ranking.csv", "scenarios.csv", "summary.yaml"):
        assert (report.path / name).stat().st_size > 0, name
    expected = {"heatmap_sharpe", "heatmap_drawdown", "heatmap_time_over_limit", "equity_1_baseline",
                "equity_2_snb_gap", "position_size", "pnl_var"}
    assert expected <= set(report.plots)
    for key, png in report.plots.items():
        assert png.parent == report.path and png.stat().st_size > 1000, key
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", key
    md = report.markdown.read_text()
    html = report.html.read_text()
    for png in report.plots.values():
        assert f"({png.name})" in md
    assert html.count("data:image/png;base64,") == len(report.plots) and ".png\"" not in html  # self-contained
    first_screen = md.split("## Best agent")[0]
    assert "**Verdict.**" in first_screen and "## Ranking" in first_screen
    assert "abc1234" in md and "stress_test.py --policies" in md  # footer: the stress test's revision and command
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".partial")]


def test_ranking_puts_the_planted_edge_first_with_intervals_around_the_means(report) -> None:
    ranking = report.ranking
    assert ranking["policy"].iloc[0] == "ppo"
    assert ranking["rank"].tolist() == [1, 2, 3]
    assert (ranking["stressed_runs"] == 6).all() and (ranking["test_runs"] == 3).all()
    for part in ("stressed", "test"):
        mean, low, high = (ranking[f"{part}_sharpe_{k}"].to_numpy() for k in ("mean", "low", "high"))
        assert np.isfinite([mean, low, high]).all()
        assert (low <= mean).all() and (mean <= high).all() and (low < high).all()
    fixed = ranking.set_index("policy").loc["fixed_fraction"]
    assert fixed["stressed_stopped_runs"] == 1 and fixed["test_stopped_runs"] == 0
    assert fixed["stressed_time_over_limit"] > 0
    on_disk = pd.read_csv(report.path / "ranking.csv")
    assert on_disk["policy"].tolist() == ranking["policy"].tolist()
    assert "ppo" in report.headline.splitlines()[2]  # first data row of the printed table


def test_paired_test_finds_the_planted_edge(report) -> None:
    pooled = report.paired["stressed (pooled)"]
    assert (pooled["policy_a"], pooled["policy_b"]) == ("ppo", "vol_target")
    assert pooled["n_cells"] == 6 and pooled["n_bars"] == 6 * N_BARS
    assert pooled["diff"] > 0 and pooled["low"] > 0 and pooled["p_value"] < 0.05
    assert pooled["low"] <= pooled["diff"] <= pooled["high"]
    assert {"test data", "spread_x10", "snb_gap"} <= set(report.paired)
    assert "ppo vs best baseline vol_target" in report.verdict and "significant at the 5% level: ppo beats" \
        in report.verdict


def test_paired_test_of_identical_policies_is_not_significant(run_dir) -> None:
    store = CellStore(run_dir)
    cells = [(s, seed) for s in SCENARIOS[1:] for seed in SEEDS]
    same = paired_test(store, "vol_target", "vol_target", cells, bars_per_year=BPY,
                       rng=np.random.default_rng(0), n_resamples=500)
    assert same["diff"] == 0.0 and same["p_value"] == 1.0
    # a clone in its own folder (same returns, another name) is no different
    clone = run_dir.parent / "clone"
    shutil.copytree(run_dir / "cells" / "vol_target", clone / "cells" / "vol_copy")
    shutil.copytree(run_dir / "cells" / "vol_target", clone / "cells" / "vol_target")
    twin = paired_test(CellStore(clone), "vol_copy", "vol_target", cells, bars_per_year=BPY,
                       rng=np.random.default_rng(0), n_resamples=500)
    assert twin["n_bars"] == 6 * N_BARS and twin["p_value"] > 0.5


def test_stopped_out_run_is_padded_flat_to_stay_paired(run_dir) -> None:
    store = CellStore(run_dir)
    returns, used = aligned_returns(store, ["fixed_fraction", "vol_target"], [("snb_gap", 2)])
    assert used == [("snb_gap", 2)]
    assert returns["fixed_fraction"].size == returns["vol_target"].size == N_BARS
    assert returns["fixed_fraction"][100] == pytest.approx(-0.45)
    assert (returns["fixed_fraction"][101:] == 0).all()


def test_deflated_sharpe_is_a_probability_that_falls_with_more_policies(report, run_dir) -> None:
    d = report.deflated
    assert d["policy"] == "ppo" and d["n_trials"] == 3
    assert 0.0 < d["dsr"] < 1.0 and d["dsr"] <= d["psr"]
    store = CellStore(run_dir)
    cells = [(s, seed) for s in SCENARIOS[1:] for seed in SEEDS]
    returns, _ = aligned_returns(store, list(POLICIES), cells)
    base = deflated_sharpe(returns, "ppo")
    assert base["dsr"] == pytest.approx(d["dsr"])
    # three more policies tried, like the first three but noisier: a higher bar to clear
    rng = np.random.default_rng(5)
    more = {**returns, **{f"{p}_v2": r + rng.normal(0, 2e-4, r.size) for p, r in returns.items() if p != "ppo"},
            "ppo_v2": returns["ppo"] + rng.normal(0, 2e-4, returns["ppo"].size)}
    wider = deflated_sharpe(more, "ppo")
    assert wider["n_trials"] == 6 and 0.0 < wider["dsr"] < base["dsr"]
    assert deflated_sharpe(returns, "ppo", n_trials=30)["dsr"] < base["dsr"]


def test_a_second_run_writes_report_2_and_leaves_the_first_untouched(report, run_dir) -> None:
    before = _snapshot(report.path)
    again = build_report(run_dir, settings=SETTINGS)
    assert again.path == run_dir / "report-2"
    assert _snapshot(report.path) == before
    assert again.ranking["policy"].tolist() == report.ranking["policy"].tolist()
    assert again.ranking.equals(report.ranking)  # same bootstrap seed, same numbers
    assert again.paired["stressed (pooled)"] == report.paired["stressed (pooled)"]
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".partial")]


def test_missing_column_is_one_line_naming_file_and_column(tmp_path, run_dir, capsys) -> None:
    bad = tmp_path / "bad-run"
    bad.mkdir()
    pd.read_csv(run_dir / "results.csv").drop(columns=["sharpe_ratio"]).to_csv(bad / "results.csv", index=False)
    with pytest.raises(DataError) as err:
        load_results(bad / "results.csv")
    message = str(err.value)
    assert "\n" not in message and "results.csv" in message and "'sharpe_ratio'" in message
    assert "stress_test.py" in message  # what to do
    rc = _compare().main([str(bad)])
    assert rc == 2
    out = capsys.readouterr()
    assert out.err.strip().count("\n") == 0 and "sharpe_ratio" in out.err and "results.csv" in out.err
    assert [p.name for p in bad.iterdir()] == ["results.csv"]  # nothing written


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda f: f.assign(kind="robot"), "'kind'"),
    (lambda f: f.assign(seed="x"), "'seed'"),
    (lambda f: pd.concat([f, f.iloc[:1]]), "duplicate run"),
    (lambda f: f.iloc[:0], "no rows"),
])
def test_malformed_results_are_one_line(tmp_path, run_dir, edit, needle) -> None:
    path = tmp_path / "results.csv"
    edit(pd.read_csv(run_dir / "results.csv")).to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_results(path)
    assert "\n" not in str(err.value) and needle in str(err.value) and "results.csv" in str(err.value)


def test_without_an_agent_the_verdict_says_so_and_skips_the_test(tmp_path, run_dir) -> None:
    results = load_results(run_dir / "results.csv")
    only = results[results["kind"] == "baseline"]
    ranking = rank_policies(only, rng=np.random.default_rng(0), n_resamples=200)
    text = verdict(ranking, None)
    assert "No agent in this run" in text and ranking["policy"].iloc[0] in text
    one_line = verdict(rank_policies(results, rng=np.random.default_rng(0), n_resamples=200),
                       {"diff": -0.2, "low": -0.5, "high": 0.1, "p_value": 0.23, "n_bars": 100})
    assert "not significant: ppo does not beat vol_target" in one_line and "\u22120.20" in one_line


def test_markdown_table_escapes_pipes_and_aligns() -> None:
    table = markdown_table(pd.DataFrame({"policy": ["a|b", "c"], "x": ["1.00", "-2.50"]}), left=("policy",))
    lines = table.splitlines()
    assert lines[0].startswith("| policy") and lines[1].endswith(":|") and "a\\|b" in lines[2]
    assert len({len(line) for line in lines}) == 1


def _compare():
    spec = importlib.util.spec_from_file_location("script_compare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_cli_help_exits_0() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "RUN_DIR" in done.stdout and "report" in done.stdout


def test_cli_writes_a_report_and_prints_its_path(tmp_path, capsys) -> None:
    run = make_run(tmp_path)
    rc = _compare().main([str(run), "--resamples", "300", "--scenario", "spread_x10", "--plot-seed", "1"])
    assert rc == 0
    out = capsys.readouterr().out
    assert f"report: {run / 'report' / 'report.html'}" in out
    assert "| rank" in out and "ppo" in out and "Verdict" not in out.splitlines()[0]
    assert (run / "report" / "equity_2_spread_x10.png").is_file()
    assert _compare().main([str(run), "--scenario", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_without_cells_the_report_still_ranks_and_says_what_it_skipped(tmp_path, run_dir) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run_dir / "results.csv", bare / "results.csv")
    result = build_report(bare, settings=ReportSettings(n_resamples=200))
    assert result.ranking["policy"].iloc[0] == "ppo" and result.deflated is None
    assert "no paired per-step records" in result.verdict
    assert set(result.plots) == {"heatmap_sharpe", "heatmap_drawdown", "heatmap_time_over_limit"}
    assert "no cells/" in result.markdown.read_text()


def test_the_verdict_says_each_risk_figure_once_and_none_for_a_policy_that_never_trades(run_dir) -> None:
    results = load_results(run_dir / "results.csv")
    ranking = rank_policies(results, rng=np.random.default_rng(0), n_resamples=200, drawdown_limit=1e-6)
    text = verdict(ranking, None)
    assert text.count("worst drawdown") == 1  # in the reason, not again in the figures
    flat = results[results["policy"] == "vol_target"].assign(policy="flat", turnover_x_equity=0.0,
                                                             var_exceptions=0)
    ranking = rank_policies(flat, rng=np.random.default_rng(0), n_resamples=200)
    assert "VaR exceptions" not in verdict(ranking, None)


def test_a_registered_plot_is_drawn_and_shown_in_its_section_without_touching_the_writer(tmp_path, run_dir,
                                                                                           monkeypatch) -> None:
    from agents.report import plots

    monkeypatch.setattr(plots, "PLOTS", dict(plots.PLOTS))  # the registration below ends with the test

    @plots.register("heatmap_return", section="scenarios")
    def _return(a, folder):
        matrix = plots.scenario_matrix(a.results, "total_return", a.order, a.scenarios)
        path = plots.plot_heatmap(matrix, folder / "heatmap_return.png", title="Mean return")
        return [plots.Figure("heatmap_return", "scenarios", path, "Mean return by policy and scenario")], []

    result = build_report(run_dir, out_dir=tmp_path, settings=ReportSettings(n_resamples=200))
    assert list(result.plots)[-1] == "heatmap_return"  # drawn last, in registration order
    md = result.markdown.read_text()
    section = md.split("## Sharpe ratio, drawdown and limit breaches by scenario")[1].split("\n## ")[0]
    assert "![Mean return by policy and scenario](heatmap_return.png)" in section
    assert (result.path / "heatmap_return.png").read_bytes()[:4] == b"\x89PNG"


def test_the_plot_registry_refuses_a_name_twice_and_an_unknown_section() -> None:
    from agents.report.plots import PLOTS, register

    before = dict(PLOTS)
    with pytest.raises(ValueError, match="registered twice"):
        register("heatmap_sharpe", section="scenarios")(lambda a, folder: ([], []))
    with pytest.raises(ValueError, match="section 'nowhere'"):
        register("elsewhere", section="nowhere")
    assert PLOTS == before


def test_cell_columns_are_checked_against_the_cell_schema() -> None:
    from agents.evaluation import cells

    assert cells.columns("equity", "equity_before", "step") == ("equity", "equity_before", "step")
    with pytest.raises(KeyError, match="equty"):
        cells.columns("equity", "equty")


def test_policies_with_the_same_metrics_but_other_positions_are_not_merged(tmp_path, run_dir) -> None:
    from agents.report.results import exposure_columns, merge_identical_policies, read_cell

    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("report*"))
    results = load_results(run / "results.csv")
    twin = results[results["policy"] == "vol_target"].assign(policy="vol_twin")
    both = pd.concat([results, twin], ignore_index=True)
    shutil.copytree(run / "cells" / "vol_target", run / "cells" / "vol_twin")
    assert exposure_columns(read_cell(run / "cells" / "vol_twin" / "baseline" / "seed-0.csv.gz")) == [
        "exposure_EURUSD", "exposure_USDJPY"]
    merged, notes = merge_identical_policies(both, CellStore(run))
    assert "vol_twin" not in set(merged["policy"]) and "vol_twin acted like vol_target" in notes[0]
    # rounding (1e-13 relative, as a shield scaling two sizes to one limit leaves) is the same policy;
    # a real difference (1e-6) is not
    for rel, same in ((1e-13, True), (1e-6, False)):
        moved = both.copy()
        rows = moved["policy"] == "vol_twin"
        moved.loc[rows, "sharpe_ratio"] = moved.loc[rows, "sharpe_ratio"] * (1 + rel)
        merged, _ = merge_identical_policies(moved, CellStore(run))
        assert ("vol_twin" not in set(merged["policy"])) == same, rel
    for path in (run / "cells" / "vol_twin").rglob("*.csv.gz"):  # same equity, other positions
        frame = pd.read_csv(path)
        frame["exposure_USDJPY"] = -frame["exposure_USDJPY"]
        frame.to_csv(path, index=False)
    kept, notes = merge_identical_policies(both, CellStore(run))
    assert "vol_twin" in set(kept["policy"]) and not notes
