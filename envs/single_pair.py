"""Scalar fast path of :class:`envs.core.FxRiskCore` for one account on one pair.

Why: a single environment steps one account, and numpy's per-call overhead on
one-element arrays costs ~0.5 ms a step. This is the same arithmetic on Python floats,
in the same order, over lists — tests check it against the array core step by step
(the array core is the oracle), so the two cannot drift apart.
"""

from __future__ import annotations

import math

import numpy as np

from envs.config import EnvConfig
from envs.core import ACCOUNT_BOUND, UTILISATION_CAP
from envs.data import EnvData


class SinglePairCore:
    """One account on a one-pair :class:`EnvData`; mirrors ``FxRiskCore.step`` and ``observe``."""

    def __init__(self, data: EnvData, config: EnvConfig) -> None:
        if data.n_pairs != 1:
            raise ValueError("SinglePairCore needs a one-pair market")
        self.data = data
        self.config = config
        col = lambda a: a[:, 0].astype(float).tolist()  # noqa: E731
        self.open, self.close, self.spread = col(data.open), col(data.close), col(data.spread)
        self.liquidity, self.conv, self.sigma = col(data.liquidity), col(data.conv), col(data.sigma)
        self.var_long, self.var_short, self.signal = col(data.var_long), col(data.var_short), col(data.signal)
        self.days = data.days.astype(float).tolist()
        self.differential = float(data.differential[0])
        self.window = config.window
        self.market_dim = config.window * data.features.shape[1]
        self.sizing = config.action_mode == "sizing"
        self.var_budget = config.size_unit == "var_budget"
        self.obs_dim = self.market_dim + (2 if self.sizing else 1) + 5
        # Row t: the market part of the observation at t, followed by room for the account part,
        # so an observation is one row copy plus a few writes.
        windows = np.lib.stride_tricks.sliding_window_view(data.features, config.window, axis=0)
        table = np.zeros((data.n_bars, self.obs_dim), dtype=np.float32)
        table[config.window - 1 :, : self.market_dim] = windows.transpose(0, 2, 1).reshape(len(windows), -1)
        self.table = table
        self.var_limit = config.var_limit
        acct, ex = config.account, config.execution
        self.leverage = acct.max_leverage
        self.margin_rate = acct.margin_rate
        self.stop_out = acct.stop_out_level
        self.margin_call = acct.margin_call_level
        self.initial = acct.initial_equity
        self.participation = ex.max_participation
        self.impact_y = ex.impact_coefficient
        self.slip = ex.slippage_bps * 1e-4
        self.spread_mult = ex.spread_multiplier
        self.commission_pm = ex.commission_per_million
        self.markup = config.financing.markup
        self.shield = config.var_mode == "shield"
        self.reset(data.first_step, data.first_step + 1)

    def reset(self, start: int, end: int) -> None:
        self.t, self.end = start, end
        self.cash = self.initial
        self.units = 0.0
        self.avg = math.nan
        self.quote = 0.0
        self.peak = self.initial
        self.equity = self.initial
        self.dsr_a = self.dsr_b = 0.0
        self.last_scale = 1.0

    def _var(self, exposure: float, t: int) -> float:
        return abs(exposure * (self.var_long[t] if exposure >= 0 else self.var_short[t]))

    def observe(self) -> np.ndarray:
        t, eq, units = self.t, self.equity, self.units
        out = self.table[t].copy()
        close, conv = self.close[t], self.conv[t]
        exposure = units * close * conv
        eq_safe = eq if eq > 1e-12 else 1e-12
        if units != 0:
            unrealised = units * (close - (0.0 if math.isnan(self.avg) else self.avg)) * conv
            util = abs(exposure * (self.var_long[t] if exposure >= 0 else self.var_short[t])) / (
                self.var_limit * eq_safe)
            if util > UTILISATION_CAP:
                util = UTILISATION_CAP
        else:
            unrealised = util = 0.0
        margin = abs(exposure) * self.margin_rate / eq_safe
        b = ACCOUNT_BOUND
        frac = min(max(exposure / (self.leverage * eq_safe), -b), b)
        tail = (min(max(unrealised / eq_safe, -b), b), min(max(util, -b), b), min(max(margin, -b), b),
                min(max(1.0 - eq / self.peak, -b), b), min(max(self.last_scale, -b), b))
        out[self.market_dim :] = (frac, self.signal[t], *tail) if self.sizing else (frac, *tail)
        return out

    def _fill(self, order: float, mid: float, spread: float, liquidity: float, sigma: float, conv: float,
              cap: float) -> tuple[float, float, float, float, float, float, float]:
        """(filled, price, quote_delta, spread_cost, impact_cost, slippage_cost, commission)."""
        filled = max(-cap, min(order, cap))
        size = abs(filled)
        participation = size / liquidity if (math.isfinite(liquidity) and liquidity > 0) else 0.0
        vol = sigma if math.isfinite(sigma) else 0.0
        impact = self.impact_y * vol * math.sqrt(participation)
        half = 0.5 * spread * self.spread_mult
        side = (filled > 0) - (filled < 0)
        price = mid + side * (half + mid * (impact + self.slip))
        notional = size * mid * conv
        commission = notional * self.commission_pm * 1e-6
        return (filled, price, -filled * price, size * half * conv, notional * impact, notional * self.slip,
                commission)

    def step(self, action: float) -> tuple[float, bool, bool, dict]:
        cfg = self.config
        t = self.t
        n = t + 1
        close_t, conv_t = self.close[t], self.conv[t]
        eq_t = self.equity
        limit = cfg.var_limit * eq_t
        if self.sizing:
            size = min(max((action + 1.0) * 0.5, 0.0), 1.0)
            if self.var_budget:  # envs.core.var_budget_fraction for one pair
                side = self.var_short[t] if self.signal[t] < 0 else self.var_long[t]
                size *= min(cfg.var_limit / (side * self.leverage), 1.0) if side > 0 else 0.0
            frac = size * self.signal[t]
        else:
            frac = min(max(action, -1.0), 1.0)
        requested = frac * (self.leverage * eq_t)
        var_requested = self._var(requested, t)
        scale = 1.0
        target_exposure = requested
        units = self.units
        if self.shield:
            scale = min(max(limit / var_requested, 0.0), 1.0) if var_requested > limit else 1.0
            target_exposure = requested * scale
            target_units = target_exposure / (close_t * conv_t)
            cap = math.inf if abs(target_units) < abs(units) else self.participation * self.liquidity[n]
            reachable = units + max(-cap, min(target_units - units, cap))
            reach_var = self._var(reachable * close_t * conv_t, t)
            second = min(max(limit / reach_var, 0.0), 1.0) if reach_var > limit else 1.0
            if second < 1.0:
                target_exposure = reachable * close_t * conv_t * second
            scale = scale * second
        target_units = target_exposure / (close_t * conv_t)

        # simulator.engine.step_accounts, scalar
        open_n, close_n, spread_n, liq_n = self.open[n], self.close[n], self.spread[n], self.liquidity[n]
        conv_n, sigma_t = self.conv[n], self.sigma[t]
        held = units * open_n * conv_t
        day_fraction = self.days[t] / 365.0
        carry = held * self.differential * day_fraction
        fin_cost = abs(held) * self.markup * day_fraction
        cash = self.cash + carry - fin_cost
        quote = self.quote
        eq_open = cash + (units * open_n + quote) * conv_t
        gross = abs(target_units * open_n * conv_t)
        lev_limit = self.leverage * max(eq_open, 0.0)
        if gross > lev_limit:
            target_units = target_units * (lev_limit / gross if gross > 0 else 1.0)
        cap = self.participation * liq_n
        if self.shield and abs(target_units) < abs(units):
            cap = math.inf
        order = target_units - units
        filled, price, quote_delta, spread_cost, impact_cost, slip_cost, commission = self._fill(
            order, open_n, spread_n, liq_n, sigma_t, conv_t, cap)
        new_units = units + filled
        avg = self.avg
        if new_units == 0:
            avg = math.nan
        elif units * new_units < 0:
            avg = price
        elif filled != 0 and (units * filled > 0 or units == 0):
            avg = ((units * avg if units != 0 else 0.0) + filled * price) / new_units
        units = new_units
        quote = quote + quote_delta
        cash = cash - commission
        if units == 0:  # closed: the quote leg becomes account cash (realised)
            cash = cash + quote * conv_t
            quote = 0.0
        eq = cash + (units * close_n + quote) * conv_n
        margin = abs(units * close_n * conv_n) * self.margin_rate
        level = eq / margin if margin > 0 else math.inf
        stopped = level < self.stop_out or eq <= 0
        liq_cost = 0.0
        if stopped:
            lf = self._fill(-units, close_n, spread_n, liq_n, sigma_t, conv_n, math.inf)
            units = units + lf[0]
            quote = quote + lf[2]
            cash = cash - lf[6]
            if units == 0:
                cash = cash + quote * conv_n
                quote = 0.0
            liq_cost = lf[3] + lf[4] + lf[5] + lf[6]
            avg = math.nan
            eq = cash + (units * close_n + quote) * conv_n
            margin = abs(units * close_n * conv_n) * self.margin_rate
            level = eq / margin if margin > 0 else math.inf

        var_held = self._var(units * close_t * conv_t, t)
        utilisation = var_held / max(limit, 1e-12) if limit > 0 else math.inf
        excess = max(utilisation - 1.0, 0.0)
        r = math.log(max(eq, 1e-12) / max(eq_t, 1e-12))
        drawdown_before = 1.0 - eq_t / self.peak
        peak = max(self.peak, eq)
        drawdown_after = 1.0 - eq / peak
        if cfg.reward == "log_return":
            reward = r
        elif cfg.reward == "differential_sharpe":
            a, b = self.dsr_a, self.dsr_b
            delta_a, delta_b = r - a, r * r - b
            variance = b - a * a
            reward = (b * delta_a - 0.5 * a * delta_b) / max(variance, 1e-20) ** 1.5 if variance > 1e-20 else 0.0
            self.dsr_a, self.dsr_b = a + cfg.dsr_eta * delta_a, b + cfg.dsr_eta * delta_b
        elif cfg.risk_penalty == "variance":
            reward = r - cfg.risk_aversion * r * r
        else:
            reward = r - cfg.risk_aversion * max(drawdown_after - drawdown_before, 0.0)
        if cfg.var_mode == "penalty":
            reward = reward - cfg.var_penalty * excess
        reward = reward * cfg.reward_scale

        self.t = n
        self.cash, self.units, self.avg, self.quote = cash, units, avg, quote
        self.equity, self.peak, self.last_scale = eq, peak, scale
        terminated = stopped or eq <= 0
        truncated = n >= self.end and not terminated
        costs = spread_cost + impact_cost + slip_cost + commission + fin_cost + liq_cost
        info = {
            "t": n, "equity": eq, "cash": cash, "log_return": r, "units": units,
            "exposure": units * close_n * conv_n, "filled": filled,
            "unfilled": order - filled, "fill_price": price if filled != 0 else math.nan,
            "spread_cost": spread_cost, "impact_cost": impact_cost, "slippage_cost": slip_cost,
            "commission": commission, "financing": carry - fin_cost, "financing_cost": fin_cost,
            "liquidation_cost": liq_cost, "costs": costs, "turnover": abs(filled * open_n * conv_t),
            "var": var_held, "var_requested": var_requested, "var_limit": limit, "var_utilisation": utilisation,
            "var_breach": utilisation > 1.0 + 1e-9, "cost": excess, "shield_scale": scale,
            "clipped": scale < 1.0 - 1e-12, "margin_level": level, "margin_call": level < self.margin_call,
            "stopped_out": stopped, "drawdown": drawdown_after,
        }
        return reward, terminated, truncated, info

