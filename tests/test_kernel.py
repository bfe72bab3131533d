"""The compiled core (numba) against the numpy reference core: the same trajectories.

LLVM may contract ``a * b + c`` into one fused multiply-add, so floats agree to the last
bits (relative 1e-12), not bit for bit; flags, counts and integer state must match exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.core import BatchState, FxRiskCore
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
