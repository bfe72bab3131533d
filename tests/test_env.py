"""``FxRisk-v0``: API checks, determinism, accounting and VaR invariants under random actions,
no lookahead, VaR modes, rewards, episode ends, bad actions, and a PPO smoke run.

Small synthetic markets (2,000 hourly bars); ``EnvData`` is prepared once per market and
passed to the environments (``data=``), forecasts cached under a temporary folder.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401  (registers FxRisk-v0)
from envs.config import EnvConfig
from envs.data import EnvData, prepare_env_data
from envs.fx_env import FxRiskEnv
from forecasters.cache import ForecastCache
from simulator.data.market import PRICE_FIELDS, MarketData
from simulator.synthetic.generator import default_config, generate_market
from tests.conftest import change_future
from tests.oracle_core import OracleEnv

CFG = EnvConfig(vol_model="ewma", var_window=200, episode_bars=200)
N_BARS = 2000
CORR = [[1.0, 0.3], [0.3, 1.0]]
COST_KEYS = ("spread_cost", "impact_cost", "slippage_cost", "commission", "financing_cost", "liquidation_cost",
             "costs")
HYPO = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- markets and data


def make_market(symbols: tuple[str, ...], seed: int = 0, *, liquidity_scale: float = 1.0) -> MarketData:
    """A synthetic market; ``liquidity_scale`` < 1 thins the depth so that fills are partial."""
    market = generate_market(default_config(symbols, CORR if len(symbols) == 2 else None), N_BARS,
                             rng=np.random.default_rng(seed)).market
    if liquidity_scale != 1.0:
        bars = market.bars.copy()
        for s in market.symbols:
            bars[(s, "liquidity")] *= liquidity_scale
        market = MarketData(bars=bars, pairs=market.pairs, source=f"illiquid x{liquidity_scale:g}")
    return market


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> ForecastCache:
    return ForecastCache(tmp_path_factory.mktemp("forecast-cache"))


@pytest.fixture(scope="module")
def get_data(cache):
    """``get_data(n_pairs, seed=0, liquidity_scale=1.0, symbols=None)`` → (market, EnvData), memoised per module.

    Default symbols: EURUSD for one pair, EURUSD and USDJPY for two; ``symbols=("USDJPY",)`` gives a
    one-pair market whose quote currency is not the account's (the scalar fast path with a moving rate).
    """
    memo: dict = {}

    def get(n_pairs: int, seed: int = 0, liquidity_scale: float = 1.0,
            symbols: tuple[str, ...] | None = None) -> tuple[MarketData, EnvData]:
        if symbols is None:
            symbols = ("EURUSD",) if n_pairs == 1 else ("EURUSD", "USDJPY")
        assert len(symbols) == n_pairs
        key = (symbols, seed, liquidity_scale)
        if key not in memo:
            market = make_market(symbols, seed, liquidity_scale=liquidity_scale)
            memo[key] = market, prepare_env_data(market, CFG, cache=cache)
        return memo[key]

    return get


@pytest.fixture(scope="module")
def data1(get_data) -> EnvData:
    return get_data(1)[1]


@pytest.fixture(scope="module")
def data2(get_data) -> EnvData:
    return get_data(2)[1]


def make_env(kind: str, config: EnvConfig, data: EnvData):
    """The environment (``compiled``: FxRiskEnv) or the numpy oracle's (``oracle``)."""
    return FxRiskEnv(config=config, data=data) if kind == "compiled" else OracleEnv(data, config)


def rollout(env: gym.Env, actions, *, seed: int | None = None, start: int | None = None) -> dict:
    """Reset then step through ``actions`` (stops at the end of the episode); everything returned."""
    obs, info = env.reset(seed=seed, options=None if start is None else {"start": start})
    out = {"obs": [obs], "reward": [], "terminated": [], "truncated": [], "info": [info]}
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        for k, v in (("obs", obs), ("reward", reward), ("terminated", terminated), ("truncated", truncated),
                     ("info", info)):
            out[k].append(v)
        if terminated or truncated:
            break
    return out


def random_actions(rng: np.random.Generator, n: int, n_pairs: int, low: float = -1.0) -> list[np.ndarray]:
    acts = rng.uniform(low, 1.0, (n, n_pairs)).astype(np.float32)
    acts[::5] = 1.0   # full requests: the shield, the leverage cap and the fill caps bite
    acts[3::11] = 0.0
    return list(acts)


def assert_infos_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, value in a.items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(b[k]), err_msg=k)


def account_state(env: gym.Env) -> dict:
    """The account's own state: cash, units and the open positions' quote-currency cash legs (per pair)."""
    u = env.unwrapped
    if hasattr(u, "account"):  # FxRiskEnv: the compiled step's account
        return {"cash": u.account.cash, "units": u.account.units, "quote_cash": u.account.quote_cash}
    return {"cash": float(u.state.cash[0]), "units": np.array(u.state.units[0], dtype=float),
            "quote_cash": np.array(u.state.quote_cash[0], dtype=float)}


