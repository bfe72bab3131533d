#!/usr/bin/env python
"""Benchmark the stress grid: the per-policy loop against the fast path, on the same cells, in one run.

For each market (the bundled EURUSD 2017 hourly sample; the ECB daily history, three pairs in a
USD account, agents/hyperparams/ppo_ecb.yaml) the same (scenario, seed) cells run twice in this
process, each with a fresh, empty forecast cache:
1. reference: each policy in its own loop over the bars, forecasts computed over the whole
   stressed market, nothing shared across seeds (``run_plan(..., fast=False)``);
2. fast: every (scenario, seed) group of a batch and every policy as accounts of one batched
   core (``rollout.run_grid``; baselines vectorised over their accounts), the GARCH walk-forward
   resumed where the scenario first changes the market (the unstressed run it resumes from is
   computed once, inside the timing), identical stressed markets computed once, cells written
   without pandas' row writer.
The policies are every rule-based baseline and, as in the main job's stress runs, ``--agents``
PPO models of the market's training config (default 3, the main job's ECB training seeds), each
trained for ``--agent-timesteps`` in a run folder of its own before any timing (a real model and
normaliser, loaded from its run folder as the main job's are; a forward pass costs the same at any
training length). The reference asks each agent per bar for its one account; the fast path asks each
agent once per bar for all its accounts (``agents.evaluation.actor``). ``--agents 0``: baselines only.
Prints cells/s, seconds per (scenario, seed) group and policy bar-steps/s (in CPU time of this
process, steady on a shared machine; wall time beside it), the CPU time in GARCH walk-forwards
and in writing cells, the speed-up and its bounds (the reference's time over the fast path's GARCH
time: the refits the stressed markets need are the same fits in both paths; and over its GARCH
and cell-writing time: both paths write the same cell text), and checks that both wrote the same
results.csv and the same cells (their records uncompressed). Imports and compilation are warmed
up first. The reference writes cells at gzip level 9, as the loop did; the fast path at level 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.baselines import BASELINES  # noqa: E402
from agents.hyperparams import HYPERPARAMS_DIR, TrainConfig  # noqa: E402
from agents.evaluation.stress import PolicySpec, StressPlan, run_plan  # noqa: E402
from agents.training import with_overrides  # noqa: E402

MARKETS = {"sample": HYPERPARAMS_DIR / "ppo_default.yaml", "ecb": HYPERPARAMS_DIR / "ppo_ecb.yaml"}
DEFAULT_SCENARIOS = ("baseline", "spread_x10", "vol_shock", "snb_2015", "covid_2020", "liquidity_gone")


def timed_run(plan: StressPlan, root: Path, fast: bool) -> tuple[float, float, object, float, float]:
    """(CPU seconds, wall seconds, results, CPU seconds in GARCH walk-forwards, CPU seconds writing
    cells) to run ``plan`` into ``root`` in this process, fresh forecast cache.

    CPU time of this process is the figure to compare on a shared machine: wall time moves with
    whatever else runs there. The GARCH share is timed around ``GarchForecaster._run`` (every
    walk-forward of a market, the fits included), the writing around ``stress._write_cells``
    (each cell's text, its compression and its atomic writes).
    """
    from agents.evaluation import stress
    from forecasters.garch import GarchForecaster

    stress._WORKER_CACHE.clear()  # nothing left from an earlier run (the market is reloaded too)
    os.environ["FXRISK_CACHE_DIR"] = str(root / "forecast-cache")
    seconds = {"garch": 0.0, "write": 0.0}

    def timed(function, key):
        def wrapper(*args, **kwargs):
            c = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[key] += time.process_time() - c
        return wrapper

    walk, write = GarchForecaster._run, stress._write_cells
    GarchForecaster._run, stress._write_cells = timed(walk, "garch"), timed(write, "write")
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        results = run_plan(plan, root / "run", workers=1, fast=fast, log=lambda m: None)
        return (time.process_time() - c0, time.perf_counter() - t0, results, seconds["garch"], seconds["write"])
    finally:
        GarchForecaster._run, stress._write_cells = walk, write


def trained_agents(training: TrainConfig, count: int, timesteps: int, root: Path) -> list[PolicySpec]:
    """``count`` PPO models of ``training`` (seeds 0..count-1), ``timesteps`` each, as the main job's agents
    (their run folders under ``root``, their own forecast cache, outside any timing)."""
    from agents.evaluation.stress_run import agent_specs
    from agents.grid import train_seeds

    if count == 0:
        return []
    os.environ["FXRISK_CACHE_DIR"] = str(root / "forecast-cache")
    config = with_overrides(training, total_timesteps=timesteps, eval_every=timesteps, checkpoint_every=timesteps)
    runs = train_seeds(config, list(range(count)), runs_root=root, progress=False)
    return [spec for spec, _ in agent_specs("ppo", runs)]


def cell_contents(root: Path) -> dict[str, bytes]:
    """Each cell file's content under ``root`` (the records uncompressed: the gzip levels differ)."""
    import gzip

    return {str(p.relative_to(root)): gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
            for p in sorted((root / "cells").rglob("seed-*"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markets", nargs="+", choices=tuple(MARKETS), default=list(MARKETS))
    parser.add_argument("--scenarios", nargs="+", default=list(DEFAULT_SCENARIOS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--agents", type=int, choices=range(0, 11), default=3, metavar="N",
                        help="PPO models beside the baselines (default 3; 0: baselines only)")
    parser.add_argument("--agent-timesteps", type=int, default=4096, help="training timesteps per agent")
    args = parser.parse_args()
    baselines = tuple(PolicySpec(name=b, kind="baseline", baseline=b) for b in sorted(BASELINES))
    saved = os.environ.get("FXRISK_CACHE_DIR")
    print(f"bench_stress: {len(baselines)} baselines and {args.agents} PPO models x {len(args.scenarios)} scenarios "
          f"x {len(args.seeds)} seeds per market, one process (cpu count {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f})")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-stress-") as tmp:
            for market in args.markets:
                training = TrainConfig.from_yaml(MARKETS[market])
                agents = trained_agents(training, args.agents, args.agent_timesteps, Path(tmp) / f"{market}-agents")
                policies = baselines + tuple(agents)
                plan = StressPlan(training=training, policies=policies, scenarios=tuple(args.scenarios),
                                  seeds=tuple(args.seeds))
                warm = StressPlan(training=training, policies=(*baselines[:2], *agents[:1]), scenarios=("baseline",),
                                  seeds=(0,))
                timed_run(warm, Path(tmp) / f"{market}-warm", fast=True)
                timed_run(warm, Path(tmp) / f"{market}-warm2", fast=False)
                slow_s, slow_wall, slow, slow_garch, slow_write = timed_run(plan, Path(tmp) / f"{market}-reference",
                                                                            fast=False)
                fast_s, fast_wall, fast, fast_garch, fast_write = timed_run(plan, Path(tmp) / f"{market}-fast",
                                                                            fast=True)
                cells, groups = len(slow), len(args.scenarios) * len(args.seeds)
                bars = float(slow["n_bars"].sum())
                same = (slow.to_csv(index=False) == fast.to_csv(index=False)
                        and cell_contents(Path(tmp) / f"{market}-reference" / "run")
                        == cell_contents(Path(tmp) / f"{market}-fast" / "run"))
                print(f"{market} ({training.data.source}, {len(training.data.symbols) or 1} pair(s)): {cells} cells "
                      f"({len(policies)} policies, {len(agents)} of them agents) in {groups} (scenario, seed) groups, "
                      f"{bars:,.0f} policy bar-steps")
                for label, seconds, wall, garch, write in (("reference", slow_s, slow_wall, slow_garch, slow_write),
                                                           ("fast", fast_s, fast_wall, fast_garch, fast_write)):
                    print(f"  {label:9s} {seconds:7.1f} CPU s  {cells / seconds:6.2f} cells/s  "
                          f"{seconds / groups:5.2f} s per group  {bars / seconds:9,.0f} bar-steps/s  "
                          f"(wall {wall:.1f} s; GARCH walk-forwards {garch:.1f}, writing cells {write:.1f} CPU s)")
                print(f"  speed-up {slow_s / fast_s:.1f}x in CPU time ({slow_wall / fast_wall:.1f}x wall); "
                      f"results.csv and cells identical: {'yes' if same else 'NO'}")
                if fast_garch > 0:
                    # The fits the stressed markets need (each refit from its stress window on, warm-started
                    # from the fit before it) are the same in both paths; the fast path cannot drop them.
                    # Nor the cells: both paths write the same text (floats by Python's repr), gzipped.
                    print(f"  bound: with everything but the fast path's GARCH walk-forwards free, "
                          f"at most {slow_s / fast_garch:.1f}x; with everything but those and its cell "
                          f"writing free, at most {slow_s / (fast_garch + fast_write):.1f}x")
                if not same:
                    return 1
    finally:
        if saved is None:
            os.environ.pop("FXRISK_CACHE_DIR", None)
        else:
            os.environ["FXRISK_CACHE_DIR"] = saved
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
