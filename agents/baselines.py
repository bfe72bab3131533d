"""Rule-based position-sizing baselines behind the stable-baselines3 ``predict`` interface.

Why: the question a PPO sizing agent must answer is "does it beat the textbook sizing rules,
on the same bars, trading the same signal?". Every directional baseline here takes its
direction from the env's momentum signal (``EnvData.signal``, in {-1, 0, 1}) and differs
only in *how much* it trades, so a comparison isolates the sizing skill.

A baseline is bound to an :class:`~agents.policies.AccountView` (the prepared arrays, the env
config and the live accounts) and reads row ``t = view.state.t`` of the raw arrays — the
volatility forecast, the VaR, prices — never a row after ``t``. The observation passed to
``predict`` is only used for its shape (its content is standardised and carries none of the
raw quantities). Arrays a rule needs over time (an ATR, an estimate of the signal's edge) are
computed once at :meth:`RuleBasedPolicy.bind`, causally (row t from rows <= t).

Units: a baseline's :meth:`~RuleBasedPolicy.target_fraction` is the signed target exposure
per pair as a fraction of the maximum notional ``config.account.max_leverage × equity``; a
*leverage* below is ``notional / equity`` (so fraction = leverage / max_leverage). Each pair
is sized on its own: when several pairs trade, gross notional may exceed the maximum, and the
simulator's leverage cap then scales all pairs down together, as it does for any agent.

* ``flat``: never trades;
* ``fixed_fraction``: constant leverage × signal;
* ``vol_target``: leverage = target annual vol / (σ_t × √bars_per_year), capped;
* ``var_budget``: one-bar VaR of the position = budget × var_limit × equity;
* ``fractional_kelly``: leverage = k × max(μ̂_t, 0) / σ_t², μ̂ a causal estimate of the edge, capped;
* ``atr_stop``: risk a fixed share of equity to a stop at m × ATR; stateful per account;
* ``raw_signal``: the signal at full size (fraction ±1).

Baselines act in the exposure twin of the agent's env (:func:`baseline_env`): the same costs,
band, VaR limit and mode, forecasts and reward, with exposure actions. A rule sizes a position;
the agent's action space (a size in VaR budgets, a multiplier on a base rule) would cap or
reshape that size, and under ``size_unit: var_budget`` it made ``raw_signal`` and ``var_budget``
the same policy on every bar.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from forecasters.features import average_true_range

from agents.policies import AccountView, fraction_to_action
from envs.config import EnvConfig
from envs.data import EnvData
from agents.evaluation.metrics import bars_per_year



# -- config validation ---------------------------------------------------------------------
def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _positive(name: str, value: Any) -> None:
    if not _number(name, value) > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _non_negative(name: str, value: Any) -> None:
    if not _number(name, value) >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class FlatConfig:
    """No parameters: the flat baseline never holds a position."""


@dataclass(frozen=True, kw_only=True)
class FixedFractionConfig:
    """``leverage``: constant notional / equity held in the signal's direction."""

    leverage: float = 3.0

    def __post_init__(self) -> None:
        _non_negative("leverage", self.leverage)


@dataclass(frozen=True, kw_only=True)
class VolTargetConfig:
    """``target_vol``: annualised volatility of each pair's position (0.10 = 10 %);
    ``max_leverage``: cap on notional / equity; ``bars_per_year``: annualisation (``None``:
    inferred from the median bar spacing × ``trading_days``)."""

    target_vol: float = 0.10
    max_leverage: float = 10.0
    bars_per_year: float | None = None
    trading_days: float = 260.0

    def __post_init__(self) -> None:
        _positive("target_vol", self.target_vol)
        _positive("max_leverage", self.max_leverage)
        _positive("trading_days", self.trading_days)
        if self.bars_per_year is not None:
            _positive("bars_per_year", self.bars_per_year)


