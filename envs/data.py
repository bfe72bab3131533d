"""Everything the environment reads at step time, precomputed once as float arrays.

Why: ``step()`` must index arrays by integer t — no pandas, no model fitting in the loop.
Every array row t uses bars <= t only (features, forecasts, VaR, correlations, signal),
except the execution prices of bar t+1, which the simulator reads when it fills the
order decided at t.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from envs.config import DURATION_FIELDS, EnvConfig
from forecasters.base import VolatilityForecaster
from forecasters.cache import ForecastCache, cached_forecast
from forecasters.ewma import EwmaConfig, EwmaForecaster
from forecasters.features import FeatureConfig, causal_standardise, compute_features, log_scale
from forecasters.garch import GarchConfig, GarchForecaster
from forecasters.var import fhs_var
from simulator.broker.account import quote_to_account
from simulator.data.depth import with_default_depth
from simulator.common.errors import DataError
from simulator.broker.financing import holding_days, rate_differentials
from simulator.data.frequency import bar_hours, describe_bar
from simulator.data.market import MarketData

STANDARDISE_MIN_PERIODS = 100
FEATURE_CLIP = 10.0  # standardised features are clipped to ±10 (a 10-sigma move stays visible)


@dataclass(frozen=True, eq=False)
class EnvData:
    """Arrays shaped (time, pair) unless noted; float64 for money maths, float32 features."""

    symbols: tuple[str, ...]
    index: np.ndarray            # int64 ns timestamps (time,)
    open: np.ndarray
    close: np.ndarray
    spread: np.ndarray
    liquidity: np.ndarray
    conv: np.ndarray             # quote → account currency
    days: np.ndarray             # calendar days from bar t to t+1 (time,)
    differential: np.ndarray     # base − quote annual rate (pair,)
    sigma: np.ndarray            # volatility forecast for bar t+1 made at t
    var_long: np.ndarray         # VaR fraction of a long position, bar t+1, made at t
    var_short: np.ndarray
    corr: np.ndarray | None      # (time, pair, pair) causal EWMA correlation; None for one pair
    signal: np.ndarray           # momentum direction in {-1, 0, 1}
    signal_strength: np.ndarray  # momentum t-statistic: lookback log return / (sigma forecast x sqrt(lookback))
    vol_ratio: np.ndarray        # log(sigma forecast / its long-run level): minus the expanding mean of log sigma
    features: np.ndarray         # (time, n_features) float32, standardised causally
    feature_names: tuple[str, ...]
    first_step: int              # first t where every input is defined and a full window exists
    span_end: int | None = None  # one past the last bar episodes may touch (None: every bar)
    high: np.ndarray | None = None  # bar highs (time, pair), for range-based rules (ATR); None if absent
    low: np.ndarray | None = None   # bar lows (time, pair)
    bar_hours: float = 1.0          # trading hours one bar stands for (durations in the config convert with it)
    notes: tuple[str, ...] = ()     # what the data lacked and what stood in for it (depth, conversions, lookbacks)

    @property
    def n_bars(self) -> int:
        return self.open.shape[0]

    @property
    def n_pairs(self) -> int:
        return self.open.shape[1]

    @property
    def last_step(self) -> int:
        """Last t a decision can be made at (its order fills in bar t+1, still inside the span)."""
        return (self.n_bars if self.span_end is None else self.span_end) - 2

    def restrict(self, start: int, end: int) -> EnvData:
        """The same arrays, with episodes confined to bars ``[start, end)``.

        Why: a walk-forward split must keep training episodes off validation and test bars
        (and vice versa) while the causal features and forecasts keep their warm-up history:
        a decision at t reads rows <= t, its fill reads bar t+1 < ``end``.
        """
        end = min(int(end), self.n_bars)
        first = max(int(start), self.first_step)
        if end - 2 < first:
            raise ValueError(f"span [{start}, {end}) leaves no decision bar after the warm-up "
                             f"(first usable bar {self.first_step}, {self.n_bars} bars) — widen the span")
        return replace(self, first_step=first, span_end=end)


def volatility_forecaster(config: EnvConfig) -> VolatilityForecaster:
    """The forecaster ``config.vol_model`` names, with the config's windows (``config`` in bars)."""
    if config.vol_model == "ewma":
        return EwmaForecaster(EwmaConfig(lam=0.5 ** (1.0 / config.ewma_halflife)))
    vol, dist = config.vol_model.split("-")
    return GarchForecaster(GarchConfig(vol=vol, dist=dist, refit_every=config.garch_refit_every,
                                       window_size=config.garch_window, min_window=config.garch_min_window))


