"""Synthetic FX bars realistic enough to train and stress sizing agents.

The model, per bar t (all pairs share the clock and the regime):

* **clock**: FX trades from Sunday 22:00 to Friday 22:00 UTC; bars inside that window
  only, so each week opens with a weekend gap;
* **regime**: a two-state Markov chain (calm / turbulent), shared by all pairs; the
  turbulent state scales volatility, raises jump intensity and thins liquidity;
* **innovations**: multivariate Student-t with the given correlation matrix (a common
  chi-square mixing variable, so tails are dependent across pairs), unit variance;
* **volatility**: GARCH(1,1) on the standardised shocks, ``h[t+1] = w + a e[t]^2 + b h[t]``,
  with ``e[t] = sqrt(h[t]) z[t] + J[t]`` where ``J`` are Poisson jumps (Gaussian sizes);
  jumps feed the variance, so volatility stays high after a crash;
* **returns**: ``r[t] = mu + sigma_bar * s[t] * k[t] * e[t]`` with ``s`` the intraday ×
  weekday seasonal factor and ``k`` the regime multiplier; ``sigma_bar`` is solved so
  the unconditional annualised volatility equals the pair's ``annual_vol``;
* **weekend gap**: the first bar of a week opens away from the last close by a
  Student-t draw scaled like ``weekend_gap_bars`` typical bars;
* **high / low**: extremes of a Brownian bridge from open to close with the bar's
  conditional variance;
* **spread** (pips) = ``spread_pips`` × hourly profile × ``vol^spread_vol_elasticity`` ×
  log-normal noise, and **liquidity** (depth per bar, base currency) = ``liquidity`` ×
  hourly profile × ``vol^-liquidity_vol_elasticity`` × (turbulent multiplier) × noise,
  (liquidity is the volume tradable per bar, the V of the square-root impact law),
  where ``vol = k[t] sqrt(h)`` is the de-seasonalised volatility around the bar: both
  worsen when volatility rises.

All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.common.configuration import from_mapping, load_yaml
from simulator.data.market import FIELD_ORDER, MarketData
from simulator.data.pairs import PairSpec, pair_spec
from simulator.data.spread_model import DEFAULT_HOURLY_PROFILE

# Volatility multipliers by UTC hour for a EUR/USD-like pair: quiet Asian session,
# London open at 7-8, London/New York overlap at 12-16, dead hours around 21 UTC.
DEFAULT_HOURLY_VOL: tuple[float, ...] = (
    0.75, 0.75, 0.70, 0.60, 0.55, 0.60, 0.85, 1.25, 1.30, 1.10, 1.00, 1.00,
    1.30, 1.60, 1.65, 1.50, 1.10, 0.85, 0.70, 0.60, 0.55, 0.45, 0.60, 0.70,
)
# Volatility multipliers by trading day (Monday..Friday; Sunday-evening bars count as Monday).
DEFAULT_WEEKDAY_VOL: tuple[float, ...] = (0.90, 1.00, 1.05, 1.05, 1.00)
# Depth multipliers by UTC hour: deepest when London and New York are open.
DEFAULT_HOURLY_LIQUIDITY: tuple[float, ...] = (
    0.50, 0.50, 0.50, 0.50, 0.50, 0.55, 0.70, 1.00, 1.20, 1.20, 1.10, 1.10,
    1.20, 1.40, 1.40, 1.30, 1.00, 0.80, 0.70, 0.60, 0.50, 0.30, 0.35, 0.45,
)

HOURS_PER_WEEK_OPEN = 120  # Sunday 22:00 to Friday 22:00 UTC


@dataclass(frozen=True, kw_only=True)
class PairProcess:
    """Parameters of one pair's price process (volatility as a fraction, e.g. 0.08 = 8%/yr)."""

    symbol: str = "EURUSD"
    start_price: float = 1.10
    annual_vol: float = 0.08
    annual_drift: float = 0.0
    garch_alpha: float = 0.05
    garch_beta: float = 0.93
    spread_pips: float = 1.0
    liquidity: float = 2.0e9

    def __post_init__(self) -> None:
        pair_spec(self.symbol)
        if not self.start_price > 0:
            raise ValueError(f"pair {self.symbol}: start_price must be > 0, got {self.start_price}")
        if not 0 < self.annual_vol < 5:
            raise ValueError(f"pair {self.symbol}: annual_vol must be in (0, 5), got {self.annual_vol}")
        if self.garch_alpha < 0 or self.garch_beta < 0 or self.garch_alpha + self.garch_beta >= 1:
            raise ValueError(
                f"pair {self.symbol}: need garch_alpha, garch_beta >= 0 and alpha + beta < 1 "
                f"(got {self.garch_alpha}, {self.garch_beta})"
            )
        if not self.spread_pips > 0:
            raise ValueError(f"pair {self.symbol}: spread_pips must be > 0, got {self.spread_pips}")
        if not self.liquidity > 0:
            raise ValueError(f"pair {self.symbol}: liquidity must be > 0, got {self.liquidity}")


