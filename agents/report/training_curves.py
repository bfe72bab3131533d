"""What training did, for the stress report: learning curves from TensorBoard, the selected checkpoint and why.

Why: a comparison of agents is only as good as their training. A reader of the stress report
should see, per agent, the training seed and budget, the curves (episode return, validation
objective, VaR breach rate, the Lagrange multiplier), and which checkpoint was kept — read from
the training run folder itself (``tensorboard/`` event files and ``metrics.yaml``), not re-run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.common.configuration import load_yaml
from simulator.common.errors import ConfigError

#: (panel title, TensorBoard tags tried in order, y label)
CURVES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Episode return (training)", ("trading/episode_return", "rollout/ep_rew_mean"), "return per episode"),
    ("Validation Sharpe ratio", ("eval/val_sharpe_ratio",), "annualised Sharpe"),
    ("VaR breach rate (training)", ("risk/breach_rate",), "share of steps"),
    ("Lagrange multiplier λ", ("constraint/lambda", "risk/lagrange_multiplier"), "λ"),
)


def run_folder_of(model_path: str | Path) -> Path:
    """The training run folder of a model path (the folder itself, or the folder holding the file)."""
    path = Path(model_path)
    return path if path.is_dir() else path.parent


def read_scalars(run_dir: str | Path) -> pd.DataFrame:
    """Every scalar in the run's TensorBoard event files: columns ``tag, step, value`` (empty when none)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows = []
    board = Path(run_dir) / "tensorboard"
    folders = sorted({p.parent for p in board.glob("**/events.out.tfevents.*")}) if board.is_dir() else []
    for folder in folders:
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            rows += [(tag, int(e.step), float(e.value)) for e in acc.Scalars(tag)]
    frame = pd.DataFrame(rows, columns=["tag", "step", "value"])
    return frame.drop_duplicates(["tag", "step"], keep="last").sort_values(["tag", "step"]).reset_index(drop=True)


