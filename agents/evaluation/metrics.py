"""Performance metrics of one trading run: pure functions over 1-D numpy arrays.

Used by the evaluation scripts and the stress-test report, so every policy is scored by the
same arithmetic. Conventions:

* ``equity`` is the account value in **account currency**, one element per bar **plus the
  starting value as element 0**: a run of ``n`` bars gives ``n + 1`` values, ``equity[t]`` is
  the value after bar ``t`` (``equity[0]`` before the first). ``equity[0]`` must be > 0.
* ``returns`` are per-bar **simple** returns as fractions (0.01 = 1%), length ``n`` — build
  them with :func:`simple_returns`; from log returns use ``np.expm1(log_returns)``.
* Losses (``max_drawdown``, ``cvar``) are **positive fractions** of equity; ``worst_bar`` is
  the signed lowest return (negative for a loss).
* ``bars_per_year`` scales per-bar figures to annual ones; :func:`bars_per_year` derives it
  from the bar timestamps with 260 FX trading days a year.
* Undefined values are NaN, never an exception: an empty run, too few bars for a standard
  deviation (< 2 returns), a NaN anywhere in the input (a broken run is never silently
  scored). Shape and sign mistakes in the inputs are one-line ``ValueError``\\ s.
* A *flat* run (every return exactly 0, e.g. a policy that never trades) has Sharpe and
  Sortino 0; constant non-zero returns (riskless drift) give NaN — the ratio is unbounded.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.data.frequency import CALENDAR_DAYS_PER_YEAR, NS_PER_DAY, TRADING_DAYS_PER_YEAR, bars_per_year

__all__ = [
    "TRADING_DAYS_PER_YEAR",
    "annualised_return",
    "annualised_volatility",
    "bars_per_year",
    "cvar",
    "drawdown_series",
    "max_drawdown",
    "sharpe_ratio",
    "simple_returns",
    "sortino_ratio",
    "summarise",
    "time_over_limit",
    "total_return",
    "var_exceptions",
    "worst_bar",
]

UTILISATION_TOL = 1e-9  # the env's ``var_breach`` flag uses the same threshold: utilisation > 1 + 1e-9


def _vector(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array with one value per bar, got shape {arr.shape}: pass one run "
                         f"(one pair or the account total) at a time")
    return arr


def _equity(equity: object) -> np.ndarray:
    eq = _vector(equity, "equity")
    if eq.size and not eq[0] > 0:
        raise ValueError(f"equity[0] must be the starting account value (> 0), got {eq[0]}: pass the equity before "
                         f"the first bar as element 0")
    return eq


def _check_bars_per_year(bars_per_year: float) -> float:
    bpy = float(bars_per_year)
    if math.isnan(bpy):
        return bpy  # e.g. bars_per_year() of a 1-bar run: annualised figures come out NaN
    if not (0 < bpy < math.inf):
        raise ValueError(f"bars_per_year must be a positive finite number, got {bars_per_year}: derive it with "
                         f"agents.evaluation.metrics.bars_per_year(index_ns)")
    return bpy


def simple_returns(equity: np.ndarray) -> np.ndarray:
    """Per-bar simple returns (fractions) of an equity path that includes the starting value.

    ``n + 1`` equity values give ``n`` returns; a bar that starts from equity <= 0 (the account
    was already wiped out) has an undefined return: NaN.
    """
    eq = _equity(equity)
    if eq.size < 2:
        return np.empty(0)
    prev = eq[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = eq[1:] / prev - 1.0
    out[~(prev > 0)] = np.nan
    return out


def total_return(equity: np.ndarray) -> float:
    """Final over starting equity minus 1 (fraction); 0 for a 0-bar run, NaN for an empty array."""
    eq = _equity(equity)
    if eq.size == 0:
        return math.nan
    return float(eq[-1] / eq[0] - 1.0)


def annualised_return(equity: np.ndarray, bars_per_year: float) -> float:
    """Compound annual growth rate (fraction): ``(E_n / E_0) ** (bars_per_year / n) - 1``.

    Why geometric: it is the constant yearly rate that turns the starting equity into the final
    one. A run that ends at equity <= 0 gives -1 (everything lost); fewer than one bar: NaN.
    Very short runs annualise to extreme values (possibly inf) — read them with care.
    """
    eq = _equity(equity)
    bpy = _check_bars_per_year(bars_per_year)
    n = eq.size - 1
    if n < 1:
        return math.nan
    growth = eq[-1] / eq[0]
    if math.isnan(growth) or math.isnan(bpy):
        return math.nan
    if growth <= 0:
        return -1.0
    with np.errstate(over="ignore"):
        return float(np.expm1(bpy / n * np.log(growth)))


def annualised_volatility(returns: np.ndarray, bars_per_year: float) -> float:
    """Sample standard deviation (ddof=1) of per-bar simple returns times ``sqrt(bars_per_year)``.

    A fraction per year (0.08 = 8% a year); fewer than 2 returns: NaN.
    """
    r = _vector(returns, "returns")
    bpy = _check_bars_per_year(bars_per_year)
    if r.size < 2:
        return math.nan
    return float(np.std(r, ddof=1) * math.sqrt(bpy))


def sharpe_ratio(returns: np.ndarray, bars_per_year: float) -> float:
    """Annualised Sharpe ratio, risk-free rate 0: ``mean / std(ddof=1) * sqrt(bars_per_year)``.

    Per-bar simple returns in, a unit-free annualised ratio out. Fewer than 2 returns or any NaN:
    NaN. Zero standard deviation: 0 for a flat run (all returns 0), NaN for constant non-zero
    returns (riskless drift has no finite Sharpe ratio).
    """
    r = _vector(returns, "returns")
    bpy = _check_bars_per_year(bars_per_year)
    if r.size < 2 or np.isnan(r).any():
        return math.nan
    sd = float(np.std(r, ddof=1))
    if r.max() == r.min() or sd == 0.0:  # constant, or spread too small to square (underflow)
        return 0.0 if not r.any() else math.nan
    return float(np.mean(r) / sd * math.sqrt(bpy))


def sortino_ratio(returns: np.ndarray, bars_per_year: float, *, target: float = 0.0) -> float:
    """Annualised Sortino ratio: mean excess over ``target`` divided by the downside deviation.

    Why: only returns below the target (a per-bar simple return, default 0) count as risk.
    Downside deviation = ``sqrt(mean(min(r - target, 0) ** 2))`` over **all** bars (Sortino &
    Price). Fewer than 2 returns or any NaN: NaN. No bar below target: 0 if every return equals
    the target (flat), else NaN (unbounded).
    """
    r = _vector(returns, "returns")
    bpy = _check_bars_per_year(bars_per_year)
    if r.size < 2 or np.isnan(r).any():
        return math.nan
    excess = r - float(target)
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    if downside == 0.0:
        return 0.0 if not excess.any() else math.nan
    return float(np.mean(excess) / downside * math.sqrt(bpy))


def drawdown_series(equity: np.ndarray) -> np.ndarray:
    """Drawdown after each bar as a positive fraction of the running peak: ``1 - E_t / max_{s<=t} E_s``.

    Same length as ``equity`` (element 0 is 0); values above 1 mean equity went negative.
    """
    eq = _equity(equity)
    if eq.size == 0:
        return np.empty(0)
    peak = np.maximum.accumulate(eq)
    return 1.0 - eq / peak


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough fall of equity as a positive fraction of the peak (0.2 = 20%).

    0 for a path that never falls (or a 0-bar run); NaN for an empty array or any NaN.
    """
    dd = drawdown_series(equity)
    if dd.size == 0 or np.isnan(dd).any():
        return math.nan
    return float(dd.max())


