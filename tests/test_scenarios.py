"""Scenario library: loading, validation, transforms, and their effect on policies."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scenarios
from agents.baselines import make_baseline
from agents.evaluation.rollout import evaluation_config, run_policy
from envs.config import EnvConfig
from envs.data import prepare_env_data
from forecasters.cache import ForecastCache
from scenarios import (
    Scenario,
    ScenarioError,
    StressedMarket,
    apply_scenario,
    get_scenario,
    library_dir,
    list_scenarios,
    load_scenario,
)
from scenarios.transforms import WindowedTransform
from simulator.broker.account import AccountConfig
from simulator.data.market import MarketData
from simulator.synthetic.generator import default_config, generate_market

N_BARS = 2000
SPAN = (1000, 2000)
SHIPPED = ("baseline", "spread_x10", "liquidity_gone", "vol_shock", "flash_crash", "weekend_gap",
           "correlation_break", "rate_shock", "snb_2015", "gbp_flash_2016", "jpy_flash_2019", "lehman_2008",
           "covid_2020")
REPLAYS = ("snb_2015", "gbp_flash_2016", "jpy_flash_2019", "lehman_2008", "covid_2020")
CONFIG = EnvConfig(vol_model="ewma", var_window=200)


# -- helpers ---------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _market(symbols: tuple[str, ...], n: int = N_BARS, seed: int = 0, corr: float = 0.0) -> MarketData:
    k = len(symbols)
    correlation = None if k == 1 else [[1.0 if i == j else corr for j in range(k)] for i in range(k)]
    return generate_market(default_config(symbols, correlation), n, rng=np.random.default_rng(seed)).market


def _named_pairs(scenario: Scenario) -> tuple[str, ...]:
    names = [p for t in scenario.transforms if isinstance(t, WindowedTransform) for p in t.named()]
    return tuple(dict.fromkeys(names))


def _own_market(scenario: Scenario) -> MarketData:
    """A market holding the replay's pairs (generic scenarios: two correlated USD pairs)."""
    names = _named_pairs(scenario)
    if not names:
        return _market(("EURUSD", "GBPUSD"), corr=0.6)
    if any(p.endswith("JPY") for p in names) and "USDJPY" not in names:
        names = ("USDJPY", *names)
    return _market(tuple(names))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _apply(name: str, market: MarketData, seed: int = 1, config: EnvConfig = CONFIG,
           span: tuple[int, int] = SPAN) -> StressedMarket:
    return apply_scenario(get_scenario(name), market, config, span=span, rng=np.random.default_rng(seed))


def _close(market: MarketData, symbol: str) -> np.ndarray:
    return market.bars[(symbol, "close")].to_numpy()


class ConstantExposure:
    """Always asks for the same signed exposure (fraction of max leverage) on every pair."""

    name = "constant"

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return np.full((np.asarray(observation).shape[0], 1), self.fraction, dtype=np.float32), None


def _evaluate(policy, market: MarketData, config: EnvConfig, tmp_path: Path, span=SPAN):
    config = evaluation_config(config)
    data = prepare_env_data(market, config, cache=ForecastCache(tmp_path / "cache")).restrict(*span)
    return run_policy(policy, data, config)


# -- the library -------------------------------------------------------------------------------
def test_library_ships_every_scenario_with_one_line_descriptions():
    found = {s.name: s for s in list_scenarios()}
    assert set(SHIPPED) <= set(found)
    assert library_dir().is_dir()
    for s in found.values():
        assert s.description and "\n" not in s.description and len(s.description) <= 120
        assert Path(s.path).parent == library_dir()
    for name in REPLAYS:
        assert found[name].replay and found[name].sources
    assert found["baseline"].transforms == () and found["baseline"].settings.empty


