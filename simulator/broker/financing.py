"""Daily financing (swap) of positions held, with interest rates as data.

A long position earns the base currency's rate and pays the quote's; a short the
reverse; the broker's markup is charged on both sides and is never income. Financing
accrues on calendar time held — the weekend's charge (which brokers book as a triple
Wednesday rollover) is spread over the weekend gap, so a week costs seven days either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from simulator.common.configuration import safe_load
from simulator.data.market import MarketData

SECONDS_PER_DAY = 86_400.0


def _default_rates() -> dict[str, float]:
    data = safe_load(resources.files("simulator").joinpath("data/rates.yaml").read_text(encoding="utf-8"))
    return {k: float(v) for k, v in data["rates"].items()}


def _default_markup() -> float:
    data = safe_load(resources.files("simulator").joinpath("data/rates.yaml").read_text(encoding="utf-8"))
    return float(data["markup"])


@dataclass(frozen=True, kw_only=True)
class FinancingConfig:
    """Annual rates by currency (fractions) and the broker markup (a cost, >= 0)."""

    rates: dict[str, float] = field(default_factory=_default_rates)
    """Annual interest rate by currency, fractions (0.05 = 5%); defaults from simulator/data/rates.yaml."""
    markup: float = field(default_factory=_default_markup)
    """Broker financing markup, annual fraction charged on every open position (a cost, >= 0)."""

    def __post_init__(self) -> None:
        for currency, value in self.rates.items():
            if not isinstance(currency, str) or isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or not -1.0 < value < 1.0:
                raise ValueError(f"financing.rates.{currency} must be an annual rate, a finite fraction in (-1, 1), "
                                 f"got {value!r}")
        if not (math.isfinite(self.markup) and 0 <= self.markup < 1):
            raise ValueError(f"financing.markup must be a finite fraction in [0, 1), got {self.markup}")
        if self.markup < 0:
            raise ValueError(f"financing markup must be >= 0, got {self.markup}")

    def rate(self, currency: str) -> float:
        if currency not in self.rates:
            raise ValueError(f"no interest rate for {currency}: add it to the financing rates")
        return self.rates[currency]


def rate_differentials(market: MarketData, config: FinancingConfig) -> np.ndarray:
    """Base minus quote annual rate for each pair, shaped (pair,)."""
    return np.array([config.rate(p.base) - config.rate(p.quote) for p in market.pairs])


def holding_days(market: MarketData) -> np.ndarray:
    """Calendar days from each bar's open to the next (time,); the last row repeats the previous."""
    stamps = market.index.as_unit("ns").asi8.astype(np.float64)
    days = np.empty(len(stamps))
    days[:-1] = np.diff(stamps) / 1e9 / SECONDS_PER_DAY
    days[-1] = days[-2] if len(days) > 1 else 0.0
    return days


def financing(exposure: np.ndarray, differential: np.ndarray, markup: float, days: float | np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(carry, markup_cost)`` in account currency for positions held ``days``.

    ``carry = exposure × differential × days / 365`` (signed: income or charge);
    ``markup_cost = |exposure| × markup × days / 365`` (always >= 0, subtract it).
    """
    day_fraction = np.asarray(days) / 365.0
    carry = exposure * differential * day_fraction[..., None] if np.ndim(days) else exposure * differential * day_fraction
    cost = np.abs(exposure) * markup * (day_fraction[..., None] if np.ndim(days) else day_fraction)
    return carry, cost
