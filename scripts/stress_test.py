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
from typing import Any

from tqdm.auto import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.baselines import BASELINES  # noqa: E402
from agents.hyperparams import DEFAULT_CONFIG, TrainConfig, add_data_arguments, with_data_arguments  # noqa: E402
from agents.training import load_market, make_split  # noqa: E402
from agents.evaluation.stress import BACKENDS, PolicySpec, StressPlan, pending_cells, require_ray, run_plan  # noqa: E402
from agents.training import load_trained_policy, resolve_model  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, prepare_out, seed_int  # noqa: E402
from simulator.common.configuration import from_mapping, load_yaml, to_mapping  # noqa: E402
from simulator.common.errors import ConfigError, DataError  # noqa: E402
from simulator.common.run_folder import RunFolder  # noqa: E402


def _is_run(path: Path) -> bool:
    return path.is_file() or any((path / f).is_file() for f in ("best_model.zip", "model.zip", "config.yaml"))


def model_specs(text: str) -> list[tuple[PolicySpec, Path]]:
    """``[NAME=]PATH[,PATH...]`` → one agent spec per model (and the run folder holding its config.yaml).

    Each PATH is a training run folder or a model .zip; a PATH that is a folder of run folders
    (``scripts/train.py --seeds`` writes ``<name>-s<seed>`` side by side) stands for all of them.
    Several models of one NAME are its training seeds (``seed`` of each run's config.yaml, else
    their order): every cell runs each, and results.csv says which in ``train_seed``.
    """
    name, sep, path_text = text.partition("=")
    if not sep:
        name, path_text = "ppo", name
    paths: list[Path] = []
    for part in (p.strip() for p in path_text.split(",")):
        if not part:
            raise ConfigError(f"--model {text}: an empty path — give NAME=PATH[,PATH...]")
        path = Path(part)
        runs = sorted(p for p in path.iterdir() if p.is_dir() and _is_run(p)) if path.is_dir() and not _is_run(path) \
            else [path]
        if not runs:
            raise FileNotFoundError(f"--model {text}: {path} holds no training run folders (model.zip, "
                                    f"best_model.zip or config.yaml) — pass a run folder or a folder of them")
        paths += runs
    out = []
    for order, path in enumerate(paths):
        model, run_dir = resolve_model(path)
        load_trained_policy(model, name=name)  # weights only, checked now: a bad model fails before any work
        # The agent acts in the env it was trained in (action mode, size unit, VaR mode).
        config = (load_yaml(run_dir / "config.yaml") or {}) if (run_dir / "config.yaml").is_file() else {}
        seed = config.get("seed") if isinstance(config, dict) else None
        train_seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else order
        out.append((PolicySpec(name=name, kind="agent", model_path=str(model), env=config.get("env"),
                               train_seed=train_seed if len(paths) > 1 or seed is not None else None), run_dir))
    seeds = [spec.train_seed for spec, _ in out]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--model {text}: training seeds {seeds} repeat — give each model of {name} a run of its "
                          f"own seed (scripts/train.py --seeds)")
    return out


def plan_to_dict(plan: StressPlan) -> dict:
    return {"training": plan.training.to_dict(), "policies": [to_mapping(p) for p in plan.policies],
            "scenarios": list(plan.scenarios), "seeds": list(plan.seeds), "split": plan.split,
            "scenario_dirs": list(plan.scenario_dirs)}


def plan_from_dict(data: Any, source: str) -> StressPlan:
    """The plan a stress run folder's ``plan.yaml`` holds; a missing or malformed entry is one line."""
    keys = ("training", "policies", "scenarios", "seeds", "split", "scenario_dirs")
    if not isinstance(data, dict) or any(k not in data for k in keys):
        missing = [k for k in keys if not isinstance(data, dict) or k not in data]
        raise ConfigError(f"{source}: not a stress plan (missing {', '.join(missing)}) — pass a folder "
                          f"stress_test.py wrote")
    training = from_mapping(TrainConfig, data["training"], source=source)
    try:
        policies = tuple(from_mapping(PolicySpec, p, source=source, path="policies") for p in data["policies"])
        return StressPlan(training=training, policies=policies, scenarios=tuple(data["scenarios"]),
                          seeds=tuple(data["seeds"]), split=data["split"],
                          scenario_dirs=tuple(data["scenario_dirs"]))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {' '.join(str(exc).split())}") from None


