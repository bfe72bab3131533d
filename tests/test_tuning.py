"""Hyperparameter search (agents/tuning.py, scripts/tune.py) and parallel seeds (agents/grid.py)."""

from __future__ import annotations

import io
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
import yaml

from agents.grid import RAY_MISSING, require_ray, train_seeds
from agents.hyperparams import HYPERPARAMS_DIR, SelectionConfig, TrainConfig
from agents.tuning import (DEFAULT_SEARCH, NO_ELIGIBLE_VALUE, SEARCH_DIR, SearchConfig, _Objective, check_space,
                           load_search, open_study, retrain, tune)
from simulator.common.configuration import from_mapping
from simulator.common.errors import ConfigError
from tests.conftest import load_script

SPACE = {"ppo.learning_rate": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True},
         "ppo.n_steps": {"type": "categorical", "choices": [32, 64]},
         "ppo.ent_coef": {"type": "float", "low": 0.0, "high": 0.01}}


def tiny_config(**overrides) -> TrainConfig:
    """A planted-edge run of about a second: 512 steps over 4 accounts, a validation every 256."""
    base = TrainConfig.from_yaml(HYPERPARAMS_DIR / "ppo_planted_edge.yaml")
    cfg = replace(base, name="tiny", n_envs=4, total_timesteps=512, eval_every=256, checkpoint_every=10**6,
                  data=replace(base.data, n_bars=2000), env=replace(base.env, episode_bars=100),
                  ppo=replace(base.ppo, n_steps=64, batch_size=128, n_epochs=1),
                  selection=replace(base.selection, max_drawdown=1.0, max_time_over_limit=1.0))
    return replace(cfg, **overrides)


def tiny_search(**overrides) -> SearchConfig:
    mapping = {"sampler": "tpe", "pruner": "median", "n_startup_trials": 2, "n_warmup_evaluations": 1,
               "space": SPACE, **overrides}
    return from_mapping(SearchConfig, mapping, source="search.yaml")


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_tune(tmp_path: Path, name: str, **kwargs) -> Path:
    kwargs.setdefault("n_trials", 3)
    search = kwargs.pop("search", tiny_search())
    config = kwargs.pop("config", tiny_config())
    return tune(config, search, out=tmp_path / name, log=lambda *_: None, **kwargs)


def trials(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "trials.csv")


# -- the search space: strict, one clear line ----------------------------------------------------
def test_shipped_search_spaces_fit_the_shipped_configs() -> None:
    for path in sorted(SEARCH_DIR.glob("*.yaml")):
        config = HYPERPARAMS_DIR / ("ppo_constrained.yaml" if path.stem == "constrained" else "ppo_default.yaml")
        check_space(SearchConfig.from_yaml(path), TrainConfig.from_yaml(config), source=str(path))


