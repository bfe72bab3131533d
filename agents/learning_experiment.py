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
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.baselines import BASELINES, VolTarget, baseline_env, make_baseline
from agents.evaluation.metrics import bars_per_year
from agents.evaluation.rollout import EvaluationResult, evaluation_config, run_policies, run_policy
from agents.evaluation.statistics import bootstrap_ci, paired_sharpe_difference, sharpe_ci
from agents.experiments import per_bar_returns
from agents.hyperparams import TrainConfig
from agents.policies import AccountView, Policy
from envs.config import EnvConfig
from envs.data import EnvData
from forecasters.backtests import kupiec_pof
from simulator.common.errors import ModelFileError
from simulator.common.run_folder import RunFolder, atomic_write_bytes

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
    # Bars that carried a position: the observations of the VaR backtest (a flat bar has no VaR to exceed).
    var_obs = int((result.records["var"].to_numpy() > 0).sum()) if "var" in result.records else 0
    return {"sharpe": point, "sharpe_low": lo, "sharpe_high": hi, "total_return": float(s["total_return"]),
            "max_drawdown": float(s["max_drawdown"]), "turnover_x_equity": float(s["turnover"]) / equity0,
            "costs_of_equity": float(s["costs_paid"]) / equity0, "stop_outs": float(s["stop_outs"]),
            "time_over_limit": float(s["time_over_limit"]), "var_exceptions": float(s["var_exceptions"]),
            "var_obs": float(var_obs)}, r


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
    for name, (_, config) in policies.items():
        row, returns[name] = score_run(results[name], n_bars, per_year, rng)
        nominal = 1.0 - evaluation_config(config).var_alpha
        rows.append({"policy": name, **row, "var_nominal": nominal * row["var_obs"],
                     "kupiec_p": kupiec_p(row["var_exceptions"], row["var_obs"], nominal)})
    return rows, returns


def kupiec_p(exceptions: float, observations: float, nominal_rate: float) -> float:
    """Kupiec's proportion-of-failures p-value (:func:`forecasters.backtests.kupiec_pof`); NaN without
    an observation (a policy that never held a position has no VaR to backtest)."""
    if not (math.isfinite(exceptions) and math.isfinite(observations)) or observations <= 0:
        return math.nan
    return float(kupiec_pof(int(exceptions), int(observations), nominal_rate).pvalue)


def paired_rows(returns: dict[str, np.ndarray], per_year: float, rng: np.random.Generator,
                pairs: Sequence[tuple[str, str]] = PAIRS) -> list[dict[str, Any]]:
    """The paired Sharpe differences of ``pairs`` (A − B, 95% CI, two-sided p; default :data:`PAIRS`)."""
    rows = []
    for a, b in pairs:
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

    value = partial(_seed_value, t)
    ge_ref = sum(value(s, "ppo") >= value(s, REFERENCE) for s in seeds)
    above = sum(value(s, "ppo - ablation") > 0 for s in seeds)
    significant = sum(value(s, "ppo - ablation") > 0 and value(s, "ppo - ablation", "p_value") < ALPHA
                      for s in seeds)
    return {"seeds": len(seeds), "ppo_ge_vol_target": ge_ref, "ppo_above_ablation": above,
            "ppo_beats_ablation": significant}


def _seed_value(table: pd.DataFrame, seed: int, policy: str, column: str = "sharpe") -> float:
    """``column`` of ``policy``'s row for ``seed`` in ``table`` (NaN when there is none)."""
    hit = table[(table.seed == seed) & (table.policy == policy)]
    return float(hit[column].iloc[0]) if len(hit) else math.nan


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



def _write_tables(folder: RunFolder, table: pd.DataFrame, report: str) -> None:
    """An experiment's two outputs: every row (results.csv) and the Markdown report."""
    folder.write_csv("results.csv", table, index=False)
    folder.write_text("report.md", report)


def _log_verdicts(verdicts: Sequence[str], folder: RunFolder, log: Callable[[str], None]) -> None:
    for v in verdicts:
        log(v)
    log(f"run folder: {folder.path}")

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
        _write_tables(folder, table, report_markdown(table, verdicts, settings))
    _log_verdicts(verdicts, folder, log)
    return ExperimentResult(path=folder.path, table=table, verdict=verdicts[-1], passed=passed)


# ------------------------------------------------------------- item 7a's ceiling: a regime oracle

#: The oracle's multipliers of vol_target (calm, turbulent): the residual agent's own range [1/4, 4]
#: bent fully towards the planted edge, and the edge's ideal (all in when calm, flat when turbulent).
ORACLE_MULTIPLIERS: tuple[tuple[float, float], ...] = ((2.0, 0.25), (4.0, 0.0))


