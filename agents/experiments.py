"""Two experiments as library calls: the no-trade band chosen on validation, and PPO on a planted edge.

Why here and not in the scripts: ``scripts/experiment_band.py`` and ``scripts/experiment_planted_edge.py``
only parse their arguments and call :func:`band_experiment` / :func:`planted_edge_experiment`, which
return the finished run folder and the figures; tests and notebooks call them the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from agents.baselines import BASELINES, baseline_env, make_baseline
from agents.evaluation.metrics import bars_per_year
from agents.evaluation.rollout import evaluation_config, run_policy
from agents.evaluation.statistics import paired_sharpe_difference, sharpe_ci
from agents.hyperparams import HYPERPARAMS_DIR, TrainConfig
from agents.training import load_market, load_trained_policy, split_data, train
from simulator.common.run_folder import RunFolder

# -- the no-trade band ------------------------------------------------------------------------
BAND_CONFIG = HYPERPARAMS_DIR / "ppo_ecb.yaml"
BAND_MARKETS = (("EURUSD",), ("USDJPY",), ("GBPUSD",), ("EURCHF",), ("EURUSD", "USDJPY", "GBPUSD"))
BAND_BASELINES = ("vol_target", "var_budget", "fixed_fraction", "raw_signal", "fractional_kelly", "atr_stop")
BANDS = (0.0, 0.1, 0.2, 0.3, 0.5)


@dataclass(frozen=True)
class BandChoice:
    """The band experiment's run folder, the chosen band (fraction of target), per-band and per-run tables."""

    path: Path
    chosen: float
    by_band: pd.DataFrame
    table: pd.DataFrame


def band_table(config: TrainConfig, markets, baselines, bands, split: str = "validation") -> pd.DataFrame:
    """One row per (market, baseline, band): the summary of the run on ``split``."""
    rows = []
    for symbols in markets:
        data_config = dataclasses.replace(config.data, symbols=tuple(symbols))
        market = load_market(data_config, account_currency=config.env.account.currency)
        data = split_data(market, config.env, data_config)
        span = data.span(split)
        for band in bands:
            env = evaluation_config(baseline_env(dataclasses.replace(config.env, rebalance_band=float(band))))
            for name in baselines:
                summary = run_policy(make_baseline(name), span, env, label=name).summary.iloc[0]
                rows.append({"market": "+".join(symbols), "baseline": name, "band": float(band),
                             "sharpe_ratio": float(summary["sharpe_ratio"]),
                             "total_return": float(summary["total_return"]),
                             "max_drawdown": float(summary["max_drawdown"]),
                             "turnover_x_equity": float(summary["turnover_x_equity"]),
                             "costs_paid": float(summary["costs_paid"]), "stop_outs": int(summary["stop_outs"])})
    return pd.DataFrame(rows)


def choose_band(table: pd.DataFrame, tie: float = 0.01) -> tuple[float, pd.DataFrame]:
    """The band with the highest median Sharpe over (market, baseline); the smallest within ``tie`` of it."""
    by_band = table.groupby("band").agg(median_sharpe=("sharpe_ratio", "median"),
                                        mean_sharpe=("sharpe_ratio", "mean"),
                                        median_turnover=("turnover_x_equity", "median"),
                                        median_costs=("costs_paid", "median")).reset_index()
    best = by_band["median_sharpe"].max()
    chosen = float(by_band.loc[by_band["median_sharpe"] >= best - tie, "band"].min())
    return chosen, by_band


