"""Walk-forward GARCH-family volatility forecasts (GARCH, GJR-GARCH, EGARCH; normal or t).

Parameters are estimated with ``arch`` by maximum likelihood every ``refit_every`` bars
on a rolling or expanding window that ends at the refit bar (data <= t only); between
refits the variance is filtered forward with the parameters fixed. A fit that fails to
converge, or gives non-stationary or absurd parameters, is replaced by the last good
parameters and counted in ``VolForecast.fallbacks`` — never silently.

Why our own filter: ``arch`` estimates; re-running ``arch`` to filter each block would
cost O(n^2 / k). The recursions below follow ``arch``'s definitions exactly (checked
against its conditional volatility in the tests), GARCH/GJR as a linear IIR filter.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from arch import arch_model
from scipy.signal import lfilter

from forecasters.base import Split, VolatilityForecaster, VolForecast
from forecasters.seasonality import deseasonalise
from simulator.market import MarketData

VOL_MODELS = ("garch", "gjr", "egarch")
DISTRIBUTIONS = ("normal", "t")
MAX_BURN_IN = 3000  # bars of filtering before a block: the recursion forgets its start long before


@dataclass(frozen=True, kw_only=True)
class GarchConfig:
    """Walk-forward settings. Windows and refit interval are in bars."""

    vol: str = "garch"
    dist: str = "t"
    mean: str = "constant"
    refit_every: int = 1000
    window: str = "rolling"
    window_size: int = 5000
    min_window: int = 1000
    seasonal: bool = True
    max_iterations: int = 200

    def __post_init__(self) -> None:
        if self.vol not in VOL_MODELS:
            raise ValueError(f"vol must be one of {VOL_MODELS}, got {self.vol!r}")
        if self.dist not in DISTRIBUTIONS:
            raise ValueError(f"dist must be one of {DISTRIBUTIONS}, got {self.dist!r}")
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


def _model(y: np.ndarray, config: GarchConfig):
    o = 0 if config.vol == "garch" else 1
    vol = "EGARCH" if config.vol == "egarch" else "GARCH"
    mean = "Constant" if config.mean == "constant" else "Zero"
    return arch_model(y, mean=mean, vol=vol, p=1, o=o, q=1, dist=config.dist, rescale=False)


def param_names(model) -> list[str]:
    """All parameter names of an ``arch`` model in its order: mean, volatility, distribution."""
    return [*model.parameter_names(), *model.volatility.parameter_names(), *model.distribution.parameter_names()]


def fit_window(window: np.ndarray, config: GarchConfig, start: GarchParams | None = None) -> GarchParams | None:
    """Estimate on one window of (de-seasonalised) returns; ``None`` when the fit is unusable."""
    sd = float(np.std(window))
    if not np.isfinite(sd) or sd <= 0:
        return None
    scale = 1.0 / sd
    y = window * scale
    model = _model(y, config)
    starting = None
    if start is not None:
        names = param_names(model)
        values = {"mu": start.mu, "omega": start.omega, "alpha[1]": start.alpha, "gamma[1]": start.gamma,
                  "beta[1]": start.beta, "nu": start.nu}
        starting = np.array([values[n] for n in names])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = model.fit(disp="off", show_warning=False, starting_values=starting,
                            options={"maxiter": config.max_iterations})
        except (ValueError, np.linalg.LinAlgError, RuntimeError):
            return None
    if res.convergence_flag != 0 or not np.isfinite(res.loglikelihood):
        return None
    p = res.params
    params = GarchParams(
        mu=float(p.get("mu", 0.0)),
        omega=float(p["omega"]),
        alpha=float(p["alpha[1]"]),
        gamma=float(p.get("gamma[1]", 0.0)),
        beta=float(p["beta[1]"]),
        nu=float(p.get("nu", math.inf)),
        scale=scale,
        backcast=float(model.volatility.backcast(np.asarray(y - p.get("mu", 0.0)))),
    )
    return params if _plausible(params, config) else None


def _plausible(p: GarchParams, config: GarchConfig) -> bool:
    """Stationary and sane: otherwise keep the last good parameters."""
    values = [p.mu, p.omega, p.alpha, p.gamma, p.beta, p.nu if math.isfinite(p.nu) else 10.0]
    if not all(math.isfinite(v) for v in values):
        return False
    if config.dist == "t" and not p.nu > 2.05:
        return False
    if config.vol == "egarch":
        return abs(p.beta) < 0.9999
    persistence = p.alpha + p.beta + 0.5 * p.gamma
    # Data are scaled to unit variance: an unconditional variance far from 1 is absurd.
    unconditional = p.omega / (1.0 - persistence) if persistence < 1 else math.inf
    return p.omega > 0 and p.alpha >= 0 and p.beta >= 0 and persistence < 0.9999 and 1e-3 < unconditional < 1e3


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


@dataclass(frozen=True)
class WalkForwardResult:
    variance: np.ndarray  # forecast variance of the (de-seasonalised) returns, row t for t+1
    nu: np.ndarray
    refits: int
    fallbacks: int


def walk_forward(x: np.ndarray, config: GarchConfig) -> WalkForwardResult:
    """Walk-forward forecasts for one series ``x`` (row 0 may be NaN); row t uses x[<= t]."""
    n = x.size
    variance = np.full(n, np.nan)
    nu = np.full(n, np.nan)
    finite = np.flatnonzero(np.isfinite(x))
    if finite.size == 0:
        return WalkForwardResult(variance, nu, 0, 0)
    first = int(finite[0])
    if not np.isfinite(x[first:]).all():
        raise ValueError("returns contain NaN after the first valid row")
    first_refit = first + config.min_window - 1
    refits = fallbacks = 0
    good: GarchParams | None = None
    for tau in range(first_refit, n, config.refit_every):
        lo = first if config.window == "expanding" else max(first, tau - config.window_size + 1)
        candidate = fit_window(x[lo : tau + 1], config, start=good)
        refits += 1
        if candidate is None:
            fallbacks += 1
            if good is None:
                continue
        else:
            good = candidate
        block_end = min(tau + config.refit_every, n)  # rows tau .. block_end-1
        filter_start = max(first, tau - MAX_BURN_IN) if config.window == "expanding" else lo
        y = x[filter_start:block_end] * good.scale
        s2 = filter_variance(y, good, config.vol)  # s2[i] for y index i; forecast at row r: s2[r - start + 1]
        rows = np.arange(tau, block_end)
        variance[rows] = s2[rows - filter_start + 1] / (good.scale**2)
        nu[rows] = good.nu if config.dist == "t" else np.nan
    return WalkForwardResult(variance, nu, refits, fallbacks)


class GarchForecaster(VolatilityForecaster):
    """Walk-forward GARCH-family forecaster (see the module docstring).

    ``info['nu']`` holds the Student-t degrees of freedom in effect at each row
    (time, pair) for t models, so VaR can use the matching quantile.
    """

    def __init__(self, config: GarchConfig | None = None) -> None:
        self.config = config or GarchConfig()
        self.name = self.config.label

    def forecast(self, market: MarketData, split: Split | None = None) -> VolForecast:
        returns = market.log_returns()
        adjusted, profile_next = deseasonalise(market.index, returns, self.config.seasonal)
        sigma = np.full(returns.shape, np.nan)
        nu = np.full(returns.shape, np.nan)
        refits = fallbacks = 0
        for j in range(returns.shape[1]):
            res = walk_forward(adjusted[:, j], self.config)
            sigma[:, j] = np.sqrt(res.variance) * profile_next[:, j]
            nu[:, j] = res.nu
            refits += res.refits
            fallbacks += res.fallbacks
        return VolForecast(name=self.name, sigma=sigma, symbols=market.symbols, index=market.index,
                           refits=refits, fallbacks=fallbacks,
                           info={"nu": nu, "dist": self.config.dist, "vol": self.config.vol})
