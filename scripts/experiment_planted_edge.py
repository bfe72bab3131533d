#!/usr/bin/env python
"""Learning is shown, not assumed: PPO against the rule-based baselines on a planted sizing edge.

For each seed: a planted-edge market (simulator/synthetic/planted_edge.py: trends in the calm regime,
mean reversion in the turbulent one, drawn with ``data_seed = seed``) is split by date
60/20/20; PPO trains on the training span (agents/hyperparams/ppo_planted_edge.yaml, its
best model chosen on the validation span), then — once, at the end — PPO and every
baseline run deterministically over the untouched test span. Reported per seed: test
Sharpe with a block-bootstrap 95% CI, return, drawdown, and the paired bootstrap of the
Sharpe difference PPO − fixed_fraction. The claim holds when PPO's test Sharpe beats
fixed_fraction's on every seed. Writes results.csv, report.md and one training run folder
per seed to runs/experiment-planted-edge-<UTC time>/.

Example:
    python scripts/experiment_planted_edge.py                  # seeds 0 1 2, 200,000 steps each
    python scripts/experiment_planted_edge.py --seeds 0 1 2 3 --timesteps 300000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.experiments import PLANTED_EDGE_CONFIG, planted_edge_experiment  # noqa: E402
from agents.hyperparams import TrainConfig  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, prepare_out, seed_int  # noqa: E402


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=seed_int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, help="override total_timesteps per seed")
    parser.add_argument("--config", type=Path, default=PLANTED_EDGE_CONFIG)
    parser.add_argument("--out", type=Path, default=REPO / "runs")
    args = parser.parse_args(argv)
    prepare_out(args.out)
    result = planted_edge_experiment(TrainConfig.from_yaml(args.config), args.seeds, timesteps=args.timesteps,
                                     runs_root=args.out,
                                     argv=sys.argv if argv is None else ["experiment_planted_edge.py", *argv])
    print(result.verdict)
    print(f"run folder: {result.path}")
    return 0 if result.holds else 1


if __name__ == "__main__":
    raise SystemExit(main())
