"""Stylised facts of the real sample and of the generator calibrated to it (issue: foundation, point 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.synthetic.calibration import calibrate, hourly_volatility_profile
from simulator.data.sample import load_sample
from simulator.synthetic.generator import generate_market

YEARS = 4


@pytest.fixture(scope="module")
def real():
    return load_sample()


@pytest.fixture(scope="module")
def calibrated(real):
    config, fit = calibrate(real)
    return config, fit


@pytest.fixture(scope="module")
def generated(calibrated):
    config, _ = calibrated
    return generate_market(config, YEARS * 6_200, rng=np.random.default_rng(2017))


def _returns(market) -> pd.Series:
    return pd.Series(market.log_returns()[1:, 0])


@pytest.fixture(params=["real", "generated"])
def market(request, real, generated):
    return real if request.param == "real" else generated.market


def test_hourly_returns_are_fat_tailed(market) -> None:
    assert _returns(market).kurt() > 3.0


def test_returns_have_no_linear_memory(market) -> None:
    assert abs(_returns(market).autocorr(1)) < 0.1


def test_volatility_clusters(market) -> None:
    # Intraday periodicity masks clustering in raw hourly |returns| (Andersen & Bollerslev
    # 1997): measure it on returns divided by their hour-of-day RMS profile.
    returns = _returns(market)
    hours = market.index[1:].hour
    profile = hourly_volatility_profile(market.index[1:], returns.to_numpy())
    abs_ret = (returns / profile[np.asarray(hours)]).abs()
    acf = [abs_ret.autocorr(lag) for lag in range(1, 11)]
    assert min(acf) > 0.0, acf


def test_generator_spread_widens_with_volatility(generated) -> None:
    bars = generated.market.pair("EURUSD")
    realised = np.log(bars["close"]).diff().pow(2).rolling(24).mean().pow(0.5)
    both = pd.concat([bars["spread"], realised], axis=1).dropna()
    assert both.corr().iloc[0, 1] > 0.0
    # and against the model's own conditional volatility
    assert np.corrcoef(bars["spread"], generated.conditional_vol[:, 0])[0, 1] > 0.0


def test_calibrated_volatility_within_20_percent_of_the_sample(real, generated) -> None:
    real_vol = real.summary().loc["EURUSD", "ann_vol_pct"]
    gen_vol = generated.market.summary().loc["EURUSD", "ann_vol_pct"]
    assert gen_vol == pytest.approx(real_vol, rel=0.20)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_calibrated_volatility_holds_for_one_year_samples(calibrated, real, seed) -> None:
    config, _ = calibrated
    one_year = generate_market(config, 6_225, rng=np.random.default_rng(seed)).market
    assert one_year.summary().loc["EURUSD", "ann_vol_pct"] == pytest.approx(
        real.summary().loc["EURUSD", "ann_vol_pct"], rel=0.20)


def test_garch_t_fit_is_plausible(calibrated) -> None:
    _, fit = calibrated
    assert fit.converged
    assert 0 < fit.alpha < 0.3 and 0.5 < fit.beta < 1 and fit.alpha + fit.beta < 1
    assert 2.5 < fit.nu < 15  # hourly FX: heavy tails


def test_same_seed_same_data_different_seed_different_data(calibrated) -> None:
    config, _ = calibrated
    a = generate_market(config, 500, rng=np.random.default_rng(9)).market
    b = generate_market(config, 500, rng=np.random.default_rng(9)).market
    c = generate_market(config, 500, rng=np.random.default_rng(10)).market
    pd.testing.assert_frame_equal(a.bars, b.bars)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
