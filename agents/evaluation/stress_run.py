"""A stress run as one library call: the plan from names and paths, a fresh run folder, results.csv.

Why here and not in the script: ``scripts/stress_test.py`` and the main job (:mod:`agents.pipeline`)
start the same runs; each builds a :class:`~agents.evaluation.stress.StressPlan` with
:func:`build_plan` and calls :func:`run_stress` (or :func:`resume_stress`), which returns the
finished folder (``stress-<UTC time>/``: plan.yaml, cells/, results.csv). The cells themselves run
in :func:`agents.evaluation.stress.run_plan`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from agents.baselines import BASELINES
from agents.evaluation.stress import PolicySpec, StressPlan, pending_cells, require_ray, run_plan
from agents.hyperparams import DEFAULT_CONFIG, TrainConfig
from agents.training import load_market, load_trained_policy, make_split, resolve_model
from simulator.common.configuration import from_mapping, load_yaml, to_mapping
from simulator.common.errors import ConfigError
from simulator.common.run_folder import RunFolder


@dataclass(frozen=True)
class StressRun:
    """A finished stress run: its folder and the tidy results (one row per policy, scenario, seed, training seed)."""

    path: Path
    results: pd.DataFrame


def _is_run(path: Path) -> bool:
    return path.is_file() or any((path / f).is_file() for f in ("best_model.zip", "model.zip", "config.yaml"))


def agent_specs(name: str, paths: Sequence[str | Path], *, what: str | None = None) -> list[tuple[PolicySpec, Path]]:
    """One agent spec per model of ``name`` (and the run folder holding its config.yaml).

    Each path is a training run folder or a model .zip; a folder of run folders (``scripts/train.py
    --seeds`` writes ``<name>-s<seed>`` side by side) stands for all of them. Several models of one
    name are its training seeds (``seed`` of each run's config.yaml, else their order): every cell
    runs each, and results.csv says which in ``train_seed``. ``what`` names the input in errors.
    """
    what = what or f"agent {name}"
    found: list[Path] = []
    for path in map(Path, paths):
        runs = sorted(p for p in path.iterdir() if p.is_dir() and _is_run(p)) if path.is_dir() and not _is_run(path) \
            else [path]
        if not runs:
            raise FileNotFoundError(f"{what}: {path} holds no training run folders (model.zip, "
                                    f"best_model.zip or config.yaml) — pass a run folder or a folder of them")
        found += runs
    out = []
    for order, path in enumerate(found):
        model, run_dir = resolve_model(path)
        load_trained_policy(model, name=name)  # weights only, checked now: a bad model fails before any work
        # The agent acts in the env it was trained in (action mode, size unit, VaR mode).
        config = (load_yaml(run_dir / "config.yaml") or {}) if (run_dir / "config.yaml").is_file() else {}
        seed = config.get("seed") if isinstance(config, dict) else None
        train_seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else order
        out.append((PolicySpec(name=name, kind="agent", model_path=str(model), env=config.get("env"),
                               train_seed=train_seed if len(found) > 1 or seed is not None else None), run_dir))
    seeds = [spec.train_seed for spec, _ in out]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{what}: training seeds {seeds} repeat — give each model of {name} a run of its "
                          f"own seed (scripts/train.py --seeds)")
    return out


def model_specs(text: str) -> list[tuple[PolicySpec, Path]]:
    """``[NAME=]PATH[,PATH...]`` (the command line's ``--model``) → :func:`agent_specs` of NAME (default ppo)."""
    name, sep, path_text = text.partition("=")
    if not sep:
        name, path_text = "ppo", name
    parts = [p.strip() for p in path_text.split(",")]
    if not all(parts):
        raise ConfigError(f"--model {text}: an empty path — give NAME=PATH[,PATH...]")
    return agent_specs(name, parts, what=f"--model {text}")


def portable_model_path(model_path: str | Path, folder: Path) -> str:
    """``model_path`` relative to the stress run ``folder`` when the model lies in the same tree (at
    most two levels up: a ``runs/`` folder, a main job's root), else absolute.

    Why: a main job runs inside ``main-<time>.partial/`` and renames it when it ends; an absolute
    path written then points into a folder that no longer exists (``--resume`` and the report's
    training section lost the models). A relative one moves with the tree.
    """
    target = Path(model_path).resolve()
    try:
        rel = Path(os.path.relpath(target, Path(folder).resolve()))
    except ValueError:  # another drive
        return str(target)
    ups = next((i for i, part in enumerate(rel.parts) if part != ".."), len(rel.parts))
    return rel.as_posix() if ups <= 2 else str(target)


def resolve_model_path(model_path: str, folder: Path) -> str:
    """A ``plan.yaml`` model path as a path to open: a relative one is relative to the stress run folder."""
    path = Path(model_path)
    return str(path if path.is_absolute() else (Path(folder) / path).resolve())


def plan_to_dict(plan: StressPlan, folder: Path | None = None) -> dict:
    """The plan as plain YAML data (``plan.yaml`` of a stress run folder; with ``folder``, model
    paths as :func:`portable_model_path` writes them)."""
    policies = [to_mapping(p) for p in plan.policies]
    if folder is not None:
        for p in policies:
            if p.get("model_path"):
                p["model_path"] = portable_model_path(p["model_path"], folder)
    return {"training": plan.training.to_dict(), "policies": policies,
            "scenarios": list(plan.scenarios), "seeds": list(plan.seeds), "split": plan.split,
            "scenario_dirs": list(plan.scenario_dirs)}


def plan_from_dict(data: Any, source: str, folder: Path | None = None) -> StressPlan:
    """The plan a stress run folder's ``plan.yaml`` holds (relative model paths resolved against
    ``folder``); a missing or malformed entry is one line."""
    keys = ("training", "policies", "scenarios", "seeds", "split", "scenario_dirs")
    if not isinstance(data, dict) or any(k not in data for k in keys):
        missing = [k for k in keys if not isinstance(data, dict) or k not in data]
        raise ConfigError(f"{source}: not a stress plan (missing {', '.join(missing)}) — pass a folder "
                          f"stress_test.py wrote")
    training = from_mapping(TrainConfig, data["training"], source=source)
    try:
        policies = tuple(from_mapping(PolicySpec, p, source=source, path="policies") for p in data["policies"])
        if folder is not None:
            policies = tuple(replace(p, model_path=resolve_model_path(p.model_path, folder)) if p.model_path else p
                             for p in policies)
        return StressPlan(training=training, policies=policies, scenarios=tuple(data["scenarios"]),
                          seeds=tuple(data["seeds"]), split=data["split"],
                          scenario_dirs=tuple(data["scenario_dirs"]))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {' '.join(str(exc).split())}") from None


def build_plan(*, agents: Sequence[tuple[PolicySpec, Path]] = (), config: str | Path | None = None,
               baselines: Sequence[str] | None = None, scenarios: Sequence[str] | None = None,
               scenario_dirs: Sequence[str | Path] = (), seeds: Sequence[int] = (0, 1, 2), split: str = "test",
               adjust: Callable[[TrainConfig], TrainConfig] | None = None) -> StressPlan:
    """The plan of a stress run, checked before any run folder exists.

    The market, split and env come from ``config`` (a training YAML), else the first agent's run
    config.yaml, else ``agents/hyperparams/ppo_default.yaml``; ``adjust`` edits it (the command
    line's data flags). ``baselines``: names (None: every baseline; empty: none). ``scenarios``:
    names or YAML paths (None: every shipped one and those in ``scenario_dirs``).
    """
    from scenarios import get_scenario, list_scenarios

    config_path = Path(config) if config is not None else None
    if config_path is None:
        config_path = next((run / "config.yaml" for _, run in agents if (run / "config.yaml").is_file()),
                           DEFAULT_CONFIG)
    training = from_mapping(TrainConfig, load_yaml(config_path), source=str(config_path))
    if adjust is not None:
        training = adjust(training)
    # Load the data and split it once here: a bad source or span fails before any run folder exists.
    make_split(load_market(training.data, account_currency=training.env.account.currency), training.data)
    chosen = sorted(BASELINES) if baselines is None else list(baselines)
    unknown = sorted(set(chosen) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; available: {', '.join(sorted(BASELINES))}")
    policies = tuple(spec for spec, _ in agents) + tuple(PolicySpec(name=b, kind="baseline", baseline=b)
                                                         for b in chosen)
    dirs = tuple(str(d) for d in scenario_dirs)
    if scenarios:
        loaded = [(s, get_scenario(s, dirs)) for s in scenarios]  # validated before the run folder exists
        names = tuple(sc.name if not Path(s).suffix else str(Path(s).resolve()) for s, sc in loaded)
    else:
        names = tuple(s.name for s in list_scenarios(dirs))
    return StressPlan(training=training, policies=policies, scenarios=names, seeds=tuple(seeds), split=split,
                      scenario_dirs=dirs)


def _execute(plan: StressPlan, folder: RunFolder, *, workers: int | None, backend: str, ray_address: str | None,
             progress: bool, log: Callable[[str], None]) -> StressRun:
    todo = pending_cells(plan, folder.path)
    total = len(plan.policies) * len(plan.scenarios) * len(plan.seeds)
    remaining = sum(len(v) for v in todo.values())
    log(f"stress test: {len(plan.policies)} policies x {len(plan.scenarios)} scenarios x {len(plan.seeds)} "
        f"seeds = {total} cells ({total - remaining} already done)")
    bar = tqdm(total=remaining, unit="cell", desc="stress", disable=not progress, dynamic_ncols=True)
    try:
        results = run_plan(plan, folder.path, workers=workers, on_cell=bar.update,
                           log=lambda m: tqdm.write(m) if progress else log(m), backend=backend,
                           ray_address=ray_address)
    finally:
        bar.close()
    if results.empty:
        raise ValueError("no cell produced results (every scenario was skipped) — see the messages above")
    folder.write_csv("results.csv", results, index=False)
    return StressRun(path=folder.finish(), results=results)


def run_stress(plan: StressPlan, runs_root: str | Path, *, workers: int | None = None, backend: str = "process",
               ray_address: str | None = None, argv: Sequence[str] | None = None, progress: bool = True,
               log: Callable[[str], None] = print) -> StressRun:
    """Run ``plan`` in a fresh ``runs_root/stress-<UTC time>/``; returns the finished folder and its results.

    ``log`` gets the cell count and skipped scenarios (no paths: a caller running inside a ``.partial``
    folder of its own knows the final one; the returned path is final).
    """
    if backend == "ray" or ray_address:
        require_ray()  # before any run folder exists
        backend = "ray"
    folder = RunFolder(runs_root, "stress", config=plan_to_dict(plan), argv=list(argv) if argv is not None else None)
    folder.write_yaml("plan.yaml", plan_to_dict(plan, folder.path))
    return _execute(plan, folder, workers=workers, backend=backend, ray_address=ray_address, progress=progress,
                    log=log)


def resume_stress(run_dir: str | Path, *, workers: int | None = None, backend: str = "process",
                  ray_address: str | None = None, argv: Sequence[str] | None = None, progress: bool = True,
                  log: Callable[[str], None] = print) -> StressRun:
    """Finish an interrupted stress run in ``run_dir`` without recomputing its finished cells."""
    run_dir = Path(run_dir)
    if backend == "ray" or ray_address:
        require_ray()
        backend = "ray"
    plan_path = run_dir / "plan.yaml"
    if not plan_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a stress run folder (no plan.yaml) — pass the folder "
                                f"stress_test.py printed")
    plan = plan_from_dict(load_yaml(plan_path), str(plan_path), run_dir)
    folder = RunFolder.reopen(run_dir, argv=list(argv) if argv is not None else None)
    return _execute(plan, folder, workers=workers, backend=backend, ray_address=ray_address, progress=progress,
                    log=log)


def headline(results: pd.DataFrame) -> str:
    """Mean Sharpe, drawdown, breach rate, stop-outs and costs per policy over the stressed scenarios (text)."""
    table = (results[results.scenario != "baseline"].groupby("policy")[["sharpe_ratio", "max_drawdown",
             "breach_rate", "stop_outs", "costs_paid"]].mean().sort_values("sharpe_ratio", ascending=False))
    if table.empty:
        return ""
    return "stressed scenarios, mean over scenarios and seeds:\n" + table.to_string(float_format=lambda x: f"{x:.3f}")


__all__ = ["StressRun", "agent_specs", "build_plan", "headline", "model_specs", "plan_from_dict", "plan_to_dict",
           "portable_model_path", "resolve_model_path",
           "resume_stress", "run_stress"]
