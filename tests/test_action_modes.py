"""Residual and direction actions: something for an agent to learn beyond a constant scale.

* ``residual``: the action is a bounded log-multiplier on a base rule's size (vol-target or
  VaR-budget, as the baselines size them), along the signal; action 0 is the rule itself, so an
  untrained policy starts as the baseline; the range reaches ``size_range`` times the rule;
* ``direction``: the agent sets the sign and the size, up to ``size_range`` VaR budgets.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agents.baselines import make_baseline
from agents.policies import AccountView
from envs.config import EnvConfig
from envs.core import BatchState, FxRiskCore
from envs.data import prepare_env_data
from simulator.synthetic.generator import default_config, generate_market

CFG = EnvConfig(vol_model="ewma", var_window=200, episode_bars=300, var_mode="cost")


@pytest.fixture(scope="module", params=[("EURUSD",), ("EURUSD", "USDJPY", "GBPUSD")], ids=["one", "three"])
def data(request):
    market = generate_market(default_config(request.param), 1200, rng=np.random.default_rng(8)).market
    return prepare_env_data(market, CFG)


def core_and_view(data, config, n=6):
    core = FxRiskCore(data, config)
    state = BatchState.empty(n, data.n_pairs)
    starts = np.linspace(data.first_step, data.last_step - 5, n).astype(np.int64)
    core.reset_accounts(state, np.arange(n), starts)
    return core, state, AccountView(data, core.config, state)


@pytest.mark.parametrize("rule", ["var_budget", "vol_target"])
def test_residual_action_zero_is_the_baseline_rule(data, rule):
    # Arrange: the residual env and the baseline of the same name on the exposure env
    core, state, _ = core_and_view(data, dataclasses.replace(CFG, action_mode="residual", base_rule=rule))
    _, _, view = core_and_view(data, CFG)
    baseline = make_baseline(rule).bind(view)
    # Act
    residual = core.target_fraction(np.zeros((len(state.t), data.n_pairs)), state.t)
    expected = np.clip(baseline.target_fraction(view), -1.0, 1.0)
    # Assert: the same requested exposure, pair by pair
    np.testing.assert_allclose(residual, expected, rtol=1e-12, atol=1e-15)
    assert np.abs(residual).sum() > 0


def test_residual_actions_scale_the_rule_by_up_to_size_range(data):
    config = dataclasses.replace(CFG, action_mode="residual", size_range=4.0, account=dataclasses.replace(
        CFG.account, max_leverage=1000.0))  # no leverage cap in the way of the multiplier
    core, state, _ = core_and_view(data, config)
    n, p = len(state.t), data.n_pairs
    base = core.target_fraction(np.zeros((n, p)), state.t)
    for a, factor in ((1.0, 4.0), (-1.0, 0.25), (0.5, 2.0)):
        np.testing.assert_allclose(core.target_fraction(np.full((n, p), a), state.t), base * factor, rtol=1e-12)


def test_direction_actions_set_sign_and_size_in_var_budgets(data):
    config = dataclasses.replace(CFG, action_mode="direction", size_range=3.0)
    core, state, _ = core_and_view(data, config)
    n, p = len(state.t), data.n_pairs
    t = state.t
    lev = core.config.account.max_leverage
    for a in (1.0, -1.0, 0.5):
        got = core.target_fraction(np.full((n, p), a), t)
        side = data.var_long[t] if a > 0 else data.var_short[t]
        budget = np.minimum(CFG.var_limit / (p * side * lev), 1.0)
        np.testing.assert_allclose(got, np.sign(a) * np.minimum(abs(a) * 3.0 * budget, 1.0), rtol=1e-12)
    assert (core.target_fraction(np.zeros((n, p)), t) == 0).all()


def test_the_shield_binds_at_the_top_of_the_residual_range(data):
    # Arrange: the VaR-budget rule times four asks for about four times the limit
    config = dataclasses.replace(CFG, action_mode="residual", var_mode="shield", size_range=4.0)
    core, state, _ = core_and_view(data, config)
    # Act
    _, _, _, info = core.step(state, np.ones((len(state.t), data.n_pairs), dtype=np.float32))
    # Assert: the request was over the limit and the shield scaled it down to it
    assert (info["var_requested"] > info["var_limit"]).all() and info["clipped"].all()
    assert (info["var"] <= info["var_limit"] * (1 + 1e-9)).all()


@pytest.mark.parametrize(("key", "value"), [("base_rule", "kelly"), ("size_range", 1.0), ("action_mode", "both")])
def test_bad_action_settings_are_one_line_naming_the_key(key, value):
    with pytest.raises(ValueError, match=key) as err:
        EnvConfig(**{key: value})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("mode", ["residual", "direction"])
def test_a_baselines_target_maps_to_the_action_that_asks_for_it(data, mode):
    """fraction_to_action inverts the step's reading of an action (where the mode can express the target)."""
    from agents.policies import fraction_to_action

    config = dataclasses.replace(CFG, action_mode=mode, base_rule="vol_target")
    core, state, view = core_and_view(data, config)
    _, _, exposure_view = core_and_view(data, CFG)
    target = 0.7 * make_baseline("var_budget").bind(exposure_view).target_fraction(exposure_view)
    action = fraction_to_action(target, view)
    assert action.dtype == np.float32 and (np.abs(action) <= 1).all()
    np.testing.assert_allclose(core.target_fraction(action.astype(np.float64), state.t), target, rtol=2e-6,
                               atol=1e-9)


def test_the_mean_variance_reward_subtracts_half_kappa_times_the_forecast_variance(data):
    # Arrange: the same steps under log_return and mean_variance rewards
    base = dataclasses.replace(CFG, action_mode="exposure", risk_aversion=3.0)
    out = {}
    for reward in ("log_return", "mean_variance"):
        core, state, _ = core_and_view(data, dataclasses.replace(base, reward=reward))
        t, eq0 = state.t.copy(), state.equity.copy()
        r, _, _, info = core.step(state, np.full((len(t), data.n_pairs), 0.3))
        out[reward] = (r, info, t, eq0, state.units.copy())
    r_log, info, t, eq0, units = out["log_return"]
    r_mv = out["mean_variance"][0]
    # Assert: w' S w from the forecasts of bar t and the position held
    w = units * data.close[t] * data.conv[t] / eq0[:, None] * data.sigma[t]
    corr = np.eye(data.n_pairs)[None] if data.corr is None else data.corr[t]
    variance = np.einsum("na,nab,nb->n", w, corr, w)
    np.testing.assert_allclose(r_mv, r_log - 0.5 * 3.0 * variance, rtol=1e-10, atol=1e-15)
    assert (variance > 0).all()


def test_the_env_arrays_do_not_depend_on_the_action_mode(data) -> None:
    # An agent's env and its baselines' exposure twin share one preparation in the stress grid
    # (envs.data.data_config): that is right only while no action mode changes the arrays.
    from dataclasses import fields

    from envs.config import ACTION_MODES
    from envs.data import data_config

    market = generate_market(default_config(data.symbols), 1200, rng=np.random.default_rng(8)).market
    reference = prepare_env_data(market, CFG)
    for mode in ACTION_MODES:
        config = dataclasses.replace(CFG, action_mode=mode, size_unit="var_budget")
        other = prepare_env_data(market, config)
        for f in fields(reference):
            a, b = getattr(reference, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray):
                assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), f.name
            else:
                assert a == b, f.name
        assert data_config(config) == data_config(dataclasses.replace(CFG, size_unit="var_budget"))