def training_summary(run_dir: str | Path) -> dict[str, Any]:
    """Seed, budget, evaluations and the selected checkpoint of a training run (from its YAML files).

    The selection is the trainer's (``metrics.yaml: selection``): among the periodic evaluations
    that passed the eligibility rule (no stop-out, drawdown and time over the VaR limit within
    bounds), the highest validation objective is ``best_model.zip``; ``selection_why`` says which,
    or why none was eligible. Older runs without that record: the highest validation Sharpe.
    """
    run_dir = Path(run_dir)
    out: dict[str, Any] = {"run": run_dir.name, "seed": None, "total_timesteps": None, "evaluations": 0,
                           "best_step": None, "best_validation_sharpe": math.nan, "final_validation_sharpe": math.nan}
    try:
        config = load_yaml(run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else {}
        metrics = load_yaml(run_dir / "metrics.yaml") if (run_dir / "metrics.yaml").is_file() else {}
    except ConfigError:
        return out
    config, metrics = config or {}, metrics or {}
    out["seed"] = config.get("seed")
    out["total_timesteps"] = config.get("total_timesteps")
    history = [h for h in metrics.get("validation", []) or [] if isinstance(h, Mapping)]
    out["evaluations"] = len(history)
    scored = [(float(h.get("sharpe_ratio", math.nan)), int(h.get("timesteps", 0))) for h in history]
    finite = [(s, t) for s, t in scored if math.isfinite(s)]
    selection = metrics.get("selection") if isinstance(metrics.get("selection"), Mapping) else None
    if selection is not None:
        step = selection.get("selected_step")
        kept = next((s for s, t in scored if t == step), math.nan) if step is not None else math.nan
        out.update(best_step=step, best_validation_sharpe=kept, selection_why=str(selection.get("why", "")),
                   final_validation_sharpe=scored[-1][0] if scored else math.nan)
    elif finite:
        best, step = max(finite, key=lambda x: (x[0], -x[1]))
        out.update(best_step=step, best_validation_sharpe=best, final_validation_sharpe=scored[-1][0],
                   selection_why="highest validation Sharpe ratio")
    out["validation_history"] = pd.DataFrame(
        {"step": [t for _, t in scored], "value": [s for s, _ in scored]})
    return out


def constraint_summary(run_dir: str | Path) -> dict[str, Any]:
    """How a constrained PPO run met its per-episode cost limit (from ``metrics.yaml`` and ``config.yaml``).

    Training: λ's peak and final value, the episode cost of the first rollout and its mean over
    the last quarter of the rollouts, the share of rollouts over the limit (all, last quarter).
    Validation (deterministic, the whole span, every evaluation): stop-outs, the most time over
    the VaR limit, the final model's episode cost (mean cost per bar × episode bars), Sharpe.
    A run that is not constrained is one clear line.
    """
    run_dir = Path(run_dir)
    config, metrics = load_yaml(run_dir / "config.yaml"), load_yaml(run_dir / "metrics.yaml")
    history = (metrics or {}).get("lagrange_history") or []
    if not history:
        raise ConfigError(f"{run_dir}: no lagrange_history in metrics.yaml — not a finished constrained PPO run")
    limit = float(config["lagrange"]["cost_limit"])
    lam = np.array([float(h["multiplier"]) for h in history])
    cost = np.array([float(h["episode_cost"]) for h in history])
    last = cost[3 * len(cost) // 4:]
    val = [v for v in metrics.get("validation", []) if isinstance(v, Mapping)]
    final = val[-1] if val else {}
    return {"run": run_dir.name, "method": config["lagrange"].get("method", "plain"), "seed": config.get("seed"),
            "cost_limit": limit, "updates": len(history), "lambda_max": float(lam.max()), "lambda_final": float(lam[-1]),
            "lambda_path": [float(lam[min(i, len(lam) - 1)]) for i in (0, 9, 19, 29, 39, len(lam) - 1)],
            "train_cost_first": float(cost[0]), "train_cost_last_quarter": float(last.mean()),
            "rollouts_over_limit": float(np.mean(cost > limit)), "last_quarter_over_limit": float(np.mean(last > limit)),
            "val_stop_outs": int(sum(int(v.get("stop_outs", 0)) for v in val)),
            "val_max_time_over_limit": float(max((float(v.get("time_over_limit", 0.0)) for v in val), default=math.nan)),
            "val_final_episode_cost": float(final.get("episode_cost", math.nan)),
            "val_final_sharpe": float(final.get("sharpe_ratio", math.nan)),
            "eligible": f"{sum(bool(v.get('eligible', True)) for v in val)}/{len(val)}"}


def training_table(runs: Mapping[str, Path]) -> pd.DataFrame:
    """One row per agent: training run, seed, budget, evaluations, the kept checkpoint and its score."""
    rows = []
    for name, run in runs.items():
        s = training_summary(run)
        best = s["best_step"]
        total = s["total_timesteps"]
        rows.append({
            "agent": name, "training run": s["run"], "seed": "" if s["seed"] is None else str(s["seed"]),
            "timesteps": "" if total is None else f"{int(total):,}", "evaluations": str(s["evaluations"]),
            "kept checkpoint": ("none eligible: " + s.get("selection_why", "").removeprefix(
                "no evaluation was eligible: ")) if best is None else f"step {best:,} of {int(total or best):,}",
            "its validation Sharpe": _f(s["best_validation_sharpe"]),
            "final validation Sharpe": _f(s["final_validation_sharpe"]),
        })
    return pd.DataFrame(rows)


def plot_learning_curves(runs: Mapping[str, Path], path: str | Path) -> Path | None:
    """Learning curves of every agent, one panel per quantity present (None when nothing was logged)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = {}
    for name, run in runs.items():
        scalars = read_scalars(run)
        history = training_summary(run).get("validation_history")
        data[name] = (scalars, history)
    panels = []
    for title, tags, ylabel in CURVES:
        series = {}
        for name, (scalars, history) in data.items():
            tag = next((t for t in tags if not scalars.empty and (scalars["tag"] == t).any()), None)
            if tag is not None:
                part = scalars[scalars["tag"] == tag]
                series[name] = (part["step"].to_numpy(), part["value"].to_numpy())
            elif tags[0] == "eval/val_sharpe_ratio" and history is not None and len(history):
                series[name] = (history["step"].to_numpy(), history["value"].to_numpy())
        if series:
            panels.append((title, ylabel, series))
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels)), sharex=True, squeeze=False)
    styles = ("-", "--", "-.", ":")
    order = {name: i for i, name in enumerate(runs)}  # one colour and line style per agent in every panel
    for ax, (title, ylabel, series) in zip(axes[:, 0], panels, strict=True):
        for name, (x, y) in series.items():
            i = order[name]
            ax.plot(x, y, styles[i % len(styles)], color=f"C{i % 10}", marker="o" if len(x) < 15 else None, ms=3,
                    label=name)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[-1, 0].set_xlabel("timesteps (summed over parallel accounts)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _f(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.2f}".replace("-", "−")


__all__ = ["CURVES", "constraint_summary", "plot_learning_curves", "read_scalars", "run_folder_of", "training_summary", "training_table"]
