"""Walk-forward GARCH-family volatility forecasts (GARCH, GJR-GARCH, EGARCH; normal, t or skewed t).

Parameters are estimated by maximum likelihood every ``refit_every`` bars on a rolling or
expanding window that ends at the refit bar (data <= t only); between refits the variance
is filtered forward with the parameters fixed.

What the walk-forward keeps (issue #15, "a faithful walk-forward"):

* **every converged, stationary fit is accepted** (optimizer converged, finite likelihood
  and parameters, persistence ``alpha + gamma/2 + beta < 1``; EGARCH ``|beta| < 1``). A
  rejected refit keeps the last accepted parameters and is counted by reason in
  ``WalkForwardResult.rejects`` (``not_converged``, ``non_stationary``, ``non_finite``);
* **the fitted mean** is kept per row (``mean``) and used by the VaR models;
* **from the first row with a full window every row has a forecast**: until the first
  accepted fit the stated fallback model is RiskMetrics (EWMA variance, lambda 0.94, the
  window mean, normal shocks), flagged per row in ``fallback``;
* **each refit window's own standardised residuals** (in-sample, with that window's
  parameters) are kept as their ``residual_tails`` smallest and largest order statistics,
  so filtered historical simulation and conditional EVT cover the whole span;
* **warm starts**: each fit starts from the previous accepted parameters.

Estimation: GARCH and GJR use the compiled likelihoods of :mod:`forecasters.garch_kernels`
(``arch``'s definitions, its backcast, SLSQP with ``arch``'s constraints, driven by
:mod:`forecasters.slsqp`; the tests check the optimum against ``arch``'s) — about 1.3 ms per
fit instead of ``arch``'s 4-40 ms. EGARCH is
estimated with ``arch`` itself. Data are scaled to unit sample sd per window (parameters
are on that scale; ``GarchParams.scale``).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from arch import arch_model
from scipy.signal import lfilter

from forecasters import garch_kernels as K
from forecasters.base import Split, VolatilityForecaster, VolForecast
from forecasters.seasonality import deseasonalise
from forecasters.slsqp import minimize_slsqp
from simulator.data.market import MarketData

VOL_MODELS = ("garch", "gjr", "egarch")
DISTRIBUTIONS = ("normal", "t", "skewt")
DIST_CODES = {"normal": K.NORMAL, "t": K.STUDENT, "skewt": K.SKEWT}
MAX_BURN_IN = 3000  # bars of filtering before a block: the recursion forgets its start long before
REJECT_REASONS = ("not_converged", "non_stationary", "non_finite")
FALLBACK_LAMBDA = 0.94  # RiskMetrics daily decay, the stated model before the first accepted fit
#: The optimizer's stationarity constraint is persistence <= 1 - margin. Daily FX windows often
#: have their likelihood maximum on the boundary (IGARCH): arch then returns persistence 1 +- 1e-9
#: and "< 1" would accept or reject it by rounding. With the margin the constrained optimum is
#: strictly stationary and accepted; forecasts differ from arch's by far less than 0.1%.
STATIONARITY_MARGIN = 1e-6
#: SLSQP's exit status "positive directional derivative for linesearch": no descent found.
_SLSQP_LINE_SEARCH_STALLED = 8


@dataclass(frozen=True, kw_only=True)
class GarchConfig:
    """Walk-forward settings. Windows and refit interval are in bars.

    ``residual_tails``: how many of the smallest and of the largest in-sample standardised
    residuals of each fit window to keep per row (0: none) — what FHS and EVT VaR read.
    ``residual_window``: bars of standardised residuals those tails come from, ending at the
    refit bar (0: the fit window itself). Longer than the fit window, the returns before it are
    filtered with the same (current) parameters — a longer tail sample for EVT without a
    longer, slower-to-adapt GARCH fit; fewer bars while less history exists. Causal either way.
    """

    vol: str = "garch"
    dist: str = "t"
    mean: str = "constant"
    refit_every: int = 1000
    window: str = "rolling"
    window_size: int = 5000
    min_window: int = 1000
    seasonal: bool = True
    max_iterations: int = 200
    residual_tails: int = 0
    residual_window: int = 0

    def __post_init__(self) -> None:
        if self.vol not in VOL_MODELS:
            raise ValueError(f"vol must be one of {VOL_MODELS}, got {self.vol!r}")
        if self.dist not in DISTRIBUTIONS:
            raise ValueError(f"dist must be one of {DISTRIBUTIONS}, got {self.dist!r}")
        if self.vol == "egarch" and self.dist == "skewt":
            raise ValueError("dist='skewt' is available for vol='garch' or 'gjr', not 'egarch'")
        if self.mean not in ("constant", "zero"):
            raise ValueError(f"mean must be 'constant' or 'zero', got {self.mean!r}")
        if self.window not in ("rolling", "expanding"):
            raise ValueError(f"window must be 'rolling' or 'expanding', got {self.window!r}")
        if self.refit_every < 1:
            raise ValueError(f"refit_every must be >= 1, got {self.refit_every}")
        if self.min_window < 100:
            raise ValueError(f"min_window must be >= 100 bars, got {self.min_window}")
        if self.window == "rolling" and self.window_size < self.min_window:
            raise ValueError(f"window_size ({self.window_size}) must be >= min_window ({self.min_window})")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations}")
        if not 0 <= self.residual_tails <= self.min_window // 2:
            raise ValueError(f"residual_tails must be in [0, min_window/2 = {self.min_window // 2}], "
                             f"got {self.residual_tails}")
        if self.residual_window and (self.residual_window < self.min_window or not self.residual_tails):
            raise ValueError(f"residual_window must be 0 or >= min_window ({self.min_window}) with residual_tails "
                             f"> 0, got {self.residual_window} (residual_tails {self.residual_tails})")

    @property
    def label(self) -> str:
        return f"{self.vol}-{self.dist}"


@dataclass(frozen=True)
class GarchParams:
    """Parameters on the scaled series (``scale`` × de-seasonalised returns)."""

    mu: float
    omega: float
    alpha: float
    gamma: float
    beta: float
    nu: float
    scale: float
    backcast: float
    lam: float = 0.0

    @property
    def persistence(self) -> float:
        """``alpha + gamma/2 + beta`` (GARCH/GJR); < 1 for a stationary variance."""
        return self.alpha + 0.5 * self.gamma + self.beta

    def vector(self) -> np.ndarray:
        """The 7-vector of :mod:`forecasters.garch_kernels`."""
        return np.array([self.mu, self.omega, self.alpha, self.gamma, self.beta,
                         self.nu if math.isfinite(self.nu) else 1e6, self.lam])


def _model(y: np.ndarray, config: GarchConfig):
    o = 0 if config.vol == "garch" else 1
    vol = "EGARCH" if config.vol == "egarch" else "GARCH"
    mean = "Constant" if config.mean == "constant" else "Zero"
    dist = {"normal": "normal", "t": "t", "skewt": "skewt"}[config.dist]
    return arch_model(y, mean=mean, vol=vol, p=1, o=o, q=1, dist=dist, rescale=False)


def param_names(model) -> list[str]:
    """All parameter names of an ``arch`` model in its order: mean, volatility, distribution."""
    return [*model.parameter_names(), *model.volatility.parameter_names(), *model.distribution.parameter_names()]


def _arch_values(p: GarchParams) -> dict[str, float]:
    return {"mu": p.mu, "omega": p.omega, "alpha[1]": p.alpha, "gamma[1]": p.gamma, "beta[1]": p.beta,
            "nu": p.nu, "eta": p.nu, "lambda": p.lam}


# --------------------------------------------------------------------------- estimation


_NAMES = ("mu", "omega", "alpha", "gamma", "beta", "nu", "lam")
_BOUNDS = {"mu": (-1.0, 1.0), "omega": (1e-8, 10.0), "alpha": (0.0, 1.0), "gamma": (-1.0, 2.0),
           "beta": (0.0, 1.0), "nu": (2.05, 500.0), "lam": (-0.99, 0.99)}


def _free(config: GarchConfig) -> list[int]:
    names = ["omega", "alpha", "beta"]
    if config.mean == "constant":
        names.insert(0, "mu")
    if config.vol == "gjr":
        names.insert(names.index("beta"), "gamma")
    if config.dist in ("t", "skewt"):
        names.append("nu")
    if config.dist == "skewt":
        names.append("lam")
    return [_NAMES.index(n) for n in names]


def _cold_start(y: np.ndarray, config: GarchConfig, bc: float) -> np.ndarray:
    """A small grid over (alpha, gamma, beta) as ``arch`` does; the best likelihood wins."""
    code = DIST_CODES[config.dist]
    mu = float(y.mean()) if config.mean == "constant" else 0.0
    var = float(np.var(y))
    best, best_ll = None, -math.inf
    gammas = (0.0,) if config.vol == "garch" else (0.0, 0.05, 0.1)
    for alpha in (0.02, 0.05, 0.1, 0.2):
        for gamma in gammas:
            for persistence in (0.5, 0.8, 0.9, 0.95, 0.98):
                beta = persistence - alpha - 0.5 * gamma
                if beta <= 0:
                    continue
                v = np.array([mu, var * (1 - persistence), alpha, gamma, beta, 8.0, 0.0])
                ll = K.loglik(y, v, code, bc)
                if ll > best_ll:
                    best, best_ll = v, ll
    assert best is not None
    return best


def _fast_fit(y: np.ndarray, config: GarchConfig, start: GarchParams | None) -> tuple[np.ndarray | None, str, float]:
    """SLSQP maximum likelihood of GARCH/GJR on the scaled window ``y``: (7-vector, reason, loglik)."""
    code = DIST_CODES[config.dist]
    resid0 = y - y.mean() if config.mean == "constant" else y
    bc = float(K.backcast(resid0))
    free = _free(config)
    if start is not None:
        base = start.vector()
        if config.mean == "zero":
            base[0] = 0.0
        if base[4] + base[2] + 0.5 * base[3] >= 0.999:  # step back inside the constraint (warm starts sit on it)
            base[4] = 0.999 - base[2] - 0.5 * base[3]
        if config.dist != "skewt":
            base[6] = 0.0
    else:
        base = _cold_start(y, config, bc)
    bounds = [_BOUNDS[_NAMES[i]] for i in free]
    lower, upper = [b[0] for b in bounds], [b[1] for b in bounds]
    x0 = np.clip(base[free], lower, upper)
    full = base.copy()
    ia, ig, ib = _NAMES.index("alpha"), _NAMES.index("gamma"), _NAMES.index("beta")
    pos = {i: k for k, i in enumerate(free)}

    def unpack(theta: np.ndarray) -> np.ndarray:
        v = full.copy()
        v[free] = theta
        return v

    free_idx = np.asarray(free, dtype=np.int64)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return K.nll_grad(y, unpack(theta), free_idx, code, bc)

    jac_stat = np.zeros(len(free))
    for i, d in ((ia, -1.0), (ig, -0.5), (ib, -1.0)):
        if i in pos:
            jac_stat[pos[i]] = d

    def stationarity(theta: np.ndarray) -> float:
        v = unpack(theta)
        return 1.0 - STATIONARITY_MARGIN - v[ia] - 0.5 * v[ig] - v[ib]

    constraints, grads = [stationarity], [jac_stat]
    if ig in pos:
        jac_asym = np.zeros(len(free))
        jac_asym[pos[ia]] = jac_asym[pos[ig]] = 1.0
        constraints.append(lambda th: th[pos[ia]] + th[pos[ig]])
        grads.append(jac_asym)
    options = {"maxiter": config.max_iterations, "ftol": 1e-7}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize_slsqp(objective, x0, bounds, constraints, grads, **options)
        converged = res.success
        if res.status == _SLSQP_LINE_SEARCH_STALLED:
            # Near a boundary (beta -> 1 - alpha) SLSQP can stop because its line search finds no
            # descent along a stale quasi-Newton direction. Restarted from there with a fresh
            # one, it either converges or again finds no descent; then the point is a local
            # optimum to SLSQP's own tolerance (ftol) and the fit is accepted.
            again = minimize_slsqp(objective, np.clip(res.x, lower, upper), bounds, constraints, grads, **options)
            no_descent = (again.status == _SLSQP_LINE_SEARCH_STALLED
                          and abs(again.fun - res.fun) <= options["ftol"] * max(1.0, abs(res.fun)))
            if again.success or no_descent:
                res, converged = (again if again.fun <= res.fun else res), True
    v = unpack(res.x)
    ll = -float(res.fun)
    if not converged:
        return v, "not_converged", ll
    if not (np.isfinite(v).all() and math.isfinite(ll) and ll > -1e9):
        return v, "non_finite", ll
    if not v[ia] + 0.5 * v[ig] + v[ib] < 1.0 or v[1] <= 0:
        return v, "non_stationary", ll
    return v, "", ll


def _arch_fit(y: np.ndarray, config: GarchConfig, start: GarchParams | None) -> tuple[dict | None, str]:
    model = _model(y, config)
    starting = None
    if start is not None:
        values = _arch_values(start)
        starting = np.array([values[n] for n in param_names(model)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = model.fit(disp="off", show_warning=False, starting_values=starting,
                            options={"maxiter": config.max_iterations})
        except (ValueError, np.linalg.LinAlgError, RuntimeError):
            return None, "not_converged"
    if res.convergence_flag != 0:
        return None, "not_converged"
    p = res.params
    out = {"mu": float(p.get("mu", 0.0)), "omega": float(p["omega"]), "alpha": float(p["alpha[1]"]),
           "gamma": float(p.get("gamma[1]", 0.0)), "beta": float(p["beta[1]"]),
           "nu": float(p.get("nu", p.get("eta", math.inf))), "lam": float(p.get("lambda", 0.0))}
    values = [v for v in out.values() if math.isfinite(v) or v == math.inf]
    if len(values) != len(out) or not math.isfinite(res.loglikelihood):
        return None, "non_finite"
    stationary = abs(out["beta"]) < 1.0 if config.vol == "egarch" else (
        out["alpha"] + 0.5 * out["gamma"] + out["beta"] < 1.0 and out["omega"] > 0)
    if not stationary:
        return None, "non_stationary"
    return out, ""


def fit_window_detailed(window: np.ndarray, config: GarchConfig,
                        start: GarchParams | None = None) -> tuple[GarchParams | None, str]:
    """Estimate on one window of (de-seasonalised) returns: ``(params, "")`` or ``(None, reason)``.

    Accepted: converged, finite, stationary (see the module docstring). A warm start that does
    not converge is retried once from the cold-start grid before it counts as rejected. A stalled
    SLSQP line search counts as converged when a restart from its point finds no descent either
    (:func:`_fast_fit`).
    """
    sd = float(np.std(window))
    if not np.isfinite(sd) or sd <= 0:
        return None, "non_finite"
    scale = 1.0 / sd
    y = np.ascontiguousarray(window * scale, dtype=float)
    if config.vol == "egarch":
        out, reason = _arch_fit(y, config, start)
        if out is None and start is not None:
            out, reason = _arch_fit(y, config, None)
        if out is None:
            return None, reason
        mu = out["mu"]
        bc = float(_model(y, config).volatility.backcast(np.asarray(y - y.mean())))
        nu = out["nu"] if config.dist != "normal" else math.inf
        return GarchParams(mu=mu, omega=out["omega"], alpha=out["alpha"], gamma=out["gamma"], beta=out["beta"],
                           nu=nu, scale=scale, backcast=bc, lam=out["lam"]), ""
    v, reason, _ = _fast_fit(y, config, start)
    if reason and start is not None:
        v, reason, _ = _fast_fit(y, config, None)
    if reason:
        return None, reason
    resid0 = y - y.mean() if config.mean == "constant" else y
    return GarchParams(mu=float(v[0]), omega=float(v[1]), alpha=float(v[2]), gamma=float(v[3]), beta=float(v[4]),
                       nu=float(v[5]) if config.dist != "normal" else math.inf, scale=scale,
                       backcast=float(K.backcast(resid0)), lam=float(v[6]) if config.dist == "skewt" else 0.0), ""


def fit_window(window: np.ndarray, config: GarchConfig, start: GarchParams | None = None) -> GarchParams | None:
    """Estimate on one window of (de-seasonalised) returns; ``None`` when the fit is rejected."""
    return fit_window_detailed(window, config, start)[0]


def fallback_params(window: np.ndarray, config: GarchConfig) -> GarchParams:
    """The stated model before the first accepted fit: RiskMetrics EWMA (lambda 0.94), window mean, normal."""
    sd = float(np.std(window))
    scale = 1.0 / sd if np.isfinite(sd) and sd > 0 else 1.0
    y = window * scale
    mu = float(y.mean()) if config.mean == "constant" else 0.0
    return GarchParams(mu=mu, omega=0.0, alpha=1.0 - FALLBACK_LAMBDA, gamma=0.0, beta=FALLBACK_LAMBDA,
                       nu=math.inf, scale=scale, backcast=float(K.backcast(y - mu)), lam=0.0)


# --------------------------------------------------------------------------- filtering


def filter_variance(y: np.ndarray, p: GarchParams, vol: str) -> np.ndarray:
    """Conditional variances ``s2[0..n]`` of the scaled series ``y[0..n-1]``: ``s2[t]`` uses y < t.

    ``s2[n]`` is the forecast for the bar after the last one — row t's forecast is ``s2[t+1]``.
    Definitions as in ``arch`` (GARCH/GJR variance; EGARCH log-variance with E|e| = sqrt(2/pi)).
    """
    eps = y - p.mu
    n = eps.size
    if vol == "egarch":
        out = np.empty(n + 1)
        log_s2 = p.omega + p.beta * p.backcast
        out[0] = math.exp(min(max(log_s2, -700.0), 700.0))  # never 0: constant data would divide by it
        root = math.sqrt(2.0 / math.pi)
        for t, e_t in enumerate(eps.tolist()):
            z = e_t / math.sqrt(out[t])
            log_s2 = p.omega + p.alpha * (abs(z) - root) + p.gamma * z + p.beta * log_s2
            out[t + 1] = math.exp(min(max(log_s2, -700.0), 700.0))
        return out
    s0 = p.omega + (p.alpha + 0.5 * p.gamma + p.beta) * p.backcast
    shock = (p.alpha + p.gamma * (eps < 0)) * eps * eps
    intercept = p.omega + shock
    rest, _ = lfilter([1.0], [1.0, -p.beta], intercept, zi=[p.beta * s0])
    return np.r_[s0, rest]


def _filter(y: np.ndarray, p: GarchParams, vol: str) -> np.ndarray:
    if vol == "egarch":
        return filter_variance(y, p, vol)
    return K.variance(np.ascontiguousarray(y - p.mu), p.omega, p.alpha, p.gamma, p.beta, p.backcast)


@dataclass(frozen=True)
class WalkForwardResult:
    """One series' walk-forward output; row t is the forecast for x[t+1] made with x[<= t].

    ``variance`` and ``mean`` are of the (de-seasonalised) return; ``nu`` / ``lam`` the shape
    parameters in effect (NaN for normal shocks); ``fallback`` marks rows forecast by the
    RiskMetrics fallback; ``z_lo[t]`` (ascending) and ``z_hi[t]`` (descending) the smallest and
    largest standardised residuals of the window in effect at row t, ``z_n[t]`` its size.
    ``fallbacks`` counts rejected refits; ``rejects`` splits them by reason.
    """

    variance: np.ndarray
    nu: np.ndarray
    refits: int
    fallbacks: int
    mean: np.ndarray = field(default_factory=lambda: np.empty(0))
    lam: np.ndarray = field(default_factory=lambda: np.empty(0))
    fallback: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    z_lo: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    z_hi: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    z_n: np.ndarray = field(default_factory=lambda: np.empty(0))
    rejects: dict[str, int] = field(default_factory=dict)
    #: The loop's state before each block's fit: ``(tau, accepted params so far, refits, rejects)``,
    #: what :func:`walk_forward` needs to resume at that block (``resume``).
    checkpoints: tuple[tuple[int, GarchParams | None, int, dict[str, int]], ...] = ()


@dataclass(frozen=True, eq=False)
class WalkForwardResume:
    """A finished walk-forward over a series that agrees with the new one on rows ``< changed_from``.

    Why: a stress scenario changes the market from its window on; every fit whose window ends
    before that row, and every forecast row before it, is what the unstressed run computed.
    """

    reference: WalkForwardResult
    changed_from: int


def first_difference(a: np.ndarray, b: np.ndarray) -> int:
    """The first row where ``a`` and ``b`` differ (NaN equals NaN); their length when none does."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return 0
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if same.ndim > 1:
        same = same.reshape(len(same), -1).all(axis=1)
    bad = np.flatnonzero(~same)
    return int(bad[0]) if bad.size else len(a)


