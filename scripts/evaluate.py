#!/usr/bin/env python
"""Evaluate a trained agent or a rule-based baseline on the test split, deterministically.

The market, split and environment come from a training run's config.yaml (``--model RUN_DIR``)
or a training YAML (``--config``, default agents/hyperparams/ppo_default.yaml). One episode
runs over the whole split (no random start). Writes steps.csv (per step: equity, positions,
VaR and its limit and utilisation, costs, fills, margin) and summary.csv / summary.yaml
(return, volatility, Sharpe, Sortino, drawdown, CVaR, VaR exceptions, breach rate, costs,
turnover) to a fresh folder runs/evaluate-<policy>-<UTC time>/.

Examples:
    python scripts/evaluate.py --model runs/train-ppo-sample-20261201-120000
    python scripts/evaluate.py --model runs/train-ppo-sample-20261201-120000/model.zip --split validation
    python scripts/evaluate.py --baseline vol_target
    python scripts/evaluate.py --baseline fixed_fraction --param leverage=2 --config agents/hyperparams/ppo_planted_edge.yaml
    python scripts/evaluate.py --baseline vol_target --config agents/hyperparams/ppo_ecb.yaml   # test from 2018
    python scripts/evaluate.py --baseline vol_target --source ecb --symbols EURCHF --train-end 2013-12-31 \
        --validation-end 2017-12-31 --config agents/hyperparams/ppo_ecb.yaml
    python scripts/evaluate.py --model runs/train-ppo-sample-s0-<time> --model runs/train-ppo-sample-s1-<time>
    python scripts/evaluate.py --list-baselines
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.baselines import BASELINES  # noqa: E402
from agents.evaluation.single_run import evaluate_policy, evaluation_lines  # noqa: E402
from agents.hyperparams import add_data_arguments, with_data_arguments  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, prepare_out  # noqa: E402
from simulator.common.errors import ConfigError, DataError  # noqa: E402


def parse_params(items: list[str]) -> dict[str, int | float | str]:
    """``NAME=VALUE`` baseline parameters: integers, then numbers, else text."""
    out: dict[str, int | float | str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {item!r}: expected NAME=VALUE, e.g. --param leverage=2")
        for kind in (int, float):  # atr_window=14 is an integer, leverage=2.5 a float
            try:
                out[key] = kind(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--model", type=Path, action="append",
                     help="training run folder (uses best_model.zip) or a model .zip; repeat it for a seed "
                          "ensemble (the median of the models' actions; same env config)")
    who.add_argument("--baseline", choices=sorted(BASELINES), help="a rule-based sizing baseline")
    who.add_argument("--list-baselines", action="store_true", help="list the baselines and exit")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="baseline parameter (repeatable)")
    parser.add_argument("--config", type=Path, help="training YAML naming data and env (default: the model's run "
                        "config, else agents/hyperparams/ppo_default.yaml)")
    parser.add_argument("--split", choices=("test", "validation", "train"), default="test")
    parser.add_argument("--out", type=Path, default=REPO / "runs", help="where run folders go (default runs/)")
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    if args.list_baselines:
        for name, cls in sorted(BASELINES.items()):
            print(f"{name:18s} {(cls.__doc__ or '').strip().splitlines()[0]}")
        return 0
    if args.model is None and args.baseline is None:
        parser.error("give --model RUN_DIR or --baseline NAME (see --list-baselines)")
    prepare_out(args.out)
    try:
        done = evaluate_policy(models=args.model or (), baseline=args.baseline, params=parse_params(args.param),
                               config=args.config, split=args.split, runs_root=args.out,
                               adjust=lambda config: with_data_arguments(config, args),
                               argv=sys.argv if argv is None else ["evaluate.py", *argv])
    except (ConfigError, DataError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(evaluation_lines(done)))
    print(f"run folder: {done.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
