"""scripts/experiment_learning.py --part ecb (issue #12 item 7b): runs end to end on ECB history with both
agents, writes its tables, and ``--no-test`` never evaluates a bar of the test span."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import agents.learning_experiment as le
from agents.hyperparams import HYPERPARAMS_DIR, TrainConfig
from tests.conftest import load_script

VALIDATION_END = "2013-12-31"


def tiny(name: str) -> TrainConfig:
    """An item 7b config at a CI budget: ECB 2006 to mid-2015, 6-month episodes, 1,024 PPO steps."""
    base = TrainConfig.from_yaml(HYPERPARAMS_DIR / name)
    data = replace(base.data, start="2006-01-02", train_end="2011-12-31", validation_end=VALIDATION_END,
                   end="2015-06-30")
    return replace(base, n_envs=8, total_timesteps=1024, eval_every=512, checkpoint_every=1024, data=data,
                   env=replace(base.env, episode_bars="6M"),
                   ppo=replace(base.ppo, n_steps=64, batch_size=256, n_epochs=1))


AGENTS = ("ppo_ecb.yaml", "ppo_ecb_constrained.yaml")


@pytest.mark.slow
def test_ecb_part_runs_end_to_end_and_writes_its_tables(tmp_path: Path) -> None:
    paths = []
    for name in AGENTS:
        paths.append(tmp_path / name)
        paths[-1].write_text(yaml.safe_dump(tiny(name).to_dict(), sort_keys=False))
    script = load_script("experiment_learning")

    code = script.main(["--part", "ecb", "--markets", "EURUSD", "--seeds", "0", "1", "--shield-config",
                        str(paths[0]), "--constrained-config", str(paths[1]), "--out", str(tmp_path)])

    assert code in (0, 1)
    (folder,) = tmp_path.glob("experiment-learning-ecb-*")
    table = pd.read_csv(folder / "results.csv")
    assert set(table.span) == {"validation", "test"} and set(table.market) == {"EURUSD"}
    assert set(table.agent) == {"shield", "constrained"}
    val = table[table.span == "validation"]
    for agent in ("shield", "constrained"):
        paired = val[(val.agent == agent) & (val.policy == "agent - ablation")]
        assert sorted(paired.seed) == [0, 1] and paired.p_value.between(0, 1).all()
    test = table[(table.span == "test") & (table.agent == "constrained")]
    agg = test[test.policy == "agent (seeds)"].iloc[0]
    seeds = test[test.policy == "agent"]
    assert len(seeds) == 2
    assert agg.sharpe == pytest.approx(seeds.sharpe.mean())
    assert agg.stop_outs == seeds.stop_outs.sum() and agg.var_exceptions == pytest.approx(seeds.var_exceptions.mean())
    assert agg.kupiec_p == pytest.approx(seeds.kupiec_p.min())  # the worst seed: the seeds share their bars
    assert agg.kupiec_rejected == (seeds.kupiec_p < 0.05).sum()
    assert agg.time_over_limit_max == pytest.approx(seeds.time_over_limit.max())
    for policy in ("flat", "vol_target", "fixed_fraction", "ablation", "ablation (seeds)", "agent - flat (seeds)"):
        assert policy in set(test.policy), policy
    flat = test[test.policy == "flat"].iloc[0]
    assert flat.costs_of_equity == 0 and flat.var_obs == 0
    rules = test[test.seed.isna() & test.policy.isin(["vol_target", "fixed_fraction", "var_budget"])]
    assert np.isfinite(rules[["sharpe", "total_return", "max_drawdown", "var_exceptions", "time_over_limit"]]).all().all()
    assert test.best_compliant.sum() <= 1
    report = (folder / "report.md").read_text()
    assert "## EURUSD — test" in report and "## EURUSD — validation" in report
    assert "targets EURUSD / constrained (test)" in report and "constant-action ablation on validation" in report


def test_no_test_mode_never_evaluates_a_test_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every span the experiment runs a policy over ends on or before the validation end."""
    last: list[np.datetime64] = []
    for name in ("run_policies", "run_policy"):
        original = getattr(le, name)

        def spy(policy, data, config, *args, _original=original, **kwargs):
            last.append(np.datetime64(int(data.index[data.span_end - 1]), "ns"))  # the span's last bar
            return _original(policy, data, config, *args, **kwargs)

        monkeypatch.setattr(le, name, spy)
    agents = {"constrained": replace(tiny("ppo_ecb_constrained.yaml"), total_timesteps=512, eval_every=512)}

    result = le.ecb_experiment(agents, [0], out=tmp_path, markets={"EURCHF": ("EURCHF",)}, test=False, argv=[],
                               log=lambda _: None)

    assert set(result.table.span) == {"validation"}
    assert last and max(last) <= np.datetime64(f"{VALIDATION_END}T23:59")
    report = (result.path / "report.md").read_text()
    assert "— test" not in report and "- targets" not in report


