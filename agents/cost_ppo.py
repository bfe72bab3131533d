"""Constrained PPO with a cost critic: the constraint acts through the policy gradient.

Why a subclass of SB3's PPO rather than reward shaping: with ``r − λ·c`` folded into the reward
the critic must learn a value that moves with λ, and the cost is mixed into the same
normalised return as the reward. PPO-Lagrangian implementations (OmniSafe ``PPOLag`` /
``CPPOPID``, Stooke et al. 2020) instead keep a second critic for the cost, estimate the cost
advantage with GAE like the reward's, and let the policy maximise
``(A_r − λ·A_c) / (1 + λ)`` (:func:`agents.lagrangian.combined_advantage`). λ is updated once per
rollout from the rollout's episode cost (:class:`~agents.hyperparams.LagrangeConfig`).

How it sits in SB3 without copying its loops: the per-step cost (``info["cost"]``, raw — never
normalised) and the cost critic's value of the step's observation are taken in
``_update_info_buffer``, which SB3 calls after every env step and before the transition enters
the rollout buffer; a time-limit truncation bootstraps the cost with the critic, as SB3 does for
the reward. After the rollout the cost advantage is computed and the buffer's advantages are
replaced by the combined one (SB3's per-minibatch normalisation is off: the combination
standardises the reward part over the rollout). ``train`` runs SB3's update, then fits the cost
critic to the cost returns over the same epochs and minibatch size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from agents.hyperparams import LagrangeConfig
from agents.lagrangian import MultiplierState, combined_advantage, initial_state, pid_update, plain_update


def cost_critic(obs_dim: int, net_arch: tuple[int, ...]) -> nn.Sequential:
    """A tanh MLP from the (normalised) observation to the expected discounted cost, its own network."""
    layers: list[nn.Module] = []
    width = obs_dim
    for hidden in net_arch:
        layers += [nn.Linear(width, hidden), nn.Tanh()]
        width = hidden
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def gae(rewards: np.ndarray, values: np.ndarray, episode_starts: np.ndarray, last_values: np.ndarray,
        last_dones: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """Generalised advantage estimates over a ``(n_steps, n_envs)`` rollout (SB3's convention:
    ``episode_starts[t]`` marks that step t begins an episode, ``last_dones`` the state after it)."""
    n_steps = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    last = np.zeros(rewards.shape[1])
    for t in reversed(range(n_steps)):
        if t == n_steps - 1:
            not_done, next_values = 1.0 - last_dones.astype(np.float64), last_values
        else:
            not_done, next_values = 1.0 - episode_starts[t + 1], values[t + 1]
        delta = rewards[t] + gamma * next_values * not_done - values[t]
        last = delta + gamma * lam * not_done * last
        advantages[t] = last
    return advantages


class CostPPO(PPO):
    """SB3 PPO plus a cost critic and a Lagrange multiplier (plain or PID) on the cost advantage.

    ``constraint``: the :class:`LagrangeConfig`; ``episode_bars``: training episode length in
    bars (turns the rollout's cost per step into an episode cost). State that moves (λ and the
    PID's terms, the critic and its optimizer) is in :attr:`multiplier_state`, :attr:`cost_net`
    and :attr:`cost_optimizer`, for checkpoints.
    """

    def __init__(self, policy: Any, env: VecEnv, *, constraint: LagrangeConfig, episode_bars: int,
                 **kwargs: Any) -> None:
        self.constraint = constraint
        self.episode_bars = int(episode_bars)
        self.multiplier_state: MultiplierState = initial_state(constraint.initial_multiplier)
        self.last_constraint_stats: dict[str, float] = {}
        self.constraint_history: list[dict[str, float]] = []
        self._costs: list[np.ndarray] = []
        self._cost_values: list[np.ndarray] = []
        self._cost_returns: np.ndarray | None = None
        self._raw_cost_sum, self._raw_cost_n = 0.0, 0
        super().__init__(policy, env, normalize_advantage=False, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        obs_dim = int(np.prod(self.observation_space.shape))
        net_arch = tuple(self.policy_kwargs.get("net_arch", {}).get("vf", (64, 64)))
        self.cost_net = cost_critic(obs_dim, net_arch).to(self.device)
        self.cost_optimizer = torch.optim.Adam(self.cost_net.parameters(), lr=self.lr_schedule(1.0))

    @property
    def multiplier(self) -> float:
        return self.multiplier_state.multiplier

    def _cost_value(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.cost_net(torch.as_tensor(obs, dtype=torch.float32, device=self.device)).squeeze(-1).cpu().numpy()

    # -- rollout -----------------------------------------------------------------------------
    def _update_info_buffer(self, infos: list[dict[str, Any]], dones: np.ndarray | None = None) -> None:
        super()._update_info_buffer(infos, dones)
        if dones is None:  # SB3 calls it so only at the end of an episode-less learn(); nothing to record
            return
        cost = np.fromiter((float(i.get("cost", 0.0)) for i in infos), dtype=np.float64, count=len(infos))
        self._raw_cost_sum += float(cost.sum())
        self._raw_cost_n += cost.size
        for idx, done in enumerate(dones):
            info = infos[idx]
            if done and info.get("terminal_observation") is not None and info.get("TimeLimit.truncated", False):
                cost[idx] += self.gamma * float(self._cost_value(info["terminal_observation"][None])[0])
        self._costs.append(cost)
        self._cost_values.append(self._cost_value(self._last_obs).astype(np.float64))

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer,
                         n_rollout_steps: int) -> bool:
        self._costs, self._cost_values = [], []
        self._raw_cost_sum, self._raw_cost_n = 0.0, 0
        if not super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps):
            return False
        self._update_multiplier()
        costs, values = np.stack(self._costs), np.stack(self._cost_values)
        last_values = self._cost_value(self._last_obs).astype(np.float64)
        adv_cost = gae(costs, values, rollout_buffer.episode_starts, last_values, np.asarray(self._last_episode_starts),
                       self.gamma, self.gae_lambda)
        self._cost_returns = adv_cost + values
        c = self.constraint
        rollout_buffer.advantages = combined_advantage(
            rollout_buffer.advantages, adv_cost, self.multiplier, sum_norm=c.sum_norm,
            diff_norm=c.diff_norm).astype(np.float32)
        return True

    def _update_multiplier(self) -> None:
        """λ from this rollout's episode cost (mean cost per step × episode length), logged under constraint/."""
        c = self.constraint
        cost_per_step = self._raw_cost_sum / self._raw_cost_n if self._raw_cost_n else 0.0
        episode_cost = cost_per_step * self.episode_bars
        if c.method == "pid":
            self.multiplier_state = pid_update(self.multiplier_state, episode_cost, cost_limit=c.cost_limit,
                                               pid=c.pid, max_multiplier=c.max_multiplier, diff_norm=c.diff_norm)
        else:
            self.multiplier_state = plain_update(self.multiplier_state, episode_cost, cost_limit=c.cost_limit,
                                                 lr=c.multiplier_lr, max_multiplier=c.max_multiplier)
        stats = {"timesteps": int(self.num_timesteps), "episode_cost": episode_cost, "cost_per_step": cost_per_step,
                 "multiplier": self.multiplier}
        self.constraint_history.append(stats)
        self.logger.record("constraint/lambda", self.multiplier)
        self.logger.record("constraint/episode_cost", episode_cost)
        self.logger.record("constraint/cost_per_step", cost_per_step)
        self.logger.record("constraint/cost_limit", c.cost_limit)
        self.logger.record("constraint/over_limit", float(episode_cost > c.cost_limit))

    # -- update ------------------------------------------------------------------------------
    def train(self) -> None:
        super().train()
        self._train_cost_critic()

    def _train_cost_critic(self) -> None:
        """Fit the cost critic to this rollout's cost returns: ``n_epochs`` passes, ``batch_size`` minibatches."""
        if self._cost_returns is None:
            return
        obs = self.rollout_buffer.observations.reshape(-1, int(np.prod(self.observation_space.shape)))
        targets = self._cost_returns.reshape(-1)
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        targets_t = torch.as_tensor(targets, dtype=torch.float32, device=self.device)
        losses = []
        for _ in range(self.n_epochs):
            order = np.random.permutation(len(targets))
            for start in range(0, len(targets), self.batch_size):
                idx = torch.as_tensor(order[start:start + self.batch_size], device=self.device)
                loss = nn.functional.mse_loss(self.cost_net(obs_t[idx]).squeeze(-1), targets_t[idx])
                self.cost_optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.cost_net.parameters(), self.max_grad_norm)
                self.cost_optimizer.step()
                losses.append(loss.item())
        self.logger.record("constraint/cost_value_loss", float(np.mean(losses)))
        self._cost_returns = None

    # -- state for checkpoints ---------------------------------------------------------------
    def constraint_state(self) -> dict[str, Any]:
        """Tensors of the cost critic and its optimizer (``torch.save``-able, loaded weights-only)."""
        return {"cost_net": self.cost_net.state_dict(), "cost_optimizer": self.cost_optimizer.state_dict()}

    def load_constraint_state(self, state: dict[str, Any]) -> None:
        self.cost_net.load_state_dict(state["cost_net"], strict=True)
        self.cost_optimizer.load_state_dict(state["cost_optimizer"])


__all__ = ["CostPPO", "cost_critic", "gae"]
