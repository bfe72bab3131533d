"""Training configuration: data, split, environment, PPO hyperparameters, Lagrangian, schedule.

Why one frozen tree: a run folder stores the resolved config and ``--resume`` rebuilds the
exact run from it. YAML files under ``agents/hyperparams/`` are read strictly (unknown keys
are errors naming the file and the key, see :func:`simulator.common.configuration.from_mapping`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path

from agents.lagrangian import LAGRANGE_METHODS, PIDConfig
from envs.config import EnvConfig
from simulator.common.configuration import check_finite, from_mapping, load_yaml, to_mapping
from simulator.common.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
DEFAULT_CONFIG = HYPERPARAMS_DIR / "ppo_default.yaml"
SEED_MAX = 2**32 - 1
DATA_SOURCES = ("sample", "synthetic", "planted_edge", "csv", "ecb")


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Which market to train on and how it is split by date (train / validation / test).

    ``source``: ``sample`` (bundled EURUSD 2017 hourly), ``ecb`` (ECB daily reference rates
    1999 onward for ``symbols``, see :mod:`simulator.data.ecb`), ``csv`` (``csv_path`` with
    ``csv_preset``: one file, or a mapping symbol → file, one per pair), ``synthetic`` (the
    G10-style generator: ``synthetic_config`` names a generator YAML — relative paths from the
    repository, e.g. ``simulator/data/synthetic_g10.yaml`` — or, when unset, typical parameters
    for ``symbols``), ``planted_edge`` (synthetic with a learnable sizing edge). ``n_bars`` and
    ``data_seed`` apply to the generated sources.

    The split: ``train_end`` and ``validation_end`` (dates, inclusive) when given, else the
    fractions ``train`` and ``validation`` of the bars; the test span is the rest.
    """

    source: str = "sample"
    """Market data source: sample, ecb, csv, synthetic or planted_edge."""
    symbols: tuple[str, ...] = ("EURUSD",)
    """Pairs to load (ecb, csv, synthetic)."""
    start: str | None = None
    """First date of the data to use (inclusive); None: from the source's first bar."""
    end: str | None = None
    """Last date of the data to use (inclusive); None: to the source's last bar."""
    n_bars: int = 20_000
    """Bars to generate (synthetic, planted_edge)."""
    data_seed: int = 0
    """Seed of the generated sources."""
    synthetic_config: str | None = None
    """Generator YAML for source synthetic (relative to the repository)."""
    planted_edge: dict[str, float | int | str] | None = None
    """Settings of the planted-edge market (simulator.synthetic.planted_edge.PlantedEdgeConfig keys; None: its defaults)."""
    csv_path: str | dict[str, str] | None = None
    """CSV file (relative to the repository or absolute), or a mapping symbol → file."""
    csv_preset: str = "generic"
    """CSV layout preset: generic, close_only, wide, histdata, dukascopy, metatrader4, metatrader5."""
    csv_columns: dict[str, str | int] | None = None
    """Column mapping replacing the preset's (field → header name or 0-based position)."""
    max_fill: int = 5
    """Longest gap of missing closes carried forward (close-only data: ecb, close_only, wide), bars."""
    train: float = 0.6
    """Share of bars for training when no train_end date is given."""
    validation: float = 0.2
    """Share of bars for validation when no validation_end date is given."""
    train_end: str | None = None
    """Last date of the training span (inclusive), e.g. 2013-12-31."""
    validation_end: str | None = None
    """Last date of the validation span (inclusive), e.g. 2017-12-31; the test span follows."""

    def planted_edge_config(self):
        """The :class:`~simulator.synthetic.planted_edge.PlantedEdgeConfig` of ``planted_edge`` (strict: unknown keys fail)."""
        from simulator.synthetic.planted_edge import PlantedEdgeConfig

        return from_mapping(PlantedEdgeConfig, dict(self.planted_edge or {}), source="data.planted_edge")

    def __post_init__(self) -> None:
        check_finite(self, "data.")
        if self.source not in DATA_SOURCES:
            raise ValueError(f"data.source must be one of {DATA_SOURCES}, got {self.source!r}")
        if self.synthetic_config is not None and self.source != "synthetic":
            raise ValueError("data.synthetic_config applies to data.source 'synthetic' only")
        if self.planted_edge is not None:
            if self.source != "planted_edge":
                raise ValueError("data.planted_edge applies to data.source 'planted_edge' only")
            self.planted_edge_config()  # unknown keys and bad values: one line naming the key
        if self.source == "csv" and not self.csv_path:
            raise ValueError("data.source 'csv' needs data.csv_path")
        if self.csv_path is not None and not (
                (isinstance(self.csv_path, str) and self.csv_path)
                or (isinstance(self.csv_path, dict) and self.csv_path
                    and all(isinstance(k, str) and isinstance(v, str) and v for k, v in self.csv_path.items()))):
            raise ValueError(f"data.csv_path must be a file path or a mapping symbol -> file, got {self.csv_path!r}")
        if isinstance(self.csv_path, dict):
            from simulator.data.pairs import normalise_symbol

            named = {normalise_symbol(k) for k in self.csv_path}
            wanted = {normalise_symbol(s) for s in self.symbols}
            if named != wanted:
                raise ValueError(f"data.csv_path names files for {sorted(named)} but data.symbols is "
                                 f"{sorted(wanted)} — give one file per symbol")
        if self.csv_columns is not None and not isinstance(self.csv_columns, dict):
            raise ValueError(f"data.csv_columns must be a mapping field -> column, got {self.csv_columns!r}")
        if not self.symbols:
            raise ValueError("data.symbols must name at least one pair")
        if self.source == "sample" and tuple(self.symbols) != ("EURUSD",):
            raise ValueError(f"data.symbols {list(self.symbols)}: the bundled sample holds EURUSD only — use "
                             "data.source ecb, csv or synthetic for other pairs")
        if not 0 <= self.data_seed <= SEED_MAX:
            raise ValueError(f"data.data_seed must be in [0, {SEED_MAX}], got {self.data_seed}")
        if self.n_bars < 1000:
            raise ValueError(f"data.n_bars must be >= 1000, got {self.n_bars}")
        if self.max_fill < 0:
            raise ValueError(f"data.max_fill must be >= 0, got {self.max_fill}")
        if (self.train_end is None) != (self.validation_end is None):
            raise ValueError("give both data.train_end and data.validation_end (dates), or neither (fractions)")
        if not (0 < self.train and 0 < self.validation and self.train + self.validation < 1):
            raise ValueError(f"need 0 < data.train, 0 < data.validation and their sum < 1 "
                             f"(got {self.train}, {self.validation})")
        for key in ("start", "end", "train_end", "validation_end"):
            value = getattr(self, key)
            if value is not None:
                import pandas as pd

                try:
                    ok = not pd.isna(pd.Timestamp(value))
                except (ValueError, TypeError):
                    ok = False
                if not ok:
                    raise ValueError(f"data.{key} {value!r} is not a date — write YYYY-MM-DD")


