"""The pure core the environment adapts; it never imports gymnasium. One sub-package per concept:

* ``simulator.data`` — market data: the one validated bar schema (``market``, ``pairs``) and its
  sources (the bundled ``sample``, the ECB reference rates ``ecb``, CSV files ``csv_loader`` with the
  close-only rules ``close_only``, ``yahoo``; command-line selection ``sources``), opt-in causal
  ``cleaning``, modelled ``spread_model`` and ``depth`` where the data has none, bar timing and
  trading-time durations (``frequency``), and the data files;
* ``simulator.synthetic`` — the ``generator``, its ``calibration`` to real data and the
  ``planted_edge`` market for learning tests;
* ``simulator.broker`` — ``execution`` and costs, ``account`` and margin, ``financing``, the numpy
  accounting step (``engine``, the reference of the compiled step) and the ``settings`` a scenario
  may change;
* ``simulator.common`` — strict ``configuration`` from YAML, one-line ``errors``, script helpers
  (``cli``) and run folders (``run_folder``).

Evaluation statistics live with their only user, ``agents.evaluation``.
"""

from simulator.common.errors import ConfigError, DataError
from simulator.data.market import MarketData, validate_bars
from simulator.data.pairs import PairSpec, pair_spec

__all__ = ["ConfigError", "DataError", "MarketData", "PairSpec", "pair_spec", "validate_bars"]