def check_step_invariants(env: gym.Env, before: dict, equity_before: float, obs, reward: float, info: dict) -> None:
    """What must hold after every step, whatever the action (``before``: :func:`account_state` before it)."""
    d = env.unwrapped.data
    t = info["t"]
    assert obs.dtype == np.float32 and obs.shape == env.observation_space.shape
    assert np.isfinite(obs).all(), "non-finite observation"
    assert env.observation_space.contains(obs), "observation outside the (finite) observation space"
    assert math.isfinite(reward), "non-finite reward"
    after = account_state(env)
    units = np.atleast_1d(np.asarray(info["units"], dtype=float))
    np.testing.assert_array_equal(after["units"], units)
    assert after["cash"] == info["cash"]
    quote = after["quote_cash"]
    scale = abs(info["cash"]) + float(np.sum(np.abs(units * d.close[t] * d.conv[t]) + np.abs(quote * d.conv[t])))
    # equity = cash + Σ (units × mid + quote_cash) × conv at the close of the fill bar
    mark = float(np.sum((units * d.close[t] + quote) * d.conv[t]))
    assert info["equity"] == pytest.approx(info["cash"] + mark, rel=1e-12, abs=1e-12 * scale + 1e-9)
    # a flat position has no quote leg: it was realised into account cash
    assert (quote[units == 0] == 0).all()
    # account cash moves only by financing, commissions and realised P&L: the quote leg of each position
    # the fill closed, converted at the decision bar's rate (the fill's rate)
    if info["stopped_out"]:
        assert (units == 0).all() and (quote == 0).all()
        assert info["equity"] == pytest.approx(info["cash"], rel=1e-12)
    else:
        filled = np.atleast_1d(np.asarray(info["filled"], dtype=float))
        price = np.atleast_1d(np.asarray(info["fill_price"], dtype=float))
        np.testing.assert_array_equal(before["units"] + filled, units)
        leg = before["quote_cash"] - filled * np.nan_to_num(price)
        closed = units == 0
        realised = float(np.sum(np.where(closed, leg * d.conv[t - 1], 0.0)))
        expected_cash = before["cash"] + info["financing"] - info["commission"] + realised
        assert info["cash"] == pytest.approx(expected_cash, rel=1e-12, abs=1e-12 * scale + 1e-9)
        np.testing.assert_allclose(quote, np.where(closed, 0.0, leg), rtol=1e-12, atol=1e-9)
    assert info["log_return"] == pytest.approx(math.log(max(info["equity"], 1e-12) / equity_before), rel=1e-9,
                                               abs=1e-12)
    # every cost is >= 0, and the total is the sum of its parts
    for k in COST_KEYS:
        assert info[k] >= 0, k
    parts = sum(info[k] for k in COST_KEYS[:-1])
    assert info["costs"] == pytest.approx(parts, rel=1e-12, abs=1e-9)
    for k in ("var", "var_limit", "var_requested", "shield_scale"):
        assert math.isfinite(info[k]), k


# --------------------------------------------------------------------------- API checkers


def recorded_warnings(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [f"{w.category.__name__}: {w.message}" for w in caught]


@pytest.mark.parametrize("action_mode", ["exposure", "sizing"])
@pytest.mark.parametrize("n_pairs", [1, 2])
def test_gymnasium_check_env_passes_without_warnings(get_data, n_pairs, action_mode):
    """Every check of gymnasium's checker passes, with no warning (finite observation bounds included)."""
    config = dataclasses.replace(CFG, action_mode=action_mode)
    env = gym.make("FxRisk-v0", config=config, data=get_data(n_pairs)[1]).unwrapped
    space = env.observation_space
    assert np.isfinite(space.low).all() and np.isfinite(space.high).all()
    assert (space.low == -100.0).all() and (space.high == 100.0).all()
    assert recorded_warnings(lambda: gym_check_env(env)) == []


@pytest.mark.parametrize("action_mode", ["exposure", "sizing"])
@pytest.mark.parametrize("n_pairs", [1, 2])
def test_sb3_check_env_passes_without_warnings(get_data, n_pairs, action_mode):
    config = dataclasses.replace(CFG, action_mode=action_mode)
    env = gym.make("FxRisk-v0", config=config, data=get_data(n_pairs)[1])
    # a symmetric, normalised action space in both modes (SB3's recommendation for PPO)
    assert (env.action_space.low == -1.0).all() and (env.action_space.high == 1.0).all()
    assert recorded_warnings(lambda: sb3_check_env(env)) == []


def test_make_builds_from_a_market_and_a_config(get_data, cache):
    market, data = get_data(1)
    env = gym.make("FxRisk-v0", market=market, config=CFG, cache=cache)
    direct = FxRiskEnv(config=CFG, data=data)
    o1, i1 = env.reset(seed=3)
    o2, i2 = direct.reset(seed=3)
    np.testing.assert_array_equal(o1, o2)
    assert i1 == i2
    assert env.observation_space.dtype == np.float32


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("n_pairs", [1, 2])
def test_same_seed_same_actions_same_trajectory(get_data, n_pairs):
    data = get_data(n_pairs)[1]
    actions = random_actions(np.random.default_rng(5), 120, n_pairs)
    a = rollout(FxRiskEnv(config=CFG, data=data), actions, seed=11)
    b = rollout(FxRiskEnv(config=CFG, data=data), actions, seed=11)
    np.testing.assert_array_equal(np.stack(a["obs"]), np.stack(b["obs"]))
    assert a["reward"] == b["reward"]
    assert a["terminated"] == b["terminated"] and a["truncated"] == b["truncated"]
    for ia, ib in zip(a["info"], b["info"]):
        assert_infos_equal(ia, ib)


def test_different_seeds_start_at_different_bars(data1):
    env = FxRiskEnv(config=CFG, data=data1)
    starts = [env.reset(seed=s)[1]["t"] for s in range(6)]
    assert len(set(starts)) > 1
    lo, hi = env.core.start_bounds()
    assert all(lo <= s <= hi for s in starts)
    assert env.reset(seed=2)[1]["t"] == starts[2]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), action_seed=st.integers(0, 2**16),
       var_mode=st.sampled_from(["shield", "penalty", "cost"]),
       reward=st.sampled_from(["log_return", "differential_sharpe", "risk_penalised"]),
       action_mode=st.sampled_from(["exposure", "sizing", "sizing-var-budget"]),
       liquidity_scale=st.sampled_from([1.0, 1e-4]), symbol=st.sampled_from(["EURUSD", "USDJPY"]))
