"""The scenario file format and its strict loader.

A scenario file (YAML, read with a safe loader that refuses duplicate keys) holds::

    name: snb_2015                  # optional, defaults to the file name; unique in the library
    description: one line           # shown by scripts/stress_test.py --list
    replay: true                    # a historical replay: sources are then required
    sources: [where the magnitudes come from, ...]
    window: {start: random, bars: 4}    # optional default window of the transforms
    settings:                       # optional overrides of simulator settings (absolute values)
      execution: {spread_multiplier: 2.0, max_participation: 0.01, impact_coefficient: 1.0}
      financing: {rates: {CHF: -0.0075}, markup: 0.02}
      account: {max_leverage: 10, stop_out_level: 0.5}
    transforms:                     # applied in order
      - {kind: gap, pairs: [EURCHF], analogue: true, size: -0.29, ...}

Unknown keys are errors; every error is a :class:`~scenarios.errors.ScenarioError` that names
the file and the field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from simulator.broker.settings import BrokerSettings
from scenarios.errors import Invalid, ScenarioError, build
from scenarios.transforms import TRANSFORMS, Transform, WindowedTransform, transform_in_bars
from simulator.common.configuration import load_yaml
from simulator.common.errors import ConfigError
from simulator.data.frequency import duration_hours, to_bars

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_DESCRIPTION = 120


def _optional_number(name: str, value: float | None, *, low: float, inclusive: bool = False,
                     high: float | None = None, hint: str) -> None:
    if value is None:
        return
    if not math.isfinite(value) or (value < low if inclusive else value <= low) or (high is not None and value > high):
        bound = f"{'>=' if inclusive else '>'} {low:g}" + (f" and <= {high:g}" if high is not None else "")
        raise Invalid(name, f"must be {bound}, got {value:g}", hint)


@dataclass(frozen=True, kw_only=True)
class ExecutionSettings:
    """Overrides of :class:`simulator.broker.execution.ExecutionConfig` (``None``: keep the run's value)."""

    spread_multiplier: float | None = None
    max_participation: float | None = None
    impact_coefficient: float | None = None
    slippage_bps: float | None = None
    commission_per_million: float | None = None

    def __post_init__(self) -> None:
        _optional_number("spread_multiplier", self.spread_multiplier, low=0, high=1e3, hint="use a positive factor")
        _optional_number("max_participation", self.max_participation, low=0, high=1.0,
                         hint="give the share of a bar's liquidity one order may take (0..1]")
        for name in ("impact_coefficient", "slippage_bps", "commission_per_million"):
            _optional_number(name, getattr(self, name), low=0, inclusive=True, hint="costs cannot be negative")


@dataclass(frozen=True, kw_only=True)
class FinancingSettings:
    """Overrides of :class:`simulator.broker.financing.FinancingConfig`: ``rates`` (annual fractions by
    currency) replace the named currencies only; ``markup`` replaces the broker markup."""

    rates: dict[str, float] | None = None
    markup: float | None = None

    def __post_init__(self) -> None:
        for key, value in (self.rates or {}).items():
            if not isinstance(key, str) or len(key) != 3 or not key.isalpha() or not key.isupper():
                raise Invalid(f"rates.{key}", "is not a currency code", "use a code like USD")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not -1 < value < 1:
                raise Invalid(f"rates.{key}", f"expected an annual fraction in (-1, 1), got {value!r}",
                              "give an annual fraction like 0.05")
        _optional_number("markup", self.markup, low=0, inclusive=True, hint="give an annual fraction like 0.01")


@dataclass(frozen=True, kw_only=True)
class AccountSettings:
    """Overrides of :class:`simulator.broker.account.AccountConfig`."""

    max_leverage: float | None = None
    margin_call_level: float | None = None
    stop_out_level: float | None = None

    def __post_init__(self) -> None:
        _optional_number("max_leverage", self.max_leverage, low=0, high=1e6, hint="give a positive number")
        for name in ("margin_call_level", "stop_out_level"):
            _optional_number(name, getattr(self, name), low=0, hint="give a positive number")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Overrides of simulator settings for the whole run (absolute values, not factors)."""

    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    financing: FinancingSettings = field(default_factory=FinancingSettings)
    account: AccountSettings = field(default_factory=AccountSettings)

    @property
    def empty(self) -> bool:
        return self == Settings()

    def apply(self, config: BrokerSettings) -> tuple[BrokerSettings, list[str]]:
        """A new :class:`BrokerSettings` with the overrides (raises ``ValueError`` when the result is invalid)."""
        notes: list[str] = []

        def overridden(group: Any, current: Any, name: str) -> dict:
            values = {k: v for k, v in vars(group).items() if v is not None}
            for k, v in values.items():
                notes.append(f"settings: {name}.{k} {getattr(current, k)} → {v}")
            return values

        execution = replace(config.execution, **overridden(self.execution, config.execution, "execution"))
        account = replace(config.account, **overridden(self.account, config.account, "account"))
        rates = dict(config.financing.rates)
        for cur, rate in (self.financing.rates or {}).items():
            notes.append(f"settings: financing.rates.{cur} {rates.get(cur)} → {rate}")
            rates[cur] = float(rate)
        markup = config.financing.markup
        if self.financing.markup is not None:
            notes.append(f"settings: financing.markup {markup} → {self.financing.markup}")
            markup = float(self.financing.markup)
        financing = replace(config.financing, rates=rates, markup=markup)
        return replace(config, execution=execution, account=account, financing=financing), notes


@dataclass(frozen=True, kw_only=True)
class WindowSpec:
    """The scenario's default window: ``start`` (fraction of the span, or ``"random"``) and ``bars``."""

    start: float | str
    bars: int | str

    def __post_init__(self) -> None:
        start = self.start
        if isinstance(start, bool) or not isinstance(start, (int, float, str)) or (
                isinstance(start, str) and start != "random"):
            raise Invalid("start", f"expected a fraction of the span or \"random\", got {start!r}",
                          "e.g. start: 0.25 or start: random")
        if not isinstance(start, str):
            if not (math.isfinite(start) and 0 <= start <= 1):
                raise Invalid("start", f"must be in [0, 1], got {start:g}",
                              "give the window start as a fraction of the span (0..1) or random")
            object.__setattr__(self, "start", float(start))
        if isinstance(self.bars, str):
            try:
                duration_hours(self.bars, key="bars")
            except ConfigError:
                raise Invalid("bars", f"{self.bars!r} is not a number of bars or a duration",
                              "write bars (e.g. 120) or a duration: 36h, 5D, 1W, 1M") from None
        elif isinstance(self.bars, bool) or not isinstance(self.bars, int) or self.bars < 1:
            raise Invalid("bars", f"must be an integer >= 1, got {self.bars!r}", "give the window length in bars")


@dataclass(frozen=True, kw_only=True)
class _ScenarioFile:
    """The top level of a scenario file, before the nested parts are built."""

    name: str | None = None
    description: str
    replay: bool = False
    sources: tuple[str, ...] = ()
    window: Any = None
    settings: Any = None
    transforms: Any = None

    def __post_init__(self) -> None:
        if self.name is not None and not _NAME.match(self.name):
            raise Invalid("name", f"{self.name!r} is not a valid scenario name",
                          "use letters, digits, '_', '-' or '.' (e.g. snb_2015)")
        text = self.description.strip()
        if not text:
            raise Invalid("description", "is empty", "describe the scenario in one line")
        if "\n" in text:
            raise Invalid("description", f"must be one line, got {len(text.splitlines())} lines",
                          "shorten it; put details in comments")
        if len(text) > MAX_DESCRIPTION:
            raise Invalid("description", f"is {len(text)} characters long",
                          f"keep it under {MAX_DESCRIPTION} characters; put details in comments")
        for i, src in enumerate(self.sources):
            if not src.strip():
                raise Invalid(f"sources[{i}]", "is empty", "name the publication or drop the entry")
        if self.replay and not self.sources:
            raise Invalid("sources", "a historical replay needs its sources",
                          "list where the magnitudes come from (see REFERENCES.md)")


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A loaded scenario: transforms of the market and overrides of the simulator settings.

    ``sources`` are required (non-empty) for historical replays (``replay: true``); ``path`` is
    the file it came from; ``window`` the default window of its transforms (``None``: each
    transform gives its own).
    """

    name: str
    description: str
    transforms: tuple[Transform, ...] = ()
    settings: Settings = field(default_factory=Settings)
    sources: tuple[str, ...] = ()
    path: str = ""
    replay: bool = False
    window: WindowSpec | None = None

    def in_bars(self, hours_per_bar: float) -> Scenario:
        """This scenario with every duration (window lengths, offsets, recovery) in bars at ``hours_per_bar``.

        Why: scenario files state events in trading time ("one week of spreads × 10"), so one
        file means the same event on hourly and daily bars; checks that compare lengths run here.
        """
        file = self.path or self.name
        transforms = []
        for i, t in enumerate(self.transforms):
            try:
                transforms.append(transform_in_bars(t, hours_per_bar))
            except Invalid as err:
                raise ScenarioError(file, f"transforms[{i}].{err.field}", err.problem, err.hint) from None
        window = self.window
        if window is not None and isinstance(window.bars, str):
            # The shared window holds every event that inherits it (see transform_in_bars).
            need = max([1] + [t.offset + t.min_length() for t in transforms
                              if isinstance(t, WindowedTransform) and t.bars is None])
            window = replace(window, bars=max(to_bars(window.bars, hours_per_bar, key="window.bars"), need))
        _check_windows(transforms, window, file)
        return replace(self, transforms=tuple(transforms), window=window)


def parse_scenario(data: Any, *, file: str, default_name: str) -> Scenario:
    """Build a :class:`Scenario` from the parsed YAML of ``file``, strictly."""
    if data is None:
        raise ScenarioError(file, "<root>", "the file is empty",
                            "write a mapping with name, description and transforms")
    if not isinstance(data, dict):
        raise ScenarioError(file, "<root>", f"expected a mapping, got {type(data).__name__}",
                            "write a mapping with name, description and transforms")
    top = build(_ScenarioFile, data, file=file, path="")
    window = None if top.window is None else build(WindowSpec, top.window, file=file, path="window")
    settings = _parse_settings(top.settings, file)
    raw = top.transforms if top.transforms is not None else []
    if not isinstance(raw, list):
        raise ScenarioError(file, "transforms", f"expected a list, got {type(raw).__name__}",
                            "write a list of transforms, each with a kind")
    transforms = []
    for i, item in enumerate(raw):
        path = f"transforms[{i}]"
        if not isinstance(item, dict):
            raise ScenarioError(file, path, f"expected a mapping, got {type(item).__name__}",
                                "write each transform as a mapping with a kind")
        kind = item.get("kind")
        if kind is None:
            raise ScenarioError(file, f"{path}.kind", "missing", f"name one of: {', '.join(sorted(TRANSFORMS))}")
        if kind not in TRANSFORMS:
            raise ScenarioError(file, f"{path}.kind", f"unknown transform {kind!r}",
                                f"known kinds: {', '.join(sorted(TRANSFORMS))}")
        transforms.append(build(TRANSFORMS[kind], item, file=file, path=path))
    _check_windows(transforms, window, file)
    return Scenario(name=top.name or default_name, description=top.description.strip(),
                    transforms=tuple(transforms), settings=settings, sources=top.sources, path=file,
                    replay=top.replay, window=window)


def _check_windows(transforms: list[Transform], window: WindowSpec | None, file: str) -> None:
    """Every windowed transform has a start and a length that holds its event (run again once in bars)."""
    for i, transform in enumerate(transforms):
        path = f"transforms[{i}]"
        if not isinstance(transform, WindowedTransform):
            continue
        if transform.start is None and window is None:
            raise ScenarioError(file, f"{path}.start", "missing", "give start and bars here or a scenario-level window")
        if transform.bars is not None:
            continue
        if window is None:
            raise ScenarioError(file, f"{path}.bars", "missing", "give start and bars here or a scenario-level window")
        if isinstance(window.bars, str) or not transform.resolved():
            continue  # durations: checked once converted to the market's bars
        length = window.bars - transform.offset if transform.start is None else window.bars
        if length < 1:
            raise ScenarioError(file, f"{path}.offset", f"offset {transform.offset} leaves no bar of the "
                                f"{window.bars}-bar window", "lower the offset or give bars")
        try:
            transform.check_length(length)
        except Invalid as err:
            raise ScenarioError(file, f"{path}.bars", err.problem, err.hint) from None


def _parse_settings(data: Any, file: str) -> Settings:
    if data is None:
        return Settings()
    if not isinstance(data, dict):
        raise ScenarioError(file, "settings", f"expected a mapping, got {type(data).__name__}",
                            "write settings: {execution: {...}, financing: {...}, account: {...}}")
    groups = {"execution": ExecutionSettings, "financing": FinancingSettings, "account": AccountSettings}
    unknown = sorted(set(data) - set(groups))
    if unknown:
        raise ScenarioError(file, f"settings.{unknown[0]}", "unknown key", f"valid keys: {', '.join(groups)}")
    return Settings(**{name: build(cls, data.get(name), file=file, path=f"settings.{name}")
                       for name, cls in groups.items()})


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate one scenario file (YAML); every problem is a one-line :class:`ScenarioError`."""
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise ScenarioError(file, "<root>", "no such scenario file", "check the path, or give a library name")
    try:
        data = load_yaml(path)
    except ConfigError as err:
        # load_yaml says "<file>, line N: problem — hint" (or "<file>: problem — hint").
        text = str(err)
        text = text[len(file):].lstrip(",: ") if text.startswith(file) else text
        where, sep, rest = text.partition(": ")
        if not (sep and where.startswith("line")):
            where, rest = "<root>", text
        problem, _, hint = rest.partition(" — ")
        raise ScenarioError(file, where, problem.strip() or "invalid YAML", hint.strip() or "fix the YAML syntax") from None
    return parse_scenario(data, file=file, default_name=path.stem)