def cvar(returns: np.ndarray, *, level: float = 0.95) -> float:
    """Expected shortfall (CVaR) of per-bar returns at ``level``, as a positive loss fraction.

    The mean loss over the worst ``(1 - level)`` share of bars, with a fractional weight on the
    boundary bar (Acerbi & Tasche 2002) so it is exact for any sample size: at 95% and 100 bars,
    the mean of the 5 worst losses; with fewer than ``1 / (1 - level)`` bars, the worst loss.
    Negative when even the worst bars gain. Empty or any NaN: NaN.
    """
    r = _vector(returns, "returns")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be a confidence level strictly between 0 and 1 (e.g. 0.95), got {level}")
    if r.size == 0 or np.isnan(r).any():
        return math.nan
    losses = np.sort(-r)[::-1]  # largest loss first
    tail = r.size * (1.0 - level)
    if tail <= 1.0:
        return float(losses[0])
    k = int(math.floor(tail))
    partial = tail - k
    total = losses[:k].sum() + partial * losses[k]  # k < n because tail < n
    return float(total / tail)


def worst_bar(returns: np.ndarray) -> float:
    """The lowest per-bar simple return, signed (-0.03 = the worst bar lost 3%); empty or NaN: NaN."""
    r = _vector(returns, "returns")
    if r.size == 0:
        return math.nan
    return float(np.min(r))


