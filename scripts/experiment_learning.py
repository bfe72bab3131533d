#!/usr/bin/env python
"""Proof of learning, with the test span touched once (issue #12 item 7).

``--part planted`` (item 7a): on the planted regime market (simulator/synthetic/planted_edge.py at
the issue's strength, settings in agents/hyperparams/ppo_learning_planted.yaml), per seed: the market
drawn with ``data_seed = seed``, split by date 60/20/20; PPO in residual mode on vol_target trained
on the training span (best checkpoint chosen on validation); the constant-mean-action ablation (the
agent's mean action over the validation span); then, once, PPO, the ablation and every baseline
(exposure mode, same costs, band and limit) over the test span. Writes results.csv and report.md
(per seed: Sharpe with a 95% block-bootstrap CI, return, max drawdown, turnover, costs; paired
Sharpe differences PPO − vol_target and PPO − ablation with p-values; the summary counts) to
runs/experiment-learning-<UTC time>/. Exit status 0 when the claim holds (PPO >= vol_target on
>= 4 of 5 seeds and beats its ablation, paired p < 0.05, on >= 4 of 5), 1 when it does not.

``--part ecb`` (item 7b): ECB daily history (train 1999-2013, validation 2014-2017, test 2018-) on
EURUSD, USDJPY, GBPUSD, EURCHF and the three-pair market; shield PPO (ppo_ecb.yaml) and constrained
PPO (ppo_ecb_constrained.yaml) per training seed, each against its constant-action ablation (paired,
on validation), every baseline in the exposure twin of each agent's env, and flat; the test span once
at the end. Writes runs/experiment-learning-ecb-<UTC time>/ results.csv and report.md. Exit status 0
when constrained PPO meets the targets on every market (no stop-out, time over the limit within 1%
of bars, Kupiec not rejected at 5% on test; differs from its ablation, p < 0.05, on >= 4 of 5 seeds).

``--part oracle`` (item 7a's ceiling, validation only, no training): per seed, vol_target sized by
the planted market's hidden regime (x2 calm / x0.25 turbulent, and x4 / x0), against its own
constant ablation and vol_target, paired on the same bars (agents.learning_experiment.
regime_oracle_experiment); ``--oracle-bars`` draws the markets longer. Writes
runs/experiment-oracle-<UTC time>/. The test span is never run.

``--part choose`` (item 4, the agents' default): every candidate of
agents.learning_experiment.DEFAULT_CANDIDATES (the reward: log return, mean-variance, differential
Sharpe; residual actions) through item 7b's protocol on train and validation only; the rule
(agents.learning_experiment.choose_default) picks one. Writes choice.csv and choice.md beside the
experiment's tables. The test span is never run.

Example:
    python scripts/experiment_learning.py --part planted                    # seeds 0-4, the YAML's budget
    python scripts/experiment_learning.py --part planted --seeds 0 1 --no-test   # tuning: validation only
    python scripts/experiment_learning.py --part ecb --timesteps 32768      # item 7b: 5 markets x 2 agents x 5 seeds
    python scripts/experiment_learning.py --part choose --timesteps 32768 --seeds 0 1 2   # the default, on validation
    python scripts/experiment_learning.py --part oracle                     # what sizing by the regime can earn
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.learning_experiment import (  # noqa: E402
    ECB_MARKETS,
    choose_ecb_defaults,
    ecb_experiment,
    planted_experiment,
    regime_oracle_experiment,
)
from agents.hyperparams import HYPERPARAMS_DIR, TrainConfig  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, prepare_out, seed_int  # noqa: E402

CONFIG = HYPERPARAMS_DIR / "ppo_learning_planted.yaml"
ECB_CONFIGS = {"shield": HYPERPARAMS_DIR / "ppo_ecb.yaml", "constrained": HYPERPARAMS_DIR / "ppo_ecb_constrained.yaml"}


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("planted", "ecb", "choose", "oracle"), default="planted",
                        help="which proof: planted (item 7a), ecb (item 7b, real history), choose (the default), "
                             "oracle (item 7a's ceiling)")
    parser.add_argument("--seeds", type=seed_int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--timesteps", type=int, help="override total_timesteps per seed")
    parser.add_argument("--config", type=Path, help=f"planted, oracle: the training YAML (default {CONFIG.name})")
    parser.add_argument("--shield-config", type=Path, default=ECB_CONFIGS["shield"], help="ecb: shield PPO's YAML")
    parser.add_argument("--constrained-config", type=Path, default=ECB_CONFIGS["constrained"],
                        help="ecb: constrained PPO's YAML")
    parser.add_argument("--markets", nargs="+", choices=tuple(ECB_MARKETS), default=list(ECB_MARKETS),
                        help="ecb: which markets (default all five)")
    parser.add_argument("--no-test", action="store_true",
                        help="validation only: the test span is never run (for choosing settings)")
    parser.add_argument("--oracle-bars", type=int, help="oracle: bars a market (default the YAML's n_bars)")
    parser.add_argument("--out", type=Path, default=REPO / "runs")
    args = parser.parse_args(argv)
    if args.timesteps is not None and args.timesteps < 1:
        parser.error(f"--timesteps must be >= 1, got {args.timesteps}")
    if args.oracle_bars is not None and args.oracle_bars < 1000:
        parser.error(f"--oracle-bars must be >= 1000, got {args.oracle_bars}")
    prepare_out(args.out)
    script_argv = sys.argv if argv is None else ["experiment_learning.py", *argv]
    if args.part == "choose":
        agents = {"shield": TrainConfig.from_yaml(args.shield_config),
                  "constrained": TrainConfig.from_yaml(args.constrained_config)}
        choose_ecb_defaults(agents, args.seeds, out=args.out, timesteps=args.timesteps,
                            markets={m: ECB_MARKETS[m] for m in args.markets}, argv=script_argv)
        return 0
    if args.part == "ecb":
        agents = {"shield": TrainConfig.from_yaml(args.shield_config),
                  "constrained": TrainConfig.from_yaml(args.constrained_config)}
        result = ecb_experiment(agents, args.seeds, out=args.out, timesteps=args.timesteps, test=not args.no_test,
                                markets={m: ECB_MARKETS[m] for m in args.markets}, argv=script_argv)
        return 0 if result.passed else 1
    base = TrainConfig.from_yaml(args.config or CONFIG)
    if args.part == "oracle":
        regime_oracle_experiment(base, args.seeds, out=args.out, n_bars=args.oracle_bars, argv=script_argv)
        return 0
    need = max(1, round(0.8 * len(args.seeds)))  # the 4 of 5
    result = planted_experiment(base, args.seeds, out=args.out, timesteps=args.timesteps, test=not args.no_test,
                                need=need, argv=script_argv)
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
