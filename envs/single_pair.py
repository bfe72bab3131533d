"""Scalar fast path of :class:`envs.core.FxRiskCore` for one account on one pair, compiled.

Why: a single environment steps one account, and numpy's per-call overhead on
one-element arrays costs ~0.5 ms a step; Python arithmetic on floats still costs ~10 µs.
This is the same arithmetic on scalars, in the same order as the array core, compiled
with numba into one call per step (the step, the observation and every ``info`` value);
tests check it against the array core step by step (the array core is the oracle), so the
twins cannot drift apart.

The same scalar step serves the batched one-pair kernel (:func:`pair_batch_step`, used by
:class:`~envs.core.FxRiskCore`), so a batch of one-pair accounts steps exactly as single
environments do.

What bounds a step now is Python, not arithmetic (~3 µs through ``gymnasium.make``): the
compiled call (~0.7 µs, a third of it boxing the 33 returned values), the 30-key ``info``
dict (~1 µs: a dict display, the cheapest way to build one), a fresh observation array and
the wrappers ``gymnasium.make`` adds (~0.3 µs).
"""

from __future__ import annotations

import math

import numpy as np

from envs.config import EnvConfig
from envs.core import ACCOUNT_BOUND, UTILISATION_CAP
from envs.data import EnvData
from envs.errors import ResetNeededError

try:
    from numba import njit as _njit
except ImportError:  # pragma: no cover - numba is a dependency; the functions then run as plain Python
    _njit = None


def _jit(**options):
    """``numba.njit(**options)``, or the plain Python function when numba is missing."""
    return (lambda f: f) if _njit is None else _njit(**options)


# Fields of the packed per-bar array (time, field), float64.
OPEN, CLOSE, SPREAD, LIQ, CONV, SIGMA, VLONG, VSHORT, SIGNAL, DAYS = range(10)
N_BAR_FIELDS = 10
# Parameters (float64; flags stored as 0.0 / 1.0 / 2.0).
# The observation's bounds are parameters too: numba's cache would not notice a change of a
# constant imported from another file.
(P_LEVERAGE, P_MARGIN_RATE, P_STOP_OUT, P_MARGIN_CALL, P_PARTICIPATION, P_IMPACT, P_SLIP, P_SPREAD_MULT,
 P_COMMISSION_PM, P_MARKUP, P_VAR_LIMIT, P_VAR_PENALTY, P_RISK_AVERSION, P_DSR_ETA, P_REWARD_SCALE,
 P_DIFFERENTIAL, P_SIZING, P_VAR_BUDGET, P_VAR_MODE, P_REWARD, P_RISK_PENALTY, P_ACCOUNT_BOUND,
 P_UTILISATION_CAP) = range(23)
N_PAIR_PARAMS = 23
# A single environment's account state, after the parameters in the same float64 array (one
# argument fewer per compiled call); t and the episode end are stored as floats (exact).
(S_CASH, S_UNITS, S_AVG, S_QUOTE, S_PEAK, S_EQUITY, S_DSR_A, S_DSR_B, S_LAST_SCALE, S_T,
 S_END) = range(N_PAIR_PARAMS, N_PAIR_PARAMS + 11)
N_CTX = N_PAIR_PARAMS + 11
#: ``info`` keys of a one-pair step, in order (the values of :func:`pair_step`'s info tuple).
INFO_KEYS = ("t", "equity", "cash", "log_return", "units", "exposure", "filled", "unfilled", "fill_price",
             "spread_cost", "impact_cost", "slippage_cost", "commission", "financing", "financing_cost",
             "liquidation_cost", "costs", "turnover", "var", "var_requested", "var_limit", "var_utilisation",
             "var_breach", "cost", "shield_scale", "clipped", "margin_level", "margin_call", "stopped_out",
             "drawdown")


