"""What the static and the interactive stress reports share: policy styles, units, robust ranges.

Why a module of its own: the PNG report (``agents/report/plots.py``) and the interactive one
(``agents/report/interactive.py``) must draw a policy in the same colour and line style, name the
same units and clip the same outliers, so a reader who switches between them is not misled. Every
function here is pure (values in, values out), so each is tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from agents.report.results import GROSS_EXPOSURE, VAR

__all__ = [
    "AccountUnits",
    "PolicyStyle",
    "account_units",
    "diverging_limits",
    "is_all_zero",
    "policy_styles",
    "robust_limits",
    "trades",
    "visible_window",
]

#: Okabe-Ito (colour-blind safe) followed by four darker tones: ten distinct colours.
PALETTE: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
                            "#8C564B", "#7F7F7F", "#BCBD22")
#: Dash patterns, named as Plotly names them, with the matplotlib dash tuple of each.
DASHES: tuple[tuple[str, Any], ...] = (
    ("solid", "-"), ("dash", (0, (6, 3))), ("dot", (0, (1.5, 2))), ("dashdot", (0, (6, 2, 1.5, 2))),
    ("longdash", (0, (12, 4))), ("longdashdot", (0, (12, 3, 2, 3))),
)


@dataclass(frozen=True)
class PolicyStyle:
    """How one policy is drawn: ``colour`` (hex), ``dash`` (Plotly name) and ``mpl_dash`` (matplotlib)."""

    colour: str
    dash: str
    mpl_dash: Any


def policy_styles(policies: Sequence[str]) -> dict[str, PolicyStyle]:
    """A distinct (colour, dash) pair per policy, in rank order.

    Why dashes too: policies that act alike draw the same line; a different dash pattern on each
    lets the reader tell overlapping lines apart (and the report print in black and white).
    Colours cycle through :data:`PALETTE`, dashes through :data:`DASHES`; with 10 colours and 6
    dashes no two of the first 30 policies share both.
    """
    out = {}
    for i, p in enumerate(policies):
        name, mpl = DASHES[i % len(DASHES)]
        out[p] = PolicyStyle(PALETTE[i % len(PALETTE)], name, mpl)
    return out


@dataclass(frozen=True)
class AccountUnits:
    """The account currency (``USD``; ``None`` when unknown) and the starting equity (account currency)."""

    currency: str | None
    initial_equity: float

    @property
    def money(self) -> str:
        """The currency as an axis or column unit: ``USD``, or ``account currency`` when unknown."""
        return self.currency or "account currency"

    @property
    def start(self) -> str:
        """The starting equity in words: ``1,000,000 USD`` (``n/a`` when unknown)."""
        if not math.isfinite(self.initial_equity):
            return "n/a"
        return f"{self.initial_equity:,.0f}" + (f" {self.currency}" if self.currency else "")

    def axis(self, what: str) -> str:
        """An axis title naming the unit and the starting equity: ``equity, USD (start 1,000,000)``."""
        if not math.isfinite(self.initial_equity):
            return f"{what}, {self.money}"
        return f"{what}, {self.money} (start {self.initial_equity:,.0f})"


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def account_units(results: pd.DataFrame, config: Any = None, manifest: Any = None) -> AccountUnits:
    """The account currency and starting equity of a stress run.

    The currency comes from the run's resolved plan (``config.yaml``, else the manifest's
    ``config``) at ``training.env.account.currency``; the starting equity is the median of
    results.csv's ``initial_equity`` (the plan's ``initial_equity`` when the column is empty).
    Unknown values stay unknown (``None`` / NaN) rather than guessed.
    """
    plans = [config, _dig(manifest, "config")]
    currency = None
    initial = math.nan
    for plan in plans:
        account = _dig(plan, "training", "env", "account")
        if isinstance(account, Mapping):
            if currency is None and isinstance(account.get("currency"), str) and account["currency"].strip():
                currency = account["currency"].strip()
            value = account.get("initial_equity")
            if not math.isfinite(initial) and isinstance(value, (int, float)) and math.isfinite(value):
                initial = float(value)
    if "initial_equity" in results.columns:
        values = pd.to_numeric(results["initial_equity"], errors="coerce").to_numpy(np.float64)
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            initial = float(np.median(values))
    return AccountUnits(currency, initial)


def robust_limits(values: Sequence[float] | np.ndarray, *, low_q: float = 0.005, high_q: float = 0.995,
                  pad: float = 0.08) -> tuple[float, float, int]:
    """A y-range holding the ``low_q``…``high_q`` quantiles of ``values`` (padded), and how many fall outside.

    Why: one gap bar of −720,000 next to bars of ±2,000 flattens a plot scaled to the extremes;
    the reader sees the bulk and is told (by the caller) how many bars lie beyond the view. The
    range always contains 0 and is never empty. Returns ``(low, high, n_outside)``.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return -1.0, 1.0, 0
    lo, hi = float(np.quantile(v, low_q)), float(np.quantile(v, high_q))
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0:
        scale = max(abs(lo), abs(hi), 1.0)
        lo, hi = lo - scale, hi + scale
    span = hi - lo
    lo, hi = lo - pad * span, hi + pad * span
    outside = int(((v < lo) | (v > hi)).sum())
    return lo, hi, outside