@pytest.mark.parametrize(("space", "words"), [
    ({"ppo.learnin_rate": {"type": "float", "low": 0.1, "high": 0.2}}, ["ppo.learnin_rate", "not a key"]),
    ({"ppo.gamma": {"type": "float", "low": 0.99, "high": 0.9}}, ["ppo.gamma", "low 0.99 > high 0.9"]),
    ({"ppo.gamma": {"type": "beta", "low": 0.9, "high": 0.99}}, ["ppo.gamma", "unknown distribution", "beta"]),
    ({"ppo.gamma": {"type": "float", "low": 0.9, "high": 1.5}}, ["ppo.gamma", "1.5", "(0, 1]"]),
    ({"selection.max_drawdown": {"type": "float", "low": 0.1, "high": 0.5}}, ["selection.max_drawdown",
                                                                             "cannot be searched"]),
    ({"ppo": {"type": "float", "low": 0.1, "high": 0.5}}, ["'ppo'", "a section"]),
    ({"ppo.n_steps": {"type": "categorical", "choices": []}}, ["ppo.n_steps", "choices"]),
    ({"ppo.gamma": {"type": "float", "low": 0.9, "high": 0.99, "sigma": 1}}, ["sigma", "unknown key"]),
])
def test_a_bad_search_space_is_one_line_naming_the_key(tmp_path, capsys, space, words) -> None:
    config = write(tmp_path / "tiny.yaml", tiny_config().to_dict())
    search = write(tmp_path / "search.yaml", {"space": space})
    rc = load_script("tune").main(["--config", str(config), "--search", str(search), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and err.startswith("error:"), err
    assert all(w in err for w in words), err
    assert not any((tmp_path / "o").iterdir())  # nothing started


@pytest.mark.parametrize(("key", "value"), [("sampler", "grid"), ("pruner", "hyperband")])
def test_an_unknown_sampler_or_pruner_is_one_line(tmp_path, capsys, key, value) -> None:
    search = write(tmp_path / "search.yaml", {key: value, "space": SPACE})
    with pytest.raises(ConfigError, match=f"{key} must be one of .* got '{value}'"):
        load_search(search)
    with pytest.raises(SystemExit) as exit_:
        load_script("tune").main(["--search", str(DEFAULT_SEARCH), f"--{key}", value])
    assert exit_.value.code == 2
    assert f"invalid choice: '{value}'" in capsys.readouterr().err


def test_a_journal_of_another_study_is_one_line(tmp_path, capsys) -> None:
    journal = tmp_path / "study.journal"
    open_study(journal, "first", config=tiny_config(), search=tiny_search())
    config = write(tmp_path / "tiny.yaml", tiny_config().to_dict())
    rc = load_script("tune").main(["--config", str(config), "--storage", str(journal), "--study-name", "second",
                                   "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "holds study 'first', not 'second'" in err and "--study-name first" in err
    assert not any((tmp_path / "o").iterdir())  # the refused study left no run folder
    with pytest.raises(ConfigError, match="started with another search"):  # same name, another space
        open_study(journal, "first", config=tiny_config(), search=tiny_search(space={"ppo.ent_coef": SPACE[
            "ppo.ent_coef"]}))
    garbage = tmp_path / "garbage.journal"
    garbage.write_text("not a journal\n")
    with pytest.raises(ConfigError, match="not an Optuna journal file"):
        open_study(garbage, "first", config=tiny_config(), search=tiny_search())


def test_without_ray_the_ray_backend_is_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[scale\]"'):
        require_ray()
    assert load_script("tune").main(["--backend", "ray", "--n-trials", "1"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {RAY_MISSING}"


# -- the study ------------------------------------------------------------------------------------
def test_a_study_writes_its_trials_and_a_best_yaml_that_retrains_to_the_same_value(tmp_path) -> None:
    run = run_tune(tmp_path, "a", n_trials=3, seed=0)
    table = trials(run)
    summary = yaml.safe_load((run / "summary.yaml").read_text())
    assert len(table) == 3 and set(table["state"]) <= {"COMPLETE", "PRUNED"}
    assert summary["trials"] == 3 and summary["best_trial"] in set(table["number"])
    assert (run / "study.journal").is_file() and not run.name.endswith(".partial")
    best = TrainConfig.from_yaml(run / "best.yaml")  # a ready training YAML
    row = table.set_index("number").loc[summary["best_trial"]]
    assert best.ppo.n_steps == row["params.ppo.n_steps"] and best.ppo.ent_coef == row["params.ppo.ent_coef"]
    assert best.total_timesteps == 512 and best.data == tiny_config().data  # only the searched keys moved
    for t in table[table["state"] == "COMPLETE"].itertuples():  # each value is the selection rule's objective
        metrics = yaml.safe_load((run / t.run / "metrics.yaml").read_text())
        assert metrics["selection"]["objective"] == pytest.approx(t.value, abs=0)
    # --trial-id retrains the trial from its stored params, to the same validation objective
    again = retrain(run / "study.journal", "tiny", summary["best_trial"], out=tmp_path / "re", progress=False)
    metrics = yaml.safe_load((again / "metrics.yaml").read_text())
    assert metrics["selection"]["objective"] == summary["best_value"]
    with pytest.raises(ConfigError, match="--trial-id 99: study 'tiny' has trials 0..2"):
        retrain(run / "study.journal", "tiny", 99, out=tmp_path / "re")


def test_same_seed_same_trials_another_seed_other_trials(tmp_path) -> None:
    def params(run: Path) -> pd.DataFrame:
        table = trials(run)
        return table[[c for c in table.columns if c.startswith("params.") or c in ("value", "state")]]

    search = tiny_search(sampler="random", pruner="none")
    first = params(run_tune(tmp_path, "a", seed=7, search=search))
    again = params(run_tune(tmp_path, "b", seed=7, search=search))
    other = params(run_tune(tmp_path, "c", seed=8, search=search, n_trials=1))
    pd.testing.assert_frame_equal(first, again)
    assert first["params.ppo.learning_rate"].iloc[0] != other["params.ppo.learning_rate"].iloc[0]


def test_a_trial_reports_each_validation_and_the_pruner_stops_it(tmp_path) -> None:
    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return True

    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune(),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_Objective(tiny_config(), tiny_search(), str(tmp_path)), n_trials=1)
    (trial,) = study.trials
    assert trial.state.name == "PRUNED" and list(trial.intermediate_values) == [1]
    (folder,) = (tmp_path / "trials").iterdir()  # kept, finished, marked
    assert not folder.name.endswith(".partial") and (folder / "pruned.yaml").is_file()


def test_a_trial_without_an_eligible_checkpoint_gets_the_stated_value_and_is_never_best(tmp_path) -> None:
    config = tiny_config(selection=SelectionConfig(max_drawdown=1e-6))  # no validation run stays this flat
    run = run_tune(tmp_path, "a", n_trials=1, config=config, search=tiny_search(pruner="none"))
    (row,) = trials(run).itertuples()
    assert row.state == "COMPLETE" and row.value == NO_ELIGIBLE_VALUE and not row.eligible
    assert "drawdown" in row.why
    assert not (run / "best.yaml").exists()
    assert yaml.safe_load((run / "summary.yaml").read_text())["best_trial"] is None


# -- parallel seeds --------------------------------------------------------------------------------
def weights(run: Path) -> dict[str, torch.Tensor]:
    with zipfile.ZipFile(run / "model.zip") as z:
        return torch.load(io.BytesIO(z.read("policy.pth")), weights_only=True)


def same_runs(a: list[Path], b: list[Path]) -> None:
    for x, y in zip(a, b, strict=True):
        mx, my = (yaml.safe_load((p / "metrics.yaml").read_text()) for p in (x, y))
        assert mx["validation"] == my["validation"] and mx["selection"] == my["selection"]
        wx, wy = weights(x), weights(y)
        assert wx.keys() == wy.keys() and all(torch.equal(wx[k], wy[k]) for k in wx)


def test_seeds_in_parallel_give_the_models_and_metrics_of_sequential_seeds(tmp_path) -> None:
    config = tiny_config()
    sequential = train_seeds(config, [1, 2], runs_root=tmp_path / "seq", n_jobs=1, progress=False)
    parallel = train_seeds(config, [1, 2], runs_root=tmp_path / "par", n_jobs=2)
    assert [yaml.safe_load((p / "config.yaml").read_text())["seed"] for p in parallel] == [1, 2]
    same_runs(sequential, parallel)
    with pytest.raises(ConfigError, match="repeats a seed"):
        train_seeds(config, [1, 1], runs_root=tmp_path / "x")


# -- ray -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ray_backend_gives_the_trials_and_seeds_of_the_process_backend(tmp_path) -> None:
    ray = pytest.importorskip("ray")
    search = tiny_search(sampler="random", pruner="none")
    process = run_tune(tmp_path, "p", seed=3, search=search, n_trials=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_tune(tmp_path, "r", seed=3, search=search, backend="ray", n_jobs=2, n_trials=2)
        a, b = trials(process), trials(on_ray)
        cols = [c for c in a.columns if c.startswith("params.")] + ["state", "value", "eligible"]
        pd.testing.assert_frame_equal(a[cols], b[cols])
        assert (on_ray / "ray" / "tiny").is_dir() and (on_ray / "best.yaml").is_file()
        seq = train_seeds(tiny_config(), [1, 2], runs_root=tmp_path / "seq", progress=False)
        same_runs(seq, train_seeds(tiny_config(), [1, 2], runs_root=tmp_path / "ray-seeds", n_jobs=2,
                                   backend="ray"))
    finally:
        ray.shutdown()


def test_a_shared_journal_continues_the_study(tmp_path) -> None:
    journal = tmp_path / "shared.journal"
    search = tiny_search(sampler="random", pruner="none")
    first = run_tune(tmp_path, "a", n_trials=1, seed=0, storage=journal, search=search)
    second = run_tune(tmp_path, "b", n_trials=1, seed=1, storage=journal, search=search)
    assert not (first / "study.journal").exists() and journal.is_file()
    assert list(trials(second)["number"]) == [0, 1]  # the second run added one trial to the first's


def test_train_script_parallel_options_need_seeds_and_ray(tmp_path, capsys, monkeypatch) -> None:
    train = load_script("train")
    assert train.main(["--n-jobs", "2", "--out", str(tmp_path)]) == 2
    assert "apply to --seeds" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)
    config = write(tmp_path / "tiny.yaml", tiny_config().to_dict())
    assert train.main(["--config", str(config), "--seeds", "1", "2", "--backend", "ray", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {RAY_MISSING}"
