"""Hyperparameter search over a training YAML: Optuna trials scored by the validation selection rule.

The interface is rl-baselines3-zoo's (``--n-trials --n-jobs --sampler --pruner --storage``, a
journal file optuna-dashboard opens, ``--trial-id`` to retrain one trial), with one difference that
matters: a trial's value is what the checkpoint selection rule (:class:`~agents.hyperparams.SelectionConfig`)
keeps on the **validation** span — the highest validation ``selection.objective`` among the
eligible checkpoints (never stopped out, within the drawdown, VaR-time and cost budgets). The test
span is never run. A trial without any eligible checkpoint completes with :data:`NO_ELIGIBLE_VALUE`
(below every real value, so the samplers rank it last and it is never the best trial).

After each periodic validation the trial reports the best eligible objective so far (the value the
run would end with if it stopped there; :data:`NO_ELIGIBLE_VALUE` while none is eligible), at step
1, 2, … (the evaluation's number), and the pruner may stop it there.

Backends: ``process`` — ``n_jobs`` worker processes share one Optuna study through a journal file
(the same file lets processes on other machines join); ``ray`` — the same study as Ray Tune trials
(Optuna's sampler through ``OptunaSearch`` writing to the same journal, the pruner as a Ray scheduler:
median → ``MedianStoppingRule``, halving → ASHA), resumable with ``Tuner.restore``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from agents.hyperparams import HYPERPARAMS_DIR, TrainConfig
from agents.training import train
from simulator.common.configuration import from_mapping, load_yaml, to_mapping
from simulator.common.errors import ConfigError, FxRiskError
from simulator.common.run_folder import RunFolder

SEARCH_DIR = HYPERPARAMS_DIR / "search"
DEFAULT_SEARCH = SEARCH_DIR / "default.yaml"
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "halving", "none")
DISTRIBUTIONS = ("float", "int", "categorical")
NO_ELIGIBLE_VALUE = -1e9
"""Value of a trial none of whose validation checkpoints passed the selection rule (dimensionless)."""
FIXED_KEYS = ("name", "seed", "total_timesteps", "eval_every", "checkpoint_every", "data", "selection",
              "lagrange.enabled", "lagrange.cost_limit", "env.var_limit", "env.var_alpha", "env.var_mode",
              "env.episode_bars", "env.account", "env.execution", "env.financing")
"""Keys (or sections) a search may not move: they define the objective, the span it is measured on or
the limits it is judged by (the cost budget per bar is ``lagrange.cost_limit / env.episode_bars``), or the
budget every trial gets."""


# -- the search space ----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ParamSpec:
    """One searched key: ``float`` / ``int`` between ``low`` and ``high`` (inclusive; ``log`` or ``step``
    optional) or ``categorical`` over ``choices``. Checked by :class:`SearchConfig`, which knows the key."""

    type: str
    """float, int or categorical."""
    low: float | None = None
    """Smallest value (float, int)."""
    high: float | None = None
    """Largest value (float, int)."""
    log: bool = False
    """Sample on a log scale (float, int; needs low > 0)."""
    step: float | None = None
    """Grid step (float, int); None: continuous (float) or 1 (int)."""
    choices: tuple[bool | int | float | str, ...] | None = None
    """Values of a categorical key."""


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """A search: sampler, pruner and the space (dotted keys of a training config → distribution)."""

    sampler: str = "tpe"
    """tpe or random."""
    pruner: str = "median"
    """median, halving or none."""
    n_startup_trials: int = 5
    """Trials sampled at random before TPE models the space; also the trials the median pruner waits for."""
    n_warmup_evaluations: int = 1
    """Validations of a trial before it may be pruned."""
    space: dict[str, ParamSpec] = field(default_factory=dict)
    """Dotted key of the training config → its distribution."""

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"pruner must be one of {PRUNERS}, got {self.pruner!r}")
        if self.n_startup_trials < 0 or self.n_warmup_evaluations < 0:
            raise ValueError("n_startup_trials and n_warmup_evaluations must be >= 0")
        if not self.space:
            raise ValueError("space: give at least one key to search")
        for key, spec in self.space.items():
            _check_spec(key, spec)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchConfig:
        return from_mapping(cls, load_yaml(path), source=str(path))

    def to_dict(self) -> dict:
        return to_mapping(self)


def _check_spec(key: str, spec: ParamSpec) -> None:
    where = f"space key '{key}'"
    if spec.type not in DISTRIBUTIONS:
        raise ValueError(f"{where}: unknown distribution type {spec.type!r} — use one of {DISTRIBUTIONS}")
    if spec.type == "categorical":
        if not spec.choices:
            raise ValueError(f"{where}: a categorical key needs a non-empty list of choices")
        if spec.low is not None or spec.high is not None or spec.log or spec.step is not None:
            raise ValueError(f"{where}: a categorical key takes choices only (no low, high, log or step)")
        return
    if spec.choices is not None:
        raise ValueError(f"{where}: choices are for type categorical; {spec.type} takes low and high")
    if spec.low is None or spec.high is None:
        raise ValueError(f"{where}: type {spec.type} needs low and high")
    if spec.low > spec.high:
        raise ValueError(f"{where}: low {spec.low:g} > high {spec.high:g} — swap them")
    if spec.log and spec.low <= 0:
        raise ValueError(f"{where}: log: true needs low > 0, got {spec.low:g}")
    if spec.log and spec.step is not None:
        raise ValueError(f"{where}: give log or step, not both")
    if spec.step is not None and not spec.step > 0:
        raise ValueError(f"{where}: step must be > 0, got {spec.step:g}")
    if spec.type == "int" and not all(float(v).is_integer() for v in (spec.low, spec.high, spec.step or 1)):
        raise ValueError(f"{where}: type int needs whole numbers for low, high and step")


def load_search(path: str | Path, *, sampler: str | None = None, pruner: str | None = None) -> SearchConfig:
    """The search YAML at ``path`` with ``sampler`` / ``pruner`` (command line) over its own."""
    search = SearchConfig.from_yaml(path)
    try:
        return replace(search, **{k: v for k, v in (("sampler", sampler), ("pruner", pruner)) if v is not None})
    except ValueError as exc:
        raise ConfigError(f"command line: {exc}") from None


def apply_params(config: TrainConfig, params: dict[str, Any], *, source: str) -> TrainConfig:
    """``config`` with each dotted key of ``params`` set, validated like a training YAML."""
    mapping = config.to_dict()
    for key, value in params.items():
        node = mapping
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return from_mapping(TrainConfig, mapping, source=source)


def check_space(search: SearchConfig, config: TrainConfig, *, source: str) -> None:
    """Every searched key is a value of ``config`` that a search may move, and each bound and choice
    gives a valid config; else one line naming the search file and the key."""
    mapping = config.to_dict()
    for key, spec in search.space.items():
        node: Any = mapping
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                valid = sorted(node) if isinstance(node, dict) else []
                raise ConfigError(f"{source}: space key '{key}' is not a key of the training config — valid keys "
                                  f"here: {', '.join(valid)}", source=source, key=key, problem="unknown key")
            node = node[part]
        if isinstance(node, dict):
            raise ConfigError(f"{source}: space key '{key}' is a section of the training config, not a value — "
                              f"name one of its keys ({', '.join(sorted(node))})", source=source, key=key)
        fixed = next((f for f in FIXED_KEYS if key == f or key.startswith(f + ".")), None)
        if fixed is not None:
            raise ConfigError(f"{source}: space key '{key}' cannot be searched — '{fixed}' defines the validation "
                              "objective, its span or its limits, or the budget every trial gets", source=source,
                              key=key)
        values = list(spec.choices) if spec.type == "categorical" else [spec.low, spec.high]
        for value in values:
            if spec.type == "int":
                value = int(value)
            try:
                apply_params(config, {key: value}, source="x")
            except ConfigError as exc:
                problem = str(exc).removeprefix("x: ")
                raise ConfigError(f"{source}: space key '{key}': value {value!r} does not give a valid training "
                                  f"config ({problem})", source=source, key=key) from None


def suggest(trial: Any, search: SearchConfig) -> dict[str, Any]:
    """Sample every key of the space on an Optuna trial (parameter names are the dotted keys)."""
    params: dict[str, Any] = {}
    for key, spec in search.space.items():
        if spec.type == "categorical":
            params[key] = trial.suggest_categorical(key, list(spec.choices))
        elif spec.type == "int":
            params[key] = trial.suggest_int(key, int(spec.low), int(spec.high), step=int(spec.step or 1),
                                            log=spec.log)
        else:
            params[key] = trial.suggest_float(key, spec.low, spec.high, step=spec.step, log=spec.log)
    return params


# -- optuna pieces ---------------------------------------------------------------------------------
def make_sampler(search: SearchConfig, seed: int | None) -> Any:
    import optuna

    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=search.n_startup_trials)


def first_prunable(search: SearchConfig) -> int:
    """The first validation (steps count from 1) at which a trial may be pruned: after the warm-up ones."""
    return search.n_warmup_evaluations + 1


def make_pruner(search: SearchConfig) -> Any:
    import optuna

    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=search.n_startup_trials,
                                           n_warmup_steps=first_prunable(search))
    if search.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first_prunable(search), reduction_factor=3)
    return optuna.pruners.NopPruner()


def journal(path: str | Path) -> Any:
    """An Optuna journal storage on the file ``path`` (created when missing; shared by processes)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--storage {path}: not an Optuna journal file ({type(exc).__name__}: {exc}) — pass a "
                          "journal a study wrote, or a new file name") from None


