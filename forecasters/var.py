"""Value-at-Risk and Expected Shortfall models: pure, causal functions over (time, pair) arrays.

Conventions (shared with :mod:`forecasters.base` and :mod:`forecasters.backtests`):

* ``returns`` is shaped (time, pair): ``returns[t] = log(close[t] / close[t-1])``, a fraction,
  row 0 NaN;
* **row t of every output is the forecast for ``returns[t+1]`` made with ``returns[<= t]``** (and
  ``sigma[<= t]``) only; rows without enough history are NaN — never back-filled or carried
  in from the future;
* VaR and ES are **positive loss numbers in return units** (a fraction of the position's value)
  over one bar at confidence level ``alpha`` (0.99 = the loss is exceeded with probability 1%).
  ES is the mean loss given the loss is beyond VaR, so ``es >= var``;
* ``var`` / ``es`` are for a **long** position (loss = ``-r``, the left tail of returns);
  ``var_short`` / ``es_short`` for a **short** one (loss = ``+r``, the right tail). Every model
  here fills both, so the environment can size positions of either sign
  (:meth:`RiskForecast.for_exposure`, :func:`position_var`);
* rolling windows are over the last ``window`` **finite** values at or before t (a missing bar
  in the middle of a series is skipped, not zero-filled); a row is NaN until ``window`` finite
  values exist.

Models (each returns a :class:`RiskForecast`):

==========================  ==============================================================
:func:`historical_var`      empirical quantile and tail mean of the last ``window`` returns
:func:`normal_var`          rolling mean / sd, normal quantile (closed-form ES)
:func:`student_t_var`       rolling mean / sd, unit-variance Student-t quantile; dof by MLE
                            (``scipy.stats.t.fit``) on the window, refitted every
                            ``refit_every`` bars
:func:`conditional_var`     a volatility forecast ``sigma`` (GARCH, EWMA, LSTM …) with a
                            normal or unit-variance t quantile (dof array, e.g. GARCH-t's
                            ``info['nu']``)
:func:`fhs_var`             filtered historical simulation: empirical quantile of the
                            standardised residuals ``r[s] / sigma[s-1]`` scaled by ``sigma[t]``
:func:`vol_scaled_var`      one entry point for any volatility forecast: ``fhs`` / ``normal``
                            / ``t`` (what GARCH, EWMA and the LSTM all go through)
:func:`quantile_regression_var`  linear quantile regression (pinball loss) of ``r[t+1]`` on
                            ``log sigma[t]``, fitted once on a training span
==========================  ==============================================================

:func:`var_models` runs a standard set over one returns array and several volatility
forecasts; :data:`VAR_MODELS` maps model names to the functions.

Known trap (REFERENCES.md): normal-quantile VaR runs 1.5–2.2% exceptions at 99% on FX
majors; Student-t and FHS run 1.1–1.4%. Prefer ``t`` or ``fhs`` for limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from scipy import stats

from simulator.common.compiled import jit as _compile

__all__ = [
    "RiskForecast",
    "Side",
    "to_currency",
    "scale_horizon",
    "position_var",
    "normal_tail",
    "t_tail",
    "historical_var",
    "normal_var",
    "student_t_var",
    "conditional_var",
    "skewt_tail",
    "gpd_fit",
    "gpd_tail",
    "garch_var",
    "standardised_residuals",
    "fhs_var",
    "vol_scaled_var",
    "quantile_regression_var",
    "VAR_MODELS",
    "var_models",
]

Side = Literal["long", "short"]

#: Degrees of freedom above this are treated as normal (t quantiles converge to normal ones).
_NU_NORMAL = 1e6


class SigmaLike(Protocol):
    """Anything shaped like :class:`forecasters.base.VolForecast` (duck-typed)."""

    name: str
    sigma: np.ndarray
    info: dict[str, Any]


# --------------------------------------------------------------------------- the result type


@dataclass(frozen=True, eq=False)
class RiskForecast:
    """VaR / ES forecasts of one model, rows aligned like volatility forecasts.

    ``var[t, j]`` / ``es[t, j]``: positive one-bar loss (fraction of position value) of a long
    position in pair j over bar t+1, at confidence ``alpha``, made with data <= t.
    ``var_short`` / ``es_short``: the same for a short position (right tail), or None where a
    model was built for one side only. ``info`` holds model diagnostics (e.g. fitted dof).
    """

    name: str
    alpha: float
    var: np.ndarray
    es: np.ndarray
    var_short: np.ndarray | None = None
    es_short: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_alpha(self.alpha)
        if self.var.ndim != 2 or self.es.shape != self.var.shape:
            raise ValueError(f"{self.name}: var and es must be equal (time, pair) arrays, "
                             f"got {self.var.shape} and {self.es.shape}")
        if (self.var_short is None) != (self.es_short is None):
            raise ValueError(f"{self.name}: give both var_short and es_short, or neither")
        if self.var_short is not None and (self.var_short.shape != self.var.shape
                                           or self.es_short.shape != self.var.shape):  # type: ignore[union-attr]
            raise ValueError(f"{self.name}: short-side arrays must match var's shape {self.var.shape}")

    @property
    def has_short(self) -> bool:
        """Whether short-side (right-tail) forecasts are available."""
        return self.var_short is not None

    def side(self, side: Side) -> tuple[np.ndarray, np.ndarray]:
        """``(var, es)`` for a long (left tail) or short (right tail) position."""
        if side == "long":
            return self.var, self.es
        if side == "short":
            if self.var_short is None or self.es_short is None:
                raise ValueError(f"{self.name}: no short-side forecasts")
            return self.var_short, self.es_short
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")

    def for_exposure(self, exposure: np.ndarray, *, es: bool = False) -> np.ndarray:
        """Loss numbers in account currency for signed exposures (time, pair), account currency.

        Long exposures (> 0) use the left tail, short ones (< 0) the right tail; see
        :func:`position_var`. ``es=True`` gives expected shortfall instead of VaR.
        """
        if self.var_short is None or self.es_short is None:
            raise ValueError(f"{self.name}: no short-side forecasts")
        if es:
            return position_var(self.es, self.es_short, exposure)
        return position_var(self.var, self.var_short, exposure)

    def first_valid(self) -> int:
        """First row where every pair has a long-side VaR."""
        ok = np.flatnonzero(np.isfinite(self.var).all(axis=1))
        return int(ok[0]) if ok.size else self.var.shape[0]


# --------------------------------------------------------------------------- units and helpers


def to_currency(var_fraction: np.ndarray | float, position_value: np.ndarray | float) -> np.ndarray:
    """VaR (or ES) in account currency: a loss fraction times the position's absolute value.

    ``position_value`` is the position's market value in account currency (its sign, long or
    short, does not change the size of the loss; pick the tail with :func:`position_var`).
    """
    return np.asarray(var_fraction, dtype=float) * np.abs(np.asarray(position_value, dtype=float))


def scale_horizon(var_1bar: np.ndarray | float, horizon_bars: float) -> np.ndarray:
    """Square-root-of-time scaling of a one-bar VaR (or ES) to ``horizon_bars`` bars.

    Assumes one-bar returns are i.i.d. with zero mean (and, for the quantile to scale exactly,
    from a distribution family closed under summation such as the normal); then the h-bar
    return's sd is ``sqrt(h)`` times the one-bar sd. Volatility clustering, fat tails that thin
    under aggregation, and drift all break it — it is the regulatory convention, not a model.
    """
    if not horizon_bars > 0:
        raise ValueError(f"horizon_bars must be > 0, got {horizon_bars}")
    return np.asarray(var_1bar, dtype=float) * math.sqrt(horizon_bars)


def position_var(var_long: np.ndarray, var_short: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Per-position loss in account currency: ``|exposure| x`` the tail of the exposure's sign.

    ``exposure`` is the signed position value in account currency (> 0 long, < 0 short),
    broadcastable against the VaR arrays. NaN VaR stays NaN (even for a flat position), so
    callers see when no forecast exists. No diversification across pairs is assumed or applied.
    """
    exposure = np.asarray(exposure, dtype=float)
    loss_fraction = np.where(exposure >= 0, var_long, var_short)
    return loss_fraction * np.abs(exposure)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha is a confidence level in (0, 1), e.g. 0.99; got {alpha}")


