"""Stress tests: policies × scenarios × seeds on the test split, in parallel, resumable.

One *cell* is one policy run deterministically over the evaluation span of one stressed
market (scenario applied with a Generator seeded by ``(seed, scenario)``: the seed moves
random stress windows and draws the scenario's own randomness). Cells of the same
(scenario, seed) share one stressed market and its prepared arrays, so a worker process
takes a whole group. Each finished cell leaves ``cells/<policy>/<scenario>/seed-<s>.csv.gz``
(per-step records) and ``.json`` (its metrics row), written atomically; a resumed run skips
cells whose ``.json`` exists. ``results.csv`` is the tidy table of every finished cell.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.run_folder import atomic_write_csv

from agents.hyperparams import TrainConfig
from agents.policies import Policy
from envs.config import EnvConfig
from simulator.configuration import from_mapping, to_mapping
from simulator.run_folder import atomic_write_bytes, atomic_write_text

#: Per-step columns kept for each cell (the report's curves and VaR bands need these).
CELL_COLUMNS = ("step", "t", "timestamp", "equity", "equity_before", "log_return", "costs", "var", "var_limit",
                "var_utilisation", "var_breach", "clipped", "shield_scale", "stopped_out", "margin_call", "turnover")
SPLITS = ("test", "validation")


@dataclass(frozen=True, kw_only=True)
class PolicySpec:
    """A policy to stress: a baseline by name (with parameters) or a trained model file.

    ``env``: the env config (mapping) the policy acts in — an agent's own training env, so
    its actions keep the meaning it learnt (action mode, size unit, VaR mode); ``None``: the
    plan's env (baselines).
    """

    name: str
    kind: str
    baseline: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    model_path: str | None = None
    env: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("agent", "baseline"):
            raise ValueError(f"policy kind must be 'agent' or 'baseline', got {self.kind!r}")
        if (self.baseline is None) == (self.model_path is None):
            raise ValueError(f"policy {self.name!r}: give exactly one of a baseline name or a model path")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"policy name {self.name!r} must be a plain file name (it names a folder)")

    def env_config(self, default: EnvConfig) -> EnvConfig:
        if self.env is None:
            return default
        return from_mapping(EnvConfig, self.env, source=f"policy {self.name} env")

    def build(self) -> Policy:
        if self.baseline is not None:
            from agents.baselines import make_baseline

            return make_baseline(self.baseline, **self.params)
        from agents.training import load_trained_policy

        return load_trained_policy(self.model_path, name=self.name)


@dataclass(frozen=True, kw_only=True)
class StressPlan:
    """What to run: the market and env (from a training config), policies, scenarios, seeds."""

    training: TrainConfig
    policies: tuple[PolicySpec, ...]
    scenarios: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    split: str = "test"
    scenario_dirs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.policies or not self.scenarios or not self.seeds:
            raise ValueError("a stress plan needs at least one policy, one scenario and one seed")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        names = [p.name for p in self.policies]
        if len(set(names)) != len(names):
            raise ValueError(f"policy names must be unique, got {names}")


def cell_stem(root: Path, policy: str, scenario: str, seed: int) -> Path:
    return Path(root) / "cells" / policy / scenario / f"seed-{seed}"


def scenario_rng(seed: int, scenario: str) -> np.random.Generator:
    """The Generator of one (seed, scenario): independent streams, stable across runs and processes."""
    salt = int.from_bytes(hashlib.sha256(scenario.encode()).digest()[:8], "little")
    return np.random.default_rng([int(seed), salt])


# -- one group of cells (runs in a worker process) -------------------------------------------
_WORKER_CACHE: dict[str, Any] = {}


def _market(training: TrainConfig):
    from agents.training import load_market

    key = json.dumps(training.data.__dict__, sort_keys=True, default=str)
    if _WORKER_CACHE.get("market_key") != key:
        _WORKER_CACHE["market"] = load_market(training.data, account_currency=training.env.account.currency)
        _WORKER_CACHE["market_key"] = key
    return _WORKER_CACHE["market"]


def run_group(plan: StressPlan, scenario_name: str, seed: int, root: str, policies: Sequence[str]
              ) -> list[dict[str, Any]]:
    """Run the listed policies on one (scenario, seed); returns their metrics rows (or one skip row)."""
    import torch

    from agents.training import make_split, split_data
    from scenarios import ScenarioError, apply_scenario, get_scenario

    torch.set_num_threads(1)
    training = plan.training
    market = _market(training)
    scenario = get_scenario(scenario_name, plan.scenario_dirs)
    n = len(market)
    split = make_split(market, training.data)
    span = (split.val_end, n) if plan.split == "test" else (split.train_end, split.val_end)
    # Policies acting in the same env config share one stressed market and its arrays. The
    # market is the same for every config: the scenario's draws do not depend on settings.
    groups: dict[str, list[PolicySpec]] = {}
    specs = {p.name: p for p in plan.policies}
    for name in policies:
        cfg = specs[name].env_config(training.env)
        groups.setdefault(json.dumps(to_mapping(cfg), sort_keys=True, default=str), []).append(specs[name])
    rows = []
    for members in groups.values():
        env_cfg = members[0].env_config(training.env)
        try:
            stressed = apply_scenario(scenario, market, env_cfg, span=span, rng=scenario_rng(seed, scenario.name))
        except ScenarioError as exc:
            return [{"skipped": True, "scenario": scenario.name, "seed": seed, "reason": str(exc)}]
        data = split_data(stressed.market, stressed.env_config, training.data).span(plan.split)
        rows += _run_cells(members, stressed, scenario, seed, data, Path(root), n)
    return rows


def _run_cells(members: Sequence[PolicySpec], stressed: Any, scenario: Any, seed: int, data: Any, root: Path,
               n: int) -> list[dict[str, Any]]:
    """Run each policy on one stressed market and write its cell (records + metrics) atomically."""
    from agents.evaluation import evaluation_config, run_policy
    from simulator.metrics import bars_per_year

    eval_cfg = evaluation_config(stressed.env_config)
    index = stressed.market.index
    window = stressed.window
    has_window = bool(scenario.transforms) and window is not None and window[1] > window[0]
    rows = []
    # What the data lacked and what stood in for it (depth, spread model, lookbacks): for the report.
    data_notes = " | ".join(dict.fromkeys([*stressed.market.notes, *data.notes]))
    for spec in members:
        name = spec.name
        result = run_policy(spec.build(), data, eval_cfg, label=name)
        row = {"policy": name, "kind": spec.kind, "scenario": scenario.name, "seed": int(seed),
               "stress_start": str(index[window[0]]) if has_window else "",
               "stress_end": str(index[min(window[1], n) - 1]) if has_window else "",
               **{k: _plain(v) for k, v in result.summary.iloc[0].to_dict().items() if k not in ("policy", "account")},
               "var_nominal_rate": round(1.0 - eval_cfg.var_alpha, 10),
               "var_mode": eval_cfg.var_mode,
               "bars_per_year": bars_per_year(data.index),
               "notes": " | ".join(stressed.notes),
               "data_notes": data_notes}
        stem = cell_stem(root, name, scenario.name, seed)
        records = result.records
        cols = [c for c in (*CELL_COLUMNS, *[c for c in records.columns if c.startswith("exposure_")])
                if c in records.columns]
        frame = records[cols].copy()
        frame["timestamp"] = frame["timestamp"].astype(str)
        buffer = io.BytesIO()
        frame.to_csv(buffer, index=False, compression={"method": "gzip", "mtime": 0})
        atomic_write_bytes(stem.with_suffix(".csv.gz"), buffer.getvalue())
        atomic_write_text(stem.with_suffix(".json"), json.dumps(row, sort_keys=True))
        rows.append(row)
    return rows


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# -- the whole plan --------------------------------------------------------------------------
def pending_cells(plan: StressPlan, root: Path) -> dict[tuple[str, int], list[str]]:
    """(scenario, seed) → policies whose cell has no finished ``.json`` yet."""
    out: dict[tuple[str, int], list[str]] = {}
    for scenario in plan.scenarios:
        for seed in plan.seeds:
            todo = [p.name for p in plan.policies
                    if not cell_stem(root, p.name, scenario, seed).with_suffix(".json").is_file()]
            if todo:
                out[(scenario, seed)] = todo
    return out


def _end_with_parent(parent: int) -> None:
    """Pool-worker initializer: the worker ends when the process that started it does.

    Linux: the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``); everywhere
    a daemon thread also checks the parent every half second (a SIGKILLed parent runs no cleanup,
    so its workers would otherwise go on writing cells).
    """
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        import contextlib
        import ctypes

        # Without a libc prctl (AttributeError/OSError) the watch thread below ends the worker instead.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers end with this process (see :func:`_end_with_parent`)."""
    return ProcessPoolExecutor(max_workers=workers, initializer=_end_with_parent, initargs=(os.getpid(),))


