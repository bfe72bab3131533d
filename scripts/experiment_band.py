#!/usr/bin/env python
"""Choose the default no-trade band on the validation span, never the test span.

Every rule-based baseline (the same band for all) on each market of the ECB history — EURUSD,
USDJPY, GBPUSD, EURCHF and the three-pair EURUSD/USDJPY/GBPUSD market, train 1999-2013,
validation 2014-2017 (agents/hyperparams/ppo_ecb.yaml) — at each candidate band, on the
validation span. The rule: the band with the highest median validation Sharpe ratio over
(market, baseline); a smaller band wins a tie within 0.01. Prints the table and writes
``band_validation.csv`` and ``choice.yaml`` to a fresh run folder.

    python scripts/experiment_band.py                    # about two minutes on 2 cores
    python scripts/experiment_band.py --bands 0 0.1 0.2  # other candidates
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.experiments import BAND_CONFIG, BANDS, band_experiment  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, prepare_out  # noqa: E402


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bands", type=float, nargs="+", default=list(BANDS), help="candidate bands")
    parser.add_argument("--config", type=Path, default=BAND_CONFIG, help="training YAML naming the data and the env")
    parser.add_argument("--out", type=Path, default=REPO / "runs", help="where run folders go (default runs/)")
    args = parser.parse_args(argv)
    prepare_out(args.out)
    choice = band_experiment(args.config, args.bands, runs_root=args.out,
                             argv=sys.argv if argv is None else ["experiment_band.py", *argv])
    print(f"run folder: {choice.path}")
    return 0 if np.isfinite(choice.chosen) else 1


if __name__ == "__main__":
    raise SystemExit(main())
