"""PPO and constrained PPO training on a walk-forward split, with validation, checkpoints and resume.

The split is by date (:class:`~forecasters.base.Split`): training episodes use bars
``[0, train_end)``, validation ``[train_end, val_end)``, test ``[val_end, T)``. Features,
forecasts and VaR are causal (row t uses bars <= t; GARCH parameters are refit on past bars
only), so restricting where episodes run (:meth:`EnvData.restrict`) keeps validation and test
bars out of training; ``VecNormalize`` statistics are updated on training episodes only.

A run folder holds ``config.yaml`` (resolved), ``manifest.yaml`` (command, git revision,
library versions), ``tensorboard/``, ``checkpoints/step-N/`` (model, normalisation
statistics, callback state), ``best_model.zip`` (best validation Sharpe), ``model.zip``,
``normalisation.json`` and ``metrics.yaml``. ``resume`` continues a killed run from its
last complete checkpoint, in the same folder and TensorBoard run.

Models are never unpickled: loading rebuilds the policy from the run's ``config.yaml`` and reads
only the tensors of the zip's ``policy.pth`` (``torch.load(weights_only=True)``,
:mod:`agents.model_io`). Normalisation statistics and checkpoint state are plain JSON and ``.npz``
(read with ``allow_pickle=False``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

from agents.callbacks import (PeriodicCallback, ProgressBarCallback, RestoreCallback, RolloutStartCallback,
                              TradingMetricsCallback, write_json)
from agents.evaluation.rollout import ObservationNormaliser, TrainedPolicy, evaluation_config, run_policy
from agents.hyperparams import REPO_ROOT, DataConfig, SelectionConfig, TrainConfig
from agents.lagrangian import MultiplierState
from agents.model_io import build_algorithm, load_model, load_weights, read_model_zip, set_policy_weights
from envs.config import EnvConfig
from envs.data import EnvData, prepare_env_data
from envs.sb3 import FxRiskSB3VecEnv
from forecasters.base import Split
from forecasters.cache import ForecastCache
from simulator.common.configuration import from_mapping, load_yaml, to_mapping
from simulator.common.errors import ConfigError, ModelFileError
from simulator.data.market import MarketData
from agents.evaluation.metrics import bars_per_year
from simulator.common.run_folder import RunFolder, atomic_write_text
from simulator.data.sources import cut_to_dates, load_csv_files

CHECKPOINT_PREFIX = "step-"


# -- data ------------------------------------------------------------------------------------
def load_market(config: DataConfig, *, account_currency: str = "USD") -> MarketData:
    """The market a training config names (generated sources use ``data_seed``), cut to ``start``..``end``.

    ``account_currency`` lets the ECB source add the conversion rates the account needs.
    """
    if config.source == "sample":
        from simulator.data.sample import load_sample

        market = load_sample()
    elif config.source == "ecb":
        from simulator.data.ecb import load_ecb

        return load_ecb(list(config.symbols), start=config.start, end=config.end, account_currency=account_currency,
                        max_fill=config.max_fill)
    elif config.source == "synthetic":
        from simulator.synthetic.generator import SyntheticConfig, default_config, generate_market

        rng = np.random.default_rng(config.data_seed)
        if config.synthetic_config is None:
            synthetic = default_config(config.symbols)
        else:
            path = Path(config.synthetic_config)
            synthetic = SyntheticConfig.from_yaml(path if path.is_absolute() else REPO_ROOT / path)
        market = generate_market(synthetic, config.n_bars, rng=rng).market
    elif config.source == "planted_edge":
        market = planted_market(config).market
    else:
        market = load_csv_market(config)
    return cut_to_dates(market, config.start, config.end)


def planted_market(config: DataConfig):
    """The planted-edge market of ``config`` (``data_seed``, ``n_bars``) with its hidden state, uncut
    (:class:`~simulator.synthetic.planted_edge.PlantedEdgeMarket`; :func:`load_market` cuts its bars)."""
    from simulator.synthetic.planted_edge import planted_edge_market

    return planted_edge_market(config.n_bars, rng=np.random.default_rng(config.data_seed),
                               config=config.planted_edge_config())


def load_csv_market(config: DataConfig) -> MarketData:
    """``data.csv_path`` as a market: one file (any preset, wide for several pairs) or one file per pair
    (a mapping symbol → file, put on one clock by an inner join, see :func:`simulator.data.sources.load_csv_files`).
    Relative paths are taken from the working directory, else from the repository.
    """
    from simulator.data.csv_loader import preset

    fmt = preset(config.csv_preset)
    if config.csv_columns is not None:
        try:
            fmt = replace(fmt, name=f"{fmt.name}+csv_columns", columns=dict(config.csv_columns))
        except ValueError as exc:
            raise ConfigError(f"data.csv_columns: {exc}") from None

    def resolve(path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() or p.exists() else REPO_ROOT / p

    if isinstance(config.csv_path, dict):
        from simulator.data.pairs import normalise_symbol

        symbols = [normalise_symbol(s) for s in config.csv_path]
        return load_csv_files([resolve(p) for p in config.csv_path.values()], fmt, symbols, max_fill=config.max_fill)
    return load_csv_files([resolve(config.csv_path)], fmt, list(config.symbols), max_fill=config.max_fill)


def make_split(market: MarketData, data: DataConfig) -> Split:
    """The walk-forward split ``data`` asks for: dates (``train_end``/``validation_end``) or fractions."""
    if data.train_end is not None:
        return Split.by_date(market.index, data.train_end, data.validation_end, source="data",
                             keys=("data.train_end", "data.validation_end"))
    return Split.by_fraction(len(market), data.train, data.validation)


@dataclass(frozen=True, eq=False)
class SplitData:
    """The prepared arrays once, and the three date spans episodes may run in."""

    market: MarketData
    split: Split
    full: EnvData
    train: EnvData
    validation: EnvData
    test: EnvData

    def span(self, name: str) -> EnvData:
        if name not in ("train", "validation", "test"):
            raise ValueError(f"split must be 'train', 'validation' or 'test', got {name!r}")
        return getattr(self, name)

    def dates(self) -> dict[str, str]:
        idx = self.market.index
        s = self.split
        return {"train": f"{idx[0]} .. {idx[s.train_end - 1]}", "validation": f"{idx[s.train_end]} .. "
                f"{idx[s.val_end - 1]}", "test": f"{idx[s.val_end]} .. {idx[-1]}"}


def split_data(market: MarketData, env: EnvConfig, data: DataConfig, *, cache: ForecastCache | None = None
               ) -> SplitData:
    """Prepare the env arrays for ``market`` and confine episodes to train / validation / test spans."""
    split = make_split(market, data)
    full = prepare_env_data(market, env, cache=cache)
    if full.first_step + env.window >= split.train_end:
        raise ValueError(f"the warm-up ({full.first_step} bars of features, forecasts and VaR) leaves no training "
                         f"bars before {market.index[split.train_end]} — use longer data or a smaller var_window")
    return SplitData(market=market, split=split, full=full, train=full.restrict(0, split.train_end),
                     validation=full.restrict(split.train_end, split.val_end),
                     test=full.restrict(split.val_end, len(market)))


# -- normalisation statistics (JSON, no pickle) ------------------------------------------------
def normalisation_state(vecnorm: VecNormalize) -> dict[str, Any]:
    return {
        "obs_mean": vecnorm.obs_rms.mean.tolist(), "obs_var": vecnorm.obs_rms.var.tolist(),
        "obs_count": float(vecnorm.obs_rms.count), "ret_mean": float(vecnorm.ret_rms.mean),
        "ret_var": float(vecnorm.ret_rms.var), "ret_count": float(vecnorm.ret_rms.count),
        "clip_obs": vecnorm.clip_obs, "clip_reward": vecnorm.clip_reward, "gamma": vecnorm.gamma,
        "epsilon": vecnorm.epsilon, "norm_reward": vecnorm.norm_reward,
    }


def restore_normalisation(vecnorm: VecNormalize, state: dict[str, Any]) -> None:
    vecnorm.obs_rms.mean = np.asarray(state["obs_mean"], dtype=np.float64)
    vecnorm.obs_rms.var = np.asarray(state["obs_var"], dtype=np.float64)
    vecnorm.obs_rms.count = float(state["obs_count"])
    vecnorm.ret_rms.mean = np.float64(state["ret_mean"])
    vecnorm.ret_rms.var = np.float64(state["ret_var"])
    vecnorm.ret_rms.count = float(state["ret_count"])


def normaliser_from_state(state: dict[str, Any]) -> ObservationNormaliser:
    return ObservationNormaliser(np.asarray(state["obs_mean"]), np.asarray(state["obs_var"]), state["clip_obs"],
                                 state["epsilon"])


def checkpoint_eligible(scores: dict[str, Any], rule: SelectionConfig, *, cost_budget: float | None = None
                        ) -> tuple[bool, str]:
    """Whether a validation result may become the best model, and if not, why (see :class:`SelectionConfig`)."""
    why = []
    if scores.get("stop_outs", 0) > 0:
        why.append("stopped out")
    if not scores.get("max_drawdown", 0.0) <= rule.max_drawdown:
        why.append(f"drawdown {scores.get('max_drawdown', float('nan')):.1%} > {rule.max_drawdown:.0%}")
    if not scores.get("time_over_limit", 0.0) <= rule.max_time_over_limit:
        why.append(f"over the VaR limit on {scores.get('time_over_limit', float('nan')):.1%} of bars "
                   f"> {rule.max_time_over_limit:.0%}")
    if cost_budget is not None and not scores.get("mean_cost", 0.0) <= cost_budget:
        why.append(f"mean cost {scores.get('mean_cost', float('nan')):.4f} per bar > budget {cost_budget:g} "
                   f"(lagrange.cost_limit / episode_bars)")
    return not why, "; ".join(why)


def resolve_model(path: str | Path) -> tuple[Path, Path]:
    """``(model .zip, run folder)`` from a training run folder (its best model, else the final one
    unless the run says no checkpoint was eligible) or a model file; a missing one is one clear line."""
    path = Path(path)
    if path.is_dir():
        if (path / "best_model.zip").is_file():
            return path / "best_model.zip", path
        metrics = load_yaml(path / "metrics.yaml") if (path / "metrics.yaml").is_file() else None
        selection = (metrics or {}).get("selection") if isinstance(metrics, dict) else None
        if isinstance(selection, dict) and selection.get("selected_step") is None:
            raise ModelFileError(f"{path}: no checkpoint passed the selection rule on validation "
                                 f"({selection.get('why', 'see metrics.yaml')}) — pass {path / 'model.zip'} to "
                                 "evaluate the final model anyway")
        if (path / "model.zip").is_file():
            return path / "model.zip", path
        raise FileNotFoundError(f"{path}: no best_model.zip or model.zip — is this a finished training run folder?")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model — pass a training run folder or its model .zip")
    return path, path.parent


def load_trained_policy(model_path: str | Path, normalisation_path: str | Path | None = None,
                        name: str = "ppo") -> TrainedPolicy:
    """A saved model, rebuilt from its run's ``config.yaml`` with its weights only (no unpickling,
    :mod:`agents.model_io`), and its JSON normalisation statistics."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelFileError(f"{model_path}: no such model file — pass a run folder's model.zip or best_model.zip")
    if normalisation_path is None:
        guess = model_path.with_name(model_path.stem.replace("model", "normalisation") + ".json")
        normalisation_path = guess if guess.is_file() else None
    model = load_model(model_path)
    normaliser = None
    if normalisation_path is not None:
        normaliser = normaliser_from_state(read_normalisation(Path(normalisation_path)))
    return TrainedPolicy(model, normaliser, name=name)


