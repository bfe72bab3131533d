"""Market data (one validated bar schema, sources, synthetic generator), execution and accounting.

``simulator`` never imports gymnasium: it is the pure core the environment adapts.
"""

from simulator.errors import ConfigError, DataError
from simulator.market import MarketData, validate_bars
from simulator.pairs import PairSpec, pair_spec

__all__ = ["ConfigError", "DataError", "MarketData", "PairSpec", "pair_spec", "validate_bars"]