class RegimeScaledVolTarget(VolTarget):
    """vol_target × a multiplier per bar: the diagnostic *oracle* of item 7a.

    Why: item 7a asks PPO to size by the hidden regime. A rule that is told the regime of the
    decision bar (``multiplier[t]``, from the generator's hidden state; nothing after bar t) shows
    what sizing by the regime can earn at all on the same bars, costs and band, so a PPO result
    can be read against that ceiling. Not a baseline: no agent or rule can observe the regime.
    """

    prepared = {**VolTarget.prepared, "multiplier": "time"}

    def __init__(self, by_timestamp: pd.Series, config: Any = None) -> None:
        super().__init__(config)
        self._by_timestamp = by_timestamp

    def _prepare(self, view: AccountView) -> None:
        super()._prepare(view)
        at = pd.Index(_ns(self._by_timestamp.index)).get_indexer(_ns(view.data.index))
        if (at < 0).any():
            raise ValueError("the oracle's multipliers do not cover the env data's bars")
        self.multiplier = self._by_timestamp.to_numpy(dtype=np.float64)[at]

    def target_fraction(self, view: AccountView) -> np.ndarray:
        self._sync(view)
        f = super().target_fraction(view)
        return np.clip(f * self.multiplier[view.state.t][:, None], -1.0, 1.0)


def _ns(index: Any) -> np.ndarray:
    """UTC nanoseconds of a DatetimeIndex or of an env data's int64 clock."""
    return index.asi8 if isinstance(index, pd.DatetimeIndex) else np.asarray(index, dtype=np.int64)


def regime_oracle_experiment(base: TrainConfig, seeds: Sequence[int], *, out: str | Path,
                             multipliers: Sequence[tuple[float, float]] = ORACLE_MULTIPLIERS,
                             n_bars: int | None = None, argv: list[str] | None = None,
                             log: Callable[[str], None] = print) -> ExperimentResult:
    """Item 7a's ceiling on the VALIDATION span only (the test span is never run; no training).

    Per seed (the market of :func:`planted_experiment`, ``n_bars`` to draw it longer) and per
    (calm, turbulent) multiplier pair: vol_target, the oracle (:class:`RegimeScaledVolTarget`) and
    the oracle's own constant ablation (vol_target × the oracle's mean multiplier over the span),
    all in vol_target's exposure env; the paired Sharpe differences oracle − ablation and
    oracle − vol_target. The verdict counts the seeds on which the oracle meets item 7a's two
    targets; where it does not, sizing by the regime (what item 7a asks PPO to learn) has nothing
    to earn on those bars, however well it is learned.
    """
    from agents.training import planted_market, split_data
    from simulator.data.sources import cut_to_dates

    if base.data.source != "planted_edge":
        raise ValueError(f"the regime oracle needs data.source planted_edge, got {base.data.source!r}")
    if not seeds:
        raise ValueError("give at least one seed")
    rows: list[dict[str, Any]] = []
    with RunFolder(out, "experiment-oracle", config={"training": base.to_dict(), "seeds": list(seeds),
                                                     "multipliers": [list(m) for m in multipliers],
                                                     "n_bars": n_bars, "test": False},
                   argv=sys.argv if argv is None else argv) as folder:
        for seed in seeds:
            data_cfg = replace(base.data, data_seed=seed, n_bars=n_bars or base.data.n_bars)
            planted = planted_market(data_cfg)  # load_market's market, with its hidden regime
            market = cut_to_dates(planted.market, data_cfg.start, data_cfg.end)
            data = split_data(market, base.env, data_cfg)
            validation = data.span("validation")
            env = baseline_env(base.env)
            per_year = bars_per_year(data.full.index)
            turbulent = pd.Series(np.asarray(planted.regime) == 1, index=planted.market.index)
            # the decision bars of the span (the ablation's constant is the oracle's mean multiplier there)
            at = pd.Index(_ns(turbulent.index)).get_indexer(_ns(validation.index))
            if (at < 0).any():
                raise ValueError("the env data's bars are not the planted market's")
            on_span = turbulent.to_numpy()[at][validation.first_step:validation.last_step + 1]
            for k_calm, k_turb in multipliers:
                label = f"calm x{k_calm:g} / turbulent x{k_turb:g}"
                scale = turbulent.map({False: float(k_calm), True: float(k_turb)})
                mean_multiplier = float(np.where(on_span, k_turb, k_calm).mean())
                policies = {REFERENCE: (make_baseline(REFERENCE), env),
                            "oracle": (RegimeScaledVolTarget(scale), env),
                            "oracle_ablation": (RegimeScaledVolTarget(pd.Series(mean_multiplier, index=scale.index)),
                                                env)}
                rng = np.random.default_rng([seed, int(1000 * k_calm), int(1000 * k_turb)])
                span_rows, returns = evaluate_span(policies, validation, per_year, rng)
                span_rows += paired_rows(returns, per_year, rng, (("oracle", "oracle_ablation"), ("oracle", REFERENCE)))
                for r in span_rows:
                    rows.append({"seed": seed, "span": "validation", "multipliers": label,
                                 "turbulent_share": float(on_span.mean()), "mean_multiplier": mean_multiplier, **r})
                by = {r["policy"]: r for r in span_rows}
                log(f"seed {seed}, {label}: Sharpe {REFERENCE} {by[REFERENCE]['sharpe']:+.2f}, oracle "
                    f"{by['oracle']['sharpe']:+.2f}, its ablation {by['oracle_ablation']['sharpe']:+.2f}; oracle - "
                    f"ablation {by['oracle - oracle_ablation']['sharpe']:+.2f} "
                    f"(p {by['oracle - oracle_ablation']['p_value']:.3f})")
        table = pd.DataFrame(rows)
        verdicts = [oracle_verdict(table[table.multipliers == label], label)
                    for label in table.multipliers.unique()]
        settings = (f"Settings: seeds {list(seeds)}, {n_bars or base.data.n_bars:,} bars a market, validation span "
                    f"only; market {dict(base.data.planted_edge or {})}; env {base.env.action_mode} agent's "
                    f"exposure twin, rebalance_band {base.env.rebalance_band:g}.")
        _write_tables(folder, table, oracle_report_markdown(table, verdicts, settings))
    _log_verdicts(verdicts, folder, log)
    return ExperimentResult(path=folder.path, table=table, verdict=verdicts[-1], passed=True)