@dataclass(frozen=True, kw_only=True)
class VarBudgetConfig:
    """``budget``: the position's one-bar VaR as a multiple of the env's limit (1.0: at the limit).

    0.8 by default: the headroom a desk keeps below a hard limit, so a 25% rise of the VaR
    forecast does not breach; at 1.0 under the shield this rule would be ``raw_signal`` clipped,
    the same position on every bar. The env's residual base rule uses the same value
    (``EnvConfig.base_var_budget``)."""

    budget: float = 0.8

    def __post_init__(self) -> None:
        _positive("budget", self.budget)


@dataclass(frozen=True, kw_only=True)
class KellyConfig:
    """``kelly_fraction``: share of the full Kelly leverage μ/σ²; ``halflife``: bars of the
    EWMA edge estimate (``None``: expanding mean); ``min_periods``: bars of edge history
    before any position; ``max_leverage``: cap on notional / equity."""

    kelly_fraction: float = 0.25
    halflife: float | None = 500.0
    min_periods: int = 100
    max_leverage: float = 10.0

    def __post_init__(self) -> None:
        _positive("kelly_fraction", self.kelly_fraction)
        if self.halflife is not None:
            _positive("halflife", self.halflife)
        _positive_int("min_periods", self.min_periods)
        _positive("max_leverage", self.max_leverage)


@dataclass(frozen=True, kw_only=True)
class AtrStopConfig:
    """``risk_per_trade``: equity fraction lost if the stop is hit (0.005 = 0.5 %);
    ``atr_multiple``: stop distance in ATRs from the entry price; ``atr_window``: ATR bars;
    ``max_leverage``: cap on notional / equity."""

    risk_per_trade: float = 0.005
    atr_multiple: float = 2.0
    atr_window: int = 14
    max_leverage: float = 10.0

    def __post_init__(self) -> None:
        _positive("risk_per_trade", self.risk_per_trade)
        if self.risk_per_trade >= 1:
            raise ValueError(f"risk_per_trade must be < 1 (a fraction of equity), got {self.risk_per_trade!r}")
        _positive("atr_multiple", self.atr_multiple)
        _positive_int("atr_window", self.atr_window)
        _positive("max_leverage", self.max_leverage)


@dataclass(frozen=True, kw_only=True)
class RawSignalConfig:
    """No parameters: the signal at the maximum leverage."""


def baseline_env(config: EnvConfig) -> EnvConfig:
    """The env a rule-based baseline acts in beside an agent trained in ``config``: the same
    config with exposure actions (target exposure per pair as a fraction of the maximum notional),
    so the rule's size is the size it asks for, under the agent's costs, band and VaR limit."""
    if config.action_mode == "exposure":
        return config
    return dataclasses.replace(config, action_mode="exposure")


