"""Constrained PPO: the plain and PID multiplier updates, the combined advantage, the cost GAE, the config,
and a tiny PID run on the bundled sample (constraint/ scalars, seed-reproducible)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml

from agents.cost_ppo import gae
from agents.hyperparams import HYPERPARAMS_DIR, LagrangeConfig, TrainConfig
from agents.lagrangian import (MultiplierState, PIDConfig, combined_advantage, initial_state, pid_update,
                               plain_update)
from agents.training import Trainer, load_market, split_data
from simulator.common.errors import ConfigError
from simulator.common.run_folder import RunFolder
from tests.conftest import load_script


# -- the PID Lagrangian, by hand ---------------------------------------------------------------
def test_pid_update_matches_a_hand_computed_sequence() -> None:
    # limit 10, kp 0.5, ki 0.1, kd 0.2, derivative over 2 updates, both EMAs at 0.5 (old weight).
    pid = PIDConfig(kp=0.5, ki=0.1, kd=0.2, d_delay=2, delta_p_ema_alpha=0.5, delta_d_ema_alpha=0.5)
    state = initial_state(0.0)
    expected = [
        # cost, integral I, smoothed error P, smoothed cost C, derivative D, λ = kp·P + I + kd·D
        (20.0, 1.0, 5.0, 10.0, 10.0, 0.5 * 5.0 + 1.0 + 0.2 * 10.0),        # D against the initial 0
        (30.0, 3.0, 12.5, 20.0, 20.0, 0.5 * 12.5 + 3.0 + 0.2 * 20.0),      # still against 0 (2 updates ago)
        (10.0, 3.0, 6.25, 15.0, 5.0, 0.5 * 6.25 + 3.0 + 0.2 * 5.0),        # 15 − C two updates ago (10)
        (0.0, 2.0, -1.875, 7.5, 0.0, 0.5 * -1.875 + 2.0),                  # falling cost: D clamped at 0
        (0.0, 1.0, -5.9375, 3.75, 0.0, 0.0),                               # kp·P + I < 0: λ clamped at 0
        (0.0, 0.0, -7.96875, 1.875, 0.0, 0.0),
        (0.0, 0.0, -8.984375, 0.9375, 0.0, 0.0),                           # I stays at 0 (anti-windup)
    ]
    for cost, integral, error_ema, cost_ema, _derivative, multiplier in expected:
        state = pid_update(state, cost, cost_limit=10.0, pid=pid, max_multiplier=100.0)
        assert state.integral == pytest.approx(integral)
        assert state.error_ema == pytest.approx(error_ema)
        assert state.cost_ema == pytest.approx(cost_ema)
        assert state.multiplier == pytest.approx(multiplier)
        assert len(state.cost_ema_history) <= pid.d_delay
    assert state.multiplier == 0.0 and state.integral == 0.0


def test_pid_starts_from_the_initial_multiplier_and_respects_the_bounds() -> None:
    pid = PIDConfig(kp=0.0, ki=1.0, kd=0.0, delta_p_ema_alpha=0.0, delta_d_ema_alpha=0.0)
    state = initial_state(0.25)
    assert state.multiplier == 0.25 and state.integral == 0.25
    at_limit = pid_update(state, 5.0, cost_limit=5.0, pid=pid, max_multiplier=100.0)
    assert at_limit.multiplier == pytest.approx(0.25)  # no error, no change
    capped = pid_update(state, 1e6, cost_limit=5.0, pid=pid, max_multiplier=3.0)
    assert capped.multiplier == 3.0
    unit = pid_update(state, 1e6, cost_limit=5.0, pid=pid, max_multiplier=100.0, diff_norm=True)
    assert unit.multiplier == 1.0 and unit.integral == 1.0  # diff_norm keeps λ and I in [0, 1]


def test_plain_update_is_projected_ascent_on_the_episode_cost() -> None:
    state = initial_state(0.0)
    steps = []
    for cost in (15.0, 25.0, 0.0, 0.0, 0.0, 200.0):
        state = plain_update(state, cost, cost_limit=5.0, lr=0.1, max_multiplier=4.0)
        steps.append(state.multiplier)
    assert steps == pytest.approx([1.0, 3.0, 2.5, 2.0, 1.5, 4.0])


@pytest.mark.parametrize("method", ["plain", "pid"])
def test_multiplier_rises_over_the_limit_and_falls_to_zero_under_it(method) -> None:
    cfg = LagrangeConfig(enabled=True, method=method, cost_limit=5.0)

    def update(state: MultiplierState, cost: float) -> MultiplierState:
        if method == "pid":
            return pid_update(state, cost, cost_limit=cfg.cost_limit, pid=cfg.pid, max_multiplier=cfg.max_multiplier)
        return plain_update(state, cost, cost_limit=cfg.cost_limit, lr=cfg.multiplier_lr,
                            max_multiplier=cfg.max_multiplier)

    state = initial_state(cfg.initial_multiplier)
    rising = []
    for _ in range(30):
        state = update(state, 20.0)  # episode cost 4x the limit
        rising.append(state.multiplier)
    assert all(b > a for a, b in zip(rising, rising[1:]))
    assert rising[-1] > 1.0
    for _ in range(400):
        state = update(state, 0.0)
    assert state.multiplier == 0.0


def test_multiplier_state_round_trips_through_json_values() -> None:
    state = pid_update(initial_state(0.1), 12.0, cost_limit=5.0, pid=PIDConfig(), max_multiplier=100.0)
    assert MultiplierState.from_dict(yaml.safe_load(yaml.safe_dump(state.to_dict()))) == state


# -- the advantage the policy maximises ---------------------------------------------------------
def test_combined_advantage_standardises_reward_centres_cost_and_divides_by_one_plus_lambda() -> None:
    rng = np.random.default_rng(0)
    adv_r, adv_c = rng.normal(3.0, 2.0, 500), rng.normal(1.0, 0.5, 500)
    a_r = (adv_r - adv_r.mean()) / (adv_r.std() + 1e-8)
    np.testing.assert_allclose(combined_advantage(adv_r, adv_c, 0.0), a_r)
    np.testing.assert_allclose(combined_advantage(adv_r, adv_c, 3.0), (a_r - 3.0 * (adv_c - adv_c.mean())) / 4.0)
    np.testing.assert_allclose(combined_advantage(adv_r, adv_c, 3.0, sum_norm=False), a_r - 3.0 * (adv_c - adv_c.mean()))
    np.testing.assert_allclose(combined_advantage(adv_r, adv_c, 0.25, diff_norm=True),
                               0.75 * a_r - 0.25 * (adv_c - adv_c.mean()))
    # An action with more cost than average is worth less the larger λ is.
    worse = np.argmax(adv_c)
    assert combined_advantage(adv_r, adv_c, 10.0)[worse] < combined_advantage(adv_r, adv_c, 0.1)[worse]


def test_cost_gae_matches_sb3_rollout_buffer() -> None:
    from gymnasium import spaces
    from stable_baselines3.common.buffers import RolloutBuffer

    rng = np.random.default_rng(1)
    n_steps, n_envs = 17, 3
    rewards, values = rng.exponential(1.0, (n_steps, n_envs)), rng.normal(size=(n_steps, n_envs))
    starts = (rng.uniform(size=(n_steps, n_envs)) < 0.15).astype(np.float32)
    last_values, last_dones = rng.normal(size=n_envs), rng.uniform(size=n_envs) < 0.5
    buffer = RolloutBuffer(n_steps, spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), device="cpu",
                           gae_lambda=0.9, gamma=0.97, n_envs=n_envs)
    for t in range(n_steps):
        buffer.add(np.zeros((n_envs, 2)), np.zeros((n_envs, 1)), rewards[t], starts[t],
                   torch.as_tensor(values[t]), torch.zeros(n_envs))
    buffer.compute_returns_and_advantage(torch.as_tensor(last_values), last_dones)
    ours = gae(rewards, values, starts, last_values, last_dones, 0.97, 0.9)
    np.testing.assert_allclose(ours, buffer.advantages, rtol=1e-5, atol=1e-5)


# -- the config: one line naming the key ----------------------------------------------------------
@pytest.mark.parametrize(("section", "key"), [
    ("lagrange:\n  enabled: true\n  pid:\n    kp: -0.1\n", "lagrange.pid.kp"),
    ("lagrange:\n  enabled: true\n  pid:\n    kd: -1\n", "lagrange.pid.kd"),
    ("lagrange:\n  enabled: true\n  cost_limit: 0\n", "lagrange.cost_limit"),
    ("lagrange:\n  enabled: true\n  cost_limit: -5\n", "lagrange.cost_limit"),
    ("lagrange:\n  enabled: true\n  method: pd\n", "lagrange.method"),
    ("lagrange:\n  enabled: true\n  pid:\n    kpp: 0.1\n", "lagrange.pid.kpp"),
    ("lagrange:\n  cost_budget: 0.01\n", "lagrange.cost_budget"),
])
def test_bad_lagrange_settings_are_one_line_naming_the_key(tmp_path, capsys, section, key) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("env:\n  var_mode: cost\n" + section)
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_yaml(bad)
    assert key in str(info.value) and len(str(info.value).splitlines()) == 1
    rc = load_script("train").main(["--config", str(bad), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and key in err and "bad.yaml" in err


def test_lagrangian_flag_needs_a_constrained_config(tmp_path, capsys) -> None:
    rc = load_script("train").main(["--config", str(HYPERPARAMS_DIR / "ppo_default.yaml"), "--lagrangian", "pid",
                                    "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--lagrangian" in err and "lagrange.enabled" in err


def test_constraint_report_refuses_an_unconstrained_run(tmp_path, capsys) -> None:
    (tmp_path / "config.yaml").write_text("seed: 0\nlagrange:\n  cost_limit: 5\n")
    (tmp_path / "metrics.yaml").write_text("validation: []\n")
    assert load_script("constraint_report").main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a finished constrained PPO run" in err


@pytest.mark.parametrize("name", ["ppo_constrained.yaml", "ppo_ecb_constrained.yaml"])
def test_shipped_constrained_configs_use_pid_with_a_cost_limit_per_episode(name) -> None:
    cfg = TrainConfig.from_yaml(HYPERPARAMS_DIR / name)
    assert cfg.lagrange.enabled and cfg.lagrange.method == "pid" and cfg.lagrange.cost_limit > 0
    assert cfg.env.var_mode == "cost" and cfg.env.size_unit == "leverage"


# -- a tiny PID run on the bundled sample ---------------------------------------------------------
@pytest.fixture(scope="module")
def sample_pid():
    base = TrainConfig.from_yaml(HYPERPARAMS_DIR / "ppo_constrained.yaml")
    cfg = replace(base, n_envs=8, total_timesteps=4096, eval_every=2048, checkpoint_every=4096,
                  env=replace(base.env, episode_bars=256), lagrange=replace(base.lagrange, cost_limit=0.5),
                  ppo=replace(base.ppo, n_steps=128, batch_size=256, n_epochs=2))
    return cfg, split_data(load_market(cfg.data), cfg.env, cfg.data)


def _run(tmp_path, name, cfg, data):
    with RunFolder(tmp_path, name, config=cfg.to_dict()) as folder:
        trainer = Trainer(cfg, folder, progress=False, log=lambda *_: None, data=data)
        metrics = trainer.run()
    weights = {k: v.detach().numpy().copy() for k, v in trainer.model.policy.state_dict().items()}
    critic = {k: v.detach().numpy().copy() for k, v in trainer.model.cost_net.state_dict().items()}
    return folder.path, metrics, weights, critic


def test_tiny_pid_run_on_the_sample_logs_constraint_scalars_and_is_seed_reproducible(tmp_path, capsys,
                                                                                     sample_pid) -> None:
    from tests.test_training import scalars

    cfg, data = sample_pid
    path_a, metrics_a, weights_a, critic_a = _run(tmp_path, "a", cfg, data)
    path_b, metrics_b, weights_b, critic_b = _run(tmp_path, "b", cfg, data)

    logged = scalars(path_a)
    for key in ("constraint/lambda", "constraint/episode_cost", "constraint/cost_limit", "constraint/cost_value_loss"):
        assert key in logged, key
    assert {v for _, v in logged["constraint/cost_limit"]} == {cfg.lagrange.cost_limit}
    history = metrics_a["lagrange_history"]
    assert len(history) == cfg.total_timesteps // (cfg.n_envs * cfg.ppo.n_steps)
    assert all(h["multiplier"] >= 0 and np.isfinite(h["episode_cost"]) for h in history)
    # The untrained policy samples sizes over the whole range, so the tight limit binds and λ rises.
    assert history[0]["episode_cost"] > cfg.lagrange.cost_limit and history[-1]["multiplier"] > history[0]["multiplier"]
    assert all("episode_cost" in v for v in metrics_a["validation"])

    # The summary script reads it back (finished folder: metrics.yaml and config.yaml).
    assert load_script("constraint_report").main([str(path_a)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3 and "| pid | 0 |" in table[2]

    assert metrics_a["lagrange_history"] == metrics_b["lagrange_history"]
    assert metrics_a["validation"] == metrics_b["validation"]
    for mine, other in ((weights_a, weights_b), (critic_a, critic_b)):
        assert mine.keys() == other.keys()
        for key in mine:
            np.testing.assert_array_equal(mine[key], other[key], err_msg=key)
