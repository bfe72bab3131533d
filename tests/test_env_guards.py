"""The env refuses what it cannot do: no step before reset, after the episode ended, or past the data.

Through every path: the single env's compiled step, the batched step, the numpy oracle and the vector
environments.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from envs.config import EnvConfig
from envs.core import BatchState, FxRiskCore
from envs.data import prepare_env_data
from envs.fx_env import FxRiskEnv
from envs.sb3 import FxRiskSB3VecEnv
from envs.step import C_CASH
from envs.vector import FxRiskVectorEnv
from simulator.common.errors import FxRiskError, InvalidCallError
from simulator.synthetic.generator import default_config, generate_market
from tests.oracle_core import NumpyCore


@pytest.fixture(scope="module")
def data():
    out = {}
    for symbols in (("EURUSD",), ("EURUSD", "USDJPY")):
        market = generate_market(default_config(symbols), 1000, rng=np.random.default_rng(0)).market
        out[len(symbols)] = prepare_env_data(market, EnvConfig(vol_model="ewma", var_window=100))
    return out


CONFIG = EnvConfig(vol_model="ewma", var_window=100)


def refused(call) -> Exception:
    with pytest.raises(InvalidCallError) as err:
        call()
    assert isinstance(err.value, gym.error.ResetNeeded) and isinstance(err.value, FxRiskError)
    assert "\n" not in str(err.value) and "reset()" in str(err.value)
    return err.value


@pytest.mark.parametrize("pairs", [1, 2])
def test_single_env_step_before_reset_and_after_the_end_is_refused(data, pairs) -> None:
    env = FxRiskEnv(data=data[pairs], config=CONFIG)
    action = np.zeros(pairs, dtype=np.float32)
    refused(lambda: env.step(action))
    env.reset(seed=0, options={"start": env.data.last_step})
    *_, terminated, truncated, _ = env.step(action)
    assert truncated and not terminated
    refused(lambda: env.step(action))  # after truncated
    obs, _ = env.reset(seed=0)  # reset makes it usable again
    assert np.isfinite(obs).all()
    # After terminated (a wiped-out account stops out).
    env.account.ctx[C_CASH] = -1e12
    *_, terminated, truncated, _ = env.step(action)
    assert terminated
    refused(lambda: env.step(action))


@pytest.mark.parametrize("kind,pairs", [("compiled", 1), ("oracle", 1), ("compiled", 2), ("oracle", 2)])
def test_every_core_refuses_a_step_past_the_data_and_changes_nothing(data, kind, pairs) -> None:
    d = data[pairs]
    core = FxRiskCore(d, CONFIG) if kind == "compiled" else NumpyCore(d, CONFIG)
    state = BatchState.empty(3, pairs)
    action = np.zeros((3, pairs))
    refused(lambda: core.step(state, action))  # never reset: t = end = 0
    core.reset_accounts(state, np.arange(3), np.array([d.first_step, d.last_step, d.first_step]))
    core.step(state, action)  # account 1 reaches the end of the data
    assert state.t[1] == d.last_step + 1 == state.end[1]
    before = {k: getattr(state, k).copy() for k in ("t", "cash", "units", "equity")}
    refused(lambda: core.step(state, action))
    if kind == "compiled":
        refused(lambda: core.step_observe(state, action))
    for k, v in before.items():  # the refused step changed no account
        np.testing.assert_array_equal(getattr(state, k), v)
    # A corrupted state (an episode end beyond the data) is refused too, never read.
    state.end[1] = d.n_bars + 5
    refused(lambda: core.step(state, action))


def test_the_compiled_single_step_checks_its_bounds_itself(data) -> None:
    env = FxRiskEnv(data=data[1], config=CONFIG)
    env.reset(seed=0, options={"start": env.data.last_step})
    env.account.step(np.zeros(1))
    with pytest.raises(InvalidCallError):
        env.account.step(np.zeros(1))  # the kernel, below the env's flag


@pytest.mark.parametrize("pairs", [1, 2])
def test_vector_envs_never_step_a_done_account_past_the_data(data, pairs) -> None:
    d = data[pairs]
    cfg = EnvConfig(vol_model="ewma", var_window=100, episode_bars=None)
    vec = FxRiskVectorEnv(4, data=d, config=cfg)
    refused(lambda: vec.step(np.zeros((4, pairs))))
    vec.reset(seed=0, options={"start": [d.last_step - k for k in range(4)]})
    for _ in range(12):  # well past the end: done accounts are reset (NEXT_STEP), never stepped
        obs, reward, *_ = vec.step(np.full((4, pairs), 0.5))
        assert np.isfinite(obs).all() and np.isfinite(reward).all()
        assert (vec.state.t <= d.last_step + 1).all()
    sb3 = FxRiskSB3VecEnv(4, data=d, config=cfg)
    with pytest.raises(InvalidCallError):
        sb3.step(np.zeros((4, pairs), dtype=np.float32))
    sb3.set_options({"start": d.last_step})
    sb3.reset()
    for _ in range(5):  # same-step autoreset
        obs, reward, *_ = sb3.step(np.full((4, pairs), 0.5, dtype=np.float32))
        assert np.isfinite(obs).all() and np.isfinite(reward).all() and (sb3.vector_env.state.t <= d.last_step).all()


def test_a_bad_action_is_our_error_and_gymnasiums_invalid_action() -> None:
    import gymnasium as gym
    import numpy as np

    from envs.config import EnvConfig
    from envs.errors import InvalidActionError
    from envs.fx_env import FxRiskEnv
    from simulator.common.errors import FxRiskError
    from simulator.data.sample import load_sample

    env = FxRiskEnv(load_sample(), EnvConfig(vol_model="ewma", var_window=200))
    env.reset(seed=0)
    for bad in (np.array([np.nan], np.float32), np.array([3.0], np.float32), np.zeros(2, np.float32)):
        with pytest.raises(InvalidActionError) as err:
            env.step(bad)
        assert isinstance(err.value, (FxRiskError, ValueError, gym.error.InvalidAction)) and "\n" not in str(err.value)
