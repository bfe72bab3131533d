"""Stress-test runner and the main job, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from agents.evaluation.stress import PolicySpec, StressPlan, cell_stem, pending_cells, run_plan, scenario_rng
from agents.hyperparams import HYPERPARAMS_DIR, TrainConfig
from tests.conftest import load_script

CONFIG = HYPERPARAMS_DIR / "ppo_planted_edge.yaml"




def small_config(tmp_path: Path) -> Path:
    raw = yaml.safe_load(CONFIG.read_text())
    raw["data"]["n_bars"] = 3000
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_stress_script_writes_a_tidy_table_and_cells(tmp_path, capsys) -> None:
    cfg = small_config(tmp_path)
    rc = load_script("stress_test").main(["--config", str(cfg), "--baselines", "flat", "fixed_fraction",
                                      "--scenarios", "baseline", "spread_x10", "--seeds", "0", "1",
                                      "--out", str(tmp_path / "runs"), "--workers", "1", "--no-progress"])
    assert rc == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert not run.name.endswith(".partial")
    table = pd.read_csv(run / "results.csv")
    assert len(table) == 2 * 2 * 2
    for column in ("policy", "kind", "scenario", "seed", "total_return", "annualised_volatility", "sharpe_ratio",
                   "sortino_ratio", "max_drawdown", "cvar", "worst_bar_return", "var_exceptions",
                   "var_nominal_rate", "time_over_limit", "margin_calls", "stop_outs", "turnover", "costs_paid"):
        assert column in table.columns, column
    flat = table[table.policy == "flat"]
    assert (flat.costs_paid == 0).all() and (flat.total_return == 0).all()
    fixed = table[table.policy == "fixed_fraction"].set_index(["scenario", "seed"])
    for seed in (0, 1):  # wider spreads cost a trading policy more, the same bars otherwise
        assert fixed.loc[("spread_x10", seed), "costs_paid"] > fixed.loc[("baseline", seed), "costs_paid"]
    assert (table[table.scenario == "baseline"].stress_start.isna()).all()
    cells = pd.read_csv(cell_stem(run, "fixed_fraction", "spread_x10", 0).with_suffix(".csv.gz"))
    assert {"equity", "var", "var_limit", "exposure_EURUSD", "timestamp"} <= set(cells.columns)
    out = capsys.readouterr().out
    assert "compare.py" in out


def garch_config(tmp_path: Path) -> Path:
    """The small market with GARCH-t forecasts refitted every 100 bars (so stress windows cut refit blocks)."""
    raw = yaml.safe_load(small_config(tmp_path).read_text())
    raw["env"].update(vol_model="garch-t", garch_window=400, garch_min_window=300, garch_refit_every=100)
    path = tmp_path / "garch.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def cell_bytes(root: Path) -> dict[str, bytes]:
    """Each cell file's content (the records uncompressed: gzip levels may differ)."""
    import gzip

    return {str(p.relative_to(root)): gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
            for p in sorted((root / "cells").rglob("seed-*"))}


def test_fast_path_writes_what_the_per_policy_loop_writes(tmp_path, monkeypatch) -> None:
    # Arrange: scenarios that change prices from a random window on (forecasts resumed there), change
    # spreads only (forecasts all shared), or draw nothing (the second seed reuses the first's runs).
    training = TrainConfig.from_yaml(garch_config(tmp_path))
    plan = StressPlan(training=training, policies=tuple(PolicySpec(name=b, kind="baseline", baseline=b)
                                                        for b in ("flat", "vol_target", "var_budget", "atr_stop")),
                      scenarios=("baseline", "spread_x10", "vol_shock", "snb_2015"), seeds=(0, 1))
    # Act: each path with its own forecast cache, so neither reads what the other computed
    monkeypatch.setenv("FXRISK_CACHE_DIR", str(tmp_path / "cache-fast"))
    fast = run_plan(plan, tmp_path / "fast", workers=1)
    monkeypatch.setenv("FXRISK_CACHE_DIR", str(tmp_path / "cache-slow"))
    slow = run_plan(plan, tmp_path / "slow", workers=1, fast=False)
    # Assert: every cell file (its content) and the table, byte for byte
    assert len(fast) == 4 * 4 * 2
    assert fast.to_csv(index=False) == slow.to_csv(index=False)
    assert cell_bytes(tmp_path / "fast") == cell_bytes(tmp_path / "slow")
    # and the forecasts the fast path resumed are the ones a fresh run computes
    fast_dir, slow_dir = tmp_path / "cache-fast" / "forecasts", tmp_path / "cache-slow" / "forecasts"
    names = sorted(p.name for p in fast_dir.glob("*.npz"))
    assert names == sorted(p.name for p in slow_dir.glob("*.npz")) and len(names) >= 5
    for name in names:
        with np.load(fast_dir / name) as a, np.load(slow_dir / name) as b:
            assert a.files == b.files
            for key in a.files:
                assert np.array_equal(a[key], b[key], equal_nan=a[key].dtype.kind == "f"), (name, key)


