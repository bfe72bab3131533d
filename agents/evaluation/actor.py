"""A trained PPO actor's deterministic action, computed so that a row gets the same numbers in any batch.

Why: the stress grid steps every account of a policy together and should ask an agent once per
bar for all of them. Through torch, a batched forward pass sums its matrix products in another
order than a one-row pass (BLAS picks other kernels), so each account's action would move in its
last float32 bits (~1e-7) with the batch it sits in, and the grid would no longer equal the
per-policy loop. Here every layer is ``b_j + sum_k x_k W_jk`` summed in ``k`` order, per row, in
float64 (then rounded to float32, as SB3 returns actions): what a row gets does not depend on the
other rows, so a batch of accounts gets what each gets alone, in the grid, the loop, validation
and evaluation alike (tests/test_actor.py). It is SB3's own computation (observation as float32,
the MLP's layers and activations, the Gaussian's mean, clipped to the action space) within
float32 rounding of ``model.predict(obs, deterministic=True)``.

Only SB3's plain ``ActorCriticPolicy`` (PPO's ``MlpPolicy``: flattened Box observation, linear
layers with tanh or ReLU, a diagonal Gaussian, no squashing) is read; anything else (a recurrent
policy, another extractor or distribution) gives ``None`` and is asked through SB3 instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.common.compiled import jit

IDENTITY, TANH, RELU = 0, 1, 2


def dense_python(x: np.ndarray, weight_t: np.ndarray, bias: np.ndarray, activation: int) -> np.ndarray:
    """``activation(x @ weight_t + bias)`` with each output's sum taken over ``k`` in order, row by row.

    ``x``: (rows, in), ``weight_t``: (in, out), ``bias``: (out,); all float64.
    """
    rows, n_in = x.shape
    n_out = bias.shape[0]
    out = np.empty((rows, n_out))
    acc = np.empty(n_out)
    for r in range(rows):
        for j in range(n_out):
            acc[j] = 0.0
        for k in range(n_in):
            xk = x[r, k]
            for j in range(n_out):  # each acc[j] is its own sum: the inner loop may run in SIMD lanes
                acc[j] += xk * weight_t[k, j]
        for j in range(n_out):
            v = acc[j] + bias[j]
            if activation == TANH:
                v = math.tanh(v)
            elif activation == RELU:
                v = v if v > 0.0 else 0.0
            out[r, j] = v
    return out


dense = jit(cache=True, nogil=True)(dense_python)


@dataclass(frozen=True, eq=False)
class MlpActor:
    """The actor path of a PPO MLP policy: its layers (transposed weights, bias, activation code) and
    the action space's bounds. A snapshot: weights are copied when it is built."""

    layers: tuple[tuple[np.ndarray, np.ndarray, int], ...]
    low: np.ndarray
    high: np.ndarray
    obs_dim: int
    action_shape: tuple[int, ...]

    @classmethod
    def from_model(cls, model: Any) -> MlpActor | None:
        """The actor of an SB3 model whose policy is a plain ``ActorCriticPolicy``; else ``None``."""
        from gymnasium import spaces
        from stable_baselines3.common.distributions import DiagGaussianDistribution
        from stable_baselines3.common.policies import ActorCriticPolicy
        from stable_baselines3.common.torch_layers import FlattenExtractor
        from torch import nn

        policy = getattr(model, "policy", None)
        if type(policy) is not ActorCriticPolicy:  # exactly: a recurrent subclass keeps state
            return None
        obs_space, act_space = policy.observation_space, policy.action_space
        if not (isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1 and isinstance(act_space, spaces.Box)
                and isinstance(policy.features_extractor, FlattenExtractor)
                and isinstance(policy.action_dist, DiagGaussianDistribution) and not policy.squash_output
                and isinstance(policy.action_net, nn.Linear)):
            return None
        activations = {nn.Tanh: TANH, nn.ReLU: RELU}
        layers: list[tuple[np.ndarray, np.ndarray, int]] = []
        for module in policy.mlp_extractor.policy_net:
            if isinstance(module, nn.Linear):
                layers.append(_linear(module))
            elif type(module) in activations and layers and layers[-1][2] == IDENTITY:
                w, b, _ = layers[-1]
                layers[-1] = (w, b, activations[type(module)])
            else:
                return None  # another layer kind, or two activations in a row
        layers.append(_linear(policy.action_net))
        return cls(layers=tuple(layers), low=np.asarray(act_space.low, dtype=np.float32),
                   high=np.asarray(act_space.high, dtype=np.float32), obs_dim=int(obs_space.shape[0]),
                   action_shape=tuple(int(s) for s in act_space.shape))

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """Actions (rows, *action_shape), float32, for observations (rows, obs_dim); one observation
        (obs_dim,) gives one action (action_shape), as SB3's ``predict`` does."""
        obs = np.asarray(observation)
        single = obs.ndim == 1
        x = obs.reshape(1, -1) if single else obs.reshape(obs.shape[0], -1)
        if x.shape[1] != self.obs_dim:
            raise ValueError(f"observation has {x.shape[1]} entries per row, the actor reads {self.obs_dim}")
        # SB3 hands the network float32 (preprocess_obs: .float()); its arithmetic here is float64
        h = np.ascontiguousarray(x.astype(np.float32).astype(np.float64))
        for weight_t, bias, activation in self.layers:
            h = dense(h, weight_t, bias, activation)
        actions = np.clip(h.astype(np.float32).reshape(-1, *self.action_shape), self.low, self.high)
        return actions[0] if single else actions


def _linear(module: Any) -> tuple[np.ndarray, np.ndarray, int]:
    weight = module.weight.detach().cpu().numpy().astype(np.float64)
    bias = module.bias.detach().cpu().numpy().astype(np.float64) if module.bias is not None \
        else np.zeros(weight.shape[0])
    return np.ascontiguousarray(weight.T), np.ascontiguousarray(bias), IDENTITY
