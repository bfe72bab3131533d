"""The environment's logic for a batch of accounts: observe, apply the VaR limit, step, reward.

One implementation for the single environment (a batch of one) and the batched vector
environment, so both give the same trajectories by construction. The money maths is in
``simulator.engine`` (pure functions); this module adds the observation, the action
semantics, the VaR limit and the reward.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from envs.config import EnvConfig
from envs.data import EnvData
from envs.errors import STEP_PAST_DATA, ResetNeededError
from envs.rewards import differential_sharpe, log_return, risk_penalty
from envs.risk_limit import portfolio_var, shield_scale
from simulator.account import used_margin
from simulator.engine import BarData, step_accounts
from simulator.execution import fill_caps

ACCOUNT_FEATURES = ("unrealised_pnl", "var_utilisation", "margin_usage", "drawdown", "last_shield_scale")
# Info entries of the numpy step that alias arrays of the live state.
_ALIASED_INFO = ("t", "equity", "cash", "units", "shield_scale")
# Info entries a skipped (resetting) account still reports: its current values.
RESET_INFO = ("t", "equity")
UTILISATION_CAP = 10.0
ACCOUNT_BOUND = 100.0  # account features are clipped to ±100 (only reached on a wiped-out account)
OBS_BOUND = 100.0      # observation space bounds; market features are clipped to ±10 in EnvData


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


def var_budget_fraction(signal: np.ndarray, var_long: np.ndarray, var_short: np.ndarray, var_limit: float,
                        max_leverage: float) -> np.ndarray:
    """Fraction of the maximum notional whose own one-bar VaR is 1/P of the limit, per pair (<= 1).

    ``var_long``/``var_short`` are VaR fractions of position value (the side the signal takes);
    leverage ``var_limit / (P · VaR)`` divided by ``max_leverage``; 0 where VaR is not positive.
    """
    side = np.where(signal < 0, var_short, var_long)
    n_pairs = side.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(side > 0, var_limit / (n_pairs * side * max_leverage), 0.0)
    return np.minimum(frac, 1.0)


class FxRiskCore:
    """Observation, action and reward logic over :class:`EnvData` for a batch of accounts."""

    def __init__(self, data: EnvData, config: EnvConfig, *, backend: str = "auto", pair_kernel: bool = True) -> None:
        """``backend``: ``numba`` (compiled twin, :mod:`envs.kernel`), ``numpy`` (this module's
        array code, the reference) or ``auto`` (numba when installed).

        ``pair_kernel``: with numba and a one-pair market, step through the single environment's
        scalar step (:mod:`envs.single_pair`, batched in :func:`envs.single_pair.pair_batch_step`,
        ~3x faster); ``False`` keeps the generic kernel (the same results; tests hold them equal).
        """
        self.data = data
        config = config.in_bars(data.bar_hours)  # durations → bars of this data
        self.config = config
        self.n_pairs = data.n_pairs
        self._offsets = np.arange(-config.window + 1, 1)
        self.market_dim = config.window * data.features.shape[1]
        extra = self.n_pairs * (2 if config.action_mode == "sizing" else 1)
        self.obs_dim = self.market_dim + extra + len(ACCOUNT_FEATURES)
        self.reductions_uncapped = config.var_mode == "shield"
        if backend not in ("auto", "numba", "numpy"):
            raise ValueError(f"backend must be 'auto', 'numba' or 'numpy', got {backend!r}")
        if backend == "auto":
            backend = "numba" if _numba_available() else "numpy"
        self.backend = backend
        self.pair_kernel = bool(pair_kernel) and backend == "numba" and self.n_pairs == 1
        if backend == "numba":
            self._pack()

    # -- episodes ------------------------------------------------------------------------
    def start_bounds(self) -> tuple[int, int]:
        """Inclusive range of episode start bars (random starts draw from it in training)."""
        lo = self.data.first_step
        if self.config.episode_bars is None:
            return lo, lo
        hi = max(lo, self.data.last_step + 1 - self.config.episode_bars)
        return lo, hi

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

    # -- observation ---------------------------------------------------------------------
    def _exposure(self, state: BatchState, t: np.ndarray) -> np.ndarray:
        return state.units * self.data.close[t] * self.data.conv[t]

    def _var(self, exposure: np.ndarray, t: np.ndarray) -> np.ndarray:
        d = self.data
        return portfolio_var(exposure, d.var_long[t], d.var_short[t], None if d.corr is None else d.corr[t])

    def _pack(self) -> None:
        """Arrays in the layout of :mod:`envs.kernel` (built once)."""
        from envs import kernel as k

        d, cfg = self.data, self.config
        fields = [d.open, d.close, d.spread, d.liquidity, d.conv, d.sigma, d.var_long, d.var_short, d.signal]
        self._mkt = np.ascontiguousarray(np.stack(fields, axis=2), dtype=np.float64)
        self._corr = (np.ascontiguousarray(d.corr, dtype=np.float64) if d.corr is not None
                      else np.zeros((d.n_bars, d.n_pairs, d.n_pairs)))
        acct, ex = cfg.account, cfg.execution
        prm = np.zeros(k.N_PARAMS)
        prm[[k.P_LEVERAGE, k.P_MARGIN_RATE, k.P_STOP_OUT, k.P_MARGIN_CALL, k.P_PARTICIPATION, k.P_IMPACT,
             k.P_SLIP, k.P_SPREAD_MULT, k.P_COMMISSION_PM, k.P_MARKUP, k.P_VAR_LIMIT, k.P_VAR_PENALTY,
             k.P_RISK_AVERSION, k.P_DSR_ETA, k.P_REWARD_SCALE]] = [
            acct.max_leverage, acct.margin_rate, acct.stop_out_level, acct.margin_call_level, ex.max_participation,
            ex.impact_coefficient, ex.slippage_bps * 1e-4, ex.spread_multiplier, ex.commission_per_million,
            cfg.financing.markup, cfg.var_limit, cfg.var_penalty, cfg.risk_aversion, cfg.dsr_eta, cfg.reward_scale]
        self._prm = prm
        self._flags = np.array([cfg.action_mode == "sizing", ("shield", "penalty", "cost").index(cfg.var_mode),
                                ("log_return", "differential_sharpe", "risk_penalised").index(cfg.reward),
                                ("variance", "drawdown").index(cfg.risk_penalty), d.corr is not None,
                                cfg.size_unit == "var_budget"],
                               dtype=np.int64)
        windows = np.lib.stride_tricks.sliding_window_view(d.features, cfg.window, axis=0)
        table = np.zeros((d.n_bars, self.market_dim), dtype=np.float32)
        table[cfg.window - 1 :] = windows.transpose(0, 2, 1).reshape(len(windows), -1)
        self._table = table
        self._days = np.ascontiguousarray(d.days, dtype=np.float64)
        self._differential = np.ascontiguousarray(d.differential, dtype=np.float64)
        self._kernel = k
        if self.pair_kernel:
            from envs import single_pair

            sp = self._pair = single_pair
            self._pair_bars = sp.pack_bars(d)
            self._pair_prm = sp.pack_params(d, cfg)
            self._no_obs = np.empty((0, self.obs_dim), dtype=np.float32)
            # Info entries in the generic kernel's order: "t", then its scalar keys, then per pair.
            sources = {key: 1 + j for j, key in enumerate(sp.PAIR_FLOAT_KEYS)}
            sources.update({key: 1 + len(sp.PAIR_FLOAT_KEYS) + j for j, key in enumerate(sp.PAIR_PAIR_KEYS)})
            sources.update({key: 1 + len(sp.PAIR_FLOAT_KEYS) + len(sp.PAIR_PAIR_KEYS) + j
                            for j, key in enumerate(sp.PAIR_BOOL_KEYS)})
            order = ("t", *k.SCALAR_KEYS[3:], *k.PAIR_KEYS)
            self._pair_info = tuple((key, 0 if key == "t" else sources[key]) for key in order)

    def observe(self, state: BatchState) -> np.ndarray:
        """Observations (batch, obs_dim) float32 at each account's bar t (data <= t only)."""
        if self.pair_kernel:
            out = np.empty((len(state.t), self.obs_dim), dtype=np.float32)
            self._pair.pair_batch_observe(self._pair_bars, self._table, self._pair_prm, state.t, state.units,
                                            state.avg_price, state.peak, state.equity, state.last_scale, out)
            return out
        if self.backend == "numba":
            out = np.empty((len(state.t), self.obs_dim), dtype=np.float32)
            self._kernel.batch_observe(self._table, self._mkt, self._corr, self._prm, self._flags, state.t,
                                       state.units, state.avg_price, state.peak, state.equity, state.last_scale,
                                       self.market_dim, out)
            return out
        d, cfg = self.data, self.config
        t = state.t
        market = d.features[t[:, None] + self._offsets].reshape(len(t), -1)
        eq = state.equity
        exposure = self._exposure(state, t)
        max_notional = cfg.account.max_leverage * np.maximum(eq, 1e-12)
        parts = [market, np.clip(exposure / max_notional[:, None], -ACCOUNT_BOUND, ACCOUNT_BOUND)]
        if cfg.action_mode == "sizing":
            parts.append(d.signal[t])
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

    # -- step ----------------------------------------------------------------------------
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
        if self.pair_kernel:
            return self._step_pair(state, action, None, self._no_obs)
        if self.backend == "numba":
            return self._step_compiled(state, action)
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

    def step_observe(self, state: BatchState, action: np.ndarray, *, skip: np.ndarray | None = None,
                     bounds: tuple[float, float] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict] | None:
        """:meth:`step` then :meth:`observe` (one compiled pass with the one-pair kernel).

        Returns ``(obs, reward, terminated, truncated, info)``; every info array is fresh (not
        a view of the state). ``skip`` (bool, N): accounts left as they are (a vector env resets
        them instead): reward 0, flags False, info entries 0 except ``t`` and ``equity``, which
        hold their current values; their observation is of their current bar. ``bounds``
        ``(lo, hi)``: if an action of an account not skipped is outside it (or NaN), nothing is
        changed and ``None`` is returned (the caller raises, with its own message).
        """
        n = len(state.t)
        if self.pair_kernel:
            if not (type(action) is np.ndarray and action.dtype in (np.float32, np.float64)
                    and action.flags.c_contiguous):
                action = np.ascontiguousarray(action, dtype=np.float64)
            skip_arr = np.zeros(n, dtype=bool) if skip is None else np.ascontiguousarray(skip, dtype=bool)
            if bounds is not None and not self._pair.pair_actions_ok(action, skip_arr, float(bounds[0]),
                                                                       float(bounds[1])):
                return None
            obs = np.empty((n, self.obs_dim), dtype=np.float32)
            reward, terminated, truncated, info = self._step_pair(state, action, skip_arr, obs)
            return obs, reward, terminated, truncated, info
        action = np.asarray(action, dtype=np.float64)
        active = np.arange(n) if skip is None else np.flatnonzero(~np.asarray(skip, dtype=bool))
        if bounds is not None and active.size:
            part = action if skip is None else action[active]
            if not (part.min() >= bounds[0] and part.max() <= bounds[1]):  # NaN propagates: not ok
                return None
        if skip is None:
            reward, terminated, truncated, info = self.step(state, action)
            if self.backend == "numpy":
                info = {k: (v.copy() if k in _ALIASED_INFO else v) for k, v in info.items()}
        else:
            part_state = BatchState(**{f: getattr(state, f)[active] for f in _STATE_FIELDS})
            r, te, tr, part_info = self.step(part_state, action[active])
            for f in _STATE_FIELDS:
                getattr(state, f)[active] = getattr(part_state, f)
            reward, terminated, truncated = np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
            reward[active], terminated[active], truncated[active] = r, te, tr
            info = {}
            for key, value in part_info.items():
                full = np.zeros((n, *value.shape[1:]), dtype=value.dtype)
                full[active] = value
                info[key] = full
            rows = np.flatnonzero(skip)
            for key in RESET_INFO:
                info[key][rows] = getattr(state, key)[rows]
        return self.observe(state), reward, terminated, truncated, info

    def _step_pair(self, state: BatchState, action: np.ndarray, skip: np.ndarray | None, obs: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """The one-pair kernel: step, then observe into ``obs`` when it has rows, in one compiled call."""
        k = self._pair
        n = len(state.t)
        for name in ("t", "end"):
            arr = getattr(state, name)
            if not (arr.dtype == np.int64 and arr.flags.c_contiguous):
                setattr(state, name, np.ascontiguousarray(arr, dtype=np.int64))
        for name in ("cash", "units", "avg_price", "quote_cash", "peak", "equity", "dsr_a", "dsr_b", "last_scale"):
            arr = getattr(state, name)
            if not (arr.dtype == np.float64 and arr.flags.c_contiguous):
                setattr(state, name, np.ascontiguousarray(arr, dtype=np.float64))
        if skip is None:
            skip = np.zeros(n, dtype=bool)
        if not (type(action) is np.ndarray and action.dtype in (np.float32, np.float64) and action.flags.c_contiguous):
            action = np.ascontiguousarray(action, dtype=np.float64)
        # Fresh each step: the info arrays are their rows. Rows are padded by 64 bytes so that they
        # do not start 4 KiB apart (stores to such rows alias in the CPU's load/store queue: ~10%).
        out_f = np.empty((len(k.PAIR_FLOAT_KEYS), n + 8))[:, :n]
        out_p = np.empty((len(k.PAIR_PAIR_KEYS), n + 8, 1))[:, :n]
        out_b = np.empty((len(k.PAIR_BOOL_KEYS), n + 64), dtype=bool)[:, :n]
        k.pair_batch_step(self._pair_bars, self._table, self._pair_prm, state.t, state.end, state.cash, state.units,
                          state.avg_price, state.quote_cash, state.peak, state.equity, state.dsr_a, state.dsr_b,
                          state.last_scale, action, skip, out_f, out_p, out_b, obs)
        values = [state.t.copy(), *out_f, *out_p, *out_b]
        info = {key: values[j] for key, j in self._pair_info}
        return values[1], out_b[0], out_b[1], info

    def _step_compiled(self, state: BatchState, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        k = self._kernel
        n = len(state.t)
        for name in ("t", "end"):
            setattr(state, name, np.ascontiguousarray(getattr(state, name), dtype=np.int64))
        for name in ("cash", "units", "avg_price", "quote_cash", "peak", "equity", "dsr_a", "dsr_b", "last_scale"):
            setattr(state, name, np.ascontiguousarray(getattr(state, name), dtype=np.float64))
        out_s = np.empty((len(k.SCALAR_KEYS), n))  # one contiguous row per info entry
        out_p = np.empty((n, self.n_pairs, len(k.PAIR_KEYS)))
        k.batch_step(self._mkt, self._days, self._corr, self._differential, self._prm, self._flags, state.t,
                     state.end, state.cash, state.units, state.avg_price, state.quote_cash, state.peak, state.equity,
                     state.dsr_a,
                     state.dsr_b, state.last_scale, np.ascontiguousarray(action, dtype=np.float64), out_s, out_p)
        columns = out_s
        pairs = out_p.transpose(2, 0, 1).copy()
        info: dict = {"t": state.t.copy()}
        for j, key in enumerate(k.SCALAR_KEYS[3:], start=3):
            info[key] = columns[j]
        for key in ("var_breach", "clipped", "margin_call", "stopped_out"):
            info[key] = info[key] > 0.5
        for j, key in enumerate(k.PAIR_KEYS):
            info[key] = pairs[j]
        return columns[k.S_REWARD], columns[k.S_TERM] > 0.5, columns[k.S_TRUNC] > 0.5, info


_STATE_FIELDS = tuple(f.name for f in fields(BatchState))


def _numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba is a dependency; the numpy core is the fallback
        return False
    return True
