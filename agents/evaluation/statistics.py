"""Statistics across seeds, episodes and bars for honest policy comparison.

Why: one backtest Sharpe ratio says little. These functions put confidence intervals on it
(percentile bootstrap for i.i.d. values such as one metric per seed; the Politis–Romano
stationary bootstrap for autocorrelated per-bar returns), compare two policies on the *same*
resampled bars, and deflate a Sharpe ratio for the number of strategies tried (Bailey & López
de Prado 2012, 2014).

Conventions: returns are per-bar simple returns (fractions), as in :mod:`agents.evaluation.metrics`;
Sharpe ratios from the bootstrap functions are annualised with ``bars_per_year``, while
:func:`probabilistic_sharpe_ratio`, :func:`expected_max_sharpe` and
:func:`deflated_sharpe_ratio` work on the **per-bar** (non-annualised) Sharpe ratio, as the
papers do. Every random draw comes from the ``numpy.random.Generator`` passed as ``rng``;
nothing here seeds or touches global state. Too little data for an interval gives NaN.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator

import numpy as np
from scipy.special import ndtr, ndtri

from agents.evaluation.metrics import sharpe_ratio

__all__ = [
    "EULER_GAMMA",
    "bootstrap_ci",
    "default_block_length",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "paired_sharpe_difference",
    "probabilistic_sharpe_ratio",
    "sharpe_ci",
    "stationary_bootstrap_indices",
]

EULER_GAMMA = 0.5772156649015329
_BATCH_ELEMENTS = 1_000_000  # resampled values held in memory at once (8 MB per float64 array)


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}: pass "
                        f"rng=np.random.default_rng(seed)")
    return rng


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1 (e.g. 0.95), got {confidence}")
    return float(confidence)


def _check_resamples(n_resamples: int) -> int:
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer (e.g. 2000), got {n_resamples}")
    return int(n_resamples)


def _finite_vector(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf: drop or fill undefined values before computing statistics")
    return arr


def _takes_axis(statistic: Callable[..., object]) -> bool:
    try:
        return "axis" in inspect.signature(statistic).parameters
    except (TypeError, ValueError):
        return False


def _batches(n_obs: int, n_resamples: int) -> Iterator[int]:
    size = max(1, min(n_resamples, _BATCH_ELEMENTS // max(n_obs, 1)))
    done = 0
    while done < n_resamples:
        step = min(size, n_resamples - done)
        yield step
        done += step


def bootstrap_ci(
    values: np.ndarray,
    statistic: Callable[..., float] = np.mean,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: np.random.Generator,
) -> tuple[float, float, float]:
    """Percentile-bootstrap confidence interval of ``statistic`` over i.i.d. ``values``.

    Why: a metric per seed or per episode (units as given) with an honest interval rather than
    a bare mean. Returns ``(point, low, high)`` where ``point = statistic(values)``. A statistic
    that accepts ``axis`` (``np.mean``, ``np.median``) is evaluated on whole batches of
    resamples; others are called once per resample. NaN/inf values are an error (decide how
    to treat undefined runs first); one value gives ``(value, nan, nan)``, none ``(nan,) * 3``.
    """
    x = _finite_vector(values, "values")
    _check_rng(rng)
    conf = _check_confidence(confidence)
    n_res = _check_resamples(n_resamples)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    point = float(statistic(x))
    if x.size < 2:
        return point, math.nan, math.nan
    vectorised = _takes_axis(statistic)
    stats = []
    for size in _batches(x.size, n_res):
        sample = x[rng.integers(0, x.size, size=(size, x.size))]
        if vectorised:
            stats.append(np.asarray(statistic(sample, axis=-1), dtype=np.float64).reshape(size))
        else:
            stats.append(np.array([float(statistic(row)) for row in sample]))
    boot = np.concatenate(stats)
    low, high = np.percentile(boot, [50 * (1 - conf), 50 * (1 + conf)])
    return point, float(low), float(high)


def _stationary_rows(n_obs: int, mean_block: float, n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Index rows of the stationary bootstrap: blocks of geometric length, wrapping at the end."""
    t = np.arange(n_obs)
    starts = rng.integers(0, n_obs, size=(n_rows, n_obs))
    new_block = rng.random((n_rows, n_obs)) < 1.0 / mean_block
    new_block[:, 0] = True
    block_start = np.maximum.accumulate(np.where(new_block, t, 0), axis=1)  # position where the current block began
    first = np.take_along_axis(starts, block_start, axis=1)
    return (first + (t - block_start)) % n_obs


def _check_block(mean_block: float, n_obs: int) -> float:
    b = float(mean_block)
    if not 1.0 <= b < math.inf:
        raise ValueError(f"mean block length must be a finite number >= 1 (in bars), got {mean_block}")
    return min(b, max(float(n_obs), 1.0))


