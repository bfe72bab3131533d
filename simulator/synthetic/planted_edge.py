"""A synthetic market with a planted, learnable *sizing* edge — a proof that learning works.

This is **not a realistic market**. It exists so that an experiment can show that a PPO
agent in the environment's ``sizing`` action mode (direction from the momentum signal
``sign(ln C[t] / C[t - lookback])``, the agent picks the size in [0, 1]) learns something
a fixed size cannot: the edge is made strong on purpose so that it is learnable within
~10^5 environment steps, and it is made a *sizing* edge on purpose, so that it can only
be earned by reading volatility from the observation.

The model, per hourly bar t, on top of :func:`simulator.synthetic.generator.generate_market`
(GARCH(1,1)-t, Poisson jumps, seasonality, weekend gaps, spreads and liquidity that
worsen with volatility — all unchanged):

* **regime**: the generator's calm/turbulent Markov chain, with long spells (defaults:
  calm ~600 bars, turbulent ~300 bars on average, so ~1/3 of bars are turbulent) and a
  large volatility multiplier (default 4), so the regime is recognisable from any
  smoothed volatility estimate (EWMA vols, the GARCH/EWMA forecast, VaR);
* **calm regime — trend**: a latent direction ``d[t]`` in {-1, +1} (a Markov chain that
  flips with probability ``flip_prob`` per bar, default 1/150) adds a drift
  ``trend_drift × σ_calm × d[t]`` to the log return of bar t, where ``σ_calm`` is the
  calm regime's average per-bar volatility. With the default 0.3 the 24-bar momentum
  sign agrees with ``d`` ~89% of the time and a trend-following position earns an
  annualised Sharpe of ~20 over calm bars before costs (real FX trends earn far less: a
  deliberately strong edge, since PPO does not find a sizing edge of realistic strength
  within a short budget);
* **turbulent regime — mean reversion**: the drift of bar t is
  ``turbulent_drift × σ_calm × m[t-1]``, where ``m[t-1]`` is the momentum sign the
  environment sees at the decision for bar t (computed on the final prices, so the
  feedback is exact); the default ``turbulent_drift = -0.3`` works *against* the
  signal, so a momentum position loses money in turbulent spells (0 makes them merely
  noise plus costs);
* **prices**: the drift path ``D[t] = Σ_{u<=t} μ[u]`` is added to the generator's log
  prices: open of bar t shifted by ``D[t-1]``, close by ``D[t]``, high and low by the
  drift at mid-bar and then widened so that ``high >= max(open, close)`` and
  ``low <= min(open, close)``; spread (price units) and liquidity are kept.

So the best size is "full when observed volatility is low, ~zero when it is high",
while a fixed size pays for every turbulent spell (turbulent bars also carry ~3x the
calm spread). All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.common.configuration import from_mapping, load_yaml
from simulator.data.market import MarketData
from simulator.data.pairs import pair_spec
from simulator.synthetic.generator import (
    JumpConfig,
    PairProcess,
    RegimeConfig,
    SyntheticConfig,
    SyntheticMarket,
    generate_market,
)


@dataclass(frozen=True, kw_only=True)
class PlantedEdgeConfig:
    """Parameters of the planted-edge market (hourly bars, one pair).

    * ``symbol``, ``start_price``: the pair (EURUSD-like by default, ~1.10);
    * ``calm_annual_vol``: annualised volatility of the calm regime (fraction, 0.07 = 7%/yr);
      the per-bar calm volatility ``σ_calm = calm_annual_vol / sqrt(bars per year)`` is the
      unit of both drifts;
    * ``vol_multiplier``: turbulent volatility / calm volatility;
    * ``calm_to_turbulent``, ``turbulent_to_calm``: regime switch probabilities per bar
      (mean spell lengths are their inverses, in bars);
    * ``trend_drift``: calm-regime drift per bar along the latent direction, in units of
      ``σ_calm`` (> 0);
    * ``flip_prob``: probability per bar that the latent direction flips;
    * ``turbulent_drift``: turbulent-regime drift per bar in units of ``σ_calm``, times the
      momentum sign seen at the previous close; < 0 is mean reversion (against the
      signal), 0 no drift;
    * ``signal_lookback``: lookback in bars of that momentum sign (match the env's
      ``signal_lookback``);
    * ``spread_pips``: calm-hour base spread in pips (widens with volatility, as in the
      generator); ``liquidity``: base depth per bar, base-currency units;
    * ``garch_alpha``, ``garch_beta``, ``student_t_dof``, ``jumps_per_year``: the
      generator's volatility clustering, tails and jumps (jumps are 4x as frequent in
      turbulent spells);
    * ``start``: first bar, a Sunday 22:00 UTC week open;
    * ``intraday_vol_seasonality``: keep the generator's hour-of-day and weekday volatility profile
      (``False``: flat, so the per-bar volatility is ``σ_calm`` or ``vol_multiplier × σ_calm`` at every
      hour — a rule that targets volatility then resizes with the regime, not with the clock; the
      spread and liquidity profiles are kept either way).
    """

    symbol: str = "EURUSD"
    start_price: float = 1.10
    calm_annual_vol: float = 0.07
    vol_multiplier: float = 4.0
    calm_to_turbulent: float = 1.0 / 600.0
    turbulent_to_calm: float = 1.0 / 300.0
    trend_drift: float = 0.3
    flip_prob: float = 1.0 / 150.0
    turbulent_drift: float = -0.3
    signal_lookback: int = 24
    spread_pips: float = 0.9
    liquidity: float = 2.0e9
    garch_alpha: float = 0.05
    garch_beta: float = 0.93
    student_t_dof: float = 5.0
    jumps_per_year: float = 6.0
    start: str = "2020-01-05 22:00"
    intraday_vol_seasonality: bool = True

    def __post_init__(self) -> None:
        pair_spec(self.symbol)
        if not self.start_price > 0:
            raise ValueError(f"start_price must be > 0, got {self.start_price}")
        if not 0 < self.calm_annual_vol < 1:
            raise ValueError(f"calm_annual_vol must be in (0, 1) (a fraction per year), got {self.calm_annual_vol}")
        if not self.vol_multiplier >= 1:
            raise ValueError(f"vol_multiplier must be >= 1, got {self.vol_multiplier}")
        for name in ("calm_to_turbulent", "turbulent_to_calm"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ValueError(f"{name} must be in (0, 1] (a probability per bar), got {v}")
        if not self.trend_drift > 0:
            raise ValueError(f"trend_drift must be > 0 (units of the calm per-bar vol), got {self.trend_drift}")
        if not 0 <= self.flip_prob < 1:
            raise ValueError(f"flip_prob must be in [0, 1), got {self.flip_prob}")
        if not math.isfinite(self.turbulent_drift) or abs(self.turbulent_drift) > 1:
            raise ValueError(f"turbulent_drift must be in [-1, 1] (units of the calm per-bar vol), "
                             f"got {self.turbulent_drift}")
        if self.signal_lookback < 1:
            raise ValueError(f"signal_lookback must be >= 1, got {self.signal_lookback}")
        if not self.spread_pips > 0:
            raise ValueError(f"spread_pips must be > 0, got {self.spread_pips}")
        if not self.liquidity > 0:
            raise ValueError(f"liquidity must be > 0, got {self.liquidity}")
        if self.jumps_per_year < 0:
            raise ValueError(f"jumps_per_year must be >= 0, got {self.jumps_per_year}")
        # The rest (GARCH, dof, start) is validated by the generator's own config.
        self.synthetic_config()

    @property
    def turbulent_share(self) -> float:
        """Stationary probability of the turbulent regime."""
        return self.calm_to_turbulent / (self.calm_to_turbulent + self.turbulent_to_calm)

    def synthetic_config(self) -> SyntheticConfig:
        """The generator config underneath: long regimes, calm volatility ``calm_annual_vol``.

        The generator solves its scale so the *unconditional* volatility (both regimes
        and weekend gaps) equals ``annual_vol``; here ``annual_vol`` is set so that the
        calm regime's volatility is ``calm_annual_vol``.
        """
        base = SyntheticConfig(
            student_t_dof=self.student_t_dof,
            start=self.start,
            regime=RegimeConfig(calm_to_turbulent=self.calm_to_turbulent, turbulent_to_calm=self.turbulent_to_calm,
                                vol_multiplier=self.vol_multiplier),
            jumps=replace(JumpConfig(), per_year=self.jumps_per_year),
        )
        if not self.intraday_vol_seasonality:
            base = replace(base, seasonality=replace(base.seasonality, hourly_vol=(1.0,) * 24, weekday_vol=(1.0,) * 5))
        mean_k2 = 1.0 + self.turbulent_share * (self.vol_multiplier**2 - 1.0)
        units = mean_k2 * (1.0 + base.weekend_gap_bars / base.bars_per_week)
        pair = PairProcess(symbol=self.symbol, start_price=self.start_price,
                           annual_vol=self.calm_annual_vol * math.sqrt(units), garch_alpha=self.garch_alpha,
                           garch_beta=self.garch_beta, spread_pips=self.spread_pips, liquidity=self.liquidity)
        return replace(base, pairs=(pair,))

    @property
    def calm_bar_vol(self) -> float:
        """``σ_calm``: the calm regime's average per-bar log-return volatility (fraction)."""
        return self.calm_annual_vol / math.sqrt(self.synthetic_config().bars_per_year)

    @classmethod
    def from_yaml(cls, path: str | Path) -> PlantedEdgeConfig:
        """Load a config file; unknown keys and bad values are one-line errors."""
        return from_mapping(cls, load_yaml(path), source=str(path))


