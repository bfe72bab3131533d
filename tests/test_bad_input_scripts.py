"""Every bad input to a script is one line on stderr and exit code 2, naming the key or file, and
nothing written before is overwritten. One parametrised test per class of the hardening issue."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from agents.hyperparams import DEFAULT_CONFIG
from tests.conftest import load_script

SCRIPTS = ("train", "evaluate", "stress_test", "data_summary", "forecast_report", "compare")


def run(capsys, script: str, argv: list[str]) -> tuple[int, list[str]]:
    rc = load_script(script).main(argv)
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.strip()]


def one_line(capsys, script: str, argv: list[str], *named: str) -> str:
    rc, lines = run(capsys, script, argv)
    assert rc == 2, lines
    assert len(lines) == 1, lines
    for word in named:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def earlier(tmp_path) -> Path:
    """A runs folder holding an earlier run that no failing command may touch."""
    runs = tmp_path / "runs"
    (runs / "train-old-20260101-000000").mkdir(parents=True)
    (runs / "train-old-20260101-000000" / "metrics.yaml").write_text("timesteps: 1\n")
    return runs


def config_with(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- config values: NaN / inf, mapping value types, duplicate keys, bad YAML -------------------------
NON_FINITE = [
    ("env:\n  reward_scale: .nan\n", "env.reward_scale"),
    ("env:\n  var_penalty: .nan\n", "env.var_penalty"),
    ("env:\n  risk_aversion: .nan\n", "env.risk_aversion"),
    ("env:\n  execution: {commission_per_million: .nan}\n", "env.execution.commission_per_million"),
    ("env:\n  execution: {slippage_bps: .nan}\n", "env.execution.slippage_bps"),
    ("env:\n  financing: {markup: .nan}\n", "env.financing.markup"),
    ("env:\n  financing: {rates: {USD: .nan}}\n", "env.financing.rates.USD"),
    ("env:\n  account: {initial_equity: .inf}\n", "env.account.initial_equity"),
    ("env:\n  var_limit: .inf\n", "env.var_limit"),
    ("env:\n  account: {max_leverage: .inf}\n", "env.account.max_leverage"),
    ("env:\n  execution: {spread_multiplier: .inf}\n", "env.execution.spread_multiplier"),
    ("env:\n  financing: {rates: {USD: abc}}\n", "env.financing.rates.USD"),
    ("ppo:\n  learning_rate: .nan\n", "ppo.learning_rate"),
    ("seed: 1099511627776\n", "seed"),
]


@pytest.mark.parametrize("text,key", NON_FINITE, ids=[k for _, k in NON_FINITE])
def test_non_finite_or_mistyped_config_value_names_file_and_key(tmp_path, capsys, earlier, text, key) -> None:
    before = snapshot(earlier)
    path = config_with(tmp_path, text)
    one_line(capsys, "train", ["--config", str(path), "--out", str(earlier), "--no-progress"], str(path), key)
    assert snapshot(earlier) == before


YAML_FILES = [
    ("duplicate key", "seed: 1\nseed: 2\n", "duplicate key 'seed'"),
    ("nested duplicate", "env:\n  var_limit: 0.01\n  var_limit: 0.02\n", "duplicate key 'var_limit'"),
    ("python tag", "name: !!python/object/apply:os.system [\"echo hi\"]\n", "python/object"),
    ("syntax", "env: [1, 2\n", "line"),
]


@pytest.mark.parametrize("script", ["train", "evaluate", "stress_test"])
@pytest.mark.parametrize("case,text,word", YAML_FILES, ids=[c for c, _, _ in YAML_FILES])
def test_bad_yaml_is_one_line_in_every_script_reading_a_config(tmp_path, capsys, earlier, script, case, text,
                                                               word) -> None:
    before = snapshot(earlier)
    path = config_with(tmp_path, text)
    extra = {"train": ["--no-progress"], "evaluate": ["--baseline", "vol_target"],
             "stress_test": ["--no-progress", "--seeds", "0"]}[script]
    one_line(capsys, script, ["--config", str(path), "--out", str(earlier), *extra], str(path), word)
    assert snapshot(earlier) == before


# -- scenario magnitudes -----------------------------------------------------------------------------
SCENARIOS = [
    ("volatility x10000", "transforms:\n  - {kind: volatility, multiplier: 10000, window: {start: 0.5, bars: 10}}\n",
     "multiplier"),
    ("liquidity x1e-300", "transforms:\n  - {kind: liquidity, multiplier: 1.0e-300, window: {start: 0.5, bars: 10}}\n",
     "multiplier"),
    ("spread x1e6", "transforms:\n  - {kind: spread, multiplier: 1.0e+6, window: {start: 0.5, bars: 10}}\n",
     "multiplier"),
    ("rate 5", "settings:\n  financing: {rates: {USD: 5.0}}\n", "rates.USD"),
]


@pytest.mark.parametrize("case,body,key", SCENARIOS, ids=[c for c, _, _ in SCENARIOS])
def test_scenario_magnitude_out_of_bounds_names_file_and_field(tmp_path, capsys, earlier, case, body, key) -> None:
    before = snapshot(earlier)
    path = config_with(tmp_path, "description: too much\n" + body, "too_much.yaml")
    one_line(capsys, "stress_test", ["--scenarios", str(path), "--out", str(earlier), "--no-progress", "--seeds",
                                     "0"], "too_much.yaml", key)
    assert snapshot(earlier) == before


# -- command-line values -----------------------------------------------------------------------------
CLI = [
    ("train", ["--seed", "1099511627776"], "--seed"),
    ("train", ["--seed", "-1"], "--seed"),
    ("evaluate", ["--baseline", "vol_target", "--split", "nope"], "--split"),
    ("stress_test", ["--seeds", "0", "99999999999"], "--seeds"),
    ("data_summary", ["--years", "nan"], "--years"),
    ("data_summary", ["--years", "-1"], "--years"),
    ("data_summary", ["--seed", "2**40"], "--seed"),
    ("forecast_report", ["--seed", "4294967296"], "--seed"),
    ("compare", ["x", "--seed", "1e3"], "--seed"),
]


@pytest.mark.parametrize("script,argv,option", CLI, ids=[f"{s} {' '.join(a)}" for s, a, _ in CLI])
def test_out_of_range_option_is_one_line_naming_it(capsys, earlier, script, argv, option) -> None:
    with pytest.raises(SystemExit) as exit_:
        load_script(script).main([*argv, "--out", str(earlier)] if script != "compare" else argv)
    assert exit_.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and option in lines[0], lines


def test_param_integers_are_parsed_as_integers() -> None:
    params = load_script("evaluate").parse_params(["atr_window=14", "leverage=2.5", "mode=fast"])
    assert params == {"atr_window": 14, "leverage": 2.5, "mode": "fast"}
    assert type(params["atr_window"]) is int


# -- output folders: unwritable or an existing file, before any work ------------------------------
def out_args(script: str, out: Path, tmp_path: Path) -> list[str]:
    if script == "compare":
        run_dir = tmp_path / "stress-x"
        run_dir.mkdir(exist_ok=True)
        return [str(run_dir), "--out", str(out)]
    extra = {"train": ["--no-progress"], "evaluate": ["--baseline", "vol_target"],
             "stress_test": ["--no-progress"], "data_summary": [], "forecast_report": ["--no-neural"]}[script]
    return ["--out", str(out), *extra]


@pytest.mark.parametrize("kind", ["a file", "under a file", "cannot be created"])
@pytest.mark.parametrize("script", SCRIPTS)
def test_bad_out_folder_is_one_line_before_any_work(tmp_path, capsys, script, kind) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me\n")
    out = {"a file": blocker, "under a file": blocker / "runs", "cannot be created": Path("/proc/fxrisk-nope")}[kind]
    line = one_line(capsys, script, out_args(script, out, tmp_path), "--out", str(out))
    assert "cannot write" in line or "not a folder" in line
    assert blocker.read_text() == "keep me\n"


# -- resume: bad files, finished runs -----------------------------------------------------------------
def test_train_resume_on_a_bad_config_is_one_line(tmp_path, capsys) -> None:
    run_dir = tmp_path / "train-x.partial"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("seed: [1\n")
    one_line(capsys, "train", ["--resume", str(run_dir), "--no-progress"], "config.yaml")


def test_train_resume_on_a_finished_run_is_refused_and_changes_nothing(tmp_path, capsys) -> None:
    run_dir = tmp_path / "train-x-20260101-000000"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(DEFAULT_CONFIG.read_text())
    (run_dir / "metrics.yaml").write_text("timesteps: 5\n")
    before = snapshot(run_dir)
    one_line(capsys, "train", ["--resume", str(run_dir), "--no-progress"], str(run_dir), "finished")
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("plan", ["training: {}\n", "policies: [\n", "{}\n", "training: {}\npolicies: []\n"
                                  "scenarios: []\nseeds: []\nsplit: test\nscenario_dirs: []\nextra: 1\n"])
def test_stress_resume_on_a_bad_plan_is_one_line(tmp_path, capsys, plan) -> None:
    run_dir = tmp_path / "stress-x.partial"
    run_dir.mkdir()
    (run_dir / "plan.yaml").write_text(plan)
    (run_dir / "manifest.yaml").write_text("created_utc: x\n")
    before = snapshot(run_dir)
    one_line(capsys, "stress_test", ["--resume", str(run_dir), "--no-progress"], "plan.yaml")
    assert snapshot(run_dir) == before


# -- data files --------------------------------------------------------------------------------------
def bars_csv(path: Path, close: np.ndarray) -> Path:
    index = pd.date_range("2017-01-02", periods=len(close), freq="h")
    frame = pd.DataFrame({"time": index.strftime("%Y-%m-%d %H:%M"), "open": close, "high": close * 1.0001,
                          "low": close * 0.9999, "close": close})
    frame.to_csv(path, index=False)
    return path


DATA = [
    ("data_summary", "preset", ["--preset", "nope"], "nope"),
    ("forecast_report", "one row", [], "one.csv"),
    ("data_summary", "one row", [], "one.csv"),
]


@pytest.mark.parametrize("script,case,extra,word", DATA, ids=[f"{s} {c}" for s, c, _, _ in DATA])
def test_bad_data_files_are_one_line_naming_the_file(tmp_path, capsys, earlier, script, case, extra, word) -> None:
    before = snapshot(earlier)
    csv = bars_csv(tmp_path / "one.csv", np.array([1.1]))
    argv = ["--csv", str(csv), "--out", str(earlier), *extra] + (["--no-neural"] if script == "forecast_report"
                                                                  else [])
    one_line(capsys, script, argv, word)
    assert snapshot(earlier) == before


def test_a_x100_jump_is_noted_and_data_summary_names_the_file(tmp_path, capsys, earlier) -> None:
    rng = np.random.default_rng(0)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-3, 3000)))
    close[1500:] *= 100.0  # a unit error from bar 1500 on
    csv = bars_csv(tmp_path / "jump.csv", close)
    rc, lines = run(capsys, "data_summary", ["--csv", str(csv), "--out", str(earlier)])
    out = capsys.readouterr().out
    if rc == 2:
        assert len(lines) == 1 and "jump.csv" in lines[0]
    from simulator.data.csv_loader import load_csv

    market = load_csv(csv, fmt="generic", fixed_spread_pips=1.0)
    assert any("jump x100" in note and "line 1502" in note for note in market.notes)
    del out


def test_mixed_naive_and_aware_timestamps_are_refused(tmp_path) -> None:
    import dataclasses

    from simulator.data.csv_loader import load_csv, preset
    from simulator.common.errors import DataError

    path = tmp_path / "mixed.csv"
    path.write_text("time,open,high,low,close\n2017-01-02 00:00+00:00,1.1,1.2,1.0,1.1\n"
                    "2017-01-02 01:00,1.1,1.2,1.0,1.1\n2017-01-02 02:00+00:00,1.1,1.2,1.0,1.1\n")
    fmt = dataclasses.replace(preset("generic"), timezone="Europe/London")
    with pytest.raises(DataError) as err:
        load_csv(path, fmt=fmt, fixed_spread_pips=1.0)
    assert "line 3" in str(err.value) and "mixed" in str(err.value) and "\n" not in str(err.value)


def test_shipped_configs_still_round_trip(tmp_path) -> None:
    """Validation refuses only bad values: every shipped YAML loads and survives a save/load."""
    from agents.hyperparams import HYPERPARAMS_DIR, TrainConfig

    for path in sorted(HYPERPARAMS_DIR.glob("*.yaml")):
        cfg = TrainConfig.from_yaml(path)
        again = tmp_path / path.name
        again.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        assert TrainConfig.from_yaml(again) == cfg
