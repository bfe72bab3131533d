"""Account-currency conversion, equity, margin: pure functions over arrays.

Units: positions in **base-currency units** (signed: + long, − short); prices in quote
currency per unit of base; money in the **account currency** (USD by default). Arrays
are shaped (..., pair) so the same functions serve one environment or a batch of them.

The cash legs of open positions are held in each pair's **quote currency**
(``quote_cash``): buying 1M USDJPY at 150 books +1M USD of position and −150M JPY. Equity
translates position plus quote leg at the current rate, so a position earns its move in
the quote currency, converted at today's rate — not a re-translation of its notional.
When a position is closed its quote leg is converted into account cash (realised P&L).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.common.configuration import check_finite
from simulator.common.errors import DataError
from simulator.data.market import MarketData


@dataclass(frozen=True, kw_only=True)
class AccountConfig:
    """Money and margin rules (ESMA retail: 30:1 on majors, stop-out at 50% margin level)."""

    currency: str = "USD"
    """Account currency (ISO code): money, P&L and costs are in it."""
    initial_equity: float = 1_000_000.0
    """Starting equity, account currency."""
    max_leverage: float = 30.0
    """Largest gross notional / equity (margin rate 1 / max_leverage)."""
    margin_call_level: float = 1.0
    """Margin level (equity / used margin) below which a margin call is flagged."""
    stop_out_level: float = 0.5
    """Margin level below which every position is closed and the episode ends (terminated)."""

    def __post_init__(self) -> None:
        check_finite(self, "account.")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"currency must be a 3-letter code like USD, got {self.currency!r}")
        if not 0 < self.initial_equity <= 1e15:
            raise ValueError(f"initial_equity must be in (0, 1e15] (account currency), got {self.initial_equity}")
        if not 0 < self.max_leverage <= 1e6:
            raise ValueError(f"max_leverage must be in (0, 1e6], got {self.max_leverage}")
        if not 0 < self.stop_out_level <= self.margin_call_level:
            raise ValueError("need 0 < stop_out_level <= margin_call_level "
                             f"(got {self.stop_out_level}, {self.margin_call_level})")

    @property
    def margin_rate(self) -> float:
        """Margin required per unit of notional (1 / max leverage)."""
        return 1.0 / self.max_leverage


def quote_to_account(market: MarketData, account: str = "USD") -> np.ndarray:
    """Rate converting one unit of each pair's quote currency into ``account``, shaped (time, pair).

    Row t uses close prices of bar t only. A quote currency other than the account's needs
    a pair that links them (e.g. USDJPY for JPY in a USD account), traded in the market or
    held in its conversion rates (:attr:`MarketData.conversion`, which the ECB source fills).
    """
    close = market.field_array("close")
    out = np.ones_like(close)
    for j, spec in enumerate(market.pairs):
        if spec.quote == account:
            continue
        direct, inverse = spec.quote + account, account + spec.quote
        direct_rate, inverse_rate = market.rate(direct), market.rate(inverse)
        if direct_rate is not None:
            out[:, j] = direct_rate
        elif inverse_rate is not None:
            out[:, j] = 1.0 / inverse_rate
        else:
            raise DataError(
                f"cannot convert {spec.quote} (quote of {spec.symbol}) into the account currency {account}",
                source=market.source, field=spec.symbol,
                hint=f"add {inverse} or {direct} to the market, or use a {spec.quote} account",
            )
    return out


def exposure(units: np.ndarray, mid: np.ndarray, conv: np.ndarray) -> np.ndarray:
    """Signed notional of each position in account currency."""
    return units * mid * conv


def equity(cash: np.ndarray, units: np.ndarray, mid: np.ndarray, conv: np.ndarray,
           quote_cash: np.ndarray | float = 0.0) -> np.ndarray:
    """Account cash plus each pair's position and quote-currency cash leg, translated at ``conv``."""
    return cash + np.sum((units * mid + quote_cash) * conv, axis=-1)


def used_margin(units: np.ndarray, mid: np.ndarray, conv: np.ndarray, margin_rate: float) -> np.ndarray:
    """Margin the positions lock up: gross notional × margin rate (account currency)."""
    return np.sum(np.abs(units * mid * conv), axis=-1) * margin_rate


def margin_level(equity_value: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """Equity / used margin (inf with no position): below 1 a margin call, below 0.5 a stop-out."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(margin > 0, equity_value / np.where(margin > 0, margin, 1.0), np.inf)


def cap_gross_leverage(target_units: np.ndarray, mid: np.ndarray, conv: np.ndarray, equity_value: np.ndarray,
                       max_leverage: float) -> np.ndarray:
    """Scale target positions down, all pairs together, so gross notional <= max_leverage × equity."""
    gross = np.sum(np.abs(target_units * mid * conv), axis=-1)
    limit = max_leverage * np.maximum(equity_value, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(gross > limit, limit / np.where(gross > 0, gross, 1.0), 1.0)
    return target_units * scale[..., None]
