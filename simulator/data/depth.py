"""A stated default depth (liquidity) for sources that carry no volume.

Why: without a liquidity field every order would fill at any size with no impact — infinite
depth — and liquidity stress scenarios (depth ×0.01) would change nothing. Daily FX turnover is
published (BIS Triennial Survey, ``simulator/data/depth.yaml``), so a source without volume gets
that figure, spread evenly over the trading day: a bar of ``h`` trading hours holds
``spot turnover per day × h / 24`` of depth, in base-currency units. The choice is always
said in ``market.notes``; ``depth="infinite"`` keeps the field out (the environment then
treats depth as unlimited and says so).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import yaml

from simulator.data.frequency import bar_hours, describe_bar
from simulator.data.market import MarketData

DEPTH_MODELS: tuple[str, ...] = ("bis2022", "infinite")


@lru_cache(maxsize=1)
def _table() -> dict:
    return yaml.safe_load(resources.files("simulator").joinpath("data/depth.yaml").read_text(encoding="utf-8"))


def daily_spot_turnover_usd(symbol: str) -> tuple[float, bool]:
    """Spot turnover of ``symbol`` in USD per day (BIS 2022) and whether the pair is listed."""
    table = _table()
    share = table["pair_share"].get(symbol)
    if share is None:
        inverse = symbol[3:] + symbol[:3]
        share = table["pair_share"].get(inverse)
    listed = share is not None
    return float(table["spot_usd_per_day"]) * float(share if listed else table["other_pair_share"]), listed


def with_default_depth(market: MarketData, model: str = "bis2022") -> MarketData:
    """``market`` with a ``liquidity`` field from ``model`` where it has none (noted either way)."""
    if model not in DEPTH_MODELS:
        raise ValueError(f"depth model must be one of {DEPTH_MODELS}, got {model!r}")
    if "liquidity" in market.fields:
        return market
    if model == "infinite":
        return MarketData(bars=market.bars, pairs=market.pairs, source=market.source,
                          notes=(*market.notes, "no liquidity field: depth is unlimited (infinite depth, no impact, "
                                                "no partial fills)"), conversion=market.conversion)
    hours = bar_hours(market.index)
    usd_per_unit = _table()["usd_per_unit"]
    frames = {}
    notes = list(market.notes)
    parts = []
    for spec in market.pairs:
        turnover, listed = daily_spot_turnover_usd(spec.symbol)
        per_bar_usd = turnover * hours / 24.0
        close = market.bars[(spec.symbol, "close")].to_numpy(np.float64)
        if spec.base in usd_per_unit:
            units = np.full(len(market), per_bar_usd / float(usd_per_unit[spec.base]))
        elif spec.quote == "USD":
            units = per_bar_usd / close  # causal: the bar's own price
        else:
            units = np.full(len(market), per_bar_usd)
            notes.append(f"{spec.symbol}: no USD value for {spec.base} in depth.yaml; depth counted at 1 USD per unit")
        frame = market.pair(spec.symbol)
        frame["liquidity"] = units
        frames[spec.symbol] = frame
        parts.append(f"{spec.symbol} {turnover / 1e9:,.1f}bn USD/day" + ("" if listed else " (unlisted pair default)"))
    notes.append(f"no liquidity field: depth from BIS Triennial Survey 2022 spot turnover ({'; '.join(parts)}), "
                 f"spread evenly over the day, bars of {describe_bar(hours)}")
    out = MarketData.from_frames(frames, market.pairs, source=market.source, notes=notes)
    return MarketData(bars=out.bars, pairs=out.pairs, source=out.source, notes=out.notes, conversion=market.conversion)


__all__ = ["DEPTH_MODELS", "daily_spot_turnover_usd", "with_default_depth"]