@dataclass(frozen=True, kw_only=True)
class PPOConfig:
    """stable-baselines3 PPO hyperparameters (``n_steps`` per environment).

    ``recurrent``: sb3-contrib's RecurrentPPO with an LSTM policy instead of an MLP.
    ``torch_threads``: 1 by default — on 2 cores two torch threads collapse under the
    environment's load (measured in ``scripts/bench_training.py``).
    """

    learning_rate: float = 3e-4
    """Adam step size."""
    n_steps: int = 128
    """Steps per environment per rollout (a rollout is n_steps × n_envs transitions)."""
    batch_size: int = 1024
    """Minibatch size, transitions."""
    n_epochs: int = 5
    """Passes over each rollout."""
    gamma: float = 0.99
    """Discount factor per step."""
    gae_lambda: float = 0.95
    """GAE λ."""
    clip_range: float = 0.2
    """PPO clipping of the probability ratio."""
    ent_coef: float = 0.0
    """Entropy bonus weight in the loss."""
    vf_coef: float = 0.5
    """Value-loss weight in the loss."""
    max_grad_norm: float = 0.5
    """Gradient clipping, L2 norm."""
    target_kl: float | None = None
    """Stop an update early beyond this approximate KL divergence (None: never)."""
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy and value networks."""
    log_std_init: float = -0.5
    """Initial log standard deviation of the Gaussian policy (in action units, actions in [-1, 1])."""
    recurrent: bool = False
    """sb3-contrib RecurrentPPO with an LSTM policy instead of an MLP."""
    torch_threads: int = 1
    """torch CPU threads (1: see the class docstring)."""

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
    """Constrained PPO (:class:`agents.cost_ppo.CostPPO`): a cost critic, and λ on the cost advantage.

    The budget is stated per episode, as safe-RL libraries do (safety-gymnasium, OmniSafe): the
    episode cost is ``info["cost"]`` — the VaR utilisation above 1 on a bar, 0 within the limit —
    summed over an episode's bars, and ``cost_limit`` is in that unit (utilisation excess ×
    bars): 5 over a 512-bar episode allows on average 0.01 per bar, e.g. 10 bars at 150% of the
    limit. Each rollout's episode cost is its mean cost per step × ``env.episode_bars`` (the cost
    of a full-length episode at that rate: a stop-out that ends an episode early does not lower it).

    After every rollout λ is updated from that episode cost (``method``: ``plain`` projected
    ascent with ``multiplier_lr``, or ``pid``, :class:`~agents.lagrangian.PIDConfig`), and the
    policy maximises ``(A_r − λ·A_c) / (1 + λ)`` (``sum_norm``), A_c from a separate cost critic
    trained on cost returns. Needs ``env.var_mode: cost``.
    """

    enabled: bool = False
    """Train constrained PPO (needs env.var_mode: cost)."""
    method: str = "pid"
    """How λ is updated after each rollout: plain (projected gradient ascent) or pid (PID Lagrangian)."""
    cost_limit: float = 5.0
    """Allowed cost per episode: VaR utilisation above 1 summed over the episode's bars (> 0)."""
    multiplier_lr: float = 0.035
    """plain: step size of λ per unit of episode cost above the limit (OmniSafe PPOLag's lambda_lr)."""
    initial_multiplier: float = 0.001
    """λ at the start of training (OmniSafe's lagrangian_multiplier_init)."""
    max_multiplier: float = 100.0
    """Upper bound of λ (OmniSafe's penalty_max)."""
    sum_norm: bool = True
    """Divide the combined advantage by 1 + λ (its scale does not grow with λ)."""
    diff_norm: bool = False
    """Use (1 − λ)·A_r − λ·A_c with λ kept in [0, 1] instead (overrides sum_norm)."""
    pid: PIDConfig = field(default_factory=PIDConfig)
    """PID gains and filters (method pid)."""

    def __post_init__(self) -> None:
        check_finite(self, "lagrange.")
        if self.method not in LAGRANGE_METHODS:
            raise ValueError(f"lagrange.method must be one of {LAGRANGE_METHODS}, got {self.method!r}")
        if not self.cost_limit > 0:
            raise ValueError(f"lagrange.cost_limit must be > 0 (cost per episode), got {self.cost_limit}")
        if not self.multiplier_lr > 0:
            raise ValueError(f"lagrange.multiplier_lr must be > 0, got {self.multiplier_lr}")
        if self.initial_multiplier < 0:
            raise ValueError(f"lagrange.initial_multiplier must be >= 0, got {self.initial_multiplier}")
        if self.max_multiplier < self.initial_multiplier:
            raise ValueError(f"lagrange.max_multiplier must be >= initial_multiplier ({self.initial_multiplier}), "
                             f"got {self.max_multiplier}")