def oracle_report_markdown(table: pd.DataFrame, verdicts: Sequence[str], settings: str) -> str:
    """report.md of :func:`regime_oracle_experiment`: the verdicts, then every row by seed and multipliers."""
    lines = ["# Item 7a's ceiling: vol_target sized by the hidden regime (an oracle)", "",
             *[f"- {v}" for v in verdicts], "", settings, "",
             "Validation span only (the test span is never run; nothing is trained). `oracle_ablation`: "
             "vol_target x the oracle's mean multiplier over the span's decision bars. Sharpe annualised with a "
             "stationary-bootstrap 95% CI; `A - B` rows are paired Sharpe differences on the same bars with a "
             "two-sided bootstrap p.", "",
             "| seed | multipliers | policy | Sharpe | 95% CI | return | max DD | turnover (x eq.) | costs "
             "| p (paired) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        lines.append(f"| {r['seed']} | {r['multipliers']} | {r['policy']} | {r['sharpe']:.2f} | "
                     f"[{_fmt(r['sharpe_low'], '.2f')}, {_fmt(r['sharpe_high'], '.2f')}] | "
                     f"{_fmt(r.get('total_return'), '+.1%')} | {_fmt(r.get('max_drawdown'), '.1%')} | "
                     f"{_fmt(r.get('turnover_x_equity'), ',.0f')} | {_fmt(r.get('costs_of_equity'), '.1%')} | "
                     f"{_fmt(r.get('p_value'), '.3f')} |")
    return "\n".join([*lines, ""])


def oracle_verdict(table: pd.DataFrame, label: str) -> str:
    """How many seeds the oracle meets item 7a's targets on: >= vol_target, and beats its ablation (p < 0.05)."""
    seeds = sorted(table.seed.unique())

    value = partial(_seed_value, table)
    ge = sum(value(s, "oracle") >= value(s, REFERENCE) for s in seeds)
    beats = sum(value(s, "oracle - oracle_ablation") > 0
                and value(s, "oracle - oracle_ablation", "p_value") < ALPHA for s in seeds)
    return (f"validation, oracle {label}: >= {REFERENCE} Sharpe on {ge} of {len(seeds)} seeds; beats its own "
            f"constant ablation (paired, p < {ALPHA:g}) on {beats} of {len(seeds)}.")


# --------------------------------------------------------------------------- item 7b: real history (ECB)

#: Item 7b's markets: name → ECB pairs (``data.symbols`` overridden in both agents' configs).
ECB_MARKETS: dict[str, tuple[str, ...]] = {
    "EURUSD": ("EURUSD",), "USDJPY": ("USDJPY",), "GBPUSD": ("GBPUSD",), "EURCHF": ("EURCHF",),
    "three-pair": ("EURUSD", "USDJPY", "GBPUSD")}
