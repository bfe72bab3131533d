"""Cross-seed statistics: bootstrap coverage, determinism, paired tests, PSR / DSR reference numbers."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy import stats
from scipy.signal import lfilter

from agents.evaluation import statistics as s
from agents.evaluation.metrics import sharpe_ratio

EULER_GAMMA = 0.5772156649015329


def ar1(n: int, phi: float, mu: float, rng: np.random.Generator) -> np.ndarray:
    return mu + lfilter([1.0], [1.0, -phi], rng.normal(size=n))


# --- i.i.d. bootstrap ----------------------------------------------------------------------------------

def test_bootstrap_ci_of_the_mean_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(20240101)
    hits = 0
    for _ in range(200):
        values = rng.normal(1.0, 2.0, 30)
        point, low, high = s.bootstrap_ci(values, rng=rng, n_resamples=1000)
        assert low <= point <= high
        hits += low <= 1.0 <= high

    assert 0.88 <= hits / 200 <= 0.99


def test_bootstrap_ci_same_seed_same_result_and_seed_matters():
    values = np.random.default_rng(0).normal(size=40)

    first = s.bootstrap_ci(values, rng=np.random.default_rng(5))
    again = s.bootstrap_ci(values, rng=np.random.default_rng(5))
    other = s.bootstrap_ci(values, rng=np.random.default_rng(6))

    assert first == again
    assert first[0] == other[0] and first[1:] != other[1:]


def test_bootstrap_ci_loops_over_statistics_without_axis_and_gets_the_same_answer():
    values = np.random.default_rng(1).normal(size=25)

    vectorised = s.bootstrap_ci(values, np.median, rng=np.random.default_rng(2), n_resamples=300)
    looped = s.bootstrap_ci(values, lambda v: float(np.median(v)), rng=np.random.default_rng(2), n_resamples=300)

    assert looped == pytest.approx(vectorised)


def test_bootstrap_ci_short_inputs_and_bad_arguments():
    rng = np.random.default_rng(0)
    assert all(math.isnan(v) for v in s.bootstrap_ci([], rng=rng))
    point, low, high = s.bootstrap_ci([3.0], rng=rng)
    assert point == 3.0 and math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError, match="NaN") as err:
        s.bootstrap_ci([1.0, math.nan], rng=rng)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="confidence"):
        s.bootstrap_ci([1.0, 2.0], rng=rng, confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        s.bootstrap_ci([1.0, 2.0], rng=rng, n_resamples=0)
    with pytest.raises(TypeError, match="Generator"):
        s.bootstrap_ci([1.0, 2.0], rng=42)


def test_no_global_random_state_is_used():
    before = np.random.get_state()[1].copy()
    x = np.random.default_rng(0).normal(size=200)

    s.bootstrap_ci(x, rng=np.random.default_rng(1), n_resamples=100)
    s.sharpe_ci(x, 252.0, rng=np.random.default_rng(1), n_resamples=100)
    s.paired_sharpe_difference(x, -x, 252.0, rng=np.random.default_rng(1), n_resamples=100)

    assert np.array_equal(np.random.get_state()[1], before)


# --- stationary bootstrap ------------------------------------------------------------------------------

def continuation_rate(idx: np.ndarray, n: int) -> float:
    """Share of steps that continue the current block (index t = index t-1 + 1, wrapping)."""
    return float(np.mean(idx[:, 1:] == (idx[:, :-1] + 1) % n))


@pytest.mark.parametrize("mean_block", [1.0, 4.0, 10.0])
def test_stationary_bootstrap_blocks_have_the_requested_mean_length(mean_block):
    n = 500

    idx = s.stationary_bootstrap_indices(n, mean_block, 400, rng=np.random.default_rng(3))

    assert idx.shape == (400, n) and idx.dtype.kind == "i"
    assert idx.min() >= 0 and idx.max() < n
    expected = (1 - 1 / mean_block) + (1 / mean_block) / n  # a new block may start right after by chance
    assert continuation_rate(idx, n) == pytest.approx(expected, abs=0.01)
    counts = np.bincount(idx.ravel(), minlength=n) / idx.shape[0]  # every bar equally likely (stationarity)
    assert counts.mean() == pytest.approx(1.0) and counts.std() < 0.25


def test_stationary_bootstrap_same_seed_same_indices_and_edge_cases():
    a = s.stationary_bootstrap_indices(50, 5.0, 20, rng=np.random.default_rng(9))
    b = s.stationary_bootstrap_indices(50, 5.0, 20, rng=np.random.default_rng(9))

    assert np.array_equal(a, b)
    assert s.stationary_bootstrap_indices(0, 3.0, 4, rng=np.random.default_rng(0)).shape == (4, 0)
    assert np.array_equal(s.stationary_bootstrap_indices(1, 3.0, 4, rng=np.random.default_rng(0)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="block"):
        s.stationary_bootstrap_indices(10, 0.5, 4, rng=np.random.default_rng(0))


def test_default_block_length_follows_the_dependence():
    rng = np.random.default_rng(11)

    iid = s.default_block_length(rng.normal(size=2000))
    persistent = s.default_block_length(ar1(2000, 0.7, 0.0, rng))

    assert 1.0 <= iid < 3.0
    assert persistent > 5.0
    assert s.default_block_length(rng.normal(size=8)) == pytest.approx(2.0)  # short: n ** (1/3)
    assert s.default_block_length(np.zeros(100)) == pytest.approx(100 ** (1 / 3))
    assert s.default_block_length(rng.normal(size=2000), ar1(2000, 0.7, 0.0, rng)) > 5.0  # the longer one


# --- Sharpe ratio intervals ----------------------------------------------------------------------------

def test_sharpe_ci_point_is_the_metric_and_is_inside_the_interval():
    x = np.random.default_rng(4).normal(3e-4, 5e-3, 1000)

    point, low, high = s.sharpe_ci(x, 6240.0, rng=np.random.default_rng(0), n_resamples=500)

    assert point == sharpe_ratio(x, 6240.0)
    assert low < point < high
    assert s.sharpe_ci(x, 6240.0, rng=np.random.default_rng(0), n_resamples=500) == (point, low, high)


def test_block_bootstrap_covers_the_sharpe_of_autocorrelated_returns_where_iid_resampling_does_not():
    rng = np.random.default_rng(7)
    phi, mu, n = 0.5, 0.05, 300
    true_sharpe = mu * math.sqrt(1 - phi**2)  # per bar: mean / stationary std
    hits = {"iid": 0, "block": 0}
    for _ in range(80):
        x = ar1(n, phi, mu, rng)
        for name, block in (("iid", 1.0), ("block", None)):
            _, low, high = s.sharpe_ci(x, 1.0, rng=rng, block=block, n_resamples=300)
            hits[name] += low <= true_sharpe <= high

    assert hits["block"] / 80 >= 0.8
    assert hits["iid"] / 80 <= hits["block"] / 80 - 0.1


def test_sharpe_ci_of_short_and_flat_series():
    rng = np.random.default_rng(0)
    assert all(math.isnan(v) for v in s.sharpe_ci([0.01], 252.0, rng=rng))
    assert s.sharpe_ci(np.zeros(50), 252.0, rng=rng) == (0.0, 0.0, 0.0)


# --- paired comparison ---------------------------------------------------------------------------------

def test_a_series_against_itself_differs_by_zero_with_p_value_one():
    x = np.random.default_rng(8).normal(1e-4, 1e-2, 500)

    out = s.paired_sharpe_difference(x, x, 6240.0, rng=np.random.default_rng(0), n_resamples=500)

    assert out["diff"] == out["low"] == out["high"] == 0.0
    assert out["p_value"] == 1.0


def test_a_clear_edge_over_noise_is_significant():
    rng = np.random.default_rng(12)
    edge = rng.normal(0.2, 1.0, 1000)  # per-bar Sharpe 0.2 over 1,000 bars
    noise = rng.normal(0.0, 1.0, 1000)

    out = s.paired_sharpe_difference(edge, noise, 1.0, rng=np.random.default_rng(1), n_resamples=1000)

    assert out["low"] > 0
    assert out["p_value"] < 0.01
    assert out["diff"] == pytest.approx(out["sharpe_a"] - out["sharpe_b"])


def test_pairing_removes_the_common_market_shock():
    rng = np.random.default_rng(13)
    market = rng.normal(0.0, 1.0, 1000)
    a = market + rng.normal(0.02, 0.1, 1000)  # same market exposure, a small extra edge
    b = market + rng.normal(0.0, 0.1, 1000)
    kw = dict(rng=np.random.default_rng(2), n_resamples=500, block=1.0)

    paired = s.paired_sharpe_difference(a, b, 1.0, **kw)
    _, a_low, a_high = s.sharpe_ci(a, 1.0, **kw)
    _, b_low, b_high = s.sharpe_ci(b, 1.0, **kw)

    assert paired["low"] > 0 and paired["p_value"] < 0.05  # significant when paired...
    assert a_low < b_high and b_low < a_high  # ...though the separate intervals overlap


def test_paired_difference_is_antisymmetric_and_seeded():
    rng = np.random.default_rng(14)
    a, b = rng.normal(0.05, 1, 300), rng.normal(0.0, 1, 300)

    ab = s.paired_sharpe_difference(a, b, 252.0, rng=np.random.default_rng(3), n_resamples=400)
    ba = s.paired_sharpe_difference(b, a, 252.0, rng=np.random.default_rng(3), n_resamples=400)

    assert ba["diff"] == pytest.approx(-ab["diff"])
    assert (ba["low"], ba["high"]) == pytest.approx((-ab["high"], -ab["low"]))
    assert ba["p_value"] == pytest.approx(ab["p_value"])
    assert ab == s.paired_sharpe_difference(a, b, 252.0, rng=np.random.default_rng(3), n_resamples=400)


def test_paired_difference_rejects_runs_of_different_length_and_handles_tiny_ones():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="same bars"):
        s.paired_sharpe_difference(np.zeros(10), np.zeros(9), 252.0, rng=rng)
    out = s.paired_sharpe_difference([0.01], [0.02], 252.0, rng=rng)
    assert math.isnan(out["diff"]) and math.isnan(out["p_value"])


# --- probabilistic and deflated Sharpe ratios ----------------------------------------------------------

def test_expected_max_sharpe_hand_checked_value():
    # N = 100, V = 1: 0.4228 * 2.3263 + 0.5772 * 2.6822 = 2.5306
    z = NormalDist().inv_cdf
    oracle = (1 - EULER_GAMMA) * z(1 - 1 / 100) + EULER_GAMMA * z(1 - 1 / (100 * math.e))

    assert s.expected_max_sharpe(100, 1.0) == pytest.approx(oracle, rel=1e-12)
    assert s.expected_max_sharpe(100, 1.0) == pytest.approx(2.53, abs=0.005)
    assert s.expected_max_sharpe(100, 4.0) == pytest.approx(2 * oracle)
    assert s.expected_max_sharpe(1, 1.0) == 0.0
    values = [s.expected_max_sharpe(n, 1.0) for n in (2, 10, 100, 1000, 10_000)]
    assert values == sorted(values)


@pytest.mark.parametrize(("n_trials", "variance"), [(0, 1.0), (2.5, 1.0), (10, -1.0), (10, math.nan)])
def test_expected_max_sharpe_rejects_bad_arguments(n_trials, variance):
    with pytest.raises(ValueError):
        s.expected_max_sharpe(n_trials, variance)


@pytest.mark.parametrize(("skew", "kurt"), [(0.0, 3.0), (-2.0, 9.0), (1.0, 5.0)])
def test_psr_is_one_half_when_the_sharpe_equals_the_benchmark(skew, kurt):
    assert s.probabilistic_sharpe_ratio(0.1, 500, skew, kurt, sr_benchmark=0.1) == pytest.approx(0.5)


def test_psr_hand_value_and_tail_sensitivity():
    z = 0.1 * math.sqrt(100) / math.sqrt(1 + 0.5 * 0.01)  # normal returns: (kurt - 1) / 4 = 0.5
    expected = 0.5 * (1 + math.erf(z / math.sqrt(2)))

    assert s.probabilistic_sharpe_ratio(0.1, 101) == pytest.approx(expected, rel=1e-12)
    assert s.probabilistic_sharpe_ratio(0.1, 101, skew=-2.0, kurtosis=10.0) < expected  # fat left tail: less sure
    assert math.isnan(s.probabilistic_sharpe_ratio(0.1, 1))
    assert math.isnan(s.probabilistic_sharpe_ratio(2.0, 100, skew=5.0))  # variance term <= 0


def test_dsr_published_example():
    # Bailey & Lopez de Prado (2014), "The Deflated Sharpe Ratio": annualised SR 2.5 over 1,250 daily
    # bars, skew -3, kurtosis 10, 100 trials whose annualised Sharpe ratios have variance 0.5.
    sr0 = s.expected_max_sharpe(100, 0.5 / 250)

    dsr = s.probabilistic_sharpe_ratio(2.5 / math.sqrt(250), 1250, -3.0, 10.0, sr_benchmark=sr0)

    assert sr0 == pytest.approx(0.1132, abs=1e-4)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_dsr_decreases_as_the_number_of_trials_grows():
    returns = np.random.default_rng(21).standard_t(5, 1000) * 0.01 + 0.001

    dsr = [s.deflated_sharpe_ratio(returns, n, 0.002) for n in (1, 2, 10, 100, 1000)]

    assert all(0.0 <= v <= 1.0 for v in dsr)
    assert all(a > b for a, b in zip(dsr, dsr[1:]))


def test_dsr_with_one_trial_is_the_psr_against_zero_from_the_sample_moments():
    returns = np.random.default_rng(22).standard_t(4, 800) * 0.01 + 0.0005
    sr = returns.mean() / returns.std(ddof=1)
    expected = s.probabilistic_sharpe_ratio(sr, 800, stats.skew(returns), stats.kurtosis(returns, fisher=False))

    assert s.deflated_sharpe_ratio(returns, 1, 0.0) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(s.deflated_sharpe_ratio(np.full(10, 0.01), 10, 0.01))
    assert math.isnan(s.deflated_sharpe_ratio([0.01], 10, 0.01))
