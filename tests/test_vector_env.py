"""The batched environment (gymnasium ``VectorEnv``) and the SB3 ``VecEnv`` adapter.

Oracle: N single ``FxRiskEnv`` stepped in a Python loop (and gymnasium's ``SyncVectorEnv`` /
SB3's ``DummyVecEnv`` over them) — the batched versions must match them exactly.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecMonitor, VecNormalize

import envs  # noqa: F401  (registers FxRisk-v0)
from envs.config import EnvConfig
from envs.data import prepare_env_data
from envs.fx_env import FxRiskEnv
from envs.sb3 import INFO_KEYS, FxRiskSB3VecEnv
from envs.vector import FxRiskVectorEnv
from simulator.broker.account import AccountConfig
from simulator.synthetic.generator import default_config, generate_market

CONFIG = EnvConfig(vol_model="ewma", episode_bars=64, var_window=200)
# Stop-outs come often: episodes end at different steps (terminated, not only truncated).
FRAGILE = dataclasses.replace(CONFIG, var_mode="cost",
                              account=AccountConfig(stop_out_level=0.97, margin_call_level=1.0))
EXACT = {"rtol": 0, "atol": 0}


@pytest.fixture(scope="module")
def data():
    market = generate_market(default_config(("EURUSD", "USDJPY"), correlation=[[1, 0.3], [0.3, 1]]), 2500,
                             rng=np.random.default_rng(0)).market
    return prepare_env_data(market, CONFIG)


def random_actions(n_steps: int, n_envs: int, n_pairs: int, config: EnvConfig, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low = 0.0 if config.action_mode == "sizing" else -1.0
    actions = rng.uniform(low, 1.0, (n_steps, n_envs, n_pairs))
    # Some steps at the bounds, where the shield and the leverage cap bite.
    actions[::7] = np.sign(actions[::7]) if low < 0 else 1.0
    return actions


def single_rollout(config, data, seed, actions):
    """N single envs with gymnasium's next-step autoreset, in a Python loop (the oracle)."""
    n_steps, n_envs, _ = actions.shape
    singles = [FxRiskEnv(config=config, data=data) for _ in range(n_envs)]
    first = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(singles)])
    done = [False] * n_envs
    out = {k: np.zeros((n_steps, n_envs)) for k in ("reward", "terminated", "truncated", "equity")}
    obs = np.zeros((n_steps, n_envs, singles[0].observation_space.shape[0]), dtype=np.float32)
    for t in range(n_steps):
        for i, env in enumerate(singles):
            if done[i]:
                o, info = env.reset()
                r, te, tr = 0.0, False, False
            else:
                o, r, te, tr, info = env.step(actions[t, i])
            done[i] = te or tr
            obs[t, i] = o
            out["reward"][t, i], out["terminated"][t, i], out["truncated"][t, i] = r, te, tr
            out["equity"][t, i] = info["equity"]
    return first, obs, out


def vector_rollout(venv, seed, actions):
    first, _ = venv.reset(seed=seed)
    n_steps, n_envs, _ = actions.shape
    out = {k: np.zeros((n_steps, n_envs)) for k in ("reward", "terminated", "truncated", "equity")}
    obs = np.zeros((n_steps, n_envs, venv.single_observation_space.shape[0]), dtype=np.float32)
    for t in range(n_steps):
        obs[t], out["reward"][t], out["terminated"][t], out["truncated"][t], info = venv.step(actions[t])
        out["equity"][t] = info["equity"]
    return first, obs, out


# -- the batched gymnasium env ------------------------------------------------------------------

@pytest.mark.parametrize("action_mode", ["exposure", "sizing"])
@pytest.mark.parametrize("var_mode", ["shield", "penalty", "cost"])
def test_batched_matches_single_envs(data, action_mode, var_mode):
    # Arrange
    config = dataclasses.replace(CONFIG, action_mode=action_mode, var_mode=var_mode)
    actions = random_actions(150, 4, data.n_pairs, config)
    venv = FxRiskVectorEnv(4, config=config, data=data)
    # Act
    first_v, obs_v, out_v = vector_rollout(venv, 11, actions)
    first_s, obs_s, out_s = single_rollout(config, data, 11, actions)
    # Assert: exact equality across two autoresets per env
    np.testing.assert_array_equal(first_v, first_s)
    np.testing.assert_array_equal(obs_v, obs_s)
    for key in out_s:
        np.testing.assert_allclose(out_v[key], out_s[key], **EXACT, err_msg=key)
    assert out_s["truncated"].sum(axis=0).min() >= 2
    assert obs_v.dtype == np.float32 and venv.observation_space.contains(obs_v[-1])


