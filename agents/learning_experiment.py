"""Experiments that show learning (issue #12 item 7): PPO against the rules and its own ablation.

Why a library module: ``scripts/experiment_learning.py`` only parses arguments; the protocol
lives here so that tests can run it with tiny budgets and check what it computes from which span.

The protocol of :func:`planted_experiment` (item 7a), per seed: the planted-edge market drawn
with ``data_seed = seed``, split by date into train / validation / test; PPO trained on the
training span (its best checkpoint chosen on validation by the trainer's selection rule); the
*constant-mean-action ablation* — a policy that always plays the trained agent's mean
deterministic action over the **validation** span (:func:`mean_action`); then, once, at the end,
every policy over the untouched test span. Baselines run in the ``exposure`` action mode of the
same env (same costs, band, VaR limit, leverage cap — :func:`agents.baselines.baseline_env`), so each sizes
exactly as its rule says rather than through the agent's bounded residual multiplier.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.baselines import BASELINES, baseline_env, make_baseline
from agents.evaluation.metrics import bars_per_year
from agents.evaluation.rollout import EvaluationResult, evaluation_config, run_policies, run_policy
from agents.evaluation.statistics import paired_sharpe_difference, sharpe_ci
from agents.experiments import per_bar_returns
from agents.hyperparams import TrainConfig
from agents.policies import Policy
from envs.config import EnvConfig
from envs.data import EnvData
from simulator.common.errors import ModelFileError
from simulator.common.run_folder import RunFolder

#: The reference rule of item 7a and the residual agent's base rule.
REFERENCE = "vol_target"
#: Paired tests of item 7a: (policy A, policy B) for the Sharpe difference A − B on the same bars.
PAIRS: tuple[tuple[str, str], ...] = (("ppo", REFERENCE), ("ppo", "ablation"), (REFERENCE, "fixed_fraction"))
#: Significance level of "beats its ablation (paired test)".
ALPHA = 0.05


def aligned_returns(records: pd.DataFrame, n_bars: int) -> np.ndarray:
    """Per-bar returns padded with 0 to ``n_bars`` (a stopped-out account is flat afterwards), so that two
    policies run from the same first bar are compared bar by bar."""
    r = per_bar_returns(records)
    return np.concatenate([r, np.zeros(n_bars - r.size)]) if r.size < n_bars else r


class ConstantAction:
    """A policy that plays one fixed action every bar (the ablation of a trained agent).

    Why: an agent that has learned nothing state-dependent is matched by its mean action; beating
    it on the same bars (paired test) is what shows the agent uses the observation.
    """

    def __init__(self, action: np.ndarray, name: str = "ablation") -> None:
        self.action = np.asarray(action, dtype=np.float32).reshape(-1)
        self.name = name

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        n = np.asarray(observation).shape[0]
        return np.tile(self.action, (n, 1)), None


class _ActionRecorder:
    """Wraps a policy and keeps every action it returns (clipped to [-1, 1] as the env does)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.actions: list[np.ndarray] = []

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        action, state = self.policy.predict(observation, state=state, episode_start=episode_start,
                                            deterministic=deterministic)
        self.actions.append(np.clip(np.asarray(action, dtype=np.float64).reshape(observation.shape[0], -1),
                                    -1.0, 1.0))
        return action, state


def mean_action(policy: Policy, validation: EnvData, config: EnvConfig) -> np.ndarray:
    """Mean deterministic action (per pair, env action units) of ``policy`` over the span ``validation``.

    Pass the validation span only: the ablation's constant must not see the test span.
    """
    recorder = _ActionRecorder(policy)
    run_policy(recorder, validation, evaluation_config(config))
    if not recorder.actions:
        raise ValueError("the validation span has no decision bar — use longer data")
    return np.concatenate(recorder.actions).mean(axis=0)


def score_run(result: EvaluationResult, n_bars: int, per_year: float, rng: np.random.Generator
              ) -> tuple[dict[str, float], np.ndarray]:
    """One policy's row (Sharpe with a stationary-bootstrap 95% CI, return, drawdown, turnover and costs as
    multiples / fractions of initial equity) and its aligned per-bar returns."""
    s = result.summary.iloc[0]
    r = aligned_returns(result.records, n_bars)
    point, lo, hi = sharpe_ci(r, per_year, rng=rng)
    equity0 = float(s["initial_equity"])
    return {"sharpe": point, "sharpe_low": lo, "sharpe_high": hi, "total_return": float(s["total_return"]),
            "max_drawdown": float(s["max_drawdown"]), "turnover_x_equity": float(s["turnover"]) / equity0,
            "costs_of_equity": float(s["costs_paid"]) / equity0, "stop_outs": float(s["stop_outs"])}, r


