"""The interactive report (agents/report/interactive.py) and the plot fixes the static one shares with it.

The run folder is tests/test_report.py's synthetic stress run plus a ``flat`` baseline that never
trades (it ranks first: it passes every risk test) and a plan naming the account currency. The
browser test opens ``interactive.html`` in Debian's headless ``chromium`` (installed by .ci/run);
it is skipped only where no chromium binary exists.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from agents.report.build import build_report
from agents.report.interactive import InteractiveInputs, figure_heatmap
from agents.report.plots import plot_heatmap
from agents.report.style import (
    account_units,
    diverging_limits,
    policy_styles,
    robust_limits,
    visible_window,
)
from agents.evaluation.metrics import summarise
from tests.test_report import BPY, SCENARIOS, SEEDS, SETTINGS, START_EQUITY, make_run

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def add_flat(run: Path) -> None:
    """Add a ``flat`` baseline (no position, equity constant) to every (scenario, seed) of ``run``."""
    results = pd.read_csv(run / "results.csv")
    rows = []
    for scenario in SCENARIOS:
        for seed in SEEDS:
            src = pd.read_csv(run / "cells" / "vol_target" / scenario / f"seed-{seed}.csv.gz")
            frame = src.assign(equity=START_EQUITY, equity_before=START_EQUITY, log_return=0.0, costs=0.0, var=0.0,
                               var_utilisation=0.0, var_breach=False, turnover=0.0, exposure_EURUSD=0.0,
                               exposure_USDJPY=0.0)
            path = run / "cells" / "flat" / scenario / f"seed-{seed}.csv.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
            n = len(frame)
            row = summarise(equity=np.full(n + 1, START_EQUITY), bars_per_year=BPY, turnover=np.zeros(n),
                            costs=np.zeros(n), margin_calls=np.zeros(n, bool), stop_outs=np.zeros(n, bool),
                            var_breaches=np.zeros(n, bool), utilisation=np.zeros(n),
                            var_forecast=np.full(n, np.nan), realised_loss=np.zeros(n))
            base = results[(results["policy"] == "vol_target") & (results["scenario"] == scenario)
                           & (results["seed"] == seed)].iloc[0]
            row.update(policy="flat", kind="baseline", scenario=scenario, seed=seed,
                       stress_start=base["stress_start"], stress_end=base["stress_end"], breach_rate=0.0,
                       turnover_x_equity=0.0, mean_var_utilisation=0.0, var_nominal_rate=0.01, bars_per_year=BPY)
            rows.append(row)
    pd.concat([results, pd.DataFrame(rows)], ignore_index=True).to_csv(run / "results.csv", index=False)
    (run / "config.yaml").write_text(yaml.safe_dump({
        "training": {"env": {"account": {"currency": "USD", "initial_equity": START_EQUITY}}},
        "scenarios": list(SCENARIOS), "seeds": list(SEEDS)}))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("stress-flat"))
    add_flat(run)
    return build_report(run, settings=SETTINGS, argv=["compare.py", str(run)])


def _figures(page: str) -> dict[str, dict]:
    spec = re.search(r'<script type="application/json" id="report-figures">(.*?)</script>', page, re.S).group(1)
    divs = dict(re.findall(r'<div class="plot" id="(plot-[^"]+)" data-plot="([^"]+)">', page))
    return {divs[s["div"]]: s["figure"] for s in json.loads(spec.replace("<\\/", "</"))}


def _values(array) -> np.ndarray:
    """A Plotly JSON array (a list, or plotly.py's base64 typed array) as numpy."""
    if isinstance(array, dict):
        import base64

        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
    return np.asarray(array, dtype=object)


# --------------------------------------------------------------------------------------------------
# The pure helpers
# --------------------------------------------------------------------------------------------------

def test_ten_policies_get_ten_distinct_colour_and_dash_pairs() -> None:
    styles = policy_styles([f"p{i}" for i in range(10)])
    assert len({(s.colour, s.dash) for s in styles.values()}) == 10
    assert len({s.colour for s in styles.values()}) == 10
    first = list(styles.values())[:6]
    assert len({s.dash for s in first}) == 6  # overlapping lines differ in dash too


def test_robust_limits_keep_the_bulk_in_view_and_count_the_gap() -> None:
    rng = np.random.default_rng(0)
    pnl = np.concatenate([rng.normal(0, 2000, 1000), [-720_000.0]])
    lo, hi, outside = robust_limits(pnl)
    assert -20_000 < lo < -5_000 and 5_000 < hi < 20_000
    assert 1 <= outside <= 0.01 * pnl.size  # the gap and at most 1% of bars lie beyond the view
    flat_lo, flat_hi, flat_out = robust_limits(np.zeros(10))
    assert flat_lo < 0 < flat_hi and flat_out == 0  # never an empty range


def test_a_one_day_window_at_the_end_of_five_years_is_drawn_visibly_and_inside_the_axis() -> None:
    axis = (pd.Timestamp("2013-01-01"), pd.Timestamp("2018-01-01"))
    window = (pd.Timestamp("2017-12-31"), pd.Timestamp("2018-01-01"))
    lo, hi = visible_window(*window, *axis)
    assert hi - lo >= 0.012 * (axis[1] - axis[0]) * 0.999
    assert axis[0] <= lo <= window[0] and window[1] <= hi <= axis[1]
    wide = (pd.Timestamp("2015-01-01"), pd.Timestamp("2016-01-01"))
    assert visible_window(*wide, *axis) == wide  # a visible window is left as it is


def test_diverging_limits_are_symmetric_about_the_centre() -> None:
    assert diverging_limits(np.array([[-0.4, 2.0], [np.nan, 0.3]]), 0.0) == (-2.0, 2.0)
    assert diverging_limits(np.array([10.0, 40.0]), 25.0) == (10.0, 40.0)
    assert diverging_limits(np.zeros((2, 2)), 0.0) == (-1.0, 1.0)


def test_account_units_come_from_the_plan_and_results_and_fall_back_in_words() -> None:
    results = pd.DataFrame({"initial_equity": [1_000_000.0, 1_000_000.0]})
    plan = {"training": {"env": {"account": {"currency": "EUR"}}}}
    units = account_units(results, plan, None)
    assert units.axis("equity") == "equity, EUR (start 1,000,000)" and units.start == "1,000,000 EUR"
    assert account_units(results, None, {"config": plan}).currency == "EUR"
    unknown = account_units(pd.DataFrame({"x": [1]}))
    assert unknown.axis("P&L") == "P&L, account currency" and unknown.start == "n/a"


def test_an_all_zero_matrix_is_painted_neutral_and_says_so(tmp_path) -> None:
    zero = pd.DataFrame(np.zeros((3, 2)), index=["a", "b", "c"], columns=["s1", "s2"])
    signal = zero.copy()
    signal.iloc[0, 0] = 0.2
    from matplotlib.image import imread

    def saturated_pixels(matrix: pd.DataFrame) -> int:
        png = plot_heatmap(matrix, tmp_path / "h.png", title="Mean time over the VaR limit", cmap="RdYlGn_r",
                           center=1.0, scale=100.0)
        rgb = imread(png)[..., :3]
        return int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.25).sum())

    assert saturated_pixels(zero) == 0  # no orange (nor any colour) where there is no signal
    assert saturated_pixels(signal) > 1000
    inputs = InteractiveInputs(title="t", verdict="v", ranking_rows=pd.DataFrame(), order=["a", "b", "c"],
                               matrices={"time_over_limit": zero, "sharpe_ratio": signal - 0.05})
    fig = figure_heatmap(inputs, "time_over_limit").to_plotly_json()
    trace = fig["data"][0]
    assert "0 everywhere" in fig["layout"]["title"]["text"] and trace["showscale"] is False
    assert {c[1] for c in trace["colorscale"]} == {"#e6e6e6"}
    sharpe = figure_heatmap(inputs, "sharpe_ratio").to_plotly_json()["data"][0]
    assert sharpe["zmid"] == 0.0 and sharpe["zmin"] == -sharpe["zmax"]


