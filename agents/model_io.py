"""Load a trained model without unpickling anything: rebuild it from the run's config, load its weights only.

Why: an SB3 ``.zip`` holds pickled Python objects (``data``'s ``:serialized:`` entries) and
``PPO.load`` deserialises them, so a crafted file runs code. Here the policy is rebuilt from the
training run's ``config.yaml`` (algorithm, network, hyperparameters) and the spaces, and only the
tensors of ``policy.pth`` (and, to resume training, ``policy.optimizer.pth``) are read, with
``torch.load(..., weights_only=True)``, which refuses anything but tensors and plain containers.
From ``data`` only the plain JSON shapes of the spaces are read; its serialised entries are never
decoded. A file that is not such a model, or whose weights do not fit the config, is one clear
:class:`~simulator.common.errors.ModelFileError` line.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents.hyperparams import TrainConfig
from envs.core import OBS_BOUND
from simulator.common.errors import ConfigError, ModelFileError


def find_config(model_path: Path) -> Path:
    """The ``config.yaml`` of the training run that saved ``model_path`` (beside it, or two levels up
    for ``checkpoints/step-N/model.zip``); none is one clear line."""
    for candidate in (model_path.parent / "config.yaml", model_path.parent.parent.parent / "config.yaml"):
        if candidate.is_file():
            return candidate
    raise ModelFileError(f"{model_path}: no config.yaml of a training run beside it — models are rebuilt from "
                         f"their run's config; pass a model inside a training run folder")


def load_run_config(model_path: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` of the run that saved ``model_path``."""
    path = find_config(Path(model_path))
    return TrainConfig.from_yaml(path)


def algorithm_kwargs(config: TrainConfig) -> dict[str, Any]:
    """SB3 constructor arguments from the run's PPO config (one place: training and loading agree)."""
    p = config.ppo
    return dict(learning_rate=p.learning_rate, n_steps=p.n_steps, batch_size=p.batch_size, n_epochs=p.n_epochs,
                gamma=p.gamma, gae_lambda=p.gae_lambda, clip_range=p.clip_range, ent_coef=p.ent_coef,
                vf_coef=p.vf_coef, max_grad_norm=p.max_grad_norm, target_kl=p.target_kl,
                policy_kwargs=dict(net_arch=dict(pi=list(p.net_arch), vf=list(p.net_arch)),
                                   log_std_init=p.log_std_init))


def build_algorithm(config: TrainConfig, *, env: Any = None, observation_space: spaces.Space | None = None,
                    action_space: spaces.Space | None = None, **extra: Any) -> Any:
    """A fresh PPO (RecurrentPPO when ``config.ppo.recurrent``, constrained :class:`~agents.cost_ppo.CostPPO`
    when ``config.lagrange.enabled``: ``extra`` then needs ``episode_bars``) for ``env``, or — ``env`` None —
    a PPO for the given spaces (one environment, for ``predict``; no global seeding)."""
    if config.ppo.recurrent:
        from sb3_contrib import RecurrentPPO as cls

        policy = "MlpLstmPolicy"
    elif config.lagrange.enabled and env is not None:  # training constrained PPO; its policy predicts as PPO's
        from agents.cost_ppo import CostPPO

        return CostPPO("MlpPolicy", env, constraint=config.lagrange, **{**algorithm_kwargs(config), "device": "cpu",
                                                                        "verbose": 0, **extra})
    else:
        from stable_baselines3 import PPO as cls

        policy = "MlpPolicy"
    kwargs = {**algorithm_kwargs(config), "device": "cpu", "verbose": 0, **extra}
    if env is not None:
        return cls(policy, env, **kwargs)
    model = cls(policy, None, _init_setup_model=False, **kwargs)
    model.observation_space, model.action_space, model.n_envs = observation_space, action_space, 1
    model._setup_model()
    return model


def _read(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        raise ModelFileError(f"{path}: no '{name}' inside — not a model saved by a training run") from None


def load_weights(raw: bytes, source: str) -> Any:
    """Tensors (and plain containers) from a torch file, never arbitrary objects."""
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure of a weights-only load means: not a weight file
        reason = " ".join(str(exc).split())[:160]
        raise ModelFileError(f"{source}: not a weights-only torch file ({type(exc).__name__}: {reason}) — "
                             f"refusing to unpickle it") from None


def read_model_zip(path: str | Path) -> tuple[tuple[int, ...], tuple[int, ...], dict[str, Any], Any]:
    """``(observation shape, action shape, policy state dict, optimizer state dict or None)`` of an SB3 zip.

    Only plain JSON fields of ``data`` are read (``_shape`` of the spaces) and the ``.pth`` tensors.
    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(f"{path}: not a model zip ({exc}) — pass a run folder's model.zip") from None
    with archive:
        try:
            data = json.loads(_read(archive, "data", path))
            obs_shape = tuple(int(v) for v in data["observation_space"]["_shape"])
            act_shape = tuple(int(v) for v in data["action_space"]["_shape"])
        except ModelFileError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelFileError(f"{path}: 'data' has no readable space shapes ({type(exc).__name__}) — not a "
                                 f"model saved by a training run") from None
        policy = load_weights(_read(archive, "policy.pth", path), f"{path}: policy.pth")
        optimizer = None
        if "policy.optimizer.pth" in archive.namelist():
            optimizer = load_weights(archive.read("policy.optimizer.pth"), f"{path}: policy.optimizer.pth")
    if not isinstance(policy, dict):
        raise ModelFileError(f"{path}: policy.pth holds {type(policy).__name__}, not a state dict")
    return obs_shape, act_shape, policy, optimizer


def set_policy_weights(model: Any, state: dict[str, Any], source: str, optimizer: Any = None) -> None:
    """Load ``state`` into ``model.policy`` (exact keys and shapes); a mismatch is one clear line."""
    try:
        model.policy.load_state_dict(state, strict=True)
        if optimizer is not None:
            model.policy.optimizer.load_state_dict(optimizer)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise ModelFileError(f"{source}: the weights do not match the run's config (ppo.net_arch, recurrent, "
                             f"spaces): {first}") from None


def load_model(path: str | Path, config: TrainConfig | None = None) -> Any:
    """The model at ``path`` (an SB3 zip from a training run), rebuilt from the run's config; no pickle."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file — pass a run folder's model.zip or best_model.zip")
    if config is None:
        try:
            config = load_run_config(path)
        except ConfigError as exc:
            raise ModelFileError(str(exc)) from None
    obs_shape, act_shape, policy, _ = read_model_zip(path)
    if len(obs_shape) != 1 or len(act_shape) != 1 or act_shape[0] != len(config.data.symbols):
        raise ModelFileError(f"{path}: spaces {obs_shape} -> {act_shape} do not fit the run's config "
                             f"({len(config.data.symbols)} pair(s)) — is this the model of that run?")
    observation_space = spaces.Box(-OBS_BOUND, OBS_BOUND, shape=obs_shape, dtype=np.float32)
    action_space = spaces.Box(-1.0, 1.0, shape=act_shape, dtype=np.float32)
    model = build_algorithm(config, observation_space=observation_space, action_space=action_space)
    set_policy_weights(model, policy, str(path))
    model.policy.set_training_mode(False)
    return model


__all__ = ["algorithm_kwargs", "build_algorithm", "find_config", "load_model", "load_run_config", "load_weights",
           "read_model_zip", "set_policy_weights"]