#: Time over the VaR limit a policy may spend and stay compliant (fraction of bars): the constrained
#: agent's episode budget 5 / 504 bars ≈ 0.01, and agents/report/ranking.py's tolerance.
TIME_OVER_LIMIT_BUDGET = 0.01


def compliant(row: dict[str, Any]) -> bool:
    """The risk targets of item 7b on one row: no stop-out, time over the limit within the budget, and
    VaR exceptions not rejected by Kupiec at 5% (a policy with no position has nothing to reject)."""
    p = row.get("kupiec_p", math.nan)
    return (row["stop_outs"] == 0 and _nan0(row["time_over_limit"]) <= TIME_OVER_LIMIT_BUDGET
            and not (isinstance(p, float) and p == p and p < ALPHA))


def _nan0(value: float) -> float:
    return 0.0 if value != value else value


def _aggregate_agent(rows: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, Any]:
    """One agent's seeds as one row: mean Sharpe with a percentile-bootstrap CI over training seeds; other
    figures the mean over seeds; stop-outs summed; ``time_over_limit_max`` the worst seed; ``kupiec_p`` the
    worst seed's (lowest) p and ``kupiec_rejected`` the seeds rejected at 5%.

    Why not one Kupiec test on the exceptions pooled over seeds: the seeds trade the same bars, so their
    exceptions are not independent observations and pooling would multiply the evidence by the seed count.
    """
    sharpes = np.array([r["sharpe"] for r in rows], dtype=np.float64)
    point, lo, hi = bootstrap_ci(sharpes[np.isfinite(sharpes)], rng=rng)
    p_values = np.array([r["kupiec_p"] for r in rows], dtype=np.float64)
    return {"sharpe": point, "sharpe_low": lo, "sharpe_high": hi,
            **{k: float(np.mean([r[k] for r in rows])) for k in ("total_return", "max_drawdown", "turnover_x_equity",
                                                                  "costs_of_equity", "time_over_limit",
                                                                  "var_exceptions", "var_obs", "var_nominal")},
            "time_over_limit_max": float(np.nanmax([r["time_over_limit"] for r in rows])),
            "stop_outs": float(sum(r["stop_outs"] for r in rows)),
            "kupiec_p": float(np.nanmin(p_values)) if np.isfinite(p_values).any() else math.nan,
            "kupiec_rejected": float(np.sum(p_values < ALPHA))}


def _best_compliant(validation_rows: list[dict[str, Any]]) -> str | None:
    """The baseline (flat excluded) with the best VALIDATION Sharpe among those compliant on validation."""
    ok = [r for r in validation_rows if r["policy"] != "flat" and compliant(r) and np.isfinite(r["sharpe"])]
    return max(ok, key=lambda r: r["sharpe"])["policy"] if ok else None


@dataclass(frozen=True)
class _Trained:
    market: str
    agent: str
    seed: int
    config: TrainConfig
    policy: Policy
    ablation: ConstantAction
    selected: str