def study_names(storage: Any, path: str | Path) -> list[str]:
    try:
        return [s.study_name for s in storage.get_all_studies()]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"--storage {path}: not an Optuna journal file ({type(exc).__name__}: {exc})") from None


def open_study(path: str | Path, study_name: str, *, config: TrainConfig | None = None,
               search: SearchConfig | None = None, sampler: Any = None, pruner: Any = None) -> Any:
    """The study ``study_name`` in the journal ``path``: created (with ``config`` and ``search`` stored in it)
    when ``config`` is given, else it must exist. A journal holding only other studies, or this study
    with another config or search space, is one clear line."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = journal(path)
    names = study_names(storage, path)
    if study_name not in names:
        if names:
            raise ConfigError(f"--storage {path} holds study {', '.join(repr(n) for n in names)}, not "
                              f"'{study_name}' — pass --study-name {names[0]} to continue it, or a new --storage "
                              "file for a new study")
        if config is None:
            raise ConfigError(f"--storage {path}: no study '{study_name}' in it (the file is empty or new) — "
                              "pass the journal a tune.py run wrote")
    try:
        study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize", sampler=sampler,
                                    pruner=pruner, load_if_exists=True)
    except (ValueError, KeyError, TypeError) as exc:  # e.g. a line that is not journal JSON
        raise ConfigError(f"--storage {path}: not an Optuna journal file ({type(exc).__name__}: {exc}) — pass a "
                          "journal a study wrote, or a new file name") from None
    if config is not None:
        stored = study.user_attrs
        mine = {"config": config.to_dict(), "search": search.to_dict()["space"]}
        if not stored:
            for key, value in mine.items():
                study.set_user_attr(key, value)
        else:
            for key, value in mine.items():
                if stored.get(key) != value:
                    raise ConfigError(f"--storage {path}: study '{study_name}' was started with another {key} "
                                      "— pass the same training YAML and search space, or a new --study-name")
    return study


# -- one trial -----------------------------------------------------------------------------------
def _quiet(*_: Any) -> None:
    """Trials print nothing of their own (parallel ones would interleave)."""


def train_trial(base: TrainConfig, params: dict[str, Any], number: int, root: str | Path, report: Any
                ) -> dict[str, Any]:
    """Train trial ``number`` (``base`` with ``params``) under ``root/trials``; ``report(step, value)``
    after each validation may raise to stop it (a pruned run folder is kept, with ``pruned.yaml``).
    Returns the value, whether a checkpoint was eligible (and why not) and the run folder."""
    config = apply_params(base, params, source=f"trial {number}")
    config = replace(config, name=f"{base.name}-trial{number:04d}")
    runs = Path(root) / "trials"
    count, stopped = 0, False

    def on_validation(scores: dict[str, Any], best: float) -> None:
        nonlocal count, stopped
        count += 1
        try:
            report(count, best if math.isfinite(best) else NO_ELIGIBLE_VALUE)
        except BaseException:  # the pruner (Optuna) or the scheduler (Ray) stops the trial here
            stopped = True
            raise

    try:
        path = train(config, runs_root=runs, progress=False, log=_quiet, on_validation=on_validation)
    except BaseException:
        for partial in runs.glob(f"train-{config.name}-*.partial") if stopped else ():  # a failure stays .partial
            (partial / "pruned.yaml").write_text(f"stopped after validation {count} (pruned)\n", encoding="utf-8")
            os.replace(partial, partial.with_name(partial.name.removesuffix(".partial")))
        raise
    selection = load_yaml(path / "metrics.yaml")["selection"]
    value = selection["objective"]
    return {"value": NO_ELIGIBLE_VALUE if value is None else float(value), "eligible": value is not None,
            "why": selection["why"], "run": str(path.relative_to(root)), "evaluations": count}


class _Objective:
    """The process backend's Optuna objective (a class: worker processes receive it pickled)."""

    def __init__(self, base: TrainConfig, search: SearchConfig, root: str) -> None:
        self.base, self.search, self.root = base, search, root

    def __call__(self, trial: Any) -> float:
        import optuna

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after validation {step} (value {value:.4g})")

        result = train_trial(self.base, suggest(trial, self.search), trial.number, self.root, report)
        for key in ("eligible", "why", "run"):
            trial.set_user_attr(key, result[key])
        return result["value"]


