"""``FxRisk-v0``: a Gymnasium FOREX environment for position sizing under a VaR limit.

A thin adapter: the logic is the one compiled step of :mod:`envs.step` (execution,
accounting, VaR limit, reward, observation), held by :mod:`envs.core`. Each step: the agent asks for target
exposures at the close of bar t (seeing data <= t only); the order fills at the open of
bar t+1 at bid/ask with costs; the account is marked at the close of t+1. Stop-out →
``terminated``; end of the episode or data → ``truncated``.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.config import EnvConfig
from envs.core import ACCOUNT_FEATURES, DECISION_FEATURES, OBS_BOUND, FxRiskCore, SingleAccount
from envs.data import EnvData, prepare_env_data
from envs.errors import InvalidActionError, ResetNeededError
from forecasters.cache import ForecastCache
from simulator.data.market import MarketData


def check_action(action: Any, space: spaces.Box, *, exact: bool = False) -> np.ndarray:
    """The action as float64 (batch..., pair); NaN or out-of-space actions raise one clear line.

    ``exact``: the shape must be the space's own (a single environment takes one action).
    """
    arr = np.asarray(action, dtype=np.float64)
    if (arr.shape != space.shape) if exact else (arr.ndim < len(space.shape)
                                                 or arr.shape[-len(space.shape):] != space.shape):
        raise InvalidActionError(f"action shape {arr.shape} does not match the action space {space.shape} "
                                 f"(one target per pair)")
    if not np.isfinite(arr).all():
        raise InvalidActionError(f"action contains NaN or inf: {arr.tolist()} — the policy produced a non-finite "
                                 f"output")
    lo, hi = float(space.low.min()), float(space.high.max())
    if (arr < lo - 1e-6).any() or (arr > hi + 1e-6).any():
        raise InvalidActionError(f"action {arr.tolist()} is outside the action space [{lo}, {hi}] — clip it or "
                                 f"rescale the policy output")
    return arr


_ndarray = np.ndarray
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_FLOATS = (_F32, _F64)


def observation_names(core: FxRiskCore) -> list[str]:
    """Names of the observation entries, in order (for inspection and logging)."""
    names = [f"t-{core.config.window - 1 - k}:{f}" for k in range(core.config.window)
             for f in core.data.feature_names]
    names += [f"{s}:exposure_fraction" for s in core.data.symbols]
    if core.config.action_mode != "exposure":
        names += [f"{s}:signal" for s in core.data.symbols]
    names += [f"{s}:{f}" for f in DECISION_FEATURES for s in core.data.symbols]
    return names + list(ACCOUNT_FEATURES)


class FxRiskEnv(gym.Env):
    """One FX trading account over one market (one or several pairs), sized under a VaR limit.

    ## Description
    After the close of bar t the agent sets target positions, seeing data <= t only. The orders
    fill at the open of bar t+1 at bid/ask with commission, slippage and square-root impact
    against the bar's depth (partial fills beyond ``execution.max_participation``); financing
    accrues over the calendar time held; the account is marked at the close of t+1. A one-bar
    VaR limit (filtered historical simulation on the volatility forecast) acts as a shield, a
    reward penalty or a constrained-RL cost (``var_mode``). Money is in the account currency.

    ## Action Space
    ``Box(-1, 1, shape=(P,), float32)``, one entry per pair. ``action_mode="exposure"``: target
    exposure as a fraction of the maximum leverage (sign = direction). ``"sizing"``: the
    direction is a time-series momentum signal; the size is ``(a + 1) / 2`` in [0, 1] of the
    ``size_unit`` (maximum leverage, or the position whose own VaR is the limit).
    ``"residual"``: ``base_rule``'s size (var_budget or vol_target) times
    ``exp(a · ln size_range)`` along the signal (a = 0: the rule). ``"direction"``: sign and size
    ``a · size_range`` VaR budgets. NaN or out-of-range actions raise
    :class:`~envs.errors.InvalidActionError`.

    ## Observation Space
    ``Box(-100, 100, shape=(window × F + P × (5 or 6) + 5,), float32)``; names in order from
    :func:`observation_names`:

    ========================  =====================================================================
    entries                   what (units)
    ========================  =====================================================================
    ``t-k:<pair>:<feature>``  ``window`` bars of causal market features per pair — returns, ranges,
                              EWMA vols, ATR / RSI / Bollinger width, hour, spread, liquidity, the
                              volatility forecast and the VaR — each standardised with an expanding
                              mean and deviation (rows <= t) and clipped at ±10
    ``<pair>:exposure_fraction``  current exposure / (maximum leverage × equity)
    ``<pair>:signal``         momentum direction in {-1, 0, 1} (every mode but exposure)
    ``<pair>:signal_strength``  momentum t-statistic: lookback log return / (σ̂ √lookback)
    ``<pair>:vol_ratio``      log(σ̂ / its long-run level), the level the mean of log σ̂ over bars <= t
    ``<pair>:target_gap``     (exposure − the base rule's target) / one VaR budget, both as fractions
                              of the maximum notional (``base_rule``: what residual mode scales)
    ``<pair>:in_band``        1 when the position is within ``rebalance_band`` of that target
    ``unrealised_pnl``        open P&L / equity
    ``var_utilisation``       position VaR / VaR limit (capped at 10)
    ``margin_usage``          used margin / equity
    ``drawdown``              1 − equity / peak equity
    ``last_shield_scale``     the shield's last scale of the requested position (1 = untouched)
    ========================  =====================================================================

    ## Rewards
    ``log_return`` of equity net of every cost (default), ``differential_sharpe`` (Moody &
    Saffell, EMA rate ``dsr_eta``) or ``risk_penalised`` (log return minus ``risk_aversion`` ×
    squared return or drawdown increase); in ``penalty`` mode minus ``var_penalty`` × excess
    VaR utilisation; times ``reward_scale``. ``info`` carries every cost, the VaR, its limit,
    utilisation, breach, shield scale, fills, margin level, the no-trade band's holds, and
    ``cost`` (excess utilisation, the constrained-RL signal); every entry, with its unit, is
    declared in :mod:`envs.fields`.

    ## Starting State
    Flat (no position), equity ``account.initial_equity``, at a random first bar drawn from the
    env's seeded ``np_random`` (``episode_bars`` set) or at the span's first usable bar (None).

    ## Episode End
    ``terminated``: stop-out (margin level below ``account.stop_out_level``, or equity wiped
    out by a gap). ``truncated``: ``episode_bars`` steps taken or the last bar of the span. A
    ``step`` before ``reset`` or after the end raises :class:`~envs.errors.ResetNeededError`.

    ## Arguments
    ``market`` (:class:`~simulator.data.market.MarketData`, default the bundled EURUSD 2017 sample),
    ``config`` (:class:`~envs.config.EnvConfig`; durations converted to this market's bars),
    ``data`` (prepared :class:`~envs.data.EnvData` instead of a market), ``cache`` (forecast
    cache).
    ``gym.make("FxRisk-v0", market=..., config=...)``.

    ## Version History
    * v0: first release (one-bar FHS VaR limit as shield / penalty / cost; exposure and sizing
      actions; durations in trading time; default depth for markets without liquidity).
    """

    metadata = {"render_modes": []}

    def __init__(self, market: MarketData | None = None, config: EnvConfig | None = None, *,
                 data: EnvData | None = None, cache: ForecastCache | None = None) -> None:
        super().__init__()
        self.config = config or EnvConfig()
        if data is None:
            if market is None:
                from simulator.data.sample import load_sample

                market = load_sample()
            data = prepare_env_data(market, self.config, cache=cache)
        self.data = data
        self.core = FxRiskCore(data, self.config)
        self.config = self.core.config  # durations resolved to bars of this data
        self.observation_space = spaces.Box(-OBS_BOUND, OBS_BOUND, shape=(self.core.obs_dim,), dtype=np.float32)
        # Both modes take [-1, 1]: exposure directly; sizing maps it to a size (a + 1) / 2 in [0, 1].
        self.action_space = spaces.Box(-1.0, 1.0, shape=(data.n_pairs,), dtype=np.float32)
        self.account = SingleAccount(self.core)  # the compiled step, one call a step
        # Bounds a valid action lies within (the rule of check_action), for the fast check.
        self._action_lo = float(self.action_space.low.min()) - 1e-6
        self._action_hi = float(self.action_space.high.max()) + 1e-6
        self._shape = (data.n_pairs,)
        self._one = (1,) if data.n_pairs == 1 else None  # the one-pair fast check
        self._needs_reset = True  # before the first reset and after an episode ends: step() is refused

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        lo, hi = self.core.start_bounds()
        start = (options or {}).get("start")
        if start is None:
            start = lo if hi == lo else int(self.np_random.integers(lo, hi + 1))
        elif not lo <= int(start) <= self.data.last_step:
            raise ValueError(f"options['start']={start} is outside the usable bars [{lo}, {self.data.last_step}]")
        self.account.reset(int(start), self.core.episode_end(int(start)))
        self._needs_reset = False
        return self.account.observe(), {"t": int(start), "equity": self.account.equity}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise ResetNeededError("FxRiskEnv.step() called before reset() or after the episode ended "
                                   "(terminated or truncated) — call reset() first")
        # The common case (a float array of the space's shape inside it) is checked without numpy calls.
        if type(action) is _ndarray and action.shape == self._one and (action.dtype is _F32 or action.dtype is _F64):
            value = action.item()  # a float for float arrays; anything else takes the checked path
            if type(value) is not float or not self._action_lo <= value <= self._action_hi:  # NaN fails too
                action = check_action(action, self.action_space, exact=True)
        elif not (type(action) is _ndarray and action.shape == self._shape and action.dtype in _FLOATS
                  and self._in_bounds(action)):
            action = check_action(action, self.action_space, exact=True)
        result = self.account.step(action)
        if result[2] or result[3]:
            self._needs_reset = True
        return result

    def _in_bounds(self, action: np.ndarray) -> bool:
        return bool(((action >= self._action_lo) & (action <= self._action_hi)).all())  # NaN fails too
