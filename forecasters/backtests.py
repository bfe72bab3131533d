"""VaR / ES backtests and volatility-forecast losses: pure functions over 1-D float arrays.

Conventions (see :mod:`forecasters.base`):

* ``returns_next[t]`` is the return the forecast made at row t is judged against — build it with
  :func:`forecasters.base.realised_next` — a log return, as a fraction (0.01 = 1%);
* ``var[t]`` and ``es[t]`` are **positive loss numbers** in the same units (a VaR of 0.012 means
  "a loss of 1.2% is not exceeded with probability alpha");
* a bar is an **exception** (a "hit") when the loss ``-returns_next[t]`` is strictly greater than
  ``var[t]``;
* every function works on one pair at a time (pass ``sigma[:, j]``); rows where any input is NaN
  (warm-up rows, the last row of ``returns_next``) are dropped by :func:`aligned` before testing.
  Dropping rows in the middle of a series joins non-adjacent bars, which matters only to the
  Christoffersen independence test; forecasters put their NaNs at the start and end.

Probabilities: ``p`` (Kupiec, traffic light) and ``alpha_tail`` (Acerbi–Szekely) are the **tail /
exception probability** (0.01 for a 99% VaR); ``alpha`` in :func:`backtest_summary` is the VaR
**confidence level** (0.99).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import math

import numpy as np
from scipy import stats
from scipy.special import xlogy

__all__ = [
    "TestResult",
    "aligned",
    "exceptions",
    "kupiec_pof",
    "transition_counts",
    "independence_from_counts",
    "christoffersen_independence",
    "conditional_coverage",
    "traffic_light_probability",
    "basel_traffic_light",
    "traffic_light_last",
    "acerbi_szekely_z2",
    "z2_test",
    "qlike",
    "mse_variance",
    "backtest_summary",
    "binomial_test",
    "hit_durations",
    "duration_test",
    "dynamic_quantile_test",
    "mcneil_frey_es_test",
    "acerbi_szekely_z1",
    "z1_test",
    "acerbi_szekely_z3",
    "tick_loss",
    "model_confidence_set",
]

Dist = str | tuple[str, float]
Simulator = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class TestResult:
    """Outcome of a hypothesis test: statistic, p-value and chi-square degrees of freedom.

    ``dof`` is 0 for tests whose p-value is Monte-Carlo rather than chi-square (the Z2 test).
    """

    __test__ = False  # not a pytest test class, despite the name

    statistic: float
    pvalue: float
    dof: int

    @property
    def reject_5pct(self) -> bool:
        """True when the null (a correct model) is rejected at the 5% test level."""
        return bool(self.pvalue < 0.05)


# --------------------------------------------------------------------------- alignment


def aligned(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The same 1-D arrays with every row where any of them is NaN (or inf) dropped.

    Why: forecasts are NaN during warm-up and ``returns_next`` is NaN on the last row; a backtest
    must use exactly the rows where both the forecast and the outcome exist.
    """
    if not arrays:
        raise ValueError("aligned needs at least one array")
    arrs = [np.asarray(a, dtype=float) for a in arrays]
    n = arrs[0].shape
    for a in arrs:
        if a.ndim != 1:
            raise ValueError(f"backtests work on one pair at a time: expected 1-D arrays, got shape {a.shape}")
        if a.shape != n:
            raise ValueError(f"arrays must have the same length, got {[x.shape[0] for x in arrs]}")
    ok = np.logical_and.reduce([np.isfinite(a) for a in arrs])
    return tuple(a[ok] for a in arrs)