# -- helpers ---------------------------------------------------------------------------------
def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den where den is finite and > 0, else 0 (no forecast → no position)."""
    ok = np.isfinite(den) & (den > 0) & np.isfinite(num)
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def infer_bars_per_year(index: np.ndarray, upto: int, trading_days: float = 260.0) -> float:
    """:func:`agents.evaluation.metrics.bars_per_year` of ``index[: upto + 1]`` (int64 ns).

    Why only up to ``upto``: a baseline reads no timestamp after the bars it has seen; the
    warm-up bars (<= the first decision bar) already fix the bar frequency.
    """
    value = bars_per_year(np.asarray(index[: max(int(upto), 1) + 1]), trading_days_per_year=trading_days)
    if not np.isfinite(value):
        raise ValueError("cannot infer the bar frequency from fewer than two distinct timestamps; "
                         "set bars_per_year explicitly")
    return value


def causal_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """``ta`` AverageTrueRange per pair (price units, (time, pair)); NaN in the warm-up.

    Causal: Wilder's smoothing runs forward, row t uses bars <= t.
    """
    out = np.full(close.shape, np.nan)
    if close.shape[0] < window:
        return out
    for j in range(close.shape[1]):
        out[:, j] = average_true_range(high[:, j], low[:, j], close[:, j], window)
    out[: window - 1] = np.nan  # ta leaves zeros before the first full window
    return out


def signal_edge(close: np.ndarray, signal: np.ndarray, halflife: float | None, min_periods: int) -> np.ndarray:
    """Causal estimate of the signal's per-bar log-return edge, (time, pair).

    Row t estimates the mean of ``signal[s-1] × log(close[s] / close[s-1])`` over s <= t (an
    EWMA with ``halflife`` bars, or the expanding mean when ``None``); NaN until
    ``min_periods`` terms were seen.
    """
    edge = np.full(close.shape, np.nan)
    edge[1:] = signal[:-1] * np.diff(np.log(close), axis=0)
    frame = pd.DataFrame(edge)
    if halflife is None:
        est = frame.expanding(min_periods=min_periods).mean()
    else:
        est = frame.ewm(halflife=halflife, min_periods=min_periods).mean()
    return est.to_numpy(np.float64)


# -- the interface ---------------------------------------------------------------------------
class RuleBasedPolicy(ABC):
    """A sizing rule answering SB3's ``predict(observation, state, episode_start, deterministic)``.

    Use: ``policy = make_baseline("vol_target").bind(AccountView(data, config, state))``, then
    ``actions, _ = policy.predict(obs)`` each bar. ``target_fraction(view)`` is the rule
    itself: signed target exposure per pair as a fraction of the maximum notional, (N, pair).
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    #: What :meth:`_prepare` sets: attribute name → ``"time"`` (an array over the data's bars, first
    #: axis) or ``"scalar"`` (a value that must agree across markets). :meth:`bind_stacked` needs it.
    prepared: ClassVar[dict[str, str]] = {}

    def __init__(self, config: Any = None) -> None:
        if config is None:
            config = self.config_class()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} takes a {self.config_class.__name__}, "
                            f"got {type(config).__name__}")
        self.config = config
        self._view: AccountView | None = None
        self._prepared_for: EnvData | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    # -- binding ------------------------------------------------------------------------------
    def bind(self, view: AccountView) -> RuleBasedPolicy:
        """Attach the accounts to act for; precompute causal arrays; reset per-account state."""
        if not isinstance(view, AccountView):
            raise TypeError(f"bind takes an AccountView, got {type(view).__name__}")
        self._view = view
        self._sync(view)
        self.reset(None)
        return self

    def bind_stacked(self, view: AccountView, parts: Sequence[EnvData]) -> RuleBasedPolicy:
        """Bind to accounts on several markets laid end to end (``view.data``: the ``parts`` stacked
        along time, :func:`agents.evaluation.rollout.stack_data`), each account on one part.

        Why: the stress grid steps every (scenario, seed) of a plan as accounts of one core. Each
        part's causal arrays are computed on that part alone (an ATR or an edge estimate must not
        run on from the market before it), then stacked, so row t of a part is what :meth:`bind`
        on that part alone gives. Raises ValueError when a scalar differs across the parts.
        """
        if not isinstance(view, AccountView):
            raise TypeError(f"bind_stacked takes an AccountView, got {type(view).__name__}")
        if type(self)._prepare is not RuleBasedPolicy._prepare and not self.prepared:
            raise TypeError(f"{type(self).__name__} prepares arrays but does not declare them in 'prepared'")
        values: dict[str, list[Any]] = {k: [] for k in self.prepared}
        for part in parts:
            self._prepare(AccountView(data=part, config=view.config, state=view.state))
            for k in self.prepared:
                values[k].append(getattr(self, k))
        for k, kind in self.prepared.items():
            if kind == "time":
                setattr(self, k, np.concatenate(values[k], axis=0))
            elif any(v != values[k][0] for v in values[k]):
                raise ValueError(f"baseline {self.name!r}: {k} differs across the stacked markets ({values[k]})")
        self._view = view
        self._prepared_for = view.data
        self.reset(None)
        return self

    @property
    def view(self) -> AccountView:
        if self._view is None:
            raise RuntimeError(f"baseline {self.name!r} is not bound: call "
                               f"policy.bind(AccountView(data, config, state)) before predict")
        return self._view

    def _sync(self, view: AccountView) -> None:
        """(Re)compute the data-derived arrays when ``view`` carries other data than last time."""
        if self._prepared_for is not view.data:
            self._prepare(view)
            self._prepared_for = view.data

    def _prepare(self, view: AccountView) -> None:
        """Precompute arrays over the whole data set, causally (row t from rows <= t)."""

    def reset(self, which: np.ndarray | None = None) -> None:
        """Forget per-account state for accounts ``which`` (``None``: all). No-op when stateless."""

    # -- the rule -------------------------------------------------------------------------------
    @abstractmethod
    def target_fraction(self, view: AccountView) -> np.ndarray:
        """Signed target exposure per pair, fraction of ``max_leverage × equity``, (N, pair)."""

    @staticmethod
    def _max_leverage(view: AccountView) -> float:
        return float(view.config.account.max_leverage)

    # -- SB3 interface --------------------------------------------------------------------------
    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """Actions for the bound accounts: float32 in [-1, 1], (N, pair) — (pair,) for an
        observation shaped (obs_dim,). The observation's content is ignored; ``state`` is
        returned unchanged; ``episode_start`` (N,) resets those accounts' rule state first."""
        view = self.view
        obs = np.asarray(observation)
        if obs.ndim not in (1, 2):
            raise ValueError(f"observation must be (obs_dim,) or (n_envs, obs_dim), got shape {obs.shape}")
        n_obs = 1 if obs.ndim == 1 else obs.shape[0]
        n_accounts = len(view.state.t)
        if n_obs != n_accounts:
            raise ValueError(f"observation is for {n_obs} account(s) but the bound view has {n_accounts}")
        if episode_start is not None:
            starts = np.asarray(episode_start, dtype=bool).reshape(-1)
            if starts.shape != (n_accounts,):
                raise ValueError(f"episode_start must have {n_accounts} flag(s), got shape {np.shape(episode_start)}")
            if starts.any():
                self.reset(np.flatnonzero(starts))
        fraction = np.asarray(self.target_fraction(view), dtype=np.float64)
        fraction = np.where(np.isfinite(fraction), fraction, 0.0)
        action = fraction_to_action(fraction, view)
        return (action[0] if obs.ndim == 1 else action), state