def build_plan(args: argparse.Namespace) -> StressPlan:
    from scenarios import get_scenario, list_scenarios

    agents, config_path = [], args.config
    for text in args.model:
        for spec, run_dir in model_specs(text):
            agents.append(spec)
            if config_path is None and (run_dir / "config.yaml").is_file():
                config_path = run_dir / "config.yaml"
    config_path = config_path or DEFAULT_CONFIG
    training = from_mapping(TrainConfig, load_yaml(config_path), source=str(config_path))
    training = with_data_arguments(training, args)
    # Load the data and split it once here: a bad source or span fails before any run folder exists.
    make_split(load_market(training.data, account_currency=training.env.account.currency), training.data)
    baselines = [] if args.no_baselines else (args.baselines or sorted(BASELINES))
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; available: {', '.join(sorted(BASELINES))}")
    policies = tuple(agents) + tuple(PolicySpec(name=b, kind="baseline", baseline=b) for b in baselines)
    dirs = tuple(str(d) for d in args.scenario_dir)
    if args.scenarios:
        loaded = [(s, get_scenario(s, dirs)) for s in args.scenarios]  # validated before the run folder exists
        names = tuple(sc.name if not Path(s).suffix else str(Path(s).resolve()) for s, sc in loaded)
    else:
        names = tuple(s.name for s in list_scenarios(dirs))
    return StressPlan(training=training, policies=policies, scenarios=names, seeds=tuple(args.seeds),
                      split=args.split, scenario_dirs=dirs)


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
    backend = "ray" if args.ray_address else args.backend
    if not args.list and args.resume is None:
        prepare_out(args.out)
    try:
        if backend == "ray" and not args.list:
            require_ray()  # before any run folder exists
        from scenarios import list_scenarios

        if args.list:
            for s in list_scenarios(tuple(str(d) for d in args.scenario_dir)):
                print(f"{s.name:20s} {s.description}")
            return 0
        if args.resume is not None:
            plan_path = args.resume / "plan.yaml"
            if not plan_path.is_file():
                raise FileNotFoundError(f"{args.resume}: not a stress run folder (no plan.yaml) — pass the folder "
                                        f"stress_test.py printed")
            plan = plan_from_dict(load_yaml(plan_path), str(plan_path))
            folder = RunFolder.reopen(args.resume, argv=command)
        else:
            plan = build_plan(args)
            folder = RunFolder(args.out, "stress", config=plan_to_dict(plan), argv=command)
            folder.write_yaml("plan.yaml", plan_to_dict(plan))
        todo = pending_cells(plan, folder.path)
        total = len(plan.policies) * len(plan.scenarios) * len(plan.seeds)
        remaining = sum(len(v) for v in todo.values())
        print(f"stress test: {len(plan.policies)} policies x {len(plan.scenarios)} scenarios x {len(plan.seeds)} "
              f"seeds = {total} cells ({total - remaining} already done) -> {folder.path}")
        bar = tqdm(total=remaining, unit="cell", desc="stress", disable=args.no_progress, dynamic_ncols=True)
        results = run_plan(plan, folder.path, workers=args.workers, on_cell=bar.update,
                           log=lambda m: tqdm.write(m), backend=backend, ray_address=args.ray_address)
        bar.close()
        if results.empty:
            raise ValueError("no cell produced results (every scenario was skipped) — see the messages above")
        folder.write_csv("results.csv", results, index=False)
        path = folder.finish()
    except (ConfigError, DataError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    headline = (results[results.scenario != "baseline"].groupby("policy")[["sharpe_ratio", "max_drawdown",
                "breach_rate", "stop_outs", "costs_paid"]].mean().sort_values("sharpe_ratio", ascending=False))
    if not headline.empty:
        print("stressed scenarios, mean over scenarios and seeds:")
        print(headline.to_string(float_format=lambda x: f"{x:.3f}"))
    print(f"results: {path / 'results.csv'}")
    print(f"report:  python scripts/compare.py {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