def walk_forward(x: np.ndarray, config: GarchConfig,
                 progress: Callable[[int], None] | None = None, *,
                 resume: WalkForwardResume | None = None) -> WalkForwardResult:
    """Walk-forward forecasts for one series ``x`` (leading NaNs allowed); row t uses x[<= t].

    ``progress(1)`` is called after every refit (a tqdm bar's ``update``), if given.
    ``resume``: a run over a series equal to ``x`` before ``resume.changed_from``; rows before the
    block holding that row are taken from it and the loop restarts at that block's fit with the
    state it had there — the same fits, in the same order, as a fresh run (tests hold them equal).
    """
    n = x.size
    k = config.residual_tails
    variance, mean, nu, lam, z_n = (np.full(n, np.nan) for _ in range(5))
    fallback = np.zeros(n, dtype=bool)
    z_lo = np.full((n, k), np.nan)
    z_hi = np.full((n, k), np.nan)
    finite = np.flatnonzero(np.isfinite(x))
    rejects: Counter[str] = Counter()
    if finite.size == 0:
        return WalkForwardResult(variance, nu, 0, 0, mean, lam, fallback, z_lo, z_hi, z_n, {})
    first = int(finite[0])
    if not np.isfinite(x[first:]).all():
        raise ValueError("returns contain NaN after the first valid row")
    first_refit = first + config.min_window - 1
    refits = 0
    good: GarchParams | None = None
    taus = range(first_refit, n, config.refit_every)
    checkpoints: list[tuple[int, GarchParams | None, int, dict[str, int]]] = []
    start = _resume_block(resume, taus, n, k) if resume is not None else None
    if start is not None:
        block, (tau0, good, refits, done) = start
        ref = resume.reference
        for mine, theirs in ((variance, ref.variance), (mean, ref.mean), (nu, ref.nu), (lam, ref.lam),
                             (fallback, ref.fallback), (z_lo, ref.z_lo), (z_hi, ref.z_hi), (z_n, ref.z_n)):
            mine[:tau0] = theirs[:tau0]
        rejects.update(done)
        checkpoints = list(ref.checkpoints[:block])
        taus = taus[block:]
    for tau in taus:
        checkpoints.append((tau, good, refits, dict(rejects)))
        lo = first if config.window == "expanding" else max(first, tau - config.window_size + 1)
        window = x[lo : tau + 1]
        candidate, reason = fit_window_detailed(window, config, start=good)
        refits += 1
        if progress is not None:
            progress(1)
        if candidate is None:
            rejects[reason] += 1
        else:
            good = candidate
        if good is None and not np.std(window) > 0:
            continue  # a constant window: not even the fallback has a scale; rows stay NaN
        params = good if good is not None else fallback_params(window, config)
        vol = config.vol if good is not None else "garch"
        block_end = min(tau + config.refit_every, n)  # rows tau .. block_end-1
        filter_start = max(first, tau - MAX_BURN_IN) if config.window == "expanding" else lo
        y = x[filter_start:block_end] * params.scale
        s2 = _filter(y, params, vol)  # s2[i] for y index i; forecast at row r: s2[r - start + 1]
        rows = np.arange(tau, block_end)
        variance[rows] = s2[rows - filter_start + 1] / (params.scale**2)
        mean[rows] = params.mu / params.scale
        fallback[rows] = good is None
        if config.dist != "normal":
            nu[rows] = params.nu  # inf (normal) on fallback rows
        if config.dist == "skewt":
            lam[rows] = params.lam
        if k:
            z_start = max(first, tau - config.residual_window + 1)
            if z_start < lo:  # a residual sample longer than the fit window: filter it from its own start
                y_z = x[z_start: tau + 1] * params.scale
                z = (y_z - params.mu) / np.sqrt(_filter(y_z, params, vol)[: y_z.size])
            else:
                w0, w1 = lo - filter_start, tau + 1 - filter_start  # the fit window inside y
                z = (y[w0:w1] - params.mu) / np.sqrt(s2[w0:w1])
            part_lo = np.sort(np.partition(z, k - 1)[:k])
            part_hi = -np.sort(-np.partition(z, z.size - k)[z.size - k:])
            z_lo[rows] = part_lo
            z_hi[rows] = part_hi
            z_n[rows] = z.size
    return WalkForwardResult(variance, nu, refits, sum(rejects.values()), mean, lam, fallback, z_lo, z_hi, z_n,
                             dict(rejects), tuple(checkpoints))


