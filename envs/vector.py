"""``FxRisk-v0`` batched: N trading accounts stepped together, one core, no Python loop.

Why: a vector of N single environments runs N Python ``step()`` calls per batch step; here
one :class:`~envs.core.FxRiskCore` steps a :class:`~envs.core.BatchState` of N accounts in one
compiled pass (:func:`envs.step.batch_step`: the one step source, looped over the accounts,
then the observation, in one call), so a step over 1,024 accounts costs ~0.15 ms.

Semantics are those of ``gymnasium.vector.SyncVectorEnv`` over N :class:`~envs.fx_env.FxRiskEnv`
(the tests hold them equal, trajectory and infos):

* seeding: ``reset(seed=s)`` seeds environment i with ``s + i`` (or ``seed`` is a list of N
  seeds/``None``); environment i keeps its own ``numpy.random.Generator``, made exactly as
  ``gymnasium.utils.seeding.np_random`` makes a single environment's, and later resets without a
  seed continue it — environment i draws the same episode starts as ``FxRiskEnv().reset(seed=s+i)``
  and its later resets;
* autoreset: ``AutoresetMode.NEXT_STEP`` (gymnasium 1.x default): after an episode ends, the next
  ``step()`` resets that environment and ignores its action, returning the reset observation,
  reward 0, ``terminated=False``, ``truncated=False``;
* info: gymnasium's vector convention, a dict of per-environment arrays (first axis N) each with a
  boolean mask ``info["_key"]`` saying which environments hold a value. Step keys are those of
  :meth:`FxRiskCore.step` (``equity``, ``costs``, ``var_utilisation``...); an environment being
  reset this step carries the reset info only (``t``, ``equity``), its step keys are 0 and masked
  out. The arrays are fresh each call (safe to keep); the masks may be shared read-only arrays;
* ``reset(options=...)``: ``{"reset_mask": bool array (N,)}`` resets only those environments (as
  ``SyncVectorEnv``), ``{"start": int or N ints}`` starts episodes at given bars (as
  ``FxRiskEnv``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from envs.config import EnvConfig
from envs.core import RESET_INFO, BatchState, FxRiskCore, OBS_BOUND
from envs.data import EnvData, prepare_env_data
from envs.errors import InvalidActionError, ResetNeededError
from forecasters.cache import ForecastCache
from simulator.data.market import MarketData

_STATE_FIELDS = tuple(f.name for f in fields(BatchState))
_RESET_INFO = RESET_INFO


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def validate_actions(actions: Any, space: spaces.Box, num_envs: int) -> np.ndarray:
    """Batched actions as float64 (N, pair); NaN or out-of-space entries raise one clear line.

    The same checks and wording as :func:`envs.fx_env.check_action`, naming the environments at fault.
    """
    arr = np.asarray(actions, dtype=np.float64)
    expected = (num_envs, *space.shape)
    if arr.shape != expected:
        raise InvalidActionError(f"actions shape {arr.shape} does not match the batched action space {expected} "
                                 f"(one row per environment, one target per pair)")
    check_rows(arr, space)
    return arr


def check_rows(arr: np.ndarray, space: spaces.Box, rows: np.ndarray | None = None) -> None:
    """Raise :class:`InvalidActionError` for non-finite or out-of-space actions (``rows``: their environments)."""
    if arr.size == 0:
        return
    lo, hi = float(space.low.min()), float(space.high.max())
    # Fast path: one reduction each (NaN propagates through min/max).
    low_ok, high_ok = arr.min() >= lo - 1e-6, arr.max() <= hi + 1e-6
    if low_ok and high_ok:
        return
    envs = np.arange(len(arr)) if rows is None else np.asarray(rows)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)[:5]
        raise InvalidActionError(f"action contains NaN or inf in environment(s) {envs[bad].tolist()}: "
                                 f"{arr[bad].tolist()} — the policy produced a non-finite output")
    bad = np.flatnonzero(((arr < lo - 1e-6) | (arr > hi + 1e-6)).any(axis=1))[:5]
    raise InvalidActionError(f"action {arr[bad].tolist()} of environment(s) {envs[bad].tolist()} is outside the "
                             f"action space [{lo}, {hi}] — clip it or rescale the policy output")


def take_rows(state: BatchState, rows: np.ndarray) -> BatchState:
    """A new state holding copies of the accounts in ``rows``."""
    return BatchState(**{name: getattr(state, name)[rows] for name in _STATE_FIELDS})


def put_rows(state: BatchState, rows: np.ndarray, part: BatchState) -> None:
    """Write the accounts of ``part`` back into ``state`` at ``rows`` (in place)."""
    for name in _STATE_FIELDS:
        getattr(state, name)[rows] = getattr(part, name)


class FxRiskVectorEnv(gym.vector.VectorEnv):
    """N accounts over one market, stepped as one batch (see the module docstring).

    Built like :class:`~envs.fx_env.FxRiskEnv` — from a market (default: the bundled EURUSD
    2017 sample) and an :class:`EnvConfig`, or from prepared :class:`EnvData` shared by all
    environments — plus ``num_envs``.
    """

    def __init__(self, num_envs: int, market: MarketData | None = None, config: EnvConfig | None = None, *,
                 data: EnvData | None = None, cache: ForecastCache | None = None) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        self.num_envs = int(num_envs)
        self.config = config or EnvConfig()
        if data is None:
            if market is None:
                from simulator.data.sample import load_sample

                market = load_sample()
            data = prepare_env_data(market, self.config, cache=cache)
        self.data = data
        self.core = FxRiskCore(data, self.config)
        self.config = self.core.config  # durations resolved to bars of this data
        self.state = BatchState.empty(self.num_envs, data.n_pairs)
        self.metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}
        self.render_mode = None
        self.single_observation_space = spaces.Box(-OBS_BOUND, OBS_BOUND, shape=(self.core.obs_dim,),
                                                   dtype=np.float32)
        self.single_action_space = spaces.Box(-1.0, 1.0, shape=(data.n_pairs,), dtype=np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._rng_seeds: list[int | None] = [None] * self.num_envs
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._needs_reset = True
        self._all_true = np.ones(self.num_envs, dtype=bool)
        self._all_true.flags.writeable = False
        lo, hi = float(self.single_action_space.low.min()), float(self.single_action_space.high.max())
        self._bounds = (lo - 1e-6, hi + 1e-6)  # check_rows' rule
        self._templates: dict[tuple[str, ...], dict[str, Any]] = {}

    # -- seeding -----------------------------------------------------------------------------
    @property
    def np_randoms(self) -> tuple[np.random.Generator, ...]:
        """Each environment's own generator (made on first use, as ``Env.np_random`` does)."""
        for i, rng in enumerate(self._rngs):
            if rng is None:
                self._rngs[i], self._rng_seeds[i] = seeding.np_random()
        return tuple(self._rngs)  # type: ignore[arg-type]

    @property
    def np_random_seeds(self) -> tuple[int | None, ...]:
        """The seed each environment's generator was made from (``None`` before its first reset)."""
        return tuple(self._rng_seeds)

    def _seed_list(self, seed: int | Sequence[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"If seeds are passed as a list the length must match num_envs={self.num_envs} "
                             f"but got length={len(seeds)}.")
        return seeds

    def _draw_starts(self, rows: np.ndarray, seeds: Sequence[int | None] | None,
                     starts: Sequence[int | None] | None) -> np.ndarray:
        """Episode start bars for ``rows``: given, or drawn from each environment's generator."""
        lo, hi = self.core.start_bounds()
        last = self.data.last_step
        out = np.empty(len(rows), dtype=np.int64)
        for k, i in enumerate(rows.tolist()):
            s = None if seeds is None else seeds[k]
            if s is not None:
                self._rngs[i], self._rng_seeds[i] = seeding.np_random(int(s))
            start = None if starts is None else starts[k]
            if start is None:
                if hi == lo:
                    out[k] = lo
                    continue
                if self._rngs[i] is None:
                    self._rngs[i], self._rng_seeds[i] = seeding.np_random()
                out[k] = int(self._rngs[i].integers(lo, hi + 1))
            else:
                if not lo <= int(start) <= last:
                    raise ValueError(f"options['start']={start} (environment {i}) is outside the usable bars "
                                     f"[{lo}, {last}]")
                out[k] = int(start)
        return out

    def _reset_rows(self, rows: np.ndarray, seeds: Sequence[int | None] | None = None,
                    starts: Sequence[int | None] | None = None) -> None:
        """Fresh accounts for the environments in ``rows`` (seeds and starts aligned with ``rows``)."""
        if len(rows) == 0:
            return
        self.core.reset_accounts(self.state, rows, self._draw_starts(rows, seeds, starts))
        self._autoreset[rows] = False

    # -- gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every environment (or those in ``options['reset_mask']``); see the module docstring."""
        seeds = self._seed_list(seed)
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            super().reset(seed=int(seed))     # the vector-level generator, as gymnasium does
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            rows = np.arange(self.num_envs)
        else:
            if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
                raise ValueError(f"options['reset_mask'] must be a numpy bool array of shape ({self.num_envs},), "
                                 f"got {mask!r}")
            if not mask.any():
                raise ValueError("options['reset_mask'] must contain at least one True value")
            rows = np.flatnonzero(mask)
        start = options.pop("start", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)} (known: 'reset_mask', 'start')")
        starts = None
        if start is not None:
            per_env = np.broadcast_to(np.asarray(start, dtype=object), (self.num_envs,))
            starts = [per_env[i] for i in rows.tolist()]
        self._reset_rows(rows, [seeds[i] for i in rows.tolist()], starts)
        self._needs_reset = False
        obs = self.core.observe(self.state)
        mask_arr = self._all_true if mask is None else mask.copy()
        info: dict[str, Any] = {}
        for key in _RESET_INFO:
            value = np.zeros(self.num_envs, dtype=getattr(self.state, key).dtype)
            value[rows] = getattr(self.state, key)[rows]
            info[key], info[f"_{key}"] = value, mask_arr
        return obs, info

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every environment; those whose episode ended last step are reset instead (NEXT_STEP)."""
        if self._needs_reset:
            raise ResetNeededError("Cannot call step() before reset() on FxRiskVectorEnv — call reset() first")
        arr = actions if type(actions) is np.ndarray and actions.dtype in _FLOATS else np.asarray(actions,
                                                                                               dtype=np.float64)
        expected = (self.num_envs, *self.single_action_space.shape)
        if arr.shape != expected:
            raise InvalidActionError(f"actions shape {arr.shape} does not match the batched action space "
                                     f"{expected} (one row per environment, one target per pair)")
        all_true = self._all_true
        if not self._autoreset.any():
            result = self.core.step_observe(self.state, arr, bounds=self._bounds)
            if result is None:  # an action out of the space: nothing changed; say which
                check_rows(np.asarray(arr, dtype=np.float64), self.single_action_space)
                raise AssertionError("check_rows accepted actions the kernel rejected")  # pragma: no cover
            step_mask = all_true
            any_active = True
        else:
            resetting = self._autoreset.copy()
            active = np.flatnonzero(~resetting)
            check_rows(np.asarray(arr[active], dtype=np.float64), self.single_action_space, active)
            self._reset_rows(np.flatnonzero(resetting))  # after the check: a bad action changes nothing
            result = self.core.step_observe(self.state, arr, skip=resetting)
            step_mask = ~resetting
            step_mask.flags.writeable = False
            any_active = active.size > 0
        obs, reward, terminated, truncated, core_info = result
        self._autoreset = terminated | truncated
        if step_mask is all_true:
            # Every entry present everywhere: a copy of the layout (each key, then its mask "_key",
            # all True) with the values put in place (the positions stay).
            keys = tuple(core_info)
            template = self._templates.get(keys)
            if template is None:
                template = self._templates[keys] = {name: all_true for key in keys for name in (key, f"_{key}")}
            info = template.copy()
            info.update(core_info)
            return obs, reward, terminated, truncated, info
        info = {}
        for key in (core_info if any_active else _RESET_INFO):  # every environment reset: reset keys only
            info[key] = core_info[key]
            info[f"_{key}"] = all_true if key in _RESET_INFO else step_mask
        return obs, reward, terminated, truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        """Nothing to release: the batch holds arrays only."""

    def __repr__(self) -> str:
        return f"FxRiskVectorEnv(num_envs={self.num_envs}, pairs={self.data.symbols}, config={self.config!r})"