SELECTION_OBJECTIVES = ("sharpe_ratio", "total_return", "sortino_ratio")


@dataclass(frozen=True, kw_only=True)
class SelectionConfig:
    """Which validation checkpoint becomes ``best_model.zip``: never one that is ruined or breaks a limit.

    A checkpoint is eligible when, on the validation span, it is never stopped out, its worst
    drawdown is at most ``max_drawdown``, it spends at most ``max_time_over_limit`` of the bars
    over the VaR limit, and (constrained PPO) its mean cost per bar is within the episode cost
    limit spread over an episode (``lagrange.cost_limit / env.episode_bars``). Among the eligible ones the highest ``objective`` wins; when none is
    eligible the run has no best model and says why.
    """

    objective: str = "sharpe_ratio"
    """Validation figure that ranks eligible checkpoints: sharpe_ratio, total_return or sortino_ratio."""
    max_drawdown: float = 0.25
    """Worst validation drawdown (fraction of equity) an eligible checkpoint may have."""
    max_time_over_limit: float = 0.05
    """Share of validation bars an eligible checkpoint may spend over its VaR limit."""

    def __post_init__(self) -> None:
        check_finite(self, "selection.")
        if self.objective not in SELECTION_OBJECTIVES:
            raise ValueError(f"selection.objective must be one of {SELECTION_OBJECTIVES}, got {self.objective!r}")
        if not 0 < self.max_drawdown <= 1:
            raise ValueError(f"selection.max_drawdown must be in (0, 1], got {self.max_drawdown}")
        if not 0 <= self.max_time_over_limit <= 1:
            raise ValueError(f"selection.max_time_over_limit must be in [0, 1], got {self.max_time_over_limit}")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One training run: what ``scripts/train.py`` resolves and stores in the run folder.

    Timesteps count environment steps summed over the ``n_envs`` parallel accounts.
    ``eval_every`` / ``checkpoint_every`` are in timesteps; ``reward_normalisation``
    scales rewards by SB3's running return deviation (training only).
    """

    name: str = "ppo"
    """Run name (the run folder is runs/train-<name>-<UTC time>)."""
    seed: int = 0
    """Seed of torch, numpy and the environments' generators."""
    total_timesteps: int = 300_000
    """Environment steps to train, summed over the parallel accounts."""
    n_envs: int = 32
    """Parallel accounts stepped by one batched core."""
    eval_every: int = 50_000
    """Timesteps between validation runs (candidates for best_model.zip)."""
    checkpoint_every: int = 50_000
    """Timesteps between complete checkpoints (for --resume)."""
    reward_normalisation: bool = True
    """Scale rewards by SB3's running return deviation (training only)."""
    data: DataConfig = field(default_factory=DataConfig)
    """The market and its date split."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """Observations, actions, VaR limit, reward, costs."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO hyperparameters."""
    lagrange: LagrangeConfig = field(default_factory=LagrangeConfig)
    """Constrained PPO (Lagrangian) settings."""
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    """Which validation checkpoint becomes best_model.zip."""

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
        if self.lagrange.enabled and self.ppo.recurrent:
            raise ValueError("lagrange.enabled: constrained PPO has an MLP policy — set ppo.recurrent: false")
        if self.env.episode_bars is None:
            raise ValueError("env.episode_bars must be set for training (random starts); evaluation uses the full span")

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        return from_mapping(cls, load_yaml(path), source=str(path))

    def to_dict(self) -> dict:
        return to_mapping(self)