def _optimize(storage_path: str, study_name: str, objective: _Objective, seed: int | None, n_trials: int,
              timeout: float | None) -> None:
    """One worker: trials of the shared study until it holds ``n_trials`` (or ``timeout`` seconds pass)."""
    import optuna

    study = optuna.load_study(study_name=study_name, storage=journal(storage_path),
                              sampler=make_sampler(objective.search, seed), pruner=make_pruner(objective.search))
    study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(FxRiskError, ValueError),
                   callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=None)])


# -- the ray backend -------------------------------------------------------------------------------
class _RaySpace:
    """Define-by-run space for ``OptunaSearch``: samples the keys and passes the Optuna trial number on."""

    def __init__(self, search: SearchConfig) -> None:
        self.search = search

    def __call__(self, trial: Any) -> dict[str, Any]:
        suggest(trial, self.search)
        return {"optuna_trial": trial.number}


def _ray_trainable(params: dict[str, Any], *, base: TrainConfig, root: str) -> None:
    """One Ray Tune trial: the same training as the process backend, reporting through ``tune.report``."""
    from ray import tune

    params = dict(params)
    number = int(params.pop("optuna_trial"))

    def report(step: int, value: float) -> None:
        tune.report({"objective": value, "evaluation": step, "final": False})

    result = train_trial(base, params, number, root, report)
    tune.report({"objective": result["value"], "evaluation": result["evaluations"] + 1, "final": True,
                 "eligible": result["eligible"], "why": result["why"], "run": result["run"]})