def test_the_single_env_matches_the_numpy_oracle(get_data, seed, action_seed, var_mode, reward, action_mode,
                                                 liquidity_scale, symbol):
    """The compiled step gives the numpy array oracle's trajectory (tests.oracle_core); USDJPY: JPY quote."""
    mode, _, unit = action_mode.partition("-")
    config = dataclasses.replace(CFG, var_mode=var_mode, reward=reward, action_mode=mode, var_limit=0.005,
                                 size_unit="var_budget" if unit else "leverage")
    data = get_data(1, 0, liquidity_scale, (symbol,))[1]
    actions = random_actions(np.random.default_rng(action_seed), 60, 1)
    fast_env, core_env = FxRiskEnv(config=config, data=data), OracleEnv(data, config)
    fast = rollout(fast_env, actions, seed=seed)
    core = rollout(core_env, actions, seed=seed)
    assert len(fast["reward"]) == len(core["reward"])
    np.testing.assert_allclose(np.stack(fast["obs"]), np.stack(core["obs"]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fast["reward"], core["reward"], rtol=1e-9, atol=1e-12)
    assert fast["terminated"] == core["terminated"] and fast["truncated"] == core["truncated"]
    for f, c in zip(fast["info"][1:], core["info"][1:]):
        assert set(f) - set(c) == {"band_holds", "small_orders"}  # the oracle predates the band (off here)
        for k in c:
            np.testing.assert_allclose(np.atleast_1d(np.asarray(f[k], dtype=float)),
                                       np.atleast_1d(np.asarray(c[k], dtype=float)), rtol=1e-9, atol=1e-6,
                                       err_msg=k)
    # the same account state at the end, the quote-currency cash leg included
    fs, cs = account_state(fast_env), account_state(core_env)
    assert fs["cash"] == pytest.approx(cs["cash"], rel=1e-9, abs=1e-6)
    np.testing.assert_allclose(fs["units"], cs["units"], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(fs["quote_cash"], cs["quote_cash"], rtol=1e-9, atol=1e-6)


# --------------------------------------------------------------------------- invariants under random actions


@HYPO
@given(data=st.data(), symbols=st.sampled_from([("EURUSD",), ("USDJPY",), ("EURUSD", "USDJPY")]),
       market_seed=st.sampled_from([0, 1]),
       liquidity_scale=st.sampled_from([1.0, 1e-3, 1e-5]), var_mode=st.sampled_from(["shield", "penalty", "cost"]),
       var_limit=st.sampled_from([0.002, 0.01, 0.05]), action_mode=st.sampled_from(["exposure", "sizing"]),
       reward=st.sampled_from(["log_return", "differential_sharpe", "risk_penalised"]), seed=st.integers(0, 2**16))
def test_random_actions_keep_every_invariant(get_data, data, symbols, market_seed, liquidity_scale, var_mode,
                                             var_limit, action_mode, reward, seed):
    # Arrange
    n_pairs = len(symbols)
    config = dataclasses.replace(CFG, var_mode=var_mode, var_limit=var_limit, action_mode=action_mode, reward=reward)
    env_data = get_data(n_pairs, market_seed, liquidity_scale, symbols)[1]
    env = FxRiskEnv(config=config, data=env_data)
    value = st.one_of(st.sampled_from([-1.0, 0.0, 1.0]), st.floats(-1.0, 1.0, width=32))  # both modes: [-1, 1]
    actions = data.draw(st.lists(st.lists(value, min_size=n_pairs, max_size=n_pairs), min_size=1, max_size=40))
    obs, info = env.reset(seed=seed)
    assert np.isfinite(obs).all() and env.observation_space.contains(obs)
    equity = info["equity"]
    cap_fraction = config.execution.max_participation
    # Act / Assert, step by step
    for a in actions:
        t_before = env.unwrapped.account.t
        before = account_state(env)
        units_before = before["units"]
        obs, reward_value, terminated, truncated, info = env.step(np.array(a, dtype=np.float32))
        check_step_invariants(env, before, equity, obs, reward_value, info)
        assert info["t"] == t_before + 1
        if var_mode == "shield":
            assert info["var"] <= info["var_limit"] * (1 + 1e-9)
        else:
            assert not info["clipped"] and info["shield_scale"] == 1.0
        # partial fills: at most max_participation × the fill bar's liquidity, except shield reductions
        filled = np.atleast_1d(np.asarray(info["filled"], dtype=float))
        cap = cap_fraction * env_data.liquidity[info["t"]]
        over = np.abs(filled) > cap * (1 + 1e-12)
        if over.any():
            assert var_mode == "shield" or info["stopped_out"]
            after = units_before + filled
            assert (np.abs(after[over]) < np.abs(units_before[over])).all()
        equity = info["equity"]
        if terminated or truncated:
            break


@pytest.mark.parametrize("n_pairs", [1, 2])
def test_illiquid_market_fills_partially_and_the_shield_still_holds(get_data, n_pairs):
    env = FxRiskEnv(config=CFG, data=get_data(n_pairs, 0, 1e-4)[1])
    out = rollout(env, [np.ones(n_pairs, dtype=np.float32)] * 30 + [-np.ones(n_pairs, dtype=np.float32)] * 30,
                  seed=0)
    unfilled = [np.abs(np.atleast_1d(i["unfilled"])).sum() for i in out["info"][1:]]
    assert max(unfilled) > 0  # orders were cut by the participation cap
    for i in out["info"][1:]:
        assert i["var"] <= i["var_limit"] * (1 + 1e-9)


@pytest.mark.parametrize("kind", ["compiled", "oracle"])
@pytest.mark.parametrize("symbols", [("EURUSD",), ("USDJPY",), ("EURUSD", "USDJPY")])
def test_closing_a_position_realises_its_quote_leg_at_the_fill_rate(get_data, symbols, kind):
    """Open, hold, close, again: while open cash moves only by financing and commissions; a close converts the
    quote leg into account cash at the rate of the decision bar (checked by :func:`check_step_invariants`)."""
    n_pairs = len(symbols)
    env = make_env(kind, CFG, get_data(n_pairs, 0, 1.0, symbols)[1])
    _, info = env.reset(seed=0)
    equity, d = info["equity"], env.unwrapped.data
    closes = 0
    for k in range(24):
        a = np.full(n_pairs, 0.0 if k % 3 == 2 else 0.5, dtype=np.float32)
        before = account_state(env)
        obs, reward, terminated, truncated, info = env.step(a)
        check_step_invariants(env, before, equity, obs, reward, info)
        assert not (terminated or truncated)
        if k % 3 == 2:  # a close (the shield never caps a reduction): all realised
            assert (account_state(env)["quote_cash"] == 0).all() and np.all(np.atleast_1d(info["units"]) == 0)
            assert info["equity"] == pytest.approx(info["cash"], rel=1e-12)
            # the rate moved between the fill and the mark where the quote is JPY: the fill's rate matters
            t = info["t"]
            jpy = np.array([s.endswith("JPY") for s in symbols])
            assert (d.conv[t - 1][jpy] != d.conv[t][jpy]).all()
            closes += 1
        else:
            held = np.atleast_1d(info["units"])
            assert (held != 0).all() and (account_state(env)["quote_cash"] != 0).all()
        equity = info["equity"]
    assert closes == 8


# --------------------------------------------------------------------------- no lookahead


@pytest.mark.parametrize("var_mode", ["shield", "penalty", "cost"])
@pytest.mark.parametrize("n_pairs", [1, 2])
def test_changing_the_future_does_not_move_the_past(get_data, cache, n_pairs, var_mode):
    # Arrange: the same market, and one with every bar after t_change moved (prices ×1.3, spreads ×4)
    market, data = get_data(n_pairs)
    t_change = data.first_step + 120
    future = prepare_env_data(change_future(market, t_change), CFG, cache=cache)
    assert future.first_step == data.first_step
    config = dataclasses.replace(CFG, var_mode=var_mode, var_limit=0.005)
    start = data.first_step + 20
    # up to 7.5× leverage: no stop-out, so both runs go past t_change
    actions = [0.25 * a for a in random_actions(np.random.default_rng(2), 150, n_pairs)]
    # Act
    a = rollout(FxRiskEnv(config=config, data=data), actions, start=start)
    b = rollout(FxRiskEnv(config=config, data=future), actions, start=start)
    # Assert: observation k is at bar start + k; step k decides at bar start + k and fills at start + k + 1
    bars = start + np.arange(len(a["obs"]))
    for k, bar in enumerate(bars):
        if bar <= t_change:
            np.testing.assert_array_equal(a["obs"][k], b["obs"][k], err_msg=f"observation at bar {bar}")
    for k in range(len(a["reward"])):
        if start + k + 1 <= t_change:
            assert a["reward"][k] == b["reward"][k], f"reward of the step deciding at bar {start + k}"
            assert_infos_equal(a["info"][k + 1], b["info"][k + 1])
    # the change did take effect after t_change
    assert len(a["reward"]) == 150 and len(b["reward"]) > t_change - start  # b may stop out after the jump
    k_after = t_change - start + 1  # the observation at bar t_change + 1
    assert not np.array_equal(a["obs"][k_after], b["obs"][k_after])
    assert a["reward"][t_change - start] != b["reward"][t_change - start]


# --------------------------------------------------------------------------- VaR modes


@pytest.mark.parametrize("n_pairs", [1, 2])
def test_shield_clips_a_full_leverage_request_under_a_tight_limit(get_data, n_pairs):
    config = dataclasses.replace(CFG, var_mode="shield", var_limit=0.001)
    env = FxRiskEnv(config=config, data=get_data(n_pairs)[1])
    out = rollout(env, [np.ones(n_pairs, dtype=np.float32)] * 10, seed=0)
    for info in out["info"][1:]:
        assert info["clipped"] is True or info["clipped"] == np.True_
        assert info["shield_scale"] < 1
        assert info["var_requested"] > info["var_limit"]
        assert info["var"] <= info["var_limit"] * (1 + 1e-9)
        assert not info["var_breach"]
    assert out["obs"][-1][-1] == pytest.approx(out["info"][-1]["shield_scale"], rel=1e-6)  # last_shield_scale


@pytest.mark.parametrize("n_pairs", [1, 2])
def test_penalty_mode_subtracts_the_excess_utilisation_and_never_clips(get_data, n_pairs):
    config = dataclasses.replace(CFG, var_mode="penalty", var_limit=0.001, var_penalty=2.5)
    env = FxRiskEnv(config=config, data=get_data(n_pairs)[1])
    out = rollout(env, [np.ones(n_pairs, dtype=np.float32)] * 10, seed=0)
    excesses = []
    for reward, info in zip(out["reward"], out["info"][1:]):
        excess = max(info["var_utilisation"] - 1.0, 0.0)
        excesses.append(excess)
        assert not info["clipped"] and info["shield_scale"] == 1.0
        assert reward == pytest.approx(info["log_return"] - 2.5 * excess, rel=1e-12, abs=1e-15)
    assert max(excesses) > 0 and out["reward"][0] < out["info"][1]["log_return"]


@pytest.mark.parametrize("n_pairs", [1, 2])
def test_cost_mode_leaves_the_reward_alone_and_reports_the_excess(get_data, n_pairs):
    config = dataclasses.replace(CFG, var_mode="cost", var_limit=0.001)
    env = FxRiskEnv(config=config, data=get_data(n_pairs)[1])
    out = rollout(env, [np.ones(n_pairs, dtype=np.float32)] * 10, seed=0)
    for reward, info in zip(out["reward"], out["info"][1:]):
        assert reward == info["log_return"]
        assert info["cost"] == pytest.approx(max(info["var_utilisation"] - 1.0, 0.0), rel=1e-12)
        assert not info["clipped"]
    assert out["info"][1]["cost"] > 0 and out["info"][1]["var_breach"]


# --------------------------------------------------------------------------- rewards


def test_log_return_reward_is_log_equity_growth(data2):
    env = FxRiskEnv(config=dataclasses.replace(CFG, reward="log_return"), data=data2)
    out = rollout(env, random_actions(np.random.default_rng(3), 100, 2), seed=4)
    equity = [i["equity"] for i in out["info"]]
    for k, reward in enumerate(out["reward"]):
        assert reward == pytest.approx(math.log(equity[k + 1] / equity[k]), rel=1e-12, abs=1e-15)


def test_differential_sharpe_and_risk_penalised_rewards_run_and_differ(data1):
    actions = random_actions(np.random.default_rng(3), 150, 1)
    runs = {}
    for name, extra in (("log_return", {}), ("differential_sharpe", {}),
                        ("risk_penalised", {"risk_penalty": "variance", "risk_aversion": 50.0}),
                        ("drawdown", {"risk_penalty": "drawdown", "risk_aversion": 2.0})):
        reward = "risk_penalised" if name == "drawdown" else name
        config = dataclasses.replace(CFG, reward=reward, **extra)
        runs[name] = rollout(FxRiskEnv(config=config, data=data1), actions, seed=9)
    rewards = {k: np.array(v["reward"]) for k, v in runs.items()}
    for k, r in rewards.items():
        assert np.isfinite(r).all(), k
    # the equity path does not depend on the reward; the rewards do
    np.testing.assert_array_equal([i["equity"] for i in runs["log_return"]["info"]],
                                  [i["equity"] for i in runs["differential_sharpe"]["info"]])
    names = list(rewards)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not np.allclose(rewards[a], rewards[b]), (a, b)
    # oracles: r − λ r², r − λ × drawdown increase, and the Moody–Saffell recursion
    r = np.array([i["log_return"] for i in runs["log_return"]["info"][1:]])
    np.testing.assert_allclose(rewards["risk_penalised"], r - 50.0 * r * r, rtol=1e-12, atol=1e-15)
    dd = np.array([0.0] + [i["drawdown"] for i in runs["drawdown"]["info"][1:]])
    np.testing.assert_allclose(rewards["drawdown"], r - 2.0 * np.maximum(np.diff(dd), 0.0), rtol=1e-9, atol=1e-12)
    a = b = 0.0
    eta = CFG.dsr_eta
    for k, rk in enumerate(r):
        var = b - a * a
        expected = (b * (rk - a) - 0.5 * a * (rk * rk - b)) / var ** 1.5 if var > 1e-20 else 0.0
        assert rewards["differential_sharpe"][k] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        a, b = a + eta * (rk - a), b + eta * (rk * rk - b)


# --------------------------------------------------------------------------- episodes


@pytest.mark.parametrize("n_pairs", [1, 2])
def test_training_episode_has_episode_bars_steps_then_truncates(get_data, n_pairs):
    env = FxRiskEnv(config=CFG, data=get_data(n_pairs)[1])
    out = rollout(env, [np.zeros(n_pairs, dtype=np.float32)] * 500, seed=1)
    assert len(out["reward"]) == CFG.episode_bars
    assert out["truncated"][-1] is True and not any(out["truncated"][:-1])
    assert not any(out["terminated"])
    assert out["info"][-1]["t"] == out["info"][0]["t"] + CFG.episode_bars


@pytest.mark.parametrize("n_pairs", [1, 2])
def test_evaluation_episode_runs_from_the_first_usable_bar_to_the_end(get_data, n_pairs):
    data = get_data(n_pairs)[1]
    env = FxRiskEnv(config=dataclasses.replace(CFG, episode_bars=None), data=data)
    for seed in (0, 1):
        assert env.reset(seed=seed)[1]["t"] == data.first_step
    out = rollout(env, [np.full(n_pairs, 0.2, dtype=np.float32)] * N_BARS, seed=0)
    assert len(out["reward"]) == data.last_step + 1 - data.first_step
    assert out["truncated"][-1] and not any(out["truncated"][:-1]) and not any(out["terminated"])
    assert out["info"][-1]["t"] == data.n_bars - 1


def test_an_episode_near_the_end_of_data_truncates_at_the_last_bar(data1):
    env = FxRiskEnv(config=CFG, data=data1)
    out = rollout(env, [np.zeros(1, dtype=np.float32)] * 50, start=data1.last_step - 4)
    assert len(out["reward"]) == 5 and out["truncated"][-1]
    with pytest.raises(ValueError, match="outside the usable bars"):
        env.reset(options={"start": data1.first_step - 1})


def crashed(market: MarketData, t: int, factor: float) -> MarketData:
    """Bar t closes ``factor`` lower (its open untouched) and every later bar stays down there."""
    bars = market.bars.copy()
    for s in market.symbols:
        for f in PRICE_FIELDS:
            col = bars.columns.get_loc((s, f))
            bars.iloc[t + 1:, col] *= factor
        for f in ("low", "close"):
            bars.iloc[t, bars.columns.get_loc((s, f))] *= factor
    return MarketData(bars=bars, pairs=market.pairs, source="crash")


@pytest.mark.parametrize("n_pairs", [1, 2])
def test_a_crash_under_full_leverage_stops_the_account_out(get_data, cache, n_pairs):
    market, data = get_data(n_pairs)
    t_crash = data.first_step + 50
    crash_data = prepare_env_data(crashed(market, t_crash, 0.9), CFG, cache=cache)
    config = dataclasses.replace(CFG, var_mode="cost")  # no shield: the agent may take full leverage
    env = FxRiskEnv(config=config, data=crash_data)
    out = rollout(env, [np.ones(n_pairs, dtype=np.float32)] * 100, start=t_crash - 5)
    info = out["info"][-1]
    assert out["terminated"][-1] and not out["truncated"][-1]
    assert info["t"] == t_crash and info["stopped_out"]
    assert np.all(np.atleast_1d(info["units"]) == 0)
    assert info["liquidation_cost"] > 0
    # everything closed and realised: equity is account cash, no quote leg left
    assert info["equity"] == pytest.approx(info["cash"], rel=1e-12)
    assert (account_state(env)["quote_cash"] == 0).all()
    assert env.observation_space.contains(out["obs"][-1])
    assert math.isfinite(out["reward"][-1]) and np.isfinite(out["obs"][-1]).all()


@pytest.mark.parametrize(("symbols", "kind"), [
    (("EURUSD", "USDJPY"), "compiled"),
    (("USDJPY",), "compiled"),
    (("USDJPY",), "oracle"),         # the numpy oracle on one pair
])
def test_a_long_usdjpy_position_earns_the_usdjpy_move_in_a_usd_account(get_data, symbols, kind):
    # Arrange: no trading costs, no financing, so the equity change is the price P&L
    from simulator.broker.execution import ExecutionConfig
    from simulator.broker.financing import FinancingConfig

    n_pairs, j = len(symbols), symbols.index("USDJPY")
    config = dataclasses.replace(
        CFG, episode_bars=None, var_mode="cost",
        execution=ExecutionConfig(commission_per_million=0, slippage_bps=0, impact_coefficient=0),
        financing=FinancingConfig(markup=0.0, rates={"USD": 0.0, "EUR": 0.0, "JPY": 0.0}))
    raw = get_data(n_pairs, 0, 1.0, symbols)[1]
    data = dataclasses.replace(raw, spread=np.zeros_like(raw.spread), differential=np.zeros(n_pairs))
    start, n = data.first_step + 100, 100
    np.testing.assert_allclose(data.conv[:, j], 1.0 / data.close[:, j])  # JPY → USD at 1 / USDJPY
    action = np.zeros(n_pairs, dtype=np.float32)
    action[j] = 0.2
    # Act: long USDJPY at 6× leverage for 100 bars (rebalanced to 6× every bar)
    out = rollout(make_env(kind, config, data), [action] * n, start=start)
    # Assert: the JPY P&L of what was held, bar by bar (fills at the open, marks at the close) ...
    assert len(out["reward"]) == n
    pnl_jpy, units = 0.0, 0.0
    for info in out["info"][1:]:
        t = info["t"]
        now = np.atleast_1d(info["units"])
        held = now[j]
        assert held > 0 and (np.delete(now, j) == 0).all()
        pnl_jpy += units * (data.open[t, j] - data.close[t - 1, j]) + held * (data.close[t, j] - data.open[t, j])
        units = held
        # ... while account cash never moves (no costs, nothing closed: nothing realised)
        assert info["cash"] == config.account.initial_equity
    # ... is what the account earned, converted into USD at the current rate
    t_end = out["info"][-1]["t"]
    pnl_usd = out["info"][-1]["equity"] - config.account.initial_equity
    assert pnl_usd == pytest.approx(pnl_jpy * data.conv[t_end, j], rel=1e-9)
    # and it is about q × (p1 − p0) JPY, worth q × (p1 − p0) / p1 USD (rebalancing moves it a little)
    q = np.atleast_1d(out["info"][1]["units"])[j]
    p0, p1 = data.open[start + 1, j], data.close[start + n, j]
    expected = q * (p1 - p0) / p1
    assert abs(expected) > 1e4
    assert pnl_usd == pytest.approx(expected, rel=0.25)


# --------------------------------------------------------------------------- bad actions


@pytest.mark.parametrize("n_pairs", [1, 2])
@pytest.mark.parametrize(("kind", "match"), [
    ("nan", "NaN"), ("inf", "NaN or inf"), ("above", "outside the action space"),
    ("below", "outside the action space"), ("short", "shape"), ("long", "shape"), ("scalar", "shape"),
])
def test_bad_actions_raise_one_clear_line(get_data, n_pairs, kind, match):
    env = FxRiskEnv(config=CFG, data=get_data(n_pairs)[1])
    env.reset(seed=0)
    ok = np.zeros(n_pairs, dtype=np.float32)
    action = {
        "nan": np.where(np.arange(n_pairs) == 0, np.nan, ok), "inf": np.full(n_pairs, np.inf),
        "above": np.full(n_pairs, 1.5, dtype=np.float32), "below": np.full(n_pairs, -1.5, dtype=np.float32),
        "short": np.zeros(n_pairs - 1 if n_pairs > 1 else 0), "long": np.zeros(n_pairs + 1), "scalar": 0.0,
    }[kind]
    with pytest.raises(ValueError, match=match) as excinfo:
        env.step(action)
    assert "\n" not in str(excinfo.value)
    # the failed call changed nothing: the env still steps from where it was
    _, _, _, _, info = env.step(ok)
    assert info["t"] == env.reset(seed=0)[1]["t"] + 1


@pytest.mark.parametrize("action", [
    np.array([0.25], dtype=np.float32), np.array([0.25]), np.array([1]), np.array([-1], dtype=np.int8),
    np.array([True]), [0.5], (-0.5,), np.array([0.3], dtype=object), np.array([1.0000005]), np.array([-1.0000009]),
    np.array([1.00001]), np.array([-1.5], dtype=np.float32), np.array([np.nan]), np.array([np.inf], dtype=np.float32),
    np.array([[0.1]]), np.zeros(0), np.float32(0.2), 0.2, np.array([0.7])[::-1],
], ids=lambda a: repr(a))
def test_the_fast_check_takes_and_refuses_the_same_actions_as_check_action(data1, action):
    """The one-pair fast check accepts exactly what check_action accepts (the oracle env's check), as the same
    float."""
    outcomes = []
    for env in (FxRiskEnv(config=CFG, data=data1), OracleEnv(data1, CFG)):
        env.reset(seed=1)
        try:
            obs, reward, *_, info = env.step(action)
        except ValueError as err:
            outcomes.append(("error", str(err)))
        else:
            outcomes.append(("ok", obs, reward, float(np.asarray(info["units"]).reshape(-1)[0])))
    assert outcomes[0][0] == outcomes[1][0]
    if outcomes[0][0] == "error":
        assert outcomes[0][1] == outcomes[1][1]
    else:
        np.testing.assert_allclose(outcomes[0][1], outcomes[1][1], rtol=1e-6, atol=1e-7)
        assert outcomes[0][2] == pytest.approx(outcomes[1][2], rel=1e-9, abs=1e-12)
        assert outcomes[0][3] == pytest.approx(outcomes[1][3], rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("action_mode", ["exposure", "sizing"])
def test_fast_path_info_keys_types_and_fresh_observations(get_data, action_mode):
    from envs.fields import INFO_KEYS

    env = FxRiskEnv(config=dataclasses.replace(CFG, action_mode=action_mode), data=get_data(1)[1])
    obs, _ = env.reset(seed=3)
    seen = [obs]
    infos = []
    for a in (0.5, -1.0, 1.0, 0.0):
        obs, reward, terminated, truncated, info = env.step(np.array([a], dtype=np.float32))
        assert obs.dtype == np.float32 and obs.shape == env.observation_space.shape and obs.flags.c_contiguous
        assert type(reward) is float and type(terminated) is bool and type(truncated) is bool
        assert list(info) == list(INFO_KEYS)
        for key, value in info.items():
            expected = int if key == "t" else bool if key in ("var_breach", "clipped", "margin_call",
                                                               "stopped_out") else float
            assert type(value) is expected, key
        assert not any(np.shares_memory(obs, o) for o in seen)
        assert all(info is not i for i in infos)
        seen.append(obs)
        infos.append(info)
    kept = [o.copy() for o in seen]
    env.step(np.array([0.1], dtype=np.float32))
    for a, b in zip(seen, kept):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n_pairs", [1, 2])
def test_sizing_mode_maps_the_symmetric_action_to_a_size_along_the_signal(get_data, n_pairs):
    """Sizing: a in [-1, 1] → size (a + 1) / 2 in [0, 1] × the momentum signal's direction."""
    data = get_data(n_pairs)[1]
    config = dataclasses.replace(CFG, action_mode="sizing", var_mode="cost")  # no shield: the request is kept
    env = FxRiskEnv(config=config, data=data)
    assert env.action_space.shape == (n_pairs,)
    assert (env.action_space.low == -1.0).all() and (env.action_space.high == 1.0).all()
    # a bar where every pair has a direction, with both directions present when there are two pairs
    usable = np.arange(data.first_step, data.last_step + 1)
    ok = (data.signal[usable] != 0).all(axis=1)
    if n_pairs == 2:
        ok &= data.signal[usable, 0] != data.signal[usable, 1]
    t = int(usable[ok][0])
    signal = data.signal[t]
    # the core's mapping
    actions = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    fractions = env.core.target_fraction(np.repeat(actions[:, None], n_pairs, axis=1), np.full(len(actions), t))
    np.testing.assert_allclose(fractions, ((actions + 1) / 2)[:, None] * signal[None, :], rtol=0, atol=1e-15)
    # through the environment: -1 asks for nothing, 0 for half of what +1 asks for, along the signal
    infos = {}
    for a in (-1.0, 0.0, 1.0):
        env.reset(options={"start": t})
        infos[a] = env.step(np.full(n_pairs, a, dtype=np.float32))[4]
    assert infos[-1.0]["var_requested"] == 0
    assert np.all(np.atleast_1d(infos[-1.0]["units"]) == 0)
    assert infos[1.0]["var_requested"] > 0
    assert infos[0.0]["var_requested"] == pytest.approx(0.5 * infos[1.0]["var_requested"], rel=1e-12)
    for a in (0.0, 1.0):
        np.testing.assert_array_equal(np.sign(np.atleast_1d(infos[a]["units"])), signal)
    # outside [-1, 1] is rejected
    env.reset(options={"start": t})
    for bad in (-1.5, 1.5):
        with pytest.raises(ValueError, match="outside the action space"):
            env.step(np.full(n_pairs, bad, dtype=np.float32))


@pytest.mark.parametrize("kind", ["compiled", "oracle"])
@pytest.mark.parametrize(("n_pairs", "shape"), [(1, (2, 1)), (1, (1, 1)), (2, (2, 2)), (2, (1, 2))])
def test_batched_action_shapes_are_rejected_by_a_single_env(get_data, n_pairs, shape, kind):
    env = make_env(kind, CFG, get_data(n_pairs)[1])
    t0 = env.reset(seed=0)[1]["t"]
    with pytest.raises(ValueError, match="action shape") as excinfo:
        env.step(np.zeros(shape, dtype=np.float32))
    assert "\n" not in str(excinfo.value)
    # the failed call changed nothing
    assert env.step(np.zeros(n_pairs, dtype=np.float32))[4]["t"] == t0 + 1


# --------------------------------------------------------------------------- PPO smoke


def test_ppo_trains_on_the_registered_env(data1):
    torch = pytest.importorskip("torch")
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    env = gym.make("FxRisk-v0", config=CFG, data=data1)
    model = PPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=1024)
    assert model.num_timesteps >= 1024
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
