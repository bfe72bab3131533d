"""Configuration of the FX risk environment (frozen, validated; YAML through ``from_yaml``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from simulator.account import AccountConfig
from simulator.configuration import check_finite, from_mapping, load_yaml
from simulator.execution import ExecutionConfig
from simulator.financing import FinancingConfig

ACTION_MODES = ("exposure", "sizing")
SIZE_UNITS = ("leverage", "var_budget")
VAR_MODES = ("shield", "penalty", "cost")
REWARDS = ("log_return", "differential_sharpe", "risk_penalised")
RISK_PENALTIES = ("variance", "drawdown")
VOL_MODELS = ("ewma", "garch-t", "garch-normal", "gjr-t", "egarch-t")


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
    """

    window: int = 8
    episode_bars: int | None = 2048
    action_mode: str = "exposure"
    signal_lookback: int = 24
    size_unit: str = "leverage"
    vol_model: str = "garch-t"
    var_alpha: float = 0.99
    var_window: int = 500
    var_mode: str = "shield"
    var_limit: float = 0.01
    var_penalty: float = 1.0
    reward: str = "log_return"
    risk_penalty: str = "variance"
    risk_aversion: float = 1.0
    dsr_eta: float = 0.01
    reward_scale: float = 1.0
    default_liquidity: float = field(default=math.inf, metadata={"allow_inf": True})  # inf: no depth limit
    account: AccountConfig = field(default_factory=AccountConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    financing: FinancingConfig = field(default_factory=FinancingConfig)

    def __post_init__(self) -> None:
        check_finite(self, "")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.episode_bars is not None and self.episode_bars < 2:
            raise ValueError(f"episode_bars must be >= 2 or None, got {self.episode_bars}")
        for name, value, allowed in (("action_mode", self.action_mode, ACTION_MODES),
                                     ("size_unit", self.size_unit, SIZE_UNITS),
                                     ("var_mode", self.var_mode, VAR_MODES), ("reward", self.reward, REWARDS),
                                     ("risk_penalty", self.risk_penalty, RISK_PENALTIES),
                                     ("vol_model", self.vol_model, VOL_MODELS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if self.signal_lookback < 1:
            raise ValueError(f"signal_lookback must be >= 1, got {self.signal_lookback}")
        if not 0.5 < self.var_alpha < 1:
            raise ValueError(f"var_alpha must be in (0.5, 1), got {self.var_alpha}")
        if self.var_window < 50:
            raise ValueError(f"var_window must be >= 50, got {self.var_window}")
        if not 0 < self.var_limit <= 1:
            raise ValueError(f"var_limit must be in (0, 1] (fraction of equity), got {self.var_limit}")
        for name in ("var_penalty", "risk_aversion", "reward_scale"):
            if not 0 <= getattr(self, name) <= 1e6:
                raise ValueError(f"{name} must be in [0, 1e6], got {getattr(self, name)}")
        if not 0 < self.dsr_eta < 1:
            raise ValueError(f"dsr_eta must be in (0, 1), got {self.dsr_eta}")
        if not self.default_liquidity > 0:
            raise ValueError(f"default_liquidity must be > 0, got {self.default_liquidity}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> EnvConfig:
        return from_mapping(cls, load_yaml(path), source=str(path))
