"""The numpy array oracle of the environment's step: readable array code, independent of :mod:`envs.step`.

Why: the step is written once and compiled (:mod:`envs.step`); this is the same rule set
written a second way — whole-batch numpy arrays over the pure accounting functions of
:mod:`simulator.broker.engine` and :mod:`simulator.broker.execution` — so tests can require both to give
the same trajectories. Tests only: the library has one step.
"""

from __future__ import annotations

import numpy as np

from envs.config import EnvConfig
from envs.core import ACCOUNT_BOUND, UTILISATION_CAP, BatchState, FxRiskCore, bars_per_year, var_budget_fraction
from envs.data import EnvData
from envs.errors import STEP_PAST_DATA, ResetNeededError
from envs.rewards import differential_sharpe, log_return, risk_penalty
from envs.risk_limit import portfolio_var, shield_scale
from simulator.broker.account import used_margin
from simulator.broker.engine import BarData, step_accounts
from simulator.broker.execution import fill_caps


class NumpyCore:
    """Observe and step a :class:`BatchState` with numpy arrays (the oracle of :class:`envs.core.FxRiskCore`)."""

    def __init__(self, data: EnvData, config: EnvConfig) -> None:
        self.data = data
        self.config = config = config.in_bars(data.bar_hours)
        self.n_pairs = data.n_pairs
        self._offsets = np.arange(-config.window + 1, 1)
        self.reductions_uncapped = config.var_mode == "shield"

    reset_accounts = FxRiskCore.reset_accounts  # episodes are not the step: shared

    def _exposure(self, state: BatchState, t: np.ndarray) -> np.ndarray:
        return state.units * self.data.close[t] * self.data.conv[t]

    def _var(self, exposure: np.ndarray, t: np.ndarray) -> np.ndarray:
        d = self.data
        return portfolio_var(exposure, d.var_long[t], d.var_short[t], None if d.corr is None else d.corr[t])

    def observe(self, state: BatchState) -> np.ndarray:
        """Observations (batch, obs_dim) float32 at each account's bar t."""
        d, cfg = self.data, self.config
        t = state.t
        market = d.features[t[:, None] + self._offsets].reshape(len(t), -1)
        eq = state.equity
        exposure = self._exposure(state, t)
        max_notional = cfg.account.max_leverage * np.maximum(eq, 1e-12)
        parts = [market, np.clip(exposure / max_notional[:, None], -ACCOUNT_BOUND, ACCOUNT_BOUND)]
        if cfg.action_mode == "sizing":
            parts.append(d.signal[t])
        parts += self._decision(exposure / max_notional[:, None], t)
        unrealised = np.nansum(state.units * (d.close[t] - np.nan_to_num(state.avg_price, nan=0.0)) * d.conv[t]
                               * (state.units != 0), axis=1)
        limit = cfg.var_limit * np.maximum(eq, 1e-12)
        utilisation = np.minimum(self._var(exposure, t) / limit, UTILISATION_CAP)
        margin = used_margin(state.units, d.close[t], d.conv[t], cfg.account.margin_rate) / np.maximum(eq, 1e-12)
        drawdown = 1.0 - eq / state.peak
        account = np.clip(np.stack([unrealised / np.maximum(eq, 1e-12), utilisation, margin, drawdown,
                                    state.last_scale], axis=1), -ACCOUNT_BOUND, ACCOUNT_BOUND)
        parts.append(account)
        return np.concatenate(parts, axis=1).astype(np.float32)

    def _decision(self, held: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
        """Signal strength, volatility ratio, gap to the base rule's target (VaR budgets), in band."""
        d, cfg = self.data, self.config
        signal, sigma = d.signal[t], d.sigma[t]
        side = np.where(signal > 0, d.var_long[t], d.var_short[t])
        lev = cfg.account.max_leverage
        if cfg.base_rule == "vol_target":
            ok = np.isfinite(sigma) & (sigma > 0)
            base = np.where(ok, np.minimum(cfg.base_target_vol / np.where(ok, sigma, 1.0)
                                           / np.sqrt(bars_per_year(d)), cfg.base_max_leverage), 0.0) / lev
        else:
            active = np.maximum((signal != 0).sum(axis=1, keepdims=True), 1)
            ok = np.isfinite(side) & (side > 0)
            base = np.where(ok, cfg.base_var_budget * cfg.var_limit / (np.where(ok, side, 1.0) * active), 0.0) / lev
        target = np.minimum(base, 1.0) * signal
        budget = var_budget_fraction(np.where(signal < 0, -1.0, 1.0), d.var_long[t], d.var_short[t],
                                     cfg.var_limit, lev)
        gap = np.where(budget > 0, (held - target) / np.where(budget > 0, budget, 1.0), 0.0)
        inside = (held * target > 0) & (np.abs(target - held) <= cfg.rebalance_band * np.abs(target))
        bound = ACCOUNT_BOUND
        return [np.clip(d.signal_strength[t], -bound, bound), np.clip(d.vol_ratio[t], -bound, bound),
                np.clip(gap, -bound, bound), inside.astype(np.float64)]

    def target_fraction(self, action: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Requested exposure per pair as a signed fraction of the maximum leverage.

        Sizing mode: the action in [-1, 1] maps to a size ``(a + 1) / 2`` in [0, 1] (a symmetric
        action space, as PPO's Gaussian policy prefers) times the signal's direction.
        """
        if self.config.action_mode == "sizing":
            signal = self.data.signal[t]
            size = np.clip((action + 1.0) * 0.5, 0.0, 1.0)
            if self.config.size_unit == "var_budget":
                size = size * var_budget_fraction(signal, self.data.var_long[t], self.data.var_short[t],
                                                  self.config.var_limit, self.config.account.max_leverage)
            return size * signal
        return np.clip(action, -1.0, 1.0)

    def step(self, state: BatchState, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Advance every account one bar; returns ``(reward, terminated, truncated, info)`` arrays."""
        d, cfg = self.data, self.config
        t = state.t
        if len(t) and ((t >= state.end).any() or t.max() + 1 >= d.n_bars or t.min() < 0):
            raise ResetNeededError(STEP_PAST_DATA)  # as the compiled kernels: never index past the data
        nxt = t + 1
        close_t, conv_t = d.close[t], d.conv[t]
        eq_t = state.equity
        limit = cfg.var_limit * eq_t

        # Requested position and its VaR at the decision (prices and forecasts of bar t).
        requested = self.target_fraction(action, t) * (cfg.account.max_leverage * eq_t)[:, None]
        var_requested = self._var(requested, t)
        scale = np.ones(len(t))
        target_exposure = requested
        if cfg.var_mode == "shield":
            scale = shield_scale(var_requested, limit)
            target_exposure = requested * scale[:, None]
            # Partial fills of a hedge leg could leave a riskier mix: check the fillable position.
            target_units = target_exposure / (close_t * conv_t)
            cap = fill_caps(state.units, target_units, d.liquidity[nxt], cfg.execution, reductions_uncapped=True)
            reachable = state.units + np.clip(target_units - state.units, -cap, cap)
            second = shield_scale(self._var(reachable * close_t * conv_t, t), limit)
            target_exposure = np.where((second < 1.0)[:, None], reachable * close_t * conv_t * second[:, None],
                                       target_exposure)
            scale = scale * second
        target_units = target_exposure / (close_t * conv_t)

        bar = BarData(close_now=close_t, open_next=d.open[nxt], close_next=d.close[nxt], spread_next=d.spread[nxt],
                      liquidity_next=d.liquidity[nxt], sigma=d.sigma[t], conv=conv_t, conv_next=d.conv[nxt],
                      differential=d.differential, days=d.days[t])
        res = step_accounts(state.cash, state.units, state.avg_price, target_units, bar, cfg.account,
                            cfg.execution, cfg.financing.markup, quote_cash=state.quote_cash,
                            reductions_uncapped=self.reductions_uncapped)

        # VaR of the position now held, valued at the decision, with the forecast for bar t+1.
        var_held = self._var(res.units * close_t * conv_t, t)
        utilisation = np.where(limit > 0, var_held / np.maximum(limit, 1e-12), np.inf)
        excess = np.maximum(utilisation - 1.0, 0.0)

        r = log_return(eq_t, res.equity)
        drawdown_before = 1.0 - eq_t / state.peak
        peak = np.maximum(state.peak, res.equity)
        drawdown_after = 1.0 - res.equity / peak
        if cfg.reward == "log_return":
            reward = r.copy()
        elif cfg.reward == "differential_sharpe":
            reward, state.dsr_a, state.dsr_b = differential_sharpe(r, state.dsr_a, state.dsr_b, cfg.dsr_eta)
        else:
            reward = r - risk_penalty(r, cfg.risk_penalty, cfg.risk_aversion, drawdown_before, drawdown_after)
        if cfg.var_mode == "penalty":
            reward = reward - cfg.var_penalty * excess
        reward = reward * cfg.reward_scale

        state.t = nxt
        state.cash, state.units, state.avg_price = res.cash, res.units, res.avg_price
        state.quote_cash = res.quote_cash
        state.equity, state.peak, state.last_scale = res.equity, peak, scale
        terminated = res.stopped_out | (res.equity <= 0)
        truncated = (nxt >= state.end) & ~terminated
        fin = res.carry.sum(axis=1) - res.financing_cost.sum(axis=1)
        liq_cost = res.liquidation.total_cost.sum(axis=1) if res.liquidation is not None else np.zeros(len(t))
        info = {
            "t": nxt,
            "equity": res.equity,
            "cash": res.cash,
            "log_return": r,
            "units": res.units,
            "exposure": res.units * d.close[nxt] * d.conv[nxt],
            "filled": res.fill.filled,
            "unfilled": res.fill.unfilled,
            "fill_price": res.fill.price,
            "spread_cost": res.fill.spread_cost.sum(axis=1),
            "impact_cost": res.fill.impact_cost.sum(axis=1),
            "slippage_cost": res.fill.slippage_cost.sum(axis=1),
            "commission": res.fill.commission.sum(axis=1),
            "financing": fin,
            "financing_cost": res.financing_cost.sum(axis=1),
            "liquidation_cost": liq_cost,
            "costs": res.costs,
            "turnover": np.abs(res.fill.filled * bar.open_next * conv_t).sum(axis=1),
            "var": var_held,
            "var_requested": var_requested,
            "var_limit": limit,
            "var_utilisation": utilisation,
            "var_breach": utilisation > 1.0 + 1e-9,
            "cost": excess,
            "shield_scale": scale,
            "clipped": scale < 1.0 - 1e-12,
            "margin_level": res.margin_level,
            "margin_call": res.margin_call,
            "stopped_out": res.stopped_out,
            "drawdown": drawdown_after,
        }
        return reward, terminated, truncated, info


class OracleEnv:
    """A single environment on :class:`NumpyCore` (reset and step as :class:`envs.fx_env.FxRiskEnv`)."""

    def __init__(self, data: EnvData, config: EnvConfig) -> None:
        import gymnasium as gym
        from gymnasium import spaces

        from envs.core import FxRiskCore as _Core

        self._gym = gym
        self.core = NumpyCore(data, config)
        self._shape_core = _Core(data, config)  # episode bounds and spaces only
        self.data, self.config = data, self.core.config
        self.action_space = spaces.Box(-1.0, 1.0, shape=(data.n_pairs,), dtype=np.float32)
        self.observation_space = spaces.Box(-100.0, 100.0, shape=(self._shape_core.obs_dim,), dtype=np.float32)
        self.state = BatchState.empty(1, data.n_pairs)
        self.np_random = None
        self.unwrapped = self

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        from gymnasium.utils import seeding

        if seed is not None or self.np_random is None:
            self.np_random, _ = seeding.np_random(seed)
        lo, hi = self._shape_core.start_bounds()
        start = (options or {}).get("start")
        if start is None:
            start = lo if hi == lo else int(self.np_random.integers(lo, hi + 1))
        self.core.reset_accounts(self.state, np.zeros(1, dtype=np.int64), np.array([int(start)]))
        return self.core.observe(self.state)[0], {"t": int(self.state.t[0]), "equity": float(self.state.equity[0])}

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        from envs.fx_env import check_action

        arr = check_action(action, self.action_space, exact=True).reshape(1, -1)
        reward, terminated, truncated, info = self.core.step(self.state, arr)
        obs = self.core.observe(self.state)[0]
        out = {k: (v[0] if np.ndim(v) == 1 else v[0].copy()) for k, v in info.items()}
        out = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in out.items()}
        return obs, float(reward[0]), bool(terminated[0]), bool(truncated[0]), out
