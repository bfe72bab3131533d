#!/usr/bin/env python
"""Run sizing policies through liquidity stress scenarios: policies × scenarios × seeds.

Every policy (trained models given with --model, and the rule-based baselines) runs
deterministically over the test split of each stressed market; the scenario is applied to a
copy of the market (the seed places random stress windows and draws the scenario's own
randomness). Cells run in parallel on the available cores. Each cell writes its per-step
records and metrics to a fresh run folder runs/stress-<UTC time>/ (``.partial`` until all
cells finish); results.csv is the tidy table (one row per policy, scenario and seed: return,
volatility, Sharpe, Sortino, max drawdown, CVaR 95%, worst bar, VaR exceptions versus
nominal, time over the limit, margin calls, stop-outs, turnover, costs). An interrupted run
continues with --resume RUN_DIR without recomputing finished cells. Then:
python scripts/compare.py RUN_DIR builds the report.

The market, split and environment (action mode, VaR limit and mode, costs) come from a
training config: the first --model's run config.yaml, else --config (default
agents/hyperparams/ppo_default.yaml: the bundled EURUSD 2017 sample, 60/20/20 by date).

Examples:
    python scripts/stress_test.py --list
    python scripts/stress_test.py                                   # every baseline, every scenario, seeds 0 1 2
    python scripts/stress_test.py --model ppo=runs/train-ppo-sample-20261201-120000 --seeds 0 1 2 3 4
    python scripts/stress_test.py --model ppo=runs/ppo-s0,runs/ppo-s1,runs/ppo-s2   # three training seeds
    python scripts/stress_test.py --scenarios baseline spread_x10 snb_2015 --baselines flat vol_target
    python scripts/stress_test.py --scenario-dir my_scenarios/ --scenarios my_crash
    python scripts/stress_test.py --resume runs/stress-20261201-120000.partial
    python scripts/stress_test.py --backend ray                     # cells as tasks on a local Ray
    python scripts/stress_test.py --ray-address auto                # ... on a cluster (ray start --head first)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.baselines import BASELINES  # noqa: E402
from agents.evaluation.stress import BACKENDS, require_ray  # noqa: E402
from agents.evaluation.stress_run import build_plan, headline, model_specs, resume_stress, run_stress  # noqa: E402
from agents.hyperparams import add_data_arguments, with_data_arguments  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, prepare_out, seed_int  # noqa: E402
from simulator.common.errors import ConfigError, DataError  # noqa: E402


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list the scenarios (shipped and --scenario-dir) and exit")
    parser.add_argument("--model", action="append", default=[], metavar="[NAME=]PATH[,PATH...]",
                        help="a trained agent: run folder or model .zip (repeatable); several paths, or a folder of "
                        "run folders, are its training seeds")
    parser.add_argument("--baselines", nargs="+", metavar="NAME", help=f"baselines to run (default all: "
                        f"{', '.join(sorted(BASELINES))})")
    parser.add_argument("--no-baselines", action="store_true", help="run the models only")
    parser.add_argument("--scenarios", nargs="+", metavar="NAME", help="scenario names or YAML paths (default all)")
    parser.add_argument("--scenario-dir", action="append", default=[], type=Path, metavar="DIR",
                        help="a folder of your own scenario YAML files (repeatable; also $FXRISK_SCENARIOS)")
    parser.add_argument("--seeds", type=seed_int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--split", choices=("test", "validation"), default="test")
    parser.add_argument("--config", type=Path, help="training YAML naming data and env (default: the first model's "
                        "run config, else agents/hyperparams/ppo_default.yaml)")
    parser.add_argument("--workers", type=int, help="parallel processes, or CPUs of a local Ray (default: the number "
                        "of cores)")
    parser.add_argument("--backend", choices=BACKENDS, default="process",
                        help="process: a process pool on this machine (default); ray: (scenario, seed) groups as Ray "
                        "tasks, on a local Ray unless --ray-address (needs pip install -e \".[scale]\")")
    parser.add_argument("--ray-address", metavar="ADDRESS", help="an existing Ray cluster (e.g. auto, or "
                        "HEAD:6379 after ray start --head); implies --backend ray")
    parser.add_argument("--out", type=Path, default=REPO / "runs", help="where run folders go (default runs/)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="finish an interrupted stress run")
    parser.add_argument("--no-progress", action="store_true")
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    command = sys.argv if argv is None else ["stress_test.py", *argv]
    if args.list:
        from scenarios import list_scenarios

        for s in list_scenarios(tuple(str(d) for d in args.scenario_dir)):
            print(f"{s.name:20s} {s.description}")
        return 0
    run = dict(workers=args.workers, backend=args.backend, ray_address=args.ray_address, argv=command,
               progress=not args.no_progress)
    try:
        if args.resume is not None:
            done = resume_stress(args.resume, **run)
        else:
            prepare_out(args.out)
            if args.backend == "ray" or args.ray_address:
                require_ray()  # before the data loads
            plan = build_plan(agents=[spec for text in args.model for spec in model_specs(text)], config=args.config,
                              baselines=[] if args.no_baselines else args.baselines, scenarios=args.scenarios,
                              scenario_dirs=args.scenario_dir, seeds=args.seeds, split=args.split,
                              adjust=lambda config: with_data_arguments(config, args))
            done = run_stress(plan, args.out, **run)
    except (ConfigError, DataError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if text := headline(done.results):
        print(text)
    print(f"results: {done.path / 'results.csv'}")
    print(f"report:  python scripts/compare.py {done.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