def pack_bars(data: EnvData) -> np.ndarray:
    """The one-pair market as one C-contiguous (time, field) float64 array (fields above)."""
    if data.n_pairs != 1:
        raise ValueError("a one-pair market is needed")
    cols = [data.open[:, 0], data.close[:, 0], data.spread[:, 0], data.liquidity[:, 0], data.conv[:, 0],
            data.sigma[:, 0], data.var_long[:, 0], data.var_short[:, 0], data.signal[:, 0], data.days]
    return np.ascontiguousarray(np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1))


def pack_params(data: EnvData, config: EnvConfig) -> np.ndarray:
    """Configuration constants (and the pair's rate differential) as one float64 array."""
    acct, ex = config.account, config.execution
    prm = np.zeros(N_PAIR_PARAMS)
    prm[[P_LEVERAGE, P_MARGIN_RATE, P_STOP_OUT, P_MARGIN_CALL, P_PARTICIPATION, P_IMPACT, P_SLIP, P_SPREAD_MULT,
         P_COMMISSION_PM, P_MARKUP, P_VAR_LIMIT, P_VAR_PENALTY, P_RISK_AVERSION, P_DSR_ETA, P_REWARD_SCALE,
         P_DIFFERENTIAL, P_SIZING, P_VAR_BUDGET, P_VAR_MODE, P_REWARD, P_RISK_PENALTY, P_ACCOUNT_BOUND,
         P_UTILISATION_CAP]] = [
        acct.max_leverage, acct.margin_rate, acct.stop_out_level, acct.margin_call_level, ex.max_participation,
        ex.impact_coefficient, ex.slippage_bps * 1e-4, ex.spread_multiplier, ex.commission_per_million,
        config.financing.markup, config.var_limit, config.var_penalty, config.risk_aversion, config.dsr_eta,
        config.reward_scale, float(data.differential[0]), config.action_mode == "sizing",
        config.size_unit == "var_budget", ("shield", "penalty", "cost").index(config.var_mode),
        ("log_return", "differential_sharpe", "risk_penalised").index(config.reward),
        ("variance", "drawdown").index(config.risk_penalty), ACCOUNT_BOUND, UTILISATION_CAP]
    return prm


def pack_single(data: EnvData, config: EnvConfig) -> np.ndarray:
    """:func:`pack_bars` with, after the bar fields, the market part of the observation at each bar
    (the window of float32 features, held exactly as float64): one array, one row a step."""
    market_dim = config.window * data.features.shape[1]
    windows = np.lib.stride_tricks.sliding_window_view(data.features, config.window, axis=0)
    out = np.zeros((data.n_bars, N_BAR_FIELDS + market_dim))
    out[:, :N_BAR_FIELDS] = pack_bars(data)
    out[config.window - 1 :, N_BAR_FIELDS:] = windows.transpose(0, 2, 1).reshape(len(windows), -1)
    return out


# --------------------------------------------------------------------------- the scalar twin


# The compiled functions take the bar rows and the parameters as tuples of floats (values, held in
# registers): arrays passed into inlined functions cost reference counting in every call.


@_jit(cache=True, error_model="numpy", inline="always")
def bar_row(bars, t):
    """Row t of the packed bars as a tuple (fields above)."""
    return (bars[t, 0], bars[t, 1], bars[t, 2], bars[t, 3], bars[t, 4], bars[t, 5], bars[t, 6], bars[t, 7],
            bars[t, 8], bars[t, 9])


@_jit(cache=True, error_model="numpy", inline="always")
def param_tuple(prm):
    """The parameters (the first :data:`N_PAIR_PARAMS` entries of ``prm``) as a tuple."""
    return (prm[0], prm[1], prm[2], prm[3], prm[4], prm[5], prm[6], prm[7], prm[8], prm[9], prm[10], prm[11],
            prm[12], prm[13], prm[14], prm[15], prm[16], prm[17], prm[18], prm[19], prm[20], prm[21], prm[22])


@_jit(cache=True, error_model="numpy", inline="always")
def _side_var(exposure, var_long, var_short):
    return abs(exposure * (var_long if exposure >= 0 else var_short))


