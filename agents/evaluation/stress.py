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

import gzip
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.common.run_folder import atomic_write_csv

from agents.evaluation.cells import CELL_COLUMNS, EXPOSURE_PREFIX
from agents.hyperparams import TrainConfig
from agents.policies import Policy
from envs.config import EnvConfig
from simulator.common.configuration import from_mapping, to_mapping
from simulator.common.errors import ConfigError
from simulator.common.run_folder import atomic_write_bytes

SPLITS = ("test", "validation")


@dataclass(frozen=True, kw_only=True)
class PolicySpec:
    """A policy to stress: a baseline by name (with parameters) or a trained model file.

    ``env``: the env config (mapping) the policy acts in — an agent's own training env, so
    its actions keep the meaning it learnt (action mode, size unit, VaR mode); ``None``: the
    plan's env (baselines, in its exposure twin).
    """

    name: str
    kind: str
    baseline: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    model_path: str | None = None
    env: dict[str, Any] | None = None
    #: The training seed of an agent's model (several models of one agent name: one per training
    #: seed, each run on every cell; the report's intervals then span training × scenario seeds).
    train_seed: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("agent", "baseline"):
            raise ValueError(f"policy kind must be 'agent' or 'baseline', got {self.kind!r}")
        if self.train_seed is not None and (self.kind != "agent" or isinstance(self.train_seed, bool)
                                            or not isinstance(self.train_seed, int)):
            raise ValueError(f"policy {self.name!r}: train_seed is an integer, for agents only")
        if (self.baseline is None) == (self.model_path is None):
            raise ValueError(f"policy {self.name!r}: give exactly one of a baseline name or a model path")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"policy name {self.name!r} must be a plain file name (it names a folder)")

    def env_config(self, default: EnvConfig) -> EnvConfig:
        """The env this policy acts in: an agent's own; a baseline's the exposure twin of its
        env (:func:`agents.baselines.baseline_env`: the same costs, band and limit)."""
        from agents.baselines import baseline_env

        config = default if self.env is None else from_mapping(EnvConfig, self.env, source=f"policy {self.name} env")
        return baseline_env(config) if self.kind == "baseline" else config

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
        for name in self.multi_seed_names:
            seeds = [p.train_seed for p in self.policies if p.name == name]
            if None in seeds or len(set(seeds)) != len(seeds):
                raise ValueError(f"policy {name!r} is given {len(seeds)} times: only an agent's models of distinct "
                                 f"training seeds may share a name, got train seeds {seeds}")

    @property
    def multi_seed_names(self) -> tuple[str, ...]:
        """Names given by several specs (an agent's models, one per training seed)."""
        names = [p.name for p in self.policies]
        return tuple(dict.fromkeys(n for n in names if names.count(n) > 1))

    def key(self, spec: PolicySpec) -> str:
        """The policy's id in this plan: its name, with ``@train-<seed>`` for an agent of several seeds."""
        return spec.name if spec.name not in self.multi_seed_names else f"{spec.name}@train-{spec.train_seed}"

    def stem(self, root: Path, spec: PolicySpec, scenario: str, seed: int) -> Path:
        """Where the cell of ``spec`` on (scenario, seed) lives (see :func:`cell_stem`)."""
        multi = spec.name in self.multi_seed_names
        return cell_stem(root, spec.name, scenario, seed, spec.train_seed if multi else None)


def cell_stem(root: Path, policy: str, scenario: str, seed: int, train_seed: int | None = None) -> Path:
    """``cells/<policy>/<scenario>/seed-<seed>``, ``…/seed-<seed>-train-<train seed>`` for one of several seeds."""
    tail = f"seed-{seed}" if train_seed is None else f"seed-{seed}-train-{train_seed}"
    return Path(root) / "cells" / policy / scenario / tail


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


def _reference_forecast(market: Any, forecaster: Any) -> Any:
    """The unstressed market's walk-forward (with its checkpoints) for ``forecaster``, once per process."""
    key = ("reference", market.fingerprint(), forecaster.cache_key())
    if key not in _WORKER_CACHE:
        for old in [k for k in _WORKER_CACHE if isinstance(k, tuple) and k[0] == "reference"]:
            del _WORKER_CACHE[old]  # one market at a time: a new plan's market replaces the last
        _WORKER_CACHE[key] = forecaster.reference(market)[1]
    return _WORKER_CACHE[key]


