"""VaR / ES backtests and volatility losses.

Published reference numbers come from MathWorks' Risk Management Toolbox documentation
(``varbacktest`` examples on the bundled ``VaRBacktestData`` set: 1043 S&P returns; pages
varbacktest.pof, varbacktest.cci, varbacktest.cc, varbacktest.tl) and from
``risk.validation.proportionOfFailuresTest`` (3 events in 250 trials). Values are asserted to the
precision printed there (5 significant digits).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from forecasters.backtests import (
    TestResult,
    acerbi_szekely_z2,
    aligned,
    backtest_summary,
    basel_traffic_light,
    christoffersen_independence,
    conditional_coverage,
    exceptions,
    independence_from_counts,
    kupiec_pof,
    mse_variance,
    qlike,
    traffic_light_last,
    traffic_light_probability,
    transition_counts,
    z2_test,
)


def _sig(value: float, published: float, digits: int = 5) -> None:
    """Assert ``value`` equals a published number to its printed significant digits."""
    assert value == pytest.approx(published, rel=0.5 * 10 ** (1 - digits))


def _hits_with_counts(n00: int, n01: int, n10: int, n11: int) -> np.ndarray:
    """A 0-started, 0-ended hit series with the given transition counts (n01 == n10 runs of 1s)."""
    assert n01 == n10
    runs = [1] * n01
    for i in range(n11):  # lengthen runs by one to create each 1->1 transition
        runs[i % n01] += 1
    zero_runs = n01 + 1
    zeros_total = n00 + zero_runs
    zero_len = [zeros_total // zero_runs + (1 if i < zeros_total % zero_runs else 0) for i in range(zero_runs)]
    seq: list[bool] = []
    for i in range(n01):
        seq += [False] * zero_len[i] + [True] * runs[i]
    seq += [False] * zero_len[-1]
    return np.array(seq)


# --------------------------------------------------------------------------- published examples


@pytest.mark.parametrize(
    ("failures", "n_obs", "var_level", "lr", "pvalue"),
    [
        (57, 1043, 0.95, 0.46147, 0.49694),  # varbacktest.pof, Normal95
        (17, 1043, 0.99, 3.5118, 0.060933),  # varbacktest.pof, Normal99
        (3, 250, 0.95, 10.812, 0.0010083),  # proportionOfFailuresTest, p = 0.05
        (3, 250, 0.99, 0.09494, 0.75799),  # proportionOfFailuresTest, p = 0.01
    ],
)
def test_kupiec_reproduces_matlab_examples(failures, n_obs, var_level, lr, pvalue):
    # Arrange
    p = 1 - var_level
    # Act
    result = kupiec_pof(failures, n_obs, p)
    # Assert
    _sig(result.statistic, lr, digits=5 if lr >= 0.1 else 4)
    _sig(result.pvalue, pvalue)
    assert result.dof == 1


def test_christoffersen_and_cc_reproduce_matlab_example():
    # Arrange: varbacktest.cci / varbacktest.cc, Normal95: N00 932, N10 53, N01 53, N11 4, 57 failures
    hits = _hits_with_counts(n00=932, n01=53, n10=53, n11=4)
    assert hits.size == 1043 and hits.sum() == 57
    # Act
    counts = transition_counts(hits)
    ind = christoffersen_independence(hits)
    cc = conditional_coverage(hits, 0.05)
    # Assert
    assert counts == (932, 53, 53, 4)
    _sig(ind.statistic, 0.25866)
    _sig(ind.pvalue, 0.61104)
    _sig(cc.statistic, 0.72013)
    _sig(cc.pvalue, 0.69763)
    assert cc.dof == 2


@pytest.mark.parametrize(
    ("failures", "var_level", "probability", "zone"),
    [
        (57, 0.95, 0.77913, "green"),  # Normal95
        (17, 0.99, 0.97991, "yellow"),  # Normal99
        (59, 0.95, 0.85155, "green"),  # Historical95
        (12, 0.99, 0.74996, "green"),  # Historical99
        (22, 0.99, 0.99952, "yellow"),  # EWMA99
    ],
)
def test_traffic_light_reproduces_matlab_tl_example(failures, var_level, probability, zone):
    # Act
    prob = traffic_light_probability(failures, 1043, 1 - var_level)
    # Assert
    _sig(prob, probability)
    assert basel_traffic_light(failures, 1043, 1 - var_level) == zone


# --------------------------------------------------------------------------- traffic light


def test_basel_zones_at_250_obs_99pct():
    # Act
    zones = [basel_traffic_light(x, 250, 0.01) for x in range(0, 16)]
    # Assert
    assert zones == ["green"] * 5 + ["yellow"] * 5 + ["red"] * 6


def test_traffic_light_last_uses_only_last_window():
    # Arrange: 20 early exceptions, then 250 bars with 3 exceptions
    hits = np.zeros(500, dtype=bool)
    hits[:20] = True
    hits[[300, 400, 499]] = True
    # Act / Assert
    assert traffic_light_last(hits) == "green"
    assert traffic_light_last(np.r_[hits, np.ones(7, dtype=bool)]) == "red"


# --------------------------------------------------------------------------- independence


def test_clustered_exceptions_reject_independence_evenly_spread_do_not():
    # Arrange: same count (10 in 500), clustered vs evenly spread
    clustered = np.zeros(500, dtype=bool)
    clustered[200:210] = True
    spread = np.zeros(500, dtype=bool)
    spread[25::50] = True
    assert clustered.sum() == spread.sum() == 10
    # Act
    res_clustered = christoffersen_independence(clustered)
    res_spread = christoffersen_independence(spread)
    # Assert
    assert res_clustered.reject_5pct and res_clustered.pvalue < 1e-6
    assert not res_spread.reject_5pct
    assert kupiec_pof(10, 500, 0.02).pvalue == pytest.approx(1.0)  # coverage alone cannot tell them apart


def test_independence_oracle_loop_matches_counts():
    # Arrange
    rng = np.random.default_rng(3)
    hits = rng.random(300) < 0.1
    # Act
    n = {(a, b): 0 for a in (0, 1) for b in (0, 1)}
    for prev, cur in zip(hits[:-1], hits[1:]):
        n[(int(prev), int(cur))] += 1
    # Assert
    assert transition_counts(hits) == (n[0, 0], n[0, 1], n[1, 0], n[1, 1])
    assert christoffersen_independence(hits) == independence_from_counts(n[0, 0], n[0, 1], n[1, 0], n[1, 1])


# --------------------------------------------------------------------------- degenerate inputs


@pytest.mark.parametrize("hits", [np.zeros(250, dtype=bool), np.ones(250, dtype=bool)])
def test_zero_and_all_exceptions_give_finite_statistics(hits):
    # Act
    results = [kupiec_pof(int(hits.sum()), hits.size, 0.01), christoffersen_independence(hits),
               conditional_coverage(hits, 0.01)]
    # Assert
    for res in results:
        assert np.isfinite(res.statistic) and np.isfinite(res.pvalue)
        assert res.statistic >= 0 and 0 <= res.pvalue <= 1


def test_kupiec_zero_exceptions_closed_form():
    # x = 0: LR = -2 T ln(1 - p)
    assert kupiec_pof(0, 250, 0.01).statistic == pytest.approx(-2 * 250 * np.log(0.99))
    # x = T: LR = -2 T ln p
    assert kupiec_pof(250, 250, 0.01).statistic == pytest.approx(-2 * 250 * np.log(0.01))


def test_invalid_inputs_raise():
    with pytest.raises(ValueError):
        kupiec_pof(5, 0, 0.01)
    with pytest.raises(ValueError):
        kupiec_pof(11, 10, 0.01)
    with pytest.raises(ValueError):
        kupiec_pof(1, 10, 1.5)
    with pytest.raises(ValueError):
        christoffersen_independence(np.array([True]))
    with pytest.raises(ValueError):
        exceptions(np.zeros((3, 2)), np.ones((3, 2)))


# --------------------------------------------------------------------------- exceptions / NaN


def test_exceptions_definition_and_nan_rows_dropped():
    # Arrange: loss 2% vs VaR 1% is a hit; loss equal to VaR is not; NaN rows dropped
    r = np.array([-0.02, -0.01, 0.03, np.nan, -0.05, -0.015])
    v = np.array([0.01, 0.01, 0.01, 0.01, np.nan, 0.01])
    # Act
    hits = exceptions(r, v)
    # Assert
    np.testing.assert_array_equal(hits, [True, False, False, True])
    ra, va = aligned(r, v)
    assert ra.size == va.size == 4


def test_coverage_sanity_normal_var_is_not_rejected():
    # Arrange: returns N(0, sigma_t), 99% VaR = 2.326 sigma_t
    rng = np.random.default_rng(42)
    sigma = 0.005 * np.exp(0.5 * np.sin(np.linspace(0, 20, 2500)))
    r = rng.standard_normal(2500) * sigma
    var = 2.326 * sigma
    # Act
    hits = exceptions(r, var)
    res = kupiec_pof(int(hits.sum()), hits.size, 0.01)
    # Assert
    assert not res.reject_5pct
    assert not conditional_coverage(hits, 0.01).reject_5pct


def test_undercovering_var_is_rejected():
    rng = np.random.default_rng(7)
    sigma = np.full(2500, 0.006)
    r = rng.standard_normal(2500) * sigma
    hits = exceptions(r, 0.7 * 2.326 * sigma)
    assert kupiec_pof(int(hits.sum()), hits.size, 0.01).reject_5pct


# --------------------------------------------------------------------------- Acerbi–Szekely Z2

ALPHA_ES = 0.025
T_ES = 10_000


def _tail_forecasts(dist, sigma):
    if dist == "normal":
        q = stats.norm.ppf(1 - ALPHA_ES)
        return q * sigma, stats.norm.pdf(q) / ALPHA_ES * sigma
    nu = dist[1]
    c = np.sqrt((nu - 2) / nu)
    qt = stats.t.ppf(1 - ALPHA_ES, nu)
    es_t = (nu + qt**2) / (nu - 1) * stats.t.pdf(qt, nu) / ALPHA_ES
    return qt * c * sigma, es_t * c * sigma


def _draw(dist, rng, n):
    if dist == "normal":
        return rng.standard_normal(n)
    nu = dist[1]
    return rng.standard_t(nu, n) * np.sqrt((nu - 2) / nu)


@pytest.mark.parametrize("dist", ["normal", ("t", 5.0)])
def test_z2_near_zero_and_not_rejected_under_correct_model(dist):
    # Arrange
    rng = np.random.default_rng(2024)
    sigma = 0.006 * np.exp(0.4 * np.sin(np.linspace(0, 30, T_ES)))
    r = _draw(dist, rng, T_ES) * sigma
    var, es = _tail_forecasts(dist, sigma)
    # Act
    res = z2_test(r, var, es, ALPHA_ES, rng=np.random.default_rng(1), dist=dist, n_sims=500)
    # Assert
    assert abs(res.statistic) < 0.2
    assert not res.reject_5pct
    assert res.dof == 0


@pytest.mark.parametrize("dist", ["normal", ("t", 5.0)])
def test_z2_rejects_es_underestimated_by_30pct(dist):
    # Arrange
    rng = np.random.default_rng(2025)
    sigma = np.full(T_ES, 0.006)
    r = _draw(dist, rng, T_ES) * sigma
    var, es = _tail_forecasts(dist, sigma)
    # Act
    res = z2_test(r, var, 0.7 * es, ALPHA_ES, rng=np.random.default_rng(1), dist=dist, n_sims=500)
    # Assert: E[Z2] = 1 - 1/0.7 ≈ -0.43
    assert res.statistic < -0.2
    assert res.reject_5pct and res.pvalue < 0.01


def test_z2_with_simulate_callable_matches_named_dist():
    # Arrange
    rng = np.random.default_rng(5)
    sigma = np.full(4000, 0.01)
    r = rng.standard_normal(4000) * sigma
    var, es = _tail_forecasts("normal", sigma)
    # Act
    named = z2_test(r, var, 0.7 * es, ALPHA_ES, rng=np.random.default_rng(9), n_sims=300)
    custom = z2_test(r, var, 0.7 * es, ALPHA_ES, rng=np.random.default_rng(9), n_sims=300,
                     simulate=lambda g, n: g.standard_normal(n), n_reference=200_000)
    # Assert
    assert custom.statistic == named.statistic
    assert custom.pvalue == pytest.approx(named.pvalue, abs=0.02)


def test_z2_sign_convention_by_hand():
    # Arrange: T = 4, alpha = 0.25, one exception: loss 3 vs VaR 2, ES 3 -> Z2 = -3/(4*0.25*3) + 1 = 0
    r = np.array([-3.0, 1.0, 0.5, -1.0])
    var = np.full(4, 2.0)
    # Act / Assert
    assert acerbi_szekely_z2(r, var, np.full(4, 3.0), 0.25) == pytest.approx(0.0)
    assert acerbi_szekely_z2(r, var, np.full(4, 2.0), 0.25) == pytest.approx(-0.5)  # ES too small
    assert acerbi_szekely_z2(r, var, np.full(4, 6.0), 0.25) == pytest.approx(0.5)  # ES conservative


# --------------------------------------------------------------------------- QLIKE / MSE


def test_qlike_and_mse_minimised_by_true_variance():
    # Arrange
    rng = np.random.default_rng(11)
    n = 20_000
    sigma = 0.005 * np.exp(0.5 * np.sin(np.linspace(0, 40, n)))
    rv = (rng.standard_normal(n) * sigma) ** 2
    # Act
    q = {k: qlike(k * sigma, rv) for k in (0.7, 1.0, 1.4)}
    m = {k: mse_variance(k * sigma, rv) for k in (0.7, 1.0, 1.4)}
    q_raw = {k: qlike(k * sigma, rv, normalised=False) for k in (0.7, 1.0, 1.4)}
    # Assert
    assert q[1.0] < q[0.7] and q[1.0] < q[1.4]
    assert m[1.0] < m[0.7] and m[1.0] < m[1.4]
    assert q_raw[1.0] < q_raw[0.7] and q_raw[1.0] < q_raw[1.4]
    assert min(q.values()) >= 0


def test_qlike_zero_at_perfect_forecast_and_nan_rows_ignored():
    # Arrange
    sigma = np.array([0.01, np.nan, 0.02, 0.03])
    rv = np.array([1e-4, 4e-4, np.nan, 9e-4])
    # Act / Assert
    assert qlike(sigma, rv) == pytest.approx(0.0, abs=1e-12)
    assert mse_variance(sigma, rv) == pytest.approx(0.0, abs=1e-20)
    assert qlike(sigma[[0, 3]], rv[[0, 3]]) == qlike(sigma, rv)


def test_qlike_drops_zero_realised_variance_rows():
    sigma = np.array([0.01, 0.01])
    assert qlike(sigma, np.array([0.0, 2e-4])) == pytest.approx(2 - np.log(2) - 1)
    assert np.isfinite(qlike(sigma, np.array([0.0, 2e-4]), normalised=False))


# --------------------------------------------------------------------------- summary


def test_backtest_summary_contents():
    # Arrange: forecasts made at row t for returns_next[t]; last row NaN as from realised_next
    rng = np.random.default_rng(8)
    n = 1000
    sigma = np.full(n, 0.006)
    sigma[:20] = np.nan  # warm-up
    r_next = rng.standard_normal(n) * 0.006
    r_next[-1] = np.nan
    var = 2.326 * sigma
    es = stats.norm.pdf(2.326) / 0.01 * sigma
    # Act
    s = backtest_summary(r_next, var, es=es, alpha=0.99, sigma=sigma)
    # Assert
    assert s["n_obs"] == n - 21
    assert s["expected_rate"] == pytest.approx(0.01)
    assert s["rate"] == pytest.approx(s["exceptions"] / s["n_obs"])
    assert s["kupiec_p"] == kupiec_pof(s["exceptions"], s["n_obs"], 0.01).pvalue
    assert s["traffic_light"] in {"green", "yellow", "red"}
    assert s["avg_var"] == pytest.approx(2.326 * 0.006)
    for key in ("christoffersen_p", "cc_p", "z2", "qlike", "mse_variance"):
        assert np.isfinite(s[key]), key
    bare = backtest_summary(r_next, var)
    assert np.isnan(bare["z2"]) and np.isnan(bare["qlike"])


def test_test_result_reject_flag():
    assert TestResult(5.0, 0.01, 1).reject_5pct
    assert not TestResult(0.1, 0.7, 1).reject_5pct


# --------------------------------------------------------------------------- issue 15: the wider suite

from forecasters.backtests import (  # noqa: E402
    acerbi_szekely_z1,
    acerbi_szekely_z3,
    binomial_test,
    duration_test,
    dynamic_quantile_test,
    hit_durations,
    mcneil_frey_es_test,
    model_confidence_set,
    tick_loss,
    z1_test,
)


@pytest.mark.parametrize("x,n,p", [(3, 250, 0.01), (12, 1000, 0.01), (70, 1000, 0.05), (0, 500, 0.01)])
def test_binomial_test_is_the_exact_minlike_sum(x, n, p):
    pmf = stats.binom.pmf(np.arange(n + 1), n, p)
    expected = pmf[pmf <= pmf[x] * (1 + 1e-7)].sum()
    assert binomial_test(x, n, p).pvalue == pytest.approx(min(expected, 1.0), rel=1e-6)


def test_hit_durations_censor_the_ends():
    d, c = hit_durations(np.array([0, 0, 1, 0, 0, 0, 1, 1, 0, 0], bool))
    assert d.tolist() == [3, 4, 1, 2] and c.tolist() == [True, False, False, True]
    d, c = hit_durations(np.array([1, 0, 1], bool))
    assert d.tolist() == [1, 2] and c.tolist() == [False, False]


def _duration_lr_independent(hits: np.ndarray) -> float:
    """Christoffersen-Pelletier LR by a direct two-parameter Nelder-Mead MLE (no profiling)."""
    from scipy.optimize import minimize

    idx = [i + 1 for i, h in enumerate(hits) if h]
    dur, cen = [idx[0]], [not hits[0]]
    for a, b in zip(idx[:-1], idx[1:]):
        dur.append(b - a)
        cen.append(False)
    if idx[-1] < len(hits):
        dur.append(len(hits) - idx[-1])
        cen.append(True)
    d, c = np.array(dur, float), np.array(cen)

    def nll(theta):
        a, b = np.exp(theta)
        log_s = -((a * d) ** b)
        log_f = np.log(b) + b * np.log(a) + (b - 1) * np.log(d) + log_s
        return -np.sum(np.where(c, log_s, log_f))

    alt = minimize(nll, [np.log(1 / d.mean()), 0.0], method="Nelder-Mead",
                   options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000})
    null = minimize(lambda la: nll([la[0], 0.0]), [np.log(1 / d.mean())], method="Nelder-Mead",
                    options={"xatol": 1e-12, "fatol": 1e-12})
    return 2 * (null.fun - alt.fun)


def test_duration_test_matches_a_direct_two_parameter_mle_and_flags_clusters():
    rng = np.random.default_rng(12)
    iid = rng.random(2000) < 0.02
    res = duration_test(iid)
    assert res.statistic == pytest.approx(_duration_lr_independent(iid), abs=1e-5)
    size = np.mean([duration_test(np.random.default_rng(s).random(2000) < 0.02).pvalue < 0.05 for s in range(200)])
    assert 0.02 <= size <= 0.09  # i.i.d. hits: rejected at about the nominal 5%
    clustered = np.zeros(2000, bool)
    for start in rng.choice(1990, 8, replace=False):
        clustered[start:start + 5] = True
    res_c = duration_test(clustered)
    assert res_c.statistic == pytest.approx(_duration_lr_independent(clustered), abs=1e-5)
    assert res_c.pvalue < 0.01
    with pytest.raises(ValueError, match="two exceptions"):
        duration_test(np.r_[True, np.zeros(50, bool)])


def test_dynamic_quantile_matches_statsmodels_ols():
    import statsmodels.api as sm

    rng = np.random.default_rng(13)
    r = rng.standard_normal(1500) * np.r_[np.full(750, 1.0), np.full(750, 1.6)]
    var = stats.norm.ppf(0.99) * (1 + 0.05 * rng.standard_normal(1500))  # nearly constant VaR
    res = dynamic_quantile_test(r, var, 0.01)
    hit = (-r > var).astype(float) - 0.01
    x = np.column_stack([np.ones(1496)] + [hit[4 - k:1500 - k] for k in range(1, 5)] + [var[4:]])
    fit = sm.OLS(hit[4:], x).fit()
    assert res.statistic == pytest.approx(fit.fittedvalues @ fit.fittedvalues / (0.01 * 0.99), rel=1e-9)
    assert res.dof == 6 and res.pvalue < 0.01  # variance break with a constant VaR: rejected
    ok = dynamic_quantile_test(rng.standard_normal(3000), np.full(3000, stats.norm.ppf(0.99))
                               * (1 + 0.01 * rng.standard_normal(3000)), 0.01)
    assert ok.pvalue > 0.05


def test_mcneil_frey_statistic_is_the_one_sample_t_and_bootstrap_rejects_thin_es():
    rng = np.random.default_rng(14)
    n = 20_000
    sigma = np.exp(rng.normal(0, 0.3, n))
    r = sigma * rng.standard_normal(n)
    q, es_std = stats.norm.ppf(0.975), stats.norm.pdf(stats.norm.ppf(0.975)) / 0.025
    var, es = sigma * q, sigma * es_std
    good = mcneil_frey_es_test(r, var, es, sigma=sigma, rng=np.random.default_rng(1))
    hit = -r > var
    t_ref = stats.ttest_1samp((-r[hit] - es[hit]) / sigma[hit], 0.0)
    assert good.statistic == pytest.approx(t_ref.statistic, rel=1e-10)
    assert good.pvalue > 0.05
    thin = mcneil_frey_es_test(r, var, var + 0.6 * (es - var), sigma=sigma, rng=np.random.default_rng(1))
    assert thin.pvalue < 0.01


def test_z1_by_hand_and_monte_carlo_size_and_power():
    r = np.array([-3.0, 0.5, -1.0, -2.5])
    var = np.array([2.0, 2.0, 2.0, 2.0])
    es = np.array([2.5, 2.5, 2.5, 2.5])
    assert acerbi_szekely_z1(r, var, es) == pytest.approx(1 - (3.0 / 2.5 + 2.5 / 2.5) / 2)
    rng = np.random.default_rng(15)
    z = rng.standard_normal(5000)
    q, es_std = stats.norm.ppf(0.975), stats.norm.pdf(stats.norm.ppf(0.975)) / 0.025
    ok = z1_test(z, np.full(5000, q), np.full(5000, es_std), 0.025, rng=np.random.default_rng(2), n_sims=500)
    bad = z1_test(1.4 * z, np.full(5000, q), np.full(5000, es_std), 0.025, rng=np.random.default_rng(2),
                  n_sims=500)
    assert ok.pvalue > 0.05 and bad.pvalue < 0.01 and bad.statistic < ok.statistic


def test_z3_expectation_matches_monte_carlo_and_detects_thin_tails():
    t, alpha_tail = 1000, 0.025
    m = int(t * alpha_tail)
    rng = np.random.default_rng(16)

    def ppf(u):
        return np.tile(stats.norm.ppf(u), (t, 1))

    # a correct model: Z3 averages to 0 (E over simulated PIT samples)
    z3 = [acerbi_szekely_z3(rng.random(t), ppf, alpha_tail) for _ in range(200)]
    assert abs(np.mean(z3)) < 0.01
    # the denominator: E[ES_hat] of T normal draws, by brute force
    sims = np.sort(rng.standard_normal((4000, t)), axis=1)[:, :m]
    brute = -sims.mean()
    u = rng.random(t)
    low = np.sort(u)[:m]
    direct = 1 - (-stats.norm.ppf(low).mean()) / brute
    assert acerbi_szekely_z3(u, ppf, alpha_tail) == pytest.approx(direct, abs=0.01)
    # returns 1.5x wider than the model: PITs pile into the tails, Z3 strongly negative
    pit_wide = stats.norm.cdf(1.5 * rng.standard_normal(t))
    assert acerbi_szekely_z3(pit_wide, ppf, alpha_tail) < -0.3


def test_tick_loss_by_hand_and_minimised_by_the_true_quantile():
    r = np.array([-2.0, 0.5])
    var = np.array([1.0, 1.0])
    np.testing.assert_allclose(tick_loss(r, var, 0.05), [(0.05 - 1) * (-2 + 1), 0.05 * (0.5 + 1)])
    z = np.random.default_rng(17).standard_normal(200_000)
    true_q = stats.norm.ppf(0.99)
    losses = [np.mean(tick_loss(z, np.full(z.size, true_q * k), 0.01)) for k in (0.8, 1.0, 1.25)]
    assert losses[1] < losses[0] and losses[1] < losses[2]


def test_model_confidence_set_keeps_the_best_and_drops_a_bad_model():
    import pandas as pd

    rng = np.random.default_rng(18)
    z = rng.standard_normal(3000)
    q = stats.norm.ppf(0.99)
    frame = pd.DataFrame({
        "true": tick_loss(z, np.full(z.size, q), 0.01),
        "close": tick_loss(z, np.full(z.size, q * 1.02), 0.01),
        "bad": tick_loss(z, np.full(z.size, q * 0.5), 0.01),
    })
    out = model_confidence_set(frame, reps=300, seed=1)
    assert bool(out.loc["true", "in_mcs"]) and not bool(out.loc["bad", "in_mcs"])
    assert out.index[0] in ("true", "close")
