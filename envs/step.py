"""The environment's step, written once: plain Python over one account, compiled by numba.

Why one source: every cost, limit and reward rule lives here and nowhere else, as arch writes
its variance recursions (``recursions_python.py``: Python functions compiled with ``jit``).
:func:`account_step` advances one account one bar; :func:`batch_step` loops it over the
accounts of a batch (the vector env, the evaluation and stress runners;
:func:`batch_step_threaded` splits a large batch between numba's threads) and
:func:`single_step` runs it for the single environment (one compiled call a step). The same
functions run as Python with ``NUMBA_DISABLE_JIT=1`` or without numba (:mod:`simulator.common.compiled`);
tests require the same trajectories both ways and against a numpy oracle.

A bar t decision uses only row t (prices, forecasts, VaR, signal); the order fills at bar
t+1's open and the account is marked at its close (row t+1's execution prices).

Layouts (built by :func:`pack_market` and :func:`pack_params`):

* ``bars`` (time, columns) float64: for pair j the fields :data:`BAR_FIELDS` at
  ``j * N_BAR + field``; then the calendar days to the next bar at ``n_pairs * N_BAR``;
  then the correlation matrix row-major; ``table`` (time, window x features) float32: the
  market part of the observation at bar t;
* ``prm``: :class:`StepParams` as float64 (modes as their :class:`enum.IntEnum` values);
* outputs in the order of :mod:`envs.fields`: ``out_f`` (accounts, floats), ``out_b``
  (accounts, flags), ``out_p`` (per pair, accounts, pairs). An account's floats and flags are
  contiguous: one account's step writes a few cache lines instead of one line in each of 29
  rows (more write streams than the CPU keeps open: the batch ran about 1.4x slower that way).

Numba's cache keys on this file only, so everything the compiled code reads is defined here
(the field order is checked against :mod:`envs.fields` on import).
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from simulator.common.compiled import jit, prange
from envs.errors import ResetNeededError
from envs.fields import FLAG_OUTPUTS, FLOAT_OUTPUTS, PAIR_OUTPUTS


class ActionMode(IntEnum):
    """What an action in [-1, 1] means."""

    EXPOSURE = 0   #: target exposure per pair, fraction of the maximum leverage
    SIZING = 1     #: size (a + 1) / 2 along the momentum signal's direction
    RESIDUAL = 2   #: the base rule's size times exp(a x ln size_range), along the signal (a = 0: the rule)
    DIRECTION = 3  #: direction and size: a x size_range VaR budgets (the position whose VaR is limit / P)


class BaseRule(IntEnum):
    """The rule a residual action scales."""

    VAR_BUDGET = 0  #: the position whose own one-bar VaR is 1/P of the limit
    VOL_TARGET = 1  #: leverage base_target_vol / (sigma x sqrt(bars per year))


class SizeUnit(IntEnum):
    """What size 1 means in sizing mode."""

    LEVERAGE = 0    #: the maximum leverage
    VAR_BUDGET = 1  #: the position whose own one-bar VaR is 1/P of the limit (capped at the leverage)


class VarMode(IntEnum):
    """How the VaR limit acts."""

    SHIELD = 0   #: the request is scaled down so that its VaR (and the fillable position's) <= limit
    PENALTY = 1  #: reward minus var_penalty x the utilisation above 1
    COST = 2     #: info['cost'] carries the utilisation above 1; the reward is untouched


class RewardKind(IntEnum):
    """The reward before the VaR penalty and the scale."""

    LOG_RETURN = 0
    DIFFERENTIAL_SHARPE = 1
    RISK_PENALISED = 2
    MEAN_VARIANCE = 3  #: r - risk_aversion / 2 x the forecast variance of the position held, w' S w


class RiskPenalty(IntEnum):
    """The penalty of the risk-penalised reward."""

    VARIANCE = 0  #: risk_aversion x squared log return
    DRAWDOWN = 1  #: risk_aversion x increase of the drawdown


class StepParams(NamedTuple):
    """Constants of the step.

    Attributes
    ----------
    n_pairs : int
        Pairs traded.
    has_corr : int
        1 when the portfolio VaR uses the correlation matrix (more than one pair).
    max_leverage : float
        Gross exposure cap, multiple of equity; also the notional of action 1.
    margin_rate : float
        Used margin per unit of gross exposure (1 / max_leverage).
    stop_out_level, margin_call_level : float
        Equity / used margin below which the account is liquidated / called.
    max_participation : float
        Largest fill per bar, fraction of the bar's liquidity (orders that reduce the position
        fill whole under the shield).
    impact_coefficient : float
        Y of the square-root impact Y x sigma x sqrt(participation), fraction of price.
    slippage : float
        Fixed slippage, fraction of price (basis points x 1e-4).
    spread_multiplier : float
        Multiplier of the quoted spread.
    commission_per_million : float
        Commission per side, account currency per million of notional.
    financing_markup : float
        Broker's annual financing markup on held notional (fraction a year).
    var_limit : float
        VaR limit, fraction of equity.
    var_penalty, risk_aversion, dsr_eta, reward_scale : float
        Reward settings (see :class:`envs.config.EnvConfig`).
    rebalance_band : float
        No-trade band, fraction of the target: a position on the target's side within
        ``band x |target|`` of it is held, not traded (unless the VaR limit or the leverage cap
        needs the trade).
    min_order : float
        Orders below this notional, fraction of equity, are not sent (same exceptions).
    size_range : float
        Residual mode: the multiplier of the base rule spans [1 / size_range, size_range];
        direction mode: the largest size, in VaR budgets.
    base_target_vol, base_max_leverage : float
        Annualised volatility the vol-target base rule sizes each pair to; its leverage cap.
    base_var_budget : float
        The VaR-budget base rule's position VaR as a fraction of the limit.
    bars_per_year : float
        Bars in a trading year (annualises the per-bar volatility forecast).
    account_bound, utilisation_cap : float
        Clip of the observation's account features; cap of its VaR utilisation.
    action_mode, size_unit, var_mode, reward, risk_penalty, base_rule : int
        :class:`ActionMode`, :class:`SizeUnit`, :class:`VarMode`, :class:`RewardKind`, :class:`RiskPenalty`,
        :class:`BaseRule`.
    """

    n_pairs: int
    has_corr: int
    max_leverage: float
    margin_rate: float
    stop_out_level: float
    margin_call_level: float
    max_participation: float
    impact_coefficient: float
    slippage: float
    spread_multiplier: float
    commission_per_million: float
    financing_markup: float
    var_limit: float
    var_penalty: float
    risk_aversion: float
    dsr_eta: float
    reward_scale: float
    rebalance_band: float
    min_order: float
    size_range: float
    base_target_vol: float
    base_max_leverage: float
    base_var_budget: float
    bars_per_year: float
    account_bound: float
    utilisation_cap: float
    action_mode: int
    size_unit: int
    var_mode: int
    reward: int
    risk_penalty: int
    base_rule: int


N_PARAMS = len(StepParams._fields)

# Per-pair fields of a bar (column j * N_BAR + field of ``bars``).
BAR_FIELDS = ("open", "close", "spread", "liquidity", "conv", "sigma", "var_long", "var_short", "signal",
              "differential", "signal_strength", "vol_ratio", "base_target", "budget")
"""Per-pair columns of ``bars``; the last two depend on the parameters too (:func:`pack_market` fills
them once): the base rule's target (a signed fraction of the maximum notional) and one VaR budget."""
(OPEN, CLOSE, SPREAD, LIQ, CONV, SIGMA, VLONG, VSHORT, SIGNAL, DIFF, STRENGTH, VOL_RATIO, BASE_TARGET,
 BUDGET) = range(14)