@_jit(cache=True, error_model="numpy", inline="always")
def _fill(order, mid, spread, liquidity, sigma, conv, cap, prm):
    """(filled, price, quote_delta, spread_cost, impact_cost, slippage_cost, commission)."""
    filled = max(-cap, min(order, cap))
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
    return filled, price, -filled * price, size * half * conv, notional * impact, notional * slip, commission


@_jit(cache=True, error_model="numpy", inline="always")
def pair_step(bt, bn, prm, t, end, cash, units, avg, quote, peak, equity, dsr_a, dsr_b, action):
    """One bar for one account: mirrors ``FxRiskCore.step`` for a single pair.

    ``bt``, ``bn``: :func:`bar_row` of bars t and t + 1; ``prm``: :func:`param_tuple`. Returns
    ``(state, reward, terminated, truncated, info)``: ``state`` the new ``(cash, units, avg, quote,
    peak, equity, dsr_a, dsr_b, last_scale)``, ``info`` the values of :data:`INFO_KEYS` in order.
    Every operation is that of the Python twin it replaced, in the same order (bit-for-bit results).
    """
    n = t + 1
    close_t, conv_t = bt[CLOSE], bt[CONV]
    var_long, var_short, signal = bt[VLONG], bt[VSHORT], bt[SIGNAL]
    leverage = prm[P_LEVERAGE]
    shield = prm[P_VAR_MODE] == 0.0
    eq_t = equity
    limit = prm[P_VAR_LIMIT] * eq_t
    if prm[P_SIZING] != 0.0:
        size = min(max((action + 1.0) * 0.5, 0.0), 1.0)
        if prm[P_VAR_BUDGET] != 0.0:  # envs.core.var_budget_fraction for one pair
            side = var_short if signal < 0 else var_long
            size *= min(prm[P_VAR_LIMIT] / (side * leverage), 1.0) if side > 0 else 0.0
        frac = size * signal
    else:
        frac = min(max(action, -1.0), 1.0)
    requested = frac * (leverage * eq_t)
    var_requested = _side_var(requested, var_long, var_short)
    scale = 1.0
    target_exposure = requested
    if shield:
        scale = min(max(limit / var_requested, 0.0), 1.0) if var_requested > limit else 1.0
        target_exposure = requested * scale
        target_units = target_exposure / (close_t * conv_t)
        cap = math.inf if abs(target_units) < abs(units) else prm[P_PARTICIPATION] * bn[LIQ]
        reachable = units + max(-cap, min(target_units - units, cap))
        reach_var = _side_var(reachable * close_t * conv_t, var_long, var_short)
        second = min(max(limit / reach_var, 0.0), 1.0) if reach_var > limit else 1.0
        if second < 1.0:
            target_exposure = reachable * close_t * conv_t * second
        scale = scale * second
    target_units = target_exposure / (close_t * conv_t)

    # simulator.engine.step_accounts, scalar
    open_n, close_n, spread_n, liq_n = bn[OPEN], bn[CLOSE], bn[SPREAD], bn[LIQ]
    conv_n, sigma_t = bn[CONV], bt[SIGMA]
    held = units * open_n * conv_t
    day_fraction = bt[DAYS] / 365.0
    carry = held * prm[P_DIFFERENTIAL] * day_fraction
    fin_cost = abs(held) * prm[P_MARKUP] * day_fraction
    cash = cash + carry - fin_cost
    eq_open = cash + (units * open_n + quote) * conv_t
    gross = abs(target_units * open_n * conv_t)
    lev_limit = leverage * max(eq_open, 0.0)
    if gross > lev_limit:
        target_units = target_units * (lev_limit / gross if gross > 0 else 1.0)
    cap = prm[P_PARTICIPATION] * liq_n
    if shield and abs(target_units) < abs(units):
        cap = math.inf
    order = target_units - units
    filled, price, quote_delta, spread_cost, impact_cost, slip_cost, commission = _fill(
        order, open_n, spread_n, liq_n, sigma_t, conv_t, cap, prm)
    new_units = units + filled
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
    margin = abs(units * close_n * conv_n) * prm[P_MARGIN_RATE]
    level = eq / margin if margin > 0 else math.inf
    stopped = level < prm[P_STOP_OUT] or eq <= 0
    liq_cost = 0.0
    if stopped:
        l_filled, _, l_quote, l_spread, l_impact, l_slip, l_commission = _fill(
            -units, close_n, spread_n, liq_n, sigma_t, conv_n, math.inf, prm)
        units = units + l_filled
        quote = quote + l_quote
        cash = cash - l_commission
        if units == 0:
            cash = cash + quote * conv_n
            quote = 0.0
        liq_cost = l_spread + l_impact + l_slip + l_commission
        avg = math.nan
        eq = cash + (units * close_n + quote) * conv_n
        margin = abs(units * close_n * conv_n) * prm[P_MARGIN_RATE]
        level = eq / margin if margin > 0 else math.inf

    var_held = _side_var(units * close_t * conv_t, var_long, var_short)
    utilisation = var_held / max(limit, 1e-12) if limit > 0 else math.inf
    excess = max(utilisation - 1.0, 0.0)
    r = math.log(max(eq, 1e-12) / max(eq_t, 1e-12))
    drawdown_before = 1.0 - eq_t / peak
    peak = max(peak, eq)
    drawdown_after = 1.0 - eq / peak
    reward_kind = prm[P_REWARD]
    if reward_kind == 0.0:
        reward = r
    elif reward_kind == 1.0:
        a, b = dsr_a, dsr_b
        delta_a, delta_b = r - a, r * r - b
        variance = b - a * a
        reward = (b * delta_a - 0.5 * a * delta_b) / max(variance, 1e-20) ** 1.5 if variance > 1e-20 else 0.0
        dsr_a, dsr_b = a + prm[P_DSR_ETA] * delta_a, b + prm[P_DSR_ETA] * delta_b
    elif prm[P_RISK_PENALTY] == 0.0:
        reward = r - prm[P_RISK_AVERSION] * r * r
    else:
        reward = r - prm[P_RISK_AVERSION] * max(drawdown_after - drawdown_before, 0.0)
    if prm[P_VAR_MODE] == 1.0:
        reward = reward - prm[P_VAR_PENALTY] * excess
    reward = reward * prm[P_REWARD_SCALE]

    terminated = stopped or eq <= 0
    truncated = n >= end and not terminated
    costs = spread_cost + impact_cost + slip_cost + commission + fin_cost + liq_cost
    state = (cash, units, avg, quote, peak, eq, dsr_a, dsr_b, scale)
    info = (n, eq, cash, r, units, units * close_n * conv_n, filled, order - filled,
            price if filled != 0 else math.nan, spread_cost, impact_cost, slip_cost, commission, carry - fin_cost,
            fin_cost, liq_cost, costs, abs(filled * open_n * conv_t), var_held, var_requested, limit, utilisation,
            utilisation > 1.0 + 1e-9, excess, scale, scale < 1.0 - 1e-12, level, level < prm[P_MARGIN_CALL],
            stopped, drawdown_after)
    return state, reward, terminated, truncated, info


