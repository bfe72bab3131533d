"""Real history in every command: close-only and wide CSV, several files, date splits, the scripts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from agents.hyperparams import DataConfig, TrainConfig
from agents.training import load_market, make_split
from forecasters.base import Split
from simulator.common.configuration import from_mapping
from simulator.data.csv_loader import load_csv
from simulator.data.ecb import ecb_rates, load_ecb
from simulator.common.errors import ConfigError, DataError
from tests.conftest import load_script

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ecb_files(tmp_path_factory) -> dict[str, Path]:
    """Real ECB history written the way users bring it: a FRED-style close-only file and a wide file."""
    root = tmp_path_factory.mktemp("ecb_csv")
    rates = ecb_rates().loc["2005-01-01":"2012-12-31"]
    fred = pd.DataFrame({"DATE": rates.index.strftime("%Y-%m-%d"),
                         "DEXUSEU": rates["USD"].map("{:.4f}".format).to_numpy()})
    fred.loc[10, "DEXUSEU"] = "."  # FRED's mark for a day without a value
    fred.to_csv(root / "fred.csv", index=False)
    wide = pd.DataFrame({"Date": rates.index.strftime("%Y-%m-%d"), "EUR/USD": rates["USD"].to_numpy(),
                         "USD/JPY": (rates["JPY"] / rates["USD"]).to_numpy(),
                         "GBPUSD": (rates["USD"] / rates["GBP"]).to_numpy()})
    wide.loc[20, "USD/JPY"] = np.nan  # one missing fix of one pair
    wide.to_csv(root / "wide.csv", index=False)
    for sym, quote, base in (("EURUSD", "USD", "EUR"), ("USDJPY", "JPY", "USD")):
        one = rates[quote] / (rates[base] if base != "EUR" else 1.0)
        keep = one.iloc[5:] if sym == "USDJPY" else one  # the second file starts later
        pd.DataFrame({"date": keep.index.strftime("%Y-%m-%d"), "close": keep.values}).to_csv(
            root / f"{sym}.csv", index=False)
    return {"fred": root / "fred.csv", "wide": root / "wide.csv", "EURUSD": root / "EURUSD.csv",
            "USDJPY": root / "USDJPY.csv"}


def test_close_only_file_drops_empty_days_and_builds_bars(ecb_files) -> None:
    market = load_csv(ecb_files["fred"], fmt="close_only", symbol="EURUSD")
    raw = pd.read_csv(ecb_files["fred"])
    assert len(market) == len(raw) - 1
    assert any("rows without a close value" in n for n in market.notes)
    bars = market.pair("EURUSD")
    np.testing.assert_array_equal(bars["open"].to_numpy()[1:], bars["close"].to_numpy()[:-1])


def test_wide_file_loads_every_pair_on_one_clock(ecb_files) -> None:
    market = load_csv(ecb_files["wide"], fmt="wide", symbols=["EURUSD", "USDJPY"])
    assert market.symbols == ("EURUSD", "USDJPY")
    reference = load_ecb(["EURUSD"], start="2005-01-01", end="2012-12-31")
    np.testing.assert_allclose(market.bars[("EURUSD", "close")], reference.bars[("EURUSD", "close")], rtol=1e-12)
    assert any("USDJPY: 1 missing values" in n for n in market.notes)
    every = load_csv(ecb_files["wide"], fmt="wide")
    assert every.symbols == ("EURUSD", "USDJPY", "GBPUSD")


def test_wide_file_errors_name_file_line_and_column(tmp_path, ecb_files) -> None:
    with pytest.raises(DataError) as err:
        load_csv(ecb_files["wide"], fmt="wide", symbols=["AUDUSD"])
    assert "AUDUSD" in str(err.value) and "wide.csv" in str(err.value)
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,EURUSD,USDJPY\n2020-01-02,1.12,108.5\n2020-01-03,1.11,abc\n")
    with pytest.raises(DataError) as err:
        load_csv(bad, fmt="wide")
    message = str(err.value)
    assert "bad.csv" in message and "line 3" in message and "USDJPY" in message and "\n" not in message


def test_one_file_per_pair_in_a_training_config_is_aligned_and_reported(ecb_files) -> None:
    config = DataConfig(source="csv", symbols=("EURUSD", "USDJPY"), csv_preset="close_only",
                        csv_path={"EURUSD": str(ecb_files["EURUSD"]), "USDJPY": str(ecb_files["USDJPY"])})
    market = load_market(config)
    assert market.symbols == ("EURUSD", "USDJPY")
    assert any("EURUSD: 5 bars without a counterpart" in n for n in market.notes)


def test_a_csv_config_with_several_symbols_trains_on_all_of_them(ecb_files) -> None:
    config = DataConfig(source="csv", symbols=("EURUSD", "USDJPY", "GBPUSD"), csv_preset="wide",
                        csv_path=str(ecb_files["wide"]))
    assert load_market(config).symbols == ("EURUSD", "USDJPY", "GBPUSD")


def test_a_column_mapping_in_yaml_reads_a_renamed_file(tmp_path, ecb_files) -> None:
    path = tmp_path / "renamed.csv"
    pd.read_csv(ecb_files["EURUSD"]).rename(columns={"date": "Day", "close": "Rate"}).to_csv(path, index=False)
    text = (f"data:\n  source: csv\n  csv_path: {path}\n  csv_preset: close_only\n"
            "  csv_columns: {datetime: Day, close: Rate}\n")
    (tmp_path / "c.yaml").write_text(text)
    config = TrainConfig.from_yaml(tmp_path / "c.yaml")
    assert len(load_market(config.data)) > 2000


def test_dates_in_yaml_split_by_date() -> None:
    data = from_mapping(DataConfig, yaml.safe_load("source: ecb\ntrain_end: 2013-12-31\nvalidation_end: 2017-12-31\n"),
                        source="c.yaml")
    assert (data.train_end, data.validation_end) == ("2013-12-31", "2017-12-31")
    market = load_ecb(["EURUSD"])
    split = make_split(market, data)
    idx = market.index
    assert idx[split.train_end - 1].year == 2013 and idx[split.train_end].year == 2014
    assert idx[split.val_end - 1].year == 2017 and idx[split.val_end].year == 2018


def test_fractions_still_split_by_share() -> None:
    market = load_ecb(["EURUSD"], start="2010-01-01", end="2019-12-31")
    split = make_split(market, DataConfig(source="ecb", train=0.5, validation=0.25))
    assert split == Split.by_fraction(len(market), 0.5, 0.25)


@pytest.mark.parametrize(("train_end", "validation_end", "pattern"), [
    ("1990-12-31", "2017-12-31", "training span is empty"),
    ("2017-12-31", "2013-12-31", "must be after"),
    ("2013-12-31", "2030-12-31", "test span is empty"),
    ("2014-01-03", "2014-01-04", "validation span is empty"),  # a Saturday: no fix after the 3rd
])
def test_bad_date_splits_are_one_line_naming_the_key(train_end, validation_end, pattern) -> None:
    market = load_ecb(["EURUSD"])
    with pytest.raises(ConfigError, match=pattern) as err:
        Split.by_date(market.index, train_end, validation_end, keys=("data.train_end", "data.validation_end"))
    assert "\n" not in str(err.value) and "data." in str(err.value)


def test_only_one_split_date_is_an_error() -> None:
    with pytest.raises(ValueError, match="give both data.train_end and data.validation_end"):
        DataConfig(source="ecb", train_end="2013-12-31")


def test_a_pair_without_metadata_gets_defaults_and_a_note(tmp_path) -> None:
    path = tmp_path / "dem.csv"
    path.write_text("date,close\n" + "".join(f"1990-01-{d:02d},{0.6 + d / 1000}\n" for d in range(2, 28)))
    market = load_csv(path, fmt="close_only", symbol="DEMUSD")
    note = next(n for n in market.notes if n.startswith("DEMUSD: no metadata"))
    assert "pairs.yaml" in note and "pip size 0.0001" in note


def test_data_summary_on_the_ecb_history(tmp_path, capsys) -> None:
    rc = load_script("data_summary").main(["--source", "ecb", "--symbols", "EURUSD", "USDJPY", "GBPUSD", "EURCHF",
                                           "--years", "0.5", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "ECB euro reference rates: 7," in out  # > 7,000 daily bars per pair since 1999
    summary = pd.read_csv(next(tmp_path.iterdir()) / "real_summary.csv", index_col=0)
    assert (summary["bars"] > 6000).all() and list(summary.index) == ["EURUSD", "USDJPY", "GBPUSD", "EURCHF"]


@pytest.mark.parametrize(("preset", "flags"), [("close_only", ["--symbol", "EURUSD"]),
                                               ("wide", ["--symbols", "EURUSD", "GBPUSD"])])
def test_data_summary_on_close_only_and_wide_files(tmp_path, capsys, ecb_files, preset, flags) -> None:
    path = ecb_files["fred" if preset == "close_only" else "wide"]
    rc = load_script("data_summary").main(["--csv", str(path), "--preset", preset, *flags, "--years", "0.5",
                                           "--out", str(tmp_path)])
    assert rc == 0, capsys.readouterr().err
    assert "Stylised facts" in capsys.readouterr().out


def test_a_failed_load_is_one_line_and_leaves_no_run_folder(tmp_path, capsys) -> None:
    out = tmp_path / "runs"
    rc = load_script("train").main(["--config", str(REPO / "agents/hyperparams/ppo_ecb.yaml"), "--symbols",
                                    "EURXYZ", "--out", str(out), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "XYZ" in err[0] and "available" in err[0]
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.slow
def test_train_on_three_ecb_pairs_with_date_splits_then_evaluate_from_2018(tmp_path, capsys) -> None:
    # Arrange: the shipped ECB config, a tiny budget and a fast volatility model
    config = yaml.safe_load((REPO / "agents/hyperparams/ppo_ecb.yaml").read_text())
    config["env"]["vol_model"] = "ewma"
    config.update(total_timesteps=512, n_envs=4, eval_every=512, checkpoint_every=512)
    config["ppo"].update(n_steps=64, batch_size=128, n_epochs=1)
    path = tmp_path / "ecb.yaml"
    path.write_text(yaml.safe_dump(config))
    # Act
    rc = load_script("train").main(["--config", str(path), "--out", str(tmp_path / "runs"), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    run = next(p for p in (tmp_path / "runs").iterdir() if p.name.startswith("train-"))
    saved = yaml.safe_load((run / "config.yaml").read_text())
    manifest = yaml.safe_load((run / "manifest.yaml").read_text())
    rc = load_script("evaluate").main(["--model", str(run), "--out", str(tmp_path / "runs")])
    # Assert
    assert saved["data"]["symbols"] == ["EURUSD", "USDJPY", "GBPUSD"]
    assert (saved["data"]["train_end"], saved["data"]["validation_end"]) == ("2013-12-31", "2017-12-31")
    assert any("BIS Triennial Survey" in n for n in manifest["data"]["notes"])
    assert rc == 0
    evaluation = next(p for p in (tmp_path / "runs").iterdir() if p.name.startswith("evaluate-"))
    steps = pd.read_csv(evaluation / "steps.csv")
    dates = yaml.safe_load((evaluation / "manifest.yaml").read_text())["config"]["dates"]
    assert dates.startswith("2018-01-02") and len(steps) > 2000


def test_a_failed_stress_load_is_one_line_and_leaves_no_run_folder(tmp_path, capsys) -> None:
    out = tmp_path / "runs"
    rc = load_script("stress_test").main(["--config", str(REPO / "agents/hyperparams/ppo_ecb.yaml"), "--symbols",
                                          "EURXYZ", "--baselines", "vol_target", "--out", str(out), "--no-progress"])
    assert rc == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("error", [DataError("bad value", source="f.csv", line=3, field="close", hint="fix it"),
                                   ConfigError("c.yaml: key 'a': bad")])
def test_errors_survive_the_trip_from_a_worker_process(error) -> None:
    import pickle

    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)


def test_a_cross_in_a_usd_account_stress_tests_with_its_conversion_rates() -> None:
    from envs.config import EnvConfig
    from scenarios import apply_scenario, get_scenario

    market = load_ecb(["EURCHF"], start="2012-01-01", end="2016-12-31")
    stressed = apply_scenario(get_scenario("snb_2015"), market, EnvConfig(), rng=np.random.default_rng(0))
    assert stressed.market.conversion is not None
    assert any("not stressed" in n for n in stressed.notes)


def test_other_pairs_on_the_bundled_sample_are_one_clear_line() -> None:
    with pytest.raises(ValueError, match="the bundled sample holds EURUSD only"):
        DataConfig(source="sample", symbols=("USDJPY",))