def var_exceptions(losses: np.ndarray, var: np.ndarray) -> tuple[int, float]:
    """Number and rate of VaR exceptions: bars whose realised loss is strictly above the forecast.

    ``losses`` are positive for a loss (``-pnl``) and ``var`` positive loss numbers, in the same
    units (account currency or fraction of equity). Bars where either is NaN (forecast warm-up)
    are left out of both count and rate. No usable bar: ``(0, nan)``.
    """
    loss = _vector(losses, "losses")
    v = _vector(var, "var")
    if loss.shape != v.shape:
        raise ValueError(f"losses and var must have one value per bar each, got lengths {loss.size} and {v.size}")
    valid = ~(np.isnan(loss) | np.isnan(v))
    n = int(valid.sum())
    count = int(np.count_nonzero(loss[valid] > v[valid]))
    return count, (count / n if n else math.nan)


def time_over_limit(utilisation: np.ndarray, *, tol: float = UTILISATION_TOL) -> float:
    """Fraction of bars with VaR utilisation (position VaR / limit) above 1, i.e. over the limit.

    ``tol`` absorbs rounding at exactly 1 (the env's ``var_breach`` uses the same 1e-9); inf
    (a zero limit with a position) counts as over; NaN bars are left out. No usable bar: NaN.
    """
    u = _vector(utilisation, "utilisation")
    valid = ~np.isnan(u)
    n = int(valid.sum())
    if n == 0:
        return math.nan
    return float(np.count_nonzero(u[valid] > 1.0 + tol) / n)


def _per_bar(x: object | None, name: str, n_bars: int, *, by_pair: bool = False) -> np.ndarray | None:
    if x is None:
        return None
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim not in ((1, 2) if by_pair else (1,)) or arr.shape[0] != n_bars:
        shape = "(bar,) or (bar, pair)" if by_pair else "(bar,)"
        raise ValueError(f"{name} must be shaped {shape} with {n_bars} bars (len(equity) - 1), got shape {arr.shape}: "
                         f"equity includes the starting value, the per-bar arrays do not")
    return arr


def _total(x: np.ndarray | None) -> float:
    return math.nan if x is None else float(x.sum())


def _count(x: np.ndarray | None) -> float:
    return math.nan if x is None else float(np.count_nonzero(x))


