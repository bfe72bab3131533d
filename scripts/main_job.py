#!/usr/bin/env python
"""The main job: the whole FX Risk Gym pipeline on the embedded data (bundled sample, ECB history), in one command.

1. data       the bundled EURUSD 2017 hourly sample, a synthetic series calibrated to it, stylised facts
2. forecasts  EWMA / GARCH family / LSTM-GRU volatility, VaR/ES models and their backtests
3. training   PPO on the sample (60/20/20 by date) with the VaR limit as a shield, as a reward
              penalty and as a PID-Lagrangian constraint; best checkpoint chosen on validation
4. training   PPO on the ECB reference rates (EURUSD, USDJPY, GBPUSD; train 1999-2013,
              validation 2014-2017), one run per training seed (agents/hyperparams/ppo_ecb.yaml)
5. stress     the sample agents and every rule-based baseline x every shipped scenario x seeds
              on the sample's untouched test span (hourly bars: intraday liquidity stress)
6. stress     the ECB agent's training seeds and every baseline x every shipped scenario x seeds
              on the ECB test span (2018 onward; touched only here, never to choose anything)
7. report     per stress run: ranking with bootstrap CIs over training seed x scenario seed,
              paired test of the best agent against the best baseline, deflated Sharpe, plots

Everything goes to one fresh folder runs/main-<UTC time>/ (runs/main-<UTC time>.partial/ while it
runs), with an index.html that links every report, manifest and the TensorBoard commands. Every
path printed is final: it exists when the job ends. The logic is agents/pipeline.py.

Examples:
    python scripts/main_job.py
    python scripts/main_job.py --sample-timesteps 200000 --ecb-timesteps 100000 --train-seeds 0 1 2 3 4
    python scripts/main_job.py --quick          # a smoke run: tiny budgets, a few scenarios, one seed
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.pipeline import ECB_TIMESTEPS, SAMPLE_TIMESTEPS, MainJobConfig, run_main_job  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, int_in, prepare_out, seed_int  # noqa: E402


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample-timesteps", type=int_in(1, 10**9),
                        help=f"PPO timesteps per sample agent (default {SAMPLE_TIMESTEPS:,}; --quick 8,192)")
    parser.add_argument("--ecb-timesteps", type=int_in(1, 10**9),
                        help=f"PPO timesteps per ECB training seed (default {ECB_TIMESTEPS:,}; --quick 8,192)")
    parser.add_argument("--train-seeds", type=seed_int, nargs="+", help="training seeds of the ECB agent "
                        "(default 0 1 2; --quick 0 1)")
    parser.add_argument("--seeds", type=seed_int, nargs="+", help="stress-test scenario seeds (default 0 1 2; "
                        "--quick 0)")
    parser.add_argument("--workers", type=int_in(1, 1024), help="processes (default: the number of cores)")
    parser.add_argument("--no-neural", action="store_true", help="no LSTM/GRU forecasters (--quick implies it)")
    parser.add_argument("--out", type=Path, default=REPO / "runs", help="where run folders go (default runs/)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8,192 timesteps per run, a few scenarios, "
                        "one stress seed, two ECB training seeds, no neural forecasters (about a minute)")
    args = parser.parse_args(argv)
    prepare_out(args.out)
    run_main_job(MainJobConfig(
        runs_root=args.out, sample_timesteps=args.sample_timesteps, ecb_timesteps=args.ecb_timesteps,
        train_seeds=tuple(args.train_seeds) if args.train_seeds else None,
        stress_seeds=tuple(args.seeds) if args.seeds else None, workers=args.workers, quick=args.quick,
        neural=False if args.no_neural else None, argv=tuple(sys.argv if argv is None else ["main_job.py", *argv])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