def prime_forecast(market: Any, stressed: Any, env_cfg: EnvConfig) -> bool:
    """Put the stressed market's GARCH forecast in the forecast cache, computed from its stress window on.

    Why: forecasts are causal, so the rows before a scenario first changes the market are the
    unstressed market's; the walk-forward resumes there (:class:`forecasters.garch.WalkForwardResume`)
    with the same fits a fresh run makes. ``prepare_env_data`` then finds it in the cache. Returns
    whether it computed an entry (False: not a GARCH model, or the entry is there already).
    """
    from envs.data import volatility_forecaster
    from forecasters.cache import ForecastCache
    from forecasters.garch import GarchForecaster
    from simulator.data.frequency import bar_hours

    forecaster = volatility_forecaster(env_cfg.in_bars(bar_hours(stressed.index)))
    if not isinstance(forecaster, GarchForecaster) or not stressed.index.equals(market.index):
        return False
    cache = ForecastCache()
    key = cache.key(stressed, forecaster, None)
    if cache.path(key).is_file():
        return False
    cache.save(key, forecaster.forecast_from(stressed, _reference_forecast(market, forecaster)))
    return True


def run_group(plan: StressPlan, scenario_name: str, seed: int, root: str, policies: Sequence[str], *,
              fast: bool = True, sink: Callable[[Path, bytes], Any] = atomic_write_bytes) -> list[dict[str, Any]]:
    """Run the listed policies on one (scenario, seed); returns their metrics rows (or one skip row)."""
    return run_groups(plan, [(scenario_name, seed, tuple(policies))], root, fast=fast, sink=sink)


