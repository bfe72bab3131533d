#!/usr/bin/env python
"""PPO training throughput: our default configuration against SB3 PPO on gym-anytrading.

Reference: stable-baselines3 PPO at its defaults (n_steps 2048, batch 64, 10 epochs, torch's
default thread count) on gym-anytrading's ``forex-v0`` with 4 ``DummyVecEnv`` environments.
Ours: agents/hyperparams/ppo_default.yaml through the batched SB3 adapter
(``FxRiskSB3VecEnv``: all accounts stepped by one array core), ``torch.set_num_threads(1)``,
large minibatches. Each side runs in its own process (torch threads are process-wide) on
the bundled EURUSD 2017 sample and reports timesteps/s and the share of wall time spent
in policy updates. Needs the bench extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _timed_learn(model, total: int) -> dict:
    from stable_baselines3.common.callbacks import BaseCallback

    class Timer(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.rollout = 0.0
            self._t = 0.0

        def _on_rollout_start(self) -> None:
            self._t = time.perf_counter()

        def _on_rollout_end(self) -> None:
            self.rollout += time.perf_counter() - self._t

        def _on_step(self) -> bool:
            return True

    timer = Timer()
    start = time.perf_counter()
    model.learn(total, callback=timer)
    wall = time.perf_counter() - start
    return {"timesteps": int(model.num_timesteps), "seconds": wall, "steps_per_s": model.num_timesteps / wall,
            "update_share": max(0.0, 1.0 - timer.rollout / wall)}


def run_reference(rollouts: int) -> dict:
    import gymnasium as gym
    import gym_anytrading  # noqa: F401  (registers forex-v0)
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: gym.make("forex-v0") for _ in range(4)])
    model = PPO("MlpPolicy", venv, seed=0, device="cpu", verbose=0)
    out = _timed_learn(model, 4 * 2048 * rollouts)
    out["torch_threads"] = __import__("torch").get_num_threads()
    return out


def run_ours(rollouts: int) -> dict:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.hyperparams import DEFAULT_CONFIG, TrainConfig
    from agents.training import load_market, split_data
    from envs.sb3 import FxRiskSB3VecEnv

    cfg = TrainConfig.from_yaml(DEFAULT_CONFIG)
    torch.set_num_threads(cfg.ppo.torch_threads)
    data = split_data(load_market(cfg.data), cfg.env, cfg.data)
    venv = FxRiskSB3VecEnv(cfg.n_envs, data=data.train, config=cfg.env)
    venv.seed(0)
    venv = VecNormalize(venv, gamma=cfg.ppo.gamma)
    p = cfg.ppo
    model = PPO("MlpPolicy", venv, learning_rate=p.learning_rate, n_steps=p.n_steps, batch_size=p.batch_size,
                n_epochs=p.n_epochs, gamma=p.gamma, gae_lambda=p.gae_lambda, clip_range=p.clip_range,
                policy_kwargs=dict(net_arch=dict(pi=list(p.net_arch), vf=list(p.net_arch)),
                                   log_std_init=p.log_std_init), seed=0, device="cpu", verbose=0)
    model.learn(cfg.n_envs * p.n_steps)  # warm-up: numba compilation, first allocations
    out = _timed_learn(model, cfg.n_envs * p.n_steps * rollouts)
    out.update(torch_threads=torch.get_num_threads(), n_envs=cfg.n_envs, n_steps=p.n_steps, batch_size=p.batch_size,
               n_epochs=p.n_epochs)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("reference", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--rollouts", type=int, default=3, help="reference rollouts of 8,192 steps (default 3)")
    parser.add_argument("--our-rollouts", type=int, default=24, help="our rollouts of n_envs × n_steps (default 24)")
    args = parser.parse_args(argv)
    if args.part == "reference":
        print(json.dumps(run_reference(args.rollouts)))
        return 0
    if args.part == "ours":
        print(json.dumps(run_ours(args.our_rollouts)))
        return 0
    results = {}
    for part in ("reference", "ours"):
        proc = subprocess.run([sys.executable, __file__, "--part", part, "--rollouts", str(args.rollouts),
                               "--our-rollouts", str(args.our_rollouts)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode != 0:
            print(f"{part} failed:\n{proc.stderr.strip()[-2000:]}", file=sys.stderr)
            if part == "reference" and "gym_anytrading" in proc.stderr:
                print('install the bench extra: pip install -e ".[bench]"', file=sys.stderr)
            return 1
        results[part] = json.loads(proc.stdout.strip().splitlines()[-1])
    ref, ours = results["reference"], results["ours"]
    print(f"bench_training: PPO timesteps/s on {os.cpu_count()} cores")
    print(f"  reference  SB3 PPO defaults, gym-anytrading forex-v0, 4 DummyVecEnv, torch threads "
          f"{ref['torch_threads']}: {ref['steps_per_s']:,.0f} steps/s ({ref['timesteps']:,} steps in "
          f"{ref['seconds']:.1f} s, {ref['update_share']:.0%} in policy updates)")
    print(f"  ours       ppo_default.yaml, FxRiskSB3VecEnv x{ours['n_envs']}, n_steps {ours['n_steps']}, batch "
          f"{ours['batch_size']}, {ours['n_epochs']} epochs, torch threads {ours['torch_threads']}: "
          f"{ours['steps_per_s']:,.0f} steps/s ({ours['timesteps']:,} steps in {ours['seconds']:.1f} s, "
          f"{ours['update_share']:.0%} in policy updates)")
    ratio = ours["steps_per_s"] / ref["steps_per_s"]
    print(f"  ratio ours / reference: {ratio:.2f}x  (target >= 5.0x: issues #11, #12)  {'met' if ratio >= 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