N_BAR = 14
N_DECISION = 4
"""Per-pair decision features of the observation: signal strength, volatility against its long-run
level, the position's gap to the base rule's target (in VaR budgets) and whether it sits in the band."""

# Output rows (checked against envs.fields below).
_FLOATS = ("reward", "equity", "cash", "log_return", "spread_cost", "impact_cost", "slippage_cost", "commission",
           "financing", "financing_cost", "liquidation_cost", "costs", "turnover", "var", "var_requested",
           "var_limit", "var_utilisation", "cost", "shield_scale", "margin_level", "drawdown", "band_holds",
           "small_orders")
(O_REWARD, O_EQUITY, O_CASH, O_LOG_RETURN, O_SPREAD, O_IMPACT, O_SLIP, O_COMMISSION, O_FINANCING, O_FIN_COST,
 O_LIQ_COST, O_COSTS, O_TURNOVER, O_VAR, O_VAR_REQ, O_VAR_LIMIT, O_UTIL, O_COST, O_SCALE, O_MARGIN_LEVEL,
 O_DRAWDOWN, O_BAND_HOLDS, O_SMALL_ORDERS) = range(23)
_FLAGS = ("terminated", "truncated", "var_breach", "clipped", "margin_call", "stopped_out")
B_TERMINATED, B_TRUNCATED, B_BREACH, B_CLIPPED, B_MARGIN_CALL, B_STOPPED = range(6)
_PAIRS = ("units", "exposure", "filled", "unfilled", "fill_price")
Q_UNITS, Q_EXPOSURE, Q_FILLED, Q_UNFILLED, Q_FILL_PRICE = range(5)
if (_FLOATS, _FLAGS, _PAIRS) != (FLOAT_OUTPUTS, FLAG_OUTPUTS, PAIR_OUTPUTS):  # pragma: no cover - a guard
    raise ImportError("envs.step writes its outputs in another order than envs.fields declares: update both")

# Rows of the per-account scratch block: exposures requested, target, reachable (units), held, signed VaR.
_W_REQUESTED, _W_TARGET, _W_REACHABLE, _W_HELD, _W_SIGNED = range(5)
N_WORK = 5

# The single environment's account (after the parameters in its context vector; then its per-pair block).
(C_T, C_END, C_CASH, C_PEAK, C_EQUITY, C_DSR_A, C_DSR_B, C_LAST_SCALE) = range(N_PARAMS, N_PARAMS + 8)
N_CONTEXT = N_PARAMS + 8


def market_columns(n_pairs: int) -> tuple[int, int]:
    """(column of the days to the next bar, first column of the correlation matrix) in ``bars``."""
    return n_pairs * N_BAR, n_pairs * N_BAR + 1


# --------------------------------------------------------------------------- building blocks


@jit(cache=True, error_model="numpy", inline="always")
def step_params(prm) -> StepParams:
    """The :class:`StepParams` held in the first :data:`N_PARAMS` entries of ``prm``."""
    return StepParams(int(prm[0]), int(prm[1]), prm[2], prm[3], prm[4], prm[5], prm[6], prm[7], prm[8], prm[9],
                      prm[10], prm[11], prm[12], prm[13], prm[14], prm[15], prm[16], prm[17], prm[18], prm[19],
                      prm[20], prm[21], prm[22], prm[23], prm[24], prm[25], int(prm[26]), int(prm[27]), int(prm[28]),
                      int(prm[29]), int(prm[30]), int(prm[31]))


@jit(cache=True, error_model="numpy", inline="always")
def side_var(exposure, var_long, var_short):
    """One-bar VaR (account currency, signed like the exposure) of one pair's exposure."""
    return exposure * (var_long if exposure >= 0 else var_short)


@jit(cache=True, error_model="numpy", inline="always")
def portfolio_var(bars, q, t, work, row):
    """VaR of the exposures ``work[row, :]`` with the forecasts of bar t: the sum over pairs, or
    sqrt(v' C v) of the signed VaRs v with the correlation C when there are several pairs."""
    p = q.n_pairs
    if q.has_corr == 0 or p == 1:
        total = 0.0
        for j in range(p):
            total += abs(side_var(work[row, j], bars[t, j * N_BAR + VLONG], bars[t, j * N_BAR + VSHORT]))
        return total
    for j in range(p):
        work[_W_SIGNED, j] = side_var(work[row, j], bars[t, j * N_BAR + VLONG], bars[t, j * N_BAR + VSHORT])
    c0 = p * N_BAR + 1
    quad = 0.0
    for a in range(p):
        inner = 0.0
        for j in range(p):
            inner += bars[t, c0 + a * p + j] * work[_W_SIGNED, j]
        quad += work[_W_SIGNED, a] * inner
    return math.sqrt(max(quad, 0.0))


@jit(cache=True, error_model="numpy", inline="always")
def forecast_variance(bars, q, t, equity, units, row, work):
    """Forecast one-bar variance of the return on equity of the position held: w' S w, with w the
    exposures / equity at bar t and S from the volatility forecasts and the correlation."""
    p = q.n_pairs
    eq = max(equity, 1e-12)
    for j in range(p):
        c = j * N_BAR
        sigma = bars[t, c + SIGMA]
        work[_W_SIGNED, j] = units[row, j] * bars[t, c + CLOSE] * bars[t, c + CONV] / eq * (
            sigma if math.isfinite(sigma) else 0.0)
    c0 = p * N_BAR + 1
    total = 0.0
    for a in range(p):
        for b in range(p):
            rho = bars[t, c0 + a * p + b] if q.has_corr != 0 else (1.0 if a == b else 0.0)
            total += work[_W_SIGNED, a] * rho * work[_W_SIGNED, b]
    return max(total, 0.0)


