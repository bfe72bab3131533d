"""Lagrange multiplier updates of constrained PPO: plain projected ascent and the PID Lagrangian.

Why two: the plain update (Ray et al. 2019, PPO-Lagrangian) is an integral controller on the
constraint violation — λ keeps rising while the cost is over its limit and only comes down
after the cost has been under it for as long, so the cost overshoots and oscillates. The PID
Lagrangian (Stooke, Achiam & Abbeel 2020, "Responsive Safety in Reinforcement Learning by PID
Lagrangian Methods", Algorithm 2) adds a proportional term (λ reacts to the violation now) and a
derivative term on the rising cost (λ reacts before the violation), which damps the overshoot.
Defaults follow OmniSafe's ``CPPOPID`` configuration.

Both are pure functions of a frozen state and one measurement per update: ``episode_cost``, the
cost of one episode (``info["cost"]`` — VaR utilisation above 1 — summed over an episode's bars)
against ``cost_limit`` in the same unit. The multiplier then weighs the cost advantage in the
policy loss (:func:`combined_advantage`, used by :class:`agents.cost_ppo.CostPPO`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from simulator.common.configuration import check_finite

LAGRANGE_METHODS = ("plain", "pid")


@dataclass(frozen=True, kw_only=True)
class PIDConfig:
    """Gains and filters of the PID Lagrangian (OmniSafe ``CPPOPID`` defaults).

    Gains are λ per unit of episode cost above the limit (``kp``, ``ki`` per update; ``kd`` per
    unit of cost rise over ``d_delay`` updates). ``delta_p_ema_alpha`` / ``delta_d_ema_alpha``:
    weight of the old value in the exponential moving averages of the error (P term) and of the
    cost (D term); 0 = no smoothing.
    """

    kp: float = 0.1
    """Proportional gain, λ per unit of (smoothed) episode cost above the limit."""
    ki: float = 0.01
    """Integral gain, λ added per update per unit of episode cost above the limit."""
    kd: float = 0.01
    """Derivative gain, λ per unit of rise of the smoothed episode cost over d_delay updates."""
    d_delay: int = 10
    """Updates between the two smoothed costs whose difference is the derivative."""
    delta_p_ema_alpha: float = 0.95
    """EMA weight of the previous smoothed error in the P term, in [0, 1)."""
    delta_d_ema_alpha: float = 0.95
    """EMA weight of the previous smoothed cost in the D term, in [0, 1)."""

    def __post_init__(self) -> None:
        check_finite(self, "lagrange.pid.")
        for name in ("kp", "ki", "kd"):
            if getattr(self, name) < 0:
                raise ValueError(f"lagrange.pid.{name} must be >= 0 (a PID gain), got {getattr(self, name)}")
        if self.d_delay < 1:
            raise ValueError(f"lagrange.pid.d_delay must be >= 1 update, got {self.d_delay}")
        for name in ("delta_p_ema_alpha", "delta_d_ema_alpha"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"lagrange.pid.{name} must be in [0, 1), got {getattr(self, name)}")


@dataclass(frozen=True, kw_only=True)
class MultiplierState:
    """What a multiplier update carries to the next: λ and (PID) the integral and the filters."""

    multiplier: float
    """λ used in the policy loss (>= 0)."""
    integral: float = 0.0
    """PID: the integral term, kept >= 0 (anti-windup)."""
    error_ema: float = 0.0
    """PID: smoothed (episode cost − limit), the P term's input."""
    cost_ema: float = 0.0
    """PID: smoothed episode cost, the D term's input."""
    cost_ema_history: tuple[float, ...] = (0.0,)
    """PID: the last d_delay smoothed costs, oldest first (starts at one 0)."""

    def to_dict(self) -> dict[str, float | list[float]]:
        return {"multiplier": self.multiplier, "integral": self.integral, "error_ema": self.error_ema,
                "cost_ema": self.cost_ema, "cost_ema_history": list(self.cost_ema_history)}

    @classmethod
    def from_dict(cls, data: dict) -> MultiplierState:
        return cls(multiplier=float(data["multiplier"]), integral=float(data["integral"]),
                   error_ema=float(data["error_ema"]), cost_ema=float(data["cost_ema"]),
                   cost_ema_history=tuple(float(v) for v in data["cost_ema_history"]))


