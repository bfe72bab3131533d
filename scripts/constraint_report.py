#!/usr/bin/env python
"""How constrained PPO runs met their per-episode cost limit: λ's trajectory, training episode cost,
validation stop-outs and time over the VaR limit — a Markdown table from finished run folders.

Reads each run's ``metrics.yaml`` and ``config.yaml`` only (agents.report.training_curves.constraint_summary);
the validation figures are the trainer's own periodic deterministic runs, never the test span.

Examples:
    python scripts/train.py --config agents/hyperparams/ppo_constrained.yaml --lagrangian pid --seeds 0 1 2
    python scripts/train.py --config agents/hyperparams/ppo_constrained.yaml --lagrangian plain --seeds 0 1 2 \\
        --name ppo-lagrangian-plain
    python scripts/constraint_report.py runs/train-ppo-lagrangian-*
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.report.training_curves import constraint_summary  # noqa: E402
from simulator.common.cli import ArgumentParser, guard  # noqa: E402

COLUMNS = ("run", "method", "seed", "λ max", "λ final", "λ at updates 1/10/20/30/40/last", "train cost: first",
           "last quarter", "rollouts over limit (last quarter)", "val stop-outs", "val max time over limit",
           "val final episode cost", "val final Sharpe", "eligible")


def row(run: Path) -> list[str]:
    s = constraint_summary(run)
    return [s["run"], s["method"], str(s["seed"]), f"{s['lambda_max']:.2f}", f"{s['lambda_final']:.2f}",
            " ".join(f"{v:.2f}" for v in s["lambda_path"]), f"{s['train_cost_first']:.1f}",
            f"{s['train_cost_last_quarter']:.2f} / {s['cost_limit']:g}",
            f"{s['rollouts_over_limit']:.0%} ({s['last_quarter_over_limit']:.0%})", str(s["val_stop_outs"]),
            f"{s['val_max_time_over_limit']:.1%}", f"{s['val_final_episode_cost']:.2f}",
            f"{s['val_final_sharpe']:+.2f}", s["eligible"]]


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="finished constrained training runs")
    args = parser.parse_args(argv)
    rows = [row(run) for run in args.runs if not run.name.endswith(".partial")]
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
