"""Applying a scenario: a new market and a new env config; the originals are never modified.

Windows are placed inside the evaluation ``span`` (bar positions ``[lo, hi)``, e.g. the test
split): ``start`` is a fraction of the span or ``"random"`` (drawn from the generator passed
in, uniformly among the starts where the window fits — seeds vary the timing of the stress).
Every draw (random starts, then resampling) comes from that one generator, in file order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.broker.settings import BrokerSettings
from scenarios.errors import ScenarioError
from scenarios.schema import Scenario, WindowSpec
from scenarios.transforms import (
    CorrelationBreakTransform,
    FinancingTransform,
    LiquidityTransform,
    WindowedTransform,
    _EventTransform,
)
from simulator.common.errors import DataError
from simulator.data.frequency import bar_hours
from simulator.data.market import PRICE_FIELDS, MarketData


@dataclass(frozen=True, eq=False)
class StressedMarket:
    """The result of :func:`apply_scenario`.

    ``market``: the transformed bars (a new, validated :class:`MarketData`); ``env_config``: the
    env config with the scenario's settings (a new object); ``window``: bar positions
    ``[start, end)`` covering every bar transform's window (the span itself when the scenario
    has no bar transform: baseline, settings and financing shocks hold for the whole run);
    ``notes``: what was done where it is not obvious (analogue pairs, skipped transforms,
    changed settings).
    """

    market: MarketData
    env_config: BrokerSettings
    window: tuple[int, int]
    notes: tuple[str, ...]


def _place(start: float | str, bars: int, lo: int, hi: int, extent: int, rng: np.random.Generator) -> int:
    """Absolute start bar of a window of ``extent`` bars placed at ``start`` inside ``[lo, hi)``."""
    if start == "random":
        return lo + int(rng.integers(0, hi - lo - extent + 1))
    return lo + int(round(float(start) * (hi - lo)))


def _check_fit(file: str, field: str, a: int, b: int, lo: int, hi: int, bars: int) -> None:
    if bars > hi - lo:
        raise ScenarioError(file, f"{field}.bars", f"window of {bars} bars is longer than the span [{lo}, {hi}) "
                            f"({hi - lo} bars)", "use fewer bars or a longer span")
    if a < lo or b > hi:
        raise ScenarioError(file, f"{field}.start", f"window [{a}, {b}) does not fit in the span [{lo}, {hi})",
                            "start it earlier, shorten it, or use a longer span")


def place_windows(scenario: Scenario, lo: int, hi: int, rng: np.random.Generator) -> list[tuple[int, int] | None]:
    """Absolute ``[start, end)`` of every transform (``None`` for transforms without bars)."""
    file = scenario.path or scenario.name
    shared: tuple[int, int] | None = None
    spec: WindowSpec | None = scenario.window
    if spec is not None:
        inheriting = [t for t in scenario.transforms if isinstance(t, WindowedTransform) and t.start is None]
        extent = max([spec.bars, *[t.offset + t.bars for t in inheriting if t.bars is not None]])
        if extent > hi - lo:
            raise ScenarioError(file, "window.bars", f"the event needs {extent} bars, longer than the span "
                                f"[{lo}, {hi}) ({hi - lo} bars)", "use fewer bars or a longer span")
        a = _place(spec.start, spec.bars, lo, hi, extent, rng)
        shared = (a, a + spec.bars)
        _check_fit(file, "window", a, a + extent, lo, hi, spec.bars)
    out: list[tuple[int, int] | None] = []
    for i, t in enumerate(scenario.transforms):
        if not isinstance(t, WindowedTransform):
            out.append(None)
            continue
        field = f"transforms[{i}]"
        if t.start is None:
            assert shared is not None  # the loader requires a scenario window then
            a = shared[0] + t.offset
            b = a + t.bars if t.bars is not None else shared[1]
        else:
            bars = t.bars if t.bars is not None else scenario.window.bars  # type: ignore[union-attr]
            _check_fit(file, field, lo, lo, lo, hi, t.offset + bars)
            a = _place(t.start, bars, lo, hi, t.offset + bars, rng) + t.offset
            b = a + bars
        _check_fit(file, field, a, b, lo, hi, b - a)
        out.append((a, b))
    return out


def resolve_pairs(scenario: Scenario, market: MarketData) -> tuple[list[tuple[str, ...] | None], list[str]]:
    """The pairs each transform acts on, and notes about substitutions.

    ``"all"``: every pair of the market. A list: the listed pairs; a listed pair missing from
    the market is an error unless the transform says ``analogue: true``. Then, when *none* of
    its pairs is present, it acts on the market's pairs that no transform of the same family
    (spread, liquidity, volatility, price events, correlation) names and that no earlier
    transform of the family took as an analogue — so a replay naming USDJPY and AUDJPY moves a
    EURUSD-only market once, not twice; with no such pair left it is skipped (noted). When some
    are present, it acts on those (the missing ones noted).
    """
    file = scenario.path or scenario.name
    symbols = market.symbols
    named_by_family: dict[str, set[str]] = {}
    for t in scenario.transforms:
        if isinstance(t, WindowedTransform):
            named_by_family.setdefault(t.FAMILY, set()).update(t.named())
    taken: dict[str, set[str]] = {}
    out: list[tuple[str, ...] | None] = []
    notes: list[str] = []
    for i, t in enumerate(scenario.transforms):
        if not isinstance(t, WindowedTransform):
            out.append(None)
            continue
        label = f"transforms[{i}] ({t.kind})"
        if t.pairs == "all":
            out.append(symbols)
            continue
        present = tuple(p for p in t.named() if p in symbols)
        missing = [p for p in t.named() if p not in symbols]
        if missing and not t.analogue:
            raise ScenarioError(file, f"transforms[{i}].pairs", f"{missing[0]} is not in the market (pairs: "
                                f"{', '.join(symbols)})", f"use a market with {missing[0]}, or set analogue: true "
                                "to stress the market's own pairs instead")
        if present:
            if missing:
                notes.append(f"{label}: {', '.join(missing)} not in the market — applied to {', '.join(present)} only")
            out.append(present)
            continue
        used = taken.setdefault(t.FAMILY, set())
        analogues = tuple(s for s in symbols if s not in named_by_family.get(t.FAMILY, set()) and s not in used)
        if analogues:
            used.update(analogues)
            notes.append(f"{label}: {', '.join(missing)} not in the market — applied to {', '.join(analogues)} "
                         "as an analogue")
            out.append(analogues)
        else:
            notes.append(f"{label}: {', '.join(missing)} not in the market and every other pair is already "
                         "stressed by this scenario — skipped")
            out.append(())
    return out, notes


def _check_bars(bars: pd.DataFrame, reference: pd.DataFrame, symbols: Sequence[str], file: str, field: str) -> None:
    """The schema a transform must keep: finite, prices > 0, OHLC ordered, spread/liquidity > 0 where they were."""
    for s in symbols:
        values = {f: bars[(s, f)].to_numpy(np.float64) for f in bars[s].columns}
        problem = None
        if not all(np.isfinite(v).all() for v in values.values()):
            problem = "non-finite values"
        elif min(values[f].min() for f in PRICE_FIELDS) <= 0:
            problem = "a price <= 0"
        elif (values["high"] < np.maximum(values["open"], values["close"])).any() or (
                values["low"] > np.minimum(values["open"], values["close"])).any():
            problem = "high/low outside open/close"
        else:
            for f in ("spread", "liquidity"):
                if f in values and ((values[f] <= 0) & (reference[(s, f)].to_numpy(np.float64) > 0)).any():
                    problem = f"a {f} <= 0"
        if problem:
            raise ScenarioError(file, field, f"produced invalid bars for {s} ({problem})", "use a milder magnitude")


def apply_scenario(scenario: Scenario, market: MarketData, env_config: BrokerSettings, *,
                   span: tuple[int, int] | None = None, rng: np.random.Generator) -> StressedMarket:
    """Apply ``scenario`` to ``market`` and ``env_config``; returns new objects, the inputs untouched.

    ``span``: bar positions ``[lo, hi)`` the stress must fall in (default: the whole market);
    ``rng``: the generator for random starts and resampling (same seed → same result).
    Settings are applied first, then the transforms in file order.
    """
    file = scenario.path or scenario.name
    scenario = scenario.in_bars(bar_hours(market.index))  # durations in the file → bars of this market
    n = len(market)
    lo, hi = (0, n) if span is None else (int(span[0]), int(span[1]))
    if not 0 <= lo < hi <= n:
        raise ScenarioError(file, "span", f"[{lo}, {hi}) is not a span of the market's {n} bars",
                            "pass bar positions with 0 <= lo < hi <= len(market)")
    try:
        config, notes = scenario.settings.apply(env_config)
    except ValueError as err:
        raise ScenarioError(file, "settings", f"gives an invalid env config ({err})", "fix the override") from None
    windows = place_windows(scenario, lo, hi, rng)
    targets, pair_notes = resolve_pairs(scenario, market)
    notes.extend(pair_notes)
    bars = market.bars.copy(deep=True)
    has_liquidity = "liquidity" in market.fields
    used: list[tuple[int, int]] = []
    for i, (t, window, pairs) in enumerate(zip(scenario.transforms, windows, targets, strict=True)):
        field = f"transforms[{i}]"
        if isinstance(t, FinancingTransform):
            try:
                config, fin_notes = t.apply_config(config, market)
            except KeyError as err:
                raise ScenarioError(file, f"{field}.shift_bps", f"no rate for {err.args[0]} to shift",
                                    "set it with rates, or add it to the financing rates") from None
            notes.extend(fin_notes)
            continue
        assert window is not None and pairs is not None
        if not pairs:
            continue
        if isinstance(t, CorrelationBreakTransform) and len(market.symbols) < 2:
            raise ScenarioError(file, f"{field}.kind", f"correlation_break needs at least 2 pairs in the market, "
                                f"got {len(market.symbols)} ({', '.join(market.symbols)})",
                                "use a multi-pair market or leave this scenario out")
        if isinstance(t, CorrelationBreakTransform) and t.mode == "flip" and len(pairs) == len(market.symbols):
            raise ScenarioError(file, f"{field}.pairs", "flipping every pair keeps their correlations",
                                "list the pairs to flip (a subset of the market)")
        if isinstance(t, LiquidityTransform) and not has_liquidity:
            raise ScenarioError(file, f"{field}.kind", "the market has no liquidity field to reduce",
                                "use a source with depth (liquidity), or leave this scenario out")
        if isinstance(t, _EventTransform) and t.liquidity_multiplier != 1.0 and not has_liquidity:
            notes.append(f"{field} ({t.kind}): the market has no liquidity field — liquidity_multiplier ignored")
        if t.kind == "gap" and window[0] < 1:
            raise ScenarioError(file, f"{field}.start", "a gap needs a bar before its window", "start it later")
        before = bars
        bars = t.apply(bars, window, rng, pairs)  # type: ignore[union-attr]
        _check_bars(bars, before, pairs, file, field)
        used.append(window)
    window = (min(a for a, _ in used), max(b for _, b in used)) if used else (lo, hi)
    if market.conversion is not None and used:
        notes.append(f"conversion rates ({', '.join(market.conversion.columns)}) are not stressed: P&L in the "
                     "account currency is translated at the unstressed rates")
    try:
        stressed = MarketData(bars=bars, pairs=market.pairs, source=f"{market.source} [scenario {scenario.name}]",
                              notes=(*market.notes, *(f"scenario {scenario.name}: {x}" for x in notes)),
                              conversion=market.conversion)
    except DataError as err:
        raise ScenarioError(file, "transforms", f"produced invalid bars ({err})", "use milder magnitudes") from None
    return StressedMarket(market=stressed, env_config=config, window=window, notes=tuple(notes))
