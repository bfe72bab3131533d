"""The no-trade band and the minimum order (in the one step, for agents and baselines alike).

A position on its target's side within ``rebalance_band x |target|`` is held; orders below
``min_order x equity`` are not sent; the VaR shield and the leverage cap still trade when they
must. Each step reports how many pairs were held (``band_holds``) and how many orders were
too small (``small_orders``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.data import prepare_env_data
from envs.fx_env import FxRiskEnv
from envs.vector import FxRiskVectorEnv
from simulator.synthetic.generator import default_config, generate_market

CFG = EnvConfig(vol_model="ewma", var_window=200, episode_bars=300, var_mode="cost")


@pytest.fixture(scope="module")
def data():
    market = generate_market(default_config(("EURUSD", "USDJPY"), [[1, 0.3], [0.3, 1]]), 1500,
                             rng=np.random.default_rng(5)).market
    return prepare_env_data(market, CFG)


def run(data, config, actions, start):
    env = FxRiskEnv(data=data, config=config)
    env.reset(options={"start": start})
    infos = []
    for a in actions:
        *_, terminated, truncated, info = env.step(np.asarray(a, dtype=np.float32))
        infos.append(info)
        if terminated or truncated:
            break
    return infos


def test_a_steady_target_inside_the_band_is_held_and_costs_nothing_to_hold(data):
    # Arrange: the same exposure request every bar; equity and prices move the target a little
    start = data.first_step + 10
    actions = [[0.2, -0.1]] * 60
    # Act
    banded = run(data, dataclasses.replace(CFG, rebalance_band=0.25), actions, start)
    every_bar = run(data, CFG, actions, start)
    # Assert: the first bar trades both pairs; later bars hold them (no fills, no trading costs)
    assert banded[0]["band_holds"] == 0 and (np.asarray(banded[0]["filled"]) != 0).all()
    held = [i for i in banded[1:] if i["band_holds"] == 2]
    assert len(held) >= 50
    for info in held:
        assert (np.asarray(info["filled"]) == 0).all()
        assert info["spread_cost"] == info["impact_cost"] == info["commission"] == 0.0
    assert all(i["band_holds"] == 0 for i in every_bar)
    assert sum(i["turnover"] for i in banded[1:]) < 0.2 * sum(i["turnover"] for i in every_bar[1:])


def test_a_flip_or_a_target_outside_the_band_trades(data):
    start = data.first_step + 10
    infos = run(data, dataclasses.replace(CFG, rebalance_band=0.25), [[0.2, 0.2], [0.2, -0.2], [0.5, -0.2]], start)
    filled = [np.asarray(i["filled"]) for i in infos]
    assert (filled[1] == [0.0, filled[1][1]]).all() and filled[1][1] < 0  # EURUSD held, USDJPY flipped
    assert filled[2][0] > 0 and filled[2][1] == 0  # 0.2 -> 0.5 is outside a 25% band; -0.2 held
    assert infos[1]["band_holds"] == 1 and infos[2]["band_holds"] == 1


def test_orders_below_the_minimum_are_not_sent(data):
    start = data.first_step + 10
    config = dataclasses.replace(CFG, min_order=0.06)  # 6% of equity (the target moves with equity and prices)
    infos = run(data, config, [[0.2, 0.2], [0.2003, 0.2], [0.5, 0.2]], start)
    assert infos[1]["small_orders"] == 2 and (np.asarray(infos[1]["filled"]) == 0).all()
    assert np.asarray(infos[2]["filled"])[0] > 0 and infos[2]["small_orders"] == 1


def test_the_shield_still_trades_inside_the_band_when_the_limit_needs_it(data):
    # Arrange: shield mode, a wide band; random requests, many at full size (the shield binds)
    config = dataclasses.replace(CFG, var_mode="shield", var_limit=0.003, rebalance_band=0.9)
    rng = np.random.default_rng(2)
    actions = rng.choice([-1.0, -0.6, 0.6, 1.0], size=(250, 2))
    vec = FxRiskVectorEnv(4, data=data, config=config)
    vec.reset(seed=1)
    held = 0
    for a in actions:
        *_, info = vec.step(np.repeat(a[None], 4, axis=0).astype(np.float32))
        # Assert: the held position's VaR never exceeds the limit, band or not
        assert (info["var"] <= info["var_limit"] * (1 + 1e-9)).all()
        held += int(info["band_holds"].sum())
    assert held > 100  # the band did hold positions


@pytest.mark.parametrize(("key", "value"), [("rebalance_band", 1.0), ("rebalance_band", -0.1), ("min_order", -1e-3)])
def test_a_band_or_minimum_order_out_of_range_is_one_line_naming_the_key(key, value):
    with pytest.raises(ValueError, match=key) as err:
        EnvConfig(**{key: value})
    assert "\n" not in str(err.value)
