"""Training: configs, the walk-forward split, run folders, TensorBoard scalars, resume, Lagrangian, learning."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from agents.evaluation.rollout import evaluation_config, run_policy
from agents.hyperparams import DEFAULT_CONFIG, HYPERPARAMS_DIR, DataConfig, LagrangeConfig, TrainConfig
from agents.training import Trainer, load_market, load_trained_policy, split_data
from envs.config import EnvConfig
from envs.data import prepare_env_data
from envs.sb3 import FxRiskSB3VecEnv
from forecasters.cache import ForecastCache
from simulator.common.errors import ConfigError
from simulator.common.run_folder import RunFolder
from tests.conftest import change_future, load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"


def tiny_config(**overrides) -> TrainConfig:
    """A planted-edge run small enough for CI (a few seconds)."""
    base = TrainConfig.from_yaml(HYPERPARAMS_DIR / "ppo_planted_edge.yaml")
    cfg = replace(base, n_envs=8, total_timesteps=4096, eval_every=2048, checkpoint_every=2048,
                  data=replace(base.data, n_bars=3000),
                  env=replace(base.env, episode_bars=256),
                  ppo=replace(base.ppo, n_steps=128, batch_size=256, n_epochs=2))
    return replace(cfg, **overrides)


def write_config(path: Path, cfg: TrainConfig) -> Path:
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return path




def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for events in (run_dir / "tensorboard").glob("*/events.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


# -- configs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(HYPERPARAMS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_hyperparameter_files_load(path: Path) -> None:
    cfg = TrainConfig.from_yaml(path)
    assert cfg.total_timesteps > 0 and cfg.env.episode_bars is not None


def test_unknown_key_is_an_error_naming_file_and_key(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("ppo:\n  learning_rat: 0.001\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'ppo\.learning_rat'"):
        TrainConfig.from_yaml(bad)


def test_lagrangian_needs_the_cost_mode() -> None:
    with pytest.raises(ValueError, match="var_mode: cost"):
        TrainConfig(lagrange=LagrangeConfig(enabled=True), env=EnvConfig(var_mode="shield"))


# -- the walk-forward split ------------------------------------------------------------------
def test_training_episodes_never_reach_validation_or_test_bars() -> None:
    cfg = tiny_config()
    data = split_data(load_market(cfg.data), cfg.env, cfg.data)
    train_end = data.split.train_end
    venv = FxRiskSB3VecEnv(16, data=data.train, config=cfg.env)
    venv.seed(0)
    venv.reset()
    seen = []
    for _ in range(600):
        venv.step_async(np.random.default_rng(len(seen)).uniform(-1, 1, (16, 1)))
        venv.step_wait()
        seen.append(venv.vector_env.state.t.copy())
    seen = np.concatenate(seen)
    assert seen.max() < train_end  # a decision at t fills in bar t+1 <= train_end - 1
    assert data.validation.first_step >= train_end and data.validation.last_step == data.split.val_end - 2
    assert data.test.first_step >= data.split.val_end


def test_changing_validation_and_test_bars_leaves_the_training_arrays_unchanged(tmp_path) -> None:
    cfg = tiny_config()
    market = load_market(cfg.data)
    cache = ForecastCache(tmp_path)
    train_end = split_data(market, cfg.env, cfg.data, cache=cache).split.train_end
    a = prepare_env_data(market, cfg.env, cache=cache)
    b = prepare_env_data(change_future(market, train_end - 1), cfg.env, cache=cache)
    for name in ("features", "sigma", "var_long", "var_short", "signal", "close", "open"):
        np.testing.assert_array_equal(getattr(a, name)[:train_end], getattr(b, name)[:train_end], err_msg=name)


# -- a run as a user runs it -----------------------------------------------------------------
def test_train_script_writes_a_complete_run_folder_with_namespaced_scalars(tmp_path, capsys) -> None:
    cfg_path = write_config(tmp_path / "tiny.yaml", tiny_config())
    rc = load_script("train").main(["--config", str(cfg_path), "--out", str(tmp_path / "runs"), "--no-progress"])
    assert rc == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert not run.name.endswith(".partial")
    for name in ("config.yaml", "manifest.yaml", "metrics.yaml", "model.zip", "normalisation.json",
                 "best_model.zip", "best_normalisation.json"):
        assert (run / name).is_file(), name
    manifest = yaml.safe_load((run / "manifest.yaml").read_text())
    assert {"command", "git_revision", "versions"} <= set(manifest)
    assert any(p.name.startswith("step-") for p in (run / "checkpoints").iterdir())
    tags = scalars(run)
    for tag in ("trading/episode_return", "trading/sharpe", "trading/max_drawdown", "trading/turnover",
                "trading/costs", "risk/var_utilisation", "risk/breach_rate", "risk/margin_calls",
                "eval/val_sharpe_ratio", "rollout/ep_rew_mean", "train/value_loss"):
        assert tag in tags, tag
    metrics = yaml.safe_load((run / "metrics.yaml").read_text())
    assert metrics["timesteps"] >= 4096 and len(metrics["validation"]) >= 2
    # The saved agent evaluates on the test split through the evaluate script.
    rc = load_script("evaluate").main(["--model", str(run), "--out", str(tmp_path / "eval")])
    assert rc == 0
    (ev,) = (tmp_path / "eval").iterdir()
    steps = (ev / "steps.csv").read_text().splitlines()
    assert len(steps) > 100 and "exposure_EURUSD" in steps[0] and "var_utilisation" in steps[0]
    assert "sharpe_ratio" in (ev / "summary.csv").read_text()


def test_bad_config_is_one_clear_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("env:\n  var_mode: shiled\n")
    rc = load_script("train").main(["--config", str(bad), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "bad.yaml" in err and "var_mode" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_constrained_run_logs_the_lagrange_multiplier(tmp_path) -> None:
    base = tiny_config()
    cfg = replace(base, name="lagrangian", lagrange=LagrangeConfig(enabled=True, method="plain", cost_limit=1e-6,
                                                                   multiplier_lr=1.0),
                  env=replace(base.env, var_mode="cost", var_limit=0.002))
    with RunFolder(tmp_path, "t", config=cfg.to_dict()) as folder:
        metrics = Trainer(cfg, folder, progress=False, log=lambda *_: None).run()
    history = metrics["lagrange_history"]
    assert len(history) >= 3
    assert history[-1]["multiplier"] > 0  # breaches above a near-zero limit push λ up
    assert "constraint/lambda" in scalars(folder.path)


def test_resume_after_a_kill_continues_from_the_last_checkpoint(tmp_path) -> None:
    cfg = tiny_config(total_timesteps=200_000, checkpoint_every=1024, eval_every=100_000)
    cfg_path = write_config(tmp_path / "long.yaml", cfg)
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "train.py"), "--config", str(cfg_path), "--out",
                             str(runs), "--no-progress"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            done = [p for p in runs.glob("*/checkpoints/step-*") if (p / "state.json").exists()]
            if len(done) >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint written within 120 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    (run,) = runs.iterdir()
    assert run.name.endswith(".partial")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.glob("checkpoints/step-*/*")
              if p.parent.name.startswith("step-")}
    last = max(int(p.parent.name.removeprefix("step-")) for p in before)

    # Resume with a smaller total so the test stays short: rewrite the stored budget.
    stored = yaml.safe_load((run / "config.yaml").read_text())
    stored["total_timesteps"] = last + 4096
    (run / "config.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    rc = load_script("train").main(["--resume", str(run), "--no-progress"])
    assert rc == 0
    final = run.with_name(run.name.removesuffix(".partial"))
    assert final.is_dir() and not run.exists()
    metrics = yaml.safe_load((final / "metrics.yaml").read_text())
    assert metrics["timesteps"] >= last + 4096
    for path, digest in before.items():  # nothing written before the kill was lost or changed
        moved = final / path.relative_to(run)
        assert hashlib.sha256(moved.read_bytes()).hexdigest() == digest
    steps = [s for s, _ in scalars(final)["train/value_loss"]]
    assert max(steps) > last and len(list((final / "tensorboard").iterdir())) == 1
    assert "resumed" in yaml.safe_load((final / "manifest.yaml").read_text())


def test_same_seed_same_training(tmp_path) -> None:
    cfg = tiny_config(total_timesteps=2048, eval_every=10**6, checkpoint_every=10**6)
    params = []
    for k in range(2):
        with RunFolder(tmp_path / str(k), "t", config={}) as folder:
            trainer = Trainer(cfg, folder, progress=False, log=lambda *_: None)
            trainer.run()
            params.append(np.concatenate([p.detach().numpy().ravel() for p in trainer.model.policy.parameters()]))
    np.testing.assert_array_equal(params[0], params[1])


def test_a_tiny_budget_improves_the_return_over_the_untrained_policy(tmp_path) -> None:
    """The planted edge (trend when calm, reversal when turbulent) is learnt within 40k steps."""
    base = TrainConfig.from_yaml(HYPERPARAMS_DIR / "ppo_planted_edge.yaml")
    cfg = replace(base, seed=0, total_timesteps=40_960, n_envs=16, eval_every=10**9, checkpoint_every=10**9,
                  data=replace(base.data, n_bars=8000, data_seed=0))
    with RunFolder(tmp_path, "learn", config={}) as folder:
        trainer = Trainer(cfg, folder, progress=False, log=lambda *_: None)
        trainer.model = trainer._new_model()
        env_cfg = evaluation_config(cfg.env)
        before = run_policy(trainer.current_policy(), trainer.data.validation, env_cfg).summary.iloc[0]
        trainer.run()
        after = run_policy(load_trained_policy(folder.path / "model.zip"), trainer.data.validation,
                           env_cfg).summary.iloc[0]
    assert after["total_return"] > before["total_return"] + 0.03
    assert after["sharpe_ratio"] > before["sharpe_ratio"]


def test_default_config_is_the_bundled_sample_in_sizing_mode() -> None:
    cfg = TrainConfig.from_yaml(DEFAULT_CONFIG)
    assert cfg.data == DataConfig(source="sample", train=0.6, validation=0.2)
    assert cfg.env.action_mode == "sizing" and cfg.env.var_mode == "shield"


def test_recurrent_ppo_option_trains_saves_and_evaluates(tmp_path) -> None:
    base = tiny_config(total_timesteps=1024, eval_every=10**6, checkpoint_every=512)
    cfg = replace(base, name="recurrent", ppo=replace(base.ppo, recurrent=True, n_steps=64, batch_size=128))
    folder = RunFolder(tmp_path, "t", config=cfg.to_dict())
    folder.write_yaml("config.yaml", cfg.to_dict())
    trainer = Trainer(cfg, folder, progress=False, log=lambda *_: None)
    trainer.run()
    path = folder.finish()
    assert type(trainer.model).__name__ == "RecurrentPPO"
    policy = load_trained_policy(path / "model.zip")
    assert type(policy.model).__name__ == "RecurrentPPO"
    result = run_policy(policy, trainer.data.test, evaluation_config(cfg.env))
    assert len(result.records) > 100 and np.isfinite(result.summary["total_return"]).all()


def test_synthetic_source_reads_a_generator_yaml() -> None:
    cfg = TrainConfig.from_yaml(HYPERPARAMS_DIR / "g10_synthetic.yaml")
    market = load_market(replace(cfg.data, n_bars=1500))
    assert market.symbols == ("EURUSD", "GBPUSD", "USDJPY") and len(market) == 1500
    corr = np.corrcoef(market.log_returns()[1:].T)
    assert corr[0, 1] > 0.3 and corr[0, 2] < 0  # the file's correlation matrix
    with pytest.raises(ValueError, match="synthetic_config applies to data.source 'synthetic'"):
        DataConfig(source="sample", synthetic_config="simulator/data/synthetic_g10.yaml")


@pytest.mark.parametrize(("scores", "budget", "eligible", "reason"), [
    ({"stop_outs": 0, "max_drawdown": 0.10, "time_over_limit": 0.0, "mean_cost": 0.0}, None, True, ""),
    ({"stop_outs": 1, "max_drawdown": 0.10, "time_over_limit": 0.0}, None, False, "stopped out"),
    ({"stop_outs": 0, "max_drawdown": 0.94, "time_over_limit": 0.0}, None, False, "drawdown 94.0% > 25%"),
    ({"stop_outs": 0, "max_drawdown": 0.10, "time_over_limit": 0.30}, None, False, "over the VaR limit"),
    ({"stop_outs": 0, "max_drawdown": 0.10, "time_over_limit": 0.0, "mean_cost": 0.2}, 0.01, False, "budget"),
])
def test_selection_never_keeps_a_ruined_or_limit_breaking_checkpoint(scores, budget, eligible, reason) -> None:
    from agents.hyperparams import SelectionConfig
    from agents.training import checkpoint_eligible

    ok, why = checkpoint_eligible({"sharpe_ratio": 5.0, **scores}, SelectionConfig(), cost_budget=budget)
    assert ok is eligible and reason in why


def test_a_run_with_no_eligible_checkpoint_has_no_best_model_and_says_why(tmp_path) -> None:
    from agents.hyperparams import SelectionConfig
    from agents.training import resolve_model, train
    from simulator.common.errors import ModelFileError

    base = TrainConfig.from_yaml(HYPERPARAMS_DIR / "ppo_planted_edge.yaml")
    cfg = replace(base, n_envs=4, total_timesteps=512, eval_every=256, checkpoint_every=512,
                   data=replace(base.data, n_bars=2000), env=replace(base.env, episode_bars=100),
                   ppo=replace(base.ppo, n_steps=64, batch_size=128, n_epochs=1),
                   selection=SelectionConfig(max_drawdown=1e-6))  # no validation run can stay this flat
    run = train(cfg, runs_root=tmp_path, progress=False, log=lambda *_: None)
    metrics = yaml.safe_load((run / "metrics.yaml").read_text())
    assert not (run / "best_model.zip").exists() and (run / "model.zip").exists()
    assert metrics["selection"]["selected_step"] is None and "drawdown" in metrics["selection"]["why"]
    assert all(not h["eligible"] for h in metrics["validation"])
    with pytest.raises(ModelFileError, match="no checkpoint passed the selection rule"):
        resolve_model(run)


class _Constant:
    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return np.full((observation.shape[0], 2), self.value, dtype=np.float32), None


def test_seed_ensemble_acts_with_the_median_action() -> None:
    from agents.evaluation.rollout import SeedEnsemble

    ensemble = SeedEnsemble([_Constant(v) for v in (-0.5, 0.9, 0.1)])
    action, state = ensemble.predict(np.zeros((3, 4), dtype=np.float32))
    np.testing.assert_array_equal(action, np.full((3, 2), 0.1, dtype=np.float32))
    assert state is None


@pytest.mark.slow
def test_train_several_seeds_then_evaluate_their_ensemble(tmp_path, capsys) -> None:
    from tests.conftest import load_script

    base = TrainConfig.from_yaml(HYPERPARAMS_DIR / "ppo_planted_edge.yaml")
    cfg = replace(base, n_envs=4, total_timesteps=256, eval_every=256, checkpoint_every=256,
                  data=replace(base.data, n_bars=2000), env=replace(base.env, episode_bars=100),
                  ppo=replace(base.ppo, n_steps=64, batch_size=128, n_epochs=1),
                  selection=replace(base.selection, max_drawdown=1.0, max_time_over_limit=1.0))
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    out = tmp_path / "runs"
    assert load_script("train").main(["--config", str(path), "--seeds", "3", "4", "--out", str(out),
                                      "--no-progress"]) == 0
    runs = sorted(p for p in out.iterdir() if p.name.startswith("train-"))
    assert [yaml.safe_load((r / "config.yaml").read_text())["seed"] for r in runs] == [3, 4]
    printed = capsys.readouterr().out
    assert "seed  kept checkpoint" in printed and "seed ensemble" in printed
    rc = load_script("evaluate").main(["--model", str(runs[0]), "--model", str(runs[1]), "--split", "validation",
                                       "--out", str(out)])
    assert rc == 0
    assert "ensemble:2 seeds on the validation split" in capsys.readouterr().out
