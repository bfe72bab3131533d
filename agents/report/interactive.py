"""The interactive stress report: one self-contained ``interactive.html`` with Plotly plots.

Why: a risk manager wants to hover over the day a policy fell, zoom into the stress window and
switch policies off, which static PNGs cannot do. The page is written beside the static report
(``report/interactive.html``) by :func:`agents.report.build.build_report` and needs nothing from the
network: plotly.js is embedded once, inline, and every figure is a JSON spec drawn by a small
script at the end of the page. First screen: the verdict and the risk-first ranking table (the
same numbers as ``report.md``); then the plots of :data:`PLOTS`, in order.

A small inline script in the ``<head>`` records JavaScript errors (``window.onerror``, unhandled
promise rejections, ``console.error``) and shows them at the top of the page, so a plot that
fails to draw says so instead of leaving a blank space; when every figure is drawn the page sets
``data-plots-rendered`` on ``<body>`` (the browser test reads both).
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from agents.report.results import EQUITY, EQUITY_BEFORE, LEVERAGE, PNL, STOPPED_OUT, TIMESTAMP, VAR, T
from agents.report.style import (
    AccountUnits,
    PolicyStyle,
    diverging_limits,
    is_all_zero,
    policy_styles,
    robust_limits,
    visible_window,
)
from agents.evaluation.metrics import drawdown_series

__all__ = ["InteractiveInputs", "PLOTS", "figure_equity_drawdown_position", "figure_heatmap", "figure_pnl_var",
           "render_interactive"]

Window = tuple[pd.Timestamp, pd.Timestamp] | None


@dataclass(frozen=True, kw_only=True)
class InteractiveInputs:
    """Everything the interactive page shows, computed by the static report (one source of numbers).

    ``cells``: per policy, the normalised per-step records (:func:`agents.report.results.read_cell`) of the
    focus ``scenario`` and ``seed`` (policies without records left out). ``matrices``: metric name
    → policy × scenario table (means over seeds, fractions). ``pnl_policy``: the best-ranked policy
    that trades on the focus run (None: no plot); ``nominal_rate``: its VaR's nominal exception rate.
    """

    title: str
    verdict: str
    ranking_rows: pd.DataFrame
    notes: Sequence[str] = ()
    order: Sequence[str] = ()
    units: AccountUnits = AccountUnits(None, math.nan)
    scenario: str | None = None
    seed: int | None = None
    window: Window = None
    cells: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    matrices: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    drawdown_limit: float = 0.25
    time_over_limit_tolerance: float = 0.01
    pnl_policy: str | None = None
    nominal_rate: float = math.nan
    footer: str = ""


# --------------------------------------------------------------------------------------------------
# Figures (each a function of the inputs; returns a plotly Figure, or None when there is nothing to draw)
# --------------------------------------------------------------------------------------------------

def _x(frame: pd.DataFrame) -> tuple[list[str] | np.ndarray, pd.DatetimeIndex | None]:
    """x values of a cell: ``YYYY-MM-DD HH:MM`` (UTC) strings when every timestamp parsed, else the bar index."""
    ts = frame[TIMESTAMP]
    if len(ts) and ts.notna().all():
        index = pd.DatetimeIndex(ts).tz_convert("UTC").tz_localize(None)
        return list(index.strftime("%Y-%m-%d %H:%M")), index
    return frame[T].to_numpy(), None


def _stamp(value: pd.Timestamp) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


def _shade(fig: Any, window: Window, index: pd.DatetimeIndex | None, **where: Any) -> None:
    """Shade the stress window, at least 1.2% of the axis wide (a one-bar gap stays visible), labelled once.

    ``index``: the bar times on the axis (the x-range is pinned to them, so nothing widens it).
    """
    if index is None or not len(index):
        return
    fig.update_xaxes(range=[_stamp(index[0]), _stamp(index[-1])])
    if window is None:
        return
    start = window[0].tz_convert("UTC").tz_localize(None)
    end = window[1].tz_convert("UTC").tz_localize(None)
    lo, hi = visible_window(start, end, index[0], index[-1])
    widened = (lo, hi) != (start, end)
    label = (f"stress window {_stamp(start)} to {_stamp(end)} UTC" + (" (band drawn wider to be visible)"
                                                                      if widened else ""))
    fig.add_vrect(x0=_stamp(lo), x1=_stamp(hi), fillcolor="#E69F00", opacity=0.22, line_width=0, layer="below",
                  **where)
    right = (lo - index[0]) > (index[-1] - hi)  # label on the side with room
    fig.add_annotation(x=_stamp(lo if right else hi), y=1.0, xref="x", yref="paper", yanchor="top",
                       xanchor="right" if right else "left", text=label, showarrow=False,
                       font={"size": 11, "color": "#8a5a00"})


def _layout(fig: Any, title: str, height: int) -> None:
    fig.update_layout(title={"text": title, "x": 0.01, "xanchor": "left"}, height=height, template="plotly_white",
                      margin={"l": 80, "r": 30, "t": 90, "b": 50},
                      legend={"orientation": "h", "x": 1.0, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
                      font={"family": "Helvetica, Arial, sans-serif", "size": 12})


def figure_equity_drawdown_position(inputs: InteractiveInputs) -> Any:
    """Equity (account currency), drawdown (% of the running peak) and position (gross exposure / equity, ×).

    One row each, sharing the time axis; one colour and dash pattern per policy, the same in
    every row (a legend click hides a policy in all three); a stopped-out run ends with an ``x``.
    """
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    if not inputs.cells or inputs.scenario is None:
        return None
    styles = policy_styles(inputs.order)
    units = inputs.units
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.05, row_heights=[0.5, 0.25, 0.25])
    index = None
    money = units.money
    for p in inputs.order:
        frame = inputs.cells.get(p)
        if frame is None:
            continue
        style: PolicyStyle = styles[p]
        x, idx = _x(frame)
        if idx is not None:
            index = idx if index is None else index.union(idx)
        equity = frame[EQUITY].to_numpy(np.float64)
        start = np.concatenate([frame[EQUITY_BEFORE].to_numpy(np.float64)[:1], equity])
        dd = -100.0 * drawdown_series(start)[1:]
        stopped = bool(frame[STOPPED_OUT].any())
        name = p + (" (stopped out)" if stopped else "")
        line = {"color": style.colour, "dash": style.dash, "width": 1.8}
        common = {"x": x, "mode": "lines", "legendgroup": p, "line": line}
        fig.add_trace(go.Scatter(y=equity, name=name, hovertemplate=f"{p}: %{{y:,.0f}} {money}<extra></extra>",
                                 **common), row=1, col=1)
        fig.add_trace(go.Scatter(y=dd, name=name, showlegend=False,
                                 hovertemplate=f"{p}: %{{y:.2f}}% drawdown<extra></extra>", **common), row=2, col=1)
        fig.add_trace(go.Scatter(y=frame[LEVERAGE].to_numpy(np.float64), name=name, showlegend=False,
                                 hovertemplate=f"{p}: %{{y:.2f}}× equity<extra></extra>", **common), row=3, col=1)
        if stopped:
            fig.add_trace(go.Scatter(x=x[-1:], y=equity[-1:], mode="markers", legendgroup=p, showlegend=False,
                                     marker={"symbol": "x", "size": 11, "color": style.colour},
                                     hovertemplate=f"{p} stopped out: %{{y:,.0f}} {money}<extra></extra>"),
                          row=1, col=1)
    if math.isfinite(units.initial_equity):
        fig.add_hline(y=units.initial_equity, line={"color": "#999", "width": 1}, row=1, col=1)
    _shade(fig, inputs.window, index, row="all", col=1)
    fig.update_yaxes(title_text=units.axis("equity"), tickformat=",.0f", row=1, col=1)
    fig.update_yaxes(title_text="drawdown, % of peak", row=2, col=1)
    fig.update_yaxes(title_text="gross exposure / equity (×)", row=3, col=1)
    fig.update_xaxes(title_text="bar time (UTC)" if index is not None else "bar index t", row=3, col=1)
    _layout(fig, f"Equity, drawdown and position: {inputs.scenario}, seed {inputs.seed}", 760)
    fig.update_layout(hovermode="x unified")
    return fig


_HEATMAPS: dict[str, tuple[str, str, str, bool]] = {
    # metric: (title, colour-bar unit, hover number format, higher is better)
    "sharpe_ratio": ("Mean Sharpe ratio (annualised), centred at 0", "Sharpe ratio", ".2f", True),
    "total_return": ("Mean total return, centred at 0", "% of starting equity", ".2f", True),
    "max_drawdown": ("Mean max drawdown, centred at the drawdown limit", "% of peak equity", ".1f", False),
    "time_over_limit": ("Mean time over the VaR limit, centred at the tolerance", "% of bars", ".2f", False),
}


def figure_heatmap(inputs: InteractiveInputs, metric: str) -> Any:
    """Policy × scenario heatmap of ``metric`` on a diverging scale centred where good turns bad.

    Centres: Sharpe ratio and return at 0, max drawdown at the drawdown limit, time over the
    VaR limit at its tolerance; the limits are symmetric about the centre. A matrix that is 0
    everywhere (time over the limit under a shield) is painted one neutral grey, no colour bar,
    and its title says "0 everywhere": nothing to read into it.
    """
    import plotly.graph_objects as go

    matrix = inputs.matrices.get(metric)
    if matrix is None or not np.isfinite(matrix.to_numpy(np.float64)).any():
        return None
    title, unit, fmt, higher_better = _HEATMAPS[metric]
    scale = 1.0 if metric == "sharpe_ratio" else 100.0
    z = matrix.to_numpy(np.float64) * scale
    center = {"sharpe_ratio": 0.0, "total_return": 0.0, "max_drawdown": 100.0 * inputs.drawdown_limit,
              "time_over_limit": 100.0 * inputs.time_over_limit_tolerance}[metric]
    text = [[("n/a" if not math.isfinite(v) else format(v, fmt) + ("%" if scale != 1.0 else "")) for v in row]
            for row in z]
    zero = is_all_zero(z)
    common = {"z": z, "x": [str(c) for c in matrix.columns], "y": [str(i) for i in matrix.index], "text": text,
              "texttemplate": "%{text}", "xgap": 2, "ygap": 2,
              "hovertemplate": f"policy %{{y}}<br>scenario %{{x}}<br>{unit}: %{{z:{fmt}}}<extra></extra>"}
    if zero:
        trace = go.Heatmap(colorscale=[[0, "#e6e6e6"], [1, "#e6e6e6"]], showscale=False, zmin=-1, zmax=1, **common)
        title = title.split(",")[0] + " — 0 everywhere (no policy was ever over the limit)" \
            if metric == "time_over_limit" else title.split(",")[0] + " — 0 everywhere"
    else:
        lo, hi = diverging_limits(z, center, floor=None if higher_better else 0.0)
        trace = go.Heatmap(colorscale="RdYlGn", reversescale=not higher_better, zmid=center, zmin=lo, zmax=hi,
                           colorbar={"title": {"text": unit}}, **common)
    fig = go.Figure(trace)
    _layout(fig, title, max(260, 60 + 34 * len(matrix.index) + 80))
    fig.update_yaxes(autorange="reversed", title_text="policy (rank order)")
    fig.update_xaxes(title_text="scenario", side="bottom")
    return fig


def figure_pnl_var(inputs: InteractiveInputs) -> Any:
    """P&L per bar (account currency) against −VaR, exceptions marked, on a robust y-range.

    The view holds the 0.5–99.5% quantiles of P&L and −VaR (so one gap bar does not flatten
    the rest); bars beyond it are drawn as triangles on the edge of the view, their true value
    on hover, and counted in a note on the plot.
    """
    import plotly.graph_objects as go

    p = inputs.pnl_policy
    frame = inputs.cells.get(p) if p else None
    if frame is None:
        return None
    units = inputs.units
    money = units.money
    x, index = _x(frame)
    x = np.asarray(x, dtype=object)
    pnl = frame[PNL].to_numpy(np.float64)
    var = frame[VAR].to_numpy(np.float64)
    held = np.isfinite(var) & (var > 0)
    exc = held & (-pnl > var)
    lo, hi, _ = robust_limits(np.concatenate([pnl, -var[held]]))
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=pnl, name="P&L per bar", marker={"color": np.where(exc, "#D55E00", "#0072B2"),
                                                                 "line": {"width": 0}},
                         hovertemplate=f"%{{x}}<br>P&L %{{y:,.0f}} {money}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=np.where(held, -var, np.nan), mode="lines", name="−VaR (one bar)",
                             line={"color": "#D55E00", "width": 1.4, "dash": "dash"},
                             hovertemplate=f"−VaR %{{y:,.0f}} {money}<extra></extra>"))
    if exc.any():
        fig.add_trace(go.Scatter(x=x[exc], y=np.clip(pnl[exc], lo, hi), mode="markers",
                                 name=f"exceptions ({int(exc.sum())})",
                                 marker={"symbol": "circle-open", "size": 8, "color": "#D55E00"},
                                 customdata=pnl[exc], hovertemplate=f"exception: %{{customdata:,.0f}} {money}"
                                                                    f"<extra></extra>"))
    outside = (pnl < lo) | (pnl > hi)
    if outside.any():
        edge = np.where(pnl[outside] < lo, lo, hi)
        symbol = np.where(pnl[outside] < lo, "triangle-down", "triangle-up")
        fig.add_trace(go.Scatter(x=x[outside], y=edge, mode="markers", name="beyond the view",
                                 marker={"symbol": symbol, "size": 12, "color": "#000"},
                                 customdata=pnl[outside],
                                 hovertemplate=f"%{{x}}<br>P&L %{{customdata:,.0f}} {money} (beyond the view)"
                                               f"<extra></extra>"))
        worst = int(np.argmin(pnl)) if pnl.min() < lo else int(np.argmax(pnl))
        k = int(outside.sum())
        note = (f"{k} bar{'s' if k != 1 else ''} beyond the view (▲▼ on the edge; "
                f"largest {pnl[worst]:,.0f} {money} at {x[worst]}); the view holds 99% of bars")
        fig.add_annotation(text=note, xref="paper", yref="paper", x=0.0, y=1.0, xanchor="left", yanchor="bottom",
                           showarrow=False, font={"size": 11, "color": "#444"})
    _shade(fig, inputs.window, index)
    fig.update_yaxes(range=[lo, hi], title_text=units.axis("P&L per bar"), tickformat=",.0f")
    fig.update_xaxes(title_text="bar time (UTC)" if index is not None else "bar index t")
    n_held = int(held.sum())
    rate = f"{exc.sum() / n_held:.1%}" if n_held else "n/a"
    nominal = f" vs {inputs.nominal_rate:.1%} nominal" if math.isfinite(inputs.nominal_rate) else ""
    _layout(fig, f"P&L against VaR: {p} (best-ranked policy that trades) on {inputs.scenario}, seed {inputs.seed} — "
                 f"{int(exc.sum())} exceptions in {n_held} bars with a position ({rate}{nominal})", 460)
    fig.update_layout(bargap=0)
    return fig


#: The plots of the page, in page order: name → function of the inputs (None: nothing to draw).
PLOTS: dict[str, Callable[[InteractiveInputs], Any]] = {
    "equity_drawdown_position": figure_equity_drawdown_position,
    "heatmap_sharpe": lambda i: figure_heatmap(i, "sharpe_ratio"),
    "heatmap_return": lambda i: figure_heatmap(i, "total_return"),
    "heatmap_drawdown": lambda i: figure_heatmap(i, "max_drawdown"),
    "heatmap_time_over_limit": lambda i: figure_heatmap(i, "time_over_limit"),
    "pnl_var": figure_pnl_var,
}


# --------------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1320px; margin: 1em auto;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.45em; margin: 0.3em 0; }
h2 { font-size: 1.15em; margin: 1.2em 0 0.4em; border-bottom: 1px solid #ddd; }
.verdict { font-size: 1.0em; background: #f6f8fa; border-left: 4px solid #0072B2; padding: 0.5em 0.8em; }
table { border-collapse: collapse; font-size: 0.84em; margin: 0.4em 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.2em 0.5em; text-align: right; white-space: nowrap; }
th { background: #eef1f4; }
td.l, th.l { text-align: left; }
td.reason { text-align: left; white-space: normal; max-width: 26em; color: #444; }
tr.first td { border-top: 2px solid #999; }
.notes { font-size: 0.85em; color: #555; }
.plot { margin: 0.8em 0 1.6em; }
#report-errors { background: #fde8e8; border: 1px solid #c00; color: #900; padding: 0.5em; white-space: pre-wrap; }
footer { color: #777; font-size: 0.8em; margin-top: 2em; }
"""

