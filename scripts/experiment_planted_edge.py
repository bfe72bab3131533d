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
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.baselines import BASELINES, make_baseline  # noqa: E402
from agents.experiments import per_bar_returns  # noqa: E402
from agents.evaluation.rollout import evaluation_config, run_policy  # noqa: E402
from agents.hyperparams import HYPERPARAMS_DIR, TrainConfig  # noqa: E402
from agents.training import load_trained_policy, train  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, prepare_out, seed_int  # noqa: E402
from agents.evaluation.metrics import bars_per_year  # noqa: E402
from simulator.common.run_folder import RunFolder  # noqa: E402
from agents.evaluation.statistics import paired_sharpe_difference, sharpe_ci  # noqa: E402

CONFIG = HYPERPARAMS_DIR / "ppo_planted_edge.yaml"
REFERENCE = "fixed_fraction"


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=seed_int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, help="override total_timesteps per seed")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--out", type=Path, default=REPO / "runs")
    args = parser.parse_args(argv)
    prepare_out(args.out)
    base = TrainConfig.from_yaml(args.config)
    rows: list[dict] = []
    with RunFolder(args.out, "experiment-planted-edge", config={"training": base.to_dict(), "seeds": args.seeds},
                   argv=sys.argv if argv is None else ["experiment_planted_edge.py", *argv]) as folder:
        for seed in args.seeds:
            cfg = replace(base, seed=seed, name=f"planted-edge-seed{seed}",
                          total_timesteps=args.timesteps or base.total_timesteps,
                          data=replace(base.data, data_seed=seed))
            print(f"seed {seed}: training {cfg.total_timesteps:,} steps")
            run_dir = train(cfg, runs_root=folder.path / "training", argv=[], progress=False,
                            log=lambda msg: print(f"  {msg}"))
            from agents.training import load_market, split_data

            data = split_data(load_market(cfg.data), cfg.env, cfg.data)
            env_cfg = evaluation_config(cfg.env)
            policies = {"ppo": load_trained_policy(run_dir / "best_model.zip")}
            policies.update({name: make_baseline(name) for name in BASELINES})
            per_year = bars_per_year(data.full.index)
            rng = np.random.default_rng(10_000 + seed)
            returns = {}
            for name, policy in policies.items():
                result = run_policy(policy, data.test, env_cfg, label=name)
                r = per_bar_returns(result.records)
                returns[name] = r
                s = result.summary.iloc[0]
                point, lo, hi = sharpe_ci(r, per_year, rng=rng)
                rows.append({"seed": seed, "policy": name, "sharpe": s["sharpe_ratio"], "sharpe_low": lo,
                             "sharpe_high": hi, "total_return": s["total_return"], "max_drawdown": s["max_drawdown"],
                             "breach_rate": s["breach_rate"], "costs_paid": s["costs_paid"],
                             "stop_outs": s["stop_outs"]})
            diff = paired_sharpe_difference(returns["ppo"], returns[REFERENCE], per_year, rng=rng)
            rows.append({"seed": seed, "policy": f"ppo - {REFERENCE}", "sharpe": diff["diff"],
                         "sharpe_low": diff["low"], "sharpe_high": diff["high"], "p_value": diff["p_value"]})
            print(f"  test Sharpe: ppo {rows[-1 - len(policies)]['sharpe']:.2f}, {REFERENCE} "
                  f"{next(r['sharpe'] for r in rows if r['seed'] == seed and r['policy'] == REFERENCE):.2f}, "
                  f"difference {diff['diff']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}], p = {diff['p_value']:.3f}")
        table = pd.DataFrame(rows)
        folder.write_csv("results.csv", table, index=False)
        wins = [bool(table[(table.seed == s) & (table.policy == "ppo")].sharpe.iloc[0]
                     > table[(table.seed == s) & (table.policy == REFERENCE)].sharpe.iloc[0]) for s in args.seeds]
        verdict = (f"PPO beats {REFERENCE} on test-split Sharpe for {sum(wins)} of {len(wins)} seeds "
                   f"({'claim holds' if all(wins) else 'claim does NOT hold'}).")
        lines = ["# Planted-edge learning experiment", "", verdict, "",
                 "Test split only, touched once after training; Sharpe annualised, 95% block-bootstrap CI.", "",
                 "| seed | policy | Sharpe | 95% CI | return | max DD | breach rate | p (paired) |",
                 "|---|---|---|---|---|---|---|---|"]
        def fmt(value: float | None, spec: str) -> str:
            return "" if value is None or value != value else format(value, spec)

        for r in rows:
            lines.append(f"| {r['seed']} | {r['policy']} | {r['sharpe']:.2f} | [{r['sharpe_low']:.2f}, "
                         f"{r['sharpe_high']:.2f}] | {fmt(r.get('total_return'), '+.1%')} | "
                         f"{fmt(r.get('max_drawdown'), '.1%')} | {fmt(r.get('breach_rate'), '.3f')} | "
                         f"{fmt(r.get('p_value'), '.3f')} |")
        folder.write_text("report.md", "\n".join(lines) + "\n")
    print(verdict)
    print(f"run folder: {folder.path}")
    return 0 if all(wins) else 1


if __name__ == "__main__":
    raise SystemExit(main())