@pytest.mark.parametrize("which", ["eurusd", "own"])
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_applies_and_leaves_the_past_and_the_original_alone(name, which):
    scenario = get_scenario(name)
    if which == "eurusd" and name == "correlation_break":
        market = _market(("EURUSD", "GBPUSD"), corr=0.6)  # it needs two pairs
    else:
        market = _market(("EURUSD",)) if which == "eurusd" else _own_market(scenario)
    original_bars = market.bars.copy(deep=True)
    config = replace(CONFIG, account=AccountConfig(currency="USD"))
    original_config = copy.deepcopy(config)

    stressed = apply_scenario(scenario, market, config, span=SPAN, rng=np.random.default_rng(3))

    assert isinstance(stressed.market, MarketData)  # validated by its constructor
    assert stressed.market is not market and stressed.market.bars is not market.bars
    assert stressed.env_config is not config
    lo, hi = stressed.window
    assert SPAN[0] <= lo < hi <= SPAN[1]
    pd.testing.assert_frame_equal(stressed.market.bars.iloc[:lo], original_bars.iloc[:lo])
    pd.testing.assert_frame_equal(market.bars, original_bars)  # the input was not modified
    assert config == original_config and config.financing.rates == original_config.financing.rates
    assert stressed.market.symbols == market.symbols and stressed.market.fields == market.fields
    for s in market.symbols:
        b = stressed.market.bars[s]
        assert (b["spread"] > 0).all() and (b["liquidity"] > 0).all()
        assert (b["high"] >= b[["open", "close"]].max(axis=1)).all()
        assert (b["low"] <= b[["open", "close"]].min(axis=1)).all()
    if name != "baseline" and name != "rate_shock":
        assert not stressed.market.bars.equals(market.bars)


def test_baseline_changes_nothing():
    market = _market(("EURUSD",))
    stressed = _apply("baseline", market)
    pd.testing.assert_frame_equal(stressed.market.bars, market.bars)
    assert stressed.env_config == CONFIG and stressed.window == SPAN and stressed.notes == ()


def test_get_scenario_by_name_or_path_and_unknown_name(tmp_path):
    by_name = get_scenario("snb_2015")
    by_path = get_scenario(library_dir() / "snb_2015.yaml")
    assert by_name == by_path
    with pytest.raises(ScenarioError, match="unknown scenario.*baseline"):
        get_scenario("no_such_scenario")


# -- effects on policies -------------------------------------------------------------------------
def test_spread_shock_raises_costs_of_a_trading_baseline_and_not_of_flat(tmp_path):
    market = _market(("EURUSD",), n=1500)
    span = (1000, 1500)
    stressed = _apply("spread_x10", market, span=span)
    a, b = stressed.window
    np.testing.assert_allclose(stressed.market.bars[("EURUSD", "spread")].iloc[a:b],
                               10 * market.bars[("EURUSD", "spread")].iloc[a:b])

    base = _evaluate(make_baseline("fixed_fraction"), market, CONFIG, tmp_path, span).summary.iloc[0]
    hit = _evaluate(make_baseline("fixed_fraction"), stressed.market, stressed.env_config, tmp_path, span).summary.iloc[0]
    assert hit["costs_paid"] > 1.2 * base["costs_paid"] > 0
    assert hit["final_equity"] < base["final_equity"]

    flat = _evaluate(make_baseline("flat"), stressed.market, stressed.env_config, tmp_path, span).summary.iloc[0]
    assert flat["costs_paid"] == 0.0 and flat["total_return"] == 0.0


def test_snb_replay_gives_a_one_bar_loss_far_beyond_the_var(tmp_path):
    market = _market(("EURCHF",), n=1500)
    span = (1000, 1500)
    config = replace(CONFIG, account=AccountConfig(currency="CHF"))
    stressed = _apply("snb_2015", market, seed=5, config=config, span=span)
    gap = stressed.window[0]
    assert gap > span[0] + 5
    assert not any("analogue" in note for note in stressed.notes)
    assert stressed.env_config.financing.rates["CHF"] == pytest.approx(-0.0075)
    bars = stressed.market.bars["EURCHF"]
    assert bars["open"].iloc[gap] / bars["close"].iloc[gap - 1] - 1 == pytest.approx(-0.29, abs=1e-12)
    # Partial recovery to about the ECB fix (-14.4%) three bars later, relative to the unstressed path.
    ratio = _close(stressed.market, "EURCHF") / _close(market, "EURCHF")
    assert ratio[gap + 2] == pytest.approx(1 - 0.29 * 0.5, rel=1e-12)
    assert (bars["spread"].iloc[gap:gap + 4] / market.bars[("EURCHF", "spread")].iloc[gap:gap + 4]
            ).to_numpy() == pytest.approx(50.0)

    records = _evaluate(ConstantExposure(0.2), stressed.market, stressed.env_config, tmp_path, span).records
    step = records.loc[records["t"] == gap].iloc[0]
    loss = step["equity_before"] - step["equity"]
    # The gap stops the account out, so the row's own ``var`` (of the position held after the
    # step) is 0; the position that took the gap is the constant one of the bar before.
    held = records.loc[records["t"] == gap - 1].iloc[0]
    assert held["var"] > 0 and held["exposure_EURCHF"] > 0
    assert loss > 10 * held["var"]
    assert step["equity"] < 0.5 * step["equity_before"] and records["t"].max() == gap  # the account is finished
    assert bool(step["stopped_out"])  # wiped out by the gap: a stop-out, not a silent end
    # Before the gap the same policy never lost that much in one bar.
    before = records.loc[records["t"] < gap]
    assert (before["equity_before"] - before["equity"]).max() < 0.1 * loss


