"""Configuration of the FX risk environment (frozen, validated; YAML through ``from_yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from simulator.broker.account import AccountConfig
from simulator.common.configuration import check_finite, from_mapping, load_yaml
from simulator.common.errors import ConfigError
from simulator.broker.execution import ExecutionConfig
from simulator.broker.financing import FinancingConfig
from simulator.data.frequency import Duration, check_duration, to_bars

ACTION_MODES = ("exposure", "sizing", "residual", "direction")
BASE_RULES = ("var_budget", "vol_target")
SIZE_UNITS = ("leverage", "var_budget")
VAR_MODES = ("shield", "penalty", "cost")
REWARDS = ("log_return", "differential_sharpe", "risk_penalised", "mean_variance")
RISK_PENALTIES = ("variance", "drawdown")
VOL_MODELS = ("ewma", "garch-t", "garch-normal", "gjr-t", "egarch-t")
DEPTH_MODELS = ("bis2022",)

DURATION_FIELDS: tuple[str, ...] = ("signal_lookback", "episode_bars", "var_window", "garch_window",
                                    "garch_refit_every", "garch_min_window", "ewma_halflife", "corr_halflife")
"""Settings that mean time: a number of bars, or a trading-time duration converted with the bar length."""
ESTIMATION_WINDOWS: tuple[str, ...] = ("var_window", "garch_window", "garch_min_window")
"""Sample sizes of estimators: converted durations never go below ``min_estimation_bars`` observations."""


@dataclass(frozen=True, kw_only=True)
class EnvConfig:
    """Everything that shapes observations, actions, the VaR limit and the reward.

    * ``window``: bars of market features in each observation;
    * ``episode_bars``: length of training episodes from a random start (``None``: the
      whole span from the first usable bar — evaluation);
    * ``action_mode``: ``exposure`` — target exposure per pair as a fraction of the maximum
      leverage, ``Box(-1, 1)``; ``sizing`` — the direction comes from a time-series momentum
      signal over ``signal_lookback`` bars and the agent picks the size in ``[0, 1]``;
    * ``size_unit`` (sizing mode): what size 1 means — ``leverage``: the maximum leverage;
      ``var_budget``: the position whose own one-bar VaR is the limit (each of P pairs gets
      1/P of it; capped at the maximum leverage), so the whole action range is usable
      under a VaR limit instead of mostly clipped by it;
    * ``vol_model``: which volatility forecast feeds the observation, impact and VaR;
    * VaR: one-bar filtered-historical-simulation VaR at ``var_alpha`` on that forecast;
      limit ``var_limit`` as a fraction of equity; ``var_mode`` ``shield`` (scale the
      requested position so its VaR <= limit), ``penalty`` (reward minus ``var_penalty`` ×
      excess utilisation) or ``cost`` (``info['cost']`` carries the excess, reward untouched);
    * reward: ``log_return`` of equity net of costs, ``differential_sharpe`` (Moody &
      Saffell, EMA rate ``dsr_eta``) or ``risk_penalised`` (log return minus
      ``risk_aversion`` × squared return or × drawdown increase), times ``reward_scale``.

    Settings that mean time (:data:`DURATION_FIELDS`) take a number of bars or a duration in
    trading time (``"1D"``, ``"6M"``, see :mod:`simulator.data.frequency`); the environment converts
    them with the market's bar length (:meth:`in_bars`), so the defaults cover the same
    calendar time on hourly and daily bars. Estimation windows never go below
    ``min_estimation_bars`` observations (a 99% quantile needs a few hundred).
    """

    window: int = 8
    """Bars of market features in each observation (a shape, so always bars)."""
    episode_bars: Duration | None = "4M"
    """Training episode length (bars or duration; 4M = 2,016 hourly or 84 daily bars); None: whole span."""
    action_mode: str = "exposure"
    """exposure (target exposure per pair), sizing (momentum direction, agent sizes), residual (a log-multiplier
    on base_rule's size along the signal; action 0 = the rule) or direction (sign and size in VaR budgets)."""
    base_rule: str = "var_budget"
    """Residual mode: the rule the action scales — var_budget (position at 1/P of the VaR limit) or vol_target."""
    size_range: float = 4.0
    """Residual mode: multiplier of the base rule in [1/size_range, size_range]; direction mode: largest size,
    in VaR budgets (4: up to four times the limit, so the shield and the constraint can bind)."""
    base_target_vol: float = 0.10
    """Vol-target base rule: annualised volatility of each pair's position (0.10 = 10%, the vol_target baseline's)."""
    base_max_leverage: float = 10.0
    """Vol-target base rule: leverage cap of each pair's position (the vol_target baseline's)."""
    base_var_budget: float = 0.8
    """VaR-budget base rule: the position's VaR as a fraction of the limit (the var_budget baseline's: 0.8 keeps
    headroom, so a 25% rise of the forecast does not breach, and under the shield it is not raw_signal clipped)."""
    signal_lookback: Duration = "1D"
    """Momentum lookback of the sizing signal (1D = 24 hourly bars, 1 daily bar)."""
    size_unit: str = "leverage"
    """What size 1 means in sizing mode: leverage (maximum leverage) or var_budget (position at the VaR limit)."""
    vol_model: str = "garch-t"
    """Volatility forecast feeding observation, impact and VaR: ewma, garch-t, garch-normal, gjr-t, egarch-t."""
    garch_window: Duration = "6M"
    """Rolling estimation window of the GARCH fits (6M = 3,024 hourly bars; daily: the estimation floor)."""
    garch_refit_every: Duration = "1M"
    """GARCH refit cadence (1M = 504 hourly or 21 daily bars); parameters filtered forward in between."""
    garch_min_window: Duration = "2M"
    """Bars before the first GARCH fit (2M = 1,008 hourly bars; daily: the estimation floor)."""
    ewma_halflife: Duration = "11D"
    """Half-life of the EWMA forecaster (RiskMetrics lambda 0.94 on daily data is an 11-day half-life)."""
    corr_halflife: Duration = "1W"
    """Half-life of the causal EWMA correlation between pairs (1W = 120 hourly or 5 daily bars)."""
    feature_halflives: tuple[Duration, ...] = ("12h", "2D")
    """Half-lives of the EWMA volatility features (12 and 48 hourly bars; 1 and 2 daily bars)."""
    min_estimation_bars: int = 250
    """Floor, in observations, of the estimation windows (var_window, garch_window, garch_min_window)."""
    var_alpha: float = 0.99
    """VaR confidence level."""
    var_window: Duration = "1M"
    """Filtered-historical-simulation window of standardised residuals (1M = 504 hourly bars; daily: 250)."""
    var_mode: str = "shield"
    """How the VaR limit acts: shield (scale the order down), penalty (reward term) or cost (info['cost'])."""
    var_limit: float = 0.01
    """VaR limit, fraction of equity (one bar at var_alpha): 0.01 = the position may lose 1% in a 1-in-100 bar."""
    var_penalty: float = 1.0
    """Penalty mode: reward minus var_penalty × (VaR utilisation − 1) when over the limit (reward units)."""
    reward: str = "log_return"
    """log_return (of equity, net of costs), differential_sharpe (Moody & Saffell), risk_penalised, or
    mean_variance (log return minus risk_aversion / 2 x the forecast variance of the position held)."""
    risk_penalty: str = "variance"
    """risk_penalised reward: variance (squared return) or drawdown (increase of the drawdown)."""
    risk_aversion: float = 1.0
    """Weight of the risk penalty: risk_penalised (per unit of squared return or drawdown), mean_variance (kappa)."""
    dsr_eta: float = 0.01
    """EMA rate of the differential Sharpe ratio, per bar."""
    reward_scale: float = 1.0
    """Multiplier of every reward (dimensionless)."""
    rebalance_band: float = 0.0
    """No-trade band, fraction of the target position: within it the position is held, not traded."""
    min_order: float = 0.0
    """Smallest order sent, notional as a fraction of equity (smaller ones are not sent)."""
    default_liquidity: float | str = field(default="bis2022", metadata={"allow_inf": True})
    """Depth (base-currency units per bar) for markets without a liquidity field: a number (inf:
    unlimited, no impact), or "bis2022" — BIS 2022 turnover by pair spread over the day
    (:mod:`simulator.data.depth`). Either way it is said in the environment data's notes."""
    account: AccountConfig = field(default_factory=AccountConfig)
    """Money and margin rules (currency, starting equity, leverage cap, stop-out)."""
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    """Costs and fills (commission, slippage, square-root impact, participation cap)."""
    financing: FinancingConfig = field(default_factory=FinancingConfig)
    """Interest rates by currency and the broker markup."""

    def __post_init__(self) -> None:
        check_finite(self, "")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        for name, value, allowed in (("action_mode", self.action_mode, ACTION_MODES),
                                     ("size_unit", self.size_unit, SIZE_UNITS),
                                     ("base_rule", self.base_rule, BASE_RULES),
                                     ("var_mode", self.var_mode, VAR_MODES), ("reward", self.reward, REWARDS),
                                     ("risk_penalty", self.risk_penalty, RISK_PENALTIES),
                                     ("vol_model", self.vol_model, VOL_MODELS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        for name in DURATION_FIELDS:
            value = getattr(self, name)
            if name == "episode_bars" and value is None:
                continue
            minimum = {"episode_bars": 2, "var_window": 50, "garch_window": 100, "garch_min_window": 100}.get(name, 1)
            try:
                check_duration(value, key=name, minimum_bars=minimum)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        if not self.feature_halflives:
            raise ValueError("feature_halflives: give at least one half-life")
        for i, value in enumerate(self.feature_halflives):
            try:
                check_duration(value, key=f"feature_halflives[{i}]")
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        if self.min_estimation_bars < 50:
            raise ValueError(f"min_estimation_bars must be >= 50, got {self.min_estimation_bars}")
        if not 0.5 < self.var_alpha < 1:
            raise ValueError(f"var_alpha must be in (0.5, 1), got {self.var_alpha}")
        if not 0 < self.var_limit <= 1:
            raise ValueError(f"var_limit must be in (0, 1] (fraction of equity), got {self.var_limit}")
        for name in ("var_penalty", "risk_aversion", "reward_scale"):
            if not 0 <= getattr(self, name) <= 1e6:
                raise ValueError(f"{name} must be in [0, 1e6], got {getattr(self, name)}")
        if not 1 < self.size_range <= 100:
            raise ValueError(f"size_range must be in (1, 100] (a multiple of the base size), got {self.size_range}")
        if not 0 < self.base_target_vol <= 10:
            raise ValueError(f"base_target_vol must be in (0, 10] (annualised volatility), got {self.base_target_vol}")
        if not 0 < self.base_var_budget <= 10:
            raise ValueError(f"base_var_budget must be in (0, 10] (a fraction of the VaR limit), got {self.base_var_budget}")
        if not 0 < self.base_max_leverage <= 1000:
            raise ValueError(f"base_max_leverage must be in (0, 1000], got {self.base_max_leverage}")
        if not 0 <= self.rebalance_band < 1:
            raise ValueError(f"rebalance_band must be in [0, 1) (a fraction of the target position), "
                             f"got {self.rebalance_band}")
        if not 0 <= self.min_order < 1:
            raise ValueError(f"min_order must be in [0, 1) (a fraction of equity), got {self.min_order}")
        if not 0 < self.dsr_eta < 1:
            raise ValueError(f"dsr_eta must be in (0, 1), got {self.dsr_eta}")
        if isinstance(self.default_liquidity, str):
            if self.default_liquidity not in DEPTH_MODELS:
                raise ValueError(f"default_liquidity must be a number > 0 or one of {DEPTH_MODELS}, "
                                 f"got {self.default_liquidity!r}")
        elif isinstance(self.default_liquidity, bool) or not isinstance(self.default_liquidity, (int, float)) \
                or not self.default_liquidity > 0:
            raise ValueError(f"default_liquidity must be a number > 0 or one of {DEPTH_MODELS}, "
                             f"got {self.default_liquidity!r}")

    def in_bars(self, hours_per_bar: float) -> EnvConfig:
        """This config with every duration converted to bars at ``hours_per_bar`` (ints stay as they are).

        Estimation windows given as durations are raised to ``min_estimation_bars``; the GARCH
        minimum window never exceeds its rolling window.
        """
        values = {}
        for name in DURATION_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            bars = to_bars(value, hours_per_bar, key=name, minimum=2 if name == "episode_bars" else 1)
            if name in ESTIMATION_WINDOWS and isinstance(value, str):
                bars = max(bars, self.min_estimation_bars)
            values[name] = bars
        if values["garch_min_window"] > values["garch_window"] and isinstance(self.garch_min_window, str):
            values["garch_min_window"] = values["garch_window"]
        halflives = [to_bars(h, hours_per_bar, key="feature_halflives") for h in self.feature_halflives]
        values["feature_halflives"] = tuple(dict.fromkeys(halflives))  # two that meet at one bar count once
        return replace(self, **values)

    def lookback_hours(self, hours_per_bar: float) -> dict[str, float]:
        """Trading hours each duration setting covers on bars of ``hours_per_bar`` (for notes and tests)."""
        resolved = self.in_bars(hours_per_bar)
        out = {name: getattr(resolved, name) * hours_per_bar for name in DURATION_FIELDS
               if getattr(resolved, name) is not None}
        for i, h in enumerate(resolved.feature_halflives):
            out[f"feature_halflives[{i}]"] = h * hours_per_bar
        return out

    @classmethod
    def from_yaml(cls, path: str | Path) -> EnvConfig:
        return from_mapping(cls, load_yaml(path), source=str(path))
