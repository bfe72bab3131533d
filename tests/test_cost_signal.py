"""``info["cost"]`` follows the safety-gymnasium convention (what its Gymnasium wrappers read).

safety-gymnasium's conversion wrappers take a plain Gymnasium env's per-step cost from
``info["cost"]``: a finite float >= 0 on every step, 0 when the constraint holds. Here it is the
VaR utilisation above 1 (the excess over the limit), in every VaR mode.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.fx_env import FxRiskEnv
from simulator.data.sample import load_sample


@pytest.fixture(scope="module")
def market():
    return load_sample()


def _safety_step(env, action):
    """What safety-gymnasium's Gymnasium → safety conversion does with a step: cost out of info."""
    obs, reward, terminated, truncated, info = env.step(action)
    return obs, reward, info["cost"], terminated, truncated, info


@pytest.mark.parametrize("mode", ["shield", "penalty", "cost"])
def test_every_step_reports_a_nonnegative_cost_equal_to_the_excess_utilisation(market, mode) -> None:
    env = FxRiskEnv(market, EnvConfig(vol_model="ewma", var_window=200, var_mode=mode, var_limit=0.002,
                                      episode_bars=300))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    costs = []
    for _ in range(300):
        _, _, cost, terminated, truncated, info = _safety_step(env, rng.uniform(-1, 1, 1).astype(np.float32))
        assert isinstance(cost, float) and np.isfinite(cost) and cost >= 0.0
        assert cost == pytest.approx(max(info["var_utilisation"] - 1.0, 0.0), abs=1e-9)
        costs.append(cost)
        if terminated or truncated:
            break
    if mode == "shield":
        assert max(costs) < 1e-9  # the shield keeps every executed position within the limit
    else:
        assert max(costs) > 0  # the tight limit binds when nothing enforces it


def test_cost_is_zero_within_the_limit(market) -> None:
    env = FxRiskEnv(market, EnvConfig(vol_model="ewma", var_window=200, var_mode="cost", var_limit=0.5,
                                      episode_bars=100))
    env.reset(seed=0)
    for _ in range(100):
        _, _, cost, terminated, truncated, _ = _safety_step(env, np.array([0.01], np.float32))
        assert cost == 0.0
        if terminated or truncated:
            break