def test_seeds_move_random_stress_windows_reproducibly() -> None:
    a, b, c = scenario_rng(0, "spread_x10"), scenario_rng(0, "spread_x10"), scenario_rng(1, "spread_x10")
    assert a.integers(0, 10**9) == b.integers(0, 10**9) != c.integers(0, 10**9)
    assert scenario_rng(0, "spread_x10").integers(0, 10**9) != scenario_rng(0, "vol_shock").integers(0, 10**9)


def test_an_interrupted_run_resumes_without_recomputing_finished_cells(tmp_path) -> None:
    training = TrainConfig.from_yaml(small_config(tmp_path))
    plan = StressPlan(training=training, policies=(PolicySpec(name="flat", kind="baseline", baseline="flat"),
                                                   PolicySpec(name="vol_target", kind="baseline",
                                                              baseline="vol_target")),
                      scenarios=("baseline", "vol_shock"), seeds=(0,))
    root = tmp_path / "run"
    first = run_plan(plan, root, workers=1)
    assert len(first) == 4 and not pending_cells(plan, root)
    # Interrupt: one cell lost its result; the others must be reused, not recomputed.
    lost = cell_stem(root, "vol_target", "vol_shock", 0).with_suffix(".json")
    kept = {p: p.stat().st_mtime_ns for p in (root / "cells").glob("*/*/*.json") if p != lost}
    expected = json.loads(lost.read_text())
    lost.unlink()
    assert pending_cells(plan, root) == {("vol_shock", 0): ["vol_target"]}
    again = run_plan(plan, root, workers=1)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    redone = json.loads(lost.read_text())
    assert redone["sharpe_ratio"] == pytest.approx(expected["sharpe_ratio"])  # same seed, same result
    pd.testing.assert_frame_equal(first, again)


def test_resume_flag_finishes_a_partial_run_folder(tmp_path) -> None:
    cfg = small_config(tmp_path)
    args = ["--config", str(cfg), "--baselines", "flat", "--scenarios", "baseline", "spread_x10", "--seeds", "0",
            "--out", str(tmp_path / "runs"), "--workers", "1", "--no-progress"]
    assert load_script("stress_test").main(args) == 0
    (run,) = (tmp_path / "runs").iterdir()
    partial = run.with_name(run.name + ".partial")  # as if killed before the rename
    run.rename(partial)
    (partial / "results.csv").unlink()
    cell_stem(partial, "flat", "spread_x10", 0).with_suffix(".json").unlink()
    assert load_script("stress_test").main(["--resume", str(partial), "--no-progress"]) == 0
    assert (run / "results.csv").is_file() and len(pd.read_csv(run / "results.csv")) == 2