# -- the baselines ---------------------------------------------------------------------------
class Flat(RuleBasedPolicy):
    """Never trades: the zero-risk, zero-cost reference."""

    name = "flat"
    config_class = FlatConfig

    def target_fraction(self, view: AccountView) -> np.ndarray:
        return np.zeros((len(view.state.t), view.data.n_pairs))


class FixedFraction(RuleBasedPolicy):
    """Constant leverage ``config.leverage`` in the signal's direction, whatever the risk."""

    name = "fixed_fraction"
    config_class = FixedFractionConfig

    def target_fraction(self, view: AccountView) -> np.ndarray:
        signal = view.data.signal[view.state.t]
        return signal * (self.config.leverage / self._max_leverage(view))


class VolTarget(RuleBasedPolicy):
    """Each pair's position sized to an annual volatility ``target_vol`` from the env's
    one-bar forecast σ_t (``data.sigma``): leverage = target / (σ_t √bars_per_year), capped
    at ``max_leverage``. Per pair, ignoring correlation."""

    name = "vol_target"
    config_class = VolTargetConfig
    prepared = {"bars_per_year": "scalar"}

    def _prepare(self, view: AccountView) -> None:
        cfg = self.config
        self.bars_per_year = (float(cfg.bars_per_year) if cfg.bars_per_year is not None
                              else infer_bars_per_year(view.data.index, view.data.first_step, cfg.trading_days))

    def target_fraction(self, view: AccountView) -> np.ndarray:
        self._sync(view)
        d, t = view.data, view.state.t
        leverage = _safe_ratio(np.full(d.sigma[t].shape, self.config.target_vol),
                               d.sigma[t] * math.sqrt(self.bars_per_year))
        leverage = np.minimum(leverage, self.config.max_leverage)
        return d.signal[t] * leverage / self._max_leverage(view)