def stationary_bootstrap_indices(
    n_obs: int, mean_block: float, n_resamples: int, *, rng: np.random.Generator
) -> np.ndarray:
    """Resampling indices of the Politis–Romano (1994) stationary bootstrap, shaped (n_resamples, n_obs).

    Why: per-bar returns are autocorrelated (volatility clustering, trend-following
    positions), so resampling single bars understates the uncertainty. Each row strings
    together blocks of consecutive bars that start at a uniformly random bar and have
    geometric lengths with mean ``mean_block`` (bars), wrapping from the last bar to the first;
    the resampled series is stationary. ``mean_block = 1`` is the ordinary i.i.d. bootstrap.
    """
    _check_rng(rng)
    n_res = _check_resamples(n_resamples)
    if int(n_obs) != n_obs or n_obs < 0:
        raise ValueError(f"n_obs must be a non-negative integer, got {n_obs}")
    n = int(n_obs)
    block = _check_block(mean_block, n)
    if n == 0:
        return np.empty((n_res, 0), dtype=np.int64)
    return _stationary_rows(n, block, n_res, rng)


def default_block_length(*series: np.ndarray) -> float:
    """Mean block length (bars) for the stationary bootstrap of one or more return series.

    Why automatic: the right length grows with the dependence in the data. Uses the
    Politis & White (2004, with Patton et al. 2009's correction) estimate from
    ``arch.bootstrap.optimal_block_length`` on each series, taking the longest so a paired
    comparison suits both; series shorter than 20 bars, constant ones, or a failed estimate
    fall back to ``n ** (1/3)``. Always within ``[1, n]``.
    """
    lengths = []
    n_max = 1
    for s in series:
        x = _finite_vector(s, "returns")
        n = x.size
        n_max = max(n_max, n)
        fallback = max(1.0, n ** (1.0 / 3.0))
        if n < 20 or x.max() == x.min():
            lengths.append(fallback)
            continue
        from arch.bootstrap import optimal_block_length  # imported lazily: arch is heavy to import

        try:
            with np.errstate(all="ignore"):
                b = float(optimal_block_length(x - x.mean())["stationary"].iloc[0])
        except (ValueError, np.linalg.LinAlgError):
            b = math.nan
        lengths.append(b if math.isfinite(b) and b > 0 else fallback)
    if not lengths:
        raise ValueError("default_block_length needs at least one return series")
    return float(min(max(max(lengths), 1.0), n_max))


def _sharpe_rows(x: np.ndarray, scale: float) -> np.ndarray:
    """Annualised Sharpe ratio of each row, with :func:`agents.evaluation.metrics.sharpe_ratio`'s flat-run rule."""
    sd = x.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x.mean(axis=1) / sd * scale
    flat = (x.max(axis=1) == x.min(axis=1)) | (sd == 0.0)
    out[flat] = np.where(np.any(x[flat] != 0.0, axis=1), np.nan, 0.0)
    return out


def _resolve_block(block: float | None, *series: np.ndarray) -> float:
    n = series[0].size
    return _check_block(default_block_length(*series) if block is None else block, n)