def test_list_and_help_explain_themselves(capsys) -> None:
    assert load_script("stress_test").main(["--list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert any(line.startswith("snb_2015") for line in listing) and len(listing) >= 10
    for name in ("stress_test", "compare", "main_job", "train", "evaluate"):
        with pytest.raises(SystemExit) as exit_info:
            load_script(name).main(["--help"])
        assert exit_info.value.code == 0
        assert "usage" in capsys.readouterr().out


def test_unknown_scenario_or_baseline_is_one_clear_line(tmp_path, capsys) -> None:
    rc = load_script("stress_test").main(["--scenarios", "snb_2051", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "snb_2051" in err
    rc = load_script("stress_test").main(["--baselines", "vol_targte", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "vol_targte" in err and "vol_target" in err


@pytest.mark.slow  # starting a local Ray takes tens of seconds on a busy 2-core machine
def test_ray_backend_writes_the_process_pools_results_byte_for_byte(tmp_path) -> None:
    ray = pytest.importorskip("ray")
    stress_test = load_script("stress_test")
    # GARCH forecasts: their fits move with BLAS threads, which a Ray worker sets to one
    common = ["--config", str(garch_config(tmp_path)), "--baselines", "flat", "vol_target", "--scenarios",
              "baseline", "vol_shock", "--seeds", "0", "1", "--no-progress"]
    assert stress_test.main([*common, "--out", str(tmp_path / "pool"), "--workers", "2"]) == 0
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        assert stress_test.main([*common, "--out", str(tmp_path / "ray"), "--backend", "ray"]) == 0
    finally:
        ray.shutdown()
    (pool,), (on_ray,) = (tmp_path / "pool").iterdir(), (tmp_path / "ray").iterdir()
    assert (pool / "results.csv").read_bytes() == (on_ray / "results.csv").read_bytes()
    assert cell_bytes(pool) == cell_bytes(on_ray) and len(cell_bytes(pool)) == 2 * 2 * 2 * 2


def test_ray_backend_without_ray_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    rc = load_script("stress_test").main(["--config", str(small_config(tmp_path)), "--baselines", "flat",
                                          "--scenarios", "baseline", "--backend", "ray",
                                          "--out", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and 'pip install -e ".[scale]"' in err
    assert not any((tmp_path / "runs").iterdir())  # no run folder was started


@pytest.mark.slow  # trains two tiny agents and builds a report (about 40 s on 2 cores)
def test_an_agents_training_seeds_are_runs_of_their_own_in_results_and_intervals(tmp_path, capsys) -> None:
    from agents.report.ranking import rank_policies
    from agents.report.results import collapse_seed_invariant, load_results

    # Arrange: two training seeds of one tiny agent (scripts/train.py --seeds writes <name>-s<seed>)
    raw = yaml.safe_load(small_config(tmp_path).read_text())
    raw.update(total_timesteps=256, n_envs=2, eval_every=10**6, checkpoint_every=10**6)
    raw["ppo"].update(n_steps=128, batch_size=128, n_epochs=1)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    seeds_dir = tmp_path / "agents"
    assert load_script("train").main(["--config", str(cfg), "--seeds", "3", "5", "--out", str(seeds_dir),
                                      "--no-progress"]) == 0, capsys.readouterr().err
    # Act: the folder of seeds as one agent
    rc = load_script("stress_test").main(["--model", f"ppo={seeds_dir}", "--baselines", "flat", "--scenarios",
                                          "baseline", "vol_shock", "--seeds", "0", "1", "--workers", "1",
                                          "--out", str(tmp_path / "runs"), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    (run,) = (tmp_path / "runs").iterdir()
    table = pd.read_csv(run / "results.csv")
    # Assert: every cell runs each seed's model, recorded in train_seed; the baseline has none
    ppo = table[table.policy == "ppo"]
    assert sorted(ppo.train_seed.unique()) == [3, 5] and len(ppo) == 2 * 2 * 2
    assert table.loc[table.policy == "flat", "train_seed"].isna().all()
    assert cell_stem(run, "ppo", "vol_shock", 1, 5).with_suffix(".csv.gz").is_file()
    assert not cell_stem(run, "ppo", "vol_shock", 1).with_suffix(".json").exists()
    # the report's runs: training seed x scenario seed; the seed-invariant test data once per training seed
    results, _ = collapse_seed_invariant(load_results(run / "results.csv"))
    ranking = rank_policies(results, rng=np.random.default_rng(0), n_resamples=200).set_index("policy")
    assert ranking.loc["ppo", "stressed_runs"] == 4 and ranking.loc["ppo", "test_runs"] == 2
    assert ranking.loc["flat", "stressed_runs"] == 2 and ranking.loc["flat", "test_runs"] == 1
    assert load_script("compare").main([str(run)]) == 0


def test_stress_results_do_not_depend_on_the_blas_thread_count(tmp_path, monkeypatch) -> None:
    from threadpoolctl import threadpool_limits

    from agents.hyperparams import DEFAULT_CONFIG

    # Arrange: the sample's GARCH-t (windows of thousands of bars: OpenBLAS splits their sums by thread)
    plan = StressPlan(training=TrainConfig.from_yaml(DEFAULT_CONFIG),
                      policies=(PolicySpec(name="vol_target", kind="baseline", baseline="vol_target"),),
                      scenarios=("baseline",), seeds=(0,))
    tables = []
    for threads in (2, 1):  # a pool worker on a 2-core machine; a Ray worker
        monkeypatch.setenv("FXRISK_CACHE_DIR", str(tmp_path / f"cache-{threads}"))
        # Act
        with threadpool_limits(limits=threads, user_api="blas"):
            tables.append(run_plan(plan, tmp_path / f"run-{threads}", workers=1).to_csv(index=False))
    # Assert
    assert tables[0] == tables[1]


@pytest.mark.parametrize("model", ["ppo=runs/a,,runs/b", "ppo=NO_SUCH_DIR"])
def test_a_bad_model_list_is_one_clear_line(tmp_path, capsys, model: str) -> None:
    rc = load_script("stress_test").main(["--model", model, "--out", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and ("empty path" in err or "NO_SUCH_DIR" in err)


def test_a_folder_without_run_folders_is_one_clear_line(tmp_path, capsys) -> None:
    (tmp_path / "seeds" / "notes").mkdir(parents=True)
    rc = load_script("stress_test").main(["--model", f"ppo={tmp_path / 'seeds'}", "--out", str(tmp_path / "runs"),
                                          "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "holds no training run folders" in err


def test_plan_model_paths_move_with_a_renamed_job_root(tmp_path) -> None:
    # Arrange: a model and a stress folder inside one job root, as the main job writes them
    from agents.evaluation.stress_run import plan_from_dict, plan_to_dict
    from agents.report.results import training_runs

    root = tmp_path / "main-1.partial"
    model = root / "training" / "train-ppo-1" / "best_model.zip"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"model")
    far = tmp_path / "elsewhere" / "a" / "b" / "model.zip"
    stress = root / "sample" / "stress-1"
    stress.mkdir(parents=True)
    training = TrainConfig.from_yaml(HYPERPARAMS_DIR / "ppo_default.yaml")
    plan = StressPlan(training=training, scenarios=("baseline",), seeds=(0,), policies=(
        PolicySpec(name="ppo", kind="agent", model_path=str(model)),
        PolicySpec(name="far", kind="agent", model_path=str(far)),
        PolicySpec(name="flat", kind="baseline", baseline="flat")))
    data = plan_to_dict(plan, stress)
    (stress / "plan.yaml").write_text(yaml.safe_dump(data))
    # Act: the job ends and renames its root
    final = root.rename(tmp_path / "main-1")
    moved = final / "sample" / "stress-1"
    again = plan_from_dict(yaml.safe_load((moved / "plan.yaml").read_text()), "plan.yaml", moved)
    # Assert: the model in the tree is found at its new place; one outside it stays absolute
    assert data["policies"][0]["model_path"] == "../../training/train-ppo-1/best_model.zip"
    assert data["policies"][1]["model_path"] == str(far.resolve())
    assert Path(again.policies[0].model_path) == (final / "training" / "train-ppo-1" / "best_model.zip").resolve()
    assert Path(again.policies[0].model_path).is_file()
    present, missing = training_runs(moved, ["ppo"])
    assert present["ppo"].resolve() == (final / "training" / "train-ppo-1").resolve() and not missing