def ecb_experiment(agents: dict[str, TrainConfig], seeds: Sequence[int], *, out: str | Path,
                   markets: dict[str, tuple[str, ...]] | None = None, timesteps: int | None = None,
                   test: bool = True, argv: list[str] | None = None,
                   log: Callable[[str], None] = print) -> ExperimentResult:
    """Item 7b: per market × agent (``agents``: name → config, e.g. shield and constrained PPO) × seed, train on
    1999-2013 (best checkpoint chosen on validation), compute the ablation's constant on validation and test the
    agent against it there (paired, per seed); every baseline runs in the exposure twin of each agent's env.
    Then, once at the end (``test``), every policy over the test span. results.csv and report.md in a fresh
    run folder under ``out``. ``test=False`` never runs the test span.
    """
    from agents.training import load_market, load_trained_policy, resolve_model, split_data, train

    if not seeds:
        raise ValueError("give at least one seed")
    if not agents:
        raise ValueError("give at least one agent config")
    markets = ECB_MARKETS if markets is None else markets
    rows: list[dict[str, Any]] = []
    trained: list[_Trained] = []
    datasets: dict[tuple[str, str], Any] = {}
    best_rule: dict[tuple[str, str], str | None] = {}
    with RunFolder(out, "experiment-learning-ecb",
                   config={"agents": {k: v.to_dict() for k, v in agents.items()}, "seeds": list(seeds),
                           "markets": {k: list(v) for k, v in markets.items()}, "test": test,
                           "timesteps": timesteps}, argv=sys.argv if argv is None else argv) as folder:
        for market, symbols in markets.items():
            for agent, base in agents.items():
                data_cfg = replace(base.data, symbols=tuple(symbols))
                template = replace(base, data=data_cfg, total_timesteps=timesteps or base.total_timesteps)
                data = split_data(load_market(data_cfg, account_currency=base.env.account.currency),
                                  base.env, data_cfg)
                datasets[(market, agent)] = data
                per_year = bars_per_year(data.full.index)
                rule_env = baseline_env(base.env)
                rules = {name: (make_baseline(name), rule_env) for name in BASELINES}
                rng = np.random.default_rng([len(rows), 0])
                rule_rows, _ = evaluate_span(rules, data.validation, per_year, rng)
                best_rule[(market, agent)] = _best_compliant(rule_rows)
                for r in rule_rows:
                    rows.append({"market": market, "agent": agent, "span": "validation", "seed": math.nan,
                                 **r, "compliant": compliant(r)})
                log(f"{market} / {agent}: best compliant baseline on validation: {best_rule[(market, agent)]}")
                for seed in seeds:
                    cfg = replace(template, seed=seed, name=f"ecb-{market}-{agent}-seed{seed}")
                    log(f"{market} / {agent} / seed {seed}: training {cfg.total_timesteps:,} steps")
                    run_dir = train(cfg, runs_root=folder.path / "training", argv=[], progress=False,
                                    log=lambda msg: log(f"  {msg}"))
                    try:
                        model_path, selected = resolve_model(run_dir)[0], "best eligible on validation"
                    except ModelFileError:
                        model_path, selected = run_dir / "model.zip", "final (no checkpoint eligible on validation)"
                        log("  no checkpoint eligible on validation: the final model is scored")
                    policy = load_trained_policy(model_path)
                    ablation = ConstantAction(mean_action(policy, data.validation, cfg.env))
                    trained.append(_Trained(market, agent, seed, cfg, policy, ablation, selected))
                    rng = np.random.default_rng([seed, len(rows), 1])
                    span_rows, returns = evaluate_span({"agent": (policy, cfg.env), "ablation": (ablation, cfg.env)},
                                                       data.validation, per_year, rng)
                    d = paired_sharpe_difference(returns["agent"], returns["ablation"], per_year, rng=rng)
                    span_rows.append({"policy": "agent - ablation", "sharpe": d["diff"], "sharpe_low": d["low"],
                                      "sharpe_high": d["high"], "p_value": d["p_value"]})
                    for r in span_rows:
                        rows.append({"market": market, "agent": agent, "span": "validation", "seed": seed, **r,
                                     **({"compliant": compliant(r)} if "stop_outs" in r else {}),
                                     **({"ablation_action": float(ablation.action.mean())}
                                        if r["policy"] == "ablation" else {}),
                                     **({"model": selected} if r["policy"] == "agent" else {})})
                    log(f"  validation: Sharpe agent {span_rows[0]['sharpe']:+.2f}, ablation "
                        f"{span_rows[1]['sharpe']:+.2f}; agent - ablation {d['diff']:+.2f} (p {d['p_value']:.3f})")
        if test:  # once, at the end: nothing above saw the test span
            rows += _test_rows(markets, agents, trained, datasets, best_rule, log)
        table = pd.DataFrame(rows)
        verdicts = ecb_verdicts(table, test)
        market_list = ", ".join(f"{k} ({' '.join(v)})" for k, v in markets.items())
        settings = (f"Settings: markets {market_list}; agents "
                    f"{', '.join(agents)}; {len(seeds)} training seeds {list(seeds)}, "
                    f"{timesteps or next(iter(agents.values())).total_timesteps:,} PPO steps each; "
                    f"time-over-limit budget {TIME_OVER_LIMIT_BUDGET:.0%} of bars; split train to "
                    f"{next(iter(agents.values())).data.train_end}, validation to "
                    f"{next(iter(agents.values())).data.validation_end}, test after.")
        _write_tables(folder, table, ecb_report_markdown(table, verdicts, settings))
    _log_verdicts(verdicts, folder, log)
    passed = constrained_targets_met(table, [a for a, c in agents.items() if c.env.var_mode == "cost"], test)
    return ExperimentResult(path=folder.path, table=table, verdict=verdicts[-1] if verdicts else "", passed=passed)