def test_batched_matches_single_envs_with_stop_outs(data):
    # Arrange: stop-outs end episodes at different steps, so some envs reset while others step
    actions = random_actions(200, 5, data.n_pairs, FRAGILE, seed=3)
    venv = FxRiskVectorEnv(5, config=FRAGILE, data=data)
    # Act
    first_v, obs_v, out_v = vector_rollout(venv, 0, actions)
    first_s, obs_s, out_s = single_rollout(FRAGILE, data, 0, actions)
    # Assert
    np.testing.assert_array_equal(first_v, first_s)
    np.testing.assert_array_equal(obs_v, obs_s)
    for key in out_s:
        np.testing.assert_allclose(out_v[key], out_s[key], **EXACT, err_msg=key)
    ends = out_s["terminated"] + out_s["truncated"]
    assert out_s["terminated"].sum() >= 3
    assert any(0 < e.sum() < len(e) for e in ends), "episodes should end at different steps"


@pytest.mark.parametrize("var_mode", ["shield", "cost"])
def test_batched_matches_the_single_env_on_one_pair(var_mode):
    # Arrange: the single env's own compiled call (single_step) against the batched one (batch_step)
    market = generate_market(default_config(("EURUSD",)), 1500, rng=np.random.default_rng(1)).market
    config = dataclasses.replace(FRAGILE, var_mode=var_mode)
    one = prepare_env_data(market, config)
    actions = random_actions(150, 3, 1, config, seed=4)
    # Act
    first_v, obs_v, out_v = vector_rollout(FxRiskVectorEnv(3, config=config, data=one), 2, actions)
    first_s, obs_s, out_s = single_rollout(config, one, 2, actions)
    # Assert
    np.testing.assert_array_equal(first_v, first_s)
    np.testing.assert_array_equal(obs_v, obs_s)
    for key in out_s:
        np.testing.assert_allclose(out_v[key], out_s[key], **EXACT, err_msg=key)


def test_infos_match_sync_vector_env(data):
    # Arrange: gymnasium's own vector of single envs is the reference for the info layout
    n = 4
    actions = random_actions(120, n, data.n_pairs, FRAGILE, seed=5)
    venv = FxRiskVectorEnv(n, config=FRAGILE, data=data)
    sync = gym.vector.SyncVectorEnv([lambda: FxRiskEnv(config=FRAGILE, data=data)] * n)
    # Act / Assert
    (o1, i1), (o2, i2) = venv.reset(seed=7), sync.reset(seed=7)
    np.testing.assert_array_equal(o1, o2)
    assert i1.keys() == i2.keys()
    for t in range(len(actions)):
        r1, r2 = venv.step(actions[t]), sync.step(actions[t])
        for a, b in zip(r1[:4], r2[:4]):
            np.testing.assert_array_equal(a, b)
        info1, info2 = r1[4], r2[4]
        assert info1.keys() == info2.keys(), t
        for key in info2:
            np.testing.assert_array_equal(info1[key], info2[key], err_msg=f"step {t} {key}")
            assert info1[key].dtype == info2[key].dtype, key
    sync.close()


def test_reset_seeding_matches_single_env_and_continues(data):
    venv = FxRiskVectorEnv(3, config=CONFIG, data=data)
    _, info = venv.reset(seed=[5, None, 9])
    single = FxRiskEnv(config=CONFIG, data=data)
    assert info["t"][0] == single.reset(seed=5)[1]["t"]
    assert info["t"][2] == single.reset(seed=9)[1]["t"]
    # a seedless reset continues each env's own generator
    _, again = venv.reset()
    assert again["t"][2] == single.reset()[1]["t"]
    assert venv.np_random_seeds[0] == 5 and venv.np_random_seeds[2] == 9


def test_reset_options_mask_and_start(data):
    venv = FxRiskVectorEnv(3, config=CONFIG, data=data)
    lo, _ = venv.core.start_bounds()
    _, info = venv.reset(seed=0, options={"start": [lo, lo + 1, lo + 2]})
    np.testing.assert_array_equal(info["t"], [lo, lo + 1, lo + 2])
    venv.step(np.zeros((3, data.n_pairs)))
    _, info = venv.reset(options={"reset_mask": np.array([False, True, False]), "start": lo + 10})
    np.testing.assert_array_equal(info["_t"], [False, True, False])
    np.testing.assert_array_equal(venv.state.t, [lo + 1, lo + 10, lo + 3])
    with pytest.raises(ValueError, match="outside the usable bars"):
        venv.reset(options={"start": 1})
    with pytest.raises(ValueError, match="unknown reset options"):
        venv.reset(options={"bogus": 1})


