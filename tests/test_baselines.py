"""Rule-based sizing baselines: interface, sizing maths, causality, the ATR stop, the registry."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents.baselines import BASELINES, AtrStop, RuleBasedPolicy, make_baseline
from agents.policies import AccountView, Policy
from envs.config import EnvConfig
from envs.core import BatchState, FxRiskCore, var_budget_fraction
from envs.data import EnvData, prepare_env_data
from forecasters.cache import ForecastCache
from simulator.synthetic.generator import default_config, generate_market

CFG = EnvConfig(vol_model="ewma", var_window=200)
SIZING = replace(CFG, action_mode="sizing")
NAMES = tuple(BASELINES)
# Parameters that make every rule trade on a short synthetic sample (kelly's edge estimate
# reacts within tens of bars, so it is sometimes positive on a random walk).
ACTIVE = {"fractional_kelly": dict(halflife=20.0, min_periods=10)}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> ForecastCache:
    return ForecastCache(tmp_path_factory.mktemp("forecasts"))


@pytest.fixture(scope="module")
def one_pair(cache: ForecastCache) -> EnvData:
    market = generate_market(default_config(("EURUSD",)), 1500, rng=np.random.default_rng(0)).market
    return prepare_env_data(market, CFG, cache=cache)


@pytest.fixture(scope="module")
def two_pairs(cache: ForecastCache) -> EnvData:
    config = default_config(("EURUSD", "USDJPY"), correlation=[[1, 0.3], [0.3, 1]])
    market = generate_market(config, 1500, rng=np.random.default_rng(1)).market
    return prepare_env_data(market, CFG, cache=cache)


def start(data: EnvData, config: EnvConfig, starts: np.ndarray) -> tuple[FxRiskCore, BatchState, AccountView]:
    core = FxRiskCore(data, config)
    state = BatchState.empty(len(starts), data.n_pairs)
    core.reset_accounts(state, np.arange(len(starts)), np.asarray(starts, dtype=np.int64))
    return core, state, AccountView(data, config, state)


def rollout(policy: RuleBasedPolicy, data: EnvData, config: EnvConfig, starts: np.ndarray,
            n_steps: int) -> tuple[list[np.ndarray], list[dict]]:
    """Actions decided at bars starts..starts+n_steps-1 and the infos of the steps taken on them."""
    core, state, view = start(data, config, starts)
    policy.bind(view)
    actions, infos = [], []
    for _ in range(n_steps):
        action, _ = policy.predict(core.observe(state))
        actions.append(action)
        infos.append(core.step(state, action)[3])
    return actions, infos


def baseline(name: str) -> RuleBasedPolicy:
    return make_baseline(name, **ACTIVE.get(name, {}))


# -- interface -------------------------------------------------------------------------------
@pytest.mark.parametrize("n_accounts", [1, 3])
@pytest.mark.parametrize("market", ["one_pair", "two_pairs"])
@pytest.mark.parametrize("name", NAMES)
def test_actions_are_finite_bounded_float32(name: str, market: str, n_accounts: int,
                                            request: pytest.FixtureRequest) -> None:
    # Arrange
    data = request.getfixturevalue(market)
    starts = data.first_step + 11 * np.arange(n_accounts)

    # Act
    actions, _ = rollout(baseline(name), data, CFG, starts, 150)

    # Assert
    stacked = np.stack(actions)
    assert stacked.shape == (150, n_accounts, data.n_pairs)
    assert stacked.dtype == np.float32
    assert np.isfinite(stacked).all()
    assert (np.abs(stacked) <= 1.0).all()


@pytest.mark.parametrize("name", NAMES)
def test_one_observation_gives_one_action_vector(name: str, two_pairs: EnvData) -> None:
    # Arrange
    core, state, view = start(two_pairs, CFG, np.array([two_pairs.first_step + 5]))
    policy = baseline(name).bind(view)

    # Act
    action, st = policy.predict(core.observe(state)[0])

    # Assert
    assert isinstance(policy, Policy)
    assert action.shape == (two_pairs.n_pairs,) and action.dtype == np.float32
    assert st is None


@pytest.mark.parametrize("name", NAMES)
def test_every_directional_baseline_follows_the_signal(name: str, two_pairs: EnvData) -> None:
    # Arrange / Act
    actions, _ = rollout(baseline(name), two_pairs, CFG, np.array([two_pairs.first_step]), 300)

    # Assert: a position is never against the env's momentum signal.
    signal = two_pairs.signal[two_pairs.first_step: two_pairs.first_step + 300]
    a = np.stack(actions)[:, 0]
    assert (np.sign(a) * signal >= 0).all()
    if name != "flat":
        assert (a != 0).any()


# -- sizing maths ------------------------------------------------------------------------------
def test_flat_never_trades(one_pair: EnvData) -> None:
    # Act
    actions, infos = rollout(make_baseline("flat"), one_pair, CFG, np.array([one_pair.first_step] * 2), 200)

    # Assert
    assert all((a == 0).all() for a in actions)
    assert all((i["turnover"] == 0).all() and (i["costs"] == 0).all() for i in infos)
    assert all((i["units"] == 0).all() for i in infos)


@pytest.mark.parametrize("budget", [1.0, 0.5])
def test_var_budget_requests_its_budget_of_the_limit(budget: float, one_pair: EnvData) -> None:
    # Act
    _, infos = rollout(make_baseline("var_budget", budget=budget), one_pair, CFG,
                       np.array([one_pair.first_step]), 300)

    # Assert: before the shield, the position's VaR is budget × limit wherever the signal trades.
    signal = one_pair.signal[one_pair.first_step: one_pair.first_step + 300, 0]
    ratio = np.array([i["var_requested"][0] / i["var_limit"][0] for i in infos])
    assert (signal != 0).sum() > 200
    np.testing.assert_allclose(ratio[signal != 0], budget, rtol=1e-5)
    np.testing.assert_array_equal(ratio[signal == 0], 0.0)


def test_var_budget_splits_the_budget_across_traded_pairs(two_pairs: EnvData) -> None:
    # Arrange
    starts = two_pairs.first_step + np.arange(200)
    _, state, view = start(two_pairs, CFG, starts)

    # Act
    fraction = make_baseline("var_budget", budget=1.0).bind(view).target_fraction(view)

    # Assert: per-pair VaRs (no diversification) add up to the limit.
    signal = two_pairs.signal[starts]
    side = np.where(signal > 0, two_pairs.var_long[starts], two_pairs.var_short[starts])
    exposure = fraction * CFG.account.max_leverage * state.equity[:, None]
    summed = (np.abs(exposure) * side).sum(axis=1)
    trading = (signal != 0).any(axis=1)
    np.testing.assert_allclose(summed[trading], CFG.var_limit * state.equity[trading], rtol=1e-12)


def test_vol_target_leverage_is_inverse_to_sigma(one_pair: EnvData) -> None:
    # Arrange
    starts = one_pair.first_step + np.arange(300)
    doubled = replace(one_pair, sigma=one_pair.sigma * 2.0)
    _, _, view = start(one_pair, CFG, starts)
    _, _, view2 = start(doubled, CFG, starts)
    policy, policy2 = make_baseline("vol_target").bind(view), make_baseline("vol_target").bind(view2)

    # Act
    f, f2 = policy.target_fraction(view), policy2.target_fraction(view2)

    # Assert
    trading = f != 0
    assert trading.sum() > 200
    np.testing.assert_allclose(f2[trading], 0.5 * f[trading], rtol=1e-12)
    assert policy.bars_per_year == pytest.approx(260 * 24)  # hourly bars
    annual_vol = np.abs(f) * CFG.account.max_leverage * one_pair.sigma[starts] * np.sqrt(policy.bars_per_year)
    np.testing.assert_allclose(annual_vol[trading], 0.10, rtol=1e-12)


def test_vol_target_caps_leverage(one_pair: EnvData) -> None:
    # Arrange
    starts = one_pair.first_step + np.arange(100)
    _, _, view = start(one_pair, CFG, starts)

    # Act
    f = make_baseline("vol_target", target_vol=5.0, max_leverage=4.0).bind(view).target_fraction(view)

    # Assert
    np.testing.assert_allclose(np.abs(f[f != 0]), 4.0 / CFG.account.max_leverage)


def test_fixed_fraction_and_raw_signal_sizes(two_pairs: EnvData) -> None:
    # Arrange
    starts = two_pairs.first_step + np.arange(100)
    _, _, view = start(two_pairs, CFG, starts)
    signal = two_pairs.signal[starts]

    # Act
    fixed = make_baseline("fixed_fraction", leverage=6.0).bind(view).target_fraction(view)
    raw = make_baseline("raw_signal").bind(view).target_fraction(view)

    # Assert
    np.testing.assert_allclose(fixed, signal * 6.0 / CFG.account.max_leverage)
    np.testing.assert_array_equal(raw, signal)


@pytest.mark.parametrize("name", NAMES)
def test_sizing_mode_requests_the_same_exposure(name: str, two_pairs: EnvData) -> None:
    # Arrange: one set of accounts, seen through an exposure-mode and a sizing-mode env.
    starts = two_pairs.first_step + np.array([0, 17])
    core_e, state, view_e = start(two_pairs, CFG, starts)
    core_s = FxRiskCore(two_pairs, SIZING)
    view_s = AccountView(two_pairs, SIZING, state)
    policy_e, policy_s = baseline(name).bind(view_e), baseline(name).bind(view_s)

    for _ in range(150):
        # Act
        a_e, _ = policy_e.predict(core_e.observe(state))
        a_s, _ = policy_s.predict(core_s.observe(state))

        # Assert
        np.testing.assert_allclose(core_s.target_fraction(a_s, state.t), core_e.target_fraction(a_e, state.t),
                                   atol=1e-6)
        core_e.step(state, a_e)


@pytest.mark.parametrize("name", NAMES)
def test_var_budget_size_unit_requests_the_same_exposure_up_to_one_budget(name: str, two_pairs: EnvData) -> None:
    # Arrange: size 1 = the position whose own VaR is half the limit (two pairs).
    exposure = replace(CFG, var_limit=0.02)
    sizing = replace(exposure, action_mode="sizing", size_unit="var_budget")
    starts = two_pairs.first_step + np.array([0, 17])
    core_e, state, view_e = start(two_pairs, exposure, starts)
    core_s = FxRiskCore(two_pairs, sizing)
    policy_e, policy_s = baseline(name).bind(view_e), baseline(name).bind(AccountView(two_pairs, sizing, state))
    for _ in range(150):
        # Act
        a_e, _ = policy_e.predict(core_e.observe(state))
        a_s, _ = policy_s.predict(core_s.observe(state))

        # Assert: the same request where it fits in one budget unit, the unit itself beyond
        want = core_e.target_fraction(a_e, state.t)
        t = state.t
        unit = var_budget_fraction(two_pairs.signal[t], two_pairs.var_long[t], two_pairs.var_short[t],
                                   sizing.var_limit, sizing.account.max_leverage)
        np.testing.assert_allclose(core_s.target_fraction(a_s, state.t), np.sign(want) * np.minimum(np.abs(want), unit),
                                   atol=1e-6)
        core_e.step(state, a_e)


# -- causality ---------------------------------------------------------------------------------
def garbage_after(data: EnvData, t: int, rng: np.random.Generator) -> EnvData:
    """A copy whose rows after ``t`` are replaced by nonsense (prices, forecasts, VaR, signal, clock)."""
    def scramble(a: np.ndarray, low: float, high: float) -> np.ndarray:
        out = a.copy()
        out[t + 1:] = a[t + 1:] * rng.uniform(low, high, size=a[t + 1:].shape)
        return out

    signal = data.signal.copy()
    signal[t + 1:] = rng.choice([-1.0, 0.0, 1.0], size=signal[t + 1:].shape)
    index = data.index.copy()
    index[t + 1:] = index[t] + np.cumsum(rng.integers(1, 10**13, size=index[t + 1:].shape))
    corr = None if data.corr is None else data.corr.copy()
    if corr is not None:
        corr[t + 1:] = np.eye(data.n_pairs) * 0.5 + 0.5 * rng.uniform(-1, 1)
    return replace(data, open=scramble(data.open, 0.5, 2.0), close=scramble(data.close, 0.5, 2.0),
                   high=scramble(data.high, 2.0, 3.0), low=scramble(data.low, 0.1, 0.5),
                   sigma=scramble(data.sigma, 0.1, 50.0), var_long=scramble(data.var_long, 0.1, 50.0),
                   var_short=scramble(data.var_short, 0.1, 50.0), signal=signal, index=index, corr=corr)


@pytest.mark.parametrize("name", NAMES)
def test_changing_the_future_leaves_past_actions_unchanged(name: str, two_pairs: EnvData) -> None:
    # Arrange
    first = two_pairs.first_step
    t_cut = first + 200
    future = garbage_after(two_pairs, t_cut, np.random.default_rng(7))
    starts = np.array([first, first + 50])
    n_steps = t_cut - first + 1 - 50  # the second account reaches t_cut on its last decision

    # Act
    past, _ = rollout(baseline(name), two_pairs, CFG, starts, n_steps)
    changed, _ = rollout(baseline(name), future, CFG, starts, n_steps)

    # Assert
    for a, b in zip(past, changed):
        np.testing.assert_array_equal(a, b)
    if name != "flat":
        assert any((a != 0).any() for a in past)


# -- the ATR stop ------------------------------------------------------------------------------
def stop_scenario(data: EnvData) -> tuple[EnvData, dict[str, int]]:
    """Flat, then a long entry, a 3 % fall through the stop, more long signal, then a flip short."""
    t0 = data.first_step + 20
    bars = dict(flat=t0 - 3, entry=t0, crash=t0 + 5, flip=t0 + 12, end=t0 + 18)
    close, signal = data.close.copy(), data.signal.copy()
    p = close[t0 - 1, 0]
    close[t0: bars["crash"], 0] = p
    close[bars["crash"]:, 0] = 0.97 * p
    signal[bars["flat"]: t0, 0] = 0.0
    signal[t0: bars["flip"], 0] = 1.0
    signal[bars["flip"]:, 0] = -1.0
    open_ = data.open.copy()
    open_[t0:] = close[t0 - 1:-1]
    high, low = data.high.copy(), data.low.copy()
    high[t0:] = np.maximum(open_[t0:], close[t0:]) * 1.0005
    low[t0:] = np.minimum(open_[t0:], close[t0:]) * 0.9995
    return replace(data, open=open_, close=close, high=high, low=low, signal=signal), bars


def test_atr_stop_exits_at_the_stop_and_waits_for_a_flip(one_pair: EnvData) -> None:
    # Arrange
    data, bars = stop_scenario(one_pair)
    policy = make_baseline("atr_stop")
    n_steps = bars["end"] - bars["flat"]

    # Act
    actions, infos = rollout(policy, data, CFG, np.array([bars["flat"]]), n_steps)

    # Assert: action decided at bar b is actions[b - flat]; the position it buys is infos[...]["units"].
    a = np.array([x[0, 0] for x in actions])
    units = np.array([i["units"][0, 0] for i in infos])
    i = {k: v - bars["flat"] for k, v in bars.items()}
    assert (a[: i["entry"]] == 0).all()
    assert (a[i["entry"]: i["crash"]] > 0).all() and (units[i["entry"]: i["crash"]] > 0).all()
    assert (a[i["crash"]: i["flip"]] == 0).all() and (units[i["crash"]: i["flip"]] == 0).all()
    assert (a[i["flip"]:] < 0).all() and (units[i["flip"]:] < 0).all()
    # The size risks risk_per_trade of equity over the stop distance, fixed at entry.
    atr = policy.atr[bars["entry"], 0]
    expected = 0.005 / (2.0 * atr / data.close[bars["entry"], 0]) / CFG.account.max_leverage
    np.testing.assert_allclose(a[i["entry"]: i["crash"]], expected, rtol=1e-6)
    assert policy.stop_price[0, 0] == pytest.approx(data.close[bars["flip"], 0] + 2.0 * policy.atr[bars["flip"], 0])


def test_atr_stop_lock_clears_on_episode_start(one_pair: EnvData) -> None:
    # Arrange: run into the stop, then restart the account's rule state at a stopped bar.
    data, bars = stop_scenario(one_pair)
    core, state, view = start(data, CFG, np.array([bars["flat"]]))
    policy = make_baseline("atr_stop").bind(view)
    for _ in range(bars["crash"] - bars["flat"] + 1):
        action, _ = policy.predict(core.observe(state))
        core.step(state, action)
    locked, _ = policy.predict(core.observe(state))

    # Act
    restarted, _ = policy.predict(core.observe(state), episode_start=np.array([True]))

    # Assert
    assert locked[0, 0] == 0
    assert restarted[0, 0] > 0


def test_atr_stop_needs_highs_and_lows(one_pair: EnvData) -> None:
    # Arrange
    _, _, view = start(replace(one_pair, high=None, low=None), CFG, np.array([one_pair.first_step]))

    # Act / Assert
    with pytest.raises(ValueError, match="highs and lows"):
        AtrStop().bind(view)


# -- fractional Kelly --------------------------------------------------------------------------
def with_edge(data: EnvData, sign: float) -> EnvData:
    """A signal that knows the next bar's direction (``sign`` +1) or always gets it wrong (-1)."""
    signal = np.zeros_like(data.signal)
    signal[:-1] = sign * np.sign(np.diff(np.log(data.close), axis=0))
    return replace(data, signal=signal)


