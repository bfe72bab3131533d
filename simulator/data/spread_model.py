"""A modelled bid-ask spread (and depth) for sources that carry none.

Why a model: the bundled sample, Yahoo and most bar exports have one price side and
no spread, yet costs drive position sizing. Documented assumptions, in pips:

* a base spread for liquid hours (retail EURUSD 0.8–1.5 pip, see REFERENCES.md), in pips
  (``base_pips``) or, for pairs quoted at very different price levels, in basis points of
  the bar's close (``base_bps``);
* multiplied by a UTC hour-of-day profile (widest around the 21–22 UTC rollover, wider
  in the Asian session) — on intraday bars only: a daily bar spans every hour, so daily
  data gets the liquid-hours base (profile 1);
* multiplied by ``(sigma_t / sigma_typical) ** vol_elasticity``, where ``sigma_t`` is an
  exponentially weighted average of the bar's high-low log range (half-life
  ``vol_halflife_hours`` of trading time, converted with the bar length) and
  ``sigma_typical`` the expanding mean of that average — both use bars up to t only (no
  lookahead);
* capped at ``max_multiple`` × base.

:func:`typical_spread_model` gives the model for a pair from ``simulator/data/spreads.yaml``
(typical retail spreads per pair, with a rule for pairs not listed) — what close-only daily
sources such as the ECB reference rates use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
import yaml

from simulator.data.frequency import bar_hours

# Multipliers of the base spread by UTC hour (0..23): rollover at 21-22 UTC is widest.
DEFAULT_HOURLY_PROFILE: tuple[float, ...] = (
    1.4, 1.3, 1.3, 1.2, 1.2, 1.2, 1.1, 1.0, 1.0, 1.0, 1.0, 1.0,
    1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.1, 1.2, 1.4, 2.5, 2.0, 1.6,
)


@dataclass(frozen=True, kw_only=True)
class SpreadModel:
    """Spread in pips = base × hour profile × causal volatility factor (see module doc)."""

    base_pips: float = 1.0
    """Spread in liquid hours, pips (ignored when ``base_bps`` is set)."""
    base_bps: float | None = None
    """Spread in liquid hours as basis points of the bar's close, instead of pips."""
    hourly_profile: tuple[float, ...] = DEFAULT_HOURLY_PROFILE
    """Multipliers by UTC hour 0..23, applied to intraday bars only."""
    vol_elasticity: float = 0.5
    """Exponent of the spread's response to the volatility ratio (0: constant spread)."""
    vol_halflife_hours: float = 24.0
    """Half-life of the range average, trading hours (24 hourly bars, 1 daily bar)."""
    max_multiple: float = 20.0
    """Cap on the spread as a multiple of the base."""

    def __post_init__(self) -> None:
        if not self.base_pips > 0:
            raise ValueError(f"base_pips must be > 0, got {self.base_pips}")
        if self.base_bps is not None and not self.base_bps > 0:
            raise ValueError(f"base_bps must be > 0, got {self.base_bps}")
        if len(self.hourly_profile) != 24 or min(self.hourly_profile) <= 0:
            raise ValueError("hourly_profile needs 24 positive multipliers (UTC hours 0..23)")
        if self.vol_elasticity < 0:
            raise ValueError(f"vol_elasticity must be >= 0, got {self.vol_elasticity}")
        if not self.vol_halflife_hours > 0:
            raise ValueError(f"vol_halflife_hours must be > 0, got {self.vol_halflife_hours}")
        if not self.max_multiple >= 1:
            raise ValueError(f"max_multiple must be >= 1, got {self.max_multiple}")

    def multiplier(self, index: pd.DatetimeIndex, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        """Hour profile × volatility factor, capped at ``max_multiple``; row t uses bars <= t only.

        The bar length comes from the median timestamp spacing (a property of the clock, not
        of prices); the profile applies to intraday bars only.
        """
        hours_per_bar = bar_hours(index)
        if hours_per_bar < 24.0:
            profile = np.asarray(self.hourly_profile)[np.asarray(index.hour, dtype=np.int64)]
        else:
            profile = np.ones(len(index))
        log_range = np.log(np.asarray(high, float) / np.asarray(low, float))
        halflife = max(self.vol_halflife_hours / hours_per_bar, 1.0)
        sigma = pd.Series(log_range).ewm(halflife=halflife, adjust=True).mean().to_numpy()
        typical = pd.Series(sigma).expanding().mean().to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(typical > 0, sigma / typical, 1.0)
        factor = np.clip(ratio, 0.25, None) ** self.vol_elasticity
        return np.minimum(profile * factor, self.max_multiple)

    def spread_pips(self, index: pd.DatetimeIndex, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        """Modelled spread in pips for each bar (``base_pips`` models); row t uses bars <= t only."""
        if self.base_bps is not None:
            raise ValueError("this SpreadModel is in basis points of price: use spread_price(..., close=...)")
        return self.base_pips * self.multiplier(index, high, low)

    def spread_price(self, index: pd.DatetimeIndex, high: np.ndarray, low: np.ndarray, pip_size: float,
                     close: np.ndarray | None = None) -> np.ndarray:
        """Modelled spread in price units (quote currency per unit of base).

        ``close`` is needed for ``base_bps`` models (the spread is a fraction of each bar's own close).
        """
        if self.base_bps is None:
            return self.spread_pips(index, high, low) * pip_size
        if close is None:
            raise ValueError("a base_bps SpreadModel needs the bars' close prices")
        return self.base_bps * 1e-4 * np.asarray(close, float) * self.multiplier(index, high, low)

    def describe(self) -> str:
        """One line for ``market.notes``."""
        base = (f"base_bps={self.base_bps:g} of price" if self.base_bps is not None
                else f"base_pips={self.base_pips:g}")
        return (f"SpreadModel({base}, UTC hour profile on intraday bars, vol_elasticity={self.vol_elasticity:g}, "
                f"vol_halflife_hours={self.vol_halflife_hours:g}, max_multiple={self.max_multiple:g})")


@lru_cache(maxsize=1)
def _spread_table() -> dict:
    text = resources.files("simulator").joinpath("data/spreads.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def typical_spread_model(base: str, quote: str) -> tuple[SpreadModel, str]:
    """The spread model for a pair from ``simulator/data/spreads.yaml`` and where its base came from.

    Listed pairs get their typical retail spread in pips; others a spread in basis points by
    tier: both currencies in the G10 list, or otherwise (emerging or historical currencies).
    """
    table = _spread_table()
    symbol = base + quote
    pips = table["pairs"].get(symbol)
    if pips is not None:
        return SpreadModel(base_pips=float(pips)), f"{symbol}: typical retail spread {pips:g} pips (spreads.yaml)"
    g10 = set(table["g10"])
    tier = "g10_cross_bps" if base in g10 and quote in g10 else "other_bps"
    bps = float(table[tier])
    where = f"{symbol}: not listed in spreads.yaml; {tier.replace('_bps', '')} default {bps:g} bp"
    return SpreadModel(base_bps=bps), where
