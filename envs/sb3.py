"""stable-baselines3 on the batched core: a ``VecEnv`` with no per-environment Python step.

Why: SB3's ``DummyVecEnv`` loops over N single environments in Python each step; this
adapter steps one :class:`~envs.vector.FxRiskVectorEnv` (one :class:`~envs.core.FxRiskCore`
over N accounts) with array operations, under SB3's conventions:

* SAME-STEP autoreset: when an episode ends, ``step_wait`` returns the reset observation for
  that environment, ``infos[i]["terminal_observation"]`` holds the final observation and
  ``infos[i]["TimeLimit.truncated"] = truncated and not terminated`` (set on every info, as
  ``DummyVecEnv`` does); ``dones = terminated | truncated``;
* seeding: ``seed(s)`` stores ``s + i`` for environment i, used at the next ``reset()`` (SB3 2.x);
  ``set_options({"start": k})`` likewise. Environment i then draws the same episode starts as
  ``FxRiskEnv().reset(seed=s + i)`` — the tests hold the adapter equal to ``DummyVecEnv`` over
  ``FxRiskEnv``;
* infos: a list of N light dicts with float values (booleans as 0.0/1.0): :data:`INFO_KEYS`;
* rewards float32 (as ``DummyVecEnv``), observations float32 (N, obs_dim);
* ``get_attr`` / ``env_method`` act on the one shared batched environment (``config``, ``data``,
  ``core``...): the value or result is returned once per requested index; ``get_attr("np_random")``
  gives each environment's own generator. ``set_attr`` sets a shared attribute, so only for all
  environments at once. ``env_is_wrapped`` is False (no Gymnasium wrappers inside).

The adapter owns its batched environment: do not step that one directly as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from envs.config import EnvConfig
from envs.data import EnvData
from envs.errors import ResetNeededError
from envs.fields import select
from envs.vector import FxRiskVectorEnv, take_rows, validate_actions
from forecasters.cache import ForecastCache
from simulator.data.market import MarketData

#: Step diagnostics copied into each environment's info dict (floats; booleans as 0.0 / 1.0).
INFO_KEYS = select("equity", "costs", "var_utilisation", "var_breach", "cost", "clipped", "margin_call",
                   "stopped_out", "turnover", "log_return", "drawdown", "band_holds")


class FxRiskSB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` over N batched FX accounts (see the module docstring).

    Built like :class:`~envs.vector.FxRiskVectorEnv` (``num_envs``, market or prepared ``data``,
    config), or around an existing one with :meth:`from_vector_env`.
    """

    def __init__(self, num_envs: int, market: MarketData | None = None, config: EnvConfig | None = None, *,
                 data: EnvData | None = None, cache: ForecastCache | None = None,
                 _vector_env: FxRiskVectorEnv | None = None) -> None:
        self.vector_env = _vector_env or FxRiskVectorEnv(num_envs, market, config, data=data, cache=cache)
        venv = self.vector_env
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self.reset_infos = [{} for _ in range(self.num_envs)]

    @classmethod
    def from_vector_env(cls, vector_env: FxRiskVectorEnv) -> FxRiskSB3VecEnv:
        """An adapter stepping ``vector_env`` (which it then owns)."""
        return cls(vector_env.num_envs, _vector_env=vector_env)

    @property
    def config(self) -> EnvConfig:
        return self.vector_env.config

    # -- stepping --------------------------------------------------------------------------
    def _reset_info(self, rows: Iterable[int]) -> None:
        state = self.vector_env.state
        for i in rows:
            self.reset_infos[i] = {"t": int(state.t[i]), "equity": float(state.equity[i])}

    def reset(self) -> VecEnvObs:
        """Reset every environment (seeds from :meth:`seed`, options from ``set_options``, used once)."""
        venv = self.vector_env
        rows = np.arange(self.num_envs)
        starts = [(opts or {}).get("start") for opts in self._options]
        unknown = sorted({k for opts in self._options for k in (opts or {}) if k != "start"})
        if unknown:
            raise ValueError(f"unknown reset options {unknown} (known: 'start')")
        venv._reset_rows(rows, list(self._seeds), starts)
        venv._needs_reset = False
        self._reset_seeds()
        self._reset_options()
        self._reset_info(range(self.num_envs))
        return venv.core.observe(venv.state)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        venv = self.vector_env
        if venv._needs_reset:
            raise ResetNeededError("Cannot call step() before reset() on FxRiskSB3VecEnv — call reset() first")
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        actions = validate_actions(self._actions, venv.single_action_space, self.num_envs)
        self._actions = None
        obs, reward, terminated, truncated, info = venv.core.step_observe(venv.state, actions)
        dones = terminated | truncated
        columns = [np.asarray(info[k], dtype=np.float64).tolist() for k in INFO_KEYS]
        time_limit = (truncated & ~terminated).tolist()
        keys = (*INFO_KEYS, "TimeLimit.truncated")
        infos: list[dict[str, Any]] = [dict(zip(keys, values)) for values in zip(*columns, time_limit)]
        if dones.any():
            rows = np.flatnonzero(dones)
            for i in rows.tolist():
                infos[i]["terminal_observation"] = obs[i].copy()
            venv._reset_rows(rows)
            self._reset_info(rows.tolist())
            obs[rows] = venv.core.observe(take_rows(venv.state, rows))  # the reset environments only
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        self.vector_env.close()

    # -- attributes and methods ------------------------------------------------------------
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The shared batched environment's attribute, once per index (``np_random``: per environment)."""
        rows = list(self._get_indices(indices))
        if attr_name == "np_random":
            rngs = self.vector_env.np_randoms
            return [rngs[i] for i in rows]
        value = getattr(self.vector_env, attr_name)
        return [value for _ in rows]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set a shared attribute of the batched environment (all environments at once only)."""
        rows = list(self._get_indices(indices))
        if sorted(rows) != list(range(self.num_envs)):
            raise ValueError(f"set_attr({attr_name!r}) on environments {rows}: the {self.num_envs} environments "
                             f"share one batched environment, so attributes can only be set for all of them")
        setattr(self.vector_env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        """Call a method of the shared batched environment once; its result is returned per index."""
        rows = list(self._get_indices(indices))
        result = getattr(self.vector_env, method_name)(*method_args, **method_kwargs)
        return [result for _ in rows]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """No Gymnasium wrapper sits inside the batched core."""
        return [False for _ in self._get_indices(indices)]

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Store ``seed + i`` for environment i, used at the next :meth:`reset` (SB3 2.x semantics)."""
        return super().seed(seed)

    def __repr__(self) -> str:
        return f"FxRiskSB3VecEnv({self.vector_env!r})"