def exceptions(returns_next: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Boolean hit series: loss ``-returns_next`` strictly above the (positive) VaR forecast.

    Rows where either input is NaN are **dropped** (see :func:`aligned`), so the result is as long
    as the number of valid rows, in time order. Units: both inputs are return fractions.
    """
    r, v = aligned(returns_next, var)
    if (v < 0).any():
        raise ValueError("VaR must be a positive loss number (>= 0)")
    return -r > v


def _check_p(p: float, name: str = "p") -> None:
    if not 0.0 < p < 1.0:
        raise ValueError(f"{name} must be an exception probability in (0, 1), got {p}")


def _as_hits(hits: np.ndarray) -> np.ndarray:
    h = np.asarray(hits)
    if h.ndim != 1:
        raise ValueError(f"hits must be 1-D, got shape {h.shape}")
    if h.dtype != bool:
        if not np.isin(h, (0, 1)).all():
            raise ValueError("hits must be booleans or 0/1 (drop NaN rows first: see exceptions())")
        h = h.astype(bool)
    return h


# --------------------------------------------------------------------------- coverage tests


def kupiec_pof(n_exceptions: int, n_obs: int, p: float) -> TestResult:
    """Kupiec (1995) proportion-of-failures test: is the exception rate equal to ``p``?

    LR_POF = -2 ln[(1-p)^(T-x) p^x / ((1-x/T)^(T-x) (x/T)^x)] ~ chi2(1), with 0·ln 0 = 0 so that
    x = 0 and x = T give finite statistics. ``p`` is the tail probability (0.01 for 99% VaR).
    """
    _check_p(p)
    x, t = int(n_exceptions), int(n_obs)
    if t <= 0 or not 0 <= x <= t:
        raise ValueError(f"need n_obs > 0 and 0 <= n_exceptions <= n_obs, got {x}, {t}")
    phat = x / t
    ll_null = xlogy(t - x, 1.0 - p) + xlogy(x, p)
    ll_alt = xlogy(t - x, 1.0 - phat) + xlogy(x, phat)
    lr = max(float(-2.0 * (ll_null - ll_alt)), 0.0)
    return TestResult(statistic=lr, pvalue=float(stats.chi2.sf(lr, 1)), dof=1)


def transition_counts(hits: np.ndarray) -> tuple[int, int, int, int]:
    """Counts (n00, n01, n10, n11) of consecutive pairs; n01 = no exception followed by one.

    Why: the first-order Markov statistics of the Christoffersen test. They sum to len(hits) - 1.
    """
    h = _as_hits(hits)
    prev, cur = h[:-1], h[1:]
    n00 = int(np.sum(~prev & ~cur))
    n01 = int(np.sum(~prev & cur))
    n10 = int(np.sum(prev & ~cur))
    n11 = int(np.sum(prev & cur))
    return n00, n01, n10, n11


def independence_from_counts(n00: int, n01: int, n10: int, n11: int) -> TestResult:
    """Christoffersen (1998) LR_ind ~ chi2(1) from transition counts.

    pi01 = n01/(n00+n01), pi11 = n11/(n10+n11), pi = (n01+n11)/(n00+n01+n10+n11);
    LR_ind = -2 [ln L(pi) - ln L(pi01, pi11)]. Zero counts use 0·ln 0 = 0 (a row with no
    transitions contributes nothing), so the statistic is always finite.
    """
    counts = (n00, n01, n10, n11)
    if min(counts) < 0 or sum(counts) == 0:
        raise ValueError(f"need non-negative transition counts with a positive total, got {counts}")
    total = n00 + n01 + n10 + n11
    pi = (n01 + n11) / total
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    ll_null = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    ll_alt = xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11)
    lr = max(float(-2.0 * (ll_null - ll_alt)), 0.0)
    return TestResult(statistic=lr, pvalue=float(stats.chi2.sf(lr, 1)), dof=1)


def christoffersen_independence(hits: np.ndarray) -> TestResult:
    """Christoffersen independence test: does an exception today make one tomorrow likelier?

    Clustered exceptions (a model slow to react to volatility) reject; see
    :func:`independence_from_counts`. ``hits`` is the boolean series from :func:`exceptions`.
    """
    h = _as_hits(hits)
    if h.size < 2:
        raise ValueError("need at least two observations for the independence test")
    return independence_from_counts(*transition_counts(h))


def conditional_coverage(hits: np.ndarray, p: float) -> TestResult:
    """Christoffersen conditional coverage: LR_cc = LR_pof + LR_ind ~ chi2(2).

    Tests the right rate (``p``, the tail probability) and independence together. LR_pof uses all
    T observations and LR_ind the T-1 transitions, as MATLAB's ``varbacktest`` does.
    """
    h = _as_hits(hits)
    pof = kupiec_pof(int(h.sum()), int(h.size), p)
    ind = christoffersen_independence(h)
    lr = pof.statistic + ind.statistic
    return TestResult(statistic=lr, pvalue=float(stats.chi2.sf(lr, 2)), dof=2)


# --------------------------------------------------------------------------- Basel traffic light


def traffic_light_probability(n_exceptions: int, n_obs: int = 250, p: float = 0.01) -> float:
    """Binomial probability of at most ``n_exceptions`` exceptions in ``n_obs`` bars at rate ``p``.

    This is the number the Basel zones are cut on (MATLAB ``tl`` reports it as ``Probability``).
    """
    _check_p(p)
    if n_obs <= 0 or not 0 <= n_exceptions <= n_obs:
        raise ValueError(f"need n_obs > 0 and 0 <= n_exceptions <= n_obs, got {n_exceptions}, {n_obs}")
    return float(stats.binom.cdf(int(n_exceptions), int(n_obs), p))


def basel_traffic_light(n_exceptions: int, n_obs: int = 250, p: float = 0.01) -> str:
    """Basel (BCBS 1996) zone: 'green' if the binomial CDF < 95%, 'yellow' if < 99.99%, else 'red'.

    At 250 observations and p = 0.01 this gives green 0–4, yellow 5–9, red 10+ exceptions.
    """
    prob = traffic_light_probability(n_exceptions, n_obs, p)
    if prob < 0.95:
        return "green"
    if prob < 0.9999:
        return "yellow"
    return "red"


def traffic_light_last(hits: np.ndarray, window: int = 250, p: float = 0.01) -> str:
    """Traffic-light zone over the last ``window`` observations of a hit series.

    Why: regulators look at the most recent year. With fewer than ``window`` observations the zone
    is computed on all of them (the binomial cut adapts to the shorter sample).
    """
    h = _as_hits(hits)
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    if h.size == 0:
        raise ValueError("no observations")
    last = h[-window:]
    return basel_traffic_light(int(last.sum()), int(last.size), p)


# --------------------------------------------------------------------------- Acerbi–Szekely Z2


def acerbi_szekely_z2(returns_next: np.ndarray, var: np.ndarray, es: np.ndarray, alpha_tail: float) -> float:
    """Acerbi–Szekely (2014) Z2 statistic for expected shortfall: 0 under a correct model.

    Z2 = sum_t r_t I_t / (T alpha ES_t) + 1, with r_t the return (negative on a loss),
    I_t = 1{-r_t > VaR_t}, ES_t > 0 a loss number and alpha the tail probability (0.025 for 97.5% ES).
    Equivalently Z2 = 1 - mean_t(L_t I_t / (alpha ES_t)) with losses L = -r: under the null
    E[L_t I_t] = alpha ES_t, so Z2 ≈ 0; when ES is underestimated tail losses outweigh it and Z2 < 0
    (reject when strongly negative); Z2 > 0 means ES is conservative. VaR and ES must be at the
    same tail probability. Rows with a NaN in any input are dropped.
    """
    _check_p(alpha_tail, "alpha_tail")
    r, v, e = aligned(returns_next, var, es)
    if r.size == 0:
        raise ValueError("no valid rows")
    if (e <= 0).any() or (v < 0).any():
        raise ValueError("VaR and ES must be positive loss numbers")
    hits = -r > v
    return float(np.sum(r * hits / e) / (r.size * alpha_tail) + 1.0)


def _standard_tail(dist: Dist, alpha_tail: float) -> tuple[float, float]:
    """(VaR, ES) of a zero-mean, unit-variance distribution at tail probability ``alpha_tail``."""
    if dist == "normal":
        q = float(stats.norm.ppf(1.0 - alpha_tail))
        return q, float(stats.norm.pdf(q) / alpha_tail)
    if isinstance(dist, tuple) and len(dist) == 2 and dist[0] == "t":
        nu = float(dist[1])
        if nu <= 2:
            raise ValueError(f"Student-t needs nu > 2 for a unit variance, got {nu}")
        c = np.sqrt((nu - 2.0) / nu)
        qt = float(stats.t.ppf(1.0 - alpha_tail, nu))
        es_t = (nu + qt**2) / (nu - 1.0) * float(stats.t.pdf(qt, nu)) / alpha_tail
        return qt * c, es_t * c
    raise ValueError(f"dist must be 'normal' or ('t', nu), got {dist!r}")


def _standard_draws(dist: Dist, rng: np.random.Generator, n: int) -> np.ndarray:
    if dist == "normal":
        return rng.standard_normal(n)
    nu = float(dist[1])  # validated by _standard_tail
    return rng.standard_t(nu, n) * np.sqrt((nu - 2.0) / nu)


def z2_test(
    returns_next: np.ndarray,
    var: np.ndarray,
    es: np.ndarray,
    alpha_tail: float,
    *,
    rng: np.random.Generator,
    dist: Dist = "normal",
    simulate: Simulator | None = None,
    n_sims: int = 2000,
    n_reference: int = 1_000_000,
) -> TestResult:
    """Z2 with a one-sided Monte-Carlo p-value under the null that the forecast tail is right.

    Null (Acerbi–Szekely): r_t = s_t Z_t with Z_t i.i.d. from the standardized (zero-mean,
    unit-variance) distribution the forecasts were built from — ``dist`` ('normal' or ('t', nu))
    or ``simulate(rng, n)`` returning n standardized draws — and VaR_t, ES_t its own tail numbers.
    Under that null Z2 does not depend on the scales s_t, so each simulated Z2 is
    1 - mean(L I / (alpha ES)) of T standardized draws against the distribution's VaR and ES
    (analytic for ``dist``; estimated from ``n_reference`` draws for ``simulate``).
    p-value = (1 + #{Z2_sim <= Z2_obs}) / (1 + n_sims): small when Z2 is unusually negative.
    ``dof`` is 0 (not a chi-square test). Uses only the ``rng`` passed in.
    """
    if n_sims < 1:
        raise ValueError(f"n_sims must be >= 1, got {n_sims}")
    z2_obs = acerbi_szekely_z2(returns_next, var, es, alpha_tail)
    n_obs = aligned(returns_next, var, es)[0].size

    if simulate is None:
        q, es_std = _standard_tail(dist, alpha_tail)

        def draw(n: int) -> np.ndarray:
            return _standard_draws(dist, rng, n)
    else:
        ref = np.asarray(simulate(rng, n_reference), dtype=float)
        q = float(-np.quantile(ref, alpha_tail))
        es_std = float(-ref[ref < -q].mean())

        def draw(n: int) -> np.ndarray:
            out = np.asarray(simulate(rng, n), dtype=float)
            if out.shape != (n,):
                raise ValueError(f"simulate(rng, n) must return n draws, got shape {out.shape}")
            return out

    chunk = max(1, 2_000_000 // n_obs)  # bound memory to ~16 MB per block
    sims = np.empty(n_sims)
    done = 0
    while done < n_sims:
        k = min(chunk, n_sims - done)
        z = draw(k * n_obs).reshape(k, n_obs)
        tail = np.where(-z > q, z, 0.0)
        sims[done:done + k] = tail.sum(axis=1) / (n_obs * alpha_tail * es_std) + 1.0
        done += k
    pvalue = (1.0 + np.sum(sims <= z2_obs)) / (1.0 + n_sims)
    return TestResult(statistic=z2_obs, pvalue=float(pvalue), dof=0)


# --------------------------------------------------------------------------- volatility losses


def _vol_pairs(sigma_forecast: np.ndarray, realised_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, rv = aligned(sigma_forecast, realised_var)
    if (s <= 0).any():
        raise ValueError("volatility forecasts must be > 0")
    if (rv < 0).any():
        raise ValueError("realised variance must be >= 0")
    return s**2, rv


def qlike(sigma_forecast: np.ndarray, realised_var: np.ndarray, *, normalised: bool = True) -> float:
    """Mean QLIKE loss of a volatility forecast against a realised-variance proxy (lower is better).

    Why QLIKE: it ranks forecasts consistently with a noisy but unbiased proxy such as squared
    returns (Patton 2011) and penalises under-prediction of variance more than over-prediction.
    ``sigma_forecast`` is a standard deviation (return fraction), ``realised_var`` a variance
    (return fraction squared), aligned row by row (e.g. ``sigma[t]`` vs ``returns_next[t]**2``).

    ``normalised=True`` (default): Patton's form rv/s² - ln(rv/s²) - 1, which is >= 0 and 0 at a
    perfect forecast. Rows with rv = 0 (an unchanged close) make that form infinite and are
    **dropped**; which rows are dropped depends only on the data, so models compared on the same
    data stay comparable. ``normalised=False``: ln s² + rv/s², which keeps rv = 0 rows and
    differs from the normalised form only by a forecast-free term (same ranking on the same rows).
    Rows with a NaN in either input are ignored.
    """
    s2, rv = _vol_pairs(sigma_forecast, realised_var)
    if normalised:
        keep = rv > 0
        s2, rv = s2[keep], rv[keep]
        if s2.size == 0:
            return float("nan")
        ratio = rv / s2
        return float(np.mean(ratio - np.log(ratio) - 1.0))
    if s2.size == 0:
        return float("nan")
    return float(np.mean(np.log(s2) + rv / s2))


def mse_variance(sigma_forecast: np.ndarray, realised_var: np.ndarray) -> float:
    """Mean squared error between forecast variance s² and realised variance (units: return⁴).

    Robust to proxy noise in ranking (Patton 2011) but dominated by the largest moves; report it
    next to :func:`qlike`. Rows with a NaN in either input are ignored; NaN if none remain.
    """
    s2, rv = _vol_pairs(sigma_forecast, realised_var)
    if s2.size == 0:
        return float("nan")
    return float(np.mean((s2 - rv) ** 2))


# --------------------------------------------------------------------------- issue 15: the wider suite


def binomial_test(n_exceptions: int, n_obs: int, p: float) -> TestResult:
    """Exact two-sided binomial test of the exception count (``scipy.stats.binomtest``).

    p-value: the total probability of counts no more likely than the one observed (the
    'minlike' definition). MATLAB's ``varbacktest`` 'bin' test is its normal approximation
    ``(x - Tp)/sqrt(Tp(1-p))``; the exact form is right for the small expected counts of 99% VaR.
    ``statistic`` is the observed rate x/T; ``dof`` 0 (not chi-square).
    """
    _check_p(p)
    x, t = int(n_exceptions), int(n_obs)
    if t <= 0 or not 0 <= x <= t:
        raise ValueError(f"need n_obs > 0 and 0 <= n_exceptions <= n_obs, got {x}, {t}")
    return TestResult(statistic=x / t, pvalue=float(stats.binomtest(x, t, p).pvalue), dof=0)


def hit_durations(hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Durations (in bars) between exceptions and their censoring flags, Christoffersen–Pelletier style.

    The first duration runs from the sample start to the first hit (censored unless the sample
    starts with a hit), the last from the last hit to the sample end (censored, added only when
    the sample does not end with a hit). Returns ``(durations, censored)``.
    """
    h = _as_hits(hits)
    idx = np.flatnonzero(h) + 1  # 1-based bar numbers of hits
    t = h.size
    if idx.size == 0:
        return np.array([float(t)]), np.array([True])
    d = [float(idx[0])] + list(np.diff(idx).astype(float))
    c = [not h[0]] + [False] * (idx.size - 1)
    if idx[-1] < t:
        d.append(float(t - idx[-1]))
        c.append(True)
    return np.array(d), np.array(c)


def _weibull_loglik(a: float, b: float, d: np.ndarray, c: np.ndarray) -> float:
    log_s = -((a * d) ** b)
    log_f = b * math.log(a) + math.log(b) + (b - 1.0) * np.log(d) + log_s
    return float(np.sum(np.where(c, log_s, log_f)))


def _weibull_profile(b: float, d: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    """The MLE of the Weibull rate ``a`` at shape ``b`` (closed form) and the log-likelihood there."""
    m = int(np.sum(~c))
    a = (m / np.sum(d**b)) ** (1.0 / b)
    return a, _weibull_loglik(a, b, d, c)


def duration_test(hits: np.ndarray) -> TestResult:
    """Christoffersen & Pelletier (2004) Weibull duration test of independence (``rugarch::VaRDurTest``).

    Under a correct model the bars between exceptions are memoryless: exponential durations,
    i.e. a Weibull with shape ``b = 1``. LR = 2 [ln L(a, b) - ln L(a0, 1)] ~ chi2(1), with the
    first and last durations censored (:func:`hit_durations`). ``statistic`` is LR; ``b < 1``
    (a decreasing hazard: exceptions come in clusters) drives rejections. Needs >= 2 exceptions.
    """
    from scipy.optimize import minimize_scalar

    h = _as_hits(hits)
    if int(h.sum()) < 2:
        raise ValueError("the duration test needs at least two exceptions")
    d, c = hit_durations(h)
    _, ll_null = _weibull_profile(1.0, d, c)
    res = minimize_scalar(lambda lb: -_weibull_profile(math.exp(lb), d, c)[1], bounds=(-5.0, 3.0),
                          method="bounded", options={"xatol": 1e-10})
    ll_alt = max(-float(res.fun), ll_null)
    lr = max(2.0 * (ll_alt - ll_null), 0.0)
    return TestResult(statistic=lr, pvalue=float(stats.chi2.sf(lr, 1)), dof=1)


def dynamic_quantile_test(returns_next: np.ndarray, var: np.ndarray, p: float, lags: int = 4) -> TestResult:
    """Engle & Manganelli (2004) dynamic quantile test, as in ``GAS::BacktestVaR`` (4 lags and VaR).

    ``Hit_t = 1{loss_t > VaR_t} - p`` is regressed on a constant, ``Hit_{t-1..t-lags}`` and
    ``VaR_t``; under a correct model all coefficients are 0:
    ``DQ = Hit' X (X'X)^-1 X' Hit / (p (1-p)) ~ chi2(lags + 2)``. Rows with NaN are dropped first.
    """
    _check_p(p)
    r, v = aligned(returns_next, var)
    hit = (-r > v).astype(float) - p
    if hit.size <= 3 * (lags + 2):
        raise ValueError(f"need more than {3 * (lags + 2)} observations for the DQ test, got {hit.size}")
    y = hit[lags:]
    cols = [np.ones_like(y)] + [hit[lags - k : hit.size - k] for k in range(1, lags + 1)] + [v[lags:]]
    x = np.column_stack(cols)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    fitted = x @ beta
    dq = float(fitted @ fitted / (p * (1.0 - p)))
    return TestResult(statistic=dq, pvalue=float(stats.chi2.sf(dq, lags + 2)), dof=lags + 2)


def mcneil_frey_es_test(returns_next: np.ndarray, var: np.ndarray, es: np.ndarray, *, rng: np.random.Generator,
                        sigma: np.ndarray | None = None, n_boot: int = 2000) -> TestResult:
    """McNeil & Frey (2000) test of ES: do losses beyond VaR average their ES forecast?

    Exceedance residuals ``e_t = (L_t - ES_t) / sigma_t`` on exception days (``sigma`` the
    volatility forecast; 1 when None); H0: mean 0, H1: mean > 0 (ES too small). One-sided
    bootstrap p-value of the t statistic (the data re-centred to mean 0, resampled
    ``n_boot`` times with the ``rng`` passed in), as ``rugarch::ESTest(boot=TRUE)``. NaN p-value
    with fewer than 2 exceptions. ``statistic`` is the t statistic.
    """
    if sigma is None:
        r, v, e = aligned(returns_next, var, es)
        s = np.ones_like(r)
    else:
        r, v, e, s = aligned(returns_next, var, es, sigma)
    hit = -r > v
    resid = (-r[hit] - e[hit]) / s[hit]
    m = resid.size
    if m < 2 or not resid.std(ddof=1) > 0:
        return TestResult(statistic=float("nan"), pvalue=float("nan"), dof=0)
    t_obs = float(resid.mean() / (resid.std(ddof=1) / math.sqrt(m)))
    centred = resid - resid.mean()
    draws = centred[rng.integers(0, m, size=(n_boot, m))]
    sd = draws.std(axis=1, ddof=1)
    t_boot = np.where(sd > 0, draws.mean(axis=1) / np.where(sd > 0, sd, 1.0) * math.sqrt(m), 0.0)
    pvalue = (1.0 + np.sum(t_boot >= t_obs)) / (1.0 + n_boot)
    return TestResult(statistic=t_obs, pvalue=float(pvalue), dof=0)


def acerbi_szekely_z1(returns_next: np.ndarray, var: np.ndarray, es: np.ndarray) -> float:
    """Acerbi–Szekely (2014) Z1 ("conditional") statistic: ``Z1 = 1 - mean over exceptions of L_t / ES_t``.

    0 under a correct ES (given the VaR exceptions), negative when ES is too small. NaN when
    there is no exception. Losses ``L = -returns_next``; ES positive loss numbers.
    """
    r, v, e = aligned(returns_next, var, es)
    if (e <= 0).any() or (v < 0).any():
        raise ValueError("VaR and ES must be positive loss numbers")
    hit = -r > v
    if not hit.any():
        return float("nan")
    return float(1.0 + np.mean(r[hit] / e[hit]))


def z1_test(returns_next: np.ndarray, var: np.ndarray, es: np.ndarray, alpha_tail: float, *,
            rng: np.random.Generator, dist: Dist = "normal", n_sims: int = 2000) -> TestResult:
    """Z1 with a one-sided Monte-Carlo p-value under the forecasts' own standardized law (see :func:`z2_test`).

    Each simulated Z1 draws T standardized shocks from ``dist``, against its analytic VaR and
    ES; simulations without an exception are dropped. p = (1 + #{Z1_sim <= Z1_obs}) / (1 + sims).
    """
    z1_obs = acerbi_szekely_z1(returns_next, var, es)
    n_obs = aligned(returns_next, var, es)[0].size
    q, es_std = _standard_tail(dist, alpha_tail)
    sims = []
    chunk = max(1, 2_000_000 // n_obs)
    done = 0
    while done < n_sims:
        k = min(chunk, n_sims - done)
        z = _standard_draws(dist, rng, k * n_obs).reshape(k, n_obs)
        hit = -z > q
        count = hit.sum(axis=1)
        tail = np.where(hit, z, 0.0).sum(axis=1)
        ok = count > 0
        sims.append(1.0 + tail[ok] / count[ok] / es_std)
        done += k
    sim = np.concatenate(sims)
    if not math.isfinite(z1_obs):
        return TestResult(statistic=z1_obs, pvalue=float("nan"), dof=0)
    return TestResult(statistic=z1_obs, pvalue=float((1.0 + np.sum(sim <= z1_obs)) / (1.0 + sim.size)), dof=0)


def _es_hat(values_sorted_low: np.ndarray, m: int) -> np.ndarray:
    """The ES estimator of Acerbi–Szekely: minus the mean of the m smallest of T values (last axis)."""
    return -values_sorted_low[..., :m].mean(axis=-1)


def acerbi_szekely_z3(pit: np.ndarray, ppf: Callable[[np.ndarray], np.ndarray], alpha_tail: float,
                      *, grid: int = 400) -> float:
    """Acerbi–Szekely (2014) Z3 ("quantile") statistic from the probability integral transforms.

    ``pit[t] = P_t(X_t)``, the predictive CDF of day t at the realised return; ``ppf(u)`` maps
    probabilities ``u`` (shape (m,)) to a (T, m) array of every day's predictive quantiles.
    ``Z3 = 1 - (1/T) sum_t ES_hat(P_t^-1(U)) / E_V[ES_hat(P_t^-1(V))]`` with
    ``ES_hat(Y) = -(1/m) sum_{i<=m} Y_(i)``, ``m = floor(T alpha)``, U the observed PITs and V
    i.i.d. uniform. Only the m smallest PITs matter (P_t^-1 is increasing); the expectation is
    an integral against the order statistics' Beta(i, T-i+1) densities on a log-spaced grid.
    0 under the null, negative when the left tail is too thin.
    """
    _check_p(alpha_tail, "alpha_tail")
    u = np.asarray(pit, dtype=float)
    u = u[np.isfinite(u)]
    t = u.size
    m = int(math.floor(t * alpha_tail))
    if m < 1:
        raise ValueError(f"Z3 needs T * alpha >= 1, got T = {t}")
    low = np.sort(u)[:m]
    observed = _es_hat(np.sort(ppf(np.clip(low, 1e-12, 1 - 1e-12)), axis=1), m)  # (T,)
    # E[ES_hat] = -(1/m) sum_i E[P^-1(V_(i))]: integrate P^-1 against the mean Beta density
    upper = min(1.0, stats.beta.ppf(1 - 1e-10, m, t - m + 1))
    edges = np.geomspace(1e-12, upper, grid + 1)
    mids = np.sqrt(edges[:-1] * edges[1:])
    i = np.arange(1, m + 1)[:, None]
    mass = (stats.beta.cdf(edges[None, 1:], i, t - i + 1) - stats.beta.cdf(edges[None, :-1], i, t - i + 1))
    weights = mass.sum(axis=0) / m
    expected = -(ppf(mids) @ weights) / weights.sum()
    return float(1.0 - np.mean(observed / expected))


def tick_loss(returns_next: np.ndarray, var: np.ndarray, p: float) -> np.ndarray:
    """Quantile (tick, pinball) loss per row of the VaR forecast as the ``p`` quantile ``-VaR`` of returns.

    ``(p - 1{r < -VaR}) (r + VaR)`` >= 0; its mean is minimised by the true quantile, so it ranks
    VaR models (Gonzalez-Rivera et al. 2004; ``GAS::BacktestVaR``'s ``Loss``). NaN rows stay NaN.
    """
    _check_p(p)
    r = np.asarray(returns_next, dtype=float)
    v = np.asarray(var, dtype=float)
    q = -v
    return (p - (r < q)) * (r - q)


def model_confidence_set(losses: Any, *, size: float = 0.10, reps: int = 1000, block_size: int | None = None,
                         seed: int | np.random.Generator = 0) -> Any:
    """Hansen, Lunde & Nason (2011) model confidence set over a (time, model) loss frame (``arch.bootstrap.MCS``).

    Returns a DataFrame indexed by model: ``mean_loss``, ``pvalue`` (MCS p-value) and
    ``in_mcs`` (p-value >= ``size``), sorted by mean loss. Rows with a NaN in any model are
    dropped, so every model is judged on the same days. Stationary bootstrap, ``method='R'``.
    """
    import pandas as pd
    from arch.bootstrap import MCS

    frame = pd.DataFrame(losses).dropna()
    if frame.shape[1] < 2 or frame.shape[0] < 10:
        raise ValueError(f"the MCS needs >= 2 models and >= 10 common rows, got {frame.shape}")
    mcs = MCS(frame, size=size, reps=reps, block_size=block_size, method="R", seed=seed)
    mcs.compute()
    pvalues = mcs.pvalues.iloc[:, 0]
    out = pd.DataFrame({"mean_loss": frame.mean(), "pvalue": pvalues.reindex(frame.columns)})
    out["in_mcs"] = out["pvalue"] >= size
    return out.sort_values("mean_loss")


# --------------------------------------------------------------------------- summary


def backtest_summary(
    returns_next: np.ndarray,
    var: np.ndarray,
    es: np.ndarray | None = None,
    alpha: float = 0.99,
    sigma: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every backtest of one VaR (and optionally ES and volatility) forecast series, in one dict.

    ``alpha`` is the VaR confidence level (0.99); exceptions are expected at rate 1 - alpha.
    Keys: n_obs, exceptions, rate, expected_rate, kupiec_lr, kupiec_p, christoffersen_p (independence),
    cc_p (conditional coverage), traffic_light (zone of the last 250 observations), avg_var,
    z2 (NaN without ``es``; ES at the same level as VaR), qlike and mse_variance (NaN without
    ``sigma``; against squared next returns). Rows with NaNs are dropped per statistic.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha is a confidence level in (0, 1), got {alpha}")
    p = 1.0 - alpha
    r, v = aligned(returns_next, var)
    if r.size == 0:
        raise ValueError("no rows where both returns_next and var are defined")
    hits = exceptions(r, v)
    n_obs, n_exc = int(hits.size), int(hits.sum())
    pof = kupiec_pof(n_exc, n_obs, p)
    ind = christoffersen_independence(hits) if n_obs >= 2 else TestResult(0.0, 1.0, 1)
    cc = conditional_coverage(hits, p) if n_obs >= 2 else TestResult(pof.statistic, pof.pvalue, 2)
    nan = float("nan")
    out: dict[str, Any] = {
        "n_obs": n_obs,
        "exceptions": n_exc,
        "rate": n_exc / n_obs,
        "expected_rate": p,
        "kupiec_lr": pof.statistic,
        "kupiec_p": pof.pvalue,
        "christoffersen_p": ind.pvalue,
        "cc_p": cc.pvalue,
        "traffic_light": traffic_light_last(hits, window=250, p=p),
        "avg_var": float(np.mean(v)),
        "z2": acerbi_szekely_z2(returns_next, var, es, p) if es is not None else nan,
        "qlike": nan,
        "mse_variance": nan,
    }
    if sigma is not None:
        rv = np.asarray(returns_next, dtype=float) ** 2
        out["qlike"] = qlike(sigma, rv)
        out["mse_variance"] = mse_variance(sigma, rv)
    return out
