"""One interface for every sizing policy: ``predict(observation) -> (action, state)``.

Why: trained agents and rule-based baselines must be evaluated by the same loop on the same
bars. stable-baselines3 models already answer ``predict(obs, state, episode_start,
deterministic)``; rule-based policies answer the same call. They need raw quantities the
standardised observation does not carry (the GARCH forecast, the VaR, prices), so they are
*bound* to an :class:`AccountView` — the prepared market arrays, the env config and the live
account state — and read row ``t`` of it (data <= t only, as the observation does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from envs.config import EnvConfig
from envs.core import BatchState, var_budget_fraction
from envs.data import EnvData


@runtime_checkable
class Policy(Protocol):
    """What the evaluation loop calls (SB3's ``BaseAlgorithm.predict`` signature)."""

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        ...


@dataclass(eq=False)
class AccountView:
    """Read-only window on the accounts a policy acts for: arrays, config, live state.

    ``state.t[i]`` is the bar at which account i decides; everything a policy reads must be
    at rows <= that bar.
    """

    data: EnvData
    config: EnvConfig
    state: BatchState

    @property
    def t(self) -> np.ndarray:
        return self.state.t

    def unit_tables(self) -> np.ndarray:
        """(time, pair, 3): the base rule's size and the VaR budget's long and short sizes at each bar,
        from the env's own step (:func:`envs.step.unit_tables`); computed once per (data, config)."""
        return _unit_tables(self.data, self.config)

    def exposure_fraction(self) -> np.ndarray:
        """Current signed exposure per pair as a fraction of the maximum notional (N, pair)."""
        t = self.state.t
        exposure = self.state.units * self.data.close[t] * self.data.conv[t]
        max_notional = self.config.account.max_leverage * np.maximum(self.state.equity, 1e-12)
        return exposure / max_notional[:, None]


_UNITS: list[tuple[EnvData, bytes, np.ndarray]] = []  # the last few (data, parameters, tables)


def _unit_tables(data: EnvData, config: EnvConfig) -> np.ndarray:
    """:meth:`AccountView.unit_tables`, cached: a runner makes a new view every step."""
    from envs import step
    from envs.core import bars_per_year

    prm = step.pack_params(config, data.n_pairs, data.corr is not None, bars_per_year(data))
    key = prm.tobytes()
    for cached, cached_key, tables in _UNITS:
        if cached is data and cached_key == key:
            return tables
    out = np.zeros((data.n_bars, data.n_pairs, 3))
    step.unit_tables(step.pack_market(data, prm), prm, out)
    _UNITS.append((data, key, out))
    del _UNITS[:-4]
    return out


def fraction_to_action(fraction: np.ndarray, view: AccountView) -> np.ndarray:
    """Map a signed target exposure (fraction of max leverage, (N, pair)) to the env's action.

    ``exposure`` mode: the fraction itself, clipped to [-1, 1]. ``sizing`` mode: the direction
    is the env's momentum signal, so only the size ``|fraction|`` counts where the fraction
    agrees with the signal (0 otherwise), in the env's ``size_unit`` (max leverage or the VaR
    budget's position; a target beyond one unit is capped there); the action is ``2 · size − 1``.
    ``residual`` mode: ``ln(size / base) / ln(size_range)`` where the fraction agrees with the
    signal, the smallest multiplier (-1) otherwise (this mode cannot go against the signal).
    ``direction`` mode: the fraction in VaR budgets of its side, over ``size_range``.
    """
    fraction = np.clip(np.asarray(fraction, dtype=np.float64), -1.0, 1.0)
    mode = view.config.action_mode
    if mode == "exposure":
        return fraction.astype(np.float32)
    t = view.state.t
    signal = view.data.signal[t]
    if mode in ("residual", "direction"):
        units = view.unit_tables()[t]  # (N, pair, 3): base rule, VaR budget long, short
        span = float(view.config.size_range)
        with np.errstate(divide="ignore", invalid="ignore"):
            if mode == "residual":
                agree = (np.sign(fraction) == signal) & (signal != 0) & (units[..., 0] > 0)
                action = np.where(agree, np.log(np.abs(fraction) / units[..., 0]) / np.log(span), -1.0)
            else:
                budget = np.where(fraction < 0, units[..., 2], units[..., 1])
                action = np.where(budget > 0, fraction / (span * budget), 0.0)
        return np.clip(np.nan_to_num(action, nan=-1.0 if mode == "residual" else 0.0), -1.0, 1.0).astype(np.float32)
    size = np.where(np.sign(fraction) == signal, np.abs(fraction), 0.0)
    if view.config.size_unit == "var_budget":  # size 1 is the VaR budget's position, not max leverage
        unit = var_budget_fraction(signal, view.data.var_long[t], view.data.var_short[t], view.config.var_limit,
                                   view.config.account.max_leverage)
        with np.errstate(divide="ignore", invalid="ignore"):
            size = np.where(unit > 0, np.minimum(size / unit, 1.0), 0.0)
    return (2.0 * size - 1.0).astype(np.float32)
