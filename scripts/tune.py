#!/usr/bin/env python
"""Search hyperparameters of a training YAML with Optuna, scored on the validation span by the selection rule.

Each trial trains the config with sampled values (search space: agents/hyperparams/search/default.yaml,
or --search FILE) and is worth the validation objective of the checkpoint the selection rule keeps
(the test span is never run; a trial with no eligible checkpoint is worth -1e9). The pruner may stop a
trial at each periodic validation. Results go to a fresh folder runs/tune-<study>-<UTC time>/:
trials.csv, best.yaml (a ready training YAML), summary.yaml, study.journal, trials/.

Watch it:   optuna-dashboard runs/tune-<study>-<time>/study.journal
Share it:   --storage study.journal (processes or machines that see the file join one study)

Examples:
    python scripts/tune.py --config agents/hyperparams/ppo_planted_edge.yaml --n-trials 12 --timesteps 8192
    python scripts/tune.py --sampler random --pruner none --n-trials 20 --n-jobs 2 --seed 0
    python scripts/tune.py --storage study.journal --study-name eurusd --n-trials 50     # run on several machines
    python scripts/tune.py --storage study.journal --study-name eurusd --trial-id 7      # retrain trial 7
    python scripts/tune.py --backend ray --n-jobs 4 --n-trials 40                        # a local Ray of 4 CPUs
    python scripts/tune.py --backend ray --ray-address 10.0.0.1:6379 --n-jobs 16          # an existing cluster
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.grid import BACKENDS  # noqa: E402
from agents.hyperparams import DEFAULT_CONFIG, TrainConfig, add_data_arguments, with_data_arguments  # noqa: E402
from agents.training import with_overrides  # noqa: E402
from agents.tuning import DEFAULT_SEARCH, PRUNERS, SAMPLERS, load_search, retrain, tune  # noqa: E402
from simulator.common.cli import ArgumentParser, finite_float, guard, int_in, prepare_out, seed_int  # noqa: E402
from simulator.common.errors import ConfigError  # noqa: E402


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help=f"training YAML (default {DEFAULT_CONFIG.relative_to(REPO)})")
    parser.add_argument("--search", type=Path, default=DEFAULT_SEARCH,
                        help=f"search space YAML (default {DEFAULT_SEARCH.relative_to(REPO)})")
    parser.add_argument("--n-trials", type=int_in(1, 100_000), default=20, help="trials to add to the study (default 20)")
    parser.add_argument("--n-jobs", type=int_in(1, 1024), default=1,
                        help="trials at a time: worker processes, or Ray CPUs (default 1)")
    parser.add_argument("--sampler", choices=SAMPLERS, help="override the search YAML's sampler")
    parser.add_argument("--pruner", choices=PRUNERS, help="override the search YAML's pruner")
    parser.add_argument("--storage", type=Path, help="Optuna journal file shared by processes or machines "
                        "(default: study.journal in the run folder)")
    parser.add_argument("--study-name", help="study name (default: the config's name)")
    parser.add_argument("--timeout", type=finite_float(0, open_low=True), help="stop starting trials after "
                        "this many seconds")
    parser.add_argument("--seed", type=seed_int, help="seed of the sampler (trials train with the config's seed)")
    parser.add_argument("--trial-id", type=int_in(0, 10**9), help="retrain this trial of --storage/--study-name "
                        "from its stored params, then stop")
    parser.add_argument("--backend", choices=BACKENDS, default="process", help="process (default) or ray")
    parser.add_argument("--ray-address", help="address of an existing Ray cluster (default: start a local Ray)")
    parser.add_argument("--restore", type=Path, metavar="RAY_DIR",
                        help="resume an interrupted --backend ray study (its run folder's ray/<study>)")
    parser.add_argument("--timesteps", type=int_in(1, 10**12), help="override total_timesteps of every trial")
    parser.add_argument("--eval-every", type=int_in(1, 10**12), help="override eval_every (validation cadence)")
    parser.add_argument("--n-envs", type=int_in(1, 4096), help="override n_envs")
    parser.add_argument("--out", type=Path, default=REPO / "runs", help="where run folders go (default runs/)")
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    prepare_out(args.out)
    command = sys.argv if argv is None else ["tune.py", *argv]
    if args.trial_id is not None:
        if args.storage is None or args.study_name is None:
            raise ConfigError("--trial-id needs --storage (the study's journal file) and --study-name")
        path = retrain(args.storage, args.study_name, args.trial_id, out=args.out, total_timesteps=args.timesteps,
                       argv=command)
        print(f"run folder: {path}")
        return 0
    if args.backend != "ray" and (args.ray_address or args.restore):
        raise ConfigError("--ray-address and --restore apply to --backend ray only")
    config = with_overrides(TrainConfig.from_yaml(args.config), total_timesteps=args.timesteps,
                            eval_every=args.eval_every, n_envs=args.n_envs)
    config = with_data_arguments(config, args)
    search = load_search(args.search, sampler=args.sampler, pruner=args.pruner)
    tune(config, search, out=args.out, study_name=args.study_name, storage=args.storage, n_trials=args.n_trials,
         n_jobs=args.n_jobs, seed=args.seed, timeout=args.timeout, backend=args.backend,
         ray_address=args.ray_address, restore=args.restore, argv=command, search_source=str(args.search))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
