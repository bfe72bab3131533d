"""The environment's logic for a batch of accounts (and for one): the compiled step of :mod:`envs.step`.

One step source serves the single environment, the vector environment and the evaluation
and stress runners, so all give the same trajectories by construction. This module packs
an :class:`~envs.data.EnvData` and an :class:`~envs.config.EnvConfig` into the step's
layouts, holds account state, and turns the step's output blocks into ``info`` dicts keyed by
:mod:`envs.fields`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from envs import step as kernel
from envs.config import EnvConfig
from envs.data import EnvData
from simulator.common.compiled import thread_shares
from simulator.data.frequency import HOURS_PER_UNIT
from simulator.data.frequency import bars_per_year as metric_bars_per_year
from envs.fields import FLAG_OUTPUTS, FLOAT_OUTPUTS, INFO_KEYS, PAIR_OUTPUTS, RESET_INFO
from envs.step import ACCOUNT_BOUND, OBS_BOUND, UTILISATION_CAP  # noqa: F401  (re-exported)

DECISION_FEATURES = ("signal_strength", "vol_ratio", "target_gap", "in_band")
"""Per-pair features that carry the sizing decision (see :func:`envs.step.account_observe`)."""
ACCOUNT_FEATURES = ("unrealised_pnl", "var_utilisation", "margin_usage", "drawdown", "last_shield_scale")
# Where each info entry comes from: (block, row); the block 0 floats, 1 flags, 2 per pair.
_SOURCES = {**{k: (0, r) for r, k in enumerate(FLOAT_OUTPUTS)}, **{k: (1, r) for r, k in enumerate(FLAG_OUTPUTS)},
            **{k: (2, r) for r, k in enumerate(PAIR_OUTPUTS)}}
_INFO_SOURCES = tuple((key, _SOURCES[key]) for key in INFO_KEYS if key != "t")


@dataclass(eq=False)
class BatchState:
    """Mutable state of N accounts (one per environment)."""

    t: np.ndarray
    end: np.ndarray
    cash: np.ndarray
    units: np.ndarray
    avg_price: np.ndarray
    quote_cash: np.ndarray
    peak: np.ndarray
    equity: np.ndarray
    dsr_a: np.ndarray
    dsr_b: np.ndarray
    last_scale: np.ndarray

    @classmethod
    def empty(cls, n_envs: int, n_pairs: int) -> BatchState:
        z = np.zeros(n_envs)
        return cls(t=np.zeros(n_envs, dtype=np.int64), end=np.zeros(n_envs, dtype=np.int64), cash=z.copy(),
                   units=np.zeros((n_envs, n_pairs)), avg_price=np.full((n_envs, n_pairs), np.nan),
                   quote_cash=np.zeros((n_envs, n_pairs)),
                   peak=z.copy(), equity=z.copy(), dsr_a=z.copy(), dsr_b=z.copy(), last_scale=np.ones(n_envs))


_STATE_FIELDS = tuple(f.name for f in fields(BatchState))
_INT_FIELDS = ("t", "end")


def var_budget_fraction(signal: np.ndarray, var_long: np.ndarray, var_short: np.ndarray, var_limit: float,
                        max_leverage: float) -> np.ndarray:
    """Fraction of the maximum notional whose own one-bar VaR is 1/P of the limit, per pair (<= 1).

    For rules that size in VaR units (:mod:`agents.baselines`). ``var_long``/``var_short`` are VaR
    fractions of position value (the side the signal takes); leverage ``var_limit / (P · VaR)``
    divided by ``max_leverage``; 0 where VaR is not positive.
    """
    side = np.where(signal < 0, var_short, var_long)
    n_pairs = side.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(side > 0, var_limit / (n_pairs * side * max_leverage), 0.0)
    return np.minimum(frac, 1.0)


def bars_per_year(data: EnvData, trading_days: float = 260.0) -> float:
    """Bars in a trading year from the timestamps up to the first decision bar (as the vol_target
    baseline infers it: the median spacing x ``trading_days``; the bar length if that fails)."""
    value = metric_bars_per_year(np.asarray(data.index[: max(int(data.first_step), 1) + 1]),
                                 trading_days_per_year=trading_days)
    return float(value) if np.isfinite(value) else HOURS_PER_UNIT["Y"] / data.bar_hours


def _contiguous(state: BatchState) -> None:
    """The state's arrays as the compiled step takes them (C-contiguous int64 / float64), in place."""
    for name in _STATE_FIELDS:
        arr = getattr(state, name)
        dtype = np.int64 if name in _INT_FIELDS else np.float64
        if not (arr.dtype == dtype and arr.flags.c_contiguous):
            setattr(state, name, np.ascontiguousarray(arr, dtype=dtype))