@pytest.mark.parametrize("halflife", [50.0, None])
@pytest.mark.parametrize("signal", ["negative_edge", "no_signal"])
def test_kelly_without_edge_stays_flat(signal: str, halflife: float | None, one_pair: EnvData) -> None:
    # Arrange
    data = with_edge(one_pair, -1.0) if signal == "negative_edge" else replace(
        one_pair, signal=np.zeros_like(one_pair.signal))
    policy = make_baseline("fractional_kelly", halflife=halflife, min_periods=10)

    # Act
    actions, infos = rollout(policy, data, CFG, np.array([data.first_step]), 300)

    # Assert
    assert all((a == 0).all() for a in actions)
    assert all((i["turnover"] == 0).all() for i in infos)


def test_kelly_with_edge_trades_capped(one_pair: EnvData) -> None:
    # Arrange
    data = with_edge(one_pair, 1.0)
    policy = make_baseline("fractional_kelly", max_leverage=5.0)

    # Act
    actions, _ = rollout(policy, data, CFG, np.array([data.first_step]), 300)

    # Assert
    a = np.abs(np.stack(actions))
    assert (a > 0).mean() > 0.9
    assert a.max() <= 5.0 / CFG.account.max_leverage + 1e-7


# -- registry and errors -------------------------------------------------------------------------
def test_registry_lists_every_baseline() -> None:
    assert set(BASELINES) == {"flat", "fixed_fraction", "vol_target", "var_budget", "fractional_kelly",
                              "atr_stop", "raw_signal"}
    assert all(cls.name == name for name, cls in BASELINES.items())