def run_groups(plan: StressPlan, groups: Sequence[tuple[str, int, Sequence[str]]], root: str, *, fast: bool = True,
               sink: Callable[[Path, bytes], Any] = atomic_write_bytes) -> list[dict[str, Any]]:
    """Run the listed policies of each (scenario, seed, policies) group; returns their metrics rows
    (and one skip row per group a scenario cannot be applied to).

    The fast path steps every group's policies as accounts of one batched core
    (:func:`agents.evaluation.rollout.run_grid`, per env config); the reference path
    (``fast=False``) runs each policy of each group in its own loop.

    ``sink(path, data)`` writes each cell file (default: atomically, here); a Ray task collects
    them instead and the driver writes them (a cluster's nodes need not share a disk).

    BLAS runs on one thread here: OpenBLAS splits sums by its thread count, which moves GARCH
    fits in their last digits, so a pool worker (as many threads as cores), a Ray worker (one)
    and another machine would otherwise disagree.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        if not fast:
            return [row for g in groups for row in _reference_group(plan, *g, root, sink)]
        return _run_grid(plan, groups, root, sink)


def _scenario(plan: StressPlan, name: str) -> Any:
    """The scenario ``name`` (a library name or a file's path), found once per process.

    Finding one name reads every file of the library and the user's folders, so the library is
    read once per process and each name looked up in it; a path, or a name it lacks, goes to
    :func:`scenarios.get_scenario` (which loads the file or raises its one-line error).
    """
    from scenarios import get_scenario
    from scenarios.catalog import SUFFIXES, list_scenarios

    where = (tuple(plan.scenario_dirs), os.environ.get("FXRISK_SCENARIOS"))
    key = ("scenario", name, *where)
    if key not in _WORKER_CACHE:
        path_like = Path(name).suffix in SUFFIXES or os.sep in name or bool(os.altsep and os.altsep in name)
        if not path_like and ("library", *where) not in _WORKER_CACHE:
            _WORKER_CACHE[("library", *where)] = {s.name: s for s in list_scenarios(plan.scenario_dirs)}
        found = None if path_like else _WORKER_CACHE[("library", *where)].get(name)
        _WORKER_CACHE[key] = found if found is not None else get_scenario(name, plan.scenario_dirs)
    return _WORKER_CACHE[key]


def _span(plan: StressPlan, market: Any) -> tuple[int, int]:
    from agents.training import make_split

    split = make_split(market, plan.training.data)
    return (split.val_end, len(market)) if plan.split == "test" else (split.train_end, split.val_end)


def _config_groups(plan: StressPlan, names: Sequence[str]) -> dict[str, list[PolicySpec]]:
    """The listed policies by the env config they act in (those of one config share a stressed market)."""
    groups: dict[str, list[PolicySpec]] = {}
    specs = {plan.key(p): p for p in plan.policies}
    for name in names:
        cfg = specs[name].env_config(plan.training.env)
        groups.setdefault(_key(cfg), []).append(specs[name])
    return groups


def _key(obj: Any) -> str:
    return json.dumps(to_mapping(obj), sort_keys=True, default=str)


def _reference_group(plan: StressPlan, scenario_name: str, seed: int, policies: Sequence[str], root: str,
                     sink: Callable[[Path, bytes], Any]) -> list[dict[str, Any]]:
    """The per-policy loop (bench_stress.py, tests): forecasts over the whole market, cells at gzip level 9."""
    from agents.evaluation.rollout import evaluation_config, run_policy
    from agents.training import split_data
    from scenarios import ScenarioError, apply_scenario

    training = plan.training
    market = _market(training)
    scenario = _scenario(plan, scenario_name)
    span = _span(plan, market)
    rows = []
    for members in _config_groups(plan, policies).values():
        env_cfg = members[0].env_config(training.env)
        try:
            stressed = apply_scenario(scenario, market, env_cfg, span=span, rng=scenario_rng(seed, scenario.name))
        except ScenarioError as exc:
            return [{"skipped": True, "scenario": scenario.name, "seed": seed, "reason": str(exc)}]
        eval_cfg = evaluation_config(stressed.env_config)
        data = split_data(stressed.market, stressed.env_config, training.data).span(plan.split)
        results = [run_policy(spec.build(), data, eval_cfg, label=spec.name) for spec in members]
        rows += _write_cells(plan, members, results, stressed, scenario, seed, data, Path(root), len(market),
                             eval_cfg, sink, 9)
    return rows


def _run_grid(plan: StressPlan, groups: Sequence[tuple[str, int, Sequence[str]]], root: str,
              sink: Callable[[Path, bytes], Any]) -> list[dict[str, Any]]:
    """The fast path of :func:`run_groups`.

    1. each group's stressed market per env config (a group whose scenario cannot be applied is one
       skip row); 2. the env arrays once per distinct stressed market (identical ones, e.g. a scenario
       that draws nothing, are shared, and so are an agent's env and its baselines' exposure twin:
       :func:`envs.data.data_config`), the GARCH walk-forward resumed where the scenario first changes
       the market (:func:`prime_forecast`); 3. per env config, every market that can share a core
       (same settings, pairs, bar length) and every policy of that config as accounts of one
       :func:`~agents.evaluation.rollout.run_grid`; 4. each group's own cells written.
    """
    from agents.evaluation.rollout import evaluation_config, run_grid
    from agents.training import split_data
    from envs.core import bars_per_year
    from envs.data import data_config
    from scenarios import ScenarioError, apply_scenario

    training = plan.training
    market = _market(training)
    span = _span(plan, market)
    rows: list[dict[str, Any]] = []
    jobs = []  # (scenario, seed, members, stressed, market key)
    for scenario_name, seed, names in groups:
        scenario = _scenario(plan, scenario_name)
        mine = []
        try:
            for cfg_key, members in _config_groups(plan, names).items():
                env_cfg = members[0].env_config(training.env)
                stressed = apply_scenario(scenario, market, env_cfg, span=span,
                                          rng=scenario_rng(seed, scenario.name))
                mine.append((scenario, seed, cfg_key, members, stressed))
        except ScenarioError as exc:
            rows.append({"skipped": True, "scenario": scenario.name, "seed": seed, "reason": str(exc)})
            continue
        jobs += mine
    markets: dict[tuple[str, ...], dict[str, Any]] = {}  # distinct stressed market → its arrays and policies
    prepared: dict[tuple[str, str], Any] = {}  # the arrays, shared by configs that differ in what they do not read
    for scenario, seed, cfg_key, members, stressed in jobs:
        key = (cfg_key, stressed.market.fingerprint(), _key(stressed.env_config))
        if key not in markets:
            data_key = (key[1], _key(data_config(stressed.env_config)))
            if data_key not in prepared:
                prime_forecast(market, stressed.market, stressed.env_config)
                prepared[data_key] = split_data(stressed.market, stressed.env_config, training.data).span(plan.split)
            markets[key] = {"data": prepared[data_key], "eval_cfg": evaluation_config(stressed.env_config),
                            "specs": {}}
        markets[key]["specs"].update({plan.key(m): m for m in members})
    cores: dict[tuple[Any, ...], list[tuple[str, ...]]] = {}  # markets that one core can step together
    for key, entry in markets.items():
        d = entry["data"]
        cores.setdefault((key[0], _key(entry["eval_cfg"]), d.symbols, d.feature_names, d.bar_hours,
                          bars_per_year(d), d.corr is None, d.high is None), []).append(key)
    agents: dict[str, Policy] = {}  # a trained model is loaded once (it keeps no state across calls)

    def build(name: str, spec: PolicySpec) -> Policy:
        if spec.kind != "agent":
            return spec.build()  # a rule binds to its accounts: a fresh one per core
        if name not in agents:
            agents[name] = spec.build()
        return agents[name]

    for keys in cores.values():
        specs = {}
        for key in keys:
            specs.update(markets[key]["specs"])
        order = [plan.key(p) for p in plan.policies if plan.key(p) in specs]
        grid = run_grid([build(name, specs[name]) for name in order], [markets[k]["data"] for k in keys],
                        markets[keys[0]]["eval_cfg"], labels=[specs[name].name for name in order])
        for key, results in zip(keys, grid, strict=True):
            markets[key]["results"] = dict(zip(order, results, strict=True))
    for scenario, seed, cfg_key, members, stressed in jobs:
        entry = markets[(cfg_key, stressed.market.fingerprint(), _key(stressed.env_config))]
        results = [entry["results"][plan.key(m)] for m in members]
        rows += _write_cells(plan, members, results, stressed, scenario, seed, entry["data"], Path(root),
                             len(market), entry["eval_cfg"], sink, 1)
    return rows


def _write_cells(plan: StressPlan, members: Sequence[PolicySpec], results: Sequence[Any], stressed: Any, scenario: Any, seed: int,
                 data: Any, root: Path, n: int, eval_cfg: EnvConfig, sink: Callable[[Path, bytes], Any],
                 level: int) -> list[dict[str, Any]]:
    """Hand each policy's cell (per-step records, then its metrics row) to ``sink``; returns the rows."""
    from agents.evaluation.metrics import bars_per_year

    index = stressed.market.index
    window = stressed.window
    has_window = bool(scenario.transforms) and window is not None and window[1] > window[0]
    rows = []
    # What the data lacked and what stood in for it (depth, spread model, lookbacks): for the report.
    data_notes = " | ".join(dict.fromkeys([*stressed.market.notes, *data.notes]))
    stamps = _timestamp_strings(data.index)
    for spec, result in zip(members, results, strict=True):
        name = spec.name
        row = {"policy": name, "kind": spec.kind, "scenario": scenario.name, "seed": int(seed),
               "train_seed": spec.train_seed,
               "stress_start": str(index[window[0]]) if has_window else "",
               "stress_end": str(index[min(window[1], n) - 1]) if has_window else "",
               **{k: _plain(v) for k, v in result.summary.iloc[0].to_dict().items() if k not in ("policy", "account")},
               "var_nominal_rate": round(1.0 - eval_cfg.var_alpha, 10),
               "var_mode": eval_cfg.var_mode,
               "bars_per_year": bars_per_year(data.index),
               "notes": " | ".join(stressed.notes),
               "data_notes": data_notes}
        stem = plan.stem(root, spec, scenario.name, seed)
        records = result.records
        cols = [c for c in (*CELL_COLUMNS, *[c for c in records.columns if c.startswith(EXPOSURE_PREFIX)])
                if c in records.columns]
        times = (stamps[records["t"].to_numpy()] if stamps is not None
                 else records["timestamp"].astype(str).to_numpy())
        text = (columns_csv_text(cols, [times if c == "timestamp" else records[c].to_numpy() for c in cols])
                if level < 9 else None)  # the reference path keeps pandas' writer
        if text is None:
            frame = records[cols].copy()
            frame["timestamp"] = times
            buffer = io.BytesIO()
            # gzip level 1: level 9 (the default, kept by the reference path) takes ~7x the time for files 6% smaller
            frame.to_csv(buffer, index=False, compression={"method": "gzip", "mtime": 0, "compresslevel": level})
            data_bytes = buffer.getvalue()
        else:
            data_bytes = gzip.compress(text.encode("utf-8"), compresslevel=level, mtime=0)
        sink(stem.with_suffix(".csv.gz"), data_bytes)
        sink(stem.with_suffix(".json"), json.dumps(row, sort_keys=True).encode("utf-8"))  # last: marks it done
        rows.append(row)
    return rows


