"""scripts/experiment_learning.py (issue #12 item 7a): runs end to end, writes its tables, and the
constant-mean-action ablation is computed from the validation span only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from agents.baselines import make_baseline
from agents.learning_experiment import ConstantAction, mean_action, planted_experiment, regime_oracle_experiment
from agents.hyperparams import HYPERPARAMS_DIR, TrainConfig
from agents.training import load_market, split_data
from tests.conftest import change_future, load_script

CONFIG = HYPERPARAMS_DIR / "ppo_learning_planted.yaml"


def tiny_config(**data_overrides) -> TrainConfig:
    """The experiment's config at a CI budget: 3,000 bars split by date, 2,048 PPO steps."""
    base = TrainConfig.from_yaml(CONFIG)
    data = replace(base.data, n_bars=3000, train_end="2020-04-10", validation_end="2020-05-15", **data_overrides)
    return replace(base, n_envs=8, total_timesteps=2048, eval_every=1024, checkpoint_every=2048, data=data,
                   env=replace(base.env, episode_bars=256),
                   ppo=replace(base.ppo, n_steps=128, batch_size=256, n_epochs=1))


class ObservationSum:
    """A policy whose action moves with the observation (so a changed span would move its mean)."""

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        obs = np.asarray(observation, dtype=np.float64)
        return np.tanh(obs.sum(axis=1, keepdims=True) / obs.shape[1]).astype(np.float32), None


def test_script_runs_end_to_end_and_writes_its_tables(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config().to_dict(), sort_keys=False))
    script = load_script("experiment_learning")

    code = script.main(["--part", "planted", "--seeds", "3", "--config", str(config), "--out", str(tmp_path)])

    assert code in (0, 1)
    (folder,) = tmp_path.glob("experiment-learning-*")
    table = pd.read_csv(folder / "results.csv")
    assert set(table.span) == {"validation", "test"}
    test = table[table.span == "test"].set_index("policy")
    for policy in ("ppo", "ablation", "vol_target", "fixed_fraction", "flat", "ppo - vol_target", "ppo - ablation"):
        assert policy in test.index, policy
    for column in ("sharpe", "sharpe_low", "sharpe_high", "total_return", "max_drawdown", "turnover_x_equity",
                   "costs_of_equity"):
        assert np.isfinite(test.loc["vol_target", column]), column
    assert test.loc["flat", "turnover_x_equity"] == 0
    assert 0 <= test.loc["ppo - ablation", "p_value"] <= 1
    report = (folder / "report.md").read_text()
    assert "PPO >= vol_target Sharpe on" in report and "## test" in report and "| 3 | ppo - ablation |" in report
    assert (folder / "training").is_dir()


def test_no_test_mode_never_runs_the_test_span(tmp_path: Path) -> None:
    result = planted_experiment(tiny_config(), [0], out=tmp_path, test=False, need=1, argv=[], log=lambda _: None)
    assert set(result.table.span) == {"validation"}
    assert "## test" not in (result.path / "report.md").read_text()


def test_ablation_constant_comes_from_validation_only(tmp_path: Path) -> None:
    """The same run with a shorter test span: the ablation's constant does not move (the test rows do)."""
    runs = [planted_experiment(tiny_config(end=end), [0], out=tmp_path / str(i), argv=[], need=1,
                               log=lambda _: None).table for i, end in enumerate((None, "2020-06-05"))]
    constants = [t.loc[(t.policy == "ablation") & (t.span == "test"), "ablation_action"].iloc[0] for t in runs]
    assert constants[0] == constants[1]
    sharpes = [t.loc[(t.policy == "vol_target") & (t.span == "test"), "sharpe"].iloc[0] for t in runs]
    assert sharpes[0] != sharpes[1]  # the test span did change