@dataclass(frozen=True, eq=False)
class PlantedEdgeMarket:
    """The bars plus the hidden state that planted the edge (for experiments and tests).

    ``regime[t]``: 1 when bar t is turbulent. ``direction[t]``: the latent trend direction
    (+1 / -1) during bar t (it drives the drift only in calm bars). ``drift[t]``: the log
    drift added to bar t's return (fraction). ``conditional_vol[t]``: the generator's
    standard deviation of bar t's log return given the past (the drift does not change it).
    ``calm_bar_vol``: ``σ_calm``, the unit of both drifts. ``synthetic``: the generator's
    output before the drift was added.
    """

    market: MarketData
    regime: np.ndarray
    direction: np.ndarray
    drift: np.ndarray
    conditional_vol: np.ndarray
    calm_bar_vol: float
    synthetic: SyntheticMarket


def latent_direction(n_bars: int, flip_prob: float, rng: np.random.Generator) -> np.ndarray:
    """A ±1 Markov chain that flips with probability ``flip_prob`` per bar, started at random."""
    first = 1 if rng.random() < 0.5 else -1
    flips = rng.random(n_bars) < flip_prob
    flips[0] = False
    parity = np.cumsum(flips) % 2
    return (first * (1 - 2 * parity)).astype(np.int8)


