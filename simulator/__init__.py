"""The pure core the environment adapts; it never imports gymnasium. Four concepts:

* **market data** — the one validated bar schema (``market``, ``pairs``) and its sources: the
  bundled sample (``sample``), the ECB reference rates (``ecb``), CSV files (``csv_loader``,
  close-only rules in ``close_only``), Yahoo (``yahoo``), command-line source selection
  (``sources``), opt-in causal cleaning (``cleaning``), modelled spread and depth where the data
  has none (``spread_model``, ``depth``), bar length and trading-time durations (``frequency``);
* **synthetic markets** — the generator (``synthetic``), its calibration to real data
  (``calibration``) and the planted-edge market for learning tests (``planted_edge``);
* **the broker** — execution and costs (``execution``), accounting and margin (``account``),
  financing (``financing``), the array step used as reference (``engine``), and the settings a
  scenario may change (``broker_settings``);
* **shared services** — strict configs from YAML (``configuration``), one-line errors
  (``errors``), script error handling (``cli``), run folders (``run_folder``), and the
  evaluation statistics (``metrics``, ``statistics``).
"""

from simulator.errors import ConfigError, DataError
from simulator.market import MarketData, validate_bars
from simulator.pairs import PairSpec, pair_spec

__all__ = ["ConfigError", "DataError", "MarketData", "PairSpec", "pair_spec", "validate_bars"]