def _actions(action: np.ndarray) -> np.ndarray:
    if type(action) is np.ndarray and action.dtype in (np.float32, np.float64) and action.flags.c_contiguous:
        return action
    return np.ascontiguousarray(action, dtype=np.float64)


class FxRiskCore:
    """Observation, action and reward logic over :class:`EnvData` for a batch of accounts."""

    def __init__(self, data: EnvData, config: EnvConfig, *, table: np.ndarray | None = None) -> None:
        """``table``: the market part of the observation per bar, when the caller built it (the
        stress grid packs each stacked market's own, :func:`agents.evaluation.rollout.run_grid`);
        ``None``: packed from ``data``."""
        self.data = data
        config = config.in_bars(data.bar_hours)  # durations → bars of this data
        self.config = config
        self.n_pairs = data.n_pairs
        self.market_dim = config.window * data.features.shape[1]
        extra = self.n_pairs * ((1 if config.action_mode == "exposure" else 2) + len(DECISION_FEATURES))
        self.obs_dim = self.market_dim + extra + len(ACCOUNT_FEATURES)
        self.prm = kernel.pack_params(config, data.n_pairs, data.corr is not None, bars_per_year(data))
        self.bars = kernel.pack_market(data, self.prm)
        self.table = kernel.pack_table(data, config.window) if table is None else table
        if self.table.shape != (data.n_bars, self.market_dim):
            raise ValueError(f"observation table must be (bars, market dim) = {(data.n_bars, self.market_dim)}, "
                             f"got {self.table.shape}")

    # -- episodes ------------------------------------------------------------------------
    def start_bounds(self) -> tuple[int, int]:
        """Inclusive range of episode start bars (random starts draw from it in training)."""
        lo = self.data.first_step
        if self.config.episode_bars is None:
            return lo, lo
        hi = max(lo, self.data.last_step + 1 - self.config.episode_bars)
        return lo, hi

    def episode_end(self, start: int) -> int:
        """One past the last bar an episode from ``start`` steps into (truncated there)."""
        last = self.data.last_step + 1
        return last if self.config.episode_bars is None else min(int(start) + self.config.episode_bars, last)

    def reset_accounts(self, state: BatchState, which: np.ndarray, starts: np.ndarray) -> None:
        """Start fresh accounts for the environments in ``which`` at bars ``starts``."""
        cfg = self.config
        last = self.data.last_step + 1
        span = last - starts if cfg.episode_bars is None else np.minimum(cfg.episode_bars, last - starts)
        state.t[which] = starts
        state.end[which] = starts + span
        state.cash[which] = cfg.account.initial_equity
        state.units[which] = 0.0
        state.avg_price[which] = np.nan
        state.quote_cash[which] = 0.0
        state.peak[which] = cfg.account.initial_equity
        state.equity[which] = cfg.account.initial_equity
        state.dsr_a[which] = 0.0
        state.dsr_b[which] = 0.0
        state.last_scale[which] = 1.0

    # -- observation and actions -----------------------------------------------------------
    def observe(self, state: BatchState) -> np.ndarray:
        """Observations (batch, obs_dim) float32 at each account's bar t (data <= t only)."""
        _contiguous(state)
        out = np.empty((len(state.t), self.obs_dim), dtype=np.float32)
        kernel.batch_observe(self.bars, self.table, self.prm, state.t, state.units, state.avg_price, state.peak, state.equity,
                             state.last_scale, out)
        return out

    def target_fraction(self, action: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Requested exposure per pair as a signed fraction of the maximum leverage (as the step reads
        an action: :func:`envs.step.requested_fraction`)."""
        action = np.ascontiguousarray(np.broadcast_to(action, (len(t), self.n_pairs)), dtype=np.float64)
        out = np.empty((len(t), self.n_pairs))
        kernel.batch_requested(self.bars, self.prm, action, np.ascontiguousarray(t, dtype=np.int64), out)
        return out

    # -- step ----------------------------------------------------------------------------
    def step(self, state: BatchState, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Advance every account one bar; returns ``(reward, terminated, truncated, info)`` arrays."""
        _, reward, terminated, truncated, info = self._run(state, _actions(action), None, observe=False)
        return reward, terminated, truncated, info

    def step_observe(self, state: BatchState, action: np.ndarray, *, skip: np.ndarray | None = None,
                     bounds: tuple[float, float] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict] | None:
        """:meth:`step` then :meth:`observe`, in one compiled pass.

        Returns ``(obs, reward, terminated, truncated, info)``; every info array is fresh (not
        a view of the state). ``skip`` (bool, N): accounts left as they are (a vector env resets
        them instead): reward 0, flags False, info entries 0 except ``t`` and ``equity``, which
        hold their current values; their observation is of their current bar. ``bounds``
        ``(lo, hi)``: if an action of an account not skipped is outside it (or NaN), nothing is
        changed and ``None`` is returned (the caller raises, with its own message).
        """
        action = _actions(action)
        n = len(state.t)
        skip_arr = np.zeros(n, dtype=bool) if skip is None else np.ascontiguousarray(skip, dtype=bool)
        if bounds is not None and not kernel.actions_in_bounds(action, skip_arr, float(bounds[0]), float(bounds[1])):
            return None
        return self._run(state, action, skip_arr, observe=True)

    def _run(self, state: BatchState, action: np.ndarray, skip: np.ndarray | None, *, observe: bool
             ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray, dict]:
        _contiguous(state)
        n, p = len(state.t), self.n_pairs
        if skip is None:
            skip = np.zeros(n, dtype=bool)
        # Fresh each step: the info arrays are columns of out_f / out_b (an account's outputs are
        # contiguous, see envs.step) and rows of out_p, padded by 64 bytes so that they do not start
        # 4 KiB apart (stores to such rows alias in the CPU's load/store queue: ~10%).
        out_f = np.empty((n, len(FLOAT_OUTPUTS)))
        out_b = np.empty((n, len(FLAG_OUTPUTS)), dtype=bool)
        out_p = np.empty((len(PAIR_OUTPUTS), n + 8, p))[:, :n]
        obs = np.empty((n if observe else 0, self.obs_dim), dtype=np.float32)
        args = (self.bars, self.table, self.prm, state.t, state.end, state.cash, state.units, state.avg_price,
                state.quote_cash, state.peak, state.equity, state.dsr_a, state.dsr_b, state.last_scale, action, skip,
                out_f, out_b, out_p, obs)
        shares = thread_shares(n)
        if shares > 1:  # accounts are independent: the same result, bit for bit, on every thread count
            kernel.batch_step_threaded(*args, shares)
        else:
            kernel.batch_step(*args)
        blocks = (out_f, out_b, out_p)
        info = {"t": state.t.copy()}
        for key, (block, row) in _INFO_SOURCES:
            info[key] = out_p[row] if block == 2 else blocks[block][:, row]
        return (obs if observe else None), out_f[:, 0], out_b[:, 0], out_b[:, 1], info


class SingleAccount:
    """One account stepped by :func:`envs.step.single_step`: one compiled call a step.

    The single environment's state lives in the leading rows of the one float64 array that also
    holds its market (:func:`envs.step.pack_single`), updated in place by the compiled step
    (``ctx``, a view: the parameters, then t, end, cash, peak, equity, the differential-Sharpe
    moments and the last shield scale, then the per-pair block ``pairs``: units, average prices,
    quote legs, the step's scratch and per-pair outputs).
    """

    def __init__(self, core: FxRiskCore) -> None:
        self.core = core
        self.packed = kernel.pack_single(core.bars, core.table, core.prm)
        self.n_pairs = core.n_pairs
        self.obs_dim = core.obs_dim
        self.initial = core.config.account.initial_equity
        self.ctx = kernel.single_context(self.packed)  # a view
        self.pairs = self.ctx[kernel.N_CONTEXT:].reshape(kernel.N_PAIR_ROWS, core.n_pairs)  # a view
        first = core.data.first_step
        self.reset(first, first)  # an empty episode: stepping before reset() is refused

    # The account, as Python numbers (the state lives in the arrays the compiled step updates).
    t = property(lambda self: int(self.ctx[kernel.C_T]))
    end = property(lambda self: int(self.ctx[kernel.C_END]))
    cash = property(lambda self: float(self.ctx[kernel.C_CASH]))
    peak = property(lambda self: float(self.ctx[kernel.C_PEAK]))
    equity = property(lambda self: float(self.ctx[kernel.C_EQUITY]))
    last_scale = property(lambda self: float(self.ctx[kernel.C_LAST_SCALE]))
    units = property(lambda self: self.pairs[kernel.P_UNITS].copy())
    avg_price = property(lambda self: self.pairs[kernel.P_AVG].copy())
    quote_cash = property(lambda self: self.pairs[kernel.P_QUOTE].copy())

    def reset(self, start: int, end: int) -> None:
        """A fresh account at bar ``start``; the episode ends at bar ``end`` (truncated)."""
        ctx = self.ctx
        ctx[kernel.C_T], ctx[kernel.C_END] = int(start), int(end)
        ctx[kernel.C_CASH] = ctx[kernel.C_PEAK] = ctx[kernel.C_EQUITY] = self.initial
        ctx[kernel.C_DSR_A] = ctx[kernel.C_DSR_B] = 0.0
        ctx[kernel.C_LAST_SCALE] = 1.0
        self.pairs[kernel.P_UNITS] = 0.0
        self.pairs[kernel.P_AVG] = math.nan
        self.pairs[kernel.P_QUOTE] = 0.0

    def observe(self) -> np.ndarray:
        """The observation (obs_dim,) float32 at the current bar (a fresh array)."""
        obs = np.empty(self.obs_dim, dtype=np.float32)
        kernel.single_observe(self.packed, obs)
        return obs

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """One step for a validated action (pairs,) float array: ``(observation, reward, terminated,
        truncated, info)``. Per-pair entries are floats for a one-pair market, arrays (pairs,) otherwise."""
        obs = _empty(self.obs_dim, _float32)
        (reward, terminated, truncated, t, equity, cash, log_return, spread_cost, impact_cost, slippage_cost,
         commission, financing, financing_cost, liquidation_cost, costs, turnover, var, var_requested, var_limit,
         var_utilisation, cost, shield_scale, margin_level, drawdown, band_holds, small_orders, var_breach, clipped,
         margin_call, stopped_out, units, exposure, filled, unfilled, fill_price) = kernel.single_step(self.packed, action, obs)
        if self.n_pairs > 1:  # fresh arrays (the block is the account's own)
            units, exposure, filled, unfilled, fill_price = self.pairs[kernel.P_OUT:].copy()
        # A dict display (keys in envs.fields.INFO_KEYS order): the cheapest way to build a 30-key dict.
        return obs, reward, terminated, truncated, {
            "t": t, "equity": equity, "cash": cash, "log_return": log_return, "spread_cost": spread_cost,
            "impact_cost": impact_cost, "slippage_cost": slippage_cost, "commission": commission,
            "financing": financing, "financing_cost": financing_cost, "liquidation_cost": liquidation_cost,
            "costs": costs, "turnover": turnover, "var": var, "var_requested": var_requested, "var_limit": var_limit,
            "var_utilisation": var_utilisation, "cost": cost, "shield_scale": shield_scale,
            "margin_level": margin_level, "drawdown": drawdown, "band_holds": band_holds,
            "small_orders": small_orders, "var_breach": var_breach, "clipped": clipped,
            "margin_call": margin_call, "stopped_out": stopped_out, "units": units, "exposure": exposure,
            "filled": filled, "unfilled": unfilled, "fill_price": fill_price}


_empty, _float32 = np.empty, np.dtype(np.float32)  # a dtype object: np.empty is faster with it
__all__ = ["ACCOUNT_FEATURES", "DECISION_FEATURES", "BatchState", "FxRiskCore", "RESET_INFO", "SingleAccount",
           "var_budget_fraction"]
