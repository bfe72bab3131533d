"""A modelled bid-ask spread (and depth) for sources that carry none.

Why a model: the bundled sample, Yahoo and most bar exports have one price side and
no spread, yet costs drive position sizing. Documented assumptions, in pips:

* a base spread for liquid hours (retail EURUSD 0.8–1.5 pip, see REFERENCES.md);
* multiplied by a UTC hour-of-day profile (widest around the 21–22 UTC rollover, wider
  in the Asian session);
* multiplied by ``(sigma_t / sigma_typical) ** vol_elasticity``, where ``sigma_t`` is an
  exponentially weighted average of the bar's high-low log range and ``sigma_typical`` the
  expanding mean of that average — both use bars up to t only (no lookahead);
* capped at ``max_multiple`` × base.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Multipliers of the base spread by UTC hour (0..23): rollover at 21-22 UTC is widest.
DEFAULT_HOURLY_PROFILE: tuple[float, ...] = (
    1.4, 1.3, 1.3, 1.2, 1.2, 1.2, 1.1, 1.0, 1.0, 1.0, 1.0, 1.0,
    1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.1, 1.2, 1.4, 2.5, 2.0, 1.6,
)


@dataclass(frozen=True, kw_only=True)
class SpreadModel:
    """Spread in pips = base × hour profile × causal volatility factor (see module doc)."""

    base_pips: float = 1.0
    hourly_profile: tuple[float, ...] = DEFAULT_HOURLY_PROFILE
    vol_elasticity: float = 0.5
    vol_halflife_bars: float = 24.0
    max_multiple: float = 20.0

    def __post_init__(self) -> None:
        if not self.base_pips > 0:
            raise ValueError(f"base_pips must be > 0, got {self.base_pips}")
        if len(self.hourly_profile) != 24 or min(self.hourly_profile) <= 0:
            raise ValueError("hourly_profile needs 24 positive multipliers (UTC hours 0..23)")
        if self.vol_elasticity < 0:
            raise ValueError(f"vol_elasticity must be >= 0, got {self.vol_elasticity}")
        if not self.vol_halflife_bars > 0:
            raise ValueError(f"vol_halflife_bars must be > 0, got {self.vol_halflife_bars}")
        if not self.max_multiple >= 1:
            raise ValueError(f"max_multiple must be >= 1, got {self.max_multiple}")

    def spread_pips(self, index: pd.DatetimeIndex, high: np.ndarray, low: np.ndarray) -> np.ndarray:
        """Modelled spread in pips for each bar; row t uses bars <= t only."""
        hours = np.asarray(index.hour, dtype=np.int64)
        profile = np.asarray(self.hourly_profile)[hours]
        log_range = np.log(np.asarray(high, float) / np.asarray(low, float))
        sigma = pd.Series(log_range).ewm(halflife=self.vol_halflife_bars, adjust=True).mean().to_numpy()
        typical = pd.Series(sigma).expanding().mean().to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(typical > 0, sigma / typical, 1.0)
        factor = np.clip(ratio, 0.25, None) ** self.vol_elasticity
        return np.minimum(self.base_pips * profile * factor, self.base_pips * self.max_multiple)

    def spread_price(self, index: pd.DatetimeIndex, high: np.ndarray, low: np.ndarray, pip_size: float) -> np.ndarray:
        """Modelled spread in price units (quote currency per unit of base)."""
        return self.spread_pips(index, high, low) * pip_size