# Records script errors before anything else runs; shows them on the page (and the browser test reads them).
_ERROR_CAPTURE = """
(function () {
  var log = [];
  window.__reportErrors = log;
  function show() {
    var el = document.getElementById('report-errors');
    if (el && log.length) { el.textContent = 'This page hit an error:\\n' + log.join('\\n'); el.hidden = false; }
  }
  window.__reportError = function (m) { log.push(String(m)); show(); };
  window.addEventListener('error', function (e) { window.__reportError('error: ' + (e.message || e.type)); });
  window.addEventListener('unhandledrejection', function (e) {
    var r = e.reason; window.__reportError('unhandled rejection: ' + (r && r.message ? r.message : r)); });
  var original = console.error;
  console.error = function () {
    window.__reportError('console.error: ' + Array.prototype.map.call(arguments, String).join(' '));
    return original.apply(console, arguments);
  };
  document.addEventListener('DOMContentLoaded', show);
})();
"""

_DRAW = """
(function () {
  var specs = JSON.parse(document.getElementById('report-figures').textContent);
  var drawn = specs.map(function (s) {
    return Plotly.newPlot(s.div, s.figure.data, s.figure.layout, {responsive: true, displaylogo: false});
  });
  Promise.all(drawn).then(function () {
    document.body.setAttribute('data-plots-rendered', String(drawn.length));
  }, function (e) { window.__reportError('plot failed: ' + (e && e.message ? e.message : e)); });
})();
"""