# -- command-line overrides of the data section ------------------------------------------------
def add_data_arguments(parser: argparse.ArgumentParser, *, split: bool = True) -> None:
    """``--source --symbols --start --end --csv --preset`` (and the split dates) over a config's data section."""
    group = parser.add_argument_group("data (override the config's data section)")
    group.add_argument("--source", choices=DATA_SOURCES, help="market data source")
    group.add_argument("--symbols", nargs="+", metavar="PAIR", help="pairs, e.g. EURUSD USDJPY GBPUSD")
    group.add_argument("--start", help="first date of the data, YYYY-MM-DD")
    group.add_argument("--end", help="last date of the data (inclusive), YYYY-MM-DD")
    group.add_argument("--csv", nargs="+", metavar="FILE", help="CSV file, or one file per --symbols entry")
    group.add_argument("--preset", help="CSV layout preset (generic, close_only, wide, histdata, ...)")
    if split:
        group.add_argument("--train-end", help="last date of the training span (inclusive), YYYY-MM-DD")
        group.add_argument("--validation-end", help="last date of the validation span (inclusive); test follows")


def with_data_arguments(config: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """``config`` with the data flags of :func:`add_data_arguments` applied (validated like the YAML)."""
    data = to_mapping(config.data)
    given = {key: getattr(args, key, None) for key in ("source", "symbols", "start", "end", "train_end",
                                                       "validation_end")}
    data.update({k: v for k, v in given.items() if v is not None})
    if getattr(args, "csv", None):
        symbols = data["symbols"]
        if len(args.csv) > 1:
            if len(args.csv) != len(symbols):
                raise ConfigError(f"command line: {len(args.csv)} --csv files need as many --symbols "
                                  f"(got {len(symbols)})")
            data["csv_path"] = dict(zip(symbols, args.csv))
        else:
            data["csv_path"] = args.csv[0]
        if args.source is None:
            data["source"] = "csv"
    if getattr(args, "preset", None):
        data["csv_preset"] = args.preset
    if data["source"] != "synthetic":
        data["synthetic_config"] = None
    if data["source"] != "csv" and given["source"] is not None:
        data["csv_path"] = None
    return replace(config, data=from_mapping(DataConfig, data, source="command line", path="data"))