def test_spaces_and_metadata(data):
    venv = FxRiskVectorEnv(4, config=CONFIG, data=data)
    single = FxRiskEnv(config=CONFIG, data=data)
    assert venv.single_observation_space == single.observation_space
    assert venv.single_action_space == single.action_space
    assert venv.observation_space.shape == (4, *single.observation_space.shape)
    assert venv.action_space.shape == (4, data.n_pairs)
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    obs, _ = venv.reset(seed=0)
    assert venv.observation_space.contains(obs)
    venv.action_space.seed(0)
    venv.step(venv.action_space.sample())


def test_make_vec_vector_entry_point(data):
    venv = gym.make_vec("FxRisk-v0", num_envs=4, vectorization_mode="vector_entry_point", data=data, config=CONFIG)
    assert isinstance(venv.unwrapped, FxRiskVectorEnv)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (4, venv.unwrapped.core.obs_dim)
    obs, reward, terminated, truncated, info = venv.step(np.zeros((4, data.n_pairs), dtype=np.float32))
    assert reward.shape == terminated.shape == truncated.shape == (4,)
    assert "equity" in info and info["_equity"].all()
    venv.close()


@pytest.mark.parametrize("bad, message", [
    (np.nan, "NaN or inf"), (np.inf, "NaN or inf"), (1.5, "outside the action space"),
])
def test_bad_actions_raise_clear_errors(data, bad, message):
    venv = FxRiskVectorEnv(3, config=CONFIG, data=data)
    venv.reset(seed=0)
    actions = np.zeros((3, data.n_pairs))
    actions[1, 0] = bad
    with pytest.raises(ValueError, match=message) as err:
        venv.step(actions)
    assert "environment(s) [1]" in str(err.value)
    with pytest.raises(ValueError, match="does not match the batched action space"):
        venv.step(np.zeros((2, data.n_pairs)))


def test_step_before_reset_and_bad_num_envs(data):
    with pytest.raises(gym.error.ResetNeeded):
        FxRiskVectorEnv(2, config=CONFIG, data=data).step(np.zeros((2, data.n_pairs)))
    with pytest.raises(ValueError, match="num_envs"):
        FxRiskVectorEnv(0, config=CONFIG, data=data)


def test_infos_are_not_aliased_with_the_state(data):
    venv = FxRiskVectorEnv(2, config=CONFIG, data=data)
    venv.reset(seed=0)
    *_, info = venv.step(np.full((2, data.n_pairs), 0.3))
    kept = {k: np.array(v, copy=True) for k, v in info.items()}
    for _ in range(70):                      # through an autoreset
        venv.step(np.full((2, data.n_pairs), -0.3))
    for key, value in kept.items():
        np.testing.assert_array_equal(info[key], value, err_msg=key)


# -- the SB3 adapter ------------------------------------------------------------------------

def test_sb3_adapter_matches_dummy_vec_env(data):
    # Arrange
    n = 4
    actions = random_actions(150, n, data.n_pairs, FRAGILE, seed=9).astype(np.float32)
    adapter = FxRiskSB3VecEnv(n, config=FRAGILE, data=data)
    dummy = DummyVecEnv([lambda: FxRiskEnv(config=FRAGILE, data=data)] * n)
    adapter.seed(21)
    dummy.seed(21)
    # Act / Assert: same-step autoreset, terminal observations, TimeLimit.truncated
    np.testing.assert_array_equal(adapter.reset(), dummy.reset())
    n_done = n_terminated = 0
    for t in range(len(actions)):
        o1, r1, d1, infos1 = adapter.step(actions[t])
        o2, r2, d2, infos2 = dummy.step(actions[t])
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        assert r1.dtype == r2.dtype and o1.dtype == o2.dtype
        for i in range(n):
            assert infos1[i]["TimeLimit.truncated"] == infos2[i]["TimeLimit.truncated"]
            for key in INFO_KEYS:
                assert isinstance(infos1[i][key], float)
                assert infos1[i][key] == float(infos2[i][key]), (t, i, key)
            assert ("terminal_observation" in infos1[i]) == bool(d1[i])
            if d1[i]:
                np.testing.assert_array_equal(infos1[i]["terminal_observation"], infos2[i]["terminal_observation"])
                assert not np.array_equal(infos1[i]["terminal_observation"], o1[i])
                n_done += 1
                n_terminated += not infos1[i]["TimeLimit.truncated"]
        assert adapter.reset_infos == [{"t": d["t"], "equity": d["equity"]} for d in dummy.reset_infos]
    assert n_done >= 8 and n_terminated >= 2