class VarBudget(RuleBasedPolicy):
    """Position sized so its one-bar VaR is ``budget × var_limit × equity``, with the env's
    own VaR fractions (``var_long`` for a long, ``var_short`` for a short).

    Several pairs: the budget is split equally across the pairs with a nonzero signal, each
    pair's VaR summed as if perfectly correlated — correlation is ignored here, while the env's
    shield aggregates the pairs with its correlation matrix (so the portfolio VaR is at most
    the budget, below it when the pairs diversify)."""

    name = "var_budget"
    config_class = VarBudgetConfig

    def target_fraction(self, view: AccountView) -> np.ndarray:
        d, t = view.data, view.state.t
        signal = d.signal[t]
        side_var = np.where(signal > 0, d.var_long[t], d.var_short[t])
        active = np.maximum((signal != 0).sum(axis=1, keepdims=True), 1)
        leverage = _safe_ratio(np.full(side_var.shape, self.config.budget * view.config.var_limit),
                               side_var * active)
        return signal * leverage / self._max_leverage(view)


class FractionalKelly(RuleBasedPolicy):
    """Leverage = ``kelly_fraction`` × μ̂_t / σ_t², μ̂_t the causal EWMA (or expanding mean) of
    the signal's realised per-bar edge, floored at 0 (no edge → no position), capped."""

    name = "fractional_kelly"
    config_class = KellyConfig
    prepared = {"edge": "time"}

    def _prepare(self, view: AccountView) -> None:
        d = view.data
        self.edge = signal_edge(d.close, d.signal, self.config.halflife, self.config.min_periods)

    def target_fraction(self, view: AccountView) -> np.ndarray:
        self._sync(view)
        d, t = view.data, view.state.t
        mu = np.maximum(np.nan_to_num(self.edge[t], nan=0.0), 0.0)
        leverage = _safe_ratio(self.config.kelly_fraction * mu, d.sigma[t] ** 2)
        leverage = np.minimum(leverage, self.config.max_leverage)
        return d.signal[t] * leverage / self._max_leverage(view)