@_jit(cache=True, error_model="numpy", inline="always")
def pair_account(bt, prm, units, avg, peak, equity, last_scale):
    """The account part of the observation at bar t (``bt``: :func:`bar_row`): ``(exposure fraction,
    unrealised P&L, VaR utilisation, margin usage, drawdown, last shield scale)`` as fractions of
    equity, clipped."""
    close, conv = bt[CLOSE], bt[CONV]
    eq = equity
    exposure = units * close * conv
    eq_safe = eq if eq > 1e-12 else 1e-12
    if units != 0:
        unrealised = units * (close - (0.0 if math.isnan(avg) else avg)) * conv
        util = abs(exposure * (bt[VLONG] if exposure >= 0 else bt[VSHORT])) / (prm[P_VAR_LIMIT] * eq_safe)
        if util > prm[P_UTILISATION_CAP]:
            util = prm[P_UTILISATION_CAP]
    else:
        unrealised = util = 0.0
    margin = abs(exposure) * prm[P_MARGIN_RATE] / eq_safe
    b = prm[P_ACCOUNT_BOUND]
    return (min(max(exposure / (prm[P_LEVERAGE] * eq_safe), -b), b), min(max(unrealised / eq_safe, -b), b),
            min(max(util, -b), b), min(max(margin, -b), b), min(max(1.0 - eq / peak, -b), b),
            min(max(last_scale, -b), b))


