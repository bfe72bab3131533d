"""The planted-edge market: reproducible, schema-valid, and its edge is a learnable *sizing* edge."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from envs.config import EnvConfig
from envs.data import momentum_signal, prepare_env_data
from forecasters.cache import ForecastCache
from simulator.data.market import MarketData
from simulator.synthetic.planted_edge import PlantedEdgeConfig, PlantedEdgeMarket, drift_path, planted_edge_market

N_BARS = 20_000
LOOKBACK = 24  # the env's default signal_lookback
BARS_PER_YEAR = PlantedEdgeConfig().synthetic_config().bars_per_year


def sharpe(x: np.ndarray) -> float:
    """Annualised Sharpe ratio of per-bar returns."""
    return float(x.mean() / x.std() * np.sqrt(BARS_PER_YEAR))


def ewma_vol(returns: np.ndarray, halflife: float) -> np.ndarray:
    """Causal EWMA volatility: row t uses returns <= t (a naive loop)."""
    lam = 0.5 ** (1.0 / halflife)
    out = np.empty_like(returns)
    v = returns[1] ** 2
    for t, r in enumerate(returns.tolist()):
        v = lam * v + (1.0 - lam) * r * r
        out[t] = np.sqrt(v)
    return out


class Book:
    """Net per-bar returns of ``size[t] × signal[t]`` held over bar t+1, paying half the spread per unit traded."""

    def __init__(self, pm: PlantedEdgeMarket) -> None:
        self.close = pm.market.field_array("close")[:, 0]
        self.spread = pm.market.field_array("spread")[:, 0]
        self.returns = np.diff(np.log(self.close))  # returns[t] is bar t+1's log return
        self.signal = momentum_signal(self.close[:, None], LOOKBACK)[:, 0]
        self.regime = pm.regime

    def net(self, size: np.ndarray) -> np.ndarray:
        pos = size[:-1] * self.signal[:-1]
        turnover = np.abs(np.diff(np.concatenate([[0.0], pos])))
        return pos * self.returns - turnover * 0.5 * self.spread[1:] / self.close[:-1]


@pytest.fixture(scope="module")
def pm() -> PlantedEdgeMarket:
    return planted_edge_market(N_BARS, rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def book(pm: PlantedEdgeMarket) -> Book:
    return Book(pm)


def test_same_seed_same_market_and_different_seed_different_market() -> None:
    a = planted_edge_market(3000, rng=np.random.default_rng(11))
    b = planted_edge_market(3000, rng=np.random.default_rng(11))
    c = planted_edge_market(3000, rng=np.random.default_rng(12))
    pd.testing.assert_frame_equal(a.market.bars, b.market.bars)
    np.testing.assert_array_equal(a.regime, b.regime)
    np.testing.assert_array_equal(a.direction, b.direction)
    assert not np.allclose(a.market.field_array("close"), c.market.field_array("close"))


def test_bars_are_schema_valid_and_eurusd_like(pm: PlantedEdgeMarket) -> None:
    bars = pm.market.bars["EURUSD"]
    MarketData(bars=pm.market.bars, pairs=pm.market.pairs, source="re-validated")
    assert str(pm.market.index.tz) == "UTC" and pm.market.index.is_monotonic_increasing
    assert list(bars.columns) == ["open", "high", "low", "close", "spread", "liquidity"]
    o, h, lo, c = (bars[f].to_numpy() for f in ("open", "high", "low", "close"))
    assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all() and (lo > 0).all()
    assert 0.5 < np.median(c) < 2.0 and abs(c[0] / 1.10 - 1) < 0.01
    spread_pips = bars["spread"].to_numpy() / pm.market.pairs[0].pip_size
    assert 0.3 < np.median(spread_pips[pm.regime == 0]) < 2.0
    assert np.median(spread_pips[pm.regime == 1]) > np.median(spread_pips[pm.regime == 0])
    # The drift shifts open and close consistently: bar t's open-to-close return gained mu[t].
    base = pm.synthetic.market.bars["EURUSD"]
    gained = np.log(c / o) - np.log(base["close"].to_numpy() / base["open"].to_numpy())
    np.testing.assert_allclose(gained, pm.drift, atol=1e-12)


def test_regimes_are_long_and_vol_separates_them(pm: PlantedEdgeMarket) -> None:
    share = pm.regime.mean()
    assert 0.2 < share < 0.5
    runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, pm.regime, -1]) != 0))
    assert runs.mean() > 150  # spells of hundreds of bars
    r = np.diff(np.log(pm.market.field_array("close")[:, 0]))
    ratio = r[pm.regime[1:] == 1].std() / r[pm.regime[1:] == 0].std()
    assert 2.5 < ratio < 6.0
    flips = np.count_nonzero(np.diff(pm.direction))
    assert N_BARS / 300 < flips < N_BARS / 75  # flip probability ~1/150 per bar


def test_drift_follows_the_latent_direction_and_reverts_momentum_in_turbulence(pm: PlantedEdgeMarket) -> None:
    cfg = PlantedEdgeConfig()
    calm = pm.regime == 0
    np.testing.assert_allclose(pm.drift[calm], cfg.trend_drift * pm.calm_bar_vol * pm.direction[calm])
    # Naive oracle for the feedback loop: momentum sign of the final closes at t-1.
    logc = np.log(pm.market.field_array("close")[:, 0])
    for t in np.flatnonzero(~calm)[:2000].tolist():
        m = np.sign(logc[t - 1] - logc[t - 1 - LOOKBACK]) if t - 1 - LOOKBACK >= 0 else 0.0
        assert pm.drift[t] == pytest.approx(cfg.turbulent_drift * pm.calm_bar_vol * m, abs=1e-15)
    # No turbulent drift: turbulent bars carry no drift at all.
    flat = replace(cfg, turbulent_drift=0.0)
    mu = drift_path(pm.synthetic.market.field_array("close")[:, 0], pm.regime, pm.direction, flat)
    assert (mu[~calm] == 0).all()


def test_momentum_earns_in_calm_and_loses_in_turbulence(pm: PlantedEdgeMarket, book: Book) -> None:
    sr = book.signal[:-1] * book.returns
    calm = book.regime[1:] == 0
    calm_sr, turb_sr = sr[calm], sr[~calm]
    t_calm = calm_sr.mean() / (calm_sr.std() / np.sqrt(calm_sr.size))
    assert t_calm > 3.0 and calm_sr.mean() > 0.02 * pm.calm_bar_vol
    assert turb_sr.mean() <= 0.0
    # The 24-bar momentum sign mostly agrees with the latent direction in calm bars.
    assert (book.signal == pm.direction)[pm.regime == 0].mean() > 0.65


def test_oracle_sizing_beats_fixed_size_by_far(book: Book) -> None:
    fixed = sharpe(book.net(np.ones(book.close.size)))
    oracle = sharpe(book.net((book.regime == 0).astype(float)))
    assert oracle > 2.0
    assert oracle > fixed + 1.5


def test_a_causal_volatility_rule_beats_fixed_size(book: Book) -> None:
    """Size 1 while the 48-bar EWMA vol is below its expanding median (data <= t), else 0."""
    vol = ewma_vol(np.r_[0.0, book.returns], halflife=48)
    median = pd.Series(vol).expanding(min_periods=500).median().to_numpy()
    size = np.where(np.isfinite(median), (vol < median).astype(float), 1.0)
    rule, fixed = sharpe(book.net(size)), sharpe(book.net(np.ones(book.close.size)))
    assert rule > fixed + 0.5
    # Causal: changing the future leaves the rule's past sizes untouched.
    cut = 10_000
    vol_cut = ewma_vol(np.r_[0.0, book.returns][:cut], halflife=48)
    median_cut = pd.Series(vol_cut).expanding(min_periods=500).median().to_numpy()
    np.testing.assert_array_equal(np.where(np.isfinite(median_cut), (vol_cut < median_cut) * 1.0, 1.0), size[:cut])


def test_the_env_builds_on_it_and_its_vol_feature_shows_the_regime(tmp_path) -> None:
    pm = planted_edge_market(4000, rng=np.random.default_rng(3))
    config = EnvConfig(vol_model="ewma", var_window=200, action_mode="sizing")
    data = prepare_env_data(pm.market, config, cache=ForecastCache(tmp_path))
    assert data.first_step < 1000 and data.features.dtype == np.float32
    np.testing.assert_array_equal(data.signal[:, 0], momentum_signal(data.close, LOOKBACK)[:, 0])
    # The observation's standardised vol forecast is higher in turbulent bars.
    col = data.feature_names.index("EURUSD:log_sigma_forecast")
    feat, reg = data.features[data.first_step :, col], pm.regime[data.first_step :]
    assert np.median(feat[reg == 1]) > np.median(feat[reg == 0]) + 1.0


@pytest.mark.parametrize(("field", "value"), [
    ("trend_drift", 0.0), ("flip_prob", 1.0), ("vol_multiplier", 0.5), ("calm_to_turbulent", 0.0),
    ("turbulent_drift", 2.0), ("signal_lookback", 0), ("calm_annual_vol", -0.1), ("symbol", "EURUS"),
    ("start", "2020-01-06 22:00"),
])
def test_bad_config_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValueError):
        PlantedEdgeConfig(**{field: value})


def test_the_planted_edge_settings_come_from_the_data_section_strictly():
    from agents.hyperparams import DataConfig
    from agents.training import load_market
    from simulator.common.errors import ConfigError

    weak = DataConfig(source="planted_edge", n_bars=1000, planted_edge={"trend_drift": 0.034, "turbulent_drift": 0.0})
    assert weak.planted_edge_config().trend_drift == 0.034
    strong = DataConfig(source="planted_edge", n_bars=1000)
    a, b = load_market(weak), load_market(strong)
    assert not np.allclose(a.bars.to_numpy(), b.bars.to_numpy())  # the drift reached the generator
    with pytest.raises((ConfigError, ValueError), match="trend_drif") as err:
        DataConfig(source="planted_edge", planted_edge={"trend_drif": 0.1})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="planted_edge"):
        DataConfig(source="sample", planted_edge={"trend_drift": 0.1})


@pytest.mark.parametrize("flat", [True, False])
def test_intraday_vol_profile_can_be_flat(flat: bool) -> None:
    """intraday_vol_seasonality False: calm bars have the same volatility at every hour (the issue's 0.1% a bar)."""
    cfg = PlantedEdgeConfig(calm_annual_vol=0.001 * np.sqrt(BARS_PER_YEAR), trend_drift=0.03, turbulent_drift=0.0,
                            intraday_vol_seasonality=not flat)
    out = planted_edge_market(N_BARS, rng=np.random.default_rng(5), config=cfg)
    close = out.market.bars["EURUSD"]["close"].to_numpy()
    r = np.diff(np.log(close))
    hourly = np.diff(out.market.index.asi8) == 3_600 * 10**9  # not across the weekend gap
    calm = (out.regime[1:] == 0) & (out.regime[:-1] == 0) & hourly
    hours = out.market.index.hour.to_numpy()[1:]
    by_hour = np.array([r[calm & (hours == h)].std() for h in range(24)])
    spread = cfg.synthetic_config().seasonality.hourly_spread
    assert spread == PlantedEdgeConfig().synthetic_config().seasonality.hourly_spread  # costs' profile kept
    if flat:
        assert by_hour.max() / by_hour.min() < 1.35
        assert 0.0008 < np.median(by_hour) < 0.0012  # ~0.1% per calm bar
    else:
        assert by_hour.max() / by_hour.min() > 1.6
