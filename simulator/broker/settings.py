"""What a stress scenario may change besides the market: the broker's settings.

Why a protocol: scenarios map (market, broker settings) to (market, broker settings) and must not
depend on the environment package (the data flow runs simulator → scenarios → envs). Any frozen
dataclass that holds these three configs qualifies — ``envs.config.EnvConfig`` does — and a
scenario returns a new one of the same type via ``dataclasses.replace``.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from simulator.broker.account import AccountConfig
from simulator.broker.execution import ExecutionConfig
from simulator.broker.financing import FinancingConfig


class BrokerSettings(Protocol):
    """Execution costs, account rules and financing: the settings a scenario may override."""

    @property
    def execution(self) -> ExecutionConfig: ...

    @property
    def account(self) -> AccountConfig: ...

    @property
    def financing(self) -> FinancingConfig: ...


Settings = TypeVar("Settings", bound=BrokerSettings)
"""The caller's settings type (returned unchanged in kind, with the overrides applied)."""

__all__ = ["BrokerSettings", "Settings"]