@_jit(cache=True, error_model="numpy")
def single_step(bars, ctx, obs, action):
    """Step the account held in ``ctx`` (updated in place) and write the next observation into
    ``obs`` (obs_dim,) float32; ``bars``: :func:`pack_single`. Returns ``(reward, terminated,
    truncated, *info)``, ``info`` the values of :data:`INFO_KEYS` (one flat tuple: the cheapest to box).
    """
    t = int(ctx[S_T])
    if t >= int(ctx[S_END]) or t + 1 >= bars.shape[0] or t < 0:  # never read past the episode or the data
        raise ResetNeededError("step() past the end of the episode or the data (or before reset()) — call "
                               "reset() first")
    prm = param_tuple(ctx)
    bn = bar_row(bars, t + 1)
    state, reward, terminated, truncated, info = pair_step(
        bar_row(bars, t), bn, prm, t, int(ctx[S_END]), ctx[S_CASH], ctx[S_UNITS], ctx[S_AVG], ctx[S_QUOTE],
        ctx[S_PEAK], ctx[S_EQUITY], ctx[S_DSR_A], ctx[S_DSR_B], action)
    cash, units, avg, quote, peak, equity, dsr_a, dsr_b, scale = state
    ctx[S_CASH] = cash
    ctx[S_UNITS] = units
    ctx[S_AVG] = avg
    ctx[S_QUOTE] = quote
    ctx[S_PEAK] = peak
    ctx[S_EQUITY] = equity
    ctx[S_DSR_A] = dsr_a
    ctx[S_DSR_B] = dsr_b
    ctx[S_LAST_SCALE] = scale
    ctx[S_T] = t + 1
    frac, unrealised, util, margin, drawdown, last = pair_account(bn, prm, units, avg, peak, equity, scale)
    write_observation(bars, t + 1, bn, prm, frac, unrealised, util, margin, drawdown, last, obs)
    (n, eq, cash_, r, units_, exposure, filled, unfilled, fill_price, spread_cost, impact_cost, slip_cost,
     commission, financing, fin_cost, liq_cost, costs, turnover, var_held, var_requested, limit, utilisation,
     breach, excess, scale_, clipped, level, margin_call, stopped, drawdown) = info
    return (reward, terminated, truncated, n, eq, cash_, r, units_, exposure, filled, unfilled, fill_price,
            spread_cost, impact_cost, slip_cost, commission, financing, fin_cost, liq_cost, costs, turnover, var_held,
            var_requested, limit, utilisation, breach, excess, scale_, clipped, level, margin_call, stopped,
            drawdown)


@_jit(cache=True, error_model="numpy", inline="always")
def write_observation(bars, t, bt, prm, frac, unrealised, util, margin, drawdown, last, obs):
    """The observation at bar t into ``obs`` (obs_dim,): the market part from ``bars``
    (:func:`pack_single`), then the account."""
    col = obs.shape[0] - (7 if prm[P_SIZING] != 0.0 else 6)
    for k in range(col):
        obs[k] = bars[t, N_BAR_FIELDS + k]
    obs[col] = frac
    col += 1
    if prm[P_SIZING] != 0.0:
        obs[col] = bt[SIGNAL]
        col += 1
    obs[col] = unrealised
    obs[col + 1] = util
    obs[col + 2] = margin
    obs[col + 3] = drawdown
    obs[col + 4] = last


