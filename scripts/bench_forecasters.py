#!/usr/bin/env python
"""Benchmark the forecasters on synthetic hourly data.

1. Walk-forward GARCH(1,1)-t on 100,000 hourly bars, refit every 1,000 bars on a
   rolling 5,000-bar window: first run (computed) and second run (served from the
   on-disk cache). Targets on 2 cores: <= 15 s and <= 1 s.
2. The alternative, a refit at every bar: timed on a short stretch and extrapolated to
   the same 100,000 bars.
3. LSTM training on 50,000 hourly bars (default RecurrentVolConfig, CPU, one thread).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from forecasters.base import Split  # noqa: E402
from forecasters.cache import ForecastCache, cached_forecast  # noqa: E402
from forecasters.garch import GarchConfig, GarchForecaster, fit_window  # noqa: E402
from forecasters.seasonality import deseasonalise  # noqa: E402
from simulator.synthetic import default_config, generate_market  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--lstm-bars", type=int, default=50_000)
    parser.add_argument("--every-bar-sample", type=int, default=200, help="refits timed for the extrapolation")
    parser.add_argument("--skip-lstm", action="store_true")
    args = parser.parse_args()

    market = generate_market(default_config(("EURUSD",)), args.bars, rng=np.random.default_rng(0)).market
    config = GarchConfig(vol="garch", dist="t", refit_every=1000, window="rolling", window_size=5000,
                         min_window=1000)
    print(f"bench_forecasters: {args.bars:,} synthetic hourly EURUSD bars")
    with tempfile.TemporaryDirectory() as tmp:
        cache = ForecastCache(tmp)
        t0 = time.perf_counter()
        first, hit1 = cached_forecast(GarchForecaster(config), market, None, cache)
        computed = time.perf_counter() - t0
        t0 = time.perf_counter()
        second, hit2 = cached_forecast(GarchForecaster(config), market, None, cache)
        served = time.perf_counter() - t0
    assert not hit1 and hit2 and np.array_equal(first.sigma, second.sigma, equal_nan=True)
    print(f"  walk-forward GARCH(1,1)-t, refit every 1,000 bars: {computed:.2f} s "
          f"({first.refits} refits, {first.fallbacks} fallbacks)  (target <= 15 s)")
    print(f"  second run from the cache: {served:.3f} s  (target <= 1 s)")

    adjusted, _ = deseasonalise(market.index, market.log_returns())
    x = adjusted[:, 0]
    start = config.window_size
    t0 = time.perf_counter()
    good = None
    for tau in range(start, start + args.every_bar_sample):
        good = fit_window(x[tau - config.window_size + 1 : tau + 1], config, start=good) or good
    per_fit = (time.perf_counter() - t0) / args.every_bar_sample
    n_fits = args.bars - config.min_window
    print(f"  refit at every bar: {per_fit * 1000:.1f} ms per fit (warm-started, {args.every_bar_sample} timed) "
          f"-> {per_fit * n_fits:,.0f} s extrapolated for {n_fits:,} refits "
          f"({per_fit * n_fits / computed:,.0f}x the walk-forward)")

    if not args.skip_lstm:
        from forecasters.neural import RecurrentVolConfig, RecurrentVolForecaster

        lstm_market = market.slice(None, market.index[min(args.lstm_bars, len(market)) - 1] + (market.index[1] - market.index[0]))
        split = Split.by_fraction(len(lstm_market), train=0.6, validation=0.2)
        model = RecurrentVolForecaster(RecurrentVolConfig(cell="lstm"))
        t0 = time.perf_counter()
        model.fit(lstm_market, split)
        trained = time.perf_counter() - t0
        print(f"  LSTM training on {len(lstm_market):,} bars ({split.train_end:,} train / "
              f"{split.val_end - split.train_end:,} validation): {trained:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