@dataclass(frozen=True, kw_only=True)
class RegimeConfig:
    """Calm/turbulent Markov switch; transition probabilities are per bar."""

    calm_to_turbulent: float = 1.0 / 1500.0
    turbulent_to_calm: float = 1.0 / 120.0
    vol_multiplier: float = 2.5
    jump_multiplier: float = 4.0
    liquidity_multiplier: float = 0.4

    def __post_init__(self) -> None:
        for name in ("calm_to_turbulent", "turbulent_to_calm"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ValueError(f"regime.{name} must be in (0, 1], got {v}")
        if not self.vol_multiplier >= 1:
            raise ValueError(f"regime.vol_multiplier must be >= 1, got {self.vol_multiplier}")
        if self.jump_multiplier < 0:
            raise ValueError(f"regime.jump_multiplier must be >= 0, got {self.jump_multiplier}")
        if not 0 < self.liquidity_multiplier <= 1:
            raise ValueError(f"regime.liquidity_multiplier must be in (0, 1], got {self.liquidity_multiplier}")

    @property
    def turbulent_share(self) -> float:
        """Stationary probability of the turbulent regime."""
        return self.calm_to_turbulent / (self.calm_to_turbulent + self.turbulent_to_calm)


@dataclass(frozen=True, kw_only=True)
class JumpConfig:
    """Poisson jumps; sizes in multiples of a typical bar's standard deviation."""

    per_year: float = 6.0
    size_sd: float = 6.0
    size_mean: float = 0.0

    def __post_init__(self) -> None:
        if self.per_year < 0:
            raise ValueError(f"jumps.per_year must be >= 0, got {self.per_year}")
        if self.size_sd < 0:
            raise ValueError(f"jumps.size_sd must be >= 0, got {self.size_sd}")


@dataclass(frozen=True, kw_only=True)
class SeasonalityConfig:
    """Multipliers by UTC hour (24 values) and by trading day (5 values, Monday first)."""

    hourly_vol: tuple[float, ...] = DEFAULT_HOURLY_VOL
    weekday_vol: tuple[float, ...] = DEFAULT_WEEKDAY_VOL
    hourly_spread: tuple[float, ...] = DEFAULT_HOURLY_PROFILE
    hourly_liquidity: tuple[float, ...] = DEFAULT_HOURLY_LIQUIDITY

    def __post_init__(self) -> None:
        for name, size in (("hourly_vol", 24), ("weekday_vol", 5), ("hourly_spread", 24), ("hourly_liquidity", 24)):
            v = getattr(self, name)
            if len(v) != size or min(v) <= 0:
                raise ValueError(f"seasonality.{name} needs {size} positive values, got {len(v)}")


@dataclass(frozen=True, kw_only=True)
class SyntheticConfig:
    """Everything the generator needs; load from YAML with :meth:`from_yaml`."""

    pairs: tuple[PairProcess, ...] = (PairProcess(),)
    correlation: tuple[tuple[float, ...], ...] | None = None
    student_t_dof: float = 5.0
    bar_minutes: int = 60
    start: str = "2020-01-05 22:00"
    regime: RegimeConfig = field(default_factory=RegimeConfig)
    jumps: JumpConfig = field(default_factory=JumpConfig)
    seasonality: SeasonalityConfig = field(default_factory=SeasonalityConfig)
    weekend_gap_bars: float = 6.0
    spread_vol_elasticity: float = 0.8
    liquidity_vol_elasticity: float = 1.0
    spread_noise: float = 0.15
    liquidity_noise: float = 0.3

    def __post_init__(self) -> None:
        if not self.pairs:
            raise ValueError("pairs: give at least one pair")
        symbols = [p.symbol for p in self.pairs]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"pairs: duplicated symbol in {symbols}")
        if not self.student_t_dof > 2:
            raise ValueError(f"student_t_dof must be > 2 (finite variance), got {self.student_t_dof}")
        if self.bar_minutes <= 0 or (24 * 60) % self.bar_minutes:
            raise ValueError(f"bar_minutes must divide a day into whole bars (e.g. 1, 5, 15, 60, 240), got {self.bar_minutes}")
        start = pd.Timestamp(self.start)
        if start.day_of_week != 6 or start.hour != 22 or start.minute != 0:
            raise ValueError(f"start must be a Sunday 22:00 (UTC week open), got {self.start}")
        for name in ("weekend_gap_bars", "spread_vol_elasticity", "liquidity_vol_elasticity",
                     "spread_noise", "liquidity_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        corr = self.correlation_matrix()
        if corr.shape != (len(self.pairs), len(self.pairs)):
            raise ValueError(f"correlation must be {len(self.pairs)}x{len(self.pairs)}, got {corr.shape}")
        if not np.allclose(corr, corr.T) or not np.allclose(np.diag(corr), 1.0) or np.abs(corr).max() > 1:
            raise ValueError("correlation must be symmetric with a unit diagonal and entries in [-1, 1]")
        if np.linalg.eigvalsh(corr).min() <= 1e-10:
            raise ValueError("correlation matrix is not positive definite")

    def correlation_matrix(self) -> np.ndarray:
        if self.correlation is None:
            return np.eye(len(self.pairs))
        return np.asarray(self.correlation, dtype=float)

    @property
    def bars_per_week(self) -> int:
        return HOURS_PER_WEEK_OPEN * 60 // self.bar_minutes

    @property
    def bars_per_year(self) -> float:
        return self.bars_per_week * 365.25 / 7.0

    @classmethod
    def from_yaml(cls, path: str | Path) -> SyntheticConfig:
        """Load a config file; unknown keys and bad values are one-line errors."""
        return from_mapping(cls, load_yaml(path), source=str(path))


@dataclass(frozen=True, eq=False)
class SyntheticMarket:
    """Generated bars plus the hidden state that produced them (for experiments and tests).

    ``conditional_vol[t, j]``: standard deviation of pair j's log return over bar t given
    everything before bar t. ``regime[t]``: 1 when bar t is turbulent. ``jumps[t]``: a
    market-wide jump hit every pair in bar t.
    """

    market: MarketData
    regime: np.ndarray
    conditional_vol: np.ndarray
    jumps: np.ndarray


def trading_calendar(start: str | pd.Timestamp, n_bars: int, bar_minutes: int = 60) -> pd.DatetimeIndex:
    """Bar open times (UTC) of ``n_bars`` bars from a Sunday 22:00 UTC week open, weekends skipped."""
    start = pd.Timestamp(start)
    start = start.tz_localize("UTC") if start.tz is None else start.tz_convert("UTC")
    per_week = HOURS_PER_WEEK_OPEN * 60 // bar_minutes
    n_weeks = -(-n_bars // per_week)
    week_ns = np.int64(7 * 24 * 3600) * 10**9
    offsets = np.arange(per_week, dtype=np.int64) * np.int64(bar_minutes * 60) * 10**9
    stamps = (start.value + np.arange(n_weeks, dtype=np.int64)[:, None] * week_ns + offsets[None, :]).ravel()[:n_bars]
    return pd.DatetimeIndex(stamps.astype("datetime64[ns]"), tz="UTC", name="time")


def simulate_regimes(n_bars: int, config: RegimeConfig, rng: np.random.Generator) -> np.ndarray:
    """Two-state Markov chain (0 calm, 1 turbulent), started from its stationary law."""
    p01, p10 = config.calm_to_turbulent, config.turbulent_to_calm
    state = int(rng.random() < config.turbulent_share)
    out = np.empty(n_bars, dtype=np.int8)
    pos = 0
    # Alternate geometric sojourns; draw them in batches to stay vectorised.
    while pos < n_bars:
        batch = max(16, int(n_bars * p01 * 2) + 16)
        calm = rng.geometric(p01, size=batch)
        turb = rng.geometric(p10, size=batch)
        first, second = (calm, turb) if state == 0 else (turb, calm)
        lengths = np.empty(2 * batch, dtype=np.int64)
        lengths[0::2], lengths[1::2] = first, second
        states = np.empty(2 * batch, dtype=np.int8)
        states[0::2], states[1::2] = state, 1 - state
        run = np.repeat(states, lengths)[: n_bars - pos]
        out[pos : pos + run.size] = run
        pos += run.size
        state = int(states[-1]) ^ 1 if pos < n_bars else state
    return out


def linear_recursion(intercept: np.ndarray, coef: np.ndarray, x0: float, *, chunk: int = 64) -> np.ndarray:
    """Solve ``x[t+1] = intercept[t] + coef[t] * x[t]`` for ``x[0..n]`` (n+1 values), vectorised.

    Why: the GARCH variance recursion is sequential; a Python loop costs ~0.6 s per
    million bars. Within chunks of ``chunk`` steps the solution is a cumulative product
    and sum; only the chunk boundaries are carried sequentially. ``coef`` must be > 0
    and bounded away from 0 over a chunk (GARCH: coef >= beta), or products underflow.
    """
    n = intercept.size
    if n == 0:
        return np.array([x0], dtype=float)
    pad = (-n) % chunk
    a = np.concatenate([intercept, np.zeros(pad)]).reshape(-1, chunk)
    prod = np.concatenate([coef, np.ones(pad)]).reshape(-1, chunk)
    np.cumprod(prod, axis=1, out=prod)  # prod[:, i] = c[0] ... c[i] within the chunk
    np.divide(a, prod, out=a)
    np.cumsum(a, axis=1, out=a)
    acc = np.multiply(a, prod, out=a)  # x[s+i+1] = prod[i] * x[s] + acc[i]
    starts = [x0]
    x = x0
    for p_, q_ in zip(prod[:, -1].tolist(), acc[:, -1].tolist(), strict=True):
        x = q_ + p_ * x
        starts.append(x)
    prod *= np.asarray(starts[:-1])[:, None]
    prod += acc
    out = np.empty(n + 1)
    out[0] = x0
    out[1:] = prod.ravel()[:n]
    return out


def garch_variance_path(z: np.ndarray, jumps: np.ndarray, omega: float, alpha: float, beta: float) -> np.ndarray:
    """GARCH(1,1) variance h[0..n] (n+1 values) driven by shocks ``sqrt(h) z`` and jumps ``J``.

    ``h[t+1] = omega + alpha * (h[t] z[t]^2 + J[t]^2) + beta * h[t]``: the jump's variance
    feeds the next bar's variance (volatility stays high after a crash). Started at the
    unconditional variance of the diffusive part.
    """
    h0 = omega / (1.0 - alpha - beta)
    intercept = omega + alpha * jumps * jumps
    coef = alpha * z * z + beta
    if beta >= 0.5:
        return linear_recursion(intercept, coef, h0)
    return garch_variance_loop(z, jumps, omega, alpha, beta)


def garch_variance_loop(z: np.ndarray, jumps: np.ndarray, omega: float, alpha: float, beta: float) -> np.ndarray:
    """The same recursion as :func:`garch_variance_path` as a plain loop (oracle and fallback)."""
    h = omega / (1.0 - alpha - beta)
    out = [h]
    for zi, ji in zip(z.tolist(), jumps.tolist(), strict=True):
        h = omega + alpha * (h * zi * zi + ji * ji) + beta * h
        out.append(h)
    return np.asarray(out)


def _seasonal_factors(index: pd.DatetimeIndex, config: SyntheticConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Volatility, spread and liquidity multipliers per bar from the UTC hour and trading day."""
    minutes = index.hour.to_numpy() * 60 + index.minute.to_numpy()
    hour = minutes // 60
    # Sunday-evening bars trade as Monday; shift by 2 h so 22:00 Sunday → Monday 00:00.
    trading_day = (index + pd.Timedelta(hours=2)).day_of_week.to_numpy()
    trading_day = np.clip(trading_day, 0, 4)
    s = config.seasonality
    vol = np.asarray(s.hourly_vol)[hour] * np.asarray(s.weekday_vol)[trading_day]
    return vol, np.asarray(s.hourly_spread)[hour], np.asarray(s.hourly_liquidity)[hour]


def _seasonal_variance_mean(config: SyntheticConfig) -> float:
    """Mean of the squared seasonal vol factor over one trading week (normalises it to 1)."""
    week = trading_calendar(config.start, config.bars_per_week, config.bar_minutes)
    vol, _, _ = _seasonal_factors(week, config)
    return float(np.mean(vol**2))


def generate_market(config: SyntheticConfig, n_bars: int, *, rng: np.random.Generator) -> SyntheticMarket:
    """Generate ``n_bars`` bars for every pair in ``config``; same generator state → same data."""
    if n_bars < 2:
        raise ValueError(f"n_bars must be >= 2, got {n_bars}")
    n_pairs = len(config.pairs)
    nu = config.student_t_dof
    index = trading_calendar(config.start, n_bars, config.bar_minutes)
    season_vol, season_spread, season_liq = _seasonal_factors(index, config)
    season_vol = season_vol / math.sqrt(_seasonal_variance_mean(config))

    regime = simulate_regimes(n_bars, config.regime, rng)
    k = np.where(regime == 1, config.regime.vol_multiplier, 1.0)
    mean_k2 = 1.0 + config.regime.turbulent_share * (config.regime.vol_multiplier**2 - 1.0)

    # Correlated unit-variance Student-t shocks with a shared mixing variable.
    chol = np.linalg.cholesky(config.correlation_matrix())
    mix = np.sqrt((nu - 2.0) / rng.chisquare(nu, size=n_bars))
    normals = rng.standard_normal((n_pairs, n_bars))  # pair-major: contiguous rows

    # Jumps: intensity per bar, raised in the turbulent regime.
    lam_calm = config.jumps.per_year / config.bars_per_year
    lam = np.where(regime == 1, lam_calm * config.regime.jump_multiplier, lam_calm)
    mean_lam = lam_calm * (1.0 + config.regime.turbulent_share * (config.regime.jump_multiplier - 1.0))
    jump_second_moment = config.jumps.size_sd**2 + config.jumps.size_mean**2
    jump_var = mean_lam * jump_second_moment
    # Jumps arrive for all pairs at once (market-wide news) with correlated sizes.
    jump_happens = rng.random(n_bars) < lam
    jump_hits = np.flatnonzero(jump_happens)
    jump_normals = chol @ rng.standard_normal((n_pairs, jump_hits.size))

    # Weekend gaps: the first bar of every week after the first.
    week_open = np.zeros(n_bars, dtype=bool)
    week_open[config.bars_per_week :: config.bars_per_week] = True
    n_gaps = int(week_open.sum())
    gap_shocks = (chol @ rng.standard_normal((n_pairs, n_gaps))) * np.sqrt((nu - 2.0) / rng.chisquare(nu, n_gaps))
    total_var_units = mean_k2 * (1.0 + config.weekend_gap_bars / config.bars_per_week)
    turbulent = regime == 1
    liquidity_regime = np.where(turbulent, config.regime.liquidity_multiplier, 1.0)

    fields = [f for f in FIELD_ORDER if f != "volume"]
    keys = [(p.symbol, f) for p in config.pairs for f in fields]
    data = np.empty((n_bars, len(keys)), order="F")  # column-contiguous, one pandas block
    cond_vol = np.empty((n_bars, n_pairs))
    for j, proc in enumerate(config.pairs):
        z = (chol[j, : j + 1] @ normals[: j + 1]) * mix
        jump_sizes = np.zeros(n_bars)
        jump_sizes[jump_hits] = config.jumps.size_mean + config.jumps.size_sd * jump_normals[j]
        a, b = proc.garch_alpha, proc.garch_beta
        # Unit unconditional variance of e = sqrt(h) z + J, with jump variance feeding h.
        omega = (1.0 - jump_var) * (1.0 - a - b) - a * jump_var
        if omega <= 0:
            raise ValueError(f"pair {proc.symbol}: jumps carry more variance than the process has; lower jumps")
        h_path = garch_variance_path(z, jump_sizes, omega, a, b)
        h = h_path[:-1]
        # De-seasonalised volatility around the bar (before and after its shock).
        log_vol_state = np.log(k * np.sqrt(0.5 * (h + h_path[1:])))
        sigma_bar = proc.annual_vol / math.sqrt(config.bars_per_year * total_var_units)
        scale = sigma_bar * season_vol * k
        cond_vol[:, j] = np.sqrt(
            scale * scale * (h + lam * jump_second_moment)
            + np.where(week_open, (k * sigma_bar) ** 2 * config.weekend_gap_bars, 0.0)
        )
        r = np.sqrt(h) * z
        r += jump_sizes
        r *= scale  # log return over the bar, open to close
        r += proc.annual_drift / config.bars_per_year
        var_bar = scale * scale * h  # intrabar diffusive variance
        del z, jump_sizes, h, h_path, scale

        log_close = np.zeros(n_bars)
        log_close[week_open] = sigma_bar * k[week_open] * math.sqrt(config.weekend_gap_bars) * gap_shocks[j]
        log_close += r
        np.cumsum(log_close, out=log_close)
        log_close += math.log(proc.start_price)
        log_open = log_close - r
        col = j * len(fields)
        open_, high, low, close = (data[:, col + i] for i in range(4))
        np.exp(log_open, out=open_)
        np.exp(log_close, out=close)
        # Brownian-bridge extremes of the intrabar path from open to close.
        r2 = r * r
        excursion = np.sqrt(r2 - 2.0 * var_bar * np.log(rng.random(n_bars)))
        excursion += r
        excursion *= 0.5
        excursion += log_open
        np.exp(excursion, out=high)
        np.maximum(high, np.maximum(open_, close), out=high)
        excursion = np.sqrt(r2 - 2.0 * var_bar * np.log(rng.random(n_bars)))
        np.subtract(r, excursion, out=excursion)
        excursion *= 0.5
        excursion += log_open
        np.exp(excursion, out=low)
        np.minimum(low, np.minimum(open_, close), out=low)
        del r, r2, var_bar, excursion, log_open, log_close

        sn, ln_ = config.spread_noise, config.liquidity_noise
        noise = rng.standard_normal(n_bars)
        noise *= sn
        noise += config.spread_vol_elasticity * log_vol_state - 0.5 * sn * sn
        np.exp(noise, out=data[:, col + 4])
        data[:, col + 4] *= proc.spread_pips * pair_spec(proc.symbol).pip_size * season_spread
        noise = rng.standard_normal(n_bars)
        noise *= ln_
        noise += -config.liquidity_vol_elasticity * log_vol_state - 0.5 * ln_ * ln_
        np.exp(noise, out=data[:, col + 5])
        data[:, col + 5] *= proc.liquidity * season_liq * liquidity_regime
        del noise, log_vol_state

    bars = pd.DataFrame(data, index=index, columns=pd.MultiIndex.from_tuples(keys, names=["pair", "field"]), copy=False)
    specs: tuple[PairSpec, ...] = tuple(pair_spec(p.symbol) for p in config.pairs)
    market = MarketData(
        bars=bars,
        pairs=specs,
        source="synthetic",
        notes=(f"synthetic: {n_pairs} pair(s), {n_bars} bars of {config.bar_minutes} min, t({nu:g}) shocks",),
    )
    return SyntheticMarket(market=market, regime=regime, conditional_vol=cond_vol, jumps=jump_happens)


def default_config(symbols: Sequence[str] = ("EURUSD",), correlation: Sequence[Sequence[float]] | None = None) -> SyntheticConfig:
    """A ready config for common pairs with typical volatility, price, spread and depth."""
    typical = {
        "EURUSD": dict(start_price=1.10, annual_vol=0.075, spread_pips=0.9, liquidity=2.0e9),
        "GBPUSD": dict(start_price=1.27, annual_vol=0.085, spread_pips=1.2, liquidity=1.0e9),
        "USDJPY": dict(start_price=145.0, annual_vol=0.09, spread_pips=1.0, liquidity=1.5e9),
        "USDCHF": dict(start_price=0.90, annual_vol=0.075, spread_pips=1.4, liquidity=5.0e8),
        "EURCHF": dict(start_price=0.95, annual_vol=0.06, spread_pips=1.8, liquidity=3.0e8),
        "AUDUSD": dict(start_price=0.66, annual_vol=0.10, spread_pips=1.1, liquidity=6.0e8),
    }
    pairs = tuple(PairProcess(symbol=s, **typical.get(s, {})) for s in symbols)
    corr = tuple(tuple(float(x) for x in row) for row in correlation) if correlation is not None else None
    return replace(SyntheticConfig(), pairs=pairs, correlation=corr)