_CSV_SPECIAL = re.compile(r'[,"\r\n]')


def csv_text(frame: pd.DataFrame) -> str | None:
    """``frame.to_csv(index=False)`` as text, built from the same conversions pandas makes, or
    ``None`` when a column is not a plain float, int, bool or string one (then use pandas).

    Why: a cell's writing was most of its time. pandas turns a float column into numpy's
    ``astype(str)`` (NaN: empty), an int or bool column into ``str`` of each value, and joins the
    fields with commas, quoting only a field holding a comma, quote or line break; with no such
    field the text is that join, which this builds without pandas' per-row writer (a test holds
    it byte-equal to ``to_csv`` on every kind of value a cell holds).
    """
    return columns_csv_text(list(frame.columns), [frame[name].to_numpy() for name in frame.columns])


def columns_csv_text(names: Sequence[Any], arrays: Sequence[np.ndarray]) -> str | None:
    """:func:`csv_text` of the frame whose columns are ``names`` holding ``arrays`` (one per name,
    of one length), without building the frame (a cell's columns go straight from its records)."""
    names = [str(c) for c in names]
    if len(names) < 2 or any(_CSV_SPECIAL.search(n) for n in names):
        return None  # one column: pandas quotes an empty field (its line would be blank)
    columns = []
    for values in arrays:
        values = np.asarray(values)
        kind = values.dtype.kind
        if kind == "f" and values.dtype.itemsize == 8:
            # Python's float repr is numpy's str of a float64 (both shortest round-trip, the same
            # switch to exponents); mapping it over a list is about 1.4x faster than astype(str).
            text = list(map(repr, values.tolist()))
            for i in np.flatnonzero(np.isnan(values)).tolist():
                text[i] = ""
        elif kind in "iu":
            text = list(map(str, values.tolist()))
        elif kind == "b":
            text = np.where(values, "True", "False")
        elif kind == "O" and _plain_strings(values):
            text = values
        else:
            return None
        columns.append(text)
    return "\n".join([",".join(names), *map(",".join, zip(*columns, strict=True))]) + "\n"