# -- transforms ----------------------------------------------------------------------------------
def test_volatility_shock_scales_realised_volatility_by_k():
    market = _market(("EURUSD",))
    stressed = _apply("vol_shock", market)
    a, b = stressed.window
    r0, r1 = market.log_returns()[:, 0], stressed.market.log_returns()[:, 0]
    assert np.std(r1[a:b]) / np.std(r0[a:b]) == pytest.approx(3.0, rel=1e-9)
    np.testing.assert_allclose(r1[b + 1:], r0[b + 1:], atol=1e-12)  # continuous path, same returns after
    spread = stressed.market.bars[("EURUSD", "spread")] / market.bars[("EURUSD", "spread")]
    np.testing.assert_allclose(spread.iloc[a:b], 2.0)
    np.testing.assert_allclose(spread.iloc[b:], 1.0)


def test_flash_crash_reaches_the_low_and_recovers_the_stated_share():
    market = _market(("EURUSD",))
    scenario = get_scenario("flash_crash").in_bars(1.0)  # the file states hours; the market is hourly
    jump = scenario.transforms[0]
    stressed = _apply("flash_crash", market)
    w = stressed.window[0]
    ratio = _close(stressed.market, "EURUSD") / _close(market, "EURUSD")
    assert ratio[w] == pytest.approx(1 + jump.size, rel=1e-12)
    low = stressed.market.bars[("EURUSD", "low")].iloc[w]
    assert low <= (1 + jump.size) * _close(market, "EURUSD")[w]
    end = w + jump.bars_down + jump.recovery_bars - 1
    recovered = 1 - (ratio[end] - 1) / jump.size
    assert recovered == pytest.approx(jump.recovery, rel=1e-9)
    np.testing.assert_allclose(ratio[end:], ratio[end], rtol=1e-12)
    liq = stressed.market.bars[("EURUSD", "liquidity")] / market.bars[("EURUSD", "liquidity")]
    np.testing.assert_allclose(liq.iloc[w:w + 4], 0.05)


def test_gap_open_jumps_by_its_size_from_the_previous_close():
    market = _market(("EURUSD",))
    stressed = _apply("weekend_gap", market)
    w = stressed.window[0]
    bars = stressed.market.bars["EURUSD"]
    assert bars["open"].iloc[w] / bars["close"].iloc[w - 1] - 1 == pytest.approx(-0.05, abs=1e-12)
    r0, r1 = market.log_returns()[:, 0], stressed.market.log_returns()[:, 0]
    np.testing.assert_allclose(r1[w + 1:], r0[w + 1:], atol=1e-12)  # the rest of the path shifted


def test_correlation_break_decorrelates_the_pairs_in_the_window():
    market = _market(("EURUSD", "GBPUSD"), corr=0.8)
    stressed = _apply("correlation_break", market)
    a, b = stressed.window
    r0, r1 = market.log_returns()[a + 1:b], stressed.market.log_returns()[a + 1:b]
    assert np.corrcoef(r0.T)[0, 1] > 0.6
    assert abs(np.corrcoef(r1.T)[0, 1]) < 0.3
    np.testing.assert_allclose(_close(stressed.market, "EURUSD")[b:], _close(market, "EURUSD")[b:], rtol=1e-9)
    with pytest.raises(ScenarioError, match=r"correlation_break.yaml: transforms\[0\].kind: .*at least 2 pairs"):
        _apply("correlation_break", _market(("EURUSD",)))


