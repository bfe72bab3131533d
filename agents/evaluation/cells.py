"""The schema of a stress cell file, declared once: the stress runner writes it, the report reads it.

A cell (``cells/<policy>/<scenario>/seed-<s>[-train-<t>].csv.gz``) holds the per-step records
of one run: the rollout's own columns, a chosen set of the step's fields (declared with their
units in :mod:`envs.fields`) and the exposure of each pair.
"""

from __future__ import annotations

from envs.fields import select

ROLLOUT_COLUMNS: tuple[str, ...] = ("step", "timestamp", "equity_before")
"""Added by the rollout: the step counter, the bar's UTC time, equity at the decision (account currency)."""
STEP_COLUMNS: tuple[str, ...] = select("t", "equity", "log_return", "costs", "var", "var_limit", "var_utilisation",
                                       "var_breach", "clipped", "shield_scale", "stopped_out", "margin_call",
                                       "turnover")
"""The step's fields a cell keeps (the report's curves, VaR bands and flags need these)."""
CELL_COLUMNS: tuple[str, ...] = ("step", "t", "timestamp", "equity", "equity_before", "log_return", "costs", "var",
                                 "var_limit", "var_utilisation", "var_breach", "clipped", "shield_scale",
                                 "stopped_out", "margin_call", "turnover")
"""Every column of a cell, in the order written (then ``exposure_<PAIR>`` per pair)."""
EXPOSURE_PREFIX = "exposure_"
"""Per-pair exposure columns: ``exposure_<PAIR>`` (account currency)."""
REQUIRED: tuple[str, ...] = ("equity", "equity_before")
"""Columns a cell cannot be read without."""
OPTIONAL: tuple[str, ...] = tuple(c for c in CELL_COLUMNS if c not in REQUIRED)
"""Columns the reader uses when present."""

if set(CELL_COLUMNS) != set(ROLLOUT_COLUMNS) | set(STEP_COLUMNS):  # pragma: no cover - a guard
    raise ImportError("agents.evaluation.cells: CELL_COLUMNS must be the rollout's and the step's columns")


def columns(*names: str) -> tuple[str, ...]:
    """``names``, each checked to be a declared cell column (a typo fails at import, not in a report)."""
    unknown = [n for n in names if n not in CELL_COLUMNS]
    if unknown:
        raise KeyError(f"not cell columns (agents.evaluation.cells.CELL_COLUMNS): {unknown}")
    return names

