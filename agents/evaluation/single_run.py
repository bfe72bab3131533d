"""One policy on one span, as a run folder: what ``scripts/evaluate.py`` does, as a library call.

Why here and not in the script: the script only parses its arguments and calls :func:`evaluate_policy`,
which returns the finished folder (``evaluate-<policy>-<UTC time>/``: steps.csv, summary.csv,
summary.yaml) and the summary; tests and notebooks call it the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.baselines import baseline_env, make_baseline
from agents.evaluation.rollout import SeedEnsemble, evaluation_config, run_policy
from agents.hyperparams import DEFAULT_CONFIG, TrainConfig
from agents.training import load_market, load_trained_policy, resolve_model, split_data
from simulator.common.configuration import from_mapping, load_yaml
from simulator.common.errors import ConfigError
from simulator.common.run_folder import RunFolder

#: The summary figures :func:`evaluation_lines` shows, in order.
SHOWN = ("total_return", "annualised_volatility", "sharpe_ratio", "sortino_ratio", "max_drawdown", "cvar",
         "var_exceptions", "var_exception_rate", "breach_rate", "time_over_limit", "costs_paid",
         "turnover_x_equity", "stop_outs")


@dataclass(frozen=True)
class Evaluation:
    """A finished evaluation: its run folder, the policy's label, the span and its summary (plain values)."""

    path: Path
    label: str
    split: str
    dates: Any
    summary: dict[str, Any]


def evaluate_policy(*, models: Sequence[str | Path] = (), baseline: str | None = None,
                    params: Mapping[str, Any] | None = None, config: str | Path | None = None, split: str = "test",
                    runs_root: str | Path, adjust: Callable[[TrainConfig], TrainConfig] | None = None,
                    argv: Sequence[str] | None = None) -> Evaluation:
    """Run a trained model (several: a seed ensemble, the median of their actions) or a baseline over ``split``.

    The market and env come from ``config``, else the first model's run config.yaml, else
    ``agents/hyperparams/ppo_default.yaml``; ``adjust`` edits it (the command line's data flags).
    ``params``: the baseline's parameters. Returns the finished ``runs_root/evaluate-<policy>-<time>/``.
    """
    if bool(models) == (baseline is not None):
        raise ConfigError("give --model RUN_DIR or --baseline NAME (see --list-baselines)")
    params = dict(params or {})
    if models:
        resolved_models = [resolve_model(m) for m in models]
        run_dir = resolved_models[0][1]
        config_path = Path(config) if config is not None else run_dir / "config.yaml"
        if not config_path.is_file():
            raise FileNotFoundError(f"{config_path}: no training config next to the model — pass --config")
        members = [load_trained_policy(path, name="ppo") for path, _ in resolved_models]
        if len(members) == 1:
            policy, label = members[0], f"ppo:{run_dir.name}"
        else:
            envs = {str(load_yaml(d / "config.yaml").get("env")) for _, d in resolved_models}
            if len(envs) > 1:
                raise ConfigError("the --model runs were trained in different env configs: a seed ensemble "
                                  "needs one (train them with train.py --seeds)")
            policy = SeedEnsemble(members)
            label = f"ensemble:{len(members)} seeds"
    else:
        config_path = Path(config) if config is not None else DEFAULT_CONFIG
        policy = make_baseline(baseline, **params)
        label = baseline
    training = from_mapping(TrainConfig, load_yaml(config_path), source=str(config_path))
    if adjust is not None:
        training = adjust(training)
    data = split_data(load_market(training.data, account_currency=training.env.account.currency), training.env,
                      training.data)
    env = training.env if models else baseline_env(training.env)  # a rule acts in the exposure twin
    result = run_policy(policy, data.span(split), evaluation_config(env), label=label)
    resolved = {"policy": label, "split": split, "dates": data.dates()[split], "training_config": training.to_dict(),
                "baseline_params": params, "data_notes": [*data.market.notes, *data.full.notes]}
    with RunFolder(runs_root, f"evaluate-{label.split(':')[0]}", config=resolved,
                   argv=list(argv) if argv is not None else None) as folder:
        folder.write_csv("steps.csv", result.records, index=False)
        folder.write_csv("summary.csv", result.summary, index=False)
        summary = {k: (v.item() if hasattr(v, "item") else v) for k, v in result.summary.iloc[0].to_dict().items()}
        folder.write_yaml("summary.yaml", summary)
    return Evaluation(path=folder.final_path, label=label, split=split, dates=data.dates()[split], summary=summary)


def evaluation_lines(evaluation: Evaluation) -> list[str]:
    """The evaluation as the script prints it: the span, then one line per shown figure."""
    lines = [f"{evaluation.label} on the {evaluation.split} split ({evaluation.dates}):"]
    for key in SHOWN:
        if key in evaluation.summary:
            value = evaluation.summary[key]
            lines.append(f"  {key:16s} {value:.4f}" if isinstance(value, float) else f"  {key:16s} {value}")
    return lines


__all__ = ["SHOWN", "Evaluation", "evaluate_policy", "evaluation_lines"]