def run_plan(plan: StressPlan, root: str | Path, *, workers: int | None = None,
             on_cell: Callable[[int], None] | None = None, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Run every pending cell (``workers`` processes; 1 runs in this process) and collect results."""
    root = Path(root)
    todo = pending_cells(plan, root)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    skipped: list[dict[str, Any]] = []

    def collect(rows: list[dict[str, Any]], expected: int) -> None:
        for row in rows:
            if row.get("skipped"):
                skipped.append(row)
        if on_cell:
            on_cell(expected)

    if workers == 1:
        for (scenario, seed), names in todo.items():
            collect(run_group(plan, scenario, seed, str(root), names), len(names))
    else:
        with worker_pool(workers) as pool:
            futures = {pool.submit(run_group, plan, scenario, seed, str(root), names): len(names)
                       for (scenario, seed), names in todo.items()}
            for future in as_completed(futures):
                collect(future.result(), futures[future])
    for row in skipped:
        log(f"skipped {row['scenario']} (seed {row['seed']}): {row['reason']}")
    if skipped:  # the report lists them with their reasons
        atomic_write_csv(root / "skipped.csv", pd.DataFrame(skipped)[["scenario", "seed", "reason"]], index=False)
    return collect_results(root)


def collect_results(root: Path) -> pd.DataFrame:
    """The tidy table of every finished cell under ``root/cells``."""
    rows = [json.loads(p.read_text()) for p in sorted((Path(root) / "cells").glob("*/*/seed-*.json"))]
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    first = ["policy", "kind", "scenario", "seed", "stress_start", "stress_end"]
    return table[first + [c for c in table.columns if c not in first]].sort_values(
        ["scenario", "policy", "seed"], kind="stable").reset_index(drop=True)
