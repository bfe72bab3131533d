"""LSTM/GRU volatility forecaster: causal, seeded, saved without pickle, better than a constant."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import torch

from forecasters.base import Split, VolForecast
from forecasters.neural import RecurrentVolConfig, RecurrentVolForecaster, variance_proxy
from simulator.data.market import MarketData
from simulator.synthetic.generator import default_config, generate_market
from tests.conftest import change_future

N_BARS = 3_000
SPLIT = Split.by_fraction(N_BARS, train=0.5, validation=0.2)  # train_end 1500, val_end 2100
TINY = RecurrentVolConfig(hidden_size=8, sequence_length=16, batch_size=128, max_epochs=4, patience=2,
                          learning_rate=1e-2, seed=0)


@pytest.fixture(scope="module")
def market() -> MarketData:
    config = default_config(("EURUSD", "USDJPY"))
    return generate_market(config, N_BARS, rng=np.random.default_rng(2)).market


@pytest.fixture(scope="module")
def fitted(market: MarketData) -> tuple[RecurrentVolForecaster, VolForecast]:
    model = RecurrentVolForecaster(TINY)
    forecast = model.forecast(market, SPLIT)  # fits on first use
    return model, forecast




def qlike(sigma: np.ndarray, r_next: np.ndarray) -> float:
    """mean(x - ln x - 1) with x = r²/σ² (floored): 0 for a perfect variance forecast."""
    x = np.maximum(r_next**2, 1e-20) / sigma**2
    return float(np.mean(x - np.log(x) - 1.0))


def test_shape_name_and_nan_before_val_end(market: MarketData, fitted) -> None:
    model, fc = fitted
    assert fc.name == model.name == "lstm"
    assert fc.sigma.shape == (N_BARS, 2) and fc.symbols == market.symbols
    assert fc.refits == 1
    assert np.isnan(fc.sigma[: SPLIT.val_end]).all()
    assert np.isfinite(fc.sigma[SPLIT.val_end:]).all() and (fc.sigma[SPLIT.val_end:] > 0).all()
    assert fc.first_valid() == SPLIT.val_end
    assert fc.info["best_epoch"] < fc.info["epochs"] <= TINY.max_epochs


def test_rows_without_a_full_window_are_nan(market: MarketData, fitted) -> None:
    model, _ = fitted
    short = market.slice(market.index[SPLIT.val_end - 10], None)  # features warm up for 48 bars
    fc = model.forecast(short)
    warm = 48 + TINY.sequence_length - 1  # first row with a full window of finite features
    assert np.isnan(fc.sigma[:warm]).all()
    assert np.isfinite(fc.sigma[warm:]).all()


def test_never_forecasts_a_time_it_learned_from(market: MarketData, fitted) -> None:
    model, fc = fitted
    earlier = model.forecast(market, Split(train_end=1000, val_end=1200))
    np.testing.assert_array_equal(earlier.sigma, fc.sigma)
    shifted = market.slice(market.index[SPLIT.val_end - 200], None)  # in-sample rows 0..199
    sigma = model.forecast(shifted).sigma
    assert np.isnan(sigma[:200]).all() and np.isfinite(sigma[200:]).all()


@pytest.mark.parametrize("t", [SPLIT.val_end, SPLIT.val_end + 400, N_BARS - 2])
def test_no_lookahead_in_inference(market: MarketData, fitted, t: int) -> None:
    model, fc = fitted
    changed = model.forecast(change_future(market, t), SPLIT)
    np.testing.assert_array_equal(changed.sigma[: t + 1], fc.sigma[: t + 1])
    assert not np.array_equal(changed.sigma[t + 1:], fc.sigma[t + 1:])


def test_no_lookahead_in_fitting(market: MarketData, fitted) -> None:
    """A model refitted on a market whose test span differs gives the same forecasts up to t."""
    _, fc = fitted
    t = SPLIT.val_end + 50
    refit = RecurrentVolForecaster(TINY).forecast(change_future(market, t), SPLIT)
    np.testing.assert_array_equal(refit.sigma[: t + 1], fc.sigma[: t + 1])


def test_training_uses_targets_before_train_end_only(market: MarketData) -> None:
    """No validation span: bars >= train_end must not move the weights; bar train_end - 1 must."""
    split = Split(train_end=1500, val_end=1500)
    config = replace(TINY, max_epochs=2)
    base = RecurrentVolForecaster(config).fit(market, split).forecast(market)
    after = RecurrentVolForecaster(config).fit(change_future(market, split.train_end - 1), split).forecast(market)
    np.testing.assert_array_equal(after.sigma, base.sigma)
    last = RecurrentVolForecaster(config).fit(change_future(market, split.train_end - 2), split).forecast(market)
    assert not np.array_equal(last.sigma, base.sigma, equal_nan=True)


def test_same_seed_same_forecasts_different_seed_different(market: MarketData, fitted) -> None:
    _, fc = fitted
    torch.manual_seed(12345)  # the global torch RNG must not matter
    again = RecurrentVolForecaster(TINY).forecast(market, SPLIT)
    np.testing.assert_array_equal(again.sigma, fc.sigma)
    other = RecurrentVolForecaster(replace(TINY, seed=1)).forecast(market, SPLIT)
    assert not np.allclose(other.sigma[SPLIT.val_end:], fc.sigma[SPLIT.val_end:])


def test_save_load_round_trip(tmp_path, market: MarketData, fitted) -> None:
    model, fc = fitted
    json_path = model.save(tmp_path / "lstm.pt")
    assert json_path == tmp_path / "lstm.json"
    meta = json.loads(json_path.read_text())
    assert meta["config"]["cell"] == "lstm" and meta["symbols"] == list(market.symbols)
    state = torch.load(tmp_path / "lstm.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    loaded = RecurrentVolForecaster.load(tmp_path / "lstm.pt")
    assert loaded.config == model.config and loaded.name == "lstm"
    np.testing.assert_array_equal(loaded.forecast(market, SPLIT).sigma, fc.sigma)
    np.testing.assert_array_equal(loaded.forecast(market).sigma, fc.sigma)  # the fitted split by default


def test_beats_constant_volatility_on_garch_data(market: MarketData, fitted) -> None:
    _, fc = fitted
    r = market.log_returns()
    test = slice(SPLIT.val_end, N_BARS - 1)  # the last row has no next return
    r_next = r[1:][test]
    constant = np.broadcast_to(np.nanstd(r[1:SPLIT.train_end], axis=0), r_next.shape)
    nn_loss, const_loss = qlike(fc.sigma[test], r_next), qlike(constant, r_next)
    assert nn_loss < const_loss - 0.1, (nn_loss, const_loss)
    # The bias scale makes sigma a close-to-close volatility: r²/σ² averages near 1.
    assert 0.7 < np.mean(r_next**2 / fc.sigma[test] ** 2) < 1.4


def test_gru_runs_and_beats_constant(market: MarketData) -> None:
    fc = RecurrentVolForecaster(replace(TINY, cell="gru")).forecast(market, SPLIT)
    assert fc.name == "gru"
    assert np.isnan(fc.sigma[: SPLIT.val_end]).all() and np.isfinite(fc.sigma[SPLIT.val_end:]).all()
    r = market.log_returns()
    test = slice(SPLIT.val_end, N_BARS - 1)
    r_next = r[1:][test]
    constant = np.broadcast_to(np.nanstd(r[1:SPLIT.train_end], axis=0), r_next.shape)
    assert qlike(fc.sigma[test], r_next) < qlike(constant, r_next)


def test_torch_thread_count_is_restored(market: MarketData, fitted) -> None:
    model, _ = fitted
    before = torch.get_num_threads()
    model.forecast(market, SPLIT)
    assert torch.get_num_threads() == before


def test_variance_proxy(market: MarketData) -> None:
    v = variance_proxy(market)
    assert np.isnan(v[0]).all() and (v[1:] >= 0).all()
    r = market.log_returns()[1:]
    # A range-based estimate of the bar variance: same order of magnitude as r² on average.
    assert 0.5 < np.mean(v[1:]) / np.mean(r**2) < 2.0


@pytest.mark.parametrize("bad", [dict(cell="rnn"), dict(hidden_size=0), dict(sequence_length=0),
                                 dict(learning_rate=0.0), dict(target_floor=1.5), dict(device="tpu")])
def test_config_validation(bad: dict) -> None:
    with pytest.raises(ValueError):
        RecurrentVolConfig(**bad)
