"""The per-step fields, declared once: name, unit, per pair or not, what it means.

Why: the step writes these, the env puts them in ``info``, and the SB3 adapter, callbacks,
evaluation, stress cells and the report read them; one declaration keeps their names, units
and shapes from drifting apart. Import the names from here rather than spelling them.

The compiled step (:mod:`envs.step`) writes three blocks in the order of this table:
floats (reward first), flags (terminated and truncated first) and per-pair values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepField:
    """One per-step value."""

    name: str
    unit: str
    description: str
    per_pair: bool = False
    flag: bool = False
    info: bool = True
    """Whether the env puts it in ``info`` (reward, terminated and truncated are step outputs)."""


STEP_FIELDS: tuple[StepField, ...] = (
    StepField("reward", "reward units", "the step's reward (see EnvConfig.reward)", info=False),
    StepField("t", "bar index", "the bar the account is at after the step"),
    StepField("equity", "account currency", "equity at the close of bar t+1 (cash + mark-to-market)"),
    StepField("cash", "account currency", "cash after fills, commissions, financing and realised quote legs"),
    StepField("log_return", "log", "log change of equity over the bar"),
    StepField("spread_cost", "account currency", "half-spread paid on the fills"),
    StepField("impact_cost", "account currency", "square-root market impact paid on the fills"),
    StepField("slippage_cost", "account currency", "fixed slippage paid on the fills"),
    StepField("commission", "account currency", "commission paid on the fills"),
    StepField("financing", "account currency", "carry earned minus the broker's markup (signed)"),
    StepField("financing_cost", "account currency", "the broker's financing markup paid (>= 0)"),
    StepField("liquidation_cost", "account currency", "costs of a stop-out liquidation"),
    StepField("costs", "account currency", "every cost of the step (trading, financing markup, liquidation)"),
    StepField("turnover", "account currency", "traded notional"),
    StepField("var", "account currency", "one-bar VaR of the position held, valued at the decision"),
    StepField("var_requested", "account currency", "one-bar VaR of the position the action asked for"),
    StepField("var_limit", "account currency", "the VaR limit (var_limit x equity at the decision)"),
    StepField("var_utilisation", "fraction of the limit", "VaR of the position held / the limit"),
    StepField("cost", "fraction of the limit", "constraint cost: VaR utilisation above 1, 0 within the limit"),
    StepField("shield_scale", "fraction", "factor the VaR shield scaled the request by (1: untouched)"),
    StepField("margin_level", "ratio", "equity / used margin (inf when flat)"),
    StepField("drawdown", "fraction of peak equity", "1 - equity / peak equity"),
    StepField("band_holds", "pairs", "pairs held inside the no-trade band this step (no order sent)"),
    StepField("small_orders", "pairs", "orders below the minimum order size, not sent"),
    StepField("terminated", "flag", "stopped out (or equity <= 0)", flag=True, info=False),
    StepField("truncated", "flag", "end of the episode or of the data", flag=True, info=False),
    StepField("var_breach", "flag", "VaR utilisation above 1", flag=True),
    StepField("clipped", "flag", "the VaR shield scaled the request down", flag=True),
    StepField("margin_call", "flag", "margin level below the margin-call level", flag=True),
    StepField("stopped_out", "flag", "margin level below the stop-out level: the position was liquidated",
              flag=True),
    StepField("units", "base-currency units", "position held per pair", per_pair=True),
    StepField("exposure", "account currency", "position value per pair at the close of bar t+1", per_pair=True),
    StepField("filled", "base-currency units", "units filled per pair (signed)", per_pair=True),
    StepField("unfilled", "base-currency units", "order left unfilled per pair (participation cap)", per_pair=True),
    StepField("fill_price", "quote currency per base unit", "average fill price per pair (NaN: no fill)",
              per_pair=True),
)
"""Every per-step value, in the step's output order."""

FIELDS: dict[str, StepField] = {f.name: f for f in STEP_FIELDS}
FLOAT_OUTPUTS: tuple[str, ...] = tuple(f.name for f in STEP_FIELDS if not f.flag and not f.per_pair and f.name != "t")
"""Rows of the step's float block (reward first)."""
FLAG_OUTPUTS: tuple[str, ...] = tuple(f.name for f in STEP_FIELDS if f.flag)
"""Rows of the step's flag block (terminated, truncated first)."""
PAIR_OUTPUTS: tuple[str, ...] = tuple(f.name for f in STEP_FIELDS if f.per_pair)
"""Blocks of the step's per-pair output (each (accounts, pairs))."""
INFO_KEYS: tuple[str, ...] = tuple(f.name for f in STEP_FIELDS if f.info)
"""Keys of a step's ``info``, in order."""
COST_FIELDS: tuple[str, ...] = ("spread_cost", "impact_cost", "slippage_cost", "commission", "financing_cost",
                                "liquidation_cost")
"""The parts of ``costs`` (each >= 0, account currency)."""
RESET_INFO: tuple[str, ...] = ("t", "equity")
"""Info entries of a reset (and of an account that resets instead of stepping)."""


SCALAR_INFO: tuple[str, ...] = tuple(f.name for f in STEP_FIELDS if f.info and not f.per_pair and f.name != "t")
"""Every per-account value of ``info`` (floats and flags), in order."""
FLAG_INFO: tuple[str, ...] = tuple(f.name for f in STEP_FIELDS if f.info and f.flag)
"""The flags of ``info``."""


def select(*names: str) -> tuple[str, ...]:
    """``names``, each checked to be a declared per-step field (a typo fails at import, not in a run)."""
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise KeyError(f"not per-step fields (envs.fields.STEP_FIELDS): {unknown}")
    return names


def unit(name: str) -> str:
    """The unit of a per-step field (``KeyError`` for a name that is not one)."""
    return FIELDS[name].unit