_CORRELATION_MEMO: list[tuple[float, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []


def ewma_correlation(returns: np.ndarray, lam: float = 0.97, min_periods: int = 100) -> np.ndarray:
    """Causal EWMA correlation matrices (time, pair, pair); NaN before ``min_periods`` rows.

    The recursion resumes after the longest run of leading rows (bit for bit) shared with the
    last call's returns: a stressed market's rows before its stress window are the unstressed
    market's, so a stress grid computes them once. The rows are the ones a fresh run computes
    (the same arithmetic, in the same order, from the same state).
    """
    returns = np.ascontiguousarray(returns, dtype=np.float64)
    n, p = returns.shape
    out = np.full((n, p, p), np.nan)
    covs = np.empty((n, p, p))
    seens = np.empty(n, dtype=np.int64)
    cov = np.zeros((p, p))
    seen = 0
    start = 0
    if _CORRELATION_MEMO:
        m_lam, m_min, m_returns, m_out, m_covs, m_seens = _CORRELATION_MEMO[0]
        if m_lam == lam and m_min == min_periods and m_returns.shape[1] == p:
            rows = min(n, len(m_returns))
            same = (returns[:rows].view(np.uint64) == m_returns[:rows].view(np.uint64)).all(axis=1)
            start = rows if same.all() else int(np.argmin(same))
            if start:
                out[:start], covs[:start], seens[:start] = m_out[:start], m_covs[:start], m_seens[:start]
                cov, seen = m_covs[start - 1].copy(), int(m_seens[start - 1])
    r = np.nan_to_num(returns, nan=0.0)
    for t in range(start, n):
        if np.isfinite(returns[t]).all():
            cov = lam * cov + (1 - lam) * np.outer(r[t], r[t])
            seen += 1
        if seen >= min_periods:
            sd = np.sqrt(np.diag(cov))
            out[t] = cov / np.outer(sd, sd)
        covs[t] = cov
        seens[t] = seen
    _CORRELATION_MEMO[:] = [(lam, min_periods, returns.copy(), out.copy(), covs, seens)]
    return out


def momentum_signal(close: np.ndarray, lookback: int) -> np.ndarray:
    """Sign of the log return over the last ``lookback`` bars (0 until enough history)."""
    out = np.zeros_like(close)
    logp = np.log(close)
    out[lookback:] = np.sign(logp[lookback:] - logp[:-lookback])
    return out


def signal_strength(close: np.ndarray, sigma: np.ndarray, lookback: int) -> np.ndarray:
    """The momentum signal's t-statistic at each bar: the log return over the last ``lookback``
    bars over what the volatility forecast made at that bar expects of it, sigma x sqrt(lookback).

    Why: the signal itself is a sign; how far the move stands out of its noise is what a sizing
    decision needs (0 until enough history or where the forecast is undefined; uses rows <= t).
    """
    out = np.zeros_like(close)
    logp = np.log(close)
    move = logp[lookback:] - logp[:-lookback]
    scale = sigma[lookback:] * np.sqrt(lookback)
    ok = np.isfinite(scale) & (scale > 0)
    out[lookback:] = np.where(ok, move / np.where(ok, scale, 1.0), 0.0)
    return out


def long_run_vol_ratio(sigma: np.ndarray) -> np.ndarray:
    """log(sigma_t / long-run level): log sigma_t minus the mean of log sigma over rows <= t.

    Why: a volatility target sizes against the current forecast, a risk manager against where
    volatility usually is; the ratio says which regime bar t is in (0 where undefined).
    """
    logs = np.log(np.where(np.isfinite(sigma) & (sigma > 0), sigma, np.nan))
    mean = pd.DataFrame(logs).expanding(min_periods=1).mean().to_numpy(np.float64)
    out = logs - mean
    return np.where(np.isfinite(out), out, 0.0)


def data_config(config: EnvConfig) -> EnvConfig:
    """``config`` with what :func:`prepare_env_data` does not read (the action mode) set to one value:
    configs equal here get equal arrays, so an agent's env and its baselines' exposure twin
    (:func:`agents.baselines.baseline_env`) share one preparation (a test holds them equal)."""
    return replace(config, action_mode="exposure")


def prepare_env_data(market: MarketData, config: EnvConfig, *, cache: ForecastCache | None = None) -> EnvData:
    """Precompute the environment's arrays for ``market`` (forecasts served from ``cache``).

    Durations in ``config`` are converted with the market's bar length first; what the data
    lacked and what stood in for it (depth, lookbacks in bars) goes into ``EnvData.notes``.
    """
    if len(market) < config.window + 3:
        raise DataError(f"{len(market)} bars are too few for an episode", source=market.source,
                        hint="use a longer market")
    hours = bar_hours(market.index)
    config = config.in_bars(hours)
    notes = [f"bars of {describe_bar(hours)}; lookbacks in bars: "
             + ", ".join(f"{name} {getattr(config, name)}" for name in DURATION_FIELDS
                         if getattr(config, name) is not None)]
    forecast, _ = cached_forecast(volatility_forecaster(config), market, None, cache)
    sigma = forecast.sigma
    returns = market.log_returns()
    risk = fhs_var(returns, sigma, config.var_alpha, window=config.var_window)
    if "liquidity" in market.fields:
        liquidity = market.field_array("liquidity")
    elif isinstance(config.default_liquidity, str):
        deep = with_default_depth(market, config.default_liquidity)
        liquidity = deep.field_array("liquidity")
        notes.append(deep.notes[-1])
    else:
        liquidity = np.full((len(market), len(market.symbols)), float(config.default_liquidity))
        notes.append("no liquidity field: depth unlimited (no impact, no partial fills)"
                     if np.isinf(config.default_liquidity) else
                     f"no liquidity field: constant depth {config.default_liquidity:g} base units per bar")
    feats = log_scale(compute_features(market, FeatureConfig(ewma_halflives=tuple(
        float(h) for h in config.feature_halflives))))
    per_pair = np.concatenate([
        feats.values,
        np.log(sigma)[..., None],
        np.log(risk.var)[..., None],
    ], axis=2)
    names = [f"{s}:{n}" for s in market.symbols for n in (*feats.names, "log_sigma_forecast", "log_var_fhs")]
    flat = per_pair.transpose(0, 1, 2).reshape(len(market), -1)
    standardised = causal_standardise(flat, None, min_periods=STANDARDISE_MIN_PERIODS)
    corr = (ewma_correlation(returns, lam=0.5 ** (1.0 / config.corr_halflife)) if len(market.symbols) > 1
            else None)
    valid = (np.isfinite(standardised).all(axis=1) & np.isfinite(sigma).all(axis=1)
             & np.isfinite(risk.var).all(axis=1) & np.isfinite(risk.var_short).all(axis=1))
    if corr is not None:
        valid &= np.isfinite(corr).all(axis=(1, 2))
    # A step at t needs window rows of features ending at t, all valid.
    run = np.convolve(valid.astype(np.int64), np.ones(config.window, dtype=np.int64))[: len(valid)]
    ok = np.flatnonzero((run >= config.window) & valid)
    ok = ok[ok <= len(market) - 2]
    if ok.size == 0:
        raise DataError(
            f"no bar has a full window of features, forecasts and VaR ({len(market)} bars; the "
            f"{config.vol_model} forecast, VaR window {config.var_window} and feature warm-ups need more)",
            source=market.source, hint="use a longer market or a smaller var_window",
        )
    first = int(ok[0])
    if not valid[first:-1].all():
        bad = first + int(np.flatnonzero(~valid[first:-1])[0])
        raise DataError("features or forecasts are undefined after the warm-up", source=market.source,
                        row=bad, hint="check the data for gaps or constant prices")
    return EnvData(
        symbols=market.symbols,
        index=market.index.as_unit("ns").asi8.copy(),
        open=market.field_array("open"),
        close=market.field_array("close"),
        spread=market.field_array("spread"),
        liquidity=liquidity,
        conv=quote_to_account(market, config.account.currency),
        days=holding_days(market),
        differential=rate_differentials(market, config.financing),
        sigma=sigma,
        var_long=risk.var,
        var_short=risk.var_short,
        corr=corr,
        signal=momentum_signal(market.field_array("close"), config.signal_lookback),
        signal_strength=signal_strength(market.field_array("close"), sigma, config.signal_lookback),
        vol_ratio=long_run_vol_ratio(sigma),
        features=np.clip(np.nan_to_num(standardised, nan=0.0), -FEATURE_CLIP, FEATURE_CLIP).astype(np.float32),
        feature_names=tuple(names),
        first_step=first,
        high=market.field_array("high"),
        low=market.field_array("low"),
        bar_hours=hours,
        notes=tuple(notes),
    )