def _resume_block(resume: WalkForwardResume, taus: range, n: int, k: int
                  ) -> tuple[int, tuple[int, GarchParams | None, int, dict[str, int]]] | None:
    """The block to restart at and the reference's state there; ``None``: recompute from the start.

    The block is the last one whose fit window ends before the first changed row (its fit and
    its rows before that row are the reference's; its later rows are filtered again).
    """
    ref = resume.reference
    if (ref.variance.shape != (n,) or ref.z_lo.shape != (n, k) or len(ref.checkpoints) != len(taus)
            or any(c[0] != t for c, t in zip(ref.checkpoints, taus))):
        return None  # another length, start or schedule: nothing to share
    block = int(np.searchsorted(np.asarray(taus), resume.changed_from, side="left")) - 1
    if block < 0:
        return None
    return block, ref.checkpoints[block]


class GarchForecaster(VolatilityForecaster):
    """Walk-forward GARCH-family forecaster (see the module docstring).

    ``info`` holds, per row (time, pair): ``nu`` (t / skewed-t dof), ``lam`` (skewed-t
    asymmetry), ``mu`` (the fitted mean of the next return, return units), ``fallback``
    (rows forecast by the RiskMetrics fallback), and with ``residual_tails > 0`` ``z_lo`` /
    ``z_hi`` (time, pair, k) and ``z_n``; ``rejects`` counts rejected refits by reason.
    """

    def __init__(self, config: GarchConfig | None = None) -> None:
        self.config = config or GarchConfig()
        self.name = self.config.label

    def forecast(self, market: MarketData, split: Split | None = None) -> VolForecast:
        return self.forecast_returns(market.log_returns(), market.index, market.symbols)

    def forecast_returns(self, returns: np.ndarray, index: pd.DatetimeIndex, symbols: tuple[str, ...],
                         progress: Callable[[int], None] | None = None, *,
                         reference: GarchReference | None = None) -> VolForecast:
        """The same from a (time, pair) array of log returns (row 0 NaN) and its clock.

        ``reference``: a run of this forecaster over a market on the same clock (:meth:`reference`);
        each pair's walk-forward resumes at the first row where its series differs from the
        reference's (a stressed copy of a market recomputes its stress window on only).
        """
        return self._run(returns, index, symbols, progress, reference)[0]

    def _run(self, returns: np.ndarray, index: pd.DatetimeIndex, symbols: tuple[str, ...],
             progress: Callable[[int], None] | None, reference: GarchReference | None
             ) -> tuple[VolForecast, GarchReference]:
        adjusted, profile_next = deseasonalise(index, returns, self.config.seasonal)
        if reference is not None and (reference.config != self.config or reference.symbols != tuple(symbols)
                                      or not reference.index.equals(index)):
            reference = None  # another model, pairs or clock: nothing to share
        runs: list[WalkForwardResult] = []
        shape = returns.shape
        k = self.config.residual_tails
        sigma, nu, lam, mu = (np.full(shape, np.nan) for _ in range(4))
        fallback = np.zeros(shape, dtype=bool)
        z_lo = np.full((*shape, k), np.nan)
        z_hi = np.full((*shape, k), np.nan)
        z_n = np.full(shape, np.nan)
        refits = fallbacks = 0
        rejects: Counter[str] = Counter()
        by_pair = np.zeros(shape[1], dtype=np.int64)
        for j in range(shape[1]):
            resume = None
            if reference is not None:
                resume = WalkForwardResume(reference=reference.runs[j],
                                           changed_from=first_difference(adjusted[:, j], reference.adjusted[:, j]))
            res = walk_forward(adjusted[:, j], self.config, progress, resume=resume)
            runs.append(res)
            by_pair[j] = res.fallbacks
            sigma[:, j] = np.sqrt(res.variance) * profile_next[:, j]
            mu[:, j] = res.mean * profile_next[:, j]
            nu[:, j] = res.nu
            lam[:, j] = res.lam
            fallback[:, j] = res.fallback
            z_lo[:, j], z_hi[:, j], z_n[:, j] = res.z_lo, res.z_hi, res.z_n
            refits += res.refits
            fallbacks += res.fallbacks
            rejects.update(res.rejects)
        info = {"nu": nu, "lam": lam, "mu": mu, "fallback": fallback, "dist": self.config.dist,
                "vol": self.config.vol, "rejects": {r: int(rejects.get(r, 0)) for r in REJECT_REASONS},
                "rejects_by_pair": by_pair}
        if k:
            info.update(z_lo=z_lo, z_hi=z_hi, z_n=z_n)
        forecast = VolForecast(name=self.name, sigma=sigma, symbols=tuple(symbols), index=index,
                               refits=refits, fallbacks=fallbacks, info=info)
        return forecast, GarchReference(config=self.config, symbols=tuple(symbols), index=index, adjusted=adjusted,
                                        runs=tuple(runs))

    def reference(self, market: MarketData) -> tuple[VolForecast, GarchReference]:
        """The forecast of ``market`` and what a stressed copy of it can resume from (``reference=``)."""
        return self._run(market.log_returns(), market.index, market.symbols, None, None)

    def forecast_from(self, market: MarketData, reference: GarchReference) -> VolForecast:
        """:meth:`forecast` of ``market``, resuming each pair where it departs from ``reference``."""
        return self._run(market.log_returns(), market.index, market.symbols, None, reference)[0]


@dataclass(frozen=True, eq=False)
class GarchReference:
    """One forecaster's walk-forward over a market, per pair, with its loop checkpoints."""

    config: GarchConfig
    symbols: tuple[str, ...]
    index: pd.DatetimeIndex
    adjusted: np.ndarray                 # the de-seasonalised returns it ran on (time, pair)
    runs: tuple[WalkForwardResult, ...]  # one per pair
