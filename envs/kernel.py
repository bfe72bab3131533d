"""Compiled (numba) twin of :meth:`envs.core.FxRiskCore.step` and ``observe`` for a batch.

Why: the numpy array core costs ~300 small array calls a step (~0.7 ms whatever the
batch size); a loop over accounts compiled once runs the same arithmetic, in the same
order, in microseconds. Tests run both and require identical trajectories — the numpy
core in :mod:`envs.core` and :mod:`simulator.engine` stays the readable reference.

A one-pair market has its own kernel (:func:`envs.single_pair.pair_batch_step`, ~3x faster:
the single environment's scalar step in a loop, then the observation, in one call; it lives next to
that step because numba's cache does not notice changes to functions in other files). Tests
hold it bit for bit equal to :func:`batch_step`.
Not parallel (``prange``): on this 2-core target the GNU OpenMP layer halves the kernel when
both cores are idle, but is 15-50% slower than one thread when the other core is busy, and it
is not fork-safe (forked workers, as the stress runner's, would be killed); the workqueue layer
is slower than one thread.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from envs.errors import ResetNeededError

# Fields of the packed per-bar market array (time, pair, field).
OPEN, CLOSE, SPREAD, LIQ, CONV, SIGMA, VLONG, VSHORT, SIGNAL = range(9)
N_FIELDS = 9
BOUND = 100.0  # envs.core.ACCOUNT_BOUND
# Float parameters.
(P_LEVERAGE, P_MARGIN_RATE, P_STOP_OUT, P_MARGIN_CALL, P_PARTICIPATION, P_IMPACT, P_SLIP, P_SPREAD_MULT,
 P_COMMISSION_PM, P_MARKUP, P_VAR_LIMIT, P_VAR_PENALTY, P_RISK_AVERSION, P_DSR_ETA, P_REWARD_SCALE) = range(15)
N_PARAMS = 15
# Integer flags.
F_SIZING, F_VAR_MODE, F_REWARD, F_RISK_PENALTY, F_HAS_CORR, F_VAR_BUDGET = range(6)
# Scalar outputs per account.
SCALAR_KEYS = ("reward", "terminated", "truncated", "equity", "cash", "log_return", "spread_cost", "impact_cost",
               "slippage_cost", "commission", "financing", "financing_cost", "liquidation_cost", "costs",
               "turnover", "var", "var_requested", "var_limit", "var_utilisation", "var_breach", "cost",
               "shield_scale", "clipped", "margin_level", "margin_call", "stopped_out", "drawdown")
PAIR_KEYS = ("units", "exposure", "filled", "unfilled", "fill_price")
_S = {k: i for i, k in enumerate(SCALAR_KEYS)}
S_REWARD, S_TERM, S_TRUNC = _S["reward"], _S["terminated"], _S["truncated"]


@njit(cache=True, error_model="numpy")
def _side_var(exposure, var_long, var_short):
    return exposure * (var_long if exposure >= 0 else var_short)


@njit(cache=True, error_model="numpy")
def _portfolio_var(exposure, i, slot, mkt, t, corr, has_corr, signed, p):
    """As :func:`envs.risk_limit.portfolio_var` for exposures ``exposure[i, slot, :]`` (same order).

    Indexes arrays in full rather than taking row views: views cost a reference count each.
    """
    if has_corr == 0 or p == 1:
        total = 0.0
        for j in range(p):
            total += abs(_side_var(exposure[i, slot, j], mkt[t, j, VLONG], mkt[t, j, VSHORT]))
        return total
    for j in range(p):
        signed[i, j] = _side_var(exposure[i, slot, j], mkt[t, j, VLONG], mkt[t, j, VSHORT])
    quad = 0.0
    for a in range(p):
        inner = 0.0
        for j in range(p):
            inner += corr[t, a, j] * signed[i, j]
        quad += signed[i, a] * inner
    return math.sqrt(max(quad, 0.0))


@njit(cache=True, error_model="numpy")
def _shield(var_value, limit):
    if var_value > limit:
        s = limit / (var_value if var_value > 0 else 1.0)
        return min(max(s, 0.0), 1.0)
    return 1.0


@njit(cache=True, error_model="numpy")
def _execute(order, mid, spread, liquidity, sigma, conv, cap, prm, out, i):
    """Fill one pair; writes (filled, price, cash_delta, spread, impact, slippage, commission, quote_delta)."""
    filled = min(max(order, -cap), cap)
    size = abs(filled)
    participation = size / liquidity if (math.isfinite(liquidity) and liquidity > 0) else 0.0
    vol = sigma if math.isfinite(sigma) else 0.0
    impact = prm[P_IMPACT] * vol * math.sqrt(participation)
    slip = prm[P_SLIP]
    half = 0.5 * spread * prm[P_SPREAD_MULT]
    side = 1.0 if filled > 0 else (-1.0 if filled < 0 else 0.0)
    price = mid + side * (half + mid * (impact + slip))
    notional = size * mid * conv
    commission = notional * prm[P_COMMISSION_PM] * 1e-6
    out[i, 0] = filled
    out[i, 1] = price if size > 0 else np.nan
    out[i, 2] = -filled * price * conv - commission
    out[i, 3] = size * half * conv
    out[i, 4] = notional * impact
    out[i, 5] = notional * slip
    out[i, 6] = commission
    out[i, 7] = -filled * price


@njit(cache=True, error_model="numpy")
def batch_step(mkt, days, corr, differential, prm, flags, t_arr, end, cash, units, avg, quote, peak, equity, dsr_a,
               dsr_b, last_scale, action, out_s, out_p):
    """Advance every account one bar in place; fills ``out_s`` (scalars, N) and ``out_p`` (N, P, 5)."""
    n_env, p = units.shape
    fill = np.empty((n_env, 8))
    x = np.empty((n_env, 4, p))  # exposures: 0 requested, 1 target, 2 reachable, 3 temporary
    signed = np.empty((n_env, p))
    hc = flags[F_HAS_CORR]
    for i in range(n_env):  # first, nothing changed: refuse a step past an episode or the data
        if t_arr[i] >= end[i] or t_arr[i] + 1 >= mkt.shape[0] or t_arr[i] < 0:
            raise ResetNeededError("step() of an account past the end of its episode or the data (or before "
                                   "its reset()) — call reset() first")
    for i in range(n_env):
        t = t_arr[i]
        nx = t + 1
        eq_t = equity[i]
        limit = prm[P_VAR_LIMIT] * eq_t
        lev_eq = prm[P_LEVERAGE] * eq_t
        for j in range(p):
            a = action[i, j]
            if flags[F_SIZING] == 1:
                size = min(max((a + 1.0) * 0.5, 0.0), 1.0)
                if flags[F_VAR_BUDGET] == 1:  # envs.core.var_budget_fraction
                    side = mkt[t, j, VSHORT] if mkt[t, j, SIGNAL] < 0 else mkt[t, j, VLONG]
                    unit = prm[P_VAR_LIMIT] / (p * side * prm[P_LEVERAGE]) if side > 0 else 0.0
                    size = size * min(unit, 1.0)
                frac = size * mkt[t, j, SIGNAL]
            else:
                frac = min(max(a, -1.0), 1.0)
            x[i, 0, j] = frac * lev_eq
        var_requested = _portfolio_var(x, i, 0, mkt, t, corr, hc, signed, p)
        scale = 1.0
        for j in range(p):
            x[i, 1, j] = x[i, 0, j]
        if flags[F_VAR_MODE] == 0:
            scale = _shield(var_requested, limit)
            for j in range(p):
                x[i, 1, j] = x[i, 0, j] * scale
                tu = x[i, 1, j] / (mkt[t, j, CLOSE] * mkt[t, j, CONV])
                u = units[i, j]
                cap = math.inf if abs(tu) < abs(u) else prm[P_PARTICIPATION] * mkt[nx, j, LIQ]
                x[i, 2, j] = u + min(max(tu - u, -cap), cap)
                x[i, 3, j] = x[i, 2, j] * mkt[t, j, CLOSE] * mkt[t, j, CONV]
            second = _shield(_portfolio_var(x, i, 3, mkt, t, corr, hc, signed, p), limit)
            if second < 1.0:
                for j in range(p):
                    x[i, 1, j] = x[i, 2, j] * mkt[t, j, CLOSE] * mkt[t, j, CONV] * second
            scale = scale * second
        for j in range(p):
            x[i, 1, j] = x[i, 1, j] / (mkt[t, j, CLOSE] * mkt[t, j, CONV])  # now target units

        # simulator.engine.step_accounts
        day_fraction = days[t] / 365.0
        carry_sum = 0.0
        fin_sum = 0.0
        for j in range(p):
            held = units[i, j] * mkt[nx, j, OPEN] * mkt[t, j, CONV]
            carry_sum += held * differential[j] * day_fraction
            fin_sum += abs(held) * prm[P_MARKUP] * day_fraction
        c = cash[i] + carry_sum - fin_sum
        mtm = 0.0
        for j in range(p):
            mtm += (units[i, j] * mkt[nx, j, OPEN] + quote[i, j]) * mkt[t, j, CONV]
        eq_open = c + mtm
        gross = 0.0
        for j in range(p):
            gross += abs(x[i, 1, j] * mkt[nx, j, OPEN] * mkt[t, j, CONV])
        lev_limit = prm[P_LEVERAGE] * max(eq_open, 0.0)
        if gross > lev_limit:
            g = lev_limit / (gross if gross > 0 else 1.0)
            for j in range(p):
                x[i, 1, j] = x[i, 1, j] * g
        cash_delta = 0.0
        trade_cost = 0.0
        turnover = 0.0
        spread_c = impact_c = slip_c = comm_c = 0.0
        for j in range(p):
            u = units[i, j]
            cap = prm[P_PARTICIPATION] * mkt[nx, j, LIQ]
            if flags[F_VAR_MODE] == 0 and abs(x[i, 1, j]) < abs(u):
                cap = math.inf
            order = x[i, 1, j] - u
            _execute(order, mkt[nx, j, OPEN], mkt[nx, j, SPREAD], mkt[nx, j, LIQ], mkt[t, j, SIGMA], mkt[t, j, CONV], cap, prm, fill, i)
            filled = fill[i, 0]
            price = fill[i, 1]
            new_u = u + filled
            a_old = avg[i, j]
            if new_u == 0:
                a_new = np.nan
            elif u * new_u < 0:
                a_new = price
            elif filled != 0 and (u * filled > 0 or u == 0):
                held_value = u * (0.0 if math.isnan(a_old) else a_old) if u != 0 else 0.0
                a_new = (held_value + filled * (0.0 if math.isnan(price) else price)) / new_u
            else:
                a_new = a_old
            avg[i, j] = a_new
            units[i, j] = new_u
            quote[i, j] = quote[i, j] + fill[i, 7]
            cash_delta += fill[i, 6]
            spread_c += fill[i, 3]
            impact_c += fill[i, 4]
            slip_c += fill[i, 5]
            comm_c += fill[i, 6]
            trade_cost += fill[i, 3] + fill[i, 4] + fill[i, 5] + fill[i, 6]
            turnover += abs(filled * mkt[nx, j, OPEN] * mkt[t, j, CONV])
            out_p[i, j, 2] = filled
            out_p[i, j, 3] = order - filled
            out_p[i, j, 4] = price
        c = c - cash_delta  # commissions, account currency
        realised = 0.0
        for j in range(p):
            realised += quote[i, j] * mkt[t, j, CONV] if units[i, j] == 0 else 0.0
        c = c + realised
        for j in range(p):
            if units[i, j] == 0:
                quote[i, j] = 0.0
        mtm = 0.0
        gross = 0.0
        for j in range(p):
            v = units[i, j] * mkt[nx, j, CLOSE]
            mtm += (v + quote[i, j]) * mkt[nx, j, CONV]
            gross += abs(v * mkt[nx, j, CONV])
        eq = c + mtm
        margin = gross * prm[P_MARGIN_RATE]
        level = eq / margin if margin > 0 else math.inf
        stopped = level < prm[P_STOP_OUT] or eq <= 0  # a gap can wipe out a flat-after-cap account
        liq_cost = 0.0
        if stopped:
            liq_delta = 0.0
            for j in range(p):
                _execute(-units[i, j], mkt[nx, j, CLOSE], mkt[nx, j, SPREAD], mkt[nx, j, LIQ], mkt[t, j, SIGMA], mkt[nx, j, CONV],
                         math.inf, prm, fill, i)
                units[i, j] = units[i, j] + fill[i, 0]
                quote[i, j] = quote[i, j] + fill[i, 7]
                liq_delta += fill[i, 6]
                liq_cost += fill[i, 3] + fill[i, 4] + fill[i, 5] + fill[i, 6]
                avg[i, j] = np.nan
            c = c - liq_delta
            realised = 0.0
            for j in range(p):
                realised += quote[i, j] * mkt[nx, j, CONV] if units[i, j] == 0 else 0.0
            c = c + realised
            for j in range(p):
                if units[i, j] == 0:
                    quote[i, j] = 0.0
            mtm = 0.0
            gross = 0.0
            for j in range(p):
                v = units[i, j] * mkt[nx, j, CLOSE]
                mtm += (v + quote[i, j]) * mkt[nx, j, CONV]
                gross += abs(v * mkt[nx, j, CONV])
            eq = c + mtm
            margin = gross * prm[P_MARGIN_RATE]
            level = eq / margin if margin > 0 else math.inf

        for j in range(p):
            x[i, 3, j] = units[i, j] * mkt[t, j, CLOSE] * mkt[t, j, CONV]
        var_held = _portfolio_var(x, i, 3, mkt, t, corr, hc, signed, p)
        utilisation = var_held / max(limit, 1e-12) if limit > 0 else math.inf
        excess = max(utilisation - 1.0, 0.0)
        r = math.log(max(eq, 1e-12) / max(eq_t, 1e-12))
        dd_before = 1.0 - eq_t / peak[i]
        new_peak = max(peak[i], eq)
        dd_after = 1.0 - eq / new_peak
        if flags[F_REWARD] == 0:
            reward = r
        elif flags[F_REWARD] == 1:
            a_ = dsr_a[i]
            b_ = dsr_b[i]
            delta_a = r - a_
            delta_b = r * r - b_
            variance = b_ - a_ * a_
            reward = (b_ * delta_a - 0.5 * a_ * delta_b) / max(variance, 1e-20) ** 1.5 if variance > 1e-20 else 0.0
            dsr_a[i] = a_ + prm[P_DSR_ETA] * delta_a
            dsr_b[i] = b_ + prm[P_DSR_ETA] * delta_b
        elif flags[F_RISK_PENALTY] == 0:
            reward = r - prm[P_RISK_AVERSION] * r * r
        else:
            reward = r - prm[P_RISK_AVERSION] * max(dd_after - dd_before, 0.0)
        if flags[F_VAR_MODE] == 1:
            reward = reward - prm[P_VAR_PENALTY] * excess
        reward = reward * prm[P_REWARD_SCALE]

        t_arr[i] = nx
        cash[i] = c
        equity[i] = eq
        peak[i] = new_peak
        last_scale[i] = scale
        terminated = stopped or eq <= 0
        truncated = (nx >= end[i]) and not terminated
        for j in range(p):
            out_p[i, j, 0] = units[i, j]
            out_p[i, j, 1] = units[i, j] * mkt[nx, j, CLOSE] * mkt[nx, j, CONV]
        s = out_s
        s[0, i] = reward
        s[1, i] = 1.0 if terminated else 0.0
        s[2, i] = 1.0 if truncated else 0.0
        s[3, i] = eq
        s[4, i] = c
        s[5, i] = r
        s[6, i] = spread_c
        s[7, i] = impact_c
        s[8, i] = slip_c
        s[9, i] = comm_c
        s[10, i] = carry_sum - fin_sum
        s[11, i] = fin_sum
        s[12, i] = liq_cost
        s[13, i] = trade_cost + fin_sum + liq_cost
        s[14, i] = turnover
        s[15, i] = var_held
        s[16, i] = var_requested
        s[17, i] = limit
        s[18, i] = utilisation
        s[19, i] = 1.0 if utilisation > 1.0 + 1e-9 else 0.0
        s[20, i] = excess
        s[21, i] = scale
        s[22, i] = 1.0 if scale < 1.0 - 1e-12 else 0.0
        s[23, i] = level
        s[24, i] = 1.0 if level < prm[P_MARGIN_CALL] else 0.0
        s[25, i] = 1.0 if stopped else 0.0
        s[26, i] = dd_after


@njit(cache=True, error_model="numpy")
def batch_observe(table, mkt, corr, prm, flags, t_arr, units, avg, peak, equity, last_scale, market_dim, out):
    """Observations into ``out`` (N, obs_dim) float32, as ``FxRiskCore.observe``."""
    n_env, p = units.shape
    x = np.empty((n_env, 4, p))
    signed = np.empty((n_env, p))
    cap = 10.0
    for i in range(n_env):
        t = t_arr[i]
        for k in range(market_dim):
            out[i, k] = table[t, k]
        eq = equity[i]
        eq_safe = max(eq, 1e-12)
        max_notional = prm[P_LEVERAGE] * eq_safe
        unrealised = 0.0
        margin = 0.0
        col = market_dim
        for j in range(p):
            u = units[i, j]
            x[i, 3, j] = u * mkt[t, j, CLOSE] * mkt[t, j, CONV]
            out[i, col] = min(max(x[i, 3, j] / max_notional, -BOUND), BOUND)
            col += 1
            if u != 0:
                a = avg[i, j]
                unrealised += u * (mkt[t, j, CLOSE] - (0.0 if math.isnan(a) else a)) * mkt[t, j, CONV]
            margin += abs(u * mkt[t, j, CLOSE] * mkt[t, j, CONV])
        if flags[F_SIZING] == 1:
            for j in range(p):
                out[i, col] = mkt[t, j, SIGNAL]
                col += 1
        limit = prm[P_VAR_LIMIT] * eq_safe
        util = min(_portfolio_var(x, i, 3, mkt, t, corr, flags[F_HAS_CORR], signed, p) / limit, cap)
        out[i, col] = min(max(unrealised / eq_safe, -BOUND), BOUND)
        out[i, col + 1] = min(max(util, -BOUND), BOUND)
        out[i, col + 2] = min(max(margin * prm[P_MARGIN_RATE] / eq_safe, -BOUND), BOUND)
        out[i, col + 3] = min(max(1.0 - eq / peak[i], -BOUND), BOUND)
        out[i, col + 4] = min(max(last_scale[i], -BOUND), BOUND)