@jit(cache=True, error_model="numpy", inline="always")
def shield_scale(var_value, limit):
    """Factor in [0, 1] that brings a VaR down to the limit (1 within it)."""
    if var_value > limit:
        s = limit / (var_value if var_value > 0 else 1.0)
        return min(max(s, 0.0), 1.0)
    return 1.0


@jit(cache=True, error_model="numpy", inline="always")
def fill(order, mid, spread, liquidity, sigma, conv, cap, q):
    """Fill ``order`` base units (at most ``cap``) at ``mid`` +- half spread +- impact +- slippage.

    Returns ``(filled, price, quote_delta, spread_cost, impact_cost, slippage_cost, commission)``:
    price in quote currency (NaN with no fill), the quote leg's change in quote currency, the
    costs (>= 0) in account currency at the rate ``conv``.
    """
    filled = min(max(order, -cap), cap)
    size = abs(filled)
    participation = size / liquidity if (math.isfinite(liquidity) and liquidity > 0) else 0.0
    vol = sigma if math.isfinite(sigma) else 0.0
    impact = q.impact_coefficient * vol * math.sqrt(participation)
    slip = q.slippage
    half = 0.5 * spread * q.spread_multiplier
    side = 1.0 if filled > 0 else (-1.0 if filled < 0 else 0.0)
    price = mid + side * (half + mid * (impact + slip))
    notional = size * mid * conv
    commission = notional * q.commission_per_million * 1e-6
    return (filled, price if size > 0 else np.nan, -filled * price, size * half * conv, notional * impact,
            notional * slip, commission)


@jit(cache=True, error_model="numpy", inline="always")
def average_price(units, filled, price, avg):
    """Average entry price after a fill: reset on a close, the fill's price on a flip, weighted on an add."""
    new_units = units + filled
    if new_units == 0:
        return np.nan
    if units * new_units < 0:
        return price
    if filled != 0 and (units * filled > 0 or units == 0):
        held_value = units * (0.0 if math.isnan(avg) else avg) if units != 0 else 0.0
        return (held_value + filled * (0.0 if math.isnan(price) else price)) / new_units
    return avg


@jit(cache=True, error_model="numpy", inline="always")
def budget_fraction(bars, q, t, j, direction):
    """Fraction of the maximum notional whose own one-bar VaR (on the side of ``direction``) is
    1/P of the limit, capped at 1; 0 where the VaR is not positive."""
    c = j * N_BAR
    side = bars[t, c + VSHORT] if direction < 0 else bars[t, c + VLONG]
    unit = q.var_limit / (q.n_pairs * side * q.max_leverage) if side > 0 else 0.0
    return min(unit, 1.0)


@jit(cache=True, error_model="numpy", inline="always")
def base_fraction(bars, q, t, j):
    """The base rule's size of pair j (fraction of the maximum notional, >= 0, along the signal), as
    the rule-based baselines of :mod:`agents.baselines` size it with their defaults: ``vol_target``
    leverage base_target_vol / (sigma sqrt(bars per year)) capped at base_max_leverage;
    ``var_budget`` base_var_budget x the VaR limit split equally over the pairs with a signal."""
    c = j * N_BAR
    if q.base_rule == BaseRule.VOL_TARGET:
        sigma = bars[t, c + SIGMA]
        if not (sigma > 0 and math.isfinite(sigma)):
            return 0.0
        return min(q.base_target_vol / (sigma * math.sqrt(q.bars_per_year)), q.base_max_leverage) / q.max_leverage
    signal = bars[t, c + SIGNAL]
    side = bars[t, c + VLONG] if signal > 0 else bars[t, c + VSHORT]
    active = 0
    for k in range(q.n_pairs):
        if bars[t, k * N_BAR + SIGNAL] != 0:
            active += 1
    if not (side > 0 and math.isfinite(side)):
        return 0.0
    return q.base_var_budget * q.var_limit / (side * max(active, 1)) / q.max_leverage


@jit(cache=True, error_model="numpy", inline="always")
def requested_fraction(action, bars, q, t, j):
    """Requested exposure of pair j as a signed fraction of the maximum notional.

    Sizing: size (a + 1) / 2 in [0, 1] (a symmetric action space, as PPO's Gaussian policy
    prefers) along the signal; in VaR-budget units the size is a fraction of the position whose
    own VaR is 1/P of the limit. Residual: the base rule's size times exp(a ln size_range) along
    the signal (a = 0 is the rule itself). Direction: a x size_range VaR budgets, the sign the agent's.
    """
    c = j * N_BAR
    a = min(max(action, -1.0), 1.0)
    if q.action_mode == ActionMode.SIZING:
        size = min(max((action + 1.0) * 0.5, 0.0), 1.0)
        if q.size_unit == SizeUnit.VAR_BUDGET:
            side = bars[t, c + VSHORT] if bars[t, c + SIGNAL] < 0 else bars[t, c + VLONG]
            unit = q.var_limit / (q.n_pairs * side * q.max_leverage) if side > 0 else 0.0
            size = size * min(unit, 1.0)
        return size * bars[t, c + SIGNAL]
    if q.action_mode == ActionMode.RESIDUAL:
        size = base_fraction(bars, q, t, j) * math.exp(a * math.log(q.size_range))
        return min(size, 1.0) * bars[t, c + SIGNAL]
    if q.action_mode == ActionMode.DIRECTION:
        size = abs(a) * q.size_range * budget_fraction(bars, q, t, j, a)
        return min(size, 1.0) * (1.0 if a > 0 else (-1.0 if a < 0 else 0.0))
    return a


@jit(cache=True, error_model="numpy", inline="always")
def mark(bars, q, tt, tc, cash, units, quote, row):
    """Equity, gross exposure, used margin and margin level with prices of bar ``tt`` and rates of bar ``tc``."""
    mtm = 0.0
    gross = 0.0
    for j in range(q.n_pairs):
        c = j * N_BAR
        v = units[row, j] * bars[tt, c + CLOSE]
        mtm += (v + quote[row, j]) * bars[tc, c + CONV]
        gross += abs(v * bars[tc, c + CONV])
    eq = cash + mtm
    margin = gross * q.margin_rate
    return eq, margin, (eq / margin if margin > 0 else math.inf)


