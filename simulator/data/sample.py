"""The bundled real sample: EURUSD hourly bars for 2017 (Dukascopy export layout, ask side).

Why bundle it: ``make demo``, tests and tutorials need real market data offline. The
file has one price side and no spread, so the loader adds the documented
:class:`~simulator.data.spread_model.SpreadModel` spread (base 1.0 pip, retail EURUSD) and
converts ask prices to mid (``mid = ask - spread/2``).
"""

from __future__ import annotations

from dataclasses import replace
from importlib import resources
from pathlib import Path

from simulator.data.csv_loader import load_csv, preset
from simulator.data.market import MarketData
from simulator.data.spread_model import SpreadModel

SAMPLE_FILE = "data/EURUSD_1H_2017_ASK.csv"
SAMPLE_PATH: Path = Path(str(resources.files("simulator").joinpath(SAMPLE_FILE)))
SAMPLE_SYMBOL = "EURUSD"
SAMPLE_ORIGIN = (
    "EURUSD hourly ask bars, 2017-01-01 22:00 to 2017-12-29 21:00 UTC (6,225 bars), in the Dukascopy CSV "
    "export layout, as bundled in gym-anytrading 2.0.0 (gym_anytrading/datasets/data/FOREX_EURUSD_1H_ASK.csv), "
    "MIT licence, Copyright (c) 2019 Mohammad Amin Haghpanah; the licence text is in "
    "simulator/data/LICENSE-gym-anytrading.txt. Spread is modelled (SpreadModel, base 1.0 pip), not observed."
)

SAMPLE_LIQUIDITY_PER_VOLUME = 1.0
"""Liquidity (EUR of tradable depth per bar) per unit of the file's ``Volume``.

Assumption: Dukascopy's ``Volume`` is the base currency (EUR) traded on its venue in
the hour; with factor 1.0 a bar's depth equals that traded amount, the scale a
square-root impact model expects (impact grows with sqrt(order / volume)). The units
are not documented by the source, so treat depth as an order of magnitude; pass a
smaller factor (e.g. 0.01, a 1 % participation cap) for a more conservative market.
"""


def load_sample(
    spread_model: SpreadModel | None = None,
    *,
    liquidity_per_volume: float = SAMPLE_LIQUIDITY_PER_VOLUME,
) -> MarketData:
    """The bundled EURUSD 2017 hourly sample as MarketData (mid prices, UTC, spread in price units).

    ``spread_model`` defaults to ``SpreadModel()`` (base 1.0 pip retail, UTC hour profile,
    causal volatility factor); ``liquidity = Volume × liquidity_per_volume`` in EUR.
    """
    fmt = replace(preset("dukascopy"), name="dukascopy-ask", price_side="ask")
    with resources.as_file(resources.files("simulator").joinpath(SAMPLE_FILE)) as path:
        market = load_csv(
            path,
            fmt=fmt,
            symbol=SAMPLE_SYMBOL,
            spread_model=spread_model or SpreadModel(),
            liquidity_per_volume=liquidity_per_volume,
        )
    return market