@_jit(cache=True, error_model="numpy")
def single_observe(bars, ctx, obs):
    """The observation at the account's current bar into ``obs`` (obs_dim,) float32."""
    t = int(ctx[S_T])
    prm = param_tuple(ctx)
    bt = bar_row(bars, t)
    frac, unrealised, util, margin, drawdown, last = pair_account(bt, prm, ctx[S_UNITS], ctx[S_AVG], ctx[S_PEAK],
                                                                  ctx[S_EQUITY], ctx[S_LAST_SCALE])
    write_observation(bars, t, bt, prm, frac, unrealised, util, margin, drawdown, last, obs)


# --------------------------------------------------------------------------- one pair, batched
#
# A batch of one-pair accounts steps through the single environment's own scalar step
# (:func:`pair_step`, inlined), so a batch steps exactly as single environments do; results
# equal the generic kernel's (:func:`envs.kernel.batch_step`) bit for bit (tests hold them equal).
# Only scalars and tuples go below the top level: arrays passed into inlined functions cost
# reference counts per account (a 2.5x slower loop). Outputs
# go to three fresh buffers, one row per info entry: floats (:data:`PAIR_FLOAT_KEYS`), per pair
# (:data:`PAIR_PAIR_KEYS`) and flags (:data:`PAIR_BOOL_KEYS`); the observation of the next bar is
# written in the same pass.

#: Float outputs of :func:`pair_batch_step`, one row each (N,).
PAIR_FLOAT_KEYS = ("reward", "equity", "cash", "log_return", "spread_cost", "impact_cost", "slippage_cost",
                   "commission", "financing", "financing_cost", "liquidation_cost", "costs", "turnover", "var",
                   "var_requested", "var_limit", "var_utilisation", "cost", "shield_scale", "margin_level", "drawdown")
#: Per-pair outputs of :func:`pair_batch_step`, one (N, 1) block each (as ``envs.kernel.PAIR_KEYS``).
PAIR_PAIR_KEYS = ("units", "exposure", "filled", "unfilled", "fill_price")
#: Flag outputs of :func:`pair_batch_step`, one row each (N,).
PAIR_BOOL_KEYS = ("terminated", "truncated", "var_breach", "clipped", "margin_call", "stopped_out")


@_jit(cache=True, error_model="numpy")
def pair_actions_ok(action, skip, lo, hi):
    """Whether every action of an account not skipped lies in [lo, hi] (NaN does not)."""
    for i in range(action.shape[0]):
        if not skip[i]:
            a = float(action[i, 0])
            if not (a >= lo and a <= hi):
                return False
    return True


