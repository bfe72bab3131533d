"""Exact resume: a run SIGKILLed mid-rollout and resumed ends bit-identical to the uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from agents.hyperparams import HYPERPARAMS_DIR, LagrangeConfig, TrainConfig
from agents.model_io import read_model_zip
from tests.conftest import load_script

REPO = Path(__file__).resolve().parents[1]

# Runs train.py's main in a child that SIGKILLs itself a few env steps after the checkpoint at
# step KILL_AFTER was written (mid-rollout: buffers half full, a newer TensorBoard event file).
DRIVER = """
import os, signal, sys
sys.path.insert(0, {repo!r})
import agents.training as training
import agents.callbacks as callbacks
original = training.Trainer.checkpoint
armed = []
def checkpoint(self, callback=None):
    path = original(self, callback)
    if self.model.num_timesteps >= {kill_after}:
        armed.append(0)
    return path
training.Trainer.checkpoint = checkpoint
step = callbacks.TradingMetricsCallback._on_step
def on_step(self):
    if armed:
        armed[0] += 1
        if armed[0] > 5:
            os.kill(os.getpid(), signal.SIGKILL)
    return step(self)
callbacks.TradingMetricsCallback._on_step = on_step
sys.path.insert(0, {scripts!r})
import train
train.main(["--config", {config!r}, "--out", {out!r}, "--no-progress"])
"""

TIMING = ("train_seconds_this_session", "timesteps_per_second_this_session")


def tiny(**overrides) -> TrainConfig:
    base = TrainConfig.from_yaml(HYPERPARAMS_DIR / "ppo_planted_edge.yaml")
    cfg = replace(base, n_envs=4, total_timesteps=2048, eval_every=768, checkpoint_every=512,
                  data=replace(base.data, n_bars=2000), env=replace(base.env, episode_bars=100),
                  ppo=replace(base.ppo, n_steps=64, batch_size=128, n_epochs=2),
                  # Every checkpoint eligible, so that both runs keep a best model to compare.
                  selection=replace(base.selection, max_drawdown=1.0, max_time_over_limit=1.0))
    return replace(cfg, **overrides)


def weights(path: Path) -> dict[str, np.ndarray]:
    _, _, policy, optimizer = read_model_zip(path)
    out = {k: v.numpy() for k, v in policy.items()}
    for key, value in optimizer["state"].items():
        for name, tensor in value.items():
            out[f"opt.{key}.{name}"] = np.asarray(tensor)
    return out


@pytest.mark.parametrize("kind", ["ppo", "recurrent", "constrained"])
def test_sigkilled_run_resumes_to_bit_identical_parameters_and_metrics(tmp_path, kind) -> None:
    cfg = tiny()
    if kind == "recurrent":
        cfg = replace(cfg, ppo=replace(cfg.ppo, recurrent=True, net_arch=(16,)))
    if kind == "constrained":  # PID λ state and the cost critic carry over the kill too
        cfg = replace(cfg, env=replace(cfg.env, var_mode="cost", var_limit=0.002),
                      lagrange=LagrangeConfig(enabled=True, method="pid", cost_limit=0.5))
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    train = load_script("train")

    # The uninterrupted run.
    assert train.main(["--config", str(cfg_path), "--out", str(tmp_path / "whole"), "--no-progress"]) == 0
    (whole,) = (tmp_path / "whole").iterdir()

    # The same run, killed mid-rollout after its checkpoint at step 1024, then resumed.
    out = tmp_path / "killed"
    driver = DRIVER.format(repo=str(REPO), scripts=str(REPO / "scripts"), config=str(cfg_path), out=str(out),
                           kill_after=1024)
    proc = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == -9, proc.stderr[-2000:]
    (partial,) = out.iterdir()
    assert partial.name.endswith(".partial") and not (partial / "metrics.yaml").exists()
    steps = sorted(p.name for p in (partial / "checkpoints").iterdir() if p.name.startswith("step-"))
    assert steps[-1] == "step-0000001024"
    assert train.main(["--resume", str(partial), "--no-progress"]) == 0
    resumed = partial.with_name(partial.name.removesuffix(".partial"))

    # The constrained run is over its tight limit on validation, so no checkpoint is eligible: no best model.
    best = () if kind == "constrained" else ("best_model.zip", "best_normalisation.json")
    assert (resumed / "best_model.zip").exists() == (whole / "best_model.zip").exists() == bool(best)
    for name in ("model.zip", *best[:1]):
        a, b = weights(whole / name), weights(resumed / name)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")
    for name in ("normalisation.json", *best[1:]):
        assert json.loads((whole / name).read_text()) == json.loads((resumed / name).read_text())
    if kind == "constrained":
        critic = [torch.load(d / "checkpoints" / "step-0000001536" / "cost_critic.pth", weights_only=True)
                  for d in (whole, resumed)]
        for key, tensor in critic[0]["cost_net"].items():
            np.testing.assert_array_equal(tensor.numpy(), critic[1]["cost_net"][key].numpy(), err_msg=key)
    m_whole, m_resumed = (yaml.safe_load((d / "metrics.yaml").read_text()) for d in (whole, resumed))
    for key in TIMING:
        m_whole.pop(key), m_resumed.pop(key)
    assert m_whole == m_resumed
    assert len(m_whole["validation"]) >= 2
    if kind == "constrained":
        assert len(m_whole["lagrange_history"]) == 8 and m_whole["lagrange_multiplier"] > 0

    # A finished run is refused, one line, nothing rewritten.
    before = (resumed / "metrics.yaml").read_bytes()
    assert train.main(["--resume", str(resumed), "--no-progress"]) == 2
    assert (resumed / "metrics.yaml").read_bytes() == before