def _ray_search(search: SearchConfig, storage: Any, study_name: str, seed: int | None) -> Any:
    from ray.tune.search.optuna import OptunaSearch

    class Search(OptunaSearch):
        """A trial the scheduler stopped is PRUNED in the study (OptunaSearch would call it COMPLETE)."""

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if result is not None and not error and not result.get("final"):
                result = None
            super().on_trial_complete(trial_id, result, error)

    return Search(space=_RaySpace(search), metric="objective", mode="max", sampler=make_sampler(search, seed),
                  storage=storage, study_name=study_name)


def _ray_scheduler(search: SearchConfig, base: TrainConfig) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    if search.pruner == "median":
        return MedianStoppingRule(time_attr="training_iteration", metric="objective", mode="max",
                                  grace_period=first_prunable(search),
                                  min_samples_required=max(1, search.n_startup_trials),
                                  min_time_slice=math.inf)  # never pause to share time: a paused function
        # trial would restart from scratch
    if search.pruner == "halving":
        evaluations = math.ceil(base.total_timesteps / base.eval_every) + 2
        return ASHAScheduler(time_attr="training_iteration", metric="objective", mode="max", max_t=evaluations,
                             grace_period=first_prunable(search), reduction_factor=3)
    return FIFOScheduler()


def _run_ray(base: TrainConfig, search: SearchConfig, study: Any, storage: Any, study_name: str, root: Path, *,
             n_trials: int, n_jobs: int, seed: int | None, timeout: float | None, ray_address: str | None,
             restore: Path | None) -> None:
    from agents.grid import start_ray

    start_ray(ray_address, n_jobs)
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    trainable = tune.with_resources(tune.with_parameters(_ray_trainable, base=base, root=str(root)), {"cpu": 1})
    if restore is not None:
        if not tune.Tuner.can_restore(str(restore)):
            raise ConfigError(f"--restore {restore}: not a Ray Tune experiment folder — pass the ray/<study> folder "
                              "of an earlier tune.py --backend ray run")
        tuner = tune.Tuner.restore(str(restore), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        remaining = n_trials - len(study.trials)
        if remaining <= 0:
            return
        searcher = ConcurrencyLimiter(_ray_search(search, storage, study_name, seed), max_concurrent=n_jobs)
        tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=_ray_scheduler(search, base), num_samples=remaining,
            time_budget_s=timeout), run_config=tune.RunConfig(
            name=study_name, storage_path=str((root / "ray").resolve()), verbose=0))
    tuner.fit()