def _check_returns(returns: np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"returns must be shaped (time, pair), got {r.shape}")
    return r


def _check_window(window: int) -> None:
    if int(window) != window or window < 2:
        raise ValueError(f"window must be an integer >= 2, got {window}")


def _sigma_array(sigma: np.ndarray | SigmaLike) -> np.ndarray:
    arr = np.asarray(getattr(sigma, "sigma", sigma), dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"sigma must be shaped (time, pair), got {arr.shape}")
    finite = arr[np.isfinite(arr)]
    if (finite <= 0).any():
        raise ValueError("sigma forecasts must be > 0")
    return arr


# --------------------------------------------------------------------------- closed-form tails


def normal_tail(alpha: float) -> tuple[float, float]:
    """``(z, es)`` of the standard normal loss at confidence ``alpha``.

    ``z = Phi^-1(alpha)`` (2.3263 at 0.99) and ``es = phi(z) / (1 - alpha)`` (2.6652 at 0.99):
    multiply by sigma (and subtract the mean) for VaR and ES.
    """
    _check_alpha(alpha)
    z = float(stats.norm.ppf(alpha))
    return z, float(stats.norm.pdf(z) / (1.0 - alpha))


def t_tail(alpha: float, nu: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """``(q, es)`` of the loss of a **unit-variance** Student-t with ``nu`` dof at ``alpha``.

    With ``t = t_nu^-1(alpha)`` and ``c = sqrt((nu - 2) / nu)`` (the t's sd is ``1/c``):
    ``q = c t`` and ``es = c f_nu(t) (nu + t^2) / ((nu - 1)(1 - alpha))`` (McNeil, Frey &
    Embrechts, *Quantitative Risk Management*, ex. 2.19). Elementwise over ``nu``; NaN where
    ``nu <= 2`` or NaN (no finite variance), normal values where ``nu > 1e6`` or infinite.
    """
    _check_alpha(alpha)
    nu = np.asarray(nu, dtype=float)
    ok = np.isfinite(nu) & (nu > 2.0) & (nu <= _NU_NORMAL)
    safe = np.where(ok, nu, 10.0)
    t = stats.t.ppf(alpha, safe)
    c = np.sqrt((safe - 2.0) / safe)
    q = c * t
    es = c * stats.t.pdf(t, safe) * (safe + t * t) / ((safe - 1.0) * (1.0 - alpha))
    z, es_n = normal_tail(alpha)
    as_normal = nu > _NU_NORMAL  # includes +inf
    q = np.where(ok, q, np.where(as_normal, z, np.nan))
    es = np.where(ok, es, np.where(as_normal, es_n, np.nan))
    return q, es


# --------------------------------------------------------------------------- rolling machinery


def _expand(values: np.ndarray, count: np.ndarray, window: int) -> np.ndarray:
    """Map per-window results (window k ends at the (k+window)-th finite value) back to rows.

    ``count[t]`` is the number of finite inputs at rows <= t; rows with fewer than ``window``
    get NaN.
    """
    out = np.full(count.shape[0], np.nan)
    ok = count >= window
    out[ok] = values[count[ok] - window]
    return out


def _rolling_tails(x: np.ndarray, window: int, p: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rolling empirical lower and upper tails of a finite 1-D array, in one pass.

    Returns ``(q_lo, mean_lo, q_hi, mean_hi)``; result k is for the window ``x[k : k+window]``.
    Quantiles: numpy's default ('linear') definition — ``q_lo`` the ``p``-quantile (position
    ``(window-1) p`` in the sorted window), ``q_hi`` the ``(1-p)``-quantile, computed as the
    exact mirror image (so negating the data swaps the tails). Tail means: the mean of the
    ``floor((window-1) p) + 1`` smallest (largest) values — all at or beyond the quantile, so the
    ES they give is never below the VaR. The window is kept sorted as it slides
    (:func:`rolling_tails_python`, compiled): O(window) moves of memory per row instead of a
    partition of the whole window, about 25x faster than ``np.partition`` over a
    sliding-window view at a 500-bar window.
    """
    n_win = x.shape[0] - window + 1
    if n_win <= 0:
        empty = np.empty(0)
        return empty, empty, empty, empty
    pos = (window - 1) * p
    lo = int(math.floor(pos))
    hi = min(lo + 1, window - 1)
    out = _rolling_tails_compiled(np.ascontiguousarray(x, dtype=np.float64), int(window), lo, hi, pos - lo)
    return out[0], out[1], out[2], out[3]


def rolling_tails_python(x: np.ndarray, window: int, lo: int, hi: int, frac: float) -> np.ndarray:
    """The rolling tails of :func:`_rolling_tails` as rows ``(q_lo, mean_lo, q_hi, mean_hi)``.

    Plain Python, compiled with numba (``_rolling_tails_compiled``) the way the GARCH
    recursions are: ``window`` values are kept sorted; each step removes the value that leaves
    (found by bisection) and inserts the one that enters, shifting the values between.
    ``lo``/``hi`` are the order statistics the ``p``-quantile interpolates between
    (``frac`` of the way); the upper tail mirrors them from the top.
    """
    n_win = x.shape[0] - window + 1
    out = np.empty((4, n_win))
    s = np.sort(x[:window])
    top_lo, top_hi = window - 1 - lo, window - 1 - hi
    for k in range(n_win):
        if k > 0:
            old, new = x[k - 1], x[k + window - 1]
            i = np.searchsorted(s, old)  # a value equal to the one leaving (the same order statistic)
            j = np.searchsorted(s, new)
            if j <= i:  # the new value goes at j: shift s[j:i] up by one
                for m in range(i, j, -1):
                    s[m] = s[m - 1]
                s[j] = new
            else:  # it goes at j - 1: shift s[i+1:j] down by one
                for m in range(i, j - 1):
                    s[m] = s[m + 1]
                s[j - 1] = new
        a, b = s[lo], s[hi]
        out[0, k] = a + frac * (b - a)
        total = 0.0
        for m in range(lo + 1):
            total += s[m]
        out[1, k] = total / (lo + 1)
        a, b = s[top_lo], s[top_hi]
        out[2, k] = a + frac * (b - a)
        total = 0.0
        for m in range(top_lo, window):
            total += s[m]
        out[3, k] = total / (window - top_lo)
    return out


_rolling_tails_compiled = _compile(cache=True, nogil=True)(rolling_tails_python)


def _rolling_mean_sd(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Rolling mean and sample sd (ddof=1) of a finite 1-D array via prefix sums, O(n)."""
    if x.shape[0] < window:
        return np.empty(0), np.empty(0)
    s1 = np.concatenate(([0.0], np.cumsum(x)))
    s2 = np.concatenate(([0.0], np.cumsum(x * x)))
    w1 = s1[window:] - s1[:-window]
    w2 = s2[window:] - s2[:-window]
    mean = w1 / window
    var = np.maximum(w2 - w1 * mean, 0.0) / (window - 1)
    return mean, np.sqrt(var)


def _finite_index(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finite values of a column and, per row, how many finite values exist at rows <= t."""
    finite = np.isfinite(col)
    return col[finite], np.cumsum(finite)


def _empirical_both_tails(x_by_pair: list[tuple[np.ndarray, np.ndarray]], n_rows: int, window: int,
                          alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Long and short (quantile-loss, tail-mean-loss) rows for each pair's finite series."""
    shape = (n_rows, len(x_by_pair))
    var, es, var_s, es_s = (np.full(shape, np.nan) for _ in range(4))
    p = 1.0 - alpha
    for j, (x, count) in enumerate(x_by_pair):
        q_lo, mean_lo, q_hi, mean_hi = _rolling_tails(x, window, p)
        var[:, j] = _expand(-q_lo, count, window)
        es[:, j] = _expand(-mean_lo, count, window)
        var_s[:, j] = _expand(q_hi, count, window)
        es_s[:, j] = _expand(mean_hi, count, window)
    return var, es, var_s, es_s


# --------------------------------------------------------------------------- unconditional models


def historical_var(returns: np.ndarray, alpha: float = 0.99, *, window: int = 500,
                   name: str = "historical") -> RiskForecast:
    """Historical simulation: VaR/ES from the empirical distribution of the last ``window`` returns.

    Row t: ``var = -Q_{1-alpha}`` (numpy 'linear' quantile) of the last ``window`` finite
    returns at rows <= t, ``es`` = minus the mean of the ``floor((window-1)(1-alpha)) + 1``
    worst of them; the short side uses the upper tail. Return units; NaN until ``window``
    finite returns exist. No model for the conditional volatility: slow to react to regime
    changes, by design.
    """
    _check_alpha(alpha)
    _check_window(window)
    r = _check_returns(returns)
    cols = [_finite_index(r[:, j]) for j in range(r.shape[1])]
    var, es, var_s, es_s = _empirical_both_tails(cols, r.shape[0], window, alpha)
    return RiskForecast(name=name, alpha=alpha, var=var, es=es, var_short=var_s, es_short=es_s,
                        info={"window": window})


def _rolling_moments(r: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    mean = np.full(r.shape, np.nan)
    sd = np.full(r.shape, np.nan)
    cols = []
    for j in range(r.shape[1]):
        x, count = _finite_index(r[:, j])
        m, s = _rolling_mean_sd(x, window)
        mean[:, j] = _expand(m, count, window)
        sd[:, j] = _expand(s, count, window)
        cols.append((x, count))
    return mean, sd, cols


def _location_scale(name: str, alpha: float, mu: np.ndarray | float, sigma: np.ndarray, q: np.ndarray | float,
                    es_std: np.ndarray | float, info: dict[str, Any]) -> RiskForecast:
    """VaR/ES of ``r = mu + sigma Z`` for a symmetric standardised Z with loss quantile ``q``."""
    var = -mu + sigma * q
    es = -mu + sigma * es_std
    var_s = mu + sigma * q
    es_s = mu + sigma * es_std
    return RiskForecast(name=name, alpha=alpha, var=np.asarray(var, float), es=np.asarray(es, float),
                        var_short=np.asarray(var_s, float), es_short=np.asarray(es_s, float), info=info)


def normal_var(returns: np.ndarray, alpha: float = 0.99, *, window: int = 500, demean: bool = True,
               name: str = "normal") -> RiskForecast:
    """Parametric normal VaR/ES from the rolling mean and sample sd (ddof=1) of ``window`` returns.

    ``var = -(mean - sd z_alpha)``, ``es = -mean + sd phi(z)/(1-alpha)``; short side mirrored
    around the mean. ``demean=False`` sets the mean to 0 (common for short-horizon FX).
    Return units. Under-covers FX at 99% (fat tails) — kept as the textbook baseline.
    """
    _check_alpha(alpha)
    _check_window(window)
    r = _check_returns(returns)
    mean, sd, _ = _rolling_moments(r, window)
    mu = mean if demean else np.where(np.isfinite(mean), 0.0, np.nan)
    z, es_std = normal_tail(alpha)
    return _location_scale(name, alpha, mu, sd, z, es_std, {"window": window, "demean": demean})


def _fit_t_dof(x: np.ndarray) -> float:
    """MLE of Student-t dof on one window (loc and scale free); NaN when the fit is unusable.

    The window is standardised first (the dof MLE is invariant to affine maps of the data, and
    unit-scale data keeps the optimiser well conditioned); the start value comes from the
    sample kurtosis (``nu = 4 + 6 / excess``).
    """
    sd = x.std(ddof=1)
    if not sd > 0:
        return math.nan
    z = (x - x.mean()) / sd
    excess = float(np.mean(z ** 4) - 3.0)
    start = 4.0 + 6.0 / excess if excess > 0.05 else 100.0
    start = min(max(start, 2.5), 100.0)
    try:
        nu, _, _ = stats.t.fit(z, start, loc=0.0, scale=math.sqrt((start - 2.0) / start))
    except (ValueError, RuntimeError, FloatingPointError):
        return math.nan
    return float(nu) if math.isfinite(nu) and nu > 0 else math.nan


def student_t_var(returns: np.ndarray, alpha: float = 0.99, *, window: int = 500, refit_every: int = 250,
                  nu_bounds: tuple[float, float] = (2.1, 1000.0), demean: bool = True,
                  name: str = "student_t") -> RiskForecast:
    """Parametric Student-t VaR/ES: rolling mean/sd with a t whose dof is fitted by MLE.

    Every ``refit_every`` bars (counted from the first row with a full window, per pair) the dof
    ``nu`` is re-estimated with ``scipy.stats.t.fit`` on the last ``window`` finite returns at
    or before that row, clipped to ``nu_bounds``, and used until the next refit (causal: a dof
    never precedes the data it was fitted on). The t is scaled to the window's sample sd:
    ``var = -mean + sd sqrt((nu-2)/nu) t_nu^-1(alpha)``; ES by the closed form of
    :func:`t_tail`. A failed fit keeps the previous dof (counted in ``info['fallbacks']``).
    ``info['nu']`` is the dof in effect per row. Cost: one ``t.fit`` (~40 ms at 500 obs) per
    pair per refit — about 16 s per pair for 10^5 bars at ``refit_every=250``.
    """
    _check_alpha(alpha)
    _check_window(window)
    if int(refit_every) != refit_every or refit_every < 1:
        raise ValueError(f"refit_every must be a positive integer, got {refit_every}")
    lo_nu, hi_nu = nu_bounds
    if not 2.0 < lo_nu <= hi_nu:
        raise ValueError(f"nu_bounds must satisfy 2 < low <= high, got {nu_bounds}")
    r = _check_returns(returns)
    mean, sd, cols = _rolling_moments(r, window)
    nu = np.full(r.shape, np.nan)
    refits = fallbacks = 0
    for j, (x, count) in enumerate(cols):
        valid = np.flatnonzero(count >= window)
        if valid.size == 0:
            continue
        t0 = int(valid[0])
        refit_rows = np.arange(t0, r.shape[0], refit_every)
        fitted = np.full(refit_rows.shape[0], np.nan)
        last = math.nan
        for k, row in enumerate(refit_rows):
            c = int(count[row])
            est = _fit_t_dof(x[c - window:c])
            refits += 1
            if math.isfinite(est):
                last = min(max(est, lo_nu), hi_nu)
            else:
                fallbacks += 1
            fitted[k] = last
        rows = np.arange(t0, r.shape[0])
        nu[t0:, j] = fitted[(rows - t0) // refit_every]
    mu = mean if demean else np.where(np.isfinite(mean), 0.0, np.nan)
    q, es_std = t_tail(alpha, nu)
    return _location_scale(name, alpha, mu, sd, q, es_std,
                           {"window": window, "refit_every": refit_every, "nu": nu, "refits": refits,
                            "fallbacks": fallbacks, "demean": demean})


# --------------------------------------------------------------------------- conditional (vol-forecast) models


def conditional_var(sigma: np.ndarray | SigmaLike, alpha: float = 0.99, *,
                    dist: Literal["normal", "t", "skewt"] = "normal", nu: np.ndarray | float | None = None,
                    lam: np.ndarray | float | None = None, mu: np.ndarray | float | None = None,
                    name: str | None = None) -> RiskForecast:
    """VaR/ES of ``r[t+1] = mu + sigma[t] Z`` with Z standard normal, unit-variance t or skewed t.

    ``sigma`` (time, pair): forecast sd of ``returns[t+1]`` made at t (a ``VolForecast`` or its
    ``.sigma``), return units. ``var = -(mu + sigma q_{1-alpha})``; ES in closed form
    (:func:`normal_tail`, :func:`t_tail`, :func:`skewt_tail`). For ``dist='t'`` / ``'skewt'``,
    ``nu`` (and ``lam``, Hansen's asymmetry) is a scalar, a per-pair vector or a (time, pair)
    array — the values in effect at each row, taken from the forecast's ``info`` when None.
    ``mu``: the forecast mean of ``returns[t+1]`` (return units); when None, the forecast's
    ``info['mu']`` (a GARCH fit's constant mean) or 0 for forecasts without one. NaN sigma or
    dof rows give NaN.
    """
    _check_alpha(alpha)
    s = _sigma_array(sigma)
    label = name or f"{getattr(sigma, 'name', 'sigma')}-{dist}"
    info_in = getattr(sigma, "info", {}) or {}
    if mu is None:
        mu = info_in.get("mu", 0.0)
    mu_arr = np.broadcast_to(np.asarray(mu, dtype=float), s.shape)
    if dist == "normal":
        q, es_std = normal_tail(alpha)
        info: dict[str, Any] = {"dist": "normal"}
        return _location_scale(label, alpha, mu_arr, s, q, es_std, info)
    if dist not in ("t", "skewt"):
        raise ValueError(f"dist must be 'normal', 't' or 'skewt', got {dist!r}")
    if nu is None:
        nu = info_in.get("nu")
        if nu is None:
            raise ValueError(f"dist={dist!r} needs nu (scalar, per pair, or (time, pair))")
    nu_arr = np.broadcast_to(np.asarray(nu, dtype=float), s.shape)
    if dist == "t":
        q, es_std = t_tail(alpha, nu_arr)
        return _location_scale(label, alpha, mu_arr, s, q, es_std, {"dist": "t", "nu": nu_arr})
    if lam is None:
        lam = info_in.get("lam")
        if lam is None:
            raise ValueError("dist='skewt' needs lam (scalar, per pair, or (time, pair))")
    lam_arr = np.broadcast_to(np.asarray(lam, dtype=float), s.shape)
    q_l, es_l = skewt_tail(alpha, nu_arr, lam_arr)
    q_s, es_s = skewt_tail(alpha, nu_arr, -lam_arr)  # -Z is skewed t with -lam
    return RiskForecast(name=label, alpha=alpha, var=-mu_arr + s * q_l, es=-mu_arr + s * es_l,
                        var_short=mu_arr + s * q_s, es_short=mu_arr + s * es_s,
                        info={"dist": "skewt", "nu": nu_arr, "lam": lam_arr})


def skewt_tail(alpha: float, nu: np.ndarray | float, lam: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """``(q, es)`` of the loss ``-Z`` of Hansen's (1994) unit-variance skewed t at confidence ``alpha``.

    The parametrisation of ``arch``'s ``SkewStudent`` (``eta = nu > 2``, ``-1 < lam < 1``;
    ``lam < 0``: a heavier left tail). With ``c, a, b`` Hansen's constants, ``s = sqrt((nu-2)/nu)``
    and ``p = 1 - alpha < (1 - lam)/2`` (always, for alpha >= 0.5 and |lam| small enough),
    the left branch maps Z to a standard t variable W: ``Z = ((1-lam) s W - a) / b`` with
    ``P(Z <= z) = (1-lam) T(w)``, so ``q = -((1-lam) s w_p - a)/b`` with ``w_p = T^-1(p/(1-lam))``
    and ``es = -(1-lam)/(b p) [(1-lam) s E_W - a p/(1-lam)]``, ``E_W = -(nu + w_p^2) f(w_p)/(nu-1)``.
    Elementwise; ``nu = inf`` (or > 1e6) is the normal limit; NaN where ``nu <= 2``, NaN, or
    ``p >= (1-lam)/2``. For a short position use ``-lam``.
    """
    _check_alpha(alpha)
    nu = np.asarray(nu, dtype=float)
    lam = np.asarray(lam, dtype=float)
    nu, lam = np.broadcast_arrays(nu, lam)
    p = 1.0 - alpha
    ok = ~np.isnan(nu) & (nu > 2.0) & np.isfinite(lam) & (np.abs(lam) < 1.0) & (p < (1.0 - lam) / 2.0)
    eta = np.where(ok, np.minimum(nu, _NU_NORMAL), 10.0)
    lm = np.where(ok, lam, 0.0)
    from scipy.special import gammaln

    c = np.exp(gammaln((eta + 1) / 2) - gammaln(eta / 2)) / np.sqrt(np.pi * (eta - 2))
    a = 4 * lm * c * (eta - 2) / (eta - 1)
    b = np.sqrt(1 + 3 * lm**2 - a**2)
    sc = np.sqrt((eta - 2) / eta)
    w = stats.t.ppf(p / (1 - lm), eta)
    q = -((1 - lm) * sc * w - a) / b
    ew = -(eta + w * w) / (eta - 1) * stats.t.pdf(w, eta)
    es = -(1 - lm) / (b * p) * ((1 - lm) * sc * ew - a * p / (1 - lm))
    return np.where(ok, q, np.nan), np.where(ok, es, np.nan)


def standardised_residuals(returns: np.ndarray, sigma: np.ndarray | SigmaLike) -> np.ndarray:
    """``z[s] = returns[s] / sigma[s-1]``: each return over the forecast made for it (row 0 NaN).

    ``z[s]`` is known at row s, so a window ending at t uses only data <= t. NaN where either
    input is NaN.
    """
    r = _check_returns(returns)
    s = _sigma_array(sigma)
    if s.shape != r.shape:
        raise ValueError(f"returns {r.shape} and sigma {s.shape} must have the same shape")
    z = np.full(r.shape, np.nan)
    z[1:] = r[1:] / s[:-1]
    return z


def fhs_var(returns: np.ndarray, sigma: np.ndarray | SigmaLike, alpha: float = 0.99, *, window: int = 500,
            name: str | None = None) -> RiskForecast:
    """Filtered historical simulation: empirical tails of standardised residuals, rescaled.

    ``z[s] = r[s] / sigma[s-1]`` (:func:`standardised_residuals`); row t uses the last
    ``window`` finite residuals at rows <= t: ``var[t] = sigma[t] x (-Q_{1-alpha}(z))`` and
    ``es[t] = sigma[t] x`` (minus the mean of the worst residuals, as in
    :func:`historical_var`); the short side uses the upper tail of z. No mean is removed (the
    volatility models here forecast zero-mean returns). NaN where ``sigma[t]`` is NaN or
    fewer than ``window`` residuals exist — a model that starts late (e.g. an LSTM from
    ``val_end``) gets FHS only ``window`` bars later.
    """
    _check_alpha(alpha)
    _check_window(window)
    s = _sigma_array(sigma)
    z = standardised_residuals(returns, s)
    cols = [_finite_index(z[:, j]) for j in range(z.shape[1])]
    qv, qe, qv_s, qe_s = _empirical_both_tails(cols, z.shape[0], window, alpha)
    label = name or f"{getattr(sigma, 'name', 'sigma')}-fhs"
    return RiskForecast(name=label, alpha=alpha, var=s * qv, es=s * qe, var_short=s * qv_s, es_short=s * qe_s,
                        info={"window": window, "z_var": qv, "z_es": qe})


def residual_quantile_var(sigma: np.ndarray | SigmaLike, alpha: float, grid: np.ndarray,
                          quantiles: np.ndarray, *, name: str | None = None) -> RiskForecast:
    """VaR/ES from a volatility forecast and a fixed standardised-residual distribution.

    ``quantiles[j]`` are pair j's quantiles of ``r[t+1] / sigma[t]`` at probabilities ``grid``
    (increasing, in (0, 1)), estimated once on a training span — e.g. the LSTM's training
    residuals (``info['residual_quantiles']``). ``var[t] = -sigma[t] q(1 - alpha)``; ES is the
    mean of the grid quantiles beyond that level. Available from the first forecast row,
    unlike FHS, which first needs ``window`` out-of-sample residuals.
    """
    _check_alpha(alpha)
    s = _sigma_array(sigma)
    grid = np.asarray(grid, dtype=float)
    q = np.asarray(quantiles, dtype=float)
    if q.shape != (s.shape[1], grid.size):
        raise ValueError(f"quantiles must be (pair, grid) = {(s.shape[1], grid.size)}, got {q.shape}")
    p = 1.0 - alpha
    var_z = np.array([-np.interp(p, grid, q[j]) for j in range(q.shape[0])])
    es_z = np.array([-np.mean(q[j][grid <= p]) if (grid <= p).any() else var_z[j] for j in range(q.shape[0])])
    var_zs = np.array([np.interp(alpha, grid, q[j]) for j in range(q.shape[0])])
    es_zs = np.array([np.mean(q[j][grid >= alpha]) if (grid >= alpha).any() else var_zs[j]
                      for j in range(q.shape[0])])
    es_z, es_zs = np.maximum(es_z, var_z), np.maximum(es_zs, var_zs)
    label = name or f"{getattr(sigma, 'name', 'sigma')}-resid"
    return RiskForecast(name=label, alpha=alpha, var=s * var_z, es=s * es_z, var_short=s * var_zs,
                        es_short=s * es_zs, info={"z_var": var_z, "z_es": es_z})


def vol_scaled_var(returns: np.ndarray, sigma: np.ndarray | SigmaLike, alpha: float = 0.99, *,
                   method: Literal["fhs", "normal", "t"] = "fhs", nu: np.ndarray | float | None = None,
                   window: int = 500, mu: np.ndarray | float | None = None, name: str | None = None) -> RiskForecast:
    """One entry point for VaR from any volatility forecast (GARCH, EWMA, LSTM alike).

    ``method='fhs'``: :func:`fhs_var` (empirical standardised tails, ``window`` residuals);
    ``'normal'`` / ``'t'``: :func:`conditional_var` (``nu`` or the forecast's ``info['nu']``).
    The forecast is only a sigma array here — the VaR model does not know where it came from.
    """
    if method == "fhs":
        return fhs_var(returns, sigma, alpha, window=window, name=name)
    if method in ("normal", "t"):
        _check_returns(returns)
        return conditional_var(sigma, alpha, dist=method, nu=nu, mu=mu, name=name)
    raise ValueError(f"method must be 'fhs', 'normal' or 't', got {method!r}")


# --------------------------------------------------------------------------- conditional EVT and per-window FHS


def _gpd_profile(theta: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Profile log-likelihood of the GPD at ``theta = xi / beta`` (rows of ``y``): (ll, xi, beta)."""
    k = y.shape[-1]
    ty = theta[..., None] * y
    xi = np.log1p(np.maximum(ty, -1.0 + 1e-15)).mean(axis=-1)
    small = np.abs(theta) < 1e-10
    ratio = np.where(small, y.mean(axis=-1), xi / np.where(small, 1.0, theta))  # = beta
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = -k * (np.log(ratio) + 1.0 + xi)
    ll = np.where(np.isfinite(ll) & (xi > -0.5) & (ratio > 0), ll, -np.inf)
    return ll, xi, ratio


def gpd_fit(excesses: np.ndarray, *, grid: int = 48, iterations: int = 40,
            nonnegative_shape: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood generalised Pareto ``(xi, beta)`` for each row of excesses (>= 0), vectorised.

    Why not ``scipy.stats.genpareto.fit``: a daily walk-forward needs thousands of fits; this
    maximises the same likelihood (location 0) through its one-dimensional profile in
    ``theta = xi / beta`` (Grimshaw 1993: ``xi(theta) = mean log(1 + theta y)``,
    ``beta = xi / theta``), by a grid and a golden-section refinement over all rows at once.
    Restricted to ``xi > -0.5`` (the regular case). ``excesses`` is (rows, k) or (k,).

    ``nonnegative_shape``: maximise over ``xi >= 0`` only (``theta >= 0``; ``xi(theta) >= 0`` exactly
    when ``theta >= 0``), i.e. an unbounded tail: a window whose largest losses look bounded gets
    the exponential (``xi = 0``, ``beta`` = mean excess) or a heavier tail, never an endpoint a
    later crisis can break.
    """
    y = np.atleast_2d(np.asarray(excesses, dtype=float))
    if y.shape[-1] < 3 or not np.isfinite(y).all() or (y < 0).any():
        raise ValueError(f"need >= 3 finite, non-negative excesses per row, got shape {y.shape}")
    ymax = np.maximum(y.max(axis=-1), 1e-300)
    # theta * ymax = exp(v) - 1 spans (-1, 1000): every admissible theta up to very heavy tails;
    # with a non-negative shape v >= 0 (theta >= 0), v = 0 being the exponential law
    v_low = 0.0 if nonnegative_shape else math.log(1e-6)
    v_grid = np.linspace(v_low, math.log(1000.0), grid)
    if not nonnegative_shape:
        v_grid = v_grid[np.abs(np.expm1(v_grid)) > 1e-9]
    theta = np.expm1(v_grid)[None, :] / ymax[:, None]
    ll = np.stack([_gpd_profile(theta[:, i], y)[0] for i in range(theta.shape[1])], axis=1)
    best = np.argmax(ll, axis=1)
    lo = v_grid[np.maximum(best - 1, 0)]
    hi = v_grid[np.minimum(best + 1, v_grid.size - 1)]
    g = (math.sqrt(5.0) - 1.0) / 2.0

    def value(v: np.ndarray) -> np.ndarray:
        return _gpd_profile(np.expm1(v) / ymax, y)[0]

    c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    fc, fd = value(c), value(d)
    for _ in range(iterations):
        left = fc > fd  # the maximum is in [lo, d]
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
        c_new, d_new = hi - g * (hi - lo), lo + g * (hi - lo)
        c, d = c_new, d_new
        fc, fd = value(c), value(d)
    v_best = np.where(fc > fd, c, d)
    theta_best = np.expm1(v_best) / ymax
    grid_best = np.expm1(v_grid[best]) / ymax
    ll_ref, _, _ = _gpd_profile(theta_best, y)
    ll_grid, _, _ = _gpd_profile(grid_best, y)
    theta_best = np.where(ll_ref >= ll_grid, theta_best, grid_best)
    _, xi, beta = _gpd_profile(theta_best, y)
    return xi, beta


def gpd_tail(alpha: float, u: np.ndarray, xi: np.ndarray, beta: np.ndarray,
             exceed_fraction: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """McNeil & Frey (2000) tail estimates: ``(VaR, ES)`` of a loss whose excesses over ``u`` are GPD.

    ``exceed_fraction`` = k / n, the share of the sample above the threshold ``u``; with
    ``p = 1 - alpha < k/n``: ``VaR = u + beta/xi ((p n/k)^-xi - 1)`` (``u - beta log(p n/k)`` at
    xi = 0) and ``ES = (VaR + beta - xi u) / (1 - xi)``, NaN for ``xi >= 1`` (no finite mean).
    Units: those of ``u`` and ``beta`` (standardised residuals here).
    """
    _check_alpha(alpha)
    p = 1.0 - alpha
    frac = np.asarray(exceed_fraction, dtype=float)
    if (np.asarray(p) >= frac).any():
        raise ValueError(f"tail probability {p} must be below the exceedance share k/n (max {np.max(frac)})")
    ratio = p / frac
    xi = np.asarray(xi, dtype=float)
    tiny = np.abs(xi) < 1e-9
    safe = np.where(tiny, 1.0, xi)
    var = np.where(tiny, u - beta * np.log(ratio), u + beta / safe * (ratio ** (-safe) - 1.0))
    es = np.where(xi < 1.0, (var + beta - xi * u) / (1.0 - xi), np.nan)
    return var, es


def _sigma_info(forecast: SigmaLike, key: str) -> np.ndarray:
    value = getattr(forecast, "info", {}).get(key)
    if value is None:
        raise ValueError(f"{getattr(forecast, 'name', 'forecast')}: info has no {key!r} — build the GARCH "
                         f"forecaster with residual_tails > 0 for FHS/EVT VaR")
    return np.asarray(value, dtype=float)


def garch_var(forecast: SigmaLike, alpha: float = 0.99, *, method: Literal["parametric", "fhs", "evt"] = "parametric",
              tail_fraction: float = 0.1, nonnegative_shape: bool = False, name: str | None = None) -> RiskForecast:
    """VaR/ES from a walk-forward GARCH forecast with its fitted mean, shocks and window residuals.

    ``r[t+1] = mu[t] + sigma[t] Z`` with ``mu`` = ``info['mu']`` (the fitted constant mean):

    * ``parametric``: Z from the fitted innovation law (normal, t or skewed t; ``info``);
    * ``fhs``: Z's tail from the refit window's own standardised residuals (``info['z_lo']`` /
      ``['z_hi']``, numpy's 'linear' quantile of the window, ES the mean of the
      ``floor((n-1)(1-alpha)) + 1`` worst — the conventions of :func:`historical_var`);
    * ``evt``: conditional EVT (McNeil & Frey 2000): a GPD fitted to the ``k = round(tail_fraction
      n)`` largest standardised losses of each window over the (k+1)-th, VaR/ES by :func:`gpd_tail`;
      ``nonnegative_shape`` fits it with ``xi >= 0`` (an unbounded tail, :func:`gpd_fit`).

    Row t uses only the fit made at or before t (the forecaster is causal). Return units.
    """
    _check_alpha(alpha)
    s = _sigma_array(forecast)
    info = getattr(forecast, "info", {}) or {}
    mu = np.asarray(info.get("mu", np.zeros_like(s)), dtype=float)
    base = getattr(forecast, "name", "garch")
    if method == "parametric":
        dist = info.get("dist", "normal")
        return conditional_var(forecast, alpha, dist=dist, mu=mu, name=name or base)
    z_lo, z_hi, z_n = _sigma_info(forecast, "z_lo"), _sigma_info(forecast, "z_hi"), _sigma_info(forecast, "z_n")
    kk = z_lo.shape[-1]
    p = 1.0 - alpha
    out_long = [np.full(s.shape, np.nan) for _ in range(2)]
    out_short = [np.full(s.shape, np.nan) for _ in range(2)]
    rows = np.isfinite(z_n) & np.isfinite(s)
    n = np.where(rows, z_n, 2.0)
    if method == "fhs":
        pos = (n - 1.0) * p
        lo = np.floor(pos).astype(int)
        if (lo[rows] + 1 >= kk).any():
            raise ValueError(f"FHS at {alpha} needs more than {kk} stored residuals per tail: raise residual_tails")
        frac = pos - lo
        hi = lo + 1
        for zt, out, sign in ((z_lo, out_long, -1.0), (z_hi, out_short, 1.0)):
            a = np.take_along_axis(zt, np.minimum(lo, kk - 1)[..., None], axis=-1)[..., 0]
            b = np.take_along_axis(zt, np.minimum(hi, kk - 1)[..., None], axis=-1)[..., 0]
            q = a + frac * (b - a)
            cums = np.cumsum(zt, axis=-1)
            tail_mean = np.take_along_axis(cums, np.minimum(lo, kk - 1)[..., None], axis=-1)[..., 0] / (lo + 1)
            out[0][:] = np.where(rows, sign * q, np.nan)
            out[1][:] = np.where(rows, sign * tail_mean, np.nan)
        label = name or f"{base}-fhs"
    elif method == "evt":
        if not 0.0 < tail_fraction < 0.5:
            raise ValueError(f"tail_fraction must be in (0, 0.5), got {tail_fraction}")
        k = np.rint(tail_fraction * n).astype(int)
        if (k[rows] + 1 > kk).any():
            raise ValueError(f"EVT with tail_fraction {tail_fraction} needs {int(k[rows].max()) + 1} stored "
                             f"residuals per tail, the forecast has {kk}: raise residual_tails")
        idx = np.flatnonzero(rows.ravel())
        gpd = {key: np.full(s.shape, np.nan) for key in ("u", "xi", "beta", "frac")}  # long side, per row
        for zt, out, sign in ((z_lo, out_long, -1.0), (z_hi, out_short, 1.0)):
            losses = sign * zt.reshape(-1, kk)[idx]  # descending losses (largest first)
            kr = k.ravel()[idx]
            for kv in np.unique(kr):
                sel = kr == kv
                u = losses[sel, kv]
                xi, beta = gpd_fit(losses[sel, :kv] - u[:, None], nonnegative_shape=nonnegative_shape)
                v, e = gpd_tail(alpha, u, xi, beta, kv / n.ravel()[idx][sel])
                out[0].reshape(-1)[idx[sel]] = v
                out[1].reshape(-1)[idx[sel]] = e
                if sign < 0:
                    for key, val in (("u", u), ("xi", xi), ("beta", beta), ("frac", kv / n.ravel()[idx][sel])):
                        gpd[key].reshape(-1)[idx[sel]] = val
        label = name or f"{base}-evt"
    else:
        raise ValueError(f"method must be 'parametric', 'fhs' or 'evt', got {method!r}")
    z_var, z_es = out_long
    z_var_s, z_es_s = out_short
    out_info: dict[str, Any] = {"method": method, "z_var": z_var, "z_es": z_es, "tail_fraction": tail_fraction,
                                "nonnegative_shape": nonnegative_shape, "mu": mu, "sigma": s}
    if method == "evt":
        out_info["gpd"] = gpd  # the long-side tail law per row: losses -z above u are GPD(xi, beta), P = frac
    return RiskForecast(name=label, alpha=alpha, var=-mu + s * z_var, es=-mu + s * z_es,
                        var_short=mu + s * z_var_s, es_short=mu + s * z_es_s, info=out_info)


# --------------------------------------------------------------------------- quantile regression


def _fit_quantile_line(x: np.ndarray, y: np.ndarray, quantile: float) -> tuple[float, float]:
    """Intercept and slope of the ``quantile`` linear quantile regression of y on x (pinball loss).

    Fitted by ``sklearn.linear_model.QuantileRegressor(solver='highs', alpha=0)`` (the exact LP,
    no penalty) on centred x and y scaled to unit sd — quantile regression is equivariant to
    both, and the LP solver's tolerances assume data of order one.
    """
    from sklearn.linear_model import QuantileRegressor  # heavy import: only when used

    x_mean = float(x.mean())
    scale = float(y.std()) or 1.0
    model = QuantileRegressor(quantile=quantile, alpha=0.0, solver="highs")
    model.fit((x - x_mean)[:, None], y / scale)
    slope = float(model.coef_[0]) * scale
    intercept = float(model.intercept_) * scale - slope * x_mean
    return intercept, slope


def quantile_regression_var(returns: np.ndarray, sigma: np.ndarray | SigmaLike, alpha: float = 0.99, *,
                            fit_start: int = 0, fit_end: int, max_fit_rows: int | None = 20_000,
                            min_fit_rows: int = 200, name: str | None = None) -> RiskForecast:
    """Quantile-regression VaR: ``Q_{1-alpha}(r[t+1] | sigma[t]) = a + b log sigma[t]``, fitted once.

    Per pair, (a, b) minimise the pinball loss over the pairs ``(log sigma[t], r[t+1])`` with
    ``fit_start <= t`` and ``t + 1 < fit_end`` (both finite; the most recent ``max_fit_rows``
    of them, None for all — the LP grows superlinearly, ~6 s at 20,000 rows); the short side
    fits the ``alpha`` quantile. Rows ``t < fit_end`` are NaN (their forecast would use data after
    them); later rows use ``sigma[t]`` only, so they are causal. For an LSTM sigma, which is NaN
    before ``val_end``, fit on the validation span (``fit_start=train_end, fit_end=val_end``).

    ES: ``es[t] = var[t] + kappa sigma[t]`` with ``kappa`` the mean exceedance beyond VaR in
    sigma units over the fitting span's exceptions (``es >= var`` by construction; NaN when
    the span had no exception). VaR can come out negative where the fitted line crosses zero
    (a very low sigma with a drift); it is not clipped. ``info`` holds (a, b, kappa) per pair.
    """
    _check_alpha(alpha)
    r = _check_returns(returns)
    s = _sigma_array(sigma)
    if s.shape != r.shape:
        raise ValueError(f"returns {r.shape} and sigma {s.shape} must have the same shape")
    if not 0 <= fit_start < fit_end <= r.shape[0]:
        raise ValueError(f"need 0 <= fit_start < fit_end <= {r.shape[0]}, got {fit_start}, {fit_end}")
    y_next = np.full(r.shape, np.nan)
    y_next[:-1] = r[1:]
    var, es, var_s, es_s = (np.full(r.shape, np.nan) for _ in range(4))
    params: dict[str, list[tuple[float, float, float]]] = {"long": [], "short": []}
    rows = np.arange(r.shape[0])
    for j in range(r.shape[1]):
        in_span = (rows >= fit_start) & (rows + 1 < fit_end)
        ok = in_span & np.isfinite(s[:, j]) & np.isfinite(y_next[:, j])
        idx = np.flatnonzero(ok)
        if max_fit_rows is not None:
            idx = idx[-max_fit_rows:]
        if idx.size < min_fit_rows:
            raise ValueError(f"pair {j}: only {idx.size} usable rows in [{fit_start}, {fit_end}), "
                             f"need {min_fit_rows}")
        x_fit, y_fit, s_fit = np.log(s[idx, j]), y_next[idx, j], s[idx, j]
        log_s_out = np.log(s[fit_end:, j])
        for side, q_level, sign in (("long", 1.0 - alpha, 1.0), ("short", alpha, -1.0)):
            a, b = _fit_quantile_line(x_fit, y_fit, q_level)
            # loss = -sign * r: long loses on r < 0, short on r > 0
            var_fit = -sign * (a + b * x_fit)
            loss_fit = -sign * y_fit
            hit = loss_fit > var_fit
            kappa = float(np.mean((loss_fit[hit] - var_fit[hit]) / s_fit[hit])) if hit.any() else math.nan
            v = -sign * (a + b * log_s_out)
            e = v + kappa * s[fit_end:, j]
            if side == "long":
                var[fit_end:, j], es[fit_end:, j] = v, e
            else:
                var_s[fit_end:, j], es_s[fit_end:, j] = v, e
            params[side].append((a, b, kappa))
    label = name or f"{getattr(sigma, 'name', 'sigma')}-qr"
    return RiskForecast(name=label, alpha=alpha, var=var, es=es, var_short=var_s, es_short=es_s,
                        info={"fit_start": fit_start, "fit_end": fit_end, "params": params})


# --------------------------------------------------------------------------- registry and convenience


#: Model name -> function. Unconditional models take ``(returns, alpha, **kw)``; conditional ones
#: take a sigma (``conditional_var(sigma, alpha, ...)``, the others ``(returns, sigma, alpha, ...)``).
VAR_MODELS: dict[str, Callable[..., RiskForecast]] = {
    "historical": historical_var,
    "normal": normal_var,
    "student_t": student_t_var,
    "conditional": conditional_var,
    "fhs": fhs_var,
    "vol_scaled": vol_scaled_var,
    "quantile_regression": quantile_regression_var,
}


def _nu_of(forecast: np.ndarray | SigmaLike) -> np.ndarray | None:
    nu = getattr(forecast, "info", {}).get("nu") if hasattr(forecast, "info") else None
    if nu is None:
        return None
    nu = np.asarray(nu, dtype=float)
    return nu if np.isfinite(nu).any() else None


def var_models(returns: np.ndarray, sigma_by_name: Mapping[str, np.ndarray | SigmaLike], alpha: float = 0.99, *,
               window: int = 500, fhs_window: int | None = None, refit_every: int = 250,
               unconditional: bool = True, nu_by_name: Mapping[str, np.ndarray | float] | None = None,
               qr_span: tuple[int, int] | None = None) -> dict[str, RiskForecast]:
    """The standard set of VaR/ES models for one returns array and several volatility forecasts.

    Unconditional (if ``unconditional``): ``historical``, ``normal``, ``student_t``
    (``window`` bars, dof refitted every ``refit_every``). Per forecast ``name`` (an array or a
    ``VolForecast``): ``{name}-normal``, ``{name}-fhs`` (``fhs_window``, default ``window``),
    ``{name}-t`` when a dof is known (``nu_by_name[name]`` or a finite ``info['nu']``, as from
    GARCH-t), and ``{name}-qr`` when ``qr_span = (fit_start, fit_end)`` is given. Returns
    name -> :class:`RiskForecast`, all aligned with ``returns``.
    """
    r = _check_returns(returns)
    out: dict[str, RiskForecast] = {}
    if unconditional:
        out["historical"] = historical_var(r, alpha, window=window)
        out["normal"] = normal_var(r, alpha, window=window)
        out["student_t"] = student_t_var(r, alpha, window=window, refit_every=refit_every)
    nu_by_name = nu_by_name or {}
    for key, forecast in sigma_by_name.items():
        s = _sigma_array(forecast)
        if s.shape != r.shape:
            raise ValueError(f"{key}: sigma {s.shape} does not match returns {r.shape}")
        out[f"{key}-normal"] = conditional_var(s, alpha, dist="normal", name=f"{key}-normal")
        out[f"{key}-fhs"] = fhs_var(r, s, alpha, window=fhs_window or window, name=f"{key}-fhs")
        nu = nu_by_name.get(key)
        if nu is None:
            nu = _nu_of(forecast)
        if nu is not None:
            out[f"{key}-t"] = conditional_var(s, alpha, dist="t", nu=nu, name=f"{key}-t")
        if qr_span is not None:
            out[f"{key}-qr"] = quantile_regression_var(r, s, alpha, fit_start=qr_span[0], fit_end=qr_span[1],
                                                       name=f"{key}-qr")
    return out
