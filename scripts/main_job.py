#!/usr/bin/env python
"""The main job: the whole FX Risk Gym pipeline on the embedded default data, in one command.

1. data       the bundled EURUSD 2017 sample, a calibrated synthetic series and a 3-pair market
2. forecasts  EWMA / GARCH family / LSTM-GRU volatility, VaR/ES models and their backtests
3. training   PPO with the VaR limit as a shield, as a reward penalty and as a Lagrangian
              constraint (constrained PPO), on the sample's training span (60%), best
              model chosen on the validation span (20%)
4. stress     the three agents and every rule-based baseline × every shipped scenario × 3 seeds on
              the untouched test span (20%); and the baselines on a synthetic three-pair
              market (agents/hyperparams/g10_synthetic.yaml), where the multi-pair scenarios
              (correlation break, replays on their own pairs) apply for real
5. report     per stress run: ranking with bootstrap CIs, paired test of the best agent against
              the best baseline, deflated Sharpe, heatmaps, curves (HTML + Markdown + PNG)

Everything goes to one fresh folder runs/main-<UTC time>/ (each step in its own run folder
inside it; runs/main-<UTC time>.partial/ while it runs), with an index.html at its root that
links every report, manifest and the TensorBoard command. Every path printed is the final one
(it exists when the job ends). Ends with the paths of the reports and the index.

Examples:
    python scripts/main_job.py
    python scripts/main_job.py --timesteps 400000 --seeds 0 1 2 3 4
    python scripts/main_job.py --quick          # a smoke run: tiny budgets, a few scenarios
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.hyperparams import HYPERPARAMS_DIR  # noqa: E402
from agents.run_index import write_index  # noqa: E402
from simulator.common.cli import ArgumentParser, guard, prepare_out, seed_int  # noqa: E402
from simulator.common.configuration import load_yaml  # noqa: E402
from simulator.common.run_folder import RunFolder  # noqa: E402

QUICK_SCENARIOS = ("baseline", "spread_x10", "snb_2015", "vol_shock")
QUICK_MULTI_PAIR_SCENARIOS = ("baseline", "correlation_break", "gbp_flash_2016")


def script(name: str):
    """A sibling script as a module (each keeps its own ``main(argv)``)."""
    spec = importlib.util.spec_from_file_location(f"fxrisk_script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the script look their module up
    spec.loader.exec_module(module)
    return module


def newest(folder: Path, prefix: str) -> Path:
    found = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(prefix)
                   and not p.name.endswith(".partial"))
    if not found:
        raise RuntimeError(f"{folder}: no finished {prefix}* run folder — the step above failed")
    return found[-1]


class FinalPaths(io.TextIOBase):
    """A text stream that prints final paths where the steps print ``.partial`` ones.

    Why: the job runs inside ``main-<time>.partial/`` and each step in its own ``.partial`` folder,
    each renamed when it finishes; a path printed mid-run must still be valid when the job ends.
    """

    def __init__(self, stream: io.TextIOBase, partial: Path, final: Path) -> None:
        self.stream, self.partial, self.final = stream, str(partial), str(final)
        self._inside = re.compile(re.escape(self.final) + r"[^\s'\",;)]*")

    def write(self, text: str) -> int:
        final = text.replace(self.partial, self.final)
        self.stream.write(self._inside.sub(lambda m: m.group(0).replace(".partial", ""), final))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


@guard
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, help="PPO timesteps per agent (default: the YAML's, 200,000)")
    parser.add_argument("--seeds", type=seed_int, nargs="+", default=[0, 1, 2],
                        help="stress-test seeds (default 0 1 2)")
    parser.add_argument("--workers", type=int, help="stress-test processes (default: the number of cores)")
    parser.add_argument("--out", type=Path, default=REPO / "runs", help="where run folders go (default runs/)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8,192 timesteps, 4 scenarios, 1 seed, "
                        "no neural forecasters")
    args = parser.parse_args(argv)
    prepare_out(args.out)
    command = sys.argv if argv is None else ["main_job.py", *argv]
    timesteps = 8192 if args.quick else args.timesteps
    seeds = [0] if args.quick else args.seeds
    start = time.perf_counter()

    def step(n: int, title: str) -> None:
        print(f"\n[{n}/5] {title}  ({time.perf_counter() - start:.0f} s elapsed)", flush=True)

    folder = RunFolder(args.out, "main", config={"timesteps": timesteps, "seeds": seeds, "quick": args.quick},
                       argv=command)
    with contextlib.redirect_stdout(FinalPaths(sys.stdout, folder.path, folder.final_path)), \
            contextlib.redirect_stderr(FinalPaths(sys.stderr, folder.path, folder.final_path)):
        return _run(args, folder, timesteps, seeds, step, start)


def _run(args: argparse.Namespace, folder: RunFolder, timesteps: int | None, seeds: list[int], step, start: float
         ) -> int:
    """The five steps inside ``folder`` (see the module docstring)."""
    root = folder.path
    step(1, "data: bundled EURUSD 2017 sample, calibrated synthetic series, 3-pair market")
    rc = script("data_summary").main(["--out", str(root)] + (["--years", "0.5"] if args.quick else []))
    if rc:
        return rc
    step(2, "forecasts: volatility models, VaR/ES, backtests on the sample's test span")
    rc = script("forecast_report").main(["--out", str(root)] + (["--no-neural"] if args.quick else []))
    if rc:
        return rc
    models = []
    for name, config, prefix in (("ppo", "ppo_default.yaml", "train-ppo-sample"),
                                 ("ppo_penalty", "ppo_penalty.yaml", "train-ppo-penalty"),
                                 ("ppo_lagrangian", "ppo_constrained.yaml", "train-ppo-lagrangian")):
        step(3, f"training: {name} ({config})")
        train_args = ["--config", str(HYPERPARAMS_DIR / config), "--out", str(root / "training")]
        if timesteps:
            train_args += ["--timesteps", str(timesteps)]
        rc = script("train").main(train_args)
        if rc:
            return rc
        run = newest(root / "training", prefix)
        selection = (load_yaml(run / "metrics.yaml") or {}).get("selection") or {}
        if selection.get("selected_step") is None and "why" in selection:
            # No checkpoint passed the selection rule: stress the final model, named so that nobody takes
            # it for a selected one, and say why.
            print(f"note: {name}: {selection['why']}; stress-testing its final model as {name}_unselected")
            models.append(f"{name}_unselected={run / 'model.zip'}")
        else:
            models.append(f"{name}={run}")
    common = ["--seeds", *map(str, seeds)] + (["--workers", str(args.workers)] if args.workers else [])
    # (folder, title, extra stress_test.py arguments, quick-mode scenarios); reports in reverse,
    # so the sample's headline table is the last thing printed.
    runs = (("sample", "agents and baselines x scenarios x seeds on the sample's test span",
             [a for m in models for a in ("--model", m)], QUICK_SCENARIOS),
            ("g10", "baselines on a synthetic three-pair market (EURUSD, GBPUSD, USDJPY)",
             ["--config", str(HYPERPARAMS_DIR / "g10_synthetic.yaml")], QUICK_MULTI_PAIR_SCENARIOS))
    for name, title, extra, quick in runs:
        step(4, f"stress tests: {title}")
        stress_args = ["--out", str(root / name), *common, *extra]
        if args.quick:
            stress_args += ["--scenarios", *quick]
        rc = script("stress_test").main(stress_args)
        if rc:
            return rc
    for name, *_ in reversed(runs):
        step(5, f"report: {name}")
        rc = script("compare").main([str(newest(root / name, "stress-"))])
        if rc:
            return rc
    seconds = time.perf_counter() - start
    write_index(root, title=f"FX Risk Gym main job {folder.final_path.name}",
                summary=f"Finished in {seconds:.0f} s; timesteps per agent {timesteps or 'from the YAML'}, "
                        f"stress seeds {', '.join(map(str, seeds))}{', quick mode' if args.quick else ''}.")
    final = folder.finish()
    reports = {name: sorted((final / name).glob("stress-*/report*/report.html")) for name in ("g10", "sample")}
    print(f"\nmain job finished in {seconds:.0f} s")
    print(f"run folder: {final}")
    print(f"index:      {final / 'index.html'}")
    if reports["g10"]:
        print(f"report (synthetic three-pair market, baselines): {reports['g10'][-1]}")
    if reports["sample"]:
        print(f"report (bundled sample, agents and baselines):   {reports['sample'][-1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