def _test_rows(markets: dict[str, tuple[str, ...]], agents: dict[str, TrainConfig], trained: list[_Trained],
               datasets: dict[tuple[str, str], Any], best_rule: dict[tuple[str, str], str | None],
               log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every policy once over the test span: per seed, the seeds aggregated, the baselines, and the paired
    Sharpe differences of each agent seed against the best compliant baseline (chosen on validation) and flat."""
    rows: list[dict[str, Any]] = []
    for market in markets:
        for agent, base in agents.items():
            data = datasets[(market, agent)]
            test_span = data.span("test")
            per_year = bars_per_year(data.full.index)
            rule_env = baseline_env(base.env)
            policies: dict[str, tuple[Policy, EnvConfig]] = {
                name: (make_baseline(name), rule_env) for name in BASELINES}
            mine = [t for t in trained if t.market == market and t.agent == agent]
            for t in mine:
                policies[f"agent seed {t.seed}"] = (t.policy, t.config.env)
                policies[f"ablation seed {t.seed}"] = (t.ablation, t.config.env)
            rng = np.random.default_rng([len(rows), 2])
            span_rows, returns = evaluate_span(policies, test_span, per_year, rng)
            by = {r["policy"]: r for r in span_rows}
            common = {"market": market, "agent": agent, "span": "test"}
            for name in BASELINES:
                rows.append({**common, "seed": math.nan, **by[name], "compliant": compliant(by[name]),
                             "best_compliant": name == best_rule[(market, agent)]})
            for label in ("agent", "ablation"):
                seed_rows = [by[f"{label} seed {t.seed}"] for t in mine]
                for t, r in zip(mine, seed_rows, strict=True):
                    rows.append({**common, "seed": t.seed, **r, "policy": label, "compliant": compliant(r)})
                agg = _aggregate_agent(seed_rows, rng)
                rows.append({**common, "seed": math.nan, "policy": f"{label} (seeds)", **agg, "compliant": compliant(
                    {**agg, "time_over_limit": agg["time_over_limit_max"]})})
            rule = best_rule[(market, agent)]
            for other in ([rule] if rule else []) + ["flat"]:
                diffs = []
                for t in mine:
                    d = paired_sharpe_difference(returns[f"agent seed {t.seed}"], returns[other], per_year, rng=rng)
                    diffs.append(d["diff"])
                    rows.append({**common, "seed": t.seed, "policy": f"agent - {other}", "sharpe": d["diff"],
                                 "sharpe_low": d["low"], "sharpe_high": d["high"], "p_value": d["p_value"]})
                finite = np.array(diffs, dtype=np.float64)
                point, lo, hi = bootstrap_ci(finite[np.isfinite(finite)], rng=rng)
                rows.append({**common, "seed": math.nan, "policy": f"agent - {other} (seeds)", "sharpe": point,
                             "sharpe_low": lo, "sharpe_high": hi})
            agg = next(r for r in rows[::-1] if r["policy"] == "agent (seeds)" and r["market"] == market)
            log(f"{market} / {agent} test: agent Sharpe {agg['sharpe']:+.2f} [{_fmt(agg['sharpe_low'], '.2f')}, "
                f"{_fmt(agg['sharpe_high'], '.2f')}], best compliant baseline {rule}: "
                f"{by[rule]['sharpe']:+.2f}" if rule else f"{market} / {agent} test: no compliant baseline")
    return rows


def _risk_ok(row: dict[str, Any]) -> bool:
    """The targets on an agent's seeds-aggregated test row: no stop-out, the worst seed within the budget of time
    over the limit, VaR exceptions not rejected by Kupiec at 5% on any seed."""
    return (row["stop_outs"] == 0 and _nan0(row["time_over_limit_max"]) <= TIME_OVER_LIMIT_BUDGET
            and not row["kupiec_p"] < ALPHA)


def constrained_targets_met(table: pd.DataFrame, constrained: Sequence[str], test: bool) -> bool:
    """Item 7b's targets for the constrained agents: on every market it differs from its ablation on validation
    (paired p < 0.05) on >= 80% of seeds (4 of 5) and, with ``test``, meets the risk targets on the test span."""
    if not constrained:
        return False
    val = table[(table.span == "validation") & (table.policy == "agent - ablation") & table.agent.isin(constrained)]
    for _, g in val.groupby(["market", "agent"]):
        if (g.p_value < ALPHA).sum() < max(1, round(0.8 * len(g))):
            return False
    if test:
        agg = table[(table.span == "test") & (table.policy == "agent (seeds)") & table.agent.isin(constrained)]
        return bool(len(agg)) and all(_risk_ok(r) for r in agg.to_dict("records"))
    return True


def ecb_verdicts(table: pd.DataFrame, test: bool) -> list[str]:
    """Item 7b's target lines: per agent, the seeds where the agent differs from its ablation on validation
    (paired p < 0.05); with ``test``, per market the constrained (any cost-mode) agent's risk targets."""
    lines = []
    val = table[(table.span == "validation") & (table.policy == "agent - ablation")]
    for (market, agent), g in val.groupby(["market", "agent"], sort=False):
        n_sig = int((g.p_value < ALPHA).sum())
        lines.append(f"{market} / {agent}: differs from its constant-action ablation on validation (paired, "
                     f"p < {ALPHA:g}) on {n_sig} of {len(g)} seeds (mean difference {g.sharpe.mean():+.2f}).")
    if test:
        agg = table[(table.span == "test") & (table.policy == "agent (seeds)")]
        for r in agg.to_dict("records"):
            ok = _risk_ok(r)
            lines.append(f"targets {r['market']} / {r['agent']} (test): stop-outs {r['stop_outs']:.0f}, worst "
                         f"seed's time over limit {r['time_over_limit_max']:.2%} (budget "
                         f"{TIME_OVER_LIMIT_BUDGET:.0%}), VaR exceptions {r['var_exceptions']:.1f} vs nominal "
                         f"{r['var_nominal']:.1f} a seed (Kupiec rejects at 5% on {r['kupiec_rejected']:.0f} "
                         f"seeds; worst p {_fmt(r['kupiec_p'], '.3f')}) — "
                         f"{'met' if ok else 'NOT met'}.")
    return lines


def ecb_report_markdown(table: pd.DataFrame, verdicts: Sequence[str], settings: str) -> str:
    """report.md of item 7b: the target lines, the settings, and per market × span one table."""
    lines = ["# Learning experiment on real history: shield and constrained PPO on ECB daily rates", "",
             *[f"- {v}" for v in verdicts], "", settings, "",
             "Agent rows `(seeds)`: mean over training seeds with a percentile-bootstrap 95% CI over seeds "
             "(stop-outs summed, VaR exceptions the mean a seed, Kupiec p the worst seed's, time over limit the mean; "
             "the targets use the worst seed). Single rows: Sharpe with a stationary-bootstrap 95% CI over bars. `A - B`: "
             "paired Sharpe difference on the same bars, two-sided bootstrap p. Baselines act in the exposure "
             "twin of each agent's env; `best` = the best compliant baseline chosen on VALIDATION. The test span "
             "is run once, after all training.", ""]
    head = ("| agent | seed | policy | Sharpe | 95% CI | return | max DD | VaR exc. / nominal | Kupiec p "
            "| over limit | stop-outs | costs | p (paired) |")
    for (market, span), g in table.groupby(["market", "span"], sort=False):
        lines += [f"## {market} — {span}", "", head, "|" + "---|" * 13]
        for r in g.to_dict("records"):
            name = r["policy"] + (" (best)" if r.get("best_compliant") is True else "")
            exc = (f"{r['var_exceptions']:.1f} / {r['var_nominal']:.1f}"
                   if r.get("var_exceptions") == r.get("var_exceptions") and "var_exceptions" in r else "")
            lines.append(f"| {r['agent']} | {_fmt(r['seed'], '.0f')} | {name} | {_fmt(r['sharpe'], '.2f')} | "
                         f"[{_fmt(r['sharpe_low'], '.2f')}, {_fmt(r['sharpe_high'], '.2f')}] | "
                         f"{_fmt(r.get('total_return'), '+.1%')} | {_fmt(r.get('max_drawdown'), '.1%')} | {exc} | "
                         f"{_fmt(r.get('kupiec_p'), '.3f')} | {_fmt(r.get('time_over_limit'), '.2%')} | "
                         f"{_fmt(r.get('stop_outs'), '.0f')} | {_fmt(r.get('costs_of_equity'), '.2%')} | "
                         f"{_fmt(r.get('p_value'), '.3f')} |")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the agents' defaults, on validation

#: Candidate defaults for the ECB agents (item 4 and item 2): env settings over the shipped YAMLs.
#: ``mean_variance``'s kappa 10: on a VaR-budget position (daily sigma ~ limit / 2.33 ~ 0.4%) the
#: penalty kappa/2 x sigma^2 is ~1e-4 a day, the order of the daily mean return, so it binds.
DEFAULT_CANDIDATES: dict[str, dict[str, Any]] = {
    "log_return": {},
    "mean_variance": {"reward": "mean_variance", "risk_aversion": 10.0},
    "differential_sharpe": {"reward": "differential_sharpe"},
    "residual": {"action_mode": "residual", "base_rule": "var_budget"},
}


def _with_env(config: TrainConfig, changes: dict[str, Any]) -> TrainConfig:
    return replace(config, env=replace(config.env, **changes)) if changes else config


def choice_table(table: pd.DataFrame, candidates: Sequence[str]) -> pd.DataFrame:
    """Per candidate, the agents' VALIDATION figures over markets × agents × seeds: mean Sharpe, the constrained
    agent's stop-outs and worst time over the limit, and the seeds that differ from their ablation."""
    val = table[table.span == "validation"]
    rows = []
    for name in candidates:
        mine = val[val.agent.str.startswith(f"{name}-")]
        agent = mine[mine.policy == "agent"]
        constrained = agent[agent.agent == f"{name}-constrained"]
        diff = mine[mine.policy == "agent - ablation"]
        rows.append({"candidate": name, "runs": len(agent), "mean_sharpe": float(agent.sharpe.mean()),
                     "shield_sharpe": float(agent[agent.agent == f"{name}-shield"].sharpe.mean()),
                     "constrained_sharpe": float(constrained.sharpe.mean()),
                     "constrained_stop_outs": float(constrained.stop_outs.sum()),
                     "constrained_worst_time_over_limit": float(np.nanmax(constrained.time_over_limit))
                     if len(constrained) else math.nan,
                     "differs_from_ablation": int((diff.p_value < ALPHA).sum()), "seeds_tested": len(diff)})
    return pd.DataFrame(rows)


def choose_default(choice: pd.DataFrame) -> str:
    """The rule, stated before the run: among candidates whose constrained agent has no stop-out and stays within
    the time-over-limit budget on validation (all of them when none does), the highest mean validation Sharpe of
    the agents; within 0.01 of it, the first listed (the shipped default first). Kupiec is not a criterion: it
    judges the VaR model, which every candidate shares."""
    ok = choice[(choice.constrained_stop_outs == 0)
                & (choice.constrained_worst_time_over_limit.fillna(0) <= TIME_OVER_LIMIT_BUDGET)]
    pool = ok if len(ok) else choice
    best = pool.mean_sharpe.max()
    return str(pool[pool.mean_sharpe >= best - 0.01].candidate.iloc[0])


def choose_ecb_defaults(agents: dict[str, TrainConfig], seeds: Sequence[int], *, out: str | Path,
                        candidates: dict[str, dict[str, Any]] | None = None,
                        markets: dict[str, tuple[str, ...]] | None = None, timesteps: int | None = None,
                        argv: list[str] | None = None, log: Callable[[str], None] = print) -> tuple[str, pd.DataFrame, Path]:
    """Every candidate (env changes over each agent's YAML) through item 7b's protocol on train and validation
    only (the test span is never run), then :func:`choose_default`. Writes ``choice.csv`` and ``choice.md``
    beside the experiment's tables. Returns (chosen candidate, the choice table, the run folder)."""
    candidates = DEFAULT_CANDIDATES if candidates is None else candidates
    variants = {f"{name}-{agent}": _with_env(cfg, changes)
                for name, changes in candidates.items() for agent, cfg in agents.items()}
    result = ecb_experiment(variants, seeds, out=out, markets=markets, timesteps=timesteps, test=False,
                            argv=argv, log=log)
    choice = choice_table(result.table, list(candidates))
    chosen = choose_default(choice)
    lines = ["# The agents' default, chosen on validation (the test span not run)", "",
             f"Candidates (env settings over the agents' YAMLs): "
             + "; ".join(f"`{k}` {v or '(the YAMLs as shipped)'}" for k, v in candidates.items()) + ".", "",
             "| candidate | runs | mean Sharpe (val.) | shield | constrained | constrained stop-outs | "
             "constrained worst time over limit | ≠ ablation (p<0.05) |", "|---|---|---|---|---|---|---|---|"]
    for r in choice.to_dict("records"):
        lines.append(f"| {r['candidate']} | {r['runs']} | {r['mean_sharpe']:+.3f} | {r['shield_sharpe']:+.3f} | "
                     f"{r['constrained_sharpe']:+.3f} | {r['constrained_stop_outs']:.0f} | "
                     f"{_fmt(r['constrained_worst_time_over_limit'], '.2%')} | {r['differs_from_ablation']} of "
                     f"{r['seeds_tested']} |")
    lines += ["", f"Rule: {' '.join(choose_default.__doc__.split())}", "", f"**Chosen: `{chosen}`.**", ""]
    atomic_write_bytes(Path(result.path) / "choice.csv", choice.to_csv(index=False).encode("utf-8"))
    atomic_write_bytes(Path(result.path) / "choice.md", "\n".join(lines).encode("utf-8"))
    log("\n".join(lines))
    return chosen, choice, Path(result.path)