class AtrStop(RuleBasedPolicy):
    """Risk ``risk_per_trade`` of equity per trade to a stop ``atr_multiple`` ATRs from entry.

    Per account and pair: when flat and the signal is nonzero, enter in its direction with
    leverage ``risk_per_trade / (atr_multiple × ATR_t / close_t)`` (capped; held for the whole
    trade), entry price ``close_t`` (the last price known at the decision) and a fixed stop
    ``entry ∓ atr_multiple × ATR_t``. A close through the stop exits and locks the pair flat
    until the signal leaves that direction; a signal change exits (and may enter the other way).

    State advances with ``t``: predict is meant once per bar (a repeated bar gives the same
    action); any other jump of an account's ``t`` is taken as a new episode and resets it.
    Needs ``EnvData.high`` / ``low``.
    """

    name = "atr_stop"
    config_class = AtrStopConfig
    prepared = {"atr": "time"}

    def _prepare(self, view: AccountView) -> None:
        d = view.data
        if d.high is None or d.low is None:
            raise ValueError("atr_stop needs bar highs and lows (EnvData.high / .low); "
                             "prepare the data with envs.data.prepare_env_data")
        self.atr = causal_atr(d.high, d.low, d.close, self.config.atr_window)

    def _allocate(self, n_accounts: int, n_pairs: int) -> None:
        self._direction = np.zeros((n_accounts, n_pairs))
        self._locked = np.zeros((n_accounts, n_pairs))
        self._entry = np.full((n_accounts, n_pairs), np.nan)
        self._stop = np.full((n_accounts, n_pairs), np.nan)
        self._leverage = np.zeros((n_accounts, n_pairs))
        self._last_t = np.full(n_accounts, -1, dtype=np.int64)

    def reset(self, which: np.ndarray | None = None) -> None:
        view = self.view
        n, p = len(view.state.t), view.data.n_pairs
        if which is None or getattr(self, "_direction", None) is None or self._direction.shape != (n, p):
            self._allocate(n, p)
            return
        self._direction[which] = 0.0
        self._locked[which] = 0.0
        self._entry[which] = np.nan
        self._stop[which] = np.nan
        self._leverage[which] = 0.0
        self._last_t[which] = -1

    @property
    def entry_price(self) -> np.ndarray:
        """Reference entry price of each open trade (N, pair); NaN where none was entered."""
        return self._entry.copy()

    @property
    def stop_price(self) -> np.ndarray:
        """Stop level of each trade (N, pair), price units."""
        return self._stop.copy()

    def target_fraction(self, view: AccountView) -> np.ndarray:
        self._sync(view)
        d, t = view.data, np.asarray(view.state.t)
        if self._direction.shape != (len(t), d.n_pairs):
            self._allocate(len(t), d.n_pairs)
        jumped = (self._last_t >= 0) & (t != self._last_t) & (t != self._last_t + 1)
        if jumped.any():
            self.reset(np.flatnonzero(jumped))
        cfg = self.config
        signal, close, atr = d.signal[t], d.close[t], self.atr[t]
        direction, locked = self._direction, self._locked

        # Exits: the signal left the trade's direction, or the close went through the stop.
        direction[(direction != 0) & (signal != direction)] = 0.0
        hit = ((direction > 0) & (close <= self._stop)) | ((direction < 0) & (close >= self._stop))
        locked[hit] = direction[hit]
        direction[hit] = 0.0
        for arr in (self._entry, self._stop):
            arr[direction == 0] = np.nan
        self._leverage[direction == 0] = 0.0
        # A stopped pair stays flat until the signal leaves the stopped direction.
        locked[(locked != 0) & (signal != locked)] = 0.0

        # Entries.
        distance = cfg.atr_multiple * atr
        leverage = np.minimum(_safe_ratio(np.full(close.shape, cfg.risk_per_trade), distance / close),
                              cfg.max_leverage)
        enter = (direction == 0) & (locked == 0) & (signal != 0) & np.isfinite(distance) & (distance > 0)
        direction[enter] = signal[enter]
        self._entry[enter] = close[enter]
        self._stop[enter] = close[enter] - signal[enter] * distance[enter]
        self._leverage[enter] = leverage[enter]
        self._last_t = t.astype(np.int64).copy()
        return direction * self._leverage / self._max_leverage(view)


class RawSignal(RuleBasedPolicy):
    """The signal at full size: fraction ±1 of the maximum notional (the riskiest sizing)."""

    name = "raw_signal"
    config_class = RawSignalConfig

    def target_fraction(self, view: AccountView) -> np.ndarray:
        return view.data.signal[view.state.t].astype(np.float64)


# -- registry --------------------------------------------------------------------------------
BASELINES: dict[str, type[RuleBasedPolicy]] = {
    cls.name: cls for cls in (Flat, FixedFraction, VolTarget, VarBudget, FractionalKelly, AtrStop, RawSignal)
}


def baseline_params(name: str) -> tuple[str, ...]:
    """Parameter names the baseline ``name`` accepts (its config dataclass's fields)."""
    return tuple(f.name for f in fields(_lookup(name).config_class))


def _lookup(name: str) -> type[RuleBasedPolicy]:
    try:
        return BASELINES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown baseline {name!r}; available: {', '.join(BASELINES)}") from None


def make_baseline(name: str, **params: Any) -> RuleBasedPolicy:
    """A baseline by registry name with its config's parameters (unbound: call ``bind``)."""
    cls = _lookup(name)
    allowed = baseline_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for baseline {name!r}; "
                         f"it accepts: {', '.join(allowed) if allowed else 'no parameters'}")
    return cls(cls.config_class(**params))
