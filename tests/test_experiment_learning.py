"""scripts/experiment_learning.py (issue #12 item 7a): runs end to end, writes its tables, and the
constant-mean-action ablation is computed from the validation span only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from agents.learning_experiment import ConstantAction, mean_action, planted_experiment
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