@jit(cache=True, error_model="numpy", inline="always")
def realise_closed(bars, q, tc, cash, units, quote, row):
    """Cash after the quote legs of closed positions turn into account currency at bar ``tc``'s rate."""
    realised = 0.0
    for j in range(q.n_pairs):
        realised += quote[row, j] * bars[tc, j * N_BAR + CONV] if units[row, j] == 0 else 0.0
    for j in range(q.n_pairs):
        if units[row, j] == 0:
            quote[row, j] = 0.0
    return cash + realised


# --------------------------------------------------------------------------- the step


@jit(cache=True, error_model="numpy", inline="always")
def account_step(bars, q, t, end, cash, peak, equity, dsr_a, dsr_b, units, avg, quote, row, action, work, out_p):
    """Advance account ``row`` one bar from bar t.

    ``units``, ``avg``, ``quote`` (accounts, pairs) are updated in place at ``row``; ``action``
    (accounts, pairs) is read at ``row``; the per-pair outputs go to ``out_p[:, row, :]``.
    Returns ``(cash, peak, equity, dsr_a, dsr_b, last_scale, floats, flags)``: the new account
    scalars, then the float outputs (:data:`envs.fields.FLOAT_OUTPUTS` order) and the flags
    (:data:`envs.fields.FLAG_OUTPUTS` order) as tuples.
    """
    p = q.n_pairs
    nx = t + 1
    eq_t = equity
    limit = q.var_limit * eq_t
    lev_eq = q.max_leverage * eq_t
    shield = q.var_mode == VarMode.SHIELD

    # The request and its VaR at the decision (prices and forecasts of bar t).
    for j in range(p):
        # float(): a float32 action must not make the Python run compute in float32 (NumPy's scalar rules)
        work[_W_REQUESTED, j] = requested_fraction(float(action[row, j]), bars, q, t, j) * lev_eq
    var_requested = portfolio_var(bars, q, t, work, _W_REQUESTED)
    scale = 1.0
    for j in range(p):
        work[_W_TARGET, j] = work[_W_REQUESTED, j]
    if shield:
        scale = shield_scale(var_requested, limit)
        for j in range(p):
            c = j * N_BAR
            value = bars[t, c + CLOSE] * bars[t, c + CONV]
            work[_W_TARGET, j] = work[_W_REQUESTED, j] * scale
            target_units = work[_W_TARGET, j] / value
            u = units[row, j]
            cap = math.inf if abs(target_units) < abs(u) else q.max_participation * bars[nx, c + LIQ]
            work[_W_REACHABLE, j] = u + min(max(target_units - u, -cap), cap)
            work[_W_HELD, j] = work[_W_REACHABLE, j] * bars[t, c + CLOSE] * bars[t, c + CONV]
        # Partial fills of a hedge leg could leave a riskier mix: check the fillable position too.
        second = shield_scale(portfolio_var(bars, q, t, work, _W_HELD), limit)
        if second < 1.0:
            for j in range(p):
                c = j * N_BAR
                work[_W_TARGET, j] = work[_W_REACHABLE, j] * bars[t, c + CLOSE] * bars[t, c + CONV] * second
        scale = scale * second
    for j in range(p):
        c = j * N_BAR
        work[_W_TARGET, j] = work[_W_TARGET, j] / (bars[t, c + CLOSE] * bars[t, c + CONV])  # now target units

    # Financing over the bar on the position held into it.
    day_fraction = bars[t, p * N_BAR] / 365.0
    carry_sum = 0.0
    fin_sum = 0.0
    for j in range(p):
        c = j * N_BAR
        held = units[row, j] * bars[nx, c + OPEN] * bars[t, c + CONV]
        carry_sum += held * bars[t, c + DIFF] * day_fraction
        fin_sum += abs(held) * q.financing_markup * day_fraction
    c_ = cash + carry_sum - fin_sum
    # The leverage cap at the open of bar t+1.
    mtm = 0.0
    for j in range(p):
        c = j * N_BAR
        mtm += (units[row, j] * bars[nx, c + OPEN] + quote[row, j]) * bars[t, c + CONV]
    eq_open = c_ + mtm
    gross = 0.0
    for j in range(p):
        c = j * N_BAR
        gross += abs(work[_W_TARGET, j] * bars[nx, c + OPEN] * bars[t, c + CONV])
    lev_limit = q.max_leverage * max(eq_open, 0.0)
    if gross > lev_limit:
        g = lev_limit / (gross if gross > 0 else 1.0)
        for j in range(p):
            work[_W_TARGET, j] = work[_W_TARGET, j] * g

    # The no-trade band and the minimum order: hold a position close enough to its target, unless
    # the VaR limit (shield) or the leverage cap needs the trade.
    band_holds = 0.0
    small_orders = 0.0
    if q.rebalance_band > 0.0 or q.min_order > 0.0:
        held_gross = 0.0
        for j in range(p):
            c = j * N_BAR
            work[_W_HELD, j] = units[row, j] * bars[t, c + CLOSE] * bars[t, c + CONV]
            held_gross += abs(units[row, j] * bars[nx, c + OPEN] * bars[t, c + CONV])
        forced = held_gross > lev_limit or (shield and portfolio_var(bars, q, t, work, _W_HELD) > limit)
        if not forced:
            for j in range(p):
                c = j * N_BAR
                u = units[row, j]
                target = work[_W_TARGET, j]
                work[_W_REACHABLE, j] = target  # kept, in case the holds must be undone
                gap = abs(target - u)
                if u * target > 0 and gap <= q.rebalance_band * abs(target):
                    work[_W_TARGET, j] = u
                    band_holds += 1.0
                elif gap > 0 and gap * bars[nx, c + OPEN] * bars[t, c + CONV] < q.min_order * eq_t:
                    work[_W_TARGET, j] = u
                    small_orders += 1.0
            if shield and band_holds + small_orders > 0:
                # Held pairs beside traded ones must still fit the limit, with the fills the caps allow.
                for j in range(p):
                    c = j * N_BAR
                    u = units[row, j]
                    target = work[_W_TARGET, j]
                    cap = math.inf if abs(target) < abs(u) else q.max_participation * bars[nx, c + LIQ]
                    work[_W_HELD, j] = (u + min(max(target - u, -cap), cap)) * bars[t, c + CLOSE] * bars[t, c + CONV]
                if portfolio_var(bars, q, t, work, _W_HELD) > limit:
                    for j in range(p):
                        work[_W_TARGET, j] = work[_W_REACHABLE, j]
                    band_holds = 0.0
                    small_orders = 0.0

    # Orders fill at bar t+1's open.
    commission_sum = 0.0
    trade_cost = 0.0
    turnover = 0.0
    spread_c = impact_c = slip_c = comm_c = 0.0
    for j in range(p):
        c = j * N_BAR
        u = units[row, j]
        cap = q.max_participation * bars[nx, c + LIQ]
        if shield and abs(work[_W_TARGET, j]) < abs(u):
            cap = math.inf  # a forced de-risking fills whole (and pays its impact)
        order = work[_W_TARGET, j] - u
        filled, price, quote_delta, spread_cost, impact_cost, slip_cost, commission = fill(
            order, bars[nx, c + OPEN], bars[nx, c + SPREAD], bars[nx, c + LIQ], bars[t, c + SIGMA],
            bars[t, c + CONV], cap, q)
        avg[row, j] = average_price(u, filled, price, avg[row, j])
        units[row, j] = u + filled
        quote[row, j] = quote[row, j] + quote_delta
        commission_sum += commission
        spread_c += spread_cost
        impact_c += impact_cost
        slip_c += slip_cost
        comm_c += commission
        trade_cost += spread_cost + impact_cost + slip_cost + commission
        turnover += abs(filled * bars[nx, c + OPEN] * bars[t, c + CONV])
        out_p[Q_FILLED, row, j] = filled
        out_p[Q_UNFILLED, row, j] = order - filled
        out_p[Q_FILL_PRICE, row, j] = price
    c_ = c_ - commission_sum
    c_ = realise_closed(bars, q, t, c_, units, quote, row)
    eq, margin, level = mark(bars, q, nx, nx, c_, units, quote, row)
    stopped = level < q.stop_out_level or eq <= 0  # a gap can wipe out a flat-after-cap account
    liq_cost = 0.0
    if stopped:  # liquidate at the close of bar t+1, whole, at its rate
        liq_commission = 0.0
        for j in range(p):
            c = j * N_BAR
            filled, price, quote_delta, spread_cost, impact_cost, slip_cost, commission = fill(
                -units[row, j], bars[nx, c + CLOSE], bars[nx, c + SPREAD], bars[nx, c + LIQ], bars[t, c + SIGMA],
                bars[nx, c + CONV], math.inf, q)
            units[row, j] = units[row, j] + filled
            quote[row, j] = quote[row, j] + quote_delta
            liq_commission += commission
            liq_cost += spread_cost + impact_cost + slip_cost + commission
            avg[row, j] = np.nan
        c_ = c_ - liq_commission
        c_ = realise_closed(bars, q, nx, c_, units, quote, row)
        eq, margin, level = mark(bars, q, nx, nx, c_, units, quote, row)

    # VaR of the position now held, valued at the decision, with the forecast for bar t+1.
    for j in range(p):
        c = j * N_BAR
        work[_W_HELD, j] = units[row, j] * bars[t, c + CLOSE] * bars[t, c + CONV]
    var_held = portfolio_var(bars, q, t, work, _W_HELD)
    utilisation = var_held / max(limit, 1e-12) if limit > 0 else math.inf
    excess = max(utilisation - 1.0, 0.0)

    r = math.log(max(eq, 1e-12) / max(eq_t, 1e-12))
    dd_before = 1.0 - eq_t / peak
    new_peak = max(peak, eq)
    dd_after = 1.0 - eq / new_peak
    if q.reward == RewardKind.LOG_RETURN:
        reward = r
    elif q.reward == RewardKind.DIFFERENTIAL_SHARPE:  # Moody & Saffell, EMA moments
        delta_a = r - dsr_a
        delta_b = r * r - dsr_b
        variance = dsr_b - dsr_a * dsr_a
        reward = (dsr_b * delta_a - 0.5 * dsr_a * delta_b) / max(variance, 1e-20) ** 1.5 if variance > 1e-20 else 0.0
        dsr_a = dsr_a + q.dsr_eta * delta_a
        dsr_b = dsr_b + q.dsr_eta * delta_b
    elif q.reward == RewardKind.MEAN_VARIANCE:  # mean-variance utility with the forecast variance
        reward = r - 0.5 * q.risk_aversion * forecast_variance(bars, q, t, eq_t, units, row, work)
    elif q.risk_penalty == RiskPenalty.VARIANCE:
        reward = r - q.risk_aversion * r * r
    else:
        reward = r - q.risk_aversion * max(dd_after - dd_before, 0.0)
    if q.var_mode == VarMode.PENALTY:
        reward = reward - q.var_penalty * excess
    reward = reward * q.reward_scale

    terminated = stopped or eq <= 0
    truncated = (nx >= end) and not terminated
    for j in range(p):
        c = j * N_BAR
        out_p[Q_UNITS, row, j] = units[row, j]
        out_p[Q_EXPOSURE, row, j] = units[row, j] * bars[nx, c + CLOSE] * bars[nx, c + CONV]
    floats = (reward, eq, c_, r, spread_c, impact_c, slip_c, comm_c, carry_sum - fin_sum, fin_sum, liq_cost,
              trade_cost + fin_sum + liq_cost, turnover, var_held, var_requested, limit, utilisation, excess, scale,
              level, dd_after, band_holds, small_orders)
    flags = (terminated, truncated, utilisation > 1.0 + 1e-9, scale < 1.0 - 1e-12, level < q.margin_call_level,
             stopped)
    return c_, new_peak, eq, dsr_a, dsr_b, scale, floats, flags