@_jit(cache=True, error_model="numpy")
def pair_batch_step(bars, table, prm_arr, t_arr, end, cash, units, avg, quote, peak, equity, dsr_a, dsr_b,
                    last_scale, action, skip, out_f, out_p, out_b, obs):
    """Step every one-pair account not in ``skip`` in place; outputs into ``out_f`` / ``out_p`` / ``out_b``
    and, when ``obs`` has rows, every account's next observation into ``obs`` (N, obs_dim).

    A skipped account is left as it is: outputs 0 / False, except its current equity; its
    observation is of its current bar. Everything is indexed at this level (no arrays passed into
    the inlined scalar functions: that would cost reference counts per account).
    """
    prm = param_tuple(prm_arr)
    for i in range(t_arr.shape[0]):  # first, nothing changed: refuse a step past an episode or the data
        if not skip[i] and (t_arr[i] >= end[i] or t_arr[i] + 1 >= bars.shape[0] or t_arr[i] < 0):
            raise ResetNeededError("step() of an account past the end of its episode or the data (or before "
                                   "its reset()) — call reset() first")
    for i in range(t_arr.shape[0]):
        t = t_arr[i]
        if skip[i]:
            for k in range(out_f.shape[0]):
                out_f[k, i] = 0.0
            for k in range(out_p.shape[0]):
                out_p[k, i, 0] = 0.0
            for k in range(out_b.shape[0]):
                out_b[k, i] = False
            out_f[1, i] = equity[i]
        else:
            bn = bar_row(bars, t + 1)
            state, reward, terminated, truncated, info = pair_step(
                bar_row(bars, t), bn, prm, t, end[i], cash[i], units[i, 0], avg[i, 0], quote[i, 0], peak[i],
                equity[i], dsr_a[i], dsr_b[i], float(action[i, 0]))
            (cash[i], units[i, 0], avg[i, 0], quote[i, 0], peak[i], equity[i], dsr_a[i], dsr_b[i],
             last_scale[i]) = state
            (n, eq, c, r, u, exposure, filled, unfilled, fill_price, spread_cost, impact_cost, slip_cost, commission,
             financing, fin_cost, liq_cost, costs, turnover, var_held, var_requested, limit, utilisation, breach,
             excess, scale, clipped, level, margin_call, stopped, drawdown) = info
            t_arr[i] = n
            out_f[0, i] = reward
            out_f[1, i] = eq
            out_f[2, i] = c
            out_f[3, i] = r
            out_f[4, i] = spread_cost
            out_f[5, i] = impact_cost
            out_f[6, i] = slip_cost
            out_f[7, i] = commission
            out_f[8, i] = 0.0 + financing  # as batch_step's sums from 0.0 (-0.0 reads +0.0 there)
            out_f[9, i] = fin_cost
            out_f[10, i] = liq_cost
            out_f[11, i] = costs
            out_f[12, i] = turnover
            out_f[13, i] = var_held
            out_f[14, i] = var_requested
            out_f[15, i] = limit
            out_f[16, i] = utilisation
            out_f[17, i] = excess
            out_f[18, i] = scale
            out_f[19, i] = level
            out_f[20, i] = drawdown
            out_p[0, i, 0] = u
            out_p[1, i, 0] = exposure
            out_p[2, i, 0] = filled
            out_p[3, i, 0] = unfilled
            out_p[4, i, 0] = fill_price
            out_b[0, i] = terminated
            out_b[1, i] = truncated
            out_b[2, i] = breach
            out_b[3, i] = clipped
            out_b[4, i] = margin_call
            out_b[5, i] = stopped
    if obs.shape[0] > 0:  # the next observations, in a second pass over the accounts
        pair_batch_observe(bars, table, prm_arr, t_arr, units, avg, peak, equity, last_scale, obs)


@_jit(cache=True, error_model="numpy")
def pair_batch_observe(bars, table, prm_arr, t_arr, units, avg, peak, equity, last_scale, obs):
    """Observations (N, obs_dim) float32 of one-pair accounts into ``obs`` (as ``FxRiskCore.observe``)."""
    prm = param_tuple(prm_arr)
    sizing = prm[P_SIZING] != 0.0
    market_dim = table.shape[1]
    for i in range(t_arr.shape[0]):
        t = t_arr[i]
        bt = bar_row(bars, t)
        frac, unrealised, util, margin, drawdown, last = pair_account(bt, prm, units[i, 0], avg[i, 0], peak[i],
                                                                          equity[i], last_scale[i])
        for k in range(market_dim):
            obs[i, k] = table[t, k]
        col = market_dim
        obs[i, col] = frac
        col += 1
        if sizing:
            obs[i, col] = bt[SIGNAL]
            col += 1
        obs[i, col] = 0.0 + unrealised  # as batch_observe's sum from 0.0 (the sign of a zero)
        obs[i, col + 1] = util
        obs[i, col + 2] = margin
        obs[i, col + 3] = drawdown
        obs[i, col + 4] = last


