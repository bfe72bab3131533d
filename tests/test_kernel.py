"""The compiled core (numba) against the numpy reference core: the same trajectories.

LLVM may contract ``a * b + c`` into one fused multiply-add, so floats agree to the last
bits (relative 1e-12), not bit for bit; flags, counts and integer state must match exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.core import ACCOUNT_BOUND, UTILISATION_CAP, BatchState, FxRiskCore
from envs.data import prepare_env_data
from simulator.account import AccountConfig
from simulator.synthetic import default_config, generate_market

CONFIGS = {
    "shield-exposure": dict(),
    "penalty-sizing-dsr": dict(action_mode="sizing", var_mode="penalty", reward="differential_sharpe"),
    "cost-sizing-var-budget": dict(action_mode="sizing", size_unit="var_budget", var_mode="cost", var_limit=0.004),
    "cost-drawdown-stopouts": dict(var_mode="cost", reward="risk_penalised", risk_penalty="drawdown",
                                   var_limit=0.002,
                                   account=AccountConfig(stop_out_level=0.97, margin_call_level=0.99)),
    "variance-penalty-illiquid": dict(reward="risk_penalised", var_limit=0.003, default_liquidity=2e6),
}


@pytest.fixture(scope="module", params=[("EURUSD",), ("EURUSD", "USDJPY")], ids=["one-pair", "two-pairs"])
def market(request):
    corr = None if len(request.param) == 1 else [[1, 0.3], [0.3, 1]]
    return generate_market(default_config(request.param, correlation=corr), 1_800,
                           rng=np.random.default_rng(0)).market


def assert_same(x, y, err_msg: str = "") -> None:
    x, y = np.asarray(x), np.asarray(y)
    if np.issubdtype(x.dtype, np.floating):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15, err_msg=err_msg)
    else:
        np.testing.assert_array_equal(x, y, err_msg=err_msg)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_numba_core_matches_numpy_core(market, name) -> None:
    kwargs = dict(CONFIGS[name])
    if name == "variance-penalty-illiquid":
        market = market.select(list(market.symbols))
        bars = market.bars.drop(columns=[c for c in market.bars.columns if c[1] == "liquidity"])
        from simulator.market import MarketData

        market = MarketData(bars=bars, pairs=market.pairs, source="no liquidity")
    config = EnvConfig(vol_model="ewma", var_window=200, episode_bars=150, **kwargs)
    data = prepare_env_data(market, config)
    ref, fast = FxRiskCore(data, config, backend="numpy"), FxRiskCore(data, config, backend="numba")
    n = 12
    s_ref, s_fast = BatchState.empty(n, data.n_pairs), BatchState.empty(n, data.n_pairs)
    rng = np.random.default_rng(1)
    starts = rng.integers(data.first_step, data.last_step - 200, n)
    ref.reset_accounts(s_ref, np.arange(n), starts)
    fast.reset_accounts(s_fast, np.arange(n), starts)
    assert_same(ref.observe(s_ref), fast.observe(s_fast))
    resets = 0
    for _ in range(250):
        action = rng.uniform(-1, 1, (n, data.n_pairs))
        a, b = ref.step(s_ref, action), fast.step(s_fast, action)
        for x, y in zip(a[:3], b[:3], strict=True):
            assert_same(x, y)
        assert a[3].keys() == b[3].keys()
        for key in a[3]:
            assert_same(a[3][key], b[3][key], err_msg=key)
        assert_same(ref.observe(s_ref), fast.observe(s_fast))
        done = np.flatnonzero(a[1] | a[2])
        if done.size:
            resets += done.size
            new = rng.integers(data.first_step, data.last_step - 200, done.size)
            ref.reset_accounts(s_ref, done, new)
            fast.reset_accounts(s_fast, done, new)
    assert resets > 0


def test_unknown_backend_is_rejected() -> None:
    market = generate_market(default_config(("EURUSD",)), 900, rng=np.random.default_rng(0)).market
    config = EnvConfig(vol_model="ewma", var_window=100)
    with pytest.raises(ValueError, match="backend"):
        FxRiskCore(prepare_env_data(market, config), config, backend="cuda")


def assert_identical(x, y, err_msg: str = "") -> None:
    """Bit for bit: values (NaN where NaN), dtype, shape and the sign of every zero."""
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype and x.shape == y.shape, err_msg
    np.testing.assert_array_equal(x, y, err_msg=err_msg)
    if np.issubdtype(x.dtype, np.floating):
        np.testing.assert_array_equal(np.signbit(x), np.signbit(y), err_msg=f"{err_msg} (sign of zero)")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_one_pair_kernel_matches_the_generic_kernel_bit_for_bit(name) -> None:
    """The one-pair kernel (the single env's scalar step, batched) against the generic compiled kernel."""
    market = generate_market(default_config(("EURUSD",)), 1_800, rng=np.random.default_rng(3)).market
    kwargs = dict(CONFIGS[name])
    if name == "variance-penalty-illiquid":
        kwargs["default_liquidity"] = 2e4
        from simulator.market import MarketData

        market = MarketData(bars=market.bars.drop(columns=[c for c in market.bars.columns if c[1] == "liquidity"]),
                            pairs=market.pairs, source="no liquidity")
    config = EnvConfig(vol_model="ewma", var_window=200, episode_bars=150, **kwargs)
    data = prepare_env_data(market, config)
    pair, generic = FxRiskCore(data, config), FxRiskCore(data, config, pair_kernel=False)
    assert pair.pair_kernel and not generic.pair_kernel
    n = 16
    s_pair, s_gen = BatchState.empty(n, 1), BatchState.empty(n, 1)
    rng = np.random.default_rng(2)
    starts = rng.integers(data.first_step, data.last_step - 200, n)
    pair.reset_accounts(s_pair, np.arange(n), starts)
    generic.reset_accounts(s_gen, np.arange(n), starts)
    assert_identical(pair.observe(s_pair), generic.observe(s_gen))
    resets = 0
    for step in range(250):
        action = rng.uniform(-1, 1, (n, 1))
        action[step % n] = 1.0
        if step % 2:  # the fused step + observe, float32 actions as a policy gives them
            action = action.astype(np.float32)
            obs_a, *a = pair.step_observe(s_pair, action)
            obs_b, *b = generic.step_observe(s_gen, action)
            assert_identical(obs_a, obs_b, "obs")
        else:
            a, b = pair.step(s_pair, action), generic.step(s_gen, action)
        for x, y in zip(a[:3], b[:3], strict=True):
            assert_identical(x, y)
        assert list(a[3]) == list(b[3])  # the same keys in the same order
        for key in a[3]:
            assert_identical(a[3][key], b[3][key], err_msg=key)
        assert_identical(pair.observe(s_pair), generic.observe(s_gen))
        for field in ("t", "end", "cash", "units", "avg_price", "quote_cash", "peak", "equity", "dsr_a", "dsr_b",
                      "last_scale"):
            assert_identical(getattr(s_pair, field), getattr(s_gen, field), err_msg=field)
        done = np.flatnonzero(a[1] | a[2])
        if done.size:
            resets += done.size
            new = rng.integers(data.first_step, data.last_step - 200, done.size)
            pair.reset_accounts(s_pair, done, new)
            generic.reset_accounts(s_gen, done, new)
    assert resets > 0


@pytest.mark.parametrize(("symbols", "kernel"), [
    (("EURUSD",), "numpy"), (("EURUSD",), "numba"), (("EURUSD",), "numba-pair"),
    (("EURUSD", "USDJPY"), "numpy"), (("EURUSD", "USDJPY"), "numba"),
])
def test_step_observe_with_skipped_accounts_and_action_bounds(symbols, kernel) -> None:
    """``step_observe``: = step on the accounts not skipped (skipped ones report 0 and their current
    t and equity), then observe; an action out of bounds changes nothing and returns None."""
    corr = None if len(symbols) == 1 else [[1, 0.3], [0.3, 1]]
    market = generate_market(default_config(symbols, correlation=corr), 1_800, rng=np.random.default_rng(0)).market
    config = EnvConfig(vol_model="ewma", var_window=200, episode_bars=150, var_mode="cost",
                       account=AccountConfig(stop_out_level=0.97, margin_call_level=0.99))
    data = prepare_env_data(market, config)
    backend = "numpy" if kernel == "numpy" else "numba"
    core = FxRiskCore(data, config, backend=backend, pair_kernel=kernel == "numba-pair")
    ref = FxRiskCore(data, config, backend="numpy")
    n, p = 6, data.n_pairs
    state, state_ref = BatchState.empty(n, p), BatchState.empty(n, p)
    rng = np.random.default_rng(4)
    starts = rng.integers(data.first_step, data.last_step - 200, n)
    core.reset_accounts(state, np.arange(n), starts)
    ref.reset_accounts(state_ref, np.arange(n), starts)
    fields = ("t", "end", "cash", "units", "avg_price", "quote_cash", "peak", "equity", "dsr_a", "dsr_b", "last_scale")
    for step in range(60):
        action = rng.uniform(-1, 1, (n, p))
        skip = rng.random(n) < 0.3
        active = np.flatnonzero(~skip)
        # out of bounds (in an account not skipped): None, and nothing moved
        if active.size:
            before = {f: getattr(state, f).copy() for f in fields}
            bad = action.copy()
            bad[active[0], 0] = np.nan if step % 2 else 1.5
            assert core.step_observe(state, bad, skip=skip, bounds=(-1.000001, 1.000001)) is None
            for f in fields:
                np.testing.assert_array_equal(getattr(state, f), before[f], err_msg=f)
        # a bad action in a skipped account is not looked at
        ok = action.copy()
        if skip.any():
            ok[np.flatnonzero(skip)[0], 0] = np.nan
        obs, reward, terminated, truncated, info = core.step_observe(state, ok, skip=skip,
                                                                     bounds=(-1.000001, 1.000001))
        # the oracle: the numpy core on the accounts not skipped
        part = BatchState(**{f: getattr(state_ref, f)[active] for f in fields})
        r, te, tr, part_info = ref.step(part, action[active])
        for f in fields:
            getattr(state_ref, f)[active] = getattr(part, f)
        assert_same(reward[active], r)
        assert_same(terminated[active], te)
        assert_same(truncated[active], tr)
        assert not reward[skip].any() and not terminated[skip].any() and not truncated[skip].any()
        assert info.keys() == part_info.keys()
        for key, value in info.items():
            assert value.shape[0] == n and value.dtype == part_info[key].dtype, key
            assert_same(value[active], part_info[key], err_msg=key)
            if key == "t":
                np.testing.assert_array_equal(value[skip], state_ref.t[skip])
            elif key == "equity":
                assert_same(value[skip], state_ref.equity[skip])
            else:
                assert not value[skip].any(), key
            assert not np.shares_memory(value, getattr(state, key, np.empty(0))), key  # fresh, not the state
        assert_same(obs, ref.observe(state_ref))
        for f in fields:
            assert_same(getattr(state, f), getattr(state_ref, f), err_msg=f)
        done = np.flatnonzero(terminated | truncated)
        if done.size:
            new = rng.integers(data.first_step, data.last_step - 200, done.size)
            core.reset_accounts(state, done, new)
            ref.reset_accounts(state_ref, done, new)


def test_one_pair_parameters_round_trip() -> None:
    """Every packed parameter reaches the compiled one-pair step (the tuple it reads them from)."""
    from envs import single_pair as sp

    market = generate_market(default_config(("EURUSD",)), 900, rng=np.random.default_rng(0)).market
    config = EnvConfig(vol_model="ewma", var_window=100, action_mode="sizing", size_unit="var_budget",
                       var_mode="penalty", reward="risk_penalised", risk_penalty="drawdown")
    prm = sp.pack_params(prepare_env_data(market, config), config)
    assert prm.shape == (sp.N_PAIR_PARAMS,)
    assert sp.param_tuple(prm) == tuple(prm.tolist())
    assert prm[sp.P_ACCOUNT_BOUND] == ACCOUNT_BOUND and prm[sp.P_UTILISATION_CAP] == UTILISATION_CAP