def _plain_strings(values: np.ndarray) -> bool:
    """Whether every value is a string pandas writes as it is (no comma, quote or line break);
    checked on their join, in one C call (joining adds no character and refuses a non-string)."""
    try:
        joined = "".join(values)
    except TypeError:
        return False
    return not _CSV_SPECIAL.search(joined)


def _timestamp_strings(index: np.ndarray) -> np.ndarray | None:
    """Each bar's time as a cell writes it (``astype(str)`` of the UTC timestamps), formatted once
    for all the cells of a market; ``None`` unless every bar is a whole second.

    Why the condition: pandas prints fractions of a second for every value of a column when any
    value has one, so a string is fixed per bar (whatever else the cell holds) only when none has.
    """
    ns = np.asarray(index, dtype=np.int64)
    if ns.size == 0 or (ns % 1_000_000_000).any():
        return None
    key = ns.tobytes()  # the groups of a plan mostly share one span: format it once per process
    if _WORKER_CACHE.get("stamps_key") != key:
        _WORKER_CACHE["stamps_key"] = key
        _WORKER_CACHE["stamps"] = pd.Series(pd.to_datetime(ns, utc=True)).astype(str).to_numpy()
    return _WORKER_CACHE["stamps"]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# -- the whole plan --------------------------------------------------------------------------
def pending_cells(plan: StressPlan, root: Path) -> dict[tuple[str, int], list[str]]:
    """(scenario, seed) → policies whose cell has no finished ``.json`` yet."""
    out: dict[tuple[str, int], list[str]] = {}
    for scenario in plan.scenarios:
        for seed in plan.seeds:
            todo = [plan.key(p) for p in plan.policies
                    if not plan.stem(root, p, scenario, seed).with_suffix(".json").is_file()]
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


BACKENDS = ("process", "ray")
RAY_MISSING = 'the ray backend needs Ray: pip install -e ".[scale]"'


#: At most this many (scenario, seed) groups step as one batched core (memory: their arrays and
#: records are held until their cells are written; a resumed run loses at most one batch).
GRID_GROUPS = 12