# --------------------------------------------------------------------------------------------------
# The page (no browser)
# --------------------------------------------------------------------------------------------------

def test_interactive_page_is_self_contained_with_verdict_and_ranking_first(report) -> None:
    page = report.interactive.read_text(encoding="utf-8")
    assert report.interactive.parent == report.path
    assert "<script src" not in page and "<link" not in page  # nothing fetched
    assert page.count("* plotly.js v") == 1  # plotly.js inline, once
    verdict, ranking = page.index('id="verdict"'), page.index('<table id="ranking">')
    first_plot = page.index('<div class="plot"')
    assert verdict < ranking < first_plot
    table = page[ranking:page.index("</table>", ranking)]
    assert [p for p in report.ranking["policy"] if f">{p}<" in table] == report.ranking["policy"].tolist()
    assert set(report.interactive_plots) == {"equity_drawdown_position", "heatmap_sharpe", "heatmap_return",
                                             "heatmap_drawdown", "heatmap_time_over_limit", "pnl_var"}
    assert "mean costs, USD" in table


def test_interactive_equity_plot_names_units_shades_the_window_and_styles_each_policy(report) -> None:
    fig = _figures(report.interactive.read_text(encoding="utf-8"))["equity_drawdown_position"]
    layout = fig["layout"]
    assert layout["yaxis"]["title"]["text"] == "equity, USD (start 100,000)"
    assert "%" in layout["yaxis2"]["title"]["text"] and "×" in layout["yaxis3"]["title"]["text"]
    assert "UTC" in layout["xaxis3"]["title"]["text"]
    lines = [t for t in fig["data"] if t.get("mode") == "lines" and t.get("showlegend") is not False]
    assert {t["legendgroup"] for t in lines} == set(report.ranking["policy"])
    assert len({(t["line"]["color"], t["line"]["dash"]) for t in lines}) == len(lines)
    rects = [s for s in layout["shapes"] if s["type"] == "rect"]
    assert rects and all(s["x0"] < s["x1"] for s in rects)
    assert all("USD" in t["hovertemplate"] for t in fig["data"] if t.get("yaxis", "y") == "y")


