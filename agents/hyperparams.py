"""Training configuration: data, split, environment, PPO hyperparameters, Lagrangian, schedule.

Why one frozen tree: a run folder stores the resolved config and ``--resume`` rebuilds the
exact run from it. YAML files under ``agents/hyperparams/`` are read strictly (unknown keys
are errors naming the file and the key, see :func:`simulator.configuration.from_mapping`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from envs.config import EnvConfig
from simulator.configuration import check_finite, from_mapping, load_yaml, to_mapping

REPO_ROOT = Path(__file__).resolve().parents[1]
HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
DEFAULT_CONFIG = HYPERPARAMS_DIR / "ppo_default.yaml"
SEED_MAX = 2**32 - 1
DATA_SOURCES = ("sample", "synthetic", "planted_edge", "csv")


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Which market to train on and how it is split by date (train / validation / test).

    ``source``: ``sample`` (bundled EURUSD 2017), ``synthetic`` (the G10-style generator:
    ``synthetic_config`` names a generator YAML — relative paths from the repository, e.g.
    ``simulator/data/synthetic_g10.yaml`` — or, when unset, typical parameters for
    ``symbols``), ``planted_edge`` (synthetic with a learnable sizing edge), ``csv``
    (``csv_path`` with ``csv_preset``). ``n_bars`` and ``data_seed`` apply to the generated sources.
    """

    source: str = "sample"
    symbols: tuple[str, ...] = ("EURUSD",)
    n_bars: int = 20_000
    data_seed: int = 0
    synthetic_config: str | None = None
    csv_path: str | None = None
    csv_preset: str = "generic"
    train: float = 0.6
    validation: float = 0.2

    def __post_init__(self) -> None:
        check_finite(self, "data.")
        if self.source not in DATA_SOURCES:
            raise ValueError(f"data.source must be one of {DATA_SOURCES}, got {self.source!r}")
        if self.synthetic_config is not None and self.source != "synthetic":
            raise ValueError("data.synthetic_config applies to data.source 'synthetic' only")
        if self.source == "csv" and not self.csv_path:
            raise ValueError("data.source 'csv' needs data.csv_path")
        if not 0 <= self.data_seed <= SEED_MAX:
            raise ValueError(f"data.data_seed must be in [0, {SEED_MAX}], got {self.data_seed}")
        if self.n_bars < 1000:
            raise ValueError(f"data.n_bars must be >= 1000, got {self.n_bars}")
        if not (0 < self.train and 0 < self.validation and self.train + self.validation < 1):
            raise ValueError(f"need 0 < data.train, 0 < data.validation and their sum < 1 "
                             f"(got {self.train}, {self.validation})")


@dataclass(frozen=True, kw_only=True)
class PPOConfig:
    """stable-baselines3 PPO hyperparameters (``n_steps`` per environment).

    ``recurrent``: sb3-contrib's RecurrentPPO with an LSTM policy instead of an MLP.
    ``torch_threads``: 1 by default — on 2 cores two torch threads collapse under the
    environment's load (measured in ``scripts/bench_training.py``).
    """

    learning_rate: float = 3e-4
    n_steps: int = 128
    batch_size: int = 1024
    n_epochs: int = 5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    net_arch: tuple[int, ...] = (64, 64)
    log_std_init: float = -0.5
    recurrent: bool = False
    torch_threads: int = 1

    def __post_init__(self) -> None:
        check_finite(self, "ppo.")
        for name in ("learning_rate", "clip_range", "vf_coef", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ppo.{name} must be > 0, got {getattr(self, name)}")
        for name in ("n_steps", "batch_size", "n_epochs", "torch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"ppo.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.gamma <= 1 or not 0 < self.gae_lambda <= 1:
            raise ValueError(f"ppo.gamma and ppo.gae_lambda must be in (0, 1], got {self.gamma}, {self.gae_lambda}")
        if self.ent_coef < 0:
            raise ValueError(f"ppo.ent_coef must be >= 0, got {self.ent_coef}")
        if not self.net_arch or min(self.net_arch) < 1:
            raise ValueError(f"ppo.net_arch must list positive layer widths, got {list(self.net_arch)}")


@dataclass(frozen=True, kw_only=True)
class LagrangeConfig:
    """Constrained PPO: reward − λ·cost, λ updated after every rollout.

    λ ← clip(λ + ``multiplier_lr`` × (mean cost per step − ``cost_budget``), 0, ``max_multiplier``):
    it rises while the mean VaR-breach cost (``info["cost"]``, excess utilisation) exceeds its
    budget and falls otherwise. Needs ``env.var_mode: cost``.
    """

    enabled: bool = False
    cost_budget: float = 0.01
    multiplier_lr: float = 5.0
    initial_multiplier: float = 0.0
    max_multiplier: float = 1000.0

    def __post_init__(self) -> None:
        check_finite(self, "lagrange.")
        if self.cost_budget < 0 or self.multiplier_lr <= 0 or self.initial_multiplier < 0:
            raise ValueError("lagrange: need cost_budget >= 0, multiplier_lr > 0, initial_multiplier >= 0")
        if self.max_multiplier < self.initial_multiplier:
            raise ValueError("lagrange.max_multiplier must be >= initial_multiplier")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One training run: what ``scripts/train.py`` resolves and stores in the run folder.

    Timesteps count environment steps summed over the ``n_envs`` parallel accounts.
    ``eval_every`` / ``checkpoint_every`` are in timesteps; ``reward_normalisation``
    scales rewards by SB3's running return deviation (training only).
    """

    name: str = "ppo"
    seed: int = 0
    total_timesteps: int = 300_000
    n_envs: int = 32
    eval_every: int = 50_000
    checkpoint_every: int = 50_000
    reward_normalisation: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    lagrange: LagrangeConfig = field(default_factory=LagrangeConfig)

    def __post_init__(self) -> None:
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"name must be letters, digits, - or _ (it names the run folder), got {self.name!r}")
        if not 0 <= self.seed <= SEED_MAX:
            raise ValueError(f"seed must be in [0, {SEED_MAX}] (numpy and torch seeding), got {self.seed}")
        for key in ("total_timesteps", "n_envs", "eval_every", "checkpoint_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.lagrange.enabled and self.env.var_mode != "cost":
            raise ValueError("lagrange.enabled needs env.var_mode: cost (the multiplier prices info['cost'])")
        if self.env.episode_bars is None:
            raise ValueError("env.episode_bars must be set for training (random starts); evaluation uses the full span")

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        return from_mapping(cls, load_yaml(path), source=str(path))

    def to_dict(self) -> dict:
        return to_mapping(self)
