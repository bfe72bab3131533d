"""The one step source (:mod:`envs.step`): compiled, interpreted and against the numpy oracle.

* compiled (numba) against the same Python run with ``NUMBA_DISABLE_JIT=1``, on 1- and
  3-pair markets: the same trajectories (floats to 1e-12, flags exactly);
* compiled against the numpy array oracle (:mod:`tests.oracle_core`). LLVM may contract
  ``a * b + c`` into one fused multiply-add, so floats agree to the last bits (relative
  1e-12), not bit for bit; flags, counts and integer state must match exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.config import EnvConfig
import os
import subprocess
import sys
from pathlib import Path

from envs import step as kernel
from envs.core import ACCOUNT_BOUND, UTILISATION_CAP, BatchState, FxRiskCore
from envs.data import prepare_env_data
from simulator.broker.account import AccountConfig
from simulator.synthetic.generator import default_config, generate_market
from tests.oracle_core import NumpyCore

BAND_KEYS = {"band_holds", "small_orders"}
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
        from simulator.data.market import MarketData

        market = MarketData(bars=bars, pairs=market.pairs, source="no liquidity")
    config = EnvConfig(vol_model="ewma", var_window=200, episode_bars=150, **kwargs)
    data = prepare_env_data(market, config)
    ref, fast = NumpyCore(data, config), FxRiskCore(data, config)
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
        assert set(b[3]) - set(a[3]) == BAND_KEYS  # the oracle predates the no-trade band (off here)
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


INTERPRETED = """
import sys
import numpy as np
from tests.golden_steps import GOLDEN, run_case, cases, stored_data
with np.load(GOLDEN) as z:
    store = {k: z[k] for k in z.files}
out = {}
for market in ("eurusd", "three_pairs"):
    data = stored_data(store, market)
    for case in sys.argv[2:]:
        for key, value in run_case(data, cases()[case]).items():
            out[f"{market}/{case}/{key}"] = value
np.savez(sys.argv[1], **out)
"""
INTERPRETED_CASES = ("exposure-shield-differential_sharpe-variance", "exposure-leverage500-cost-differential_sharpe",
                     "sizing-var_budget-penalty-log_return", "exposure-penalty-risk_penalised-drawdown")


def test_the_compiled_step_equals_the_interpreted_python(tmp_path) -> None:
    """``NUMBA_DISABLE_JIT=1`` runs envs.step as Python: the same trajectories as compiled (floats
    to 1e-12, flags exactly, float32 observations to one unit in their last place)."""
    from tests.golden_steps import GOLDEN, cases, run_case, stored_data

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "interpreted.npz"
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", INTERPRETED, str(out), *INTERPRETED_CASES], check=True, cwd=root, env=env,
                   timeout=600)
    with np.load(GOLDEN) as z:
        store = {k: z[k] for k in z.files}
    with np.load(out) as z:
        interpreted = {k: z[k] for k in z.files}
    compared = 0
    for market in ("eurusd", "three_pairs"):
        data = stored_data(store, market)
        for case in INTERPRETED_CASES:
            compiled = run_case(data, cases()[case])
            for key, value in compiled.items():
                other = interpreted[f"{market}/{case}/{key}"]
                if value.dtype == bool:
                    np.testing.assert_array_equal(other, value, err_msg=key)
                elif value.dtype == np.float32:  # float64 values agree to 1e-15 (LLVM fuses a*b+c);
                    # a float32 observation can then round one unit of its last place the other way
                    np.testing.assert_allclose(other, value, rtol=np.finfo(np.float32).eps, atol=1e-12, err_msg=key)
                else:
                    np.testing.assert_allclose(other, value, rtol=1e-12, atol=1e-12, err_msg=key)
                compared += 1
    assert compared > 100


@pytest.mark.parametrize("symbols", [("EURUSD",), ("EURUSD", "USDJPY")])
def test_step_observe_with_skipped_accounts_and_action_bounds(symbols) -> None:
    """``step_observe``: = step on the accounts not skipped (skipped ones report 0 and their current
    t and equity), then observe; an action out of bounds changes nothing and returns None."""
    corr = None if len(symbols) == 1 else [[1, 0.3], [0.3, 1]]
    market = generate_market(default_config(symbols, correlation=corr), 1_800, rng=np.random.default_rng(0)).market
    config = EnvConfig(vol_model="ewma", var_window=200, episode_bars=150, var_mode="cost",
                       account=AccountConfig(stop_out_level=0.97, margin_call_level=0.99))
    data = prepare_env_data(market, config)
    core = FxRiskCore(data, config)
    ref = NumpyCore(data, config)
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
        assert set(info) - set(part_info) == BAND_KEYS
        for key, value in ((k, v) for k, v in info.items() if k not in BAND_KEYS):
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


def test_every_parameter_reaches_the_compiled_step() -> None:
    """The packed parameters come back as the typed StepParams the step reads (modes as IntEnums)."""
    market = generate_market(default_config(("EURUSD",)), 900, rng=np.random.default_rng(0)).market
    config = EnvConfig(vol_model="ewma", var_window=100, action_mode="sizing", size_unit="var_budget",
                       var_mode="penalty", reward="risk_penalised", risk_penalty="drawdown")
    core = FxRiskCore(prepare_env_data(market, config), config)
    q = kernel.step_params(core.prm)
    assert isinstance(q, kernel.StepParams) and len(core.prm) == kernel.N_PARAMS
    assert tuple(float(v) for v in q) == tuple(core.prm.tolist())
    assert q.account_bound == ACCOUNT_BOUND and q.utilisation_cap == UTILISATION_CAP
    assert (q.action_mode, q.size_unit, q.var_mode, q.reward, q.risk_penalty) == (
        kernel.ActionMode.SIZING, kernel.SizeUnit.VAR_BUDGET, kernel.VarMode.PENALTY, kernel.RewardKind.RISK_PENALISED,
        kernel.RiskPenalty.DRAWDOWN)
    assert q.slippage == config.execution.slippage_bps * 1e-4 and q.n_pairs == 1 and q.has_corr == 0


def _run_batch(data, config, n: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Step ``n`` accounts ``steps`` bars (a third skipped each step); everything the step returned."""
    core = FxRiskCore(data, config)
    state = BatchState.empty(n, data.n_pairs)
    rng = np.random.default_rng(seed)
    core.reset_accounts(state, np.arange(n), rng.integers(data.first_step, data.last_step - steps - 1, n))
    out: dict[str, list] = {}
    for _ in range(steps):
        obs, reward, terminated, truncated, info = core.step_observe(
            state, rng.uniform(-1, 1, (n, data.n_pairs)), skip=rng.random(n) < 0.3)
        for key, value in {"obs": obs, "reward": reward, "terminated": terminated, **info}.items():
            out.setdefault(key, []).append(value)
    return {key: np.stack(values) for key, values in out.items()} | {"equity_end": state.equity.copy()}


