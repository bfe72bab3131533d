"""The report's plots: each a registered function with its name, section and caption.

Why a registry: the report draws what is registered, in order, and its sections show the
figures of their section; adding a plot is one decorated function, not edits across the
writer. The drawing functions (``plot_*``) use matplotlib's Agg canvas without pyplot state
and each returns the PNG path.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.evaluation.metrics import drawdown_series
from agents.report.analysis import Analysis
from agents.report.ranking import finite_mean, scenario_matrix, var_exception_stats
from agents.report.results import (
    BASELINE_SCENARIO,
    EQUITY,
    EQUITY_BEFORE,
    LEVERAGE,
    PNL,
    STOPPED_OUT,
    TIMESTAMP,
    VAR,
    CellStore,
    T,
    training_runs,
)
from agents.report.style import (
    AccountUnits,
    PolicyStyle,
    diverging_limits,
    is_all_zero,
    policy_styles,
    robust_limits,
    trades,
    visible_window,
)
from simulator.common.run_folder import atomic_write_bytes


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
    ts = frame[TIMESTAMP]
    if len(ts) and ts.notna().all():
        return ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), True
    return frame[T].to_numpy(), False


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
        equity = np.concatenate([frame[EQUITY_BEFORE].to_numpy()[:1], frame[EQUITY].to_numpy()])
        dd = drawdown_series(equity)[1:]
        stopped = bool(frame[STOPPED_OUT].any())
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
        stopped = bool(frame[STOPPED_OUT].any())
        style = styles[p]
        ax.plot(x[keep], frame[LEVERAGE].to_numpy()[keep], color=style.colour, ls=style.mpl_dash, lw=1.4,
                label=p + (" (stopped out)" if stopped else ""))
    _shade(ax, window, is_time, x=np.concatenate(x_all) if x_all else None)
    ax.set_ylabel("gross exposure / equity (×)")
    ax.set_xlabel("bar time (UTC)" if is_time else "bar index t")
    ax.set_title(f"Position size through the stress window: {scenario}, seed {seed}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8, ncols=2 if len(policies) > 5 else 1, handlelength=3.5)
    return _save(fig, path)


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
    pnl, var = frame[PNL].to_numpy(), frame[VAR].to_numpy()
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


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "scenario"


# --------------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    """One drawn plot: its key in :attr:`agents.report.build.Report.plots`, file, caption and what it shows."""

    key: str
    section: str
    path: Path
    caption: str
    scenario: str | None = None
    seed: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    """What the section text quotes (the P&L plot's policy and exception counts)."""


@dataclass(frozen=True)
class Plot:
    """A registered plot: ``draw`` writes its PNGs into the folder and returns the figures and any notes."""

    name: str
    section: str
    draw: Callable[[Analysis, Path], tuple[list[Figure], list[str]]]


PLOTS: dict[str, Plot] = {}
"""Every plot of the report, in drawing order."""

SECTIONS = ("scenarios", "equity", "position", "pnl_var", "training")
"""The report sections that show plots."""


def register(name: str, *, section: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add a plot to :data:`PLOTS` (a name may be registered once; ``section`` one of :data:`SECTIONS`)."""
    if section not in SECTIONS:
        raise ValueError(f"plot {name!r}: section {section!r} is not one of {', '.join(SECTIONS)}")

    def add(draw: Callable[[Analysis, Path], tuple[list[Figure], list[str]]]) -> Callable[..., Any]:
        if name in PLOTS:
            raise ValueError(f"plot {name!r} is registered twice")
        PLOTS[name] = Plot(name, section, draw)
        return draw
    return add


def draw_all(analysis: Analysis, folder: Path) -> tuple[dict[str, Figure], list[str]]:
    """Draw every registered plot into ``folder``; the figures by key, in order, and the notes of those skipped."""
    figures: dict[str, Figure] = {}
    notes: list[str] = []
    for plot in PLOTS.values():
        drawn, said = plot.draw(analysis, folder)
        figures.update({f.key: f for f in drawn})
        notes += said
    return figures, notes


def _heatmap(a: Analysis, folder: Path, key: str, metric: str, caption: str, **style: Any) -> list[Figure]:
    matrix = scenario_matrix(a.results, metric, a.order, a.scenarios)
    path = plot_heatmap(matrix, folder / f"{key}.png", **style)
    return [Figure(key, "scenarios", path, caption)]


@register("heatmap_sharpe", section="scenarios")
def _heatmap_sharpe(a: Analysis, folder: Path) -> tuple[list[Figure], list[str]]:
    return _heatmap(a, folder, "heatmap_sharpe", "sharpe_ratio", "Mean Sharpe ratio by policy and scenario",
                    title="Mean Sharpe ratio (annualised) over seeds; centre: 0", cmap="RdYlGn", center=0.0,
                    colorbar_label="Sharpe ratio"), []


@register("heatmap_drawdown", section="scenarios")
def _heatmap_drawdown(a: Analysis, folder: Path) -> tuple[list[Figure], list[str]]:
    limit = a.settings.drawdown_limit
    return _heatmap(a, folder, "heatmap_drawdown", "max_drawdown", "Mean max drawdown by policy and scenario",
                    title=f"Mean max drawdown over seeds (%); centre (yellow): the {limit:.0%} limit",
                    fmt="{:.1f}", cmap="RdYlGn_r", center=100.0 * limit,
                    colorbar_label="max drawdown (%, centre: the limit)", scale=100.0, floor=0.0), []


@register("heatmap_time_over_limit", section="scenarios")
def _heatmap_time_over_limit(a: Analysis, folder: Path) -> tuple[list[Figure], list[str]]:
    if not np.isfinite(scenario_matrix(a.results, "time_over_limit", a.order, a.scenarios).to_numpy()).any():
        return [], []  # results.csv without the column: nothing to paint
    tolerance = a.settings.time_over_limit_tolerance
    return _heatmap(a, folder, "heatmap_time_over_limit", "time_over_limit",
                    "Mean time over the VaR limit by policy and scenario",
                    title=f"Mean time over the VaR limit (% of bars); centre: the {tolerance:.0%} tolerance",
                    fmt="{:.1f}", cmap="RdYlGn_r", center=100.0 * tolerance,
                    colorbar_label="% of bars over limit (centre: tolerance)", scale=100.0, floor=0.0), []


@register("equity", section="equity")
def _equity(a: Analysis, folder: Path) -> tuple[list[Figure], list[str]]:
    """The test data's curves, then the focus scenario's; keys ``equity_<i>_<scenario>``."""
    figures, notes = [], []
    shown = ([BASELINE_SCENARIO] if a.has_test else []) + ([a.focus] if a.focus else [])
    for i, scenario in enumerate(shown, start=1):
        seed = a.seed_for(scenario)
        if a.has_cells(scenario, seed):
            key = f"equity_{i}_{_slug(scenario)}"
            path = plot_equity_drawdown(a.store, a.order, scenario, seed, folder / f"{key}.png",
                                        window=a.window(scenario, seed), styles=a.styles, units=a.units)
            figures.append(Figure(key, "equity", path, f"Equity and drawdown, {scenario}, seed {seed}",
                                  scenario, seed))
        elif a.store.exists:
            notes.append(f"No per-step records for {scenario}, seed {seed}: equity curves skipped.")
    return figures, notes


@register("position_size", section="position")
def _position_size(a: Analysis, folder: Path) -> tuple[list[Figure], list[str]]:
    if not a.focus:
        return [], []
    seed = a.seed_for(a.focus)
    if not a.has_cells(a.focus, seed):
        return [], ([f"No per-step records for {a.focus}, seed {seed}: position-size plot skipped."]
                    if a.store.exists else [])
    path = plot_position_size(a.store, a.order, a.focus, seed, folder / "position_size.png",
                              window=a.window(a.focus, seed), styles=a.styles)
    return [Figure("position_size", "position", path, "Position size", a.focus, seed)], []


@register("pnl_var", section="pnl_var")
def _pnl_var(a: Analysis, folder: Path) -> tuple[list[Figure], list[str]]:
    """The best-ranked policy that trades on the focus run (a flat policy's plot would be blank)."""
    if not a.focus:
        return [], []
    seed = a.seed_for(a.focus)
    policy = best_trading_policy(a.store, a.order, a.focus, seed)
    frame = a.store.get(policy, a.focus, seed) if policy else None
    if frame is None:
        return [], ([f"No policy holds a position on {a.focus}, seed {seed}: P&L-against-VaR plot skipped."]
                    if a.store.exists and a.has_cells(a.focus, seed) else [])
    g = a.results[(a.results["policy"] == policy) & (a.results["scenario"] == a.focus)]
    nominal = finite_mean(g["var_nominal_rate"])
    path = plot_pnl_var(a.store, policy, a.focus, seed, folder / "pnl_var.png", window=a.window(a.focus, seed),
                        nominal_rate=nominal, units=a.units)
    details = {"policy": policy, **var_exception_stats(frame), "nominal": nominal, "seed": seed}
    return [Figure("pnl_var", "pnl_var", path, "P&L against VaR", a.focus, seed, details)], []


@register("learning_curves", section="training")
def _learning_curves(a: Analysis, folder: Path) -> tuple[list[Figure], list[str]]:
    from agents.report.training_curves import plot_learning_curves

    present, _ = training_runs(a.run_dir, a.agents)
    png = plot_learning_curves(present, folder / "learning_curves.png") if present else None
    return ([Figure("learning_curves", "training", png, "learning curves")] if png is not None else []), []