def drift_path(base_log_close: np.ndarray, regime: np.ndarray, direction: np.ndarray,
               config: PlantedEdgeConfig) -> np.ndarray:
    """Per-bar log drifts ``μ[t]`` (fraction) for the final prices ``base_log_close + cumsum(μ)``.

    Calm bars: ``trend_drift σ_calm d[t]``. Turbulent bars: ``turbulent_drift σ_calm m``,
    with ``m`` the momentum sign of the *final* log closes at t-1 over ``signal_lookback``
    bars (0 before enough history). Sequential because of that feedback; only turbulent
    bars need the loop.
    """
    sigma = config.calm_bar_vol
    n = base_log_close.size
    turbulent = regime == 1
    mu = np.where(turbulent, 0.0, config.trend_drift * sigma * direction.astype(float))
    if config.turbulent_drift == 0.0 or not turbulent.any():
        return mu
    lb = config.signal_lookback
    k = config.turbulent_drift * sigma
    # Final log close so far; only turbulent bars change the cumulative drift sequentially.
    calm_cum = np.cumsum(mu)  # cumulative drift if no turbulent bar drifted
    final = (base_log_close + calm_cum).tolist()
    extra = 0.0  # cumulative turbulent drift added so far
    mu_list = mu.tolist()
    turb_list = turbulent.tolist()
    for t in range(n):
        if turb_list[t]:
            if t - 1 - lb >= 0:
                diff = final[t - 1] - final[t - 1 - lb]
                m = (diff > 0) - (diff < 0)
            else:
                m = 0
            step = k * m
            mu_list[t] = step
            extra += step
        final[t] += extra
    return np.asarray(mu_list)


def planted_edge_market(n_bars: int, *, rng: np.random.Generator,
                        config: PlantedEdgeConfig = PlantedEdgeConfig()) -> PlantedEdgeMarket:
    """Generate ``n_bars`` hourly bars with the planted sizing edge; same generator state → same market."""
    syn = generate_market(config.synthetic_config(), n_bars, rng=rng)
    direction = latent_direction(n_bars, config.flip_prob, rng)
    sym = config.symbol
    base = syn.market.bars[sym]
    lo_, lh, ll, lc = (np.log(base[f].to_numpy(dtype=np.float64)) for f in ("open", "high", "low", "close"))
    mu = drift_path(lc, syn.regime, direction, config)
    cum = np.cumsum(mu)
    before = cum - mu  # drift accrued up to the open of bar t
    open_ = np.exp(lo_ + before)
    close = np.exp(lc + cum)
    mid = before + 0.5 * mu
    high = np.maximum(np.exp(lh + mid), np.maximum(open_, close))
    low = np.minimum(np.exp(ll + mid), np.minimum(open_, close))
    frame = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                          "spread": base["spread"].to_numpy(), "liquidity": base["liquidity"].to_numpy()},
                         index=syn.market.index)
    market = MarketData.from_frames(
        {sym: frame}, syn.market.pairs, source="planted-edge synthetic",
        notes=(*syn.market.notes,
               f"planted edge: calm trend {config.trend_drift:g} sigma/bar (flip p={config.flip_prob:.4g}), "
               f"turbulent drift {config.turbulent_drift:g} sigma/bar x momentum({config.signal_lookback}), "
               f"vol x{config.vol_multiplier:g} — a learnability test, not a realistic market"),
    )
    return PlantedEdgeMarket(market=market, regime=syn.regime, direction=direction, drift=mu,
                             conditional_vol=syn.conditional_vol[:, 0], calm_bar_vol=config.calm_bar_vol,
                             synthetic=syn)