@jit(cache=True, error_model="numpy", inline="always")
def account_observe(bars, table, q, t, units, avg, row, peak, equity, last_scale, work, obs, orow):
    """The observation of account ``row`` at bar t into ``obs[orow, :]``: the market part, then
    per pair the exposure (fraction of the maximum notional) and, in every mode but exposure, the
    signal; then per pair the :data:`N_DECISION` decision features; then unrealised P&L, VaR
    utilisation, margin usage (fractions of equity), drawdown and the last shield scale; account
    features clipped to +-account_bound."""
    p = q.n_pairs
    market_dim = table.shape[1]
    for k in range(market_dim):
        obs[orow, k] = table[t, k]
    b = q.account_bound
    eq = equity
    eq_safe = max(eq, 1e-12)
    max_notional = q.max_leverage * eq_safe
    unrealised = 0.0
    gross = 0.0
    col = market_dim
    for j in range(p):
        c = j * N_BAR
        u = units[row, j]
        work[_W_HELD, j] = u * bars[t, c + CLOSE] * bars[t, c + CONV]
        obs[orow, col] = min(max(work[_W_HELD, j] / max_notional, -b), b)
        col += 1
        if u != 0:
            a = avg[row, j]
            unrealised += u * (bars[t, c + CLOSE] - (0.0 if math.isnan(a) else a)) * bars[t, c + CONV]
        gross += abs(u * bars[t, c + CLOSE] * bars[t, c + CONV])
    if q.action_mode != ActionMode.EXPOSURE:
        for j in range(p):
            obs[orow, col] = bars[t, j * N_BAR + SIGNAL]
            col += 1
    # The decision features (N_DECISION blocks of P): how strong the signal is, which volatility
    # regime this is, and where the position stands against the base rule's target and its band.
    for j in range(p):
        obs[orow, col + j] = min(max(bars[t, j * N_BAR + STRENGTH], -b), b)
        obs[orow, col + p + j] = min(max(bars[t, j * N_BAR + VOL_RATIO], -b), b)
        held = work[_W_HELD, j] / max_notional
        target = bars[t, j * N_BAR + BASE_TARGET]
        budget = bars[t, j * N_BAR + BUDGET]
        gap = (held - target) / budget if budget > 0 else 0.0
        obs[orow, col + 2 * p + j] = min(max(gap, -b), b)
        inside = held * target > 0 and abs(target - held) <= q.rebalance_band * abs(target)
        obs[orow, col + 3 * p + j] = 1.0 if inside else 0.0
    col += N_DECISION * p
    limit = q.var_limit * eq_safe
    util = min(portfolio_var(bars, q, t, work, _W_HELD) / limit, q.utilisation_cap)
    obs[orow, col] = min(max(unrealised / eq_safe, -b), b)
    obs[orow, col + 1] = min(max(util, -b), b)
    obs[orow, col + 2] = min(max(gross * q.margin_rate / eq_safe, -b), b)
    obs[orow, col + 3] = min(max(1.0 - eq / peak, -b), b)
    obs[orow, col + 4] = min(max(last_scale, -b), b)