def test_sb3_adapter_api(data):
    adapter = FxRiskSB3VecEnv(3, config=CONFIG, data=data)
    assert adapter.get_attr("config") == [CONFIG.in_bars(data.bar_hours)] * 3
    assert adapter.get_attr("render_mode", indices=[1]) == [None]
    assert len({id(r) for r in adapter.get_attr("np_random")}) == 3
    assert adapter.has_attr("core") and not adapter.has_attr("no_such_attribute")
    assert adapter.env_is_wrapped(gym.Wrapper) == [False] * 3
    reprs = adapter.env_method("__repr__", indices=[0, 2])
    assert len(reprs) == 2 and reprs[0].startswith("FxRiskVectorEnv")
    with pytest.raises(ValueError, match="share one batched environment"):
        adapter.set_attr("render_mode", None, indices=[0])
    adapter.set_attr("render_mode", None)
    assert adapter.seed(4) == [4, 5, 6]
    adapter.set_options({"start": adapter.vector_env.core.start_bounds()[0] + 3})
    adapter.reset()
    assert (adapter.vector_env.state.t == adapter.vector_env.core.start_bounds()[0] + 3).all()
    with pytest.raises(ValueError, match="NaN or inf"):
        adapter.step(np.full((3, data.n_pairs), np.nan, dtype=np.float32))
    adapter.close()


def test_sb3_wrappers_on_the_adapter(data):
    venv = VecNormalize(VecMonitor(FxRiskSB3VecEnv(4, config=CONFIG, data=data)), norm_reward=True)
    venv.seed(0)
    obs = venv.reset()
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(140):
        obs, reward, _, infos = venv.step(rng.uniform(-1, 1, (4, data.n_pairs)).astype(np.float32))
        assert np.isfinite(obs).all() and np.isfinite(reward).all()
        episodes += sum("episode" in info for info in infos)
    assert episodes >= 8
    venv.close()


def test_sb3_subproc_vec_env_runs_single_envs(data):
    venv = SubprocVecEnv([lambda: FxRiskEnv(config=CONFIG, data=data)] * 2, start_method="fork")
    try:
        venv.seed(0)
        obs = venv.reset()
        for _ in range(70):
            obs, reward, _, _ = venv.step(np.zeros((2, data.n_pairs), dtype=np.float32))
        assert obs.shape == (2, venv.observation_space.shape[0]) and np.isfinite(reward).all()
    finally:
        venv.close()


def test_ppo_learns_on_the_adapter(data):
    torch = pytest.importorskip("torch")
    from stable_baselines3 import PPO

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        adapter = FxRiskSB3VecEnv(4, config=CONFIG, data=data)
        model = PPO("MlpPolicy", VecMonitor(adapter), n_steps=64, batch_size=128, n_epochs=1, seed=0, device="cpu")
        model.learn(total_timesteps=2_048)
        assert model.num_timesteps >= 2_048
        action, _ = model.predict(adapter.reset(), deterministic=True)
        assert action.shape == (4, data.n_pairs)
    finally:
        torch.set_num_threads(threads)


# -- the one-pair fast path ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def one_pair():
    market = generate_market(default_config(("EURUSD",)), 1500, rng=np.random.default_rng(1)).market
    return prepare_env_data(market, CONFIG)


def test_one_pair_infos_and_observations_are_fresh(one_pair):
    venv = FxRiskVectorEnv(3, config=FRAGILE, data=one_pair)
    venv.reset(seed=0)
    obs, reward, _, _, info = venv.step(np.full((3, 1), 0.3))
    kept = {k: np.array(v, copy=True) for k, v in info.items()}
    kept_obs, kept_reward = obs.copy(), reward.copy()
    for _ in range(70):                      # through autoresets
        nxt = venv.step(np.full((3, 1), -0.3, dtype=np.float32))
        assert not np.shares_memory(nxt[0], obs)
    np.testing.assert_array_equal(obs, kept_obs)
    np.testing.assert_array_equal(reward, kept_reward)
    for key, value in kept.items():
        np.testing.assert_array_equal(info[key], value, err_msg=key)
    for key in ("t", "equity", "cash", "units", "shield_scale"):
        assert not np.shares_memory(info[key], getattr(venv.state, "last_scale" if key == "shield_scale" else key))