@pytest.mark.parametrize(("name", "params", "message"), [
    ("momentum", {}, r"unknown baseline 'momentum'; available: flat, fixed_fraction"),
    ("vol_target", {"target_volatility": 0.1}, r"unknown parameter\(s\) target_volatility .*target_vol"),
    ("flat", {"leverage": 1.0}, r"accepts: no parameters"),
    ("vol_target", {"target_vol": -0.1}, r"target_vol must be > 0"),
    ("fractional_kelly", {"halflife": "long"}, r"halflife must be a number"),
    ("fractional_kelly", {"min_periods": 0}, r"min_periods must be an integer >= 1"),
    ("atr_stop", {"risk_per_trade": 1.5}, r"risk_per_trade must be < 1"),
    ("var_budget", {"budget": float("nan")}, r"budget must be finite"),
])
def test_bad_names_and_params_give_one_clear_line(name: str, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        make_baseline(name, **params)
    assert "\n" not in str(err.value)


def test_predict_unbound_or_mismatched_is_an_error(one_pair: EnvData) -> None:
    # Arrange
    core, state, view = start(one_pair, CFG, np.array([one_pair.first_step] * 2))
    policy = make_baseline("vol_target")

    # Act / Assert
    with pytest.raises(RuntimeError, match="not bound"):
        policy.predict(core.observe(state))
    policy.bind(view)
    with pytest.raises(ValueError, match="bound view has 2"):
        policy.predict(core.observe(state)[:1])


def test_no_two_baselines_act_alike_on_every_bar_under_the_default_env() -> None:
    # Arrange: the default env (EnvConfig()'s modes, shield and limit) on the bundled sample
    import itertools

    from agents.evaluation.rollout import evaluation_config, run_policy
    from simulator.data.sample import load_sample

    config = evaluation_config(EnvConfig(vol_model="ewma"))
    data = prepare_env_data(load_sample(), config)
    # Act: every baseline over the first 1,500 bars of the span
    held = {}
    for name in sorted(BASELINES):
        records = run_policy(make_baseline(name), data, config, max_steps=1500).records
        held[name] = records[[c for c in records.columns if c.startswith("exposure")]].to_numpy()
    # Assert: each pair of rules holds different positions on some bar
    for a, b in itertools.combinations(held, 2):
        assert held[a].shape != held[b].shape or not np.allclose(held[a], held[b], rtol=1e-3), (a, b)


def test_baselines_act_in_the_exposure_twin_of_an_agents_env() -> None:
    # Arrange: the default agent's env (sizing, sizes in VaR budgets) and a baseline spec of a stress plan
    from agents.baselines import baseline_env
    from agents.evaluation.stress import PolicySpec
    from agents.hyperparams import DEFAULT_CONFIG, TrainConfig

    agent_env = TrainConfig.from_yaml(DEFAULT_CONFIG).env
    assert agent_env.action_mode == "sizing" and agent_env.size_unit == "var_budget"
    twin = PolicySpec(name="raw_signal", kind="baseline", baseline="raw_signal").env_config(agent_env)
    # Assert: exposure actions, everything else (costs, band, limit, VaR mode, reward) the agent's
    assert twin.action_mode == "exposure"
    assert replace(twin, action_mode=agent_env.action_mode) == agent_env
    assert baseline_env(twin) is twin
    # Act: raw_signal where the limit is a cost, not a shield (the constrained agent's env): in the
    # agent's action space (sizes in VaR budgets) the rule could not ask for more than the budget
    from agents.evaluation.rollout import evaluation_config, run_policy
    from simulator.data.sample import load_sample

    utilisation = {}
    for env in (agent_env, twin):
        env = evaluation_config(replace(env, vol_model="ewma", var_window=200, var_mode="cost"))
        data = prepare_env_data(load_sample(), env)
        records = run_policy(make_baseline("raw_signal"), data, env, max_steps=800).records
        utilisation[env.action_mode] = records["var_utilisation"].to_numpy()
    # Assert: in its twin the rule holds the signal at full size, far over the limit
    assert np.nanmax(utilisation["sizing"]) <= 1.0 + 1e-6
    assert np.nanmedian(utilisation["exposure"]) > 2.0


def test_the_residual_base_rule_is_the_var_budget_baseline_with_its_default_budget() -> None:
    from agents.baselines import VarBudgetConfig

    assert EnvConfig().base_var_budget == VarBudgetConfig().budget
