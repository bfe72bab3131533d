"""Several policies as accounts of one batched core give each policy's own run (run_policy) exactly."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from agents.baselines import BASELINES, make_baseline
from agents.evaluation.rollout import run_policies, run_policy
from envs.config import EnvConfig
from envs.data import EnvData, prepare_env_data
from forecasters.cache import ForecastCache
from simulator.synthetic.generator import default_config, generate_market

CFG = EnvConfig(vol_model="ewma", var_window=200, var_mode="penalty")
ACTIVE = {"fractional_kelly": dict(halflife=20.0, min_periods=10)}


class AllIn:
    """Bets it all long, a little less while its own drawdown (an account feature) is deep.

    It reads its observation, so it must get its own account's row.
    """

    name = "all_in"

    def __init__(self, n_pairs: int) -> None:
        self.n_pairs = n_pairs

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        drawdown = np.asarray(observation)[:, -2:-1]
        return np.repeat(np.where(drawdown < 0.05, 1.0, 0.9), self.n_pairs, axis=1).astype(np.float32), state


def crashed(data: EnvData, at: int, fall: float) -> EnvData:
    """The same data with every price ``fall`` lower from bar ``at`` on (a gap: stop-outs happen)."""
    scale = np.where(np.arange(data.n_bars)[:, None] >= at, 1.0 - fall, 1.0)
    return replace(data, open=data.open * scale, close=data.close * scale, high=data.high * scale,
                   low=data.low * scale)


@pytest.fixture(scope="module")
def markets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, EnvData]:
    cache = ForecastCache(tmp_path_factory.mktemp("forecasts"))
    one = generate_market(default_config(("EURUSD",)), 1200, rng=np.random.default_rng(0)).market
    two = generate_market(default_config(("EURUSD", "USDJPY"), correlation=[[1, 0.3], [0.3, 1]]), 1200,
                          rng=np.random.default_rng(1)).market
    out = {"one_pair": prepare_env_data(one, CFG, cache=cache), "two_pairs": prepare_env_data(two, CFG, cache=cache)}
    out["two_pairs_crash"] = crashed(out["two_pairs"], 900, 0.2)
    return out


@pytest.mark.parametrize("market", ["one_pair", "two_pairs", "two_pairs_crash"])
@pytest.mark.parametrize("config", [CFG, replace(CFG, action_mode="sizing", size_unit="var_budget", var_mode="shield")],
                         ids=["exposure", "sizing"])
def test_batched_policies_equal_each_policy_run_alone(markets, market: str, config: EnvConfig) -> None:
    # Arrange: every baseline plus a policy that reads its observation; the crash stops some out early.
    data = markets[market].restrict(600, markets[market].n_bars)
    names = sorted(BASELINES)
    fresh = lambda: [make_baseline(b, **ACTIVE.get(b, {})) for b in names] + [AllIn(data.n_pairs)]  # noqa: E731
    labels = [*names, "all_in"]
    # Act
    together = run_policies(fresh(), data, config, labels=labels)
    alone = [run_policy(p, data, config, label=label) for p, label in zip(fresh(), labels, strict=True)]
    # Assert: the same records (values, dtypes, order) and summaries, policy by policy
    for a, b in zip(together, alone, strict=True):
        pd.testing.assert_frame_equal(a.records, b.records, check_exact=True)
        pd.testing.assert_frame_equal(a.summary, b.summary, check_exact=True)
    lengths = {len(r.records) for r in together}
    if market == "two_pairs_crash" and config.action_mode == "exposure":
        assert len(lengths) > 1 and together[labels.index("all_in")].records["stopped_out"].any()