# --------------------------------------------------------------------------- batches


@jit(cache=True, error_model="numpy", inline="always")
def _write_outputs(f, b, out_f, out_b, i):
    """The step's floats and flags into row i of the output blocks (unrolled: tuples held in registers)."""
    (out_f[i, 0], out_f[i, 1], out_f[i, 2], out_f[i, 3], out_f[i, 4], out_f[i, 5], out_f[i, 6], out_f[i, 7],
     out_f[i, 8], out_f[i, 9], out_f[i, 10], out_f[i, 11], out_f[i, 12], out_f[i, 13], out_f[i, 14], out_f[i, 15],
     out_f[i, 16], out_f[i, 17], out_f[i, 18], out_f[i, 19], out_f[i, 20], out_f[i, 21], out_f[i, 22]) = f
    out_b[i, 0], out_b[i, 1], out_b[i, 2], out_b[i, 3], out_b[i, 4], out_b[i, 5] = b


@jit(cache=True, error_model="numpy")
def batch_observe(bars, table, prm, t_arr, units, avg, peak, equity, last_scale, obs):
    """Observations (accounts, obs_dim) float32 of every account at its bar into ``obs``."""
    q = step_params(prm)
    work = np.empty((N_WORK, q.n_pairs))
    for i in range(t_arr.shape[0]):
        account_observe(bars, table, q, t_arr[i], units, avg, i, peak[i], equity[i], last_scale[i], work, obs, i)


@jit(cache=True, error_model="numpy")
def actions_in_bounds(action, skip, lo, hi):
    """Whether every action of an account not skipped lies in [lo, hi] (NaN does not)."""
    for i in range(action.shape[0]):
        if not skip[i]:
            for j in range(action.shape[1]):
                a = float(action[i, j])
                if not (a >= lo and a <= hi):
                    return False
    return True


@jit(cache=True, error_model="numpy", inline="always")
def _check_steps(t_arr, end, skip, n_bars):
    """Refuse the whole batch, before anything moves, when an account not skipped cannot step."""
    for i in range(t_arr.shape[0]):
        if not skip[i] and (t_arr[i] >= end[i] or t_arr[i] + 1 >= n_bars or t_arr[i] < 0):
            raise ResetNeededError("step() of an account past the end of its episode or the data (or before "
                                   "its reset()) — call reset() first")


@jit(cache=True, error_model="numpy")
def _step_accounts(lo, hi, bars, table, q, t_arr, end, cash, units, avg, quote, peak, equity, dsr_a, dsr_b,
                   last_scale, action, skip, out_f, out_b, out_p, obs, work):
    """Accounts lo..hi-1 of :func:`batch_step` (one thread's share in :func:`batch_step_threaded`)."""
    observe = obs.shape[0] > 0
    for i in range(lo, hi):
        if skip[i]:
            for k in range(out_f.shape[1]):
                out_f[i, k] = 0.0
            for k in range(out_b.shape[1]):
                out_b[i, k] = False
            for k in range(out_p.shape[0]):
                for j in range(q.n_pairs):
                    out_p[k, i, j] = 0.0
            out_f[i, O_EQUITY] = equity[i]
            if observe:
                account_observe(bars, table, q, t_arr[i], units, avg, i, peak[i], equity[i], last_scale[i], work,
                                obs, i)
            continue
        c, pk, eq, da, db, scale, floats, flags = account_step(
            bars, q, t_arr[i], end[i], cash[i], peak[i], equity[i], dsr_a[i], dsr_b[i], units, avg, quote, i, action,
            work, out_p)
        t_arr[i] = t_arr[i] + 1
        cash[i] = c
        peak[i] = pk
        equity[i] = eq
        dsr_a[i] = da
        dsr_b[i] = db
        last_scale[i] = scale
        _write_outputs(floats, flags, out_f, out_b, i)
        if observe:  # right after its step, while the account's rows and bar t+1 are in cache
            account_observe(bars, table, q, t_arr[i], units, avg, i, peak[i], equity[i], last_scale[i], work, obs, i)


