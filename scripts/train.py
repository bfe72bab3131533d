#!/usr/bin/env python
"""Train a PPO (or constrained PPO) position-sizing agent on a walk-forward split.

Without arguments: agents/hyperparams/ppo_default.yaml (bundled EURUSD 2017 sample, sizing
mode under a 1% VaR shield, 200,000 timesteps over 32 parallel accounts). Each run gets a
fresh folder runs/train-<name>-<UTC time>/ (``.partial`` until it finishes) with the resolved
config, command line, git revision, library versions, TensorBoard logs, checkpoints, the
best model on the validation split, the final model, normalisation statistics and metrics.

Watch it:   tensorboard --logdir runs/
Killed?     python scripts/train.py --resume runs/train-<name>-<time>.partial

Examples:
    python scripts/train.py
    python scripts/train.py --config agents/hyperparams/ppo_constrained.yaml
    python scripts/train.py --config agents/hyperparams/ppo_planted_edge.yaml --seed 1 --timesteps 300000
    python scripts/train.py --config agents/hyperparams/ppo_ecb.yaml --timesteps 4096
    python scripts/train.py --seeds 0 1 2 3 4          # five training seeds, one run folder each
    python scripts/train.py --seeds 0 1 2 3 --n-jobs 2  # two at a time in worker processes
    python scripts/train.py --seeds 0 1 2 3 --n-jobs 4 --backend ray   # as Ray tasks (local Ray of 4 CPUs)
    python scripts/train.py --source ecb --symbols EURUSD USDJPY GBPUSD --train-end 2013-12-31 \
        --validation-end 2017-12-31 --config agents/hyperparams/ppo_ecb.yaml
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.grid import BACKENDS, train_seeds  # noqa: E402
from agents.hyperparams import DEFAULT_CONFIG, TrainConfig, add_data_arguments, with_data_arguments  # noqa: E402
from agents.training import resume, train, with_overrides  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, int_in, prepare_out, seed_int  # noqa: E402
from simulator.common.errors import ConfigError, DataError  # noqa: E402


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help=f"training YAML (default {DEFAULT_CONFIG.relative_to(REPO)})")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue a killed run from its last checkpoint (other options are ignored)")
    parser.add_argument("--timesteps", type=int, help="override total_timesteps")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=seed_int, help="override seed")
    seeds.add_argument("--seeds", type=seed_int, nargs="+", metavar="SEED",
                       help="train one run per seed (runs named <name>-s<seed>), --n-jobs at a time")
    parser.add_argument("--n-jobs", type=int_in(1, 1024), default=1,
                        help="--seeds: runs at a time (worker processes or Ray CPUs; default 1)")
    parser.add_argument("--backend", choices=BACKENDS, default="process", help="--seeds: process (default) or ray")
    parser.add_argument("--ray-address", help="--backend ray: an existing Ray cluster (default: a local Ray)")
    parser.add_argument("--n-envs", type=int, help="override n_envs (parallel accounts)")
    parser.add_argument("--name", help="override the run name")
    parser.add_argument("--lagrangian", choices=("plain", "pid"),
                        help="override lagrange.method of a constrained config (plain ascent or PID Lagrangian)")
    parser.add_argument("--out", type=Path, default=REPO / "runs", help="where run folders go (default runs/)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    if not args.seeds and (args.n_jobs != 1 or args.backend != "process" or args.ray_address):
        raise ConfigError("--n-jobs, --backend and --ray-address apply to --seeds (several runs) only")
    if args.resume is None:
        prepare_out(args.out)
    try:
        if args.resume is not None:
            path = resume(args.resume, progress=not args.no_progress)
        else:
            config = with_overrides(TrainConfig.from_yaml(args.config), total_timesteps=args.timesteps,
                                    seed=args.seed, n_envs=args.n_envs, name=args.name)
            config = with_data_arguments(config, args)
            if args.lagrangian is not None:
                if not config.lagrange.enabled:
                    raise ConfigError(f"--lagrangian: {args.config} is not a constrained config (lagrange.enabled is "
                                      "false) — use e.g. agents/hyperparams/ppo_constrained.yaml")
                config = replace(config, lagrange=replace(config.lagrange, method=args.lagrangian))
            command = sys.argv if argv is None else ["train.py", *argv]
            if args.seeds:
                paths = train_seeds(config, args.seeds, runs_root=args.out, n_jobs=args.n_jobs, backend=args.backend,
                                    ray_address=args.ray_address, argv=command, progress=not args.no_progress)
                print(seed_table(paths))
                for p in paths:
                    print(f"run folder: {p}")
                print(f"tensorboard --logdir {args.out}")
                print("seed ensemble (median action): python scripts/evaluate.py "
                      + " ".join(f"--model {p}" for p in paths))
                return 0
            path = train(config, runs_root=args.out, argv=command, progress=not args.no_progress)
    except (ConfigError, DataError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"run folder: {path}")
    print(f"tensorboard --logdir {path / 'tensorboard'}")
    return 0


def seed_table(paths: list[Path]) -> str:
    """Validation results of the seeds side by side: the kept checkpoint and its figures, per seed."""
    from agents.report.training_curves import training_summary

    lines = ["seed  kept checkpoint          validation Sharpe  (final)"]
    for p in paths:
        s = training_summary(p)
        kept = "none eligible" if s["best_step"] is None else f"step {s['best_step']:,}"
        lines.append(f"{str(s['seed']):>4}  {kept:<24} {s['best_validation_sharpe']:>17.2f}  "
                     f"({s['final_validation_sharpe']:.2f})")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
