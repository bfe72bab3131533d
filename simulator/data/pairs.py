"""Currency-pair metadata (base, quote, pip size, contract size), read from data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from simulator.common.configuration import safe_load
from simulator.common.errors import DataError

_SYMBOL = re.compile(r"^[A-Z]{3}[A-Z]{3}$")


@dataclass(frozen=True, kw_only=True)
class PairSpec:
    """Conventions of one currency pair.

    ``pip_size`` is in quote currency per unit of base (0.0001 for EURUSD, 0.01 for
    USDJPY); ``contract_size`` is the base-currency units in one standard lot.
    """

    symbol: str
    base: str
    quote: str
    pip_size: float
    contract_size: float = 100_000.0

    def __post_init__(self) -> None:
        if not _SYMBOL.match(self.symbol):
            raise ValueError(f"pair symbol '{self.symbol}' must be six capital letters like EURUSD")
        if self.symbol != self.base + self.quote:
            raise ValueError(f"pair {self.symbol}: base {self.base} + quote {self.quote} does not spell the symbol")
        if not self.pip_size > 0:
            raise ValueError(f"pair {self.symbol}: pip_size must be > 0, got {self.pip_size}")
        if not self.contract_size > 0:
            raise ValueError(f"pair {self.symbol}: contract_size must be > 0, got {self.contract_size}")


@lru_cache(maxsize=1)
def _conventions() -> dict[str, dict]:
    text = resources.files("simulator").joinpath("data/pairs.yaml").read_text(encoding="utf-8")
    return safe_load(text)


def normalise_symbol(symbol: str) -> str:
    """'eur/usd', 'EUR_USD', 'EURUSD=X' → 'EURUSD'."""
    cleaned = re.sub(r"[^A-Za-z]", "", symbol.split("=")[0]).upper()
    return cleaned


def pair_spec(symbol: str) -> PairSpec:
    """Conventions for ``symbol`` from ``simulator/data/pairs.yaml``; unlisted pairs get defaults.

    Loaders use :func:`pair_spec_with_note`, which also says when defaults were used.
    """
    return pair_spec_with_note(symbol)[0]


def pair_spec_with_note(symbol: str) -> tuple[PairSpec, str | None]:
    """Conventions for ``symbol`` and, for a pair not in ``pairs.yaml``, a note naming the defaults used.

    Defaults: pip size by quote currency (``quote_pip_size`` in pairs.yaml, 0.0001 otherwise),
    contract size 100,000 units of base.
    """
    sym = normalise_symbol(symbol)
    if not _SYMBOL.match(sym):
        raise DataError(
            f"'{symbol}' is not a currency pair symbol",
            source="pair metadata",
            hint="use six letters like EURUSD (base then quote currency)",
        )
    table = _conventions()
    known = table.get(sym)
    if known is not None:
        return PairSpec(symbol=sym, **known), None
    base, quote = sym[:3], sym[3:]
    pip = float(table.get("quote_pip_size", {}).get(quote, 0.0001))
    spec = PairSpec(symbol=sym, base=base, quote=quote, pip_size=pip)
    note = (f"{sym}: no metadata in simulator/data/pairs.yaml; defaults used (pip size {pip:g} for quote {quote}, "
            f"contract size {spec.contract_size:,.0f}) — add a line '{sym}: {{base: {base}, quote: {quote}, "
            f"pip_size: ..., contract_size: ...}}' there to set them")
    return spec, note