def summarise(
    *,
    equity: np.ndarray,
    bars_per_year: float,
    turnover: np.ndarray | None = None,
    costs: np.ndarray | None = None,
    margin_calls: np.ndarray | None = None,
    stop_outs: np.ndarray | None = None,
    var_breaches: np.ndarray | None = None,
    utilisation: np.ndarray | None = None,
    var_forecast: np.ndarray | None = None,
    realised_loss: np.ndarray | None = None,
    cvar_level: float = 0.95,
) -> dict[str, float]:
    """One flat dict of every metric of a run, with the same keys every time (NaN where not given).

    Why: report tables and cross-seed statistics need one row per run with fixed columns.
    ``equity`` has ``n + 1`` values (starting value first, account currency); every per-bar
    array is shaped ``(n,)`` (``turnover`` and ``costs`` may be ``(n, pair)``, summed over
    pairs). ``turnover`` is notional traded and ``costs`` all trading costs paid, both in
    account currency per bar; the flags
    (margin calls, stop-outs, VaR breaches) are booleans per bar; ``utilisation`` is position
    VaR / limit; ``var_forecast`` and ``realised_loss`` (positive = loss, same units) are given
    together. Keys and units:

    ``n_bars``; ``initial_equity``, ``final_equity`` (account currency); ``total_return``,
    ``annualised_return``, ``annualised_volatility`` (fractions); ``sharpe_ratio``,
    ``sortino_ratio`` (annualised); ``max_drawdown``, ``cvar`` (positive loss fractions);
    ``worst_bar_return`` (signed fraction); ``var_exceptions`` (count), ``var_exception_rate``
    and ``time_over_limit`` (fractions of bars); ``var_breaches``, ``margin_calls``,
    ``stop_outs`` (counts of bars); ``turnover``, ``costs_paid`` (account currency);
    ``cost_bps_of_turnover`` (costs per unit traded, basis points).
    """
    eq = _equity(equity)
    bpy = _check_bars_per_year(bars_per_year)
    n_bars = max(eq.size - 1, 0)
    turn = _per_bar(turnover, "turnover", n_bars, by_pair=True)
    cost = _per_bar(costs, "costs", n_bars, by_pair=True)
    margin = _per_bar(margin_calls, "margin_calls", n_bars)
    stops = _per_bar(stop_outs, "stop_outs", n_bars)
    breaches = _per_bar(var_breaches, "var_breaches", n_bars)
    util = _per_bar(utilisation, "utilisation", n_bars)
    if (var_forecast is None) != (realised_loss is None):
        raise ValueError("give var_forecast and realised_loss together (or neither) to count VaR exceptions")
    if var_forecast is not None:
        n_exc, exc_rate = var_exceptions(_per_bar(realised_loss, "realised_loss", n_bars),
                                         _per_bar(var_forecast, "var_forecast", n_bars))
        exceptions = float(n_exc)
    else:
        exceptions, exc_rate = math.nan, math.nan
    returns = simple_returns(eq)
    turnover_total, costs_total = _total(turn), _total(cost)
    cost_bps = costs_total / turnover_total * 1e4 if turnover_total > 0 else math.nan
    return {
        "n_bars": float(n_bars),
        "initial_equity": float(eq[0]) if eq.size else math.nan,
        "final_equity": float(eq[-1]) if eq.size else math.nan,
        "total_return": total_return(eq),
        "annualised_return": annualised_return(eq, bpy),
        "annualised_volatility": annualised_volatility(returns, bpy),
        "sharpe_ratio": sharpe_ratio(returns, bpy),
        "sortino_ratio": sortino_ratio(returns, bpy),
        "max_drawdown": max_drawdown(eq),
        "cvar": cvar(returns, level=cvar_level),
        "worst_bar_return": worst_bar(returns),
        "var_exceptions": exceptions,
        "var_exception_rate": exc_rate,
        "time_over_limit": math.nan if util is None else time_over_limit(util),
        "var_breaches": _count(breaches),
        "margin_calls": _count(margin),
        "stop_outs": _count(stops),
        "turnover": turnover_total,
        "costs_paid": costs_total,
        "cost_bps_of_turnover": cost_bps,
    }
