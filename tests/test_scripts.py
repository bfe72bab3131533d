"""Smoke tests of the command-line scripts with tiny budgets, as a user runs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.synthetic.generator import default_config, generate_market
from tests.conftest import load_script





def _synthetic_csv(path: Path, n: int) -> Path:
    market = generate_market(default_config(("EURUSD",)), n, rng=np.random.default_rng(0)).market
    frame = market.pair("EURUSD")[["open", "high", "low", "close"]]
    frame.index = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.to_csv(path, index_label="time")
    return path


def test_data_summary_writes_a_complete_run_folder(tmp_path, capsys) -> None:
    rc = load_script("data_summary").main(["--years", "0.2", "--out", str(tmp_path), "--seed", "3"])
    assert rc == 0
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1 and not runs[0].name.endswith(".partial")
    for name in ("manifest.yaml", "real_summary.csv", "stylised_facts.csv", "g10_bars.csv", "garch_t_fit.yaml"):
        assert (runs[0] / name).exists(), name
    out = capsys.readouterr().out
    assert "Stylised facts" in out and "excess_kurtosis" in out


def test_data_summary_bad_csv_is_one_line_and_writes_nothing(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,open,high,low,close\n2024-01-01T00:00:00Z,1.1,1.0,1.2,1.1\n")
    out_dir = tmp_path / "runs"
    rc = load_script("data_summary").main(["--csv", str(bad), "--out", str(out_dir)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.csv" in err and "line 2" in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_forecast_report_on_a_csv_writes_table_and_plot(tmp_path, capsys) -> None:
    csv = _synthetic_csv(tmp_path / "bars.csv", 2_600)
    rc = load_script("forecast_report").main([
        "--csv", str(csv), "--no-neural", "--window", "300", "--min-window", "300", "--garch-window", "800",
        "--refit-every", "400", "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"),
    ])
    assert rc == 0
    run = next((tmp_path / "runs").iterdir())
    table = pd.read_csv(run / "var_table.csv", index_col="model")
    assert {"historical", "normal", "student-t", "garch-t", "egarch-t", "garch-fhs"} <= set(table.index)
    assert (table["test_bars"] > 250).all()
    assert table["zone_last_250"].isin(["green", "yellow", "red"]).all()
    assert (run / "var_band.png").stat().st_size > 10_000
    assert "| garch-t |" in (run / "report.md").read_text()


def test_forecast_report_too_short_data_is_one_clear_line(tmp_path, capsys) -> None:
    csv = _synthetic_csv(tmp_path / "short.csv", 900)
    rc = load_script("forecast_report").main(["--csv", str(csv), "--no-neural", "--out", str(tmp_path / "runs")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "too short" in err and "short.csv" in err and "use at least" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_forecast_report_default_run_includes_the_neural_models(tmp_path) -> None:
    rc = load_script("forecast_report").main(["--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "c")])
    assert rc == 0
    table = pd.read_csv(next((tmp_path / "runs").iterdir()) / "var_table.csv", index_col="model")
    assert {"lstm-scaled", "gru-scaled"} <= set(table.index)
    # t-based models near nominal on the bundled sample: Kupiec does not reject at 1%
    assert (table.loc[["garch-t", "gjr-t", "egarch-t", "student-t"], "kupiec_p"] > 0.01).all()


# --------------------------------------------------------------------------- var_backtest (issue 15)


def test_var_backtest_on_a_csv_writes_table_report_and_plots(tmp_path, capsys) -> None:
    csv = _synthetic_csv(tmp_path / "bars.csv", 1_000)
    rc = load_script("var_backtest").main([
        "--source", "csv", "--csv", str(csv), "--window", "300", "--refit-every", "100",
        "--models", "hs", "ewma", "garch-t", "garch-normal-evt0", "gjr-skewt-fhs", "--levels", "0.99", "0.95",
        "--mcs-reps", "20", "--out", str(tmp_path / "runs"),
    ])
    assert rc == 0
    (run,) = list((tmp_path / "runs").iterdir())
    assert not run.name.endswith(".partial")
    table = pd.read_csv(run / "backtest.csv")
    for col in ("symbol", "model", "level", "n", "exceptions", "rate", "kupiec_p", "ind_p", "cc_p", "dq_p",
                "duration_p", "zone", "es_z1", "es_z2", "es_z3", "mf_es_p", "tick_loss", "mcs_p", "passes"):
        assert col in table.columns, col
    assert len(table) == 5 * 2 and (table["n"] == 1_000 - 1 - 300).all()  # every model on the same rows
    assert table["zone"].isin(["green", "yellow", "red"]).all()
    report = (run / "report.md").read_text()
    assert "garch-normal-evt0 (best, fixed)" in report and "rolling window 300" in report
    assert (run / "report.html").read_text().count("<table>") >= 3
    assert (run / "var_band_EURUSD.png").stat().st_size > 10_000
    assert "pairs passing Kupiec and CC" in capsys.readouterr().out


def test_var_backtest_unknown_model_is_one_clear_line(tmp_path, capsys) -> None:
    rc = load_script("var_backtest").main(["--source", "sample", "--models", "hs", "garch-cauchy",
                                           "--out", str(tmp_path / "runs")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "garch-cauchy" in err and "garch-normal-evt" in err
    assert not (tmp_path / "runs").exists()


def test_var_backtest_reads_the_ecb_crosses_through_eur() -> None:
    import argparse

    args = argparse.Namespace(source="ecb", symbols=["EURUSD", "USDJPY", "GBPUSD"], start="1999-01-04",
                              end="1999-01-05")
    closes, source = load_script("var_backtest").load_closes(args)
    first = closes.iloc[0]  # the ECB's first fix, 4 Jan 1999: USD 1.1789, JPY 133.73, GBP 0.7111 per EUR
    assert first["EURUSD"] == pytest.approx(1.1789)
    assert first["USDJPY"] == pytest.approx(133.73 / 1.1789)
    assert first["GBPUSD"] == pytest.approx(1.1789 / 0.7111)
    assert str(closes.index[0].date()) == "1999-01-04" and closes.notna().all().all() and "ECB" in source
    args.symbols, args.start, args.end = ["EURCYP"], None, None  # the pound of Cyprus ends in 2007
    cyp, _ = load_script("var_backtest").load_closes(args)
    assert cyp.index[-1].year == 2007 and cyp.notna().all().all()


# --------------------------------------------------------------------------- var_select (issue 15)


def test_var_select_ranks_candidates_on_held_out_ecb_pairs(tmp_path, capsys) -> None:
    import yaml

    rc = load_script("var_select").main([
        "--symbols", "EURSEK", "EURNOK", "--start", "2005-01-01", "--end", "2008-12-31", "--window", "300",
        "--refit-every", "50", "--candidates", "garch-normal-evt", "garch-normal-evt0", "--mcs-reps", "10",
        "--out", str(tmp_path / "runs"),
    ])
    assert rc == 0
    (run,) = list((tmp_path / "runs").iterdir())
    ranking = pd.read_csv(run / "selection.csv")
    assert set(ranking["model"]) == {"garch-normal-evt", "garch-normal-evt0"} and (ranking["pairs"] == 2).all()
    ordered = ranking.sort_values(["passes", "mean_tick_loss"], ascending=[False, True])
    chosen = yaml.safe_load((run / "chosen.yaml").read_text())
    assert chosen["best"] == ordered["model"].iloc[0] == ranking["model"].iloc[0]
    assert chosen["test_rows"][1] <= "2008-12-31"
    table = pd.read_csv(run / "backtest.csv")
    assert set(table["symbol"]) == {"EURSEK", "EURNOK"} and set(table["level"]) == {0.99, 0.95}
    assert f"chosen: {chosen['best']}" in capsys.readouterr().out


def test_var_select_refuses_the_reported_pairs_in_one_line(tmp_path, capsys) -> None:
    rc = load_script("var_select").main(["--symbols", "EURSEK", "GBPUSD", "--out", str(tmp_path / "runs")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "GBPUSD" in err and "reported pairs" in err
    assert not (tmp_path / "runs").exists()