def test_correlation_flip_changes_the_sign_of_a_listed_pair(tmp_path):
    path = _write(tmp_path, "flip.yaml", "description: flip GBPUSD\ntransforms:\n"
                  "  - {kind: correlation_break, pairs: [GBPUSD], mode: flip, start: 0.1, bars: 300}\n")
    market = _market(("EURUSD", "GBPUSD"), corr=0.8)
    stressed = apply_scenario(load_scenario(path), market, CONFIG, span=SPAN, rng=np.random.default_rng(0))
    a, b = stressed.window
    r = stressed.market.log_returns()[a + 1:b]
    assert np.corrcoef(r.T)[0, 1] < -0.6
    pd.testing.assert_series_equal(stressed.market.bars[("EURUSD", "close")], market.bars[("EURUSD", "close")])


def test_rate_shock_moves_quote_rates_and_markup_only_in_the_new_config():
    market = _market(("EURUSD",))
    config = copy.deepcopy(CONFIG)
    stressed = apply_scenario(get_scenario("rate_shock"), market, config, span=SPAN, rng=np.random.default_rng(0))
    new, old = stressed.env_config.financing, config.financing
    assert new.rates["USD"] == pytest.approx(old.rates["USD"] + 0.03)
    assert new.rates["EUR"] == old.rates["EUR"]
    assert new.markup == pytest.approx(3 * old.markup)
    assert config == CONFIG and old.rates is not new.rates
    pd.testing.assert_frame_equal(stressed.market.bars, market.bars)


def test_replay_on_a_market_without_its_pair_uses_an_analogue_once():
    market = _market(("EURUSD",))
    stressed = _apply("jpy_flash_2019", market)
    w = stressed.window[0]
    ratio = _close(stressed.market, "EURUSD") / _close(market, "EURUSD")
    assert ratio[w] == pytest.approx(1 - 0.032, rel=1e-12)  # the USDJPY move, not three moves compounded
    assert any("USDJPY" in n and "analogue" in n for n in stressed.notes)
    assert any("AUDJPY" in n and "skipped" in n for n in stressed.notes)
    own = _own_market(get_scenario("jpy_flash_2019"))
    stressed = _apply("jpy_flash_2019", own)
    w = stressed.window[0]
    for symbol, size in (("USDJPY", -0.032), ("AUDJPY", -0.039), ("TRYJPY", -0.10)):
        assert (_close(stressed.market, symbol) / _close(own, symbol))[w] == pytest.approx(1 + size, rel=1e-12)
    assert stressed.notes == ()


def test_random_start_is_reproducible_and_varies_with_the_seed():
    market = _market(("EURUSD",))
    first = _apply("spread_x10", market, seed=11)
    again = _apply("spread_x10", market, seed=11)
    assert first.window == again.window
    pd.testing.assert_frame_equal(first.market.bars, again.market.bars)
    windows = {_apply("spread_x10", market, seed=s).window for s in range(6)}
    assert len(windows) > 1
    assert all(b - a == 120 and SPAN[0] <= a and b <= SPAN[1] for a, b in windows)


def test_fractional_start_is_placed_relative_to_the_span(tmp_path):
    path = _write(tmp_path, "fixed.yaml", "description: fixed start\n"
                  "transforms:\n  - {kind: spread, start: 0.25, bars: 10, multiplier: 2}\n")
    stressed = apply_scenario(load_scenario(path), _market(("EURUSD",)), CONFIG, span=SPAN,
                              rng=np.random.default_rng(0))
    assert stressed.window == (1250, 1260)


