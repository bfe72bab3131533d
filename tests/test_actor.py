"""A trained MLP actor's deterministic action: a row's action is the same in any batch (so the stress
grid asks an agent once per bar for all its accounts), and it is SB3's own action to float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.evaluation.actor import IDENTITY, RELU, TANH, MlpActor, dense, dense_python
from agents.evaluation.rollout import ObservationNormaliser, SeedEnsemble, TrainedPolicy, run_grid, run_policy
from envs.config import EnvConfig
from envs.data import prepare_env_data
from simulator.synthetic.generator import default_config, generate_market

CFG = EnvConfig(vol_model="ewma", var_window=200, var_mode="penalty")


def ppo(observation_dim: int = 40, actions: int = 2, *, activation: type = torch.nn.Tanh, seed: int = 0):
    """A seeded PPO whose action head is scaled up, so its actions spread over [-1, 1] and beyond (clipped)."""
    from gymnasium import spaces
    from stable_baselines3 import PPO

    torch.manual_seed(seed)
    obs_space = spaces.Box(-10.0, 10.0, shape=(observation_dim,), dtype=np.float32)
    act_space = spaces.Box(-1.0, 1.0, shape=(actions,), dtype=np.float32)
    model = PPO("MlpPolicy", None, _init_setup_model=False, device="cpu",
                policy_kwargs=dict(net_arch=dict(pi=[32, 16], vf=[8]), activation_fn=activation))
    model.observation_space, model.action_space, model.n_envs = obs_space, act_space, 1
    model._setup_model()
    with torch.no_grad():
        model.policy.action_net.weight.mul_(300.0)
    return model


def test_a_rows_action_is_the_same_in_any_batch_bit_for_bit() -> None:
    # Arrange: 200 observations, one actor
    actor = MlpActor.from_model(ppo())
    obs = np.random.default_rng(0).normal(0, 2, (200, 40)).astype(np.float32)
    # Act: all at once, one by one, and in a shuffled batch of other rows
    together = actor(obs)
    alone = np.stack([actor(obs[i]) for i in range(len(obs))])
    order = np.random.default_rng(1).permutation(len(obs))
    shuffled = actor(obs[order])
    # Assert
    assert together.dtype == np.float32 and together.shape == (200, 2)
    assert np.array_equal(together, alone)
    assert np.array_equal(shuffled, together[order])
    changed = obs.copy()
    changed[1:] += 1.0  # other rows change: row 0's action does not move
    assert np.array_equal(actor(changed)[0], together[0])


@pytest.mark.parametrize("activation", [torch.nn.Tanh, torch.nn.ReLU], ids=["tanh", "relu"])
def test_the_actor_gives_sb3s_deterministic_action_to_float32_rounding(activation: type) -> None:
    model = ppo(activation=activation, seed=3)
    actor = MlpActor.from_model(model)
    obs = np.random.default_rng(2).normal(0, 2, (300, 40)).astype(np.float32)
    theirs, _ = model.predict(obs, deterministic=True)
    mine = actor(obs)
    assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
    assert np.abs(mine - theirs).max() < 1e-5
    assert (np.abs(mine) == 1.0).any() and (np.abs(mine) < 0.9).any()  # clipped and interior actions both occur


def test_the_compiled_layer_is_the_python_layer() -> None:
    rng = np.random.default_rng(4)
    x, w, b = rng.normal(size=(7, 13)), rng.normal(size=(13, 5)), rng.normal(size=5)
    for code in (IDENTITY, TANH, RELU):
        assert np.array_equal(dense(x, w, b, code), dense_python(x, w, b, code))
    assert np.allclose(dense_python(x, w, b, IDENTITY), x @ w + b, rtol=1e-12, atol=1e-12)


def test_policies_the_actor_cannot_read_are_asked_through_sb3() -> None:
    from sb3_contrib import RecurrentPPO

    recurrent = RecurrentPPO("MlpLstmPolicy", "Pendulum-v1", n_steps=16, device="cpu", seed=0)
    assert MlpActor.from_model(recurrent) is None
    wrapped = TrainedPolicy(recurrent)
    assert not wrapped.batch_invariant
    assert not SeedEnsemble([wrapped, TrainedPolicy(ppo(3, 1))]).batch_invariant
    # a stochastic action is SB3's sample, not the mean
    plain = TrainedPolicy(ppo())
    assert plain.batch_invariant and SeedEnsemble([plain, TrainedPolicy(ppo(seed=1))]).batch_invariant
    obs = np.zeros((4, 40), dtype=np.float32)
    torch.manual_seed(0)
    sampled, _ = plain.predict(obs, deterministic=False)
    assert not np.array_equal(sampled, plain.predict(obs)[0])


class CountingPolicy(TrainedPolicy):
    calls = 0

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        CountingPolicy.calls += 1
        return super().predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)


def test_the_grid_asks_a_batch_invariant_agent_once_per_bar_and_each_market_gets_its_run_alone() -> None:
    # Arrange: one market, three spans of it; an agent with a normaliser that acts on every bar
    import gymnasium as gym
    from stable_baselines3 import PPO

    market = generate_market(default_config(("EURUSD", "USDJPY")), 900, rng=np.random.default_rng(5)).market
    data = prepare_env_data(market, CFG)
    parts = [data.restrict(300, 900), data.restrict(350, 900), data.restrict(300, 700)]
    env = gym.make("FxRisk-v0", config=CFG, data=parts[0])
    torch.manual_seed(1)
    model = PPO("MlpPolicy", env, seed=1, device="cpu")
    with torch.no_grad():
        model.policy.action_net.weight.mul_(100.0)
    dim = env.observation_space.shape[0]
    rng = np.random.default_rng(6)
    normaliser = ObservationNormaliser(rng.normal(0, 0.1, dim), rng.uniform(0.5, 2, dim), 5.0, 1e-8)
    CountingPolicy.calls = 0
    # Act
    grid = run_grid([CountingPolicy(model, normaliser)], parts, CFG, labels=["ppo"])
    calls = CountingPolicy.calls
    alone = [run_policy(TrainedPolicy(model, normaliser), p, CFG, label="ppo") for p in parts]
    # Assert: one call per bar of the longest span, and every market's records are its run alone
    steps = max(len(row[0].records) for row in grid)
    assert calls == steps
    for row, single in zip(grid, alone, strict=True):
        assert row[0].records.equals(single.records)
        assert (row[0].records["exposure_EURUSD"].abs() > 0).any()
