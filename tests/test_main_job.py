"""The main job (agents/pipeline.py) and its script, as a user runs them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.pipeline import QUICK_TIMESTEPS, MainJobConfig, run_main_job
from agents.run_index import write_index
from simulator.common.errors import ConfigError
from tests.conftest import load_script

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("overrides", "words"), [
    ({"train_seeds": (0,)}, "at least two"),
    ({"train_seeds": (1, 1)}, "distinct"),
    ({"stress_seeds": ()}, "stress_seeds"),
    ({"ecb_timesteps": 0}, "ecb_timesteps"),
    ({"workers": 0}, "workers"),
])
def test_bad_main_job_settings_are_one_clear_line(tmp_path, overrides, words) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        MainJobConfig(runs_root=tmp_path, **overrides)
    assert "\n" not in str(info.value) and "main job" in str(info.value)


def test_quick_mode_fills_in_small_budgets_and_explicit_values_win(tmp_path) -> None:
    quick = MainJobConfig(runs_root=tmp_path, quick=True, ecb_timesteps=4096).resolved
    assert quick["sample_timesteps"] == QUICK_TIMESTEPS and quick["ecb_timesteps"] == 4096
    assert quick["stress_seeds"] == [0] and len(quick["train_seeds"]) >= 2 and quick["neural"] is False
    full = MainJobConfig(runs_root=tmp_path).resolved
    assert len(full["train_seeds"]) >= 3 and full["stress_seeds"] == [0, 1] and full["neural"] is True


def test_the_script_is_argument_parsing_plus_one_call(tmp_path, monkeypatch) -> None:
    script = load_script("main_job")
    calls = []
    monkeypatch.setattr(script, "run_main_job", lambda config: calls.append(config))
    rc = script.main(["--quick", "--out", str(tmp_path), "--train-seeds", "3", "4", "5", "--seeds", "7",
                      "--ecb-timesteps", "4096", "--workers", "1"])
    (config,) = calls
    assert rc == 0 and config.quick and config.runs_root == tmp_path and config.train_seeds == (3, 4, 5)
    assert config.stress_seeds == (7,) and config.ecb_timesteps == 4096 and config.workers == 1
    assert config.argv[0] == "main_job.py"


def test_index_shows_the_tensorboard_commands_it_is_given(tmp_path) -> None:
    board = tmp_path / "root.partial" / "training" / "train-x" / "tensorboard" / "run"
    board.mkdir(parents=True)
    (board / "events.out.tfevents.1").write_bytes(b"")
    (board.parents[1] / "metrics.yaml").write_text("a: 1\n")
    page = write_index(tmp_path / "root.partial", title="t", tensorboard=[f"tensorboard --logdir {tmp_path / 'root'}"])
    text = page.read_text()
    assert f"tensorboard --logdir {tmp_path / 'root'}<" in text and ".partial" not in text
    assert 'href="training/train-x/metrics.yaml"' in text


@pytest.mark.slow
def test_main_job_quick_runs_the_whole_pipeline_and_every_printed_path_exists(tmp_path) -> None:
    lines: list[str] = []
    result = run_main_job(MainJobConfig(runs_root=tmp_path, quick=True, workers=2, argv=("main_job.py", "--quick")),
                          log=lines.append)
    out = "\n".join(lines)
    (root,) = tmp_path.iterdir()
    assert root == result.root and root.name.startswith("main-") and not root.name.endswith(".partial")
    # Every path the job printed or returned exists now, and none points into a .partial folder.
    printed = set(re.findall(re.escape(str(tmp_path)) + r"[^\s'\",)]*", out))
    assert printed and ".partial" not in " ".join(printed) and ".partial" not in out
    assert all(Path(p).exists() for p in printed), sorted(p for p in printed if not Path(p).exists())
    assert all(p.exists() for p in result.paths()), [p for p in result.paths() if not p.exists()]
    assert lines[-1] == f"report (bundled sample, agents and baselines): {result.stress['sample'].html}"
    for key in ("sample", "ecb"):
        assert result.stress[key].html.stat().st_size > 10_000, key
    # The ECB run: the agent's training seeds are the interval unit with the scenario seeds.
    ecb = pd.read_csv(result.stress["ecb"].results)
    agent = ecb[ecb.kind == "agent"]
    assert set(agent.policy.str.removesuffix("_unselected")) == {"ppo_ecb"}
    assert set(agent.train_seed) == set(MainJobConfig(runs_root=tmp_path, quick=True).resolved["train_seeds"])
    assert "correlation_break" in set(ecb.scenario)  # a three-pair market: it applies
    assert len(result.training["ppo_ecb"]) == len(set(agent.train_seed))
    # The sample run: each agent acts in the env it was trained in; baselines in the plan's (the first agent's).
    sample = pd.read_csv(result.stress["sample"].results)
    names = {p.removesuffix("_unselected"): p for p in set(sample.policy)}
    assert {"ppo", "ppo_penalty", "ppo_lagrangian", "flat", "vol_target"} <= set(names)
    modes = sample.groupby("policy").var_mode.agg(set)
    assert modes[names["ppo"]] == {"shield"} and modes[names["ppo_lagrangian"]] == {"cost"}
    assert modes[names["ppo_penalty"]] == {"penalty"} and modes["flat"] == {"shield"}
    assert np.isfinite(sample.sharpe_ratio).all() and "Sharpe" in out
    # The index links every report (static and interactive) and names both TensorBoard commands, by final path.
    index = result.index.read_text()
    links = set(re.findall(r'href="([^"]+)"', index))
    assert all((root / link).is_file() for link in links)
    for report in result.stress.values():
        assert {report.html.relative_to(root).as_posix(), report.interactive.relative_to(root).as_posix()} <= links
    for command in result.tensorboard:
        assert command in index and Path(shlex.split(command)[-1]).is_dir()
    # The sample report shows how each agent was trained and which checkpoint it kept.
    md = (result.stress["sample"].html.parent / "report.md").read_text()
    training = md.split("## Training")[1].split("## ")[0]
    assert all(f"| {names[a]} " in training for a in ("ppo", "ppo_penalty", "ppo_lagrangian"))
    assert f"of {QUICK_TIMESTEPS:,}" in training