def evaluate_span(policies: dict[str, tuple[Policy, EnvConfig]], data: EnvData, per_year: float,
                  rng: np.random.Generator) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Run each ``name: (policy, env config)`` deterministically over the whole span ``data``; rows and returns.

    Policies sharing one env config step as accounts of one batched core (:func:`run_policies`: each
    result is the one ``run_policy`` gives alone), so the rules cost one pass over the span.
    """
    groups: dict[int, tuple[EnvConfig, list[str]]] = {}
    for name, (_, config) in policies.items():
        groups.setdefault(id(config), (config, []))[1].append(name)
    results: dict[str, EvaluationResult] = {}
    for config, names in groups.values():
        runs = run_policies([policies[n][0] for n in names], data, evaluation_config(config), labels=names)
        results.update(zip(names, runs, strict=True))
    n_bars = max((int(r.records["step"].max()) + 1 for r in results.values() if len(r.records)), default=0)
    rows, returns = [], {}
    for name in policies:
        row, returns[name] = score_run(results[name], n_bars, per_year, rng)
        rows.append({"policy": name, **row})
    return rows, returns


def paired_rows(returns: dict[str, np.ndarray], per_year: float, rng: np.random.Generator) -> list[dict[str, Any]]:
    """The paired Sharpe differences of :data:`PAIRS` (A − B, 95% CI, two-sided p)."""
    rows = []
    for a, b in PAIRS:
        if a in returns and b in returns:
            d = paired_sharpe_difference(returns[a], returns[b], per_year, rng=rng)
            rows.append({"policy": f"{a} - {b}", "sharpe": d["diff"], "sharpe_low": d["low"],
                         "sharpe_high": d["high"], "p_value": d["p_value"]})
    return rows


@dataclass(frozen=True)
class ExperimentResult:
    """The run folder, the table (one row per seed × span × policy or pair) and the verdict line."""

    path: Path
    table: pd.DataFrame
    verdict: str
    passed: bool


def summary_counts(table: pd.DataFrame, span: str) -> dict[str, int]:
    """Seeds where PPO's Sharpe >= vol_target's, where PPO − ablation > 0, and where that is significant."""
    t = table[table.span == span]
    seeds = sorted(t.seed.unique())

    def value(seed: int, policy: str, column: str = "sharpe") -> float:
        hit = t[(t.seed == seed) & (t.policy == policy)]
        return float(hit[column].iloc[0]) if len(hit) else math.nan

    ge_ref = sum(value(s, "ppo") >= value(s, REFERENCE) for s in seeds)
    above = sum(value(s, "ppo - ablation") > 0 for s in seeds)
    significant = sum(value(s, "ppo - ablation") > 0 and value(s, "ppo - ablation", "p_value") < ALPHA
                      for s in seeds)
    return {"seeds": len(seeds), "ppo_ge_vol_target": ge_ref, "ppo_above_ablation": above,
            "ppo_beats_ablation": significant}


def verdict_line(counts: dict[str, int], span: str, need: int) -> tuple[str, bool]:
    """Item 7a's claim on ``span``: PPO >= vol_target on >= ``need`` seeds and beats its ablation (paired,
    p < 0.05) on >= ``need`` seeds."""
    n = counts["seeds"]
    ok = counts["ppo_ge_vol_target"] >= need and counts["ppo_beats_ablation"] >= need
    return (f"{span}: PPO >= {REFERENCE} Sharpe on {counts['ppo_ge_vol_target']} of {n} seeds; PPO beats its "
            f"constant-mean-action ablation (paired, p < {ALPHA:g}) on {counts['ppo_beats_ablation']} of {n} "
            f"(above it on {counts['ppo_above_ablation']}) — claim (>= {need} of {n} on both) "
            f"{'holds' if ok else 'does NOT hold'}."), ok


def _fmt(value: Any, spec: str) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else format(value, spec)


def report_markdown(table: pd.DataFrame, verdicts: Sequence[str], settings: str) -> str:
    """report.md: the verdict lines, the settings, and one table per span."""
    lines = ["# Learning experiment: PPO (residual on vol_target) on the planted regime market", "",
             *[f"- {v}" for v in verdicts], "", settings, "",
             "Sharpe annualised with a stationary-bootstrap 95% CI; `A - B` rows are paired Sharpe differences "
             "on the same bars with a two-sided bootstrap p. Turnover and costs: multiples / fractions of "
             "initial equity. The test span is run once, after training and after the ablation's constant "
             "was computed on validation.", ""]
    if "model" in table:
        models = table.dropna(subset=["model"]).drop_duplicates("seed")
        lines += ["PPO model scored: " + "; ".join(f"seed {r.seed}: {r.model}" for r in models.itertuples()), ""]
    for span in table.span.unique():
        lines += [f"## {span}", "", "| seed | policy | Sharpe | 95% CI | return | max DD | turnover (x eq.) "
                  "| costs | p (paired) |", "|---|---|---|---|---|---|---|---|---|"]
        for r in table[table.span == span].to_dict("records"):
            lines.append(f"| {r['seed']} | {r['policy']} | {r['sharpe']:.2f} | [{_fmt(r['sharpe_low'], '.2f')}, "
                         f"{_fmt(r['sharpe_high'], '.2f')}] | {_fmt(r.get('total_return'), '+.1%')} | "
                         f"{_fmt(r.get('max_drawdown'), '.1%')} | {_fmt(r.get('turnover_x_equity'), ',.0f')} | "
                         f"{_fmt(r.get('costs_of_equity'), '.1%')} | {_fmt(r.get('p_value'), '.3f')} |")
        lines.append("")
    return "\n".join(lines)


def planted_experiment(base: TrainConfig, seeds: Sequence[int], *, out: str | Path, timesteps: int | None = None,
                       test: bool = True, need: int = 4, argv: list[str] | None = None,
                       log: Callable[[str], None] = print) -> ExperimentResult:
    """Item 7a: per seed train PPO, compute the ablation on validation, score every policy on validation and
    (``test``) once on the test span; write results.csv and report.md to a fresh run folder under ``out``.

    ``test=False`` is the tuning mode: the test span is never run (choose settings on validation only).
    ``need``: seeds out of ``len(seeds)`` the claim needs (the issue: 4 of 5).
    """
    from agents.training import load_market, load_trained_policy, resolve_model, split_data, train

    if not seeds:
        raise ValueError("give at least one seed")
    spans = ("validation", "test") if test else ("validation",)
    rows: list[dict[str, Any]] = []
    with RunFolder(out, "experiment-learning", config={"training": base.to_dict(), "seeds": list(seeds),
                                                       "test": test},
                   argv=sys.argv if argv is None else argv) as folder:
        for seed in seeds:
            cfg = replace(base, seed=seed, name=f"learning-seed{seed}",
                          total_timesteps=timesteps or base.total_timesteps, data=replace(base.data, data_seed=seed))
            log(f"seed {seed}: training {cfg.total_timesteps:,} steps")
            run_dir = train(cfg, runs_root=folder.path / "training", argv=[], progress=False,
                            log=lambda msg: log(f"  {msg}"))
            data = split_data(load_market(cfg.data, account_currency=cfg.env.account.currency), cfg.env, cfg.data)
            try:
                model_path, selected = resolve_model(run_dir)[0], "best eligible on validation"
            except ModelFileError:  # every checkpoint broke the selection rule: score the final model, say so
                model_path, selected = run_dir / "model.zip", "final (no checkpoint eligible on validation)"
                log("  no checkpoint eligible on validation: the final model is scored")
            ppo = load_trained_policy(model_path)
            constant = mean_action(ppo, data.validation, cfg.env)
            log(f"  ablation: mean validation action {np.array2string(constant, precision=4)}")
            rule_env = baseline_env(cfg.env)
            policies: dict[str, tuple[Policy, EnvConfig]] = {"ppo": (ppo, cfg.env),
                                                             "ablation": (ConstantAction(constant), cfg.env)}
            policies.update({name: (make_baseline(name), rule_env) for name in BASELINES})
            per_year = bars_per_year(data.full.index)
            for span in spans:
                rng = np.random.default_rng([seed, spans.index(span)])
                span_rows, returns = evaluate_span(policies, data.span(span), per_year, rng)
                span_rows += paired_rows(returns, per_year, rng)
                for r in span_rows:
                    rows.append({"seed": seed, "span": span, **r,
                                 **({"ablation_action": float(constant.mean())} if r["policy"] == "ablation" else {}),
                                 **({"model": selected} if r["policy"] == "ppo" else {})})
                by = {r["policy"]: r for r in span_rows}
                log(f"  {span}: Sharpe ppo {by['ppo']['sharpe']:+.2f}, {REFERENCE} {by[REFERENCE]['sharpe']:+.2f}, "
                    f"ablation {by['ablation']['sharpe']:+.2f}, fixed_fraction {by['fixed_fraction']['sharpe']:+.2f}; "
                    f"ppo - ablation {by['ppo - ablation']['sharpe']:+.2f} (p {by['ppo - ablation']['p_value']:.3f})")
        table = pd.DataFrame(rows)
        verdicts, passed = [], True
        for span in spans:
            line, ok = verdict_line(summary_counts(table, span), span, min(need, len(seeds)))
            verdicts.append(line)
            if span == spans[-1]:
                passed = ok
        pe = base.data.planted_edge or {}
        settings = (f"Settings: {len(seeds)} seeds {list(seeds)}, {cfg.total_timesteps:,} PPO steps each; market "
                    f"{dict(pe)}; env action_mode {base.env.action_mode} on {base.env.base_rule}, size_range "
                    f"{base.env.size_range:g}, signal_lookback {base.env.signal_lookback}, rebalance_band "
                    f"{base.env.rebalance_band:g}, reward {base.env.reward}.")
        folder.write_csv("results.csv", table, index=False)
        folder.write_text("report.md", report_markdown(table, verdicts, settings))
    for v in verdicts:
        log(v)
    log(f"run folder: {folder.path}")
    return ExperimentResult(path=folder.path, table=table, verdict=verdicts[-1], passed=passed)