# -- validation ----------------------------------------------------------------------------------
TRANSFORM = "transforms:\n  - {kind: spread, start: 0.1, bars: 10, multiplier: 2}\n"
MALFORMED = {
    "unknown_kind": ("description: x\ntransforms:\n  - {kind: tsunami, start: 0.1, bars: 5}\n",
                     r"transforms\[0\]\.kind: unknown transform 'tsunami' — known kinds: correlation_break"),
    "negative_multiplier": ("description: x\ntransforms:\n  - {kind: spread, start: 0.1, bars: 5}\n"
                            "  - {kind: liquidity, start: 0.1, bars: 5, multiplier: -2}\n",
                            r"transforms\[1\]\.multiplier: must be > 0, got -2 — use a positive factor"),
    "zero_multiplier": ("description: x\ntransforms:\n  - {kind: spread, start: 0.1, bars: 5, multiplier: 0}\n",
                        r"transforms\[0\]\.multiplier: must be > 0, got 0"),
    "fraction_outside": ("description: x\ntransforms:\n  - {kind: jump, start: 0.1, bars: 5, size: -0.1, "
                         "recovery: 1.5, recovery_bars: 2}\n", r"transforms\[0\]\.recovery: must be in \[0, 1\]"),
    "start_outside": ("description: x\ntransforms:\n  - {kind: spread, start: 1.5, bars: 5, multiplier: 2}\n",
                      r"transforms\[0\]\.start: must be in \[0, 1\], got 1.5"),
    "unknown_key": ("description: x\ntransforms:\n  - {kind: spread, start: 0.1, bars: 5, multiplyer: 2}\n",
                    r"transforms\[0\]\.multiplyer: unknown key — valid keys: .*multiplier"),
    "unknown_top_key": ("description: x\ntransforms: []\ncolour: red\n", r"colour: unknown key — valid keys"),
    "unknown_setting": ("description: x\nsettings:\n  execution: {spread_multipler: 2}\n",
                        r"settings\.execution\.spread_multipler: unknown key"),
    "bad_setting": ("description: x\nsettings:\n  execution: {max_participation: 2}\n",
                    r"settings\.execution\.max_participation: must be > 0 and <= 1"),
    "wrong_type": ("description: x\ntransforms:\n  - {kind: spread, start: 0.1, bars: five, multiplier: 2}\n",
                   r"transforms\[0\]\.bars: .five. is not a number of bars or a duration"),
    "missing_window": ("description: x\ntransforms:\n  - {kind: spread, multiplier: 2}\n",
                       r"transforms\[0\]\.start: missing — give start and bars here or a scenario-level window"),
    "missing_description": ("transforms: []\n", r"description: missing — add 'description'"),
    "two_line_description": ('description: "one\\ntwo"\n', r"description: must be one line"),
    "replay_without_sources": ("description: x\nreplay: true\n", r"sources: a historical replay needs its sources"),
    "bad_yaml": ("description: x\ntransforms: [\n  {kind: spread\n", r"line \d+: .* — fix the YAML syntax"),
    "empty_file": ("", r"<root>: the file is empty"),
    "not_a_mapping": ("- just\n- a list\n", r"<root>: expected a mapping"),
    "jump_too_long": ("description: x\ntransforms:\n  - {kind: jump, start: 0.1, bars: 2, size: -0.1, "
                      "recovery: 0.5, recovery_bars: 3}\n", r"transforms\[0\]\.bars: window of 2 bars is shorter"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_raise_one_line_errors_naming_file_and_field(tmp_path, case):
    text, pattern = MALFORMED[case]
    path = _write(tmp_path, f"{case}.yaml", text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert re.search(pattern, message), message
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("case,text,pattern", [
    ("window_outside_span", "description: x\ntransforms:\n  - {kind: spread, start: 0.9, bars: 500, multiplier: 2}\n",
     r"transforms\[0\]\.start: window \[1900, 2400\) does not fit in the span \[1000, 2000\)"),
    ("window_longer_than_span", "description: x\ntransforms:\n  - {kind: spread, start: random, bars: 5000, "
     "multiplier: 2}\n", r"transforms\[0\]\.bars: window of 5000 bars is longer than the span"),
    ("missing_pair", "description: x\ntransforms:\n  - {kind: spread, pairs: [USDJPY], start: 0.1, bars: 5, "
     "multiplier: 2}\n", r"transforms\[0\]\.pairs: USDJPY is not in the market \(pairs: EURUSD\) — .*analogue: true"),
    ("shift_without_rate", "description: x\ntransforms:\n  - {kind: financing, shift_bps: {XAU: 100}}\n",
     r"transforms\[0\]\.shift_bps: no rate for XAU"),
])
def test_files_that_do_not_fit_the_market_raise_when_applied(tmp_path, case, text, pattern):
    path = _write(tmp_path, f"{case}.yaml", text)
    scenario = load_scenario(path)
    with pytest.raises(ScenarioError, match=pattern) as err:
        apply_scenario(scenario, _market(("EURUSD",)), CONFIG, span=SPAN, rng=np.random.default_rng(0))
    assert str(err.value).startswith(f"{path}: ")


def test_analogue_applies_a_missing_pair_to_the_market_with_a_note(tmp_path):
    path = _write(tmp_path, "analogue.yaml", "description: x\ntransforms:\n  - {kind: spread, pairs: [USDJPY], "
                  "analogue: true, start: 0.1, bars: 5, multiplier: 2}\n")
    stressed = apply_scenario(load_scenario(path), _market(("EURUSD",)), CONFIG, span=SPAN,
                              rng=np.random.default_rng(0))
    assert stressed.notes == ("transforms[0] (spread): USDJPY not in the market — applied to EURUSD as an analogue",)
    assert any("analogue" in n for n in stressed.market.notes)


def test_settings_override_the_simulator_and_invalid_results_are_errors(tmp_path):
    path = _write(tmp_path, "settings.yaml", "description: x\nsettings:\n"
                  "  execution: {spread_multiplier: 3, max_participation: 0.01, impact_coefficient: 2}\n"
                  "  account: {max_leverage: 10}\n  financing: {rates: {JPY: 0.02}, markup: 0.05}\n")
    stressed = apply_scenario(load_scenario(path), _market(("EURUSD",)), CONFIG, rng=np.random.default_rng(0))
    cfg = stressed.env_config
    assert (cfg.execution.spread_multiplier, cfg.execution.max_participation, cfg.execution.impact_coefficient) == \
        (3.0, 0.01, 2.0)
    assert cfg.account.max_leverage == 10.0 and cfg.financing.rates["JPY"] == 0.02 and cfg.financing.markup == 0.05
    assert CONFIG.financing.rates["JPY"] != 0.02 and stressed.window == (0, N_BARS)
    bad = _write(tmp_path, "bad.yaml", "description: x\nsettings:\n  account: {stop_out_level: 2.0}\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml: settings: gives an invalid env config"):
        apply_scenario(load_scenario(bad), _market(("EURUSD",)), CONFIG, rng=np.random.default_rng(0))


def test_list_scenarios_finds_user_files_and_rejects_duplicate_names(tmp_path, monkeypatch):
    monkeypatch.delenv("FXRISK_SCENARIOS", raising=False)
    user = tmp_path / "mine"
    user.mkdir()
    _write(user, "my_spread.yaml", "description: my own\n" + TRANSFORM)
    names = [s.name for s in list_scenarios([user])]
    assert "my_spread" in names and "baseline" in names
    assert get_scenario("my_spread", [user]).path == str(user / "my_spread.yaml")

    other = tmp_path / "env"
    other.mkdir()
    _write(other, "from_env.yaml", "name: from_env\ndescription: via the environment\n")
    monkeypatch.setenv("FXRISK_SCENARIOS", f"{other}:")
    assert "from_env" in [s.name for s in list_scenarios()]

    _write(user, "copy.yaml", "name: baseline\ndescription: clash\n")
    with pytest.raises(ScenarioError) as err:
        list_scenarios([user])
    message = str(err.value)
    assert "duplicate scenario name 'baseline'" in message
    assert str(user / "copy.yaml") in message and str(library_dir() / "baseline.yaml") in message
    with pytest.raises(ScenarioError, match="scenario folder does not exist"):
        list_scenarios([tmp_path / "missing"])


def test_scenario_is_frozen():
    scenario = get_scenario("lehman_2008")
    with pytest.raises(AttributeError):
        scenario.name = "x"  # type: ignore[misc]
    assert isinstance(scenario.transforms, tuple)
    assert scenarios.ScenarioError is ScenarioError