@jit(cache=True, error_model="numpy")
def batch_step(bars, table, prm, t_arr, end, cash, units, avg, quote, peak, equity, dsr_a, dsr_b, last_scale, action, skip,
               out_f, out_b, out_p, obs):
    """Step every account not in ``skip`` one bar, in place; outputs into ``out_f`` / ``out_b`` /
    ``out_p`` and, when ``obs`` has rows, every account's next observation into ``obs``.

    A skipped account (a vector env resets it instead) is left as it is: outputs 0 / False
    except its equity; its observation is of its current bar. Nothing changes when any account
    would step past its episode or the data: that raises :class:`~envs.errors.ResetNeededError`.
    """
    q = step_params(prm)
    _check_steps(t_arr, end, skip, bars.shape[0])
    work = np.empty((N_WORK, q.n_pairs))
    _step_accounts(0, t_arr.shape[0], bars, table, q, t_arr, end, cash, units, avg, quote, peak, equity, dsr_a, dsr_b,
                   last_scale, action, skip, out_f, out_b, out_p, obs, work)


@jit(cache=True, error_model="numpy", parallel=True)
def batch_step_threaded(bars, table, prm, t_arr, end, cash, units, avg, quote, peak, equity, dsr_a, dsr_b, last_scale,
                        action, skip, out_f, out_b, out_p, obs, shares):
    """:func:`batch_step` with the accounts split into ``shares`` contiguous blocks stepped on
    numba's threads. Accounts are independent, so the result is the same, bit for bit."""
    q = step_params(prm)
    _check_steps(t_arr, end, skip, bars.shape[0])
    n = t_arr.shape[0]
    for s in prange(shares):
        work = np.empty((N_WORK, q.n_pairs))
        _step_accounts(s * n // shares, (s + 1) * n // shares, bars, table, q, t_arr, end, cash, units, avg, quote,
                       peak, equity, dsr_a, dsr_b, last_scale, action, skip, out_f, out_b, out_p, obs, work)


# --------------------------------------------------------------------------- the single environment


# Rows of the single environment's per-pair block: the account (units, average prices, quote
# legs), then the step's scratch rows, then its per-pair outputs.
P_UNITS, P_AVG, P_QUOTE = range(3)
P_WORK = 3
P_OUT = P_WORK + N_WORK
N_PAIR_ROWS = P_OUT + len(_PAIRS)


@jit(cache=True, error_model="numpy", inline="always")
def _context_rows(n_pairs, width):
    """How many leading rows of the single environment's array hold its context vector."""
    return (N_CONTEXT + N_PAIR_ROWS * n_pairs + width - 1) // width


@jit(cache=True, error_model="numpy", inline="always")
def _single_parts(packed):
    """Views of the single environment's array: (params, ctx, bars, table, units, avg, quote, work, out_p)."""
    flat = packed.reshape(-1)
    p = int(flat[0])  # the parameters come first, n_pairs first of them
    ctx = flat[:N_CONTEXT + N_PAIR_ROWS * p]
    q = step_params(ctx)
    market = packed[_context_rows(p, packed.shape[1]):]
    m0 = p * N_BAR + 1 + p * p
    pairs = ctx[N_CONTEXT:].reshape((N_PAIR_ROWS, p))
    return (q, ctx, market[:, :m0], market[:, m0:], pairs[P_UNITS:P_UNITS + 1], pairs[P_AVG:P_AVG + 1],
            pairs[P_QUOTE:P_QUOTE + 1], pairs[P_WORK:P_OUT], pairs[P_OUT:].reshape((len(_PAIRS), 1, p)))


@jit(cache=True, error_model="numpy")
def single_observe(packed, obs):
    """The observation (obs_dim,) of the single environment's account at its bar into ``obs``."""
    q, ctx, bars, table, units, avg, quote, work, out_p = _single_parts(packed)
    account_observe(bars, table, q, int(ctx[C_T]), units, avg, 0, ctx[C_PEAK], ctx[C_EQUITY], ctx[C_LAST_SCALE],
                    work, obs.reshape((1, obs.shape[0])), 0)


@jit(cache=True, error_model="numpy")
def single_step(packed, action, obs):
    """Step the single environment's account and write the next observation into ``obs`` (obs_dim,).

    ``packed`` (:func:`pack_single`): the context vector in its leading rows — the parameters,
    the account scalars (:data:`C_T` ...), then the per-pair block (:data:`N_PAIR_ROWS` rows:
    units, average prices, quote legs, scratch, the per-pair outputs), updated in place — then
    ``bars`` and ``table`` (as float64) side by side. Three arguments: each array costs the call
    ~100 ns, a fortieth of a step.

    Returns ``(reward, terminated, truncated, t, *floats, *flags, *first pair's outputs)``: one flat
    tuple (the cheapest to box), floats and flags in :mod:`envs.fields` order; every pair's
    outputs are in the per-pair block's rows from :data:`P_OUT`.
    """
    q, ctx, bars, table, units, avg, quote, work, out_p = _single_parts(packed)
    t = int(ctx[C_T])
    end = int(ctx[C_END])
    if t >= end or t + 1 >= bars.shape[0] or t < 0:  # never read past the episode or the data
        raise ResetNeededError("step() past the end of the episode or the data (or before reset()) — call "
                               "reset() first")
    c, pk, eq, da, db, scale, f, b = account_step(
        bars, q, t, end, ctx[C_CASH], ctx[C_PEAK], ctx[C_EQUITY], ctx[C_DSR_A], ctx[C_DSR_B], units, avg, quote, 0,
        action.reshape((1, action.shape[0])), work, out_p)
    ctx[C_T] = t + 1
    ctx[C_CASH] = c
    ctx[C_PEAK] = pk
    ctx[C_EQUITY] = eq
    ctx[C_DSR_A] = da
    ctx[C_DSR_B] = db
    ctx[C_LAST_SCALE] = scale
    account_observe(bars, table, q, t + 1, units, avg, 0, pk, eq, scale, work, obs.reshape((1, obs.shape[0])), 0)
    return (f[0], b[0], b[1], t + 1, f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12],
            f[13], f[14], f[15], f[16], f[17], f[18], f[19], f[20], f[21], f[22], b[2], b[3], b[4], b[5],
            out_p[Q_UNITS, 0, 0], out_p[Q_EXPOSURE, 0, 0], out_p[Q_FILLED, 0, 0], out_p[Q_UNFILLED, 0, 0],
            out_p[Q_FILL_PRICE, 0, 0])


# --------------------------------------------------------------------------- packing (Python)