def grid_batches(todo: dict[tuple[str, int], list[str]], at_least: int = 1) -> list[list[tuple[str, int, list[str]]]]:
    """The pending groups in batches of consecutive groups (a scenario's seeds together): at least
    ``at_least`` batches (one per worker) when there are that many groups, each of at most
    :data:`GRID_GROUPS` groups."""
    items = [(scenario, seed, names) for (scenario, seed), names in todo.items()]
    if not items:
        return []
    count = min(len(items), max(int(at_least), -(-len(items) // GRID_GROUPS)))
    edges = np.linspace(0, len(items), count + 1).round().astype(int)
    return [items[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def run_plan(plan: StressPlan, root: str | Path, *, workers: int | None = None,
             on_cell: Callable[[int], None] | None = None, log: Callable[[str], None] = print,
             fast: bool = True, backend: str = "process", ray_address: str | None = None) -> pd.DataFrame:
    """Run every pending cell and collect results.

    ``backend``: ``process`` — ``workers`` processes on this machine (1 runs in this process);
    ``ray`` — one Ray task per batch of (scenario, seed) groups (:func:`grid_batches`) on a local Ray of ``workers`` CPUs, or on the
    cluster at ``ray_address``; the tasks send their cell files back and this process writes them,
    so ``results.csv`` is the same whichever backend ran the cells.
    The fast path steps a batch of groups as accounts of one core (:func:`run_groups`).
    ``fast=False``: the reference path (each policy in its own loop, forecasts over the whole
    market, nothing reused across seeds, cells gzipped at level 9) — the same results and cell
    contents, slower; for benchmarks and tests.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
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

    batches = grid_batches(todo, workers if fast else len(todo))
    if backend == "ray":
        _run_on_ray(plan, root, batches, workers, ray_address, fast, collect)
    elif workers == 1:
        for batch in batches:
            collect(run_groups(plan, batch, str(root), fast=fast), sum(len(names) for *_, names in batch))
    else:
        with worker_pool(workers) as pool:
            futures = {pool.submit(run_groups, plan, batch, str(root), fast=fast): sum(len(n) for *_, n in batch)
                       for batch in batches}
            for future in as_completed(futures):
                collect(future.result(), futures[future])
    for row in skipped:
        log(f"skipped {row['scenario']} (seed {row['seed']}): {row['reason']}")
    if skipped:  # the report lists them with their reasons
        atomic_write_csv(root / "skipped.csv", pd.DataFrame(skipped)[["scenario", "seed", "reason"]], index=False)
    return collect_results(root)


def require_ray() -> Any:
    """The ``ray`` module, or one ConfigError line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    return ray


def _ray_group(plan: StressPlan, batch: Sequence[tuple[str, int, Sequence[str]]], root: str, fast: bool
               ) -> tuple[list[dict[str, Any]], list[tuple[str, bytes]]]:
    """One Ray task: a batch of (scenario, seed) groups; its cell files come back as (path under root, bytes)."""
    files: list[tuple[str, bytes]] = []
    rows = run_groups(plan, batch, root, fast=fast,
                      sink=lambda path, data: files.append((str(Path(path).relative_to(root)), data)))
    return rows, files


def _run_on_ray(plan: StressPlan, root: Path, batches: list[list[tuple[str, int, list[str]]]], workers: int,
                address: str | None, fast: bool, collect: Callable[[list[dict[str, Any]], int], None]) -> None:
    """Spread the groups as Ray tasks (a local Ray of ``workers`` CPUs unless ``address`` or one is running)."""
    ray = require_ray()
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        started = True
    try:
        task = ray.remote(num_cpus=1)(_ray_group)
        plan_ref = ray.put(plan)
        pending = {task.remote(plan_ref, batch, str(root), fast): sum(len(names) for *_, names in batch)
                   for batch in batches}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                rows, files = ray.get(ref)
                for relative, data in files:  # the records first, the metrics row last (it marks a cell done)
                    atomic_write_bytes(root / relative, data)
                collect(rows, pending.pop(ref))
    finally:
        if started:
            ray.shutdown()


def collect_results(root: Path) -> pd.DataFrame:
    """The tidy table of every finished cell under ``root/cells``."""
    rows = [json.loads(p.read_text()) for p in sorted((Path(root) / "cells").glob("*/*/seed-*.json"))]
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    if "train_seed" in table.columns:  # whole numbers, empty for baselines (not floats with NaN)
        table["train_seed"] = table["train_seed"].astype("Int64")
    first = [c for c in ("policy", "kind", "scenario", "seed", "train_seed", "stress_start", "stress_end")
             if c in table.columns]
    order = [c for c in ("scenario", "policy", "seed", "train_seed") if c in table.columns]
    return table[first + [c for c in table.columns if c not in first]].sort_values(
        order, kind="stable").reset_index(drop=True)
