"""The observation's decision features: signal strength, volatility against its long-run level,
the position against the base rule's target and its band (issue: an observation that carries
the decision). Each is checked against a plain loop and against what the step then does."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.core import ACCOUNT_BOUND
from envs.data import long_run_vol_ratio, prepare_env_data, signal_strength
from envs.fx_env import FxRiskEnv, observation_names
from simulator.data.sample import load_sample

CFG = EnvConfig(vol_model="ewma", var_window=200, episode_bars=300)


@pytest.fixture(scope="module")
def data():
    return prepare_env_data(load_sample(), CFG)


def test_signal_strength_is_the_lookback_move_over_the_forecast_noise_by_a_loop() -> None:
    rng = np.random.default_rng(4)
    close = np.exp(np.cumsum(rng.normal(0, 0.01, size=(60, 2)), axis=0))
    sigma = rng.uniform(0.005, 0.02, size=(60, 2))
    sigma[30, 1] = np.nan
    got = signal_strength(close, sigma, 5)
    for t in range(60):
        for j in range(2):
            if t < 5 or not np.isfinite(sigma[t, j]):
                assert got[t, j] == 0.0
            else:
                want = (np.log(close[t, j]) - np.log(close[t - 5, j])) / (sigma[t, j] * np.sqrt(5))
                assert got[t, j] == pytest.approx(want, rel=1e-12)


def test_vol_ratio_is_log_sigma_over_its_mean_so_far_and_does_not_look_ahead() -> None:
    rng = np.random.default_rng(5)
    sigma = rng.uniform(0.005, 0.02, size=(40, 1))
    sigma[0, 0] = np.nan  # a forecast's warm-up
    got = long_run_vol_ratio(sigma)
    assert got[0, 0] == 0.0
    for t in range(1, 40):
        logs = np.log(sigma[1:t + 1, 0])
        assert got[t, 0] == pytest.approx(np.log(sigma[t, 0]) - logs.mean(), rel=1e-9, abs=1e-12)
    future = sigma.copy()
    future[25:] *= 3.0
    np.testing.assert_array_equal(long_run_vol_ratio(future)[:25], got[:25])


def _columns(env: FxRiskEnv) -> dict[str, int]:
    return {name: k for k, name in enumerate(observation_names(env.core))}


def test_in_residual_mode_the_base_rule_sits_on_its_target_and_in_its_band(data) -> None:
    # Arrange: action 0 is the base rule; a 30% band; the limit far away (cost mode: nothing clipped)
    config = dataclasses.replace(CFG, action_mode="residual", rebalance_band=0.3, var_mode="cost", var_limit=0.05)
    env = FxRiskEnv(data=data, config=config)
    cols = _columns(env)
    obs, _ = env.reset(seed=1)
    gaps, inside = [], []
    for _ in range(200):
        obs, _, terminated, truncated, _ = env.step(np.zeros(1, dtype=np.float32))
        gaps.append(obs[cols["EURUSD:target_gap"]])
        inside.append(obs[cols["EURUSD:in_band"]])
        if terminated or truncated:
            break
    gaps, inside = np.array(gaps), np.array(inside)
    # Assert: following the rule leaves the position near its target, mostly inside the band
    assert set(np.unique(inside)) <= {0.0, 1.0}
    assert inside.mean() > 0.5
    assert np.median(np.abs(gaps)) < 0.3


def test_a_flat_account_is_one_target_away_and_never_in_the_band(data) -> None:
    config = dataclasses.replace(CFG, action_mode="exposure", rebalance_band=0.3)
    env = FxRiskEnv(data=data, config=config)
    cols = _columns(env)
    obs, _ = env.reset(seed=2)
    core, t = env.core, env.account.t
    d, c = core.data, core.config
    signal = d.signal[t, 0]
    side = d.var_long[t, 0] if signal > 0 else d.var_short[t, 0]
    target = min(c.base_var_budget * c.var_limit / side / c.account.max_leverage, 1.0) * signal  # var_budget rule
    budget = min(c.var_limit / ((d.var_short[t, 0] if signal < 0 else d.var_long[t, 0]) * c.account.max_leverage),
                 1.0)
    assert obs[cols["EURUSD:exposure_fraction"]] == 0.0
    assert obs[cols["EURUSD:target_gap"]] == pytest.approx(-target / budget, rel=1e-5)
    assert obs[cols["EURUSD:in_band"]] == 0.0
    assert obs[cols["EURUSD:signal_strength"]] == pytest.approx(
        np.clip(d.signal_strength[t, 0], -ACCOUNT_BOUND, ACCOUNT_BOUND), rel=1e-5)
    assert obs[cols["EURUSD:vol_ratio"]] == pytest.approx(d.vol_ratio[t, 0], rel=1e-5, abs=1e-7)