def _ranking_html(rows: pd.DataFrame) -> str:
    """The ranking as an HTML table (id ``ranking``): display strings, left-aligned names, reason column."""
    left = {"rank", "policy", "kind", "data", "risk test"}
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(str(c))}</th>' for c in rows.columns)
    body = []
    for _, r in rows.iterrows():
        first = bool(str(r.get("rank", "")).strip())
        cells = []
        for c in rows.columns:
            cls = "reason" if c == "risk test" else ("l" if c in left else "")
            cells.append(f'<td class="{cls}">{html.escape(str(r[c]))}</td>')
        body.append(f'<tr class="{"first" if first else ""}">{"".join(cells)}</tr>')
    return f'<table id="ranking"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _json_for_script(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``</`` can close the element."""
    return value.replace("</", "<\\/").replace("<!--", "<\\!--")


def render_interactive(inputs: InteractiveInputs, plots: Mapping[str, Callable[[InteractiveInputs], Any]] = PLOTS
                       ) -> tuple[str, list[str]]:
    """The page's HTML and the names of the plots it holds (those whose function drew something)."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    specs, blocks, drawn = [], [], []
    for name, make in plots.items():
        fig = make(inputs)
        if fig is None:
            continue
        div = f"plot-{name}"
        specs.append(f'{{"div": "{div}", "figure": {pio.to_json(fig, validate=False, remove_uids=True)}}}')
        blocks.append(f'<div class="plot" id="{div}" data-plot="{html.escape(name)}"></div>')
        drawn.append(name)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in inputs.notes)
    units = inputs.units
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{html.escape(inputs.title)}</title>", f"<style>{_CSS}</style>",
        f"<script>{_ERROR_CAPTURE}</script>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head>", "<body>",
        '<pre id="report-errors" hidden></pre>',
        f"<h1>{html.escape(inputs.title)}</h1>",
        f'<p class="verdict" id="verdict"><b>Verdict.</b> {html.escape(inputs.verdict)}</p>',
        "<h2>Ranking (risk first)</h2>",
        _ranking_html(inputs.ranking_rows),
        f'<p class="notes">Ruined policies (stopped out, or equity at or below zero) rank last; then those over '
        f"the VaR limit; then those beyond the drawdown limit; then by mean Sharpe ratio. Money in "
        f"{html.escape(units.money)}; starting equity {html.escape(units.start)}. The same numbers are in "
        f"report.md and ranking.csv.</p>",
        f'<ul class="notes">{notes}</ul>' if notes else "",
        "<h2>Plots</h2>",
        '<p class="notes">Hover for values; drag to zoom, double-click to reset; click a legend entry to hide a '
        "policy.</p>",
        *blocks,
        f"<footer>{html.escape(inputs.footer)}</footer>",
        f'<script type="application/json" id="report-figures">{_json_for_script("[" + ",".join(specs) + "]")}'
        "</script>",
        f"<script>{_DRAW}</script>",
        "</body>", "</html>", "",
    ]
    return "\n".join(p for p in parts if p != ""), drawn


def footer_text(run_name: str) -> str:
    """The page footer: which run, when the page was made (UTC)."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"Stress run {run_name}; interactive report written {stamp} UTC. Plotly, offline: nothing is fetched."