def pack_params(config, n_pairs: int, has_corr: bool, bars_per_year: float) -> np.ndarray:
    """:class:`StepParams` of an :class:`~envs.config.EnvConfig` (durations already in bars) as float64."""
    from envs.config import ACTION_MODES, BASE_RULES, REWARDS, RISK_PENALTIES, SIZE_UNITS, VAR_MODES

    acct, ex = config.account, config.execution
    params = StepParams(
        n_pairs=int(n_pairs), has_corr=int(bool(has_corr) and n_pairs > 1), max_leverage=acct.max_leverage,
        margin_rate=acct.margin_rate, stop_out_level=acct.stop_out_level, margin_call_level=acct.margin_call_level,
        max_participation=ex.max_participation, impact_coefficient=ex.impact_coefficient,
        slippage=ex.slippage_bps * 1e-4, spread_multiplier=ex.spread_multiplier,
        commission_per_million=ex.commission_per_million, financing_markup=config.financing.markup,
        var_limit=config.var_limit, var_penalty=config.var_penalty, risk_aversion=config.risk_aversion,
        dsr_eta=config.dsr_eta, reward_scale=config.reward_scale, rebalance_band=config.rebalance_band,
        min_order=config.min_order, size_range=config.size_range, base_target_vol=config.base_target_vol,
        base_max_leverage=config.base_max_leverage, base_var_budget=config.base_var_budget,
        bars_per_year=bars_per_year, account_bound=ACCOUNT_BOUND,
        utilisation_cap=UTILISATION_CAP, action_mode=ACTION_MODES.index(config.action_mode),
        size_unit=SIZE_UNITS.index(config.size_unit), var_mode=VAR_MODES.index(config.var_mode),
        reward=REWARDS.index(config.reward), risk_penalty=RISK_PENALTIES.index(config.risk_penalty),
        base_rule=BASE_RULES.index(config.base_rule))
    return np.array([float(v) for v in params], dtype=np.float64)


def pack_market(data, prm: np.ndarray) -> np.ndarray:
    """The bars layout (see the module docstring) of an :class:`~envs.data.EnvData` under the
    parameters ``prm`` (:func:`pack_params`): one C-contiguous float64 array, one row a bar."""
    p = data.n_pairs
    fields = [data.open, data.close, data.spread, data.liquidity, data.conv, data.sigma, data.var_long,
              data.var_short, data.signal, np.broadcast_to(np.asarray(data.differential, dtype=np.float64),
                                                           data.open.shape), data.signal_strength, data.vol_ratio]
    out = np.zeros((data.n_bars, p * N_BAR + 1 + p * p))
    for f, values in enumerate(fields):
        out[:, f:p * N_BAR:N_BAR] = np.asarray(values, dtype=np.float64)
    days_col, corr_col = market_columns(p)
    out[:, days_col] = np.asarray(data.days, dtype=np.float64)
    if data.corr is not None:
        out[:, corr_col:corr_col + p * p] = np.asarray(data.corr, dtype=np.float64).reshape(data.n_bars, p * p)
    else:
        out[:, corr_col:] = np.eye(p).reshape(-1)
    rule_columns(out, prm)
    return np.ascontiguousarray(out)


@jit(cache=True, error_model="numpy")
def rule_columns(bars, prm):
    """Fill the base rule's target and one VaR budget of every bar and pair into ``bars``: they
    depend on the bar and the parameters only, so the observation reads them instead of
    computing them for every account at every step."""
    q = step_params(prm)
    for t in range(bars.shape[0]):
        for j in range(q.n_pairs):
            c = j * N_BAR
            signal = bars[t, c + SIGNAL]
            bars[t, c + BASE_TARGET] = min(base_fraction(bars, q, t, j), 1.0) * signal
            bars[t, c + BUDGET] = budget_fraction(bars, q, t, j, signal)


def pack_single(bars: np.ndarray, table: np.ndarray, prm: np.ndarray) -> np.ndarray:
    """The single environment's one array: its context vector (the parameters ``prm``, then the
    account, zero) in the leading rows, then ``bars`` and ``table`` (as float64) side by side."""
    market = np.hstack([bars, table.astype(np.float64)])
    p = int(prm[0])
    k = _context_rows(p, market.shape[1])
    packed = np.zeros((k + market.shape[0], market.shape[1]))
    packed[k:] = market
    single_context(packed)[:N_PARAMS] = prm
    return packed


def single_context(packed: np.ndarray) -> np.ndarray:
    """The context vector of :func:`pack_single`'s array (a view: writes go to the array)."""
    p = int(packed[0, 0])
    return packed[:_context_rows(p, packed.shape[1])].reshape(-1)[:N_CONTEXT + N_PAIR_ROWS * p]


def pack_table(data, window: int) -> np.ndarray:
    """The market part of the observation at each bar (time, window x features) float32: the
    feature window ending at the bar (zeros before the first full window)."""
    market_dim = window * data.features.shape[1]
    windows = np.lib.stride_tricks.sliding_window_view(data.features, window, axis=0)
    table = np.zeros((data.n_bars, market_dim), dtype=np.float32)
    table[window - 1:] = windows.transpose(0, 2, 1).reshape(len(windows), -1)
    return table


UTILISATION_CAP = 10.0
"""The observation's VaR utilisation is capped at 10x the limit."""
ACCOUNT_BOUND = 100.0
"""Account features of the observation are clipped to +-100 (only reached on a wiped-out account)."""
OBS_BOUND = 100.0
"""Observation space bounds; market features are clipped to +-10 in EnvData."""


@jit(cache=True, error_model="numpy")
def batch_requested(bars, prm, action, t_arr, out):
    """Requested exposure fractions (accounts, pairs) of ``action`` at each account's bar (as the step)."""
    q = step_params(prm)
    for i in range(t_arr.shape[0]):
        for j in range(q.n_pairs):
            out[i, j] = requested_fraction(float(action[i, j]), bars, q, t_arr[i], j)


@jit(cache=True, error_model="numpy")
def unit_tables(bars, prm, out):
    """Per bar and pair (``out`` (time, pairs, 3)): the base rule's size, and the VaR budget's size
    long and short (fractions of the maximum notional) — what an action is measured in, for
    mapping a target exposure back to an action (:func:`agents.policies.fraction_to_action`)."""
    q = step_params(prm)
    for t in range(bars.shape[0]):
        for j in range(q.n_pairs):
            out[t, j, 0] = base_fraction(bars, q, t, j)
            out[t, j, 1] = budget_fraction(bars, q, t, j, 1.0)
            out[t, j, 2] = budget_fraction(bars, q, t, j, -1.0)
