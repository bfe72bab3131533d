"""Calibrate the synthetic generator to a real series (GARCH-t fitted with ``arch``).

Why: stress tests and training on synthetic data are only as useful as the data is
plausible. Calibration takes from a real pair: the annualised volatility, the
intraday volatility profile, GARCH(1,1) persistence and Student-t tails (fitted by
maximum likelihood with ``arch`` on de-seasonalised returns), the spread level in
liquid hours and the typical depth. Regime switching and jumps keep the base config's
settings; the generator rescales its base variance so the total matches the sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from arch import arch_model

from simulator.common.errors import DataError
from simulator.data.frequency import bar_hours
from simulator.data.market import MarketData
from simulator.synthetic.generator import PairProcess, SyntheticConfig

MIN_CALIBRATION_BARS = 500


@dataclass(frozen=True, kw_only=True)
class GarchTFit:
    """GARCH(1,1)-t estimates on de-seasonalised returns (returns in percent)."""

    mu: float
    omega: float
    alpha: float
    beta: float
    nu: float
    loglik: float
    converged: bool


def hourly_volatility_profile(index: pd.DatetimeIndex, returns: np.ndarray) -> np.ndarray:
    """RMS return by UTC hour divided by the overall RMS (24 values; 1.0 where no data)."""
    hours = np.asarray(index.hour)
    overall = math.sqrt(float(np.mean(returns**2)))
    profile = np.ones(24)
    for hr in range(24):
        sel = returns[hours == hr]
        if sel.size >= 10 and overall > 0:
            profile[hr] = max(math.sqrt(float(np.mean(sel**2))) / overall, 0.05)
    return profile


def fit_garch_t(returns: np.ndarray) -> GarchTFit:
    """Maximum-likelihood GARCH(1,1) with Student-t innovations via ``arch`` (returns as fractions)."""
    scaled = 100.0 * np.asarray(returns, dtype=float)
    model = arch_model(scaled, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False)
    res = model.fit(disp="off", show_warning=False)
    p = res.params
    return GarchTFit(
        mu=float(p["mu"]),
        omega=float(p["omega"]),
        alpha=float(p["alpha[1]"]),
        beta=float(p["beta[1]"]),
        nu=float(p["nu"]),
        loglik=float(res.loglikelihood),
        converged=res.convergence_flag == 0,
    )


def calibrate(
    market: MarketData,
    *,
    symbol: str | None = None,
    base: SyntheticConfig | None = None,
) -> tuple[SyntheticConfig, GarchTFit]:
    """A one-pair :class:`SyntheticConfig` whose marginal behaviour matches ``market``'s pair.

    Returns the config and the raw GARCH-t fit (for reporting).
    """
    base = base or SyntheticConfig()
    symbol = symbol or market.symbols[0]
    j = market.symbols.index(symbol)
    if len(market) < MIN_CALIBRATION_BARS:
        raise DataError(
            f"{len(market)} bars are too few to calibrate (need {MIN_CALIBRATION_BARS})",
            source=market.source,
            hint="use a longer sample",
        )
    rets = market.log_returns()[1:, j]
    index = market.index[1:]
    profile = hourly_volatility_profile(index, rets)
    deseasonalised = rets / profile[np.asarray(index.hour)]
    fit = fit_garch_t(deseasonalised)
    if not fit.converged:
        raise DataError("GARCH-t fit did not converge", source=market.source, field=symbol,
                        hint="use a longer or cleaner sample")
    alpha = min(max(fit.alpha, 0.0), 0.5)
    beta = min(max(fit.beta, 0.0), 0.999 - alpha)
    nu = min(max(fit.nu, 2.5), 50.0)

    annual_vol = float(np.std(rets, ddof=1) * math.sqrt(market.bars_per_year()))
    spread_pips = market.spread_pips()[:, j]
    liquid_hours = np.isin(np.asarray(market.index.hour), np.arange(7, 17))
    typical_spread = float(np.median(spread_pips[liquid_hours])) if liquid_hours.any() else float(np.median(spread_pips))
    liquidity = (
        float(np.median(market.bars[(symbol, "liquidity")])) if "liquidity" in market.fields
        else PairProcess().liquidity
    )
    pair = PairProcess(
        symbol=symbol,
        start_price=float(market.bars[(symbol, "close")].iloc[-1]),
        annual_vol=annual_vol,
        annual_drift=0.0,
        garch_alpha=alpha,
        garch_beta=beta,
        spread_pips=typical_spread,
        liquidity=liquidity,
    )
    seasonality = replace(base.seasonality, hourly_vol=tuple(float(x) for x in profile),
                          weekday_vol=(1.0, 1.0, 1.0, 1.0, 1.0))
    config = replace(base, pairs=(pair,), correlation=None, student_t_dof=nu, seasonality=seasonality,
                     **_per_bar_settings(base, market, alpha, beta))
    return config, fit


def _per_bar_settings(base: SyntheticConfig, market: MarketData, alpha: float, beta: float) -> dict:
    """Bar length, regime switching and jumps of ``base`` restated for the market's own bar length.

    Why: GARCH parameters are per bar, so daily data must generate daily bars. The base config's
    regime transition probabilities are per bar (scaled by the ratio of bar lengths, so episodes
    last the same calendar time) and jump sizes are in bar standard deviations (divided by the
    square root of the ratio, so a jump moves the price by the same amount). Jumps never carry
    more than half the variance the fitted GARCH leaves room for: ``omega > 0`` needs the jump
    variance share below ``(1 - alpha - beta) / (1 - beta)``.
    """
    minutes = int(round(bar_hours(market.index) * 60))
    if not (0 < minutes <= 24 * 60 and (24 * 60) % minutes == 0) or minutes == base.bar_minutes:
        return {}
    ratio = minutes / base.bar_minutes
    regime = replace(base.regime, calm_to_turbulent=min(base.regime.calm_to_turbulent * ratio, 0.5),
                     turbulent_to_calm=min(base.regime.turbulent_to_calm * ratio, 1.0))
    jumps = replace(base.jumps, size_sd=base.jumps.size_sd / math.sqrt(ratio),
                    size_mean=base.jumps.size_mean / math.sqrt(ratio))
    bars_per_year = base.bars_per_year / ratio
    mean_lam = jumps.per_year / bars_per_year * (1.0 + regime.turbulent_share * (regime.jump_multiplier - 1.0))
    jump_var = mean_lam * (jumps.size_sd ** 2 + jumps.size_mean ** 2)
    room = 0.5 * (1.0 - alpha - beta) / (1.0 - beta) if beta < 1 else 0.0
    if jump_var > room:
        jumps = replace(jumps, per_year=jumps.per_year * room / jump_var)
    return {"bar_minutes": minutes, "regime": regime, "jumps": jumps}
