"""Order execution: fills at bid/ask with commission, slippage, square-root impact and partial fills.

Pure functions over arrays shaped (..., pair). Units: positions in base-currency units;
prices in quote currency per unit of base; money in account currency. Every cost is
reported separately and is >= 0 (a cost to the trader).

Impact follows the square-root law (REFERENCES.md): the fill price moves against the
order by ``Y × sigma × sqrt(|q| / V)`` as a fraction of price, with ``sigma`` the bar's
volatility forecast and ``V`` the bar's liquidity (volume tradable per bar). Orders larger
than ``max_participation × V`` are filled partially; the rest is dropped (the agent asks
again next bar).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.common.configuration import check_finite


@dataclass(frozen=True, kw_only=True)
class ExecutionConfig:
    """Costs: commission per million of account-currency notional per side; slippage in bps."""

    commission_per_million: float = 20.0
    """Commission per side, account currency per million of account-currency notional traded."""
    slippage_bps: float = 0.1
    """Slippage beyond the quoted half-spread, basis points of the fill's notional."""
    impact_coefficient: float = 0.5
    """Y of the square-root impact Y·σ·√(q/V): dimensionless (σ the bar's volatility forecast, q/V participation)."""
    max_participation: float = 0.05
    """Largest fill per bar as a fraction of the bar's liquidity V (the rest stays unfilled)."""
    spread_multiplier: float = 1.0
    """Multiplier of the data's bid-ask spread (1: as quoted)."""

    def __post_init__(self) -> None:
        check_finite(self, "execution.")
        for name, high in (("commission_per_million", 1e6), ("slippage_bps", 1e4), ("impact_coefficient", 1e3)):
            if not 0 <= getattr(self, name) <= high:
                raise ValueError(f"{name} must be in [0, {high:g}], got {getattr(self, name)}")
        if not 0 < self.max_participation <= 1:
            raise ValueError(f"max_participation must be in (0, 1], got {self.max_participation}")
        if not 0 < self.spread_multiplier <= 1e4:
            raise ValueError(f"spread_multiplier must be in (0, 1e4], got {self.spread_multiplier}")


@dataclass(frozen=True, eq=False)
class Fill:
    """What an order did, per pair (arrays shaped like the order)."""

    filled: np.ndarray        # signed base units traded
    unfilled: np.ndarray      # signed base units asked for but not traded (liquidity)
    price: np.ndarray         # average fill price, quote currency (NaN where nothing traded)
    quote_delta: np.ndarray   # change of the pair's quote-currency cash leg: -filled × price
    cash_delta: np.ndarray    # the same in account currency at the fill's rate, commission included
    spread_cost: np.ndarray   # half-spread paid, account currency
    impact_cost: np.ndarray   # square-root impact paid, account currency
    slippage_cost: np.ndarray
    commission: np.ndarray

    @property
    def total_cost(self) -> np.ndarray:
        return self.spread_cost + self.impact_cost + self.slippage_cost + self.commission


def fill_caps(units: np.ndarray, target: np.ndarray, liquidity: np.ndarray, config: ExecutionConfig,
              *, reductions_uncapped: bool = False) -> np.ndarray:
    """Largest size (base units) each order may fill in one bar: ``max_participation × liquidity``.

    With ``reductions_uncapped`` an order that shrinks the position (|target| < |units|) fills
    whole — a forced de-risking that still pays impact — so a risk limit can always be met.
    """
    cap = config.max_participation * liquidity
    if reductions_uncapped:
        cap = np.where(np.abs(target) < np.abs(units), np.inf, cap)
    return cap


def execute(
    order: np.ndarray,
    mid: np.ndarray,
    spread: np.ndarray,
    liquidity: np.ndarray,
    sigma: np.ndarray,
    conv: np.ndarray,
    config: ExecutionConfig,
    *,
    cap: np.ndarray | None = None,
) -> Fill:
    """Trade ``order`` base units at ``mid`` ± half ``spread`` ± impact ± slippage.

    ``liquidity`` may be ``inf`` (no depth data: full fills, no impact). ``sigma`` is the
    volatility of the bar's return (a fraction); NaN sigma means no impact estimate (0).
    ``cap`` is the largest fill per pair (default ``max_participation × liquidity``).
    """
    if cap is None:
        cap = config.max_participation * liquidity
    filled = np.clip(order, -cap, cap)
    size = np.abs(filled)
    with np.errstate(divide="ignore", invalid="ignore"):
        participation = np.where(np.isfinite(liquidity) & (liquidity > 0), size / liquidity, 0.0)
    vol = np.where(np.isfinite(sigma), sigma, 0.0)
    impact = config.impact_coefficient * vol * np.sqrt(participation)
    slip = config.slippage_bps * 1e-4
    half_spread = 0.5 * spread * config.spread_multiplier
    side = np.sign(filled)
    price = mid + side * (half_spread + mid * (impact + slip))
    notional = size * mid * conv
    spread_cost = size * half_spread * conv
    impact_cost = notional * impact
    slippage_cost = notional * slip
    commission = notional * config.commission_per_million * 1e-6
    quote_delta = -filled * price
    cash_delta = -filled * price * conv - commission
    return Fill(
        filled=filled,
        unfilled=order - filled,
        price=np.where(size > 0, price, np.nan),
        quote_delta=quote_delta,
        cash_delta=cash_delta,
        spread_cost=spread_cost,
        impact_cost=impact_cost,
        slippage_cost=slippage_cost,
        commission=commission,
    )
