"""Constrained PPO by Lagrangian relaxation of the VaR-breach cost.

Why a reward wrapper plus a multiplier update (PPO-Lagrangian as in Ray et al. 2019,
"Benchmarking Safe Exploration", with the cost folded into the reward rather than a second
critic): the policy maximises ``E[r − λ·c]`` while λ performs projected gradient ascent on
``E[c] − budget`` once per rollout, so λ rises while the mean VaR-breach cost
(``info["cost"]``: utilisation above 1) exceeds its budget and falls back otherwise.
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from agents.hyperparams import LagrangeConfig


def update_multiplier(multiplier: float, mean_cost: float, config: LagrangeConfig) -> float:
    """One projected ascent step: ``clip(λ + lr × (mean_cost − budget), 0, max)``."""
    value = multiplier + config.multiplier_lr * (mean_cost - config.cost_budget)
    return float(min(max(value, 0.0), config.max_multiplier))


class LagrangianCostWrapper(VecEnvWrapper):
    """Subtracts ``λ × info["cost"]`` from each reward and keeps the rollout's cost statistics.

    Sits under ``VecNormalize`` so the shaped reward is the one normalised. ``infos`` keep the
    raw reward's parts: ``cost`` (from the env) and ``lagrangian_penalty`` (λ·cost).
    """

    def __init__(self, venv: VecEnv, config: LagrangeConfig) -> None:
        super().__init__(venv)
        self.config = config
        self.multiplier = float(config.initial_multiplier)
        self._cost_sum = 0.0
        self._cost_n = 0

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        cost = np.fromiter((info.get("cost", 0.0) for info in infos), dtype=np.float64, count=len(infos))
        self._cost_sum += float(cost.sum())
        self._cost_n += cost.size
        penalty = self.multiplier * cost
        if self.multiplier:
            for info, p in zip(infos, penalty.tolist(), strict=True):
                info["lagrangian_penalty"] = p
        return obs, (rewards - penalty).astype(np.float32), dones, infos

    def end_rollout(self) -> tuple[float, float]:
        """Update λ from the mean cost per step since the last call; returns ``(mean_cost, λ)``."""
        mean_cost = self._cost_sum / self._cost_n if self._cost_n else 0.0
        self.multiplier = update_multiplier(self.multiplier, mean_cost, self.config)
        self._cost_sum, self._cost_n = 0.0, 0
        return mean_cost, self.multiplier
