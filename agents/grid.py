"""Runs of one config over several seeds, in parallel: a process pool on this machine or Ray tasks.

Why one place: ``scripts/train.py --seeds`` and ``scripts/tune.py --backend ray`` share how Ray is
found (an optional extra, ``pip install -e ".[scale]"``) and started (a local Ray of ``num_cpus``
by default, or an existing cluster by address). Each run is the same function of its config in
whatever process runs it (torch on one thread, every generator seeded from the config), so the
parallel runs give the models and metrics of the sequential ones.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from agents.hyperparams import TrainConfig
from agents.training import train
from simulator.common.errors import ConfigError

BACKENDS = ("process", "ray")
RAY_MISSING = 'Ray is not installed — pip install -e ".[scale]" (or make setup) for --backend ray'


def require_ray() -> Any:
    """The ``ray`` module, or one clear line saying how to install it."""
    try:
        import ray
        import ray.tune  # noqa: F401  (the tune extra)
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    return ray


def start_ray(address: str | None, num_cpus: int) -> Any:
    """Connect to the Ray cluster at ``address`` (``ray start --head`` printed it), or start a local
    Ray of ``num_cpus`` CPUs; a Ray already initialised in this process is used as it is."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    if address:
        try:
            ray.init(address=address, log_to_driver=False)
        except ConnectionError as exc:
            raise ConfigError(f"--ray-address {address}: cannot connect ({exc}) — start the head with "
                              "'ray start --head' and pass the address it prints") from None
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return ray


def _quiet(*_: Any) -> None:
    """A log that prints nothing (parallel runs would interleave their lines)."""


def _train_one(config: TrainConfig, runs_root: str, argv: list[str] | None) -> str:
    return str(train(config, runs_root=runs_root, argv=argv, progress=False, log=_quiet))


def seed_configs(config: TrainConfig, seeds: list[int]) -> list[TrainConfig]:
    """One config per seed, named ``<name>-s<seed>``; a repeated seed is one clear line."""
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds repeats a seed: {seeds}")
    return [replace(config, seed=s, name=f"{config.name}-s{s}") for s in seeds]


def train_seeds(config: TrainConfig, seeds: list[int], *, runs_root: str | Path, n_jobs: int = 1,
                backend: str = "process", ray_address: str | None = None, argv: list[str] | None = None,
                progress: bool = True) -> list[Path]:
    """Train ``config`` once per seed (one run folder each, in seed order).

    ``n_jobs`` 1 trains one after the other in this process; more trains ``n_jobs`` at a time in
    worker processes (``backend`` process) or as Ray tasks of one CPU each (``backend`` ray, on a
    local Ray of ``n_jobs`` CPUs or the cluster at ``ray_address``).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {BACKENDS}, got {backend!r}")
    if n_jobs < 1:
        raise ConfigError(f"--n-jobs must be >= 1, got {n_jobs}")
    configs = seed_configs(config, seeds)
    root = str(runs_root)
    if backend == "ray":
        ray = start_ray(ray_address, n_jobs)
        task = ray.remote(num_cpus=1)(_train_one)
        return [Path(p) for p in ray.get([task.remote(c, root, argv) for c in configs])]
    if n_jobs == 1 or len(configs) == 1:
        return [train(c, runs_root=root, argv=argv, progress=progress) for c in configs]
    from agents.evaluation.stress import worker_pool

    with worker_pool(min(n_jobs, len(configs))) as pool:
        futures = [pool.submit(_train_one, c, root, argv) for c in configs]
        return [Path(f.result()) for f in futures]


__all__ = ["BACKENDS", "RAY_MISSING", "require_ray", "seed_configs", "start_ray", "train_seeds"]