class SinglePairCore:
    """One account on a one-pair :class:`EnvData`; mirrors ``FxRiskCore.step`` and ``observe``."""

    def __init__(self, data: EnvData, config: EnvConfig) -> None:
        if data.n_pairs != 1:
            raise ValueError("SinglePairCore needs a one-pair market")
        self.data = data
        self.config = config
        self.window = config.window
        self.market_dim = config.window * data.features.shape[1]
        self.sizing = config.action_mode == "sizing"
        self.obs_dim = self.market_dim + (2 if self.sizing else 1) + 5
        # Row t: the bar's fields, then the market part of the observation at t.
        self.bars = pack_single(data, config)
        self.initial = config.account.initial_equity
        self.ctx = np.zeros(N_CTX)  # parameters, then the account state
        self.ctx[:N_PAIR_PARAMS] = pack_params(data, config)
        self.reset(data.first_step, data.first_step)  # an empty episode: stepping before reset() is refused

    # The account, as Python numbers (the state lives in the float64 array the compiled step updates).
    t = property(lambda self: int(self.ctx[S_T]))
    end = property(lambda self: int(self.ctx[S_END]))
    cash = property(lambda self: float(self.ctx[S_CASH]))
    units = property(lambda self: float(self.ctx[S_UNITS]))
    avg = property(lambda self: float(self.ctx[S_AVG]))
    quote = property(lambda self: float(self.ctx[S_QUOTE]))
    peak = property(lambda self: float(self.ctx[S_PEAK]))
    equity = property(lambda self: float(self.ctx[S_EQUITY]))
    last_scale = property(lambda self: float(self.ctx[S_LAST_SCALE]))

    def reset(self, start: int, end: int) -> None:
        """A fresh account at bar ``start``; the episode ends at bar ``end`` (truncated)."""
        self.ctx[N_PAIR_PARAMS:] = (self.initial, 0.0, math.nan, 0.0, self.initial, self.initial, 0.0, 0.0, 1.0,
                                    int(start), int(end))

    def observe(self) -> np.ndarray:
        """The observation (obs_dim,) float32 at the current bar (a fresh array)."""
        obs = np.empty(self.obs_dim, dtype=np.float32)
        single_observe(self.bars, self.ctx, obs)
        return obs

    def step(self, action: float) -> tuple[np.ndarray, float, bool, bool, dict]:
        """One step for a validated action (a float); ``(observation, reward, terminated, truncated, info)``."""
        obs = _empty(self.obs_dim, _float32)
        (reward, terminated, truncated, t, equity, cash, log_return, units, exposure, filled, unfilled, fill_price,
         spread_cost, impact_cost, slippage_cost, commission, financing, financing_cost, liquidation_cost, costs,
         turnover, var, var_requested, var_limit, var_utilisation, var_breach, cost, shield_scale, clipped,
         margin_level, margin_call, stopped_out, drawdown) = single_step(self.bars, self.ctx, obs, action)
        # A dict display (keys in INFO_KEYS order): the cheapest way to build a 30-key dict.
        return obs, reward, terminated, truncated, {
            "t": t, "equity": equity, "cash": cash, "log_return": log_return, "units": units, "exposure": exposure,
            "filled": filled, "unfilled": unfilled, "fill_price": fill_price, "spread_cost": spread_cost,
            "impact_cost": impact_cost, "slippage_cost": slippage_cost, "commission": commission,
            "financing": financing, "financing_cost": financing_cost, "liquidation_cost": liquidation_cost,
            "costs": costs, "turnover": turnover, "var": var, "var_requested": var_requested, "var_limit": var_limit,
            "var_utilisation": var_utilisation, "var_breach": var_breach, "cost": cost, "shield_scale": shield_scale,
            "clipped": clipped, "margin_level": margin_level, "margin_call": margin_call, "stopped_out": stopped_out,
            "drawdown": drawdown}


_empty, _float32 = np.empty, np.dtype(np.float32)  # a dtype object: np.empty is faster with it
