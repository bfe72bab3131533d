"""The main job as one library call: data, forecasts, training, stress tests, reports and an index.

Why a library function: ``scripts/main_job.py`` (``make demo``) only parses its arguments and calls
:func:`run_main_job`; tests and notebooks call it the same way. Each step is a library call that
returns its finished run folder; the job runs inside ``main-<UTC time>.partial/`` and knows the
root's final name, so the paths it logs and returns are the ones that exist when it ends.

Steps (each in its own run folder under the root):

1. ``data-*``       the bundled EURUSD 2017 hourly sample, the generator calibrated to it, stylised facts
2. ``forecast-*``   every volatility and VaR/ES model backtested on the sample's test span
3. ``training/``    PPO on the sample (60/20/20 by date) with the VaR limit as a shield, as a reward
                    penalty and as a PID-Lagrangian constraint (:data:`SAMPLE_AGENTS`)
4. ``training-ecb/`` PPO on the ECB reference rates (EURUSD, USDJPY, GBPUSD; train 1999-2013,
                    validation 2014-2017), one run per training seed (``agents/hyperparams/ppo_ecb.yaml``)
5. ``sample/``      the sample agents and every baseline x the intraday liquidity scenarios
                    (:data:`SAMPLE_SCENARIOS`) x seeds on the sample's test span (hourly bars)
6. ``ecb/``         the ECB agent's training seeds and every baseline x every shipped scenario x seeds
                    on the ECB test span (2018 onward, never used to choose anything)
7. ``report/``      a comparison report per stress run, and ``index.html`` at the root
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agents.evaluation.stress_run import StressRun, agent_specs, build_plan, run_stress
from agents.grid import train_seeds
from agents.hyperparams import HYPERPARAMS_DIR, TrainConfig
from agents.report.build import ReportSettings, build_report
from agents.run_index import write_index
from agents.training import train, with_overrides
from simulator.common.cli import SEED_MAX
from simulator.common.configuration import load_yaml
from simulator.common.errors import ConfigError
from simulator.common.run_folder import RunFolder

#: (agent name, training YAML) of the sample agents.
SAMPLE_AGENTS: tuple[tuple[str, str], ...] = (("ppo", "ppo_default.yaml"), ("ppo_penalty", "ppo_penalty.yaml"),
                                              ("ppo_lagrangian", "ppo_constrained.yaml"))
ECB_AGENT: tuple[str, str] = ("ppo_ecb", "ppo_ecb.yaml")
#: Timesteps per agent / per ECB training seed: measured to fit ``make demo`` in 5 minutes on 2 cores (README).
SAMPLE_TIMESTEPS = 65_536
ECB_TIMESTEPS = 32_768
QUICK_TIMESTEPS = 8192
#: The sample run's scenarios: the hourly bars are where intraday liquidity stress (spreads, depth, gaps
#: within a day) means something; the ECB run takes every shipped scenario.
SAMPLE_SCENARIOS = ("baseline", "spread_x10", "liquidity_gone", "flash_crash", "weekend_gap", "snb_2015")
QUICK_SCENARIOS = ("baseline", "spread_x10", "snb_2015", "vol_shock")
QUICK_ECB_SCENARIOS = ("baseline", "correlation_break", "gbp_flash_2016")


@dataclass(frozen=True, kw_only=True)
class MainJobConfig:
    """What the main job runs. Timesteps are environment steps summed over a run's parallel accounts.

    ``quick``: a smoke run (8,192 timesteps per run, a few scenarios, one stress seed, one
    ECB seed pair, no neural forecasters); explicit values given with it still win.
    """

    runs_root: Path
    """Where the job's root folder ``main-<UTC time>/`` goes."""
    sample_timesteps: int | None = None
    """PPO timesteps per sample agent (default :data:`SAMPLE_TIMESTEPS`, quick :data:`QUICK_TIMESTEPS`)."""
    ecb_timesteps: int | None = None
    """PPO timesteps per ECB training seed (default :data:`ECB_TIMESTEPS`, quick :data:`QUICK_TIMESTEPS`)."""
    train_seeds: tuple[int, ...] | None = None
    """Training seeds of the ECB agent (default 0 1 2; quick 0 1)."""
    stress_seeds: tuple[int, ...] | None = None
    """Scenario seeds of every stress run (default 0 1; quick 0). With the ECB agent's training seeds they
    are the interval unit: training seed x scenario seed."""
    workers: int | None = None
    """Processes for stress cells and the ECB seeds (default: the number of cores)."""
    quick: bool = False
    neural: bool | None = None
    """LSTM/GRU in the forecast report (default: yes, except in quick mode)."""
    argv: tuple[str, ...] | None = None
    """The command shown in every manifest (default ``sys.argv``)."""

    def __post_init__(self) -> None:
        for key in ("sample_timesteps", "ecb_timesteps", "workers"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"main job: {key} must be >= 1, got {value}")
        for key in ("train_seeds", "stress_seeds"):
            seeds = getattr(self, key)
            if seeds is None:
                continue
            if not seeds or len(set(seeds)) != len(seeds) or not all(0 <= s <= SEED_MAX for s in seeds):
                raise ConfigError(f"main job: {key} must be distinct seeds in [0, {SEED_MAX}], got {list(seeds)}")
        if self.train_seeds is not None and len(self.train_seeds) < 2:
            raise ConfigError(f"main job: train_seeds needs at least two seeds (the interval unit is training seed x "
                              f"scenario seed), got {list(self.train_seeds)}")

    @property
    def resolved(self) -> dict[str, object]:
        """Every setting with its default filled in (what the root's manifest records)."""
        q = self.quick
        return {"sample_timesteps": self.sample_timesteps or (QUICK_TIMESTEPS if q else SAMPLE_TIMESTEPS),
                "ecb_timesteps": self.ecb_timesteps or (QUICK_TIMESTEPS if q else ECB_TIMESTEPS),
                "train_seeds": list(self.train_seeds or ((0, 1) if q else (0, 1, 2))),
                "stress_seeds": list(self.stress_seeds or ((0,) if q else (0, 1))),
                "workers": self.workers, "quick": q, "neural": (not q) if self.neural is None else self.neural}