def visible_window(start: Any, end: Any, axis_start: Any, axis_end: Any, *, min_fraction: float = 0.012
                   ) -> tuple[Any, Any]:
    """The stress window widened to at least ``min_fraction`` of the axis, kept inside the axis.

    Why: a one-day SNB window at the end of a five-year axis is a hairline; the shaded band is
    drawn at least that wide (centred on the window, shifted to stay within the data), while the
    numbers elsewhere keep the true window. Works on numbers and on ``numpy.datetime64`` /
    ``pandas.Timestamp`` alike (differences must be subtractable and scalable).
    """
    span = axis_end - axis_start
    width = end - start
    need = span * min_fraction
    if width >= need:
        return start, end
    middle = start + width / 2
    lo, hi = middle - need / 2, middle + need / 2
    if lo < axis_start:
        lo, hi = axis_start, axis_start + need
    if hi > axis_end:
        lo, hi = axis_end - need, axis_end
    return lo, hi


def is_all_zero(values: np.ndarray | pd.DataFrame) -> bool:
    """True when every finite value is 0 (and there is at least one): a matrix with no signal to colour."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return bool(v.size) and not v.any()


def diverging_limits(values: np.ndarray | pd.DataFrame, center: float, *, floor: float | None = None
                     ) -> tuple[float, float]:
    """Colour limits symmetric about ``center`` that hold every finite value, cut at ``floor``.

    Why symmetric: a diverging scale is read as "good side, bad side"; with limits −0.4…2.0
    around 0, a Sharpe of −0.4 would be painted as dark as one of 2.0. ``floor``: the smallest
    value the quantity can take (0 for a drawdown), so the colour bar shows no impossible
    values; the centre stays the midpoint of the colours. Falls back to ``center ± 1`` (or
    ``± |center|``) when there is nothing to scale (no finite value, or all at the centre).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    reach = float(np.max(np.abs(v - center))) if v.size else 0.0
    if reach <= 0:
        reach = 1.0 if center == 0 else abs(center)
    low = center - reach
    if floor is not None and floor < center:
        low = max(low, floor)
    return low, center + reach


def trades(frame: pd.DataFrame | None) -> bool:
    """True when a run's per-step records show a position: a non-zero exposure, or a VaR above 0."""
    if frame is None or frame.empty:
        return False
    gross = frame[GROSS_EXPOSURE].to_numpy(np.float64) if GROSS_EXPOSURE in frame.columns else np.zeros(0)
    var = frame[VAR].to_numpy(np.float64) if VAR in frame.columns else np.zeros(0)
    return bool((np.nan_to_num(gross) != 0).any() or (np.nan_to_num(var) > 0).any())
