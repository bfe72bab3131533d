"""stable-baselines3 callbacks: trading and risk scalars, validation, checkpoints.

TensorBoard keys are namespaced (DESIGN.md rule 6): ``trading/…`` (episode return, Sharpe,
drawdown, turnover, costs), ``risk/…`` (VaR utilisation, breach rate, clip rate, margin
calls, stop-outs), ``constraint/…`` (constrained PPO: λ, episode cost, cost limit, cost value loss,
:mod:`agents.cost_ppo`), ``eval/…`` (validation split), beside SB3's own
``rollout/`` and ``train/``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from envs.fields import select
from simulator.common.run_folder import atomic_write_text

STEP_KEYS = select("log_return", "costs", "turnover", "var_utilisation", "var_breach", "clipped", "margin_call",
                   "stopped_out", "drawdown", "cost", "equity", "band_holds")


class TradingMetricsCallback(BaseCallback):
    """Aggregates the env's per-step ``infos`` into episode and rollout scalars.

    Per rollout: means over the steps (VaR utilisation, breach and clip rates, cost) and over
    the episodes that ended in it (return, annualised Sharpe, max drawdown, turnover and costs
    as fractions of equity, margin calls, stop-out rate).
    """

    def __init__(self, bars_per_year: float) -> None:
        super().__init__()
        self.bars_per_year = bars_per_year
        self._sums: dict[str, np.ndarray] = {}
        self._episodes: list[dict[str, float]] = []
        self._step_sums: dict[str, float] = {}
        self._steps = 0

    def _on_training_start(self) -> None:
        n = self.training_env.num_envs
        self._sums = {k: np.zeros(n) for k in ("n", "r", "r2", "mdd", "turnover", "costs", "margin_calls")}

    def _on_step(self) -> bool:
        infos = self.locals["infos"]
        dones = np.asarray(self.locals["dones"], dtype=bool)
        cols = {k: np.fromiter((i.get(k, 0.0) for i in infos), dtype=np.float64, count=len(infos))
                for k in STEP_KEYS}
        s = self._sums
        equity = np.maximum(cols["equity"], 1e-12)
        r = cols["log_return"]
        s["n"] += 1
        s["r"] += r
        s["r2"] += r * r
        s["mdd"] = np.maximum(s["mdd"], cols["drawdown"])
        s["turnover"] += cols["turnover"] / equity
        s["costs"] += cols["costs"] / equity
        s["margin_calls"] += cols["margin_call"]
        for k in ("var_utilisation", "var_breach", "clipped", "cost", "band_holds"):
            self._step_sums[k] = self._step_sums.get(k, 0.0) + float(np.minimum(cols[k], 10.0).sum())
        self._steps += len(infos)
        for i in np.flatnonzero(dones):
            n = s["n"][i]
            mean = s["r"][i] / n
            sd = math.sqrt(max(s["r2"][i] / n - mean * mean, 0.0))
            self._episodes.append({
                "episode_return": math.expm1(s["r"][i]),
                "sharpe": mean / sd * math.sqrt(self.bars_per_year) if sd > 0 else 0.0,
                "max_drawdown": s["mdd"][i],
                "turnover": s["turnover"][i],
                "costs": s["costs"][i],
                "margin_calls": s["margin_calls"][i],
                "stopped_out": cols["stopped_out"][i],
            })
            for v in s.values():
                v[i] = 0.0
        return True

    def _on_rollout_end(self) -> None:
        if self._steps:
            self.logger.record("risk/var_utilisation", self._step_sums["var_utilisation"] / self._steps)
            self.logger.record("risk/breach_rate", self._step_sums["var_breach"] / self._steps)
            self.logger.record("risk/clip_rate", self._step_sums["clipped"] / self._steps)
            self.logger.record("risk/cost", self._step_sums["cost"] / self._steps)
            self.logger.record("trading/band_holds", self._step_sums["band_holds"] / self._steps)
        if self._episodes:
            def mean(key: str) -> float:
                return float(np.mean([e[key] for e in self._episodes]))

            for key in ("episode_return", "sharpe", "max_drawdown", "turnover", "costs"):
                self.logger.record(f"trading/{key}", mean(key))
            self.logger.record("risk/margin_calls", mean("margin_calls"))
            self.logger.record("risk/stop_out_rate", mean("stopped_out"))
            self.logger.record("trading/episodes", len(self._episodes))
        self._episodes, self._step_sums, self._steps = [], {}, 0

    def get_state(self) -> dict[str, list[float]]:
        """The per-environment episode sums (all that carries over a rollout boundary), for checkpoints."""
        return {k: v.tolist() for k, v in self._sums.items()}

    def set_state(self, state: dict[str, list[float]]) -> None:
        self._sums = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}


class _CadenceCallback(BaseCallback):
    """Shared cadence: ``due()`` once per ``every`` timesteps, counted from the last multiple of ``every``."""

    def __init__(self, every: int, action: Callable[[Any], None]) -> None:
        super().__init__()
        self.every = every
        self.action = action
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps - self.num_timesteps % self.every

    def _fire_if_due(self) -> None:
        if self.num_timesteps - self._last >= self.every:
            self._last = self.num_timesteps - self.num_timesteps % self.every
            self.action(self)


class PeriodicCallback(_CadenceCallback):
    """Calls ``action(callback)`` every ``every`` timesteps (and optionally at the end)."""

    def __init__(self, every: int, action: Callable[[PeriodicCallback], None], *, at_end: bool = True) -> None:
        super().__init__(every, action)
        self.at_end = at_end

    def _on_step(self) -> bool:
        self._fire_if_due()
        return True

    def _on_training_end(self) -> None:
        if self.at_end and self.num_timesteps != self._last:
            self._last = self.num_timesteps
            self.action(self)


class RolloutStartCallback(_CadenceCallback):
    """Calls ``action(callback)`` at the first rollout start after every ``every`` timesteps.

    Why at a rollout start: there the rollout buffer is empty and the update is done, so a
    checkpoint taken then holds everything that moves (no half-filled buffer to save).
    """

    def _on_rollout_start(self) -> None:
        self._fire_if_due()

    def _on_step(self) -> bool:
        return True


class RestoreCallback(BaseCallback):
    """Runs ``restore()`` once, at training start after the callbacks before it (a resumed run puts
    their saved state and the RNG states back just before the first rollout)."""

    def __init__(self, restore: Callable[[], None]) -> None:
        super().__init__()
        self.restore = restore

    def _on_training_start(self) -> None:
        self.restore()

    def _on_step(self) -> bool:
        return True


class ProgressBarCallback(BaseCallback):
    """A tqdm bar over timesteps (starts where a resumed run left off)."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.bar: Any = None
        self._start = time.perf_counter()

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, initial=self.num_timesteps, unit="step", desc="training",
                        dynamic_ncols=True, mininterval=1.0)

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.bar.n)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=float))