def _boot_sharpes(series: tuple[np.ndarray, ...], scale: float, block: float, n_resamples: int,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """Bootstrap Sharpe ratios of each series, every series resampled with the same indices."""
    n = series[0].size
    out: list[list[np.ndarray]] = [[] for _ in series]
    for size in _batches(n * len(series), n_resamples):
        idx = _stationary_rows(n, block, size, rng)
        for j, s in enumerate(series):
            out[j].append(_sharpe_rows(s[idx], scale))
    return [np.concatenate(parts) for parts in out]


def sharpe_ci(
    returns: np.ndarray,
    bars_per_year: float,
    *,
    rng: np.random.Generator,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    block: float | None = None,
) -> tuple[float, float, float]:
    """Annualised Sharpe ratio of per-bar simple returns with a stationary-bootstrap interval.

    Returns ``(point, low, high)``; ``point`` is :func:`agents.evaluation.metrics.sharpe_ratio`.
    ``block`` is the mean block length in bars (``None``: :func:`default_block_length`; 1:
    i.i.d. resampling, right only for uncorrelated returns). Resamples with an undefined
    Sharpe ratio are left out of the percentiles. Fewer than 2 returns: ``(nan,) * 3``.
    """
    r = _finite_vector(returns, "returns")
    _check_rng(rng)
    conf = _check_confidence(confidence)
    n_res = _check_resamples(n_resamples)
    point = sharpe_ratio(r, bars_per_year)
    if r.size < 2:
        return math.nan, math.nan, math.nan
    (boot,) = _boot_sharpes((r,), math.sqrt(bars_per_year), _resolve_block(block, r), n_res, rng)
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return point, math.nan, math.nan
    low, high = np.percentile(boot, [50 * (1 - conf), 50 * (1 + conf)])
    return point, float(low), float(high)


def paired_sharpe_difference(
    returns_a: np.ndarray,
    returns_b: np.ndarray,
    bars_per_year: float,
    *,
    rng: np.random.Generator,
    n_resamples: int = 2000,
    block: float | None = None,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Annualised Sharpe of A minus B on the same bars, with a paired stationary-bootstrap test.

    Why paired: two policies run on the same market share its shocks; resampling both with the
    **same** indices keeps that common part out of the difference, giving a far tighter and
    honest interval than two separate ones. Returns ``diff``, ``low``, ``high`` (percentile
    interval at ``confidence``), ``p_value`` — two-sided, ``2 * min(P*(d <= 0), P*(d >= 0))``
    with the (count + 1) / (resamples + 1) correction, capped at 1 (a series against itself
    gives 1) — plus ``sharpe_a``, ``sharpe_b`` and the mean ``block`` length used (bars).
    """
    a = _finite_vector(returns_a, "returns_a")
    b = _finite_vector(returns_b, "returns_b")
    if a.size != b.size:
        raise ValueError(f"returns_a and returns_b must cover the same bars, got lengths {a.size} and {b.size}: "
                         f"align both runs on one clock first")
    _check_rng(rng)
    conf = _check_confidence(confidence)
    n_res = _check_resamples(n_resamples)
    sr_a, sr_b = sharpe_ratio(a, bars_per_year), sharpe_ratio(b, bars_per_year)
    result = {"diff": sr_a - sr_b, "low": math.nan, "high": math.nan, "p_value": math.nan,
              "sharpe_a": sr_a, "sharpe_b": sr_b, "block": math.nan}
    if a.size < 2:
        return result
    mean_block = _resolve_block(block, a, b)
    result["block"] = mean_block
    boot_a, boot_b = _boot_sharpes((a, b), math.sqrt(bars_per_year), mean_block, n_res, rng)
    d = boot_a - boot_b
    d = d[np.isfinite(d)]
    if d.size == 0:
        return result
    low, high = np.percentile(d, [50 * (1 - conf), 50 * (1 + conf)])
    below = (np.count_nonzero(d <= 0) + 1) / (d.size + 1)
    above = (np.count_nonzero(d >= 0) + 1) / (d.size + 1)
    result.update(low=float(low), high=float(high), p_value=float(min(1.0, 2.0 * min(below, above))))
    return result


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` skill-less strategies (Bailey & López de Prado 2014).

    ``E[max SR] = sqrt(V) * ((1 - g) * Phi^-1(1 - 1/N) + g * Phi^-1(1 - 1/(N e)))`` with ``g``
    the Euler–Mascheroni constant and ``V`` the variance of the trials' Sharpe ratios (same
    units as the Sharpe ratios: per bar in :func:`deflated_sharpe_ratio`). Why: the best of
    many backtests beats 0 by luck alone — this is the bar to clear. One trial: 0.
    """
    if int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer (the number of strategies tried), got {n_trials}")
    if not 0.0 <= sr_variance < math.inf:
        raise ValueError(f"sr_variance must be a finite variance >= 0, got {sr_variance}")
    n = int(n_trials)
    if n == 1:
        return 0.0
    z = (1.0 - EULER_GAMMA) * ndtri(1.0 - 1.0 / n) + EULER_GAMMA * ndtri(1.0 - 1.0 / (n * math.e))
    return float(math.sqrt(sr_variance) * z)


def probabilistic_sharpe_ratio(
    sr: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0, sr_benchmark: float = 0.0
) -> float:
    """Probability that the true Sharpe ratio exceeds ``sr_benchmark`` (Bailey & López de Prado 2012).

    ``PSR = Phi((SR - SR*) * sqrt(n - 1) / sqrt(1 - skew * SR + (kurtosis - 1) / 4 * SR**2))``,
    with ``sr`` and ``sr_benchmark`` **per bar** (not annualised), ``n_obs`` bars, and the
    returns' skewness and (non-excess, normal = 3) kurtosis: fat tails and negative skew widen
    the estimate's error. Fewer than 2 bars, NaN input, or a non-positive variance term
    (extreme skew): NaN.
    """
    if n_obs < 2 or not all(math.isfinite(v) for v in (sr, skew, kurtosis, sr_benchmark)):
        return math.nan
    var_term = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not var_term > 0:
        return math.nan
    return float(ndtr((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var_term)))


def deflated_sharpe_ratio(returns: np.ndarray, n_trials: int, sr_variance_across_trials: float) -> float:
    """Deflated Sharpe ratio: the PSR of these returns against the luck of ``n_trials`` trials.

    ``DSR = PSR(SR* = expected_max_sharpe(n_trials, V))`` (Bailey & López de Prado 2014), using
    the per-bar Sharpe ratio, skewness and kurtosis of ``returns`` (per-bar simple returns).
    ``sr_variance_across_trials`` is the variance of the **per-bar** Sharpe ratios of all
    strategies tried (an annualised variance divided by ``bars_per_year``). A probability in
    [0, 1]; fewer than 2 returns or constant returns: NaN.
    """
    r = _finite_vector(returns, "returns")
    sr_star = expected_max_sharpe(n_trials, sr_variance_across_trials)
    if r.size < 2 or r.max() == r.min():
        return math.nan
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    skew = float(np.mean(centred**3)) / m2**1.5
    kurt = float(np.mean(centred**4)) / m2**2
    sr = float(r.mean() / r.std(ddof=1))
    return probabilistic_sharpe_ratio(sr, r.size, skew, kurt, sr_star)