def initial_state(initial_multiplier: float) -> MultiplierState:
    """λ before any update; the PID's integral starts there, so its first output is near it."""
    return MultiplierState(multiplier=float(initial_multiplier), integral=float(initial_multiplier))


def plain_update(state: MultiplierState, episode_cost: float, *, cost_limit: float, lr: float,
                 max_multiplier: float) -> MultiplierState:
    """Projected gradient ascent: ``λ ← clip(λ + lr · (episode_cost − cost_limit), 0, max_multiplier)``."""
    value = state.multiplier + lr * (episode_cost - cost_limit)
    return replace(state, multiplier=float(min(max(value, 0.0), max_multiplier)))


def pid_update(state: MultiplierState, episode_cost: float, *, cost_limit: float, pid: PIDConfig,
               max_multiplier: float, diff_norm: bool = False) -> MultiplierState:
    """One PID Lagrangian step (Stooke et al. 2020, Algorithm 2, with OmniSafe's filters).

    With ``e = episode_cost − cost_limit``:
    ``I ← max(0, I + ki·e)``; ``P ← α_p·P + (1 − α_p)·e``; ``C ← α_d·C + (1 − α_d)·episode_cost``;
    ``D = max(0, C − C_{d_delay updates ago})`` (0 before that many updates);
    ``λ = clip(kp·P + I + kd·D, 0, max_multiplier)``. ``diff_norm`` keeps I and λ in [0, 1]
    (the advantage is then ``(1 − λ)·A_r − λ·A_c``).
    """
    error = float(episode_cost - cost_limit)
    integral = max(0.0, state.integral + pid.ki * error)
    if diff_norm:
        integral = min(integral, 1.0)
    a_p, a_d = pid.delta_p_ema_alpha, pid.delta_d_ema_alpha
    error_ema = a_p * state.error_ema + (1.0 - a_p) * error
    cost_ema = a_d * state.cost_ema + (1.0 - a_d) * float(episode_cost)
    derivative = max(0.0, cost_ema - state.cost_ema_history[0])
    output = pid.kp * error_ema + integral + pid.kd * derivative
    multiplier = min(max(output, 0.0), 1.0 if diff_norm else max_multiplier)
    history = (*state.cost_ema_history, cost_ema)[-pid.d_delay:]
    return MultiplierState(multiplier=float(multiplier), integral=float(integral), error_ema=float(error_ema),
                           cost_ema=float(cost_ema), cost_ema_history=tuple(float(v) for v in history))


def combined_advantage(adv_reward: np.ndarray, adv_cost: np.ndarray, multiplier: float, *, sum_norm: bool = True,
                       diff_norm: bool = False) -> np.ndarray:
    """The advantage the policy maximises: the reward advantage minus λ × the cost advantage.

    As PPO-Lagrangian implementations do (OmniSafe ``PPOLag`` / ``CPPOPID``): the reward
    advantage is standardised over the rollout, the cost advantage only centred (its scale is
    what λ prices); ``sum_norm`` divides by ``1 + λ`` so the step size does not grow with λ,
    ``diff_norm`` uses ``(1 − λ)·A_r − λ·A_c`` with λ in [0, 1]; neither: ``A_r − λ·A_c``.
    """
    a_r = (adv_reward - adv_reward.mean()) / (adv_reward.std() + 1e-8)
    a_c = adv_cost - adv_cost.mean()
    lam = float(multiplier)
    if diff_norm:
        return (1.0 - lam) * a_r - lam * a_c
    combined = a_r - lam * a_c
    return combined / (1.0 + lam) if sum_norm else combined


__all__ = ["LAGRANGE_METHODS", "MultiplierState", "PIDConfig", "combined_advantage", "initial_state",
           "plain_update", "pid_update"]
