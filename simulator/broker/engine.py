"""One trading step for a batch of accounts: execute, finance, mark, stop out. Pure arrays.

Timeline of a step decided at bar t (after its close, with data <= t):

1. financing accrues on the positions held during bar t (calendar days to bar t+1);
2. the order moving each position to its target executes at the **open of bar t+1**
   (bid/ask with costs, partial fills against bar t+1's liquidity) — never at a price
   the decision already saw;
3. positions are marked at the **close of bar t+1**; if the margin level falls below
   the stop-out level, everything is closed at that close (bid/ask with costs) and the
   account is stopped out.

Arrays are shaped (batch, pair) for positions and (batch,) for money; market rows are
gathered by the caller for each account's own t. Money is in account currency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.broker.account import AccountConfig, cap_gross_leverage, equity, margin_level, used_margin
from simulator.broker.execution import ExecutionConfig, Fill, execute, fill_caps
from simulator.broker.financing import financing


@dataclass(frozen=True, eq=False)
class BarData:
    """Market values one step needs, already gathered per account: (batch, pair) or (batch,)."""

    close_now: np.ndarray      # mid close of bar t (the last mark)
    open_next: np.ndarray      # mid open of bar t+1
    close_next: np.ndarray     # mid close of bar t+1
    spread_next: np.ndarray    # spread (price units) during bar t+1
    liquidity_next: np.ndarray  # volume tradable in bar t+1 (inf when unknown)
    sigma: np.ndarray          # volatility forecast for bar t+1 (made at t), for impact
    conv: np.ndarray           # quote → account rate at t (fills)
    conv_next: np.ndarray      # quote → account rate at t+1 (marking)
    differential: np.ndarray   # base − quote annual rate (pair,) or (batch, pair)
    days: np.ndarray           # calendar days from bar t to bar t+1 (batch,)


@dataclass(frozen=True, eq=False)
class StepResult:
    """New account state and what happened (all account currency unless said)."""

    cash: np.ndarray
    units: np.ndarray
    avg_price: np.ndarray
    quote_cash: np.ndarray       # open positions' cash legs, quote currency, per pair
    equity_before: np.ndarray
    equity: np.ndarray
    fill: Fill
    carry: np.ndarray            # financing income (+) or charge (−), per pair
    financing_cost: np.ndarray   # broker markup on financing, >= 0, per pair
    margin_level: np.ndarray
    margin_call: np.ndarray
    stopped_out: np.ndarray
    liquidation: Fill | None     # the closing trades of a stop-out (zeros where none)

    @property
    def costs(self) -> np.ndarray:
        """Trading and financing costs paid this step (>= 0), summed over pairs."""
        total = self.fill.total_cost.sum(axis=-1) + self.financing_cost.sum(axis=-1)
        if self.liquidation is not None:
            total = total + self.liquidation.total_cost.sum(axis=-1)
        return total


def update_average_price(units: np.ndarray, avg: np.ndarray, filled: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Average entry price after a fill: weighted when adding, kept when reducing, reset when flipping."""
    new_units = units + filled
    adding = (units * filled > 0) | (units == 0)
    flipped = units * new_units < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        held_value = np.where(units != 0, units * np.nan_to_num(avg, nan=0.0), 0.0)
        weighted = (held_value + filled * np.nan_to_num(price, nan=0.0)) / np.where(new_units != 0, new_units, 1.0)
    out = np.where(adding & (filled != 0), weighted, avg)
    out = np.where(flipped, price, out)
    return np.where(new_units == 0, np.nan, out)


def step_accounts(
    cash: np.ndarray,
    units: np.ndarray,
    avg_price: np.ndarray,
    target_units: np.ndarray,
    bar: BarData,
    account: AccountConfig,
    execution: ExecutionConfig,
    markup: float,
    *,
    quote_cash: np.ndarray | None = None,
    reductions_uncapped: bool = False,
) -> StepResult:
    """Advance each account by one bar (see the module docstring for the timeline).

    ``quote_cash``: each pair's open cash leg in its quote currency (zeros when None; see
    :mod:`simulator.broker.account`). ``reductions_uncapped``: orders that shrink a position ignore
    the participation cap (see :func:`simulator.broker.execution.fill_caps`), as a risk shield needs.
    """
    quote = np.zeros_like(units) if quote_cash is None else quote_cash
    equity_before = equity(cash, units, bar.close_now, bar.conv, quote)
    # 1. financing on the positions held during bar t
    held_exposure = units * bar.open_next * bar.conv
    carry, fin_cost = financing(held_exposure, bar.differential, markup, bar.days)
    cash = cash + carry.sum(axis=-1) - fin_cost.sum(axis=-1)
    # 2. trade at the open of t+1, within the leverage cap measured at that open
    equity_open = equity(cash, units, bar.open_next, bar.conv, quote)
    target = cap_gross_leverage(target_units, bar.open_next, bar.conv, equity_open, account.max_leverage)
    cap = fill_caps(units, target, bar.liquidity_next, execution, reductions_uncapped=reductions_uncapped)
    fill = execute(target - units, bar.open_next, bar.spread_next, bar.liquidity_next, bar.sigma, bar.conv,
                   execution, cap=cap)
    avg_price = update_average_price(units, avg_price, fill.filled, fill.price)
    units = units + fill.filled
    quote = quote + fill.quote_delta
    cash = cash - fill.commission.sum(axis=-1)
    cash, quote = realise_closed(cash, units, quote, bar.conv)
    # 3. mark at the close of t+1; stop out below the stop-out level, or when a gap wiped the
    #    equity out (the leverage cap may have closed the position at the gapped open already)
    eq = equity(cash, units, bar.close_next, bar.conv_next, quote)
    margin = used_margin(units, bar.close_next, bar.conv_next, account.margin_rate)
    level = margin_level(eq, margin)
    stopped = (level < account.stop_out_level) | (eq <= 0)
    liquidation = None
    if np.any(stopped):
        close_order = np.where(stopped[..., None], -units, 0.0)
        liquidation = execute(close_order, bar.close_next, bar.spread_next, bar.liquidity_next,
                              bar.sigma, bar.conv_next, execution, cap=np.full_like(units, np.inf))
        units = units + liquidation.filled
        quote = quote + liquidation.quote_delta
        cash = cash - liquidation.commission.sum(axis=-1)
        cash, quote = realise_closed(cash, units, quote, bar.conv_next)
        avg_price = np.where(stopped[..., None], np.nan, avg_price)
        eq = equity(cash, units, bar.close_next, bar.conv_next, quote)
        margin = used_margin(units, bar.close_next, bar.conv_next, account.margin_rate)
        level = np.where(stopped, margin_level(eq, margin), level)
    return StepResult(
        cash=cash, units=units, avg_price=avg_price, quote_cash=quote, equity_before=equity_before, equity=eq,
        fill=fill, carry=carry, financing_cost=fin_cost, margin_level=level,
        margin_call=level < account.margin_call_level, stopped_out=stopped, liquidation=liquidation,
    )


def realise_closed(cash: np.ndarray, units: np.ndarray, quote_cash: np.ndarray, conv: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Convert the quote-currency leg of every closed position into account cash at ``conv``."""
    flat = units == 0
    realised = np.where(flat, quote_cash * conv, 0.0)
    return cash + realised.sum(axis=-1), np.where(flat, 0.0, quote_cash)
