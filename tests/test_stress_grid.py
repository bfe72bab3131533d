"""The stress grid at array speed: many markets and policies as accounts of one core give each
(market, policy) run alone exactly (rollout.run_grid), and the plan's batched cells equal the
per-policy loop's, for baselines and a trained agent over several seeds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml

from agents.baselines import BASELINES, make_baseline
from agents.evaluation.rollout import ObservationNormaliser, TrainedPolicy, run_grid, run_policy, stack_data
from agents.evaluation.stress import PolicySpec, StressPlan, grid_batches, run_plan
from agents.hyperparams import TrainConfig
from envs.config import EnvConfig
from envs.data import EnvData, prepare_env_data
from forecasters.cache import ForecastCache
from simulator.synthetic.generator import default_config, generate_market
from tests.conftest import load_script
from tests.test_evaluation_batched import AllIn, crashed
from tests.test_stress import cell_bytes, small_config

CFG = EnvConfig(vol_model="ewma", var_window=200, var_mode="penalty")
ACTIVE = {"fractional_kelly": dict(halflife=20.0, min_periods=10)}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[EnvData]:
    """Two-pair markets as a stress grid's seeds: the same history, crashes at different bars, other spans."""
    cache = ForecastCache(tmp_path_factory.mktemp("forecasts"))
    two = generate_market(default_config(("EURUSD", "USDJPY"), correlation=[[1, 0.3], [0.3, 1]]), 1200,
                          rng=np.random.default_rng(1)).market
    data = prepare_env_data(two, CFG, cache=cache)
    return [data.restrict(600, data.n_bars), crashed(data, 900, 0.2).restrict(600, data.n_bars),
            crashed(data, 1000, 0.1).restrict(650, data.n_bars), data.restrict(600, 1100)]