@dataclass(frozen=True)
class StressReport:
    """A stress run of the job and its report, by final path."""

    run: Path
    results: Path
    html: Path
    interactive: Path
    headline: str
    verdict: str


@dataclass(frozen=True)
class MainJobResult:
    """The finished job: every step's run folder, the reports and the index, as final paths."""

    root: Path
    index: Path
    data: Path
    forecast: Path
    training: dict[str, list[Path]]
    """Agent name → its training run folders (one per training seed)."""
    stress: dict[str, StressReport]
    """``sample`` / ``ecb`` → the stress run and its report."""
    seconds: float
    tensorboard: list[str] = field(default_factory=list)
    """The TensorBoard commands (one per training folder)."""

    def paths(self) -> list[Path]:
        """Every path the result names (each exists when the job has returned)."""
        out = [self.root, self.index, self.data, self.forecast, *(p for ps in self.training.values() for p in ps)]
        for s in self.stress.values():
            out += [s.run, s.results, s.html, s.interactive]
        return out


def _tuned(config: TrainConfig, timesteps: int) -> TrainConfig:
    """``config`` at ``timesteps``, validating and checkpointing at least twice (the best checkpoint is chosen on
    validation, so a short run still has candidates)."""
    every = max(config.n_envs * config.ppo.n_steps, timesteps // 2)
    return with_overrides(config, total_timesteps=timesteps, eval_every=min(config.eval_every, every),
                          checkpoint_every=min(config.checkpoint_every, every))


def _forward_progress(log: Callable[[str], None]) -> Callable[[str], None]:
    """Training's log without its ``run folder: <...>.partial`` line: the job logs the final folder instead."""
    return lambda message: None if message.startswith("run folder:") else log(message)


def _selected(run: Path, name: str, log: Callable[[str], None]) -> tuple[str, Path]:
    """(name to stress it under, what to stress): the run's validation pick, else its final model as
    ``<name>_unselected`` (named so nobody takes it for a selected one; the reason is logged)."""
    selection = (load_yaml(run / "metrics.yaml") or {}).get("selection") or {}
    if selection.get("selected_step") is None and "why" in selection:
        log(f"note: {name}: {selection['why']}; stress-testing its final model as {name}_unselected")
        return f"{name}_unselected", run / "model.zip"
    return name, run


def run_main_job(config: MainJobConfig, log: Callable[[str], None] = print) -> MainJobResult:
    """Run the whole pipeline (module docstring) in a fresh ``runs_root/main-<UTC time>/``; returns its final paths.

    ``log`` gets the step headers, the steps' tables and, at the end, only final paths.
    """
    from forecasters.report import ForecastReportSettings, forecast_report, forecast_split
    from simulator.data.sample import load_sample
    from simulator.synthetic.summary import data_summary

    settings = config.resolved
    quick, stress_seeds = config.quick, tuple(settings["stress_seeds"])
    argv = list(config.argv) if config.argv is not None else None
    start, load_at_start = time.perf_counter(), _load()
    folder = RunFolder(config.runs_root, "main", config=settings, argv=argv)
    root, final = folder.path, folder.final_path

    def at_end(path: Path) -> Path:
        """Where a path inside the running root will be once the root is renamed."""
        return final / Path(path).relative_to(root)

    steps = 7

    def step(n: int, title: str) -> None:
        log(f"\n[{n}/{steps}] {title}  ({time.perf_counter() - start:.0f} s elapsed)")

    step(1, "data: bundled EURUSD 2017 sample, a synthetic series calibrated to it, stylised facts")
    sample = load_sample()
    data = data_summary(sample, years=0.5 if quick else 4.0, seed=42, runs_root=root, argv=argv, log=log)
    step(2, "forecasts: volatility models, VaR/ES, backtests on the sample's test span")
    forecast_settings = ForecastReportSettings(neural=bool(settings["neural"]))  # forecast_report.py's defaults
    split = forecast_split(sample, train=forecast_settings.train, validation=forecast_settings.validation)
    forecast = forecast_report(sample, split, forecast_settings, runs_root=root, argv=argv, log=log, progress=False)

    training: dict[str, list[Path]] = {}
    sample_models: list[tuple[str, Path]] = []
    for name, yaml_name in SAMPLE_AGENTS:
        step(3, f"training on the sample: {name} ({yaml_name}, {settings['sample_timesteps']:,} timesteps)")
        cfg = _tuned(TrainConfig.from_yaml(HYPERPARAMS_DIR / yaml_name), int(settings["sample_timesteps"]))
        run = train(cfg, runs_root=root / "training", argv=argv, progress=False, log=_forward_progress(log))
        training[name] = [run]
        log(f"  {name}: {at_end(run)}")
        sample_models.append(_selected(run, name, log))

    name, yaml_name = ECB_AGENT
    seeds = list(settings["train_seeds"])
    step(4, f"training on the ECB history: {name} ({yaml_name}, seeds {', '.join(map(str, seeds))}, "
            f"{settings['ecb_timesteps']:,} timesteps each)")
    ecb_config = _tuned(TrainConfig.from_yaml(HYPERPARAMS_DIR / yaml_name), int(settings["ecb_timesteps"]))
    ecb_runs = train_seeds(ecb_config, seeds, runs_root=root / "training-ecb",
                           n_jobs=min(len(seeds), config.workers or _cores()), argv=argv, progress=False)
    training[name] = list(ecb_runs)
    for run in ecb_runs:
        log(f"  {name}: {at_end(run)}")

    stress: dict[str, StressRun] = {}
    step(5, "stress tests on the sample's test span: the sample agents and every baseline (hourly bars, "
            "intraday liquidity)")
    agents = [spec for agent, path in sample_models for spec in agent_specs(agent, [path])]
    plan = build_plan(agents=agents, scenarios=QUICK_SCENARIOS if quick else SAMPLE_SCENARIOS, seeds=stress_seeds)
    stress["sample"] = run_stress(plan, root / "sample", workers=config.workers, argv=argv, progress=False, log=log)
    step(6, f"stress tests on the ECB test span (2018 onward): {name} x {len(seeds)} training seeds and every "
            f"baseline")
    plan = build_plan(agents=agent_specs(name, ecb_runs), scenarios=QUICK_ECB_SCENARIOS if quick else None,
                      seeds=stress_seeds)
    stress["ecb"] = run_stress(plan, root / "ecb", workers=config.workers, argv=argv, progress=False, log=log)

    reports: dict[str, StressReport] = {}
    for key in ("ecb", "sample"):  # the sample's headline table is the last one logged
        step(7, f"report: {key}")
        report = build_report(stress[key].path, settings=ReportSettings(), argv=argv)
        log(report.headline)
        log("")
        log(report.verdict)
        run = at_end(stress[key].path)
        reports[key] = StressReport(run=run, results=run / "results.csv", html=at_end(report.html),
                                    interactive=at_end(report.interactive), headline=report.headline,
                                    verdict=report.verdict)
    seconds = time.perf_counter() - start
    boards = [f"tensorboard --logdir {final / sub}" for sub in ("training", "training-ecb")]
    write_index(root, title=f"FX Risk Gym main job {final.name}", tensorboard=boards,
                summary=f"Finished in {seconds:.0f} s; timesteps {settings['sample_timesteps']:,} per sample agent, "
                        f"{settings['ecb_timesteps']:,} per ECB training seed ({len(seeds)} seeds); stress seeds "
                        f"{', '.join(map(str, stress_seeds))}{'; quick mode' if quick else ''}.")
    folder.finish()  # renames the root to ``final``: every path below is now real
    result = MainJobResult(root=final, index=final / "index.html", data=at_end(data.path),
                           forecast=at_end(forecast.path), training={k: [at_end(p) for p in v]
                                                                     for k, v in training.items()},
                           stress=reports, seconds=seconds, tensorboard=boards)
    cpu = _cpu_seconds()
    log(f"\nmain job finished in {seconds:.0f} s on {_cores()} cores (machine load, 1-minute average: "
        f"{load_at_start} at the start, {_load()} at the end; {cpu:.0f} CPU-seconds in this process and its workers)")
    log(f"run folder: {result.root}")
    log(f"index:      {result.index}")
    for board in boards:
        log(f"learning curves: {board}")
    log(f"report (ECB history, {name} x {len(seeds)} training seeds and baselines): {reports['ecb'].html}")
    log(f"report (bundled sample, agents and baselines): {reports['sample'].html}")
    return result


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished workers, seconds (what the load does not change)."""
    import resource

    used = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in used)


def _load() -> str:
    """The 1-minute load average (runnable processes; above the core count, the job shares its cores)."""
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "unknown"


__all__ = ["ECB_AGENT", "SAMPLE_AGENTS", "MainJobConfig", "MainJobResult", "StressReport", "run_main_job"]
