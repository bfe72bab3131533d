"""Liquidity stress scenarios: YAML schema, loader and market transforms.

A scenario is a data file (``scenarios/library/*.yaml``, user folders, ``$FXRISK_SCENARIOS``)
naming transforms of the market — spreads × k, liquidity collapse, volatility shock, jump and
partial recovery, gap, correlation break — and of the simulator settings (execution costs,
financing rates, account rules). Historical replays (SNB 2015, GBP 2016, JPY 2019, Lehman
2008, March 2020) are files composing those transforms, calibrated to published magnitudes
whose sources each file lists. Applying a scenario returns a new market and env config; the
originals are never modified::

    scenario = get_scenario("snb_2015")
    stressed = apply_scenario(scenario, market, config, span=(test_start, len(market)),
                              rng=np.random.default_rng(seed))
    stressed.market, stressed.env_config, stressed.window, stressed.notes
"""

from scenarios.apply import StressedMarket, apply_scenario
from scenarios.catalog import get_scenario, library_dir, list_scenarios
from scenarios.errors import ScenarioError
from scenarios.schema import Scenario, Settings, WindowSpec, load_scenario
from scenarios.transforms import TRANSFORMS, Transform

__all__ = [
    "Scenario",
    "ScenarioError",
    "Settings",
    "StressedMarket",
    "TRANSFORMS",
    "Transform",
    "WindowSpec",
    "apply_scenario",
    "get_scenario",
    "library_dir",
    "list_scenarios",
    "load_scenario",
]