def band_experiment(config_path: str | Path = BAND_CONFIG, bands: Sequence[float] = BANDS, *, runs_root: str | Path,
                    argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> BandChoice:
    """Every baseline on each ECB market's validation span at each band; the rule of :func:`choose_band`.

    Writes ``band_validation.csv``, ``by_band.csv`` and ``choice.yaml`` to a fresh
    ``runs_root/experiment-band-<UTC time>/``; ``log`` gets the tables. The test span is never run.
    """
    from simulator.common.configuration import from_mapping, load_yaml

    config = from_mapping(TrainConfig, load_yaml(config_path), source=str(config_path))
    table = band_table(config, BAND_MARKETS, BAND_BASELINES, bands)
    chosen, by_band = choose_band(table)
    with pd.option_context("display.width", 160, "display.max_rows", 500):
        log("validation span, every baseline, by band:")
        log(by_band.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        pivot = table.pivot_table(index=["market", "baseline"], columns="band", values="sharpe_ratio")
        log("\nvalidation Sharpe ratio by market and baseline:")
        log(pivot.to_string(float_format=lambda v: f"{v:.2f}"))
    log(f"\nchosen band (highest median validation Sharpe, smallest within 0.01): {chosen:g}")
    resolved = {"config": str(config_path), "bands": [float(b) for b in bands], "split": "validation",
                "markets": ["+".join(m) for m in BAND_MARKETS], "baselines": list(BAND_BASELINES)}
    with RunFolder(runs_root, "experiment-band", config=resolved,
                   argv=list(argv) if argv is not None else None) as folder:
        folder.write_csv("band_validation.csv", table, index=False)
        folder.write_csv("by_band.csv", by_band, index=False)
        folder.write_yaml("choice.yaml", {"rebalance_band": chosen, "rule": "highest median validation Sharpe "
                                          "over (market, baseline); the smallest band within 0.01",
                                          "median_sharpe": {float(b): float(s) for b, s in
                                                            zip(by_band["band"], by_band["median_sharpe"])}})
    return BandChoice(path=folder.final_path, chosen=chosen, by_band=by_band, table=table)


# -- PPO on a planted edge --------------------------------------------------------------------
PLANTED_EDGE_CONFIG = HYPERPARAMS_DIR / "ppo_planted_edge.yaml"
REFERENCE = "fixed_fraction"


@dataclass(frozen=True)
class PlantedEdgeResult:
    """The planted-edge experiment's run folder, its verdict, whether the claim held on every seed, the table."""

    path: Path
    verdict: str
    holds: bool
    table: pd.DataFrame


def per_bar_returns(records: pd.DataFrame) -> np.ndarray:
    """Simple per-bar returns of the account's equity (fractions)."""
    return (records["equity"] / records["equity_before"] - 1.0).to_numpy()


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None or value != value else format(value, spec)


def planted_edge_experiment(base: TrainConfig, seeds: Sequence[int], *, timesteps: int | None = None,
                            runs_root: str | Path, argv: Sequence[str] | None = None,
                            log: Callable[[str], None] = print) -> PlantedEdgeResult:
    """Train PPO per seed on a market with a planted edge (data seed = seed), then compare on the test split.

    The claim: PPO beats :data:`REFERENCE` on test-split Sharpe for every seed (annualised, 95%
    block-bootstrap CIs, a paired test of the difference). Writes results.csv and report.md to a
    fresh ``runs_root/experiment-planted-edge-<UTC time>/`` (training runs inside it).
    """
    rows: list[dict] = []
    with RunFolder(runs_root, "experiment-planted-edge", config={"training": base.to_dict(), "seeds": list(seeds)},
                   argv=list(argv) if argv is not None else None) as folder:
        for seed in seeds:
            cfg = replace(base, seed=seed, name=f"planted-edge-seed{seed}",
                          total_timesteps=timesteps or base.total_timesteps,
                          data=replace(base.data, data_seed=seed))
            log(f"seed {seed}: training {cfg.total_timesteps:,} steps")
            run_dir = train(cfg, runs_root=folder.path / "training", argv=[], progress=False,
                            log=lambda msg: log(f"  {msg}"))
            data = split_data(load_market(cfg.data), cfg.env, cfg.data)
            env_cfg = evaluation_config(cfg.env)
            policies = {"ppo": load_trained_policy(run_dir / "best_model.zip")}
            policies.update({name: make_baseline(name) for name in BASELINES})
            per_year = bars_per_year(data.full.index)
            rng = np.random.default_rng(10_000 + seed)
            returns = {}
            rule_cfg = evaluation_config(baseline_env(cfg.env))  # rules act in the exposure twin
            for name, policy in policies.items():
                result = run_policy(policy, data.test, env_cfg if name == "ppo" else rule_cfg, label=name)
                r = per_bar_returns(result.records)
                returns[name] = r
                s = result.summary.iloc[0]
                point, lo, hi = sharpe_ci(r, per_year, rng=rng)
                rows.append({"seed": seed, "policy": name, "sharpe": s["sharpe_ratio"], "sharpe_low": lo,
                             "sharpe_high": hi, "total_return": s["total_return"], "max_drawdown": s["max_drawdown"],
                             "breach_rate": s["breach_rate"], "costs_paid": s["costs_paid"],
                             "stop_outs": s["stop_outs"]})
            diff = paired_sharpe_difference(returns["ppo"], returns[REFERENCE], per_year, rng=rng)
            rows.append({"seed": seed, "policy": f"ppo - {REFERENCE}", "sharpe": diff["diff"],
                         "sharpe_low": diff["low"], "sharpe_high": diff["high"], "p_value": diff["p_value"]})
            log(f"  test Sharpe: ppo {rows[-1 - len(policies)]['sharpe']:.2f}, {REFERENCE} "
                f"{next(r['sharpe'] for r in rows if r['seed'] == seed and r['policy'] == REFERENCE):.2f}, "
                f"difference {diff['diff']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}], p = {diff['p_value']:.3f}")
        table = pd.DataFrame(rows)
        folder.write_csv("results.csv", table, index=False)
        wins = [bool(table[(table.seed == s) & (table.policy == "ppo")].sharpe.iloc[0]
                     > table[(table.seed == s) & (table.policy == REFERENCE)].sharpe.iloc[0]) for s in seeds]
        verdict = (f"PPO beats {REFERENCE} on test-split Sharpe for {sum(wins)} of {len(wins)} seeds "
                   f"({'claim holds' if all(wins) else 'claim does NOT hold'}).")
        lines = ["# Planted-edge learning experiment", "", verdict, "",
                 "Test split only, touched once after training; Sharpe annualised, 95% block-bootstrap CI.", "",
                 "| seed | policy | Sharpe | 95% CI | return | max DD | breach rate | p (paired) |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['seed']} | {r['policy']} | {r['sharpe']:.2f} | [{r['sharpe_low']:.2f}, "
                         f"{r['sharpe_high']:.2f}] | {_fmt(r.get('total_return'), '+.1%')} | "
                         f"{_fmt(r.get('max_drawdown'), '.1%')} | {_fmt(r.get('breach_rate'), '.3f')} | "
                         f"{_fmt(r.get('p_value'), '.3f')} |")
        folder.write_text("report.md", "\n".join(lines) + "\n")
    return PlantedEdgeResult(path=folder.final_path, verdict=verdict, holds=all(wins), table=table)


__all__ = ["BANDS", "BAND_BASELINES", "BAND_CONFIG", "BAND_MARKETS", "PLANTED_EDGE_CONFIG", "REFERENCE", "BandChoice",
           "PlantedEdgeResult", "band_experiment", "band_table", "choose_band", "per_bar_returns",
           "planted_edge_experiment"]