def test_mean_action_reads_the_span_it_is_given() -> None:
    cfg = tiny_config()
    market = load_market(cfg.data)
    data = split_data(market, cfg.env, cfg.data)
    policy = ObservationSum()
    reference = mean_action(policy, data.validation, cfg.env)

    moved_test = split_data(change_future(market, data.split.val_end - 1), cfg.env, cfg.data)
    moved_validation = split_data(change_future(market, data.split.train_end + 100), cfg.env, cfg.data)

    np.testing.assert_array_equal(mean_action(policy, moved_test.validation, cfg.env), reference)
    assert not np.allclose(mean_action(policy, moved_validation.validation, cfg.env), reference)


def test_constant_action_plays_one_action_for_every_account() -> None:
    action, state = ConstantAction(np.array([0.25])).predict(np.zeros((3, 7), dtype=np.float32))
    assert state is None
    np.testing.assert_array_equal(action, np.full((3, 1), 0.25, dtype=np.float32))


def test_regime_oracle_with_one_multiplier_is_vol_target_and_never_runs_the_test_span(tmp_path: Path) -> None:
    """x1 in both regimes is vol_target on every bar; the oracle's rows come from the validation span only."""
    result = regime_oracle_experiment(tiny_config(), [0], out=tmp_path, multipliers=((1.0, 1.0), (2.0, 0.25)),
                                      argv=[], log=lambda _: None)
    table = result.table
    assert set(table.span) == {"validation"}
    same = table[table.multipliers == "calm x1 / turbulent x1"].set_index("policy")
    assert same.loc["oracle", "sharpe"] == same.loc["vol_target", "sharpe"] == same.loc["oracle_ablation", "sharpe"]
    assert same.loc["oracle - vol_target", "sharpe"] == 0
    bent = table[table.multipliers == "calm x2 / turbulent x0.25"].set_index("policy")
    assert bent.loc["oracle", "sharpe"] != bent.loc["vol_target", "sharpe"]
    assert 0.25 < bent.loc["oracle", "mean_multiplier"] < 2.0  # the ablation's constant: a mean of the two
    assert 0 <= bent.loc["oracle - oracle_ablation", "p_value"] <= 1
    report = (result.path / "report.md").read_text()
    assert "beats its own constant ablation" in report and "## test" not in report


def test_regime_oracle_sizes_by_the_hidden_regime_of_the_decision_bar() -> None:
    """Its target is vol_target's times the multiplier of bar t: changing bars after t leaves it alone."""
    from agents.baselines import baseline_env
    from agents.learning_experiment import RegimeScaledVolTarget
    from agents.policies import AccountView
    from envs.core import BatchState

    cfg = tiny_config()
    data = split_data(load_market(cfg.data), cfg.env, cfg.data).full
    env = baseline_env(cfg.env)
    regime = pd.Series(np.arange(len(data.index)) % 7 == 0, index=data.index)
    t = np.arange(data.first_step, data.first_step + 40)
    state = BatchState.empty(t.size, data.n_pairs)
    state.t[:] = t
    view = AccountView(data=data, config=env, state=state)
    oracle = RegimeScaledVolTarget(regime.map({False: 2.0, True: 0.5})).bind(view)
    base = make_baseline("vol_target").bind(view)
    expected = np.clip(base.target_fraction(view) * np.where(regime.to_numpy()[t], 0.5, 2.0)[:, None], -1, 1)
    np.testing.assert_array_equal(oracle.target_fraction(view), expected)
    later = regime.copy()
    later.iloc[t[-1] + 1:] = ~later.iloc[t[-1] + 1:]
    moved = RegimeScaledVolTarget(later.map({False: 2.0, True: 0.5})).bind(view)
    np.testing.assert_array_equal(moved.target_fraction(view), expected)


def test_oracle_bad_input_is_one_line(tmp_path: Path, capsys) -> None:
    script = load_script("experiment_learning")
    with pytest.raises(SystemExit) as stop:
        script.main(["--part", "oracle", "--oracle-bars", "10", "--out", str(tmp_path)])
    assert stop.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "--oracle-bars" in err[0]
    code = script.main(["--part", "oracle", "--config", str(HYPERPARAMS_DIR / "ppo_ecb.yaml"), "--out", str(tmp_path)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and "planted_edge" in err[0]
    assert not list(tmp_path.glob("experiment-oracle-*"))