# -- the study -------------------------------------------------------------------------------------
def trials_table(study: Any, extras: dict[int, dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per trial: number, state, value, eligibility, the params, duration and run folder (relative
    to the tune folder); ``extras``: those attributes by trial number where the study lacks them (Ray)."""
    rows = []
    for t in study.trials:
        attrs = {**t.user_attrs, **(extras or {}).get(t.number, {})}
        row = {"number": t.number, "state": t.state.name, "value": t.value,
               "eligible": attrs.get("eligible"), "why": attrs.get("why", ""),
               "evaluations": len(t.intermediate_values),
               "duration_s": round(t.duration.total_seconds(), 2) if t.duration else None}
        row.update({f"params.{k}": v for k, v in t.params.items()})
        row["run"] = attrs.get("run", "")
        rows.append(row)
    return pd.DataFrame(rows)


def best_trial(study: Any) -> Any | None:
    """The completed trial of the highest value that had an eligible checkpoint, or None."""
    done = [t for t in study.trials if t.state.name == "COMPLETE" and t.value is not None
            and t.value > NO_ELIGIBLE_VALUE]
    return max(done, key=lambda t: (t.value, -t.number), default=None)


def tune(config: TrainConfig, search: SearchConfig, *, out: str | Path = "runs", study_name: str | None = None,
         storage: str | Path | None = None, n_trials: int = 20, n_jobs: int = 1, seed: int | None = None,
         timeout: float | None = None, backend: str = "process", ray_address: str | None = None,
         restore: str | Path | None = None, argv: list[str] | None = None, log: Any = print,
         search_source: str = "search space") -> Path:
    """Run the study into a fresh folder ``out/tune-<study>-<UTC time>``; returns it.

    The folder holds ``study.journal`` (unless ``storage`` names a shared one), ``trials.csv``,
    ``best.yaml`` (the best trial's training YAML, for ``scripts/train.py --config``), ``summary.yaml``
    and ``trials/`` (each trial's training run folder). ``n_trials``: this run stops starting trials once the study
    holds ``n_trials`` more than when it began (trials of other processes sharing the journal count). ``seed`` seeds the sampler (worker k of the process backend: ``seed + k``).
    """
    from agents.grid import BACKENDS, require_ray

    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {BACKENDS}, got {backend!r}")
    if n_trials < 1 or n_jobs < 1:
        raise ConfigError(f"--n-trials and --n-jobs must be >= 1, got {n_trials} and {n_jobs}")
    if backend == "ray":
        require_ray()
    study_name = study_name or config.name
    check_space(search, config, source=search_source)
    if restore is not None and storage is None:  # the interrupted run's journal, beside its ray/<study> folder
        storage = Path(restore).resolve().parents[1] / "study.journal"
    folder = RunFolder(out, f"tune-{study_name}", config={"train": config.to_dict(), "search": search.to_dict()},
                       argv=argv)
    storage_path = Path(storage) if storage is not None else folder.path / "study.journal"
    try:
        study = open_study(storage_path, study_name, config=config, search=search)
    except ConfigError:
        import shutil

        shutil.rmtree(folder.path, ignore_errors=True)  # a refused study leaves no run folder behind
        raise
    log(f"run folder: {folder.path}")
    log(f"study '{study_name}' in {storage_path} ({len(study.trials)} trials before this run); watch it: "
        f"optuna-dashboard {storage_path}")
    if storage is None:
        storage_path = folder.final_path / "study.journal"
    import optuna

    start = time.perf_counter()
    root = folder.path
    objective = _Objective(config, search, str(root))
    target = len(study.trials) + n_trials if restore is None else n_trials
    journal_path = str(folder.path / "study.journal") if storage is None else str(storage)
    if backend == "ray":
        _run_ray(config, search, study, journal(journal_path), study_name, root, n_trials=target, n_jobs=n_jobs,
                 seed=seed, timeout=timeout, ray_address=ray_address,
                 restore=Path(restore) if restore is not None else None)
    elif n_jobs == 1:
        _optimize(journal_path, study_name, objective, seed, target, timeout)
    else:
        from agents.evaluation.stress import worker_pool

        with worker_pool(n_jobs) as pool:
            futures = [pool.submit(_optimize, journal_path, study_name, objective,
                                   None if seed is None else seed + k, target, timeout) for k in range(n_jobs)]
            for f in futures:
                f.result()
    wall = time.perf_counter() - start
    study = optuna.load_study(study_name=study_name, storage=journal(journal_path))
    experiment = Path(restore) if restore is not None else root / "ray" / study_name
    table = trials_table(study, _ray_attrs(experiment) if backend == "ray" else None)
    folder.write_csv("trials.csv", table, index=False)
    best = best_trial(study)
    states = table["state"].value_counts().to_dict() if len(table) else {}
    summary = {"study": study_name, "storage": str(storage_path), "backend": backend, "sampler": search.sampler,
               "pruner": search.pruner, "seed": seed, "n_jobs": n_jobs, "wall_seconds": round(wall, 1),
               "trials": len(table), "states": {str(k): int(v) for k, v in states.items()},
               "objective": f"validation {config.selection.objective} of the selection rule's checkpoint",
               "no_eligible_value": NO_ELIGIBLE_VALUE,
               "best_trial": None if best is None else best.number,
               "best_value": None if best is None else float(best.value),
               "best_params": None if best is None else dict(best.params)}
    if best is not None:
        tuned = apply_params(config, best.params, source=f"trial {best.number}")
        folder.write_yaml("best.yaml", replace(tuned, name=f"{config.name}-tuned").to_dict())
    folder.write_yaml("summary.yaml", summary)
    running = [t.number for t in study.trials if t.state.name == "RUNNING"] if backend == "ray" else []
    if running:  # Ray stops on Ctrl+C with its state saved: keep the folder .partial, its journal in place
        again = " ".join(argv) if argv else "scripts/tune.py --config <the same> --backend ray"
        log(f"interrupted with trials {running} unfinished — resume with: {again} --restore {experiment}")
        return folder.path
    path = folder.finish()
    log(f"{len(table)} trials ({', '.join(f'{v} {k.lower()}' for k, v in states.items())}) in {wall:.0f} s")
    if best is None:
        log("no trial had a checkpoint that passed the selection rule on validation — no best.yaml; widen the "
            "search or the budget")
    else:
        log(f"best trial {best.number}: validation {config.selection.objective} {best.value:.4f}  "
            + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items()))
        log(f"best config: {path / 'best.yaml'}  (train it: python scripts/train.py --config {path / 'best.yaml'})")
    return path


def _ray_attrs(experiment: Path) -> dict[int, dict[str, Any]]:
    """Eligibility and run folder of Ray trials by Optuna trial number, from their final results (the
    driver's study cannot take user attributes once a trial is finished)."""
    import json

    found: dict[int, dict[str, Any]] = {}
    for result in experiment.glob("*/result.json"):
        config = json.loads((result.parent / "params.json").read_text(encoding="utf-8"))
        lines = [json.loads(x) for x in result.read_text(encoding="utf-8").splitlines() if x.strip()]
        final = [x for x in lines if x.get("final")]
        if final:
            found[int(config["optuna_trial"])] = {k: final[-1][k] for k in ("eligible", "why", "run")}
    return found


def retrain(storage: str | Path, study_name: str, trial_id: int, *, out: str | Path = "runs",
            total_timesteps: int | None = None, argv: list[str] | None = None, progress: bool = True) -> Path:
    """Train trial ``trial_id`` of the study again from its stored params (on the study's stored training
    config) into a fresh training run folder; returns it."""
    study = open_study(storage, study_name)
    base = study.user_attrs.get("config")
    if base is None:
        raise ConfigError(f"--storage {storage}: study '{study_name}' has no stored training config — was it "
                          "written by scripts/tune.py?")
    numbers = [t.number for t in study.trials]
    if trial_id not in numbers:
        raise ConfigError(f"--trial-id {trial_id}: study '{study_name}' has trials {min(numbers, default=0)}.."
                          f"{max(numbers, default=-1)} — pick one listed in trials.csv")
    trial = study.trials[numbers.index(trial_id)]
    if not trial.params:
        raise ConfigError(f"--trial-id {trial_id}: the trial has no params (state {trial.state.name})")
    config = from_mapping(TrainConfig, base, source=f"{storage} (study '{study_name}')")
    config = apply_params(config, trial.params, source=f"trial {trial_id}")
    config = replace(config, name=f"{config.name}-trial{trial_id}",
                     total_timesteps=total_timesteps or config.total_timesteps)
    return train(config, runs_root=out, argv=argv, progress=progress)


__all__ = ["DEFAULT_SEARCH", "NO_ELIGIBLE_VALUE", "PRUNERS", "SAMPLERS", "ParamSpec", "SearchConfig", "apply_params",
           "best_trial", "check_space", "load_search", "open_study", "retrain", "suggest", "train_trial",
           "trials_table", "tune"]