def read_normalisation(path: Path) -> dict[str, Any]:
    """Normalisation statistics (JSON) with the fields :func:`normaliser_from_state` needs; else one line."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        mean, var = np.asarray(state["obs_mean"], dtype=np.float64), np.asarray(state["obs_var"], dtype=np.float64)
        float(state["clip_obs"]), float(state["epsilon"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path}: not normalisation statistics ({type(exc).__name__}: {exc})") from None
    if mean.shape != var.shape or mean.ndim != 1 or not (np.isfinite(mean).all() and np.isfinite(var).all()):
        raise ModelFileError(f"{path}: obs_mean / obs_var must be finite lists of one length")
    return state


# -- the trainer -----------------------------------------------------------------------------
class Trainer:
    """One training run in one run folder; ``run()`` trains to ``total_timesteps`` (or resumes).

    Checkpoints are taken at rollout starts (buffer empty, update done) and hold everything that
    moves: weights and optimizer state, the last observations and episode starts, VecNormalize and
    VecMonitor state, every account of the batched env and each env's generator, the torch, numpy
    and Python RNGs, and the callbacks' state — so a killed run resumed from one ends exactly as
    the uninterrupted run.
    """

    def __init__(self, config: TrainConfig, folder: RunFolder, *, cache: ForecastCache | None = None,
                 progress: bool = True, log: Any = print, data: SplitData | None = None,
                 on_validation: Callable[[dict[str, Any], float], None] | None = None) -> None:
        self.config = config
        self.on_validation = on_validation  # called after each validation with (scores, best score so far)
        self.folder = folder
        self.progress = progress
        self.log = log
        torch.set_num_threads(config.ppo.torch_threads)
        if data is None:
            market = load_market(config.data, account_currency=config.env.account.currency)
            data = split_data(market, config.env, config.data, cache=cache)
        self.data = data
        self.bars_per_year = bars_per_year(self.data.full.index)
        self.eval_history: list[dict[str, float]] = []
        self.best_score = -np.inf
        self.constrained = config.lagrange.enabled
        self.venv, self.vecnorm = self._make_env()
        self.model: Any = None
        self._callbacks: dict[str, Any] = {}
        if not (folder.path / "config.yaml").exists():  # models are rebuilt from it (agents.model_io)
            folder.write_yaml("config.yaml", config.to_dict())

    @property
    def path(self) -> Path:
        return self.folder.path

    def _make_env(self) -> tuple[VecEnv, VecNormalize]:
        cfg = self.config
        base = self.base_env = FxRiskSB3VecEnv(cfg.n_envs, data=self.data.train, config=cfg.env)
        base.seed(cfg.seed)
        monitored = self.monitor = VecMonitor(base)  # rollout/ep_rew_mean, ep_len_mean: the env's own reward
        vecnorm = VecNormalize(monitored, norm_obs=True, norm_reward=cfg.reward_normalisation, clip_obs=10.0,
                               gamma=cfg.ppo.gamma)
        return vecnorm, vecnorm

    @property
    def episode_bars(self) -> int:
        """Training episode length in bars (the env's durations resolved on this data)."""
        return int(self.base_env.config.episode_bars)

    def _new_model(self) -> Any:
        extra = {"episode_bars": self.episode_bars} if self.constrained else {}
        return build_algorithm(self.config, env=self.venv, tensorboard_log=str(self.path / "tensorboard"),
                               seed=self.config.seed, **extra)

    # -- validation and checkpoints ----------------------------------------------------------
    def current_policy(self) -> TrainedPolicy:
        return TrainedPolicy(self.model, normaliser_from_state(normalisation_state(self.vecnorm)))

    def validate(self, callback: PeriodicCallback | None = None) -> dict[str, Any]:
        """Deterministic run over the whole validation span; keeps the best eligible model (see SelectionConfig)."""
        result = run_policy(self.current_policy(), self.data.validation, evaluation_config(self.config.env),
                            label="ppo")
        row = result.summary.iloc[0].to_dict()
        scores: dict[str, Any] = {k: float(row[k]) for k in (
            "sharpe_ratio", "sortino_ratio", "total_return", "max_drawdown", "breach_rate", "time_over_limit",
            "stop_outs", "costs_paid", "turnover_x_equity")}
        util = result.records["var_utilisation"].to_numpy(np.float64) if "var_utilisation" in result.records else None
        scores["mean_cost"] = float(np.nanmean(np.maximum(util - 1.0, 0.0))) if util is not None and util.size else 0.0
        scores["timesteps"] = int(self.model.num_timesteps)
        budget = None
        if self.constrained:  # the per-episode limit as a mean per bar (validation is one long run)
            budget = self.config.lagrange.cost_limit / self.episode_bars
            scores["episode_cost"] = scores["mean_cost"] * self.episode_bars
        eligible, why = checkpoint_eligible(scores, self.config.selection, cost_budget=budget)
        scores["eligible"], scores["ineligible_reason"] = eligible, why
        self.eval_history.append(scores)
        logger = self.model.logger
        for key, value in scores.items():
            if key not in ("timesteps", "eligible", "ineligible_reason"):
                logger.record(f"eval/val_{key}", value)
        logger.record("eval/val_eligible", float(eligible))
        objective = scores[self.config.selection.objective]
        if eligible and np.isfinite(objective) and objective > self.best_score:
            self.best_score = objective
            self._save_model(self.path / "best_model.zip", self.path / "best_normalisation.json")
            logger.record("eval/best_val_objective", objective)
        best = f"{self.best_score:.2f}" if np.isfinite(self.best_score) else "none eligible yet"
        self.log(f"  validation at {scores['timesteps']:,} steps: Sharpe {scores['sharpe_ratio']:.2f}, "
                 f"return {scores['total_return']:+.2%}, max DD {scores['max_drawdown']:.1%}"
                 + ("" if eligible else f", not eligible ({why})") + f"; best {best}")
        if self.on_validation is not None:  # e.g. a tuning trial's pruning report (agents.tuning)
            self.on_validation(scores, self.best_score)
        return scores

    def _save_model(self, model_path: Path, norm_path: Path) -> None:
        tmp = model_path.with_name(f".{model_path.name}.tmp.zip")
        self.model.save(tmp)
        os.replace(tmp, model_path)
        write_json(norm_path, normalisation_state(self.vecnorm))

    def checkpoint(self, callback: Any = None) -> Path:
        """Write ``checkpoints/step-N`` completely under a temporary name, then rename it."""
        steps = int(self.model.num_timesteps)
        root = self.path / "checkpoints"
        final = root / f"{CHECKPOINT_PREFIX}{steps:010d}"
        if final.exists():
            return final
        tmp = root / f".{final.name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self._save_model(tmp / "model.zip", tmp / "normalisation.json")
        arrays, state = self._moving_state()
        with open(tmp / "state.npz", "wb") as handle:
            np.savez(handle, **arrays)
        write_json(tmp / "state.json", {
            "timesteps": steps, "best_score": self.best_score, "eval_history": self.eval_history,
            "lagrange_state": self.model.multiplier_state.to_dict() if self.constrained else None,
            "lagrange_history": self.model.constraint_history if self.constrained else [],
            **state,
        })
        if self.constrained:  # the cost critic and its optimizer: tensors only, read back weights-only
            torch.save(self.model.constraint_state(), tmp / "cost_critic.pth")
        os.replace(tmp, final)
        return final

    def _moving_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays (for ``state.npz``) and JSON values of everything a rollout start carries forward."""
        model, venv, monitor = self.model, self.base_env.vector_env, self.monitor
        arrays: dict[str, np.ndarray] = {
            "last_obs": np.asarray(model._last_obs), "last_episode_starts": np.asarray(model._last_episode_starts),
            "vecnorm_returns": np.asarray(self.vecnorm.returns, dtype=np.float64),
            "monitor_returns": np.asarray(monitor.episode_returns),
            "monitor_lengths": np.asarray(monitor.episode_lengths),
            "torch_rng": torch.get_rng_state().numpy(), "autoreset": venv._autoreset.copy(),
        }
        for name in _STATE_FIELDS:
            arrays[f"env_{name}"] = getattr(venv.state, name)
        np_state = np.random.get_state()
        arrays["numpy_rng_keys"] = np_state[1]
        lstm = getattr(model, "_last_lstm_states", None)
        if lstm is not None:
            for part, pair in (("pi", lstm.pi), ("vf", lstm.vf)):
                for k, tensor in enumerate(pair):
                    arrays[f"lstm_{part}_{k}"] = tensor.detach().cpu().numpy()
        state = {
            "n_updates": int(model._n_updates), "progress_remaining": float(model._current_progress_remaining),
            "ep_info_buffer": [dict(e) for e in (model.ep_info_buffer or [])],
            "ep_success_buffer": list(model.ep_success_buffer or []),
            "monitor_episode_count": int(monitor.episode_count),
            "env_rngs": [None if g is None else g.bit_generator.state for g in venv._rngs],
            "env_rng_seeds": list(venv._rng_seeds), "env_needs_reset": bool(venv._needs_reset),
            "numpy_rng": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python_rng": _python_rng_state(),
            "callbacks": {name: cb.get_state() if hasattr(cb, "get_state") else {"last": cb._last}
                          for name, cb in self._callbacks.items()},
        }
        return arrays, state

    # -- running -----------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> dict[str, Any]:
        cfg = self.config
        checkpoint = latest_checkpoint(self.path) if resume else None
        pending = None
        if checkpoint is not None:
            pending = self._restore(checkpoint)
            self.log(f"resuming from {checkpoint.name} ({self.model.num_timesteps:,} of {cfg.total_timesteps:,} steps)")
        else:
            self.model = self._new_model()
        self._callbacks = {"trading": TradingMetricsCallback(self.bars_per_year),
                           "validation": PeriodicCallback(cfg.eval_every, self.validate),
                           "checkpoint": RolloutStartCallback(cfg.checkpoint_every, self.checkpoint)}
        callbacks = list(self._callbacks.values())
        if self.progress:
            callbacks.append(ProgressBarCallback(cfg.total_timesteps))
        if pending is not None:
            callbacks.append(RestoreCallback(lambda: self._restore_moving(*pending)))
        remaining = cfg.total_timesteps - int(self.model.num_timesteps)
        start = time.perf_counter()
        if remaining > 0:
            self.model.learn(remaining, callback=CallbackList(callbacks), tb_log_name="ppo",
                             reset_num_timesteps=checkpoint is None)
        elapsed = time.perf_counter() - start
        self._save_model(self.path / "model.zip", self.path / "normalisation.json")
        if not self.eval_history or self.eval_history[-1]["timesteps"] != int(self.model.num_timesteps):
            self.validate()
        chosen = [h for h in self.eval_history if h.get("eligible", True)]
        best = max(chosen, key=lambda h: h[self.config.selection.objective], default=None) if chosen else None
        metrics = {
            "timesteps": int(self.model.num_timesteps),
            "train_seconds_this_session": round(elapsed, 2),
            "timesteps_per_second_this_session": round(remaining / elapsed, 1) if elapsed > 0 and remaining > 0 else None,
            "best_validation_sharpe": float(best["sharpe_ratio"]) if best else float("nan"),
            "selection": {"rule": to_mapping(self.config.selection),
                          "selected_step": int(best["timesteps"]) if best else None,
                          "objective": float(self.best_score) if best else None,
                          "why": ("highest validation " + self.config.selection.objective + " among "
                                  f"{len(chosen)} eligible of {len(self.eval_history)} evaluations") if best else
                                 ("no evaluation was eligible: " + "; ".join(
                                     sorted({h["ineligible_reason"] for h in self.eval_history})))},
            "validation": self.eval_history,
            "splits": self.data.dates(),
        }
        if self.constrained:
            metrics["lagrange_multiplier"] = self.model.multiplier
            metrics["lagrange_history"] = self.model.constraint_history
        self.folder.write_yaml("metrics.yaml", _plain(metrics))
        return metrics

    def _restore(self, checkpoint: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Rebuild the model from the config and load the checkpoint's weights (no unpickling); returns
        the moving state, put back at training start (:meth:`_restore_moving`)."""
        try:
            state = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))
            with np.load(checkpoint / "state.npz", allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            norm = json.loads((checkpoint / "normalisation.json").read_text(encoding="utf-8"))
            restore_normalisation(self.vecnorm, norm)
            timesteps = int(state["timesteps"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelFileError(f"{checkpoint}: not a complete checkpoint ({type(exc).__name__}: {exc}) — delete "
                                 f"it to resume from the one before") from None
        obs_shape, _, policy, optimizer = read_model_zip(checkpoint / "model.zip")
        if obs_shape != self.venv.observation_space.shape:
            raise ModelFileError(f"{checkpoint / 'model.zip'}: observation shape {obs_shape} does not match the "
                                 f"run's env {self.venv.observation_space.shape}")
        self.model = self._new_model()
        set_policy_weights(self.model, policy, str(checkpoint / "model.zip"), optimizer)
        self.model.num_timesteps = timesteps
        self.best_score = float(state["best_score"])
        self.eval_history = list(state["eval_history"])
        if self.constrained:
            try:
                self.model.multiplier_state = MultiplierState.from_dict(state["lagrange_state"])
                self.model.constraint_history = list(state.get("lagrange_history", []))
                raw = (checkpoint / "cost_critic.pth").read_bytes()
            except (OSError, KeyError, TypeError, ValueError) as exc:
                raise ModelFileError(f"{checkpoint}: no constrained-PPO state ({type(exc).__name__}: {exc}) — "
                                     f"delete it to resume from the one before") from None
            critic = load_weights(raw, f"{checkpoint / 'cost_critic.pth'}")
            try:
                self.model.load_constraint_state(critic)
            except (RuntimeError, ValueError, KeyError, TypeError) as exc:
                raise ModelFileError(f"{checkpoint / 'cost_critic.pth'}: does not fit the run's cost critic "
                                     f"({' '.join(str(exc).split())[:160]})") from None
        self._restore_model_env(arrays, state)
        return arrays, state

    def _restore_model_env(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        """Model position and env state (before ``learn``: the last observation stops SB3 resetting)."""
        model, venv, monitor = self.model, self.base_env.vector_env, self.monitor
        model._last_obs = arrays["last_obs"].copy()
        model._last_episode_starts = arrays["last_episode_starts"].copy()
        model._n_updates = int(state["n_updates"])
        model._current_progress_remaining = float(state["progress_remaining"])
        from collections import deque

        model.ep_info_buffer = deque(state["ep_info_buffer"], maxlen=model._stats_window_size)
        model.ep_success_buffer = deque(state["ep_success_buffer"], maxlen=model._stats_window_size)
        if "lstm_pi_0" in arrays and getattr(model, "_last_lstm_states", None) is not None:
            from sb3_contrib.common.recurrent.type_aliases import RNNStates

            model._last_lstm_states = RNNStates(
                pi=tuple(torch.as_tensor(arrays[f"lstm_pi_{k}"]) for k in range(2)),
                vf=tuple(torch.as_tensor(arrays[f"lstm_vf_{k}"]) for k in range(2)))
        self.vecnorm.returns = arrays["vecnorm_returns"].copy()
        monitor.episode_returns = arrays["monitor_returns"].copy()
        monitor.episode_lengths = arrays["monitor_lengths"].copy()
        monitor.episode_count = int(state["monitor_episode_count"])
        for name in _STATE_FIELDS:
            setattr(venv.state, name, arrays[f"env_{name}"].copy())
        venv._autoreset = arrays["autoreset"].copy()
        venv._needs_reset = bool(state["env_needs_reset"])
        venv._rng_seeds = list(state["env_rng_seeds"])
        for i, rng_state in enumerate(state["env_rngs"]):
            if rng_state is None:
                venv._rngs[i] = None
            else:
                if venv._rngs[i] is None:
                    venv._rngs[i] = np.random.Generator(np.random.PCG64())
                venv._rngs[i].bit_generator.state = rng_state
        self.base_env._reset_seeds()  # the seeds PPO's constructor stored were consumed by the first reset
        self.base_env._reset_options()

    def _restore_moving(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        """Callback state and RNGs, at training start (after the callbacks' own initialisation)."""
        for name, cb_state in state["callbacks"].items():
            cb = self._callbacks[name]
            if hasattr(cb, "set_state"):
                cb.set_state(cb_state)
            else:
                cb._last = int(cb_state["last"])
        torch.set_rng_state(torch.from_numpy(arrays["torch_rng"].copy()))
        name, pos, has_gauss, cached = state["numpy_rng"]
        np.random.set_state((name, arrays["numpy_rng_keys"].copy(), pos, has_gauss, cached))
        import random

        version, internal, gauss = state["python_rng"]
        random.setstate((version, tuple(internal), gauss))


def _python_rng_state() -> list[Any]:
    import random

    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


_STATE_FIELDS = ("t", "end", "cash", "units", "avg_price", "quote_cash", "peak", "equity", "dsr_a", "dsr_b",
                 "last_scale")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete ``checkpoints/step-N`` folder (partial ones are ignored)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX)
                  and (p / "state.json").is_file())
    return done[-1] if done else None


def train(config: TrainConfig, *, runs_root: str | Path = "runs", argv: list[str] | None = None,
          cache: ForecastCache | None = None, progress: bool = True, log: Any = print,
          on_validation: Callable[[dict[str, Any], float], None] | None = None) -> Path:
    """Train in a fresh run folder (``runs/train-<name>-<UTC time>``); returns the finished folder.

    ``on_validation(scores, best)`` runs after every validation (``best``: the best eligible objective so
    far, -inf when none); an exception it raises stops the run and leaves the folder ``.partial``.
    """
    # Load and prepare the data first: a bad data source leaves no run folder behind.
    market = load_market(config.data, account_currency=config.env.account.currency)
    data = split_data(market, config.env, config.data, cache=cache)
    folder = RunFolder(runs_root, f"train-{config.name}", config=config.to_dict(), argv=argv)
    folder.write_yaml("config.yaml", config.to_dict())
    folder.add_to_manifest("data", {"source": market.source, "bars": len(market), "splits": data.dates(),
                                    "notes": [*market.notes, *data.full.notes]})
    trainer = Trainer(config, folder, cache=cache, progress=progress, log=log, data=data,
                      on_validation=on_validation)
    log(f"run folder: {folder.path}")
    log(f"splits: {trainer.data.dates()}")
    trainer.run()
    return folder.finish()


def resume(run_dir: str | Path, *, cache: ForecastCache | None = None, progress: bool = True,
           log: Any = print) -> Path:
    """Continue the killed run in ``run_dir`` (``.partial``) from its last checkpoint; a finished run
    is refused (one line)."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a training run folder (no config.yaml) — pass the folder "
                                f"train.py printed")
    if not run_dir.name.endswith(".partial") or (run_dir / "metrics.yaml").exists():
        raise ConfigError(f"{run_dir}: this run has finished (metrics.yaml written) — nothing to resume; start a "
                          f"new run instead")
    config = from_mapping(TrainConfig, load_yaml(config_path), source=str(config_path))
    folder = RunFolder.reopen(run_dir)
    trainer = Trainer(config, folder, cache=cache, progress=progress, log=log)
    trainer.run(resume=True)
    return folder.finish()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def with_overrides(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """A copy with top-level fields replaced (command-line overrides such as ``total_timesteps``)."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


__all__ = ["SplitData", "Trainer", "atomic_write_text", "latest_checkpoint", "load_market", "load_trained_policy",
           "resolve_model", "resume", "split_data", "train", "with_overrides"]