def test_pnl_against_var_skips_the_flat_policy_and_keeps_the_gap_from_flattening_it(report) -> None:
    assert report.ranking["policy"].iloc[0] == "flat"  # ranks first: it passes every risk test by not trading
    page = report.interactive.read_text(encoding="utf-8")
    fig = _figures(page)["pnl_var"]
    title = fig["layout"]["title"]["text"]
    assert "flat" not in title.split(" on ")[0] and "best-ranked policy that trades" in title
    low, high = fig["layout"]["yaxis"]["range"]
    pnl = _values(fig["data"][0]["y"]).astype(float)
    assert pnl.min() < low  # the gap bar is out of view...
    bulk = np.quantile(pnl, 0.995) - np.quantile(pnl, 0.005)
    assert bulk > 0.5 * (high - low)  # ...and the other bars fill it
    assert any("beyond the view" in a["text"] for a in fig["layout"]["annotations"])
    assert fig["layout"]["yaxis"]["title"]["text"] == "P&L per bar, USD (start 100,000)"
    md = report.markdown.read_text()
    pnl_section = md.split("## P&L against VaR")[1].split("##")[0]
    assert "flat" not in pnl_section and "best-ranked policy that trades" in pnl_section
    assert "USD, against a starting equity of 100,000 USD" in md


# --------------------------------------------------------------------------------------------------
# The page in a real browser
# --------------------------------------------------------------------------------------------------

def _chromium_dom(page: Path) -> tuple[str, str]:
    """The DOM of ``page`` after load (plots drawn) and chromium's log, from headless chromium."""
    done = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def _errors_element(dom: str) -> tuple[str, bool]:
    match = re.search(r'<pre id="report-errors"([^>]*)>(.*?)</pre>', dom, re.S)
    assert match, "the error box is missing from the page"
    return match.group(2), "hidden" in match.group(1)


def _console_messages(log: str) -> list[str]:
    """Console messages of the page in chromium's log (``INFO:CONSOLE`` whatever their level)."""
    return [line for line in log.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (CI installs Debian's chromium in .ci/run)")
def test_interactive_page_renders_in_headless_chromium_without_errors(report, tmp_path) -> None:
    dom, log = _chromium_dom(report.interactive)
    text, hidden = _errors_element(dom)
    assert hidden and text == "", text
    assert _console_messages(log) == []  # a healthy page logs nothing at all
    assert f'data-plots-rendered="{len(report.interactive_plots)}"' in dom
    starts = sorted((dom.index(f'id="plot-{name}"'), name) for name in report.interactive_plots)
    ends = [s for s, _ in starts[1:]] + [dom.index("<footer")]
    for (start, name), end in zip(starts, ends, strict=True):
        assert "<svg" in dom[start:end] and "main-svg" in dom[start:end], f"{name}: no SVG drawn"
    table = re.search(r'<table id="ranking">.*?</table>', dom, re.S).group(0)
    assert all(f">{p}<" in table for p in report.ranking["policy"])
    # the same check on a copy with a planted error must fail: the harness does see errors
    broken = tmp_path / "broken.html"
    page = report.interactive.read_text(encoding="utf-8")
    broken.write_text(page.replace("</body>", "<script>console.error('planted failure'); notAFunction();</script>"
                                              "</body>"), encoding="utf-8")
    dom, log = _chromium_dom(broken)
    text, hidden = _errors_element(dom)
    assert not hidden and "planted failure" in text and "notAFunction" in text
    logged = "\n".join(_console_messages(log))
    assert "planted failure" in logged and "notAFunction" in logged


def test_without_stressed_scenarios_the_page_shows_the_test_data(tmp_path) -> None:
    run = make_run(tmp_path)
    results = pd.read_csv(run / "results.csv")
    results[results["scenario"] == "baseline"].to_csv(run / "results.csv", index=False)
    result = build_report(run, settings=SETTINGS)
    assert "equity_drawdown_position" in result.interactive_plots and "pnl_var" not in result.interactive_plots
    fig = _figures(result.interactive.read_text(encoding="utf-8"))["equity_drawdown_position"]
    assert "baseline" in fig["layout"]["title"]["text"]
    assert fig["layout"]["yaxis"]["title"]["text"] == "equity, account currency (start 100,000)"
