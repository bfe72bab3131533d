"""A corrupt forecast-cache entry is detected (checksum, shape), reported with its path and recomputed."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from forecasters.cache import ForecastCache, cached_forecast
from forecasters.ewma import EwmaForecaster
from simulator.synthetic.generator import default_config, generate_market


@pytest.fixture(scope="module")
def market():
    return generate_market(default_config(("EURUSD",)), 600, rng=np.random.default_rng(1)).market


def corrupt(cache: ForecastCache, key: str, how: str, good) -> None:
    path = cache.path(key)
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "flipped byte":
        path.write_bytes(raw[:100] + bytes([raw[100] ^ 0xFF]) + raw[101:])
    elif how == "no checksum":
        cache.checksum_path(key).unlink()
    else:  # a well-formed entry of the wrong shape (valid checksum)
        short = dataclasses.replace(good, sigma=good.sigma[:10], index=good.index[:10])
        cache.save(key, short)


@pytest.mark.parametrize("how", ["truncated", "empty", "flipped byte", "no checksum", "wrong shape"])
def test_corrupt_entry_is_reported_with_its_path_and_recomputed(tmp_path, market, caplog, how) -> None:
    cache = ForecastCache(tmp_path)
    forecaster = EwmaForecaster()
    good, hit = cached_forecast(forecaster, market, None, cache)
    assert not hit
    key = cache.key(market, forecaster, None)
    corrupt(cache, key, how, good)
    with caplog.at_level(logging.WARNING, logger="fxrisk.cache"):
        again, hit = cached_forecast(forecaster, market, None, cache)
    assert not hit
    np.testing.assert_array_equal(again.sigma, good.sigma)
    assert any(str(cache.path(key)) in r.getMessage() and "corrupt" in r.getMessage() for r in caplog.records)
    third, hit = cached_forecast(forecaster, market, None, cache)  # rewritten: a clean hit now
    assert hit and np.array_equal(third.sigma, good.sigma, equal_nan=True)