@pytest.mark.parametrize("symbols", [("EURUSD",), ("EURUSD", "USDJPY", "GBPUSD")])
def test_threaded_batches_equal_one_thread_bit_for_bit(symbols, monkeypatch) -> None:
    """Large batches are split into blocks stepped on numba's threads (:func:`envs.step.batch_step_threaded`);
    accounts are independent, so every output of 2, 3 or 7 blocks (of unequal size) is identical to one block."""
    import envs.core

    corr = None if len(symbols) == 1 else np.eye(len(symbols)) * 0.6 + 0.4
    market = generate_market(default_config(symbols, correlation=corr), 900, rng=np.random.default_rng(1)).market
    config = EnvConfig(vol_model="ewma", var_window=200, episode_bars=None, var_mode="cost")
    data = prepare_env_data(market, config)
    n = 549
    monkeypatch.setattr(envs.core, "thread_shares", lambda n_items: 1)
    single = _run_batch(data, config, n, 40, seed=3)
    for shares in (2, 3, 7):
        monkeypatch.setattr(envs.core, "thread_shares", lambda n_items, k=shares: k)
        threaded = _run_batch(data, config, n, 40, seed=3)
        assert threaded.keys() == single.keys()
        for key in threaded:
            np.testing.assert_array_equal(threaded[key], single[key], err_msg=f"{shares} blocks: {key}")


def test_only_large_batches_are_split_between_threads(monkeypatch) -> None:
    """:func:`simulator.common.compiled.thread_shares`: one block per numba thread from THREADED_MIN_ITEMS
    accounts on, one block below it or when numba has one thread."""
    import numba

    from simulator.common import compiled

    monkeypatch.setattr(numba, "get_num_threads", lambda: 4)
    assert compiled.thread_shares(compiled.THREADED_MIN_ITEMS - 1) == 1
    assert compiled.thread_shares(compiled.THREADED_MIN_ITEMS) == 4
    assert compiled.thread_shares(10_000) == 4
    monkeypatch.setattr(numba, "get_num_threads", lambda: 1)
    assert compiled.thread_shares(10_000) == 1


def _child_batch(data, config, n: int) -> dict[str, np.ndarray]:
    from simulator.common import compiled

    return _run_batch(data, config, n, 5, seed=8) | {"shares": np.array(compiled.thread_shares(n))}


def test_a_process_forked_after_threads_ran_steps_on_one_thread() -> None:
    """GNU OpenMP aborts a forked child that starts threads again: pool workers forked after the
    parent's threaded steps run their batches on one thread, with the same results."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from simulator.common import compiled

    market = generate_market(default_config(("EURUSD",)), 600, rng=np.random.default_rng(2)).market
    config = EnvConfig(vol_model="ewma", var_window=200, episode_bars=None)
    data = prepare_env_data(market, config)
    n = compiled.THREADED_MIN_ITEMS
    here = _run_batch(data, config, n, 5, seed=8)  # starts this process's threads (where there are 2+)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        child = pool.submit(_child_batch, data, config, n).result(timeout=300)
    assert int(child.pop("shares")) == 1
    for key in here:
        np.testing.assert_array_equal(here[key], child[key], err_msg=key)