def agent(data: EnvData, config: EnvConfig) -> TrainedPolicy:
    """An untrained, seeded PPO with a normaliser: it reads every entry of its observation."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO

    torch.manual_seed(0)
    torch.set_num_threads(1)
    env = gym.make("FxRisk-v0", config=config, data=data)
    model = PPO("MlpPolicy", env, seed=0, device="cpu")
    dim = env.observation_space.shape[0]
    rng = np.random.default_rng(0)
    return TrainedPolicy(model, ObservationNormaliser(rng.normal(0, 0.1, dim), rng.uniform(0.5, 2, dim), 5.0, 1e-8))


@pytest.mark.parametrize("config", [CFG, replace(CFG, action_mode="sizing", size_unit="var_budget", var_mode="shield"),
                                    replace(CFG, action_mode="residual")], ids=["exposure", "sizing", "residual"])
def test_the_grid_equals_each_policy_run_alone_on_each_market(seeds, config: EnvConfig) -> None:
    # Arrange: every baseline, a policy that reads its observation and a PPO model, on four markets
    names = sorted(BASELINES)
    fresh = lambda: [make_baseline(b, **ACTIVE.get(b, {})) for b in names] + [AllIn(2), agent(seeds[0], config)]  # noqa: E731
    labels = [*names, "all_in", "ppo"]
    # Act
    grid = run_grid(fresh(), seeds, config, labels=labels)
    # Assert: market by market, policy by policy, the records (values, dtypes, order) and summaries
    assert len(grid) == len(seeds) and all(len(row) == len(labels) for row in grid)
    for k, data in enumerate(seeds):
        alone = [run_policy(p, data, config, label=label) for p, label in zip(fresh(), labels, strict=True)]
        for a, b in zip(grid[k], alone, strict=True):
            pd.testing.assert_frame_equal(a.records, b.records, check_exact=True)
            pd.testing.assert_frame_equal(a.summary, b.summary, check_exact=True)
    lengths = {len(r.records) for row in grid for r in row}
    assert len(lengths) > 2  # markets of other spans and stop-outs end accounts at different bars
    if config.action_mode == "exposure":
        assert grid[1][labels.index("all_in")].records["stopped_out"].any()


def test_markets_that_cannot_share_a_core_are_refused(seeds) -> None:
    one = generate_market(default_config(("EURUSD",)), 1200, rng=np.random.default_rng(0)).market
    other = prepare_env_data(one, CFG)
    with pytest.raises(ValueError, match="cannot be stacked with market 0"):
        stack_data([seeds[0], other])
    stacked, offsets = stack_data(seeds[:2])
    assert offsets.tolist() == [0, seeds[0].n_bars] and stacked.n_bars == 2 * seeds[0].n_bars
    assert np.array_equal(stacked.close[offsets[1]:], seeds[1].close)


def test_batches_keep_a_scenarios_seeds_together_and_feed_every_worker() -> None:
    todo = {(s, seed): ["flat"] for s in ("a", "b", "c") for seed in range(4)}
    assert [len(b) for b in grid_batches(todo)] == [12]
    assert [len(b) for b in grid_batches(todo, 2)] == [6, 6]
    assert [[g[:2] for g in b] for b in grid_batches(todo, 3)][1] == [("b", s) for s in range(4)]
    assert sum(len(b) for b in grid_batches({**todo, **{("d", s): ["x"] for s in range(20)}})) == 32
    assert grid_batches({}) == []


def test_the_batched_plan_writes_what_the_per_policy_loop_writes_for_an_agent_and_baselines(
        tmp_path, monkeypatch, capsys) -> None:
    # Arrange: a tiny trained agent and two baselines, three seeds of a scenario with random windows
    raw = yaml.safe_load(small_config(tmp_path).read_text())
    raw.update(total_timesteps=256, n_envs=2, eval_every=10**6, checkpoint_every=10**6)
    raw["ppo"].update(n_steps=128, batch_size=128, n_epochs=1)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert load_script("train").main(["--config", str(cfg), "--seeds", "3", "--out", str(tmp_path / "agents"),
                                      "--no-progress"]) == 0, capsys.readouterr().err
    (model,) = (tmp_path / "agents").rglob("model.zip")
    plan = StressPlan(training=TrainConfig.from_yaml(cfg), scenarios=("baseline", "vol_shock"), seeds=(0, 1, 2),
                      policies=(PolicySpec(name="ppo", kind="agent", model_path=str(model)),
                                PolicySpec(name="atr_stop", kind="baseline", baseline="atr_stop"),
                                PolicySpec(name="vol_target", kind="baseline", baseline="vol_target")))
    # Act
    monkeypatch.setenv("FXRISK_CACHE_DIR", str(tmp_path / "cache-fast"))
    fast = run_plan(plan, tmp_path / "fast", workers=1)
    monkeypatch.setenv("FXRISK_CACHE_DIR", str(tmp_path / "cache-slow"))
    slow = run_plan(plan, tmp_path / "slow", workers=1, fast=False)
    # Assert
    assert len(fast) == 3 * 2 * 3 and fast.to_csv(index=False) == slow.to_csv(index=False)
    assert cell_bytes(tmp_path / "fast") == cell_bytes(tmp_path / "slow")
    vol = fast[fast.scenario == "vol_shock"].set_index(["policy", "seed"])["total_return"]
    assert vol.loc["ppo"].nunique() > 1  # the seeds moved the stress window: different runs


def test_the_correlation_resumes_after_the_rows_shared_with_the_last_call_bit_for_bit() -> None:
    from envs import data as env_data

    rng = np.random.default_rng(3)
    returns = rng.normal(0, 0.01, (600, 3))
    returns[:5] = np.nan
    stressed = returns.copy()
    stressed[400:450] *= 4.0  # a stress window: the rows before it are shared
    env_data._CORRELATION_MEMO.clear()
    fresh = env_data.ewma_correlation(stressed, lam=0.9, min_periods=50)
    env_data.ewma_correlation(returns, lam=0.9, min_periods=50)  # the unstressed market first
    resumed = env_data.ewma_correlation(stressed, lam=0.9, min_periods=50)
    assert np.array_equal(resumed, fresh, equal_nan=True)
    assert np.isnan(resumed[:54]).all() and not np.isnan(resumed[54:]).any()
    # another decay or a shorter history: computed afresh, the same numbers
    env_data._CORRELATION_MEMO.clear()
    short = env_data.ewma_correlation(stressed[:300], lam=0.9, min_periods=50)
    assert np.array_equal(env_data.ewma_correlation(stressed[:300], lam=0.9, min_periods=50), short, equal_nan=True)
    assert np.array_equal(short, fresh[:300], equal_nan=True)


def test_the_cell_writer_writes_what_pandas_writes() -> None:
    from agents.evaluation.stress import csv_text

    rng = np.random.default_rng(0)
    floats = np.concatenate([rng.normal(0, 1e-3, 50), rng.normal(0, 1e9, 50),
                             [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-300, 5e-324, 1e16, 0.1, 1 / 3, 100.0, -2.5]])
    n = len(floats)
    frame = pd.DataFrame({"step": np.arange(n), "t": np.arange(n, dtype=np.int64) * 7, "timestamp": [
        f"2020-01-{1 + i % 28:02d} 00:00:00+00:00" for i in range(n)], "equity": floats,
        "var_breach": rng.random(n) < 0.5, "exposure_EURUSD": rng.permutation(floats)})
    assert csv_text(frame) == frame.to_csv(index=False)
    assert csv_text(frame.iloc[:0]) == frame.iloc[:0].to_csv(index=False)
    quoted = frame.assign(timestamp="a,b")  # pandas would quote it: left to pandas
    assert csv_text(quoted) is None and csv_text(frame.astype({"equity": np.float32})) is None
    assert csv_text(frame[["equity"]]) is None  # one column: pandas writes a NaN row as "" (a blank line else)
    assert frame[["equity"]].to_csv(index=False).count('\n""\n') == 1