def test_compliance_and_kupiec() -> None:
    row = {"stop_outs": 0.0, "time_over_limit": 0.005, "kupiec_p": 0.4}
    assert le.compliant(row)
    assert not le.compliant({**row, "stop_outs": 1.0})
    assert not le.compliant({**row, "time_over_limit": 0.02})
    assert not le.compliant({**row, "kupiec_p": 0.01})
    assert le.compliant({**row, "kupiec_p": float("nan")})  # never held a position: nothing to backtest
    assert le.kupiec_p(10, 1000, 0.01) == pytest.approx(1.0)
    assert le.kupiec_p(30, 1000, 0.01) < 1e-4
    assert np.isnan(le.kupiec_p(0, 0, 0.01))


def test_constrained_targets_need_every_market() -> None:
    def market(name: str, stop_outs: float, p_values: list[float]) -> list[dict]:
        val = [{"market": name, "agent": "constrained", "span": "validation", "policy": "agent - ablation",
                "seed": i, "p_value": p} for i, p in enumerate(p_values)]
        return val + [{"market": name, "agent": "constrained", "span": "test", "policy": "agent (seeds)",
                       "stop_outs": stop_outs, "time_over_limit_max": 0.0, "kupiec_p": 0.5,
                       "kupiec_rejected": 0.0}]

    good = market("EURUSD", 0.0, [0.01] * 4 + [0.5])
    assert le.constrained_targets_met(pd.DataFrame(good), ["constrained"], test=True)
    assert not le.constrained_targets_met(pd.DataFrame(good + market("USDJPY", 1.0, [0.01] * 5)), ["constrained"],
                                          test=True)
    weak = market("GBPUSD", 0.0, [0.01] * 3 + [0.5] * 2)  # differs from its ablation on 3 of 5 seeds only
    assert not le.constrained_targets_met(pd.DataFrame(good + weak), ["constrained"], test=False)
    assert not le.constrained_targets_met(pd.DataFrame(good), [], test=True)


def _validation_rows(candidate: str, sharpe: float, stop_outs: float = 0.0, over: float = 0.0) -> list[dict]:
    rows = []
    for agent in ("shield", "constrained"):
        for seed in (0, 1):
            rows.append({"market": "EURUSD", "agent": f"{candidate}-{agent}", "span": "validation", "seed": seed,
                         "policy": "agent", "sharpe": sharpe + (0.1 if agent == "shield" else -0.1),
                         "stop_outs": stop_outs if agent == "constrained" else 0.0,
                         "time_over_limit": over if agent == "constrained" else 0.0})
            rows.append({"market": "EURUSD", "agent": f"{candidate}-{agent}", "span": "validation", "seed": seed,
                         "policy": "agent - ablation", "sharpe": 0.0, "p_value": 0.01 if seed == 0 else 0.5})
    return rows


def test_the_default_is_the_best_compliant_candidate_on_validation() -> None:
    """The rule: a constrained agent stopped out or over its time budget disqualifies its candidate; then the
    best mean validation Sharpe; within 0.01 of it, the first listed (the shipped default)."""
    table = pd.DataFrame(_validation_rows("a", 0.20) + _validation_rows("b", 0.50, stop_outs=1)
                         + _validation_rows("c", 0.45, over=0.05) + _validation_rows("d", 0.30)
                         + _validation_rows("e", 0.305))

    choice = le.choice_table(table, ["a", "b", "c", "d", "e"])

    assert list(choice.runs) == [4] * 5 and list(choice.differs_from_ablation) == [2] * 5
    assert choice.set_index("candidate").loc["a", "mean_sharpe"] == pytest.approx(0.20)
    assert choice.set_index("candidate").loc["a", "shield_sharpe"] == pytest.approx(0.30)
    assert le.choose_default(choice) == "d"  # b stopped out, c over its budget, e not 0.01 better than d
    assert le.choose_default(choice[choice.candidate.isin(["a", "e"])]) == "e"


def test_candidates_change_only_the_env_settings_they_name() -> None:
    base = TrainConfig.from_yaml(HYPERPARAMS_DIR / "ppo_ecb.yaml")
    for name, changes in le.DEFAULT_CANDIDATES.items():
        cfg = le._with_env(base, changes)
        assert replace(cfg, env=base.env) == base, name
        assert {k for k in vars(base.env) if getattr(cfg.env, k) != getattr(base.env, k)} == set(changes) - {
            k for k, v in changes.items() if getattr(base.env, k) == v}, name
