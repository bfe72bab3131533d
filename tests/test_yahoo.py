"""Yahoo loader: parsing, UTC, mid + modelled spread, offline-first cache, one-line errors. No network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simulator.data.yahoo as yahoo
from simulator.common.errors import DataError
from simulator.data.market import MarketData
from simulator.data.spread_model import SpreadModel
from simulator.data.yahoo import load_yfinance, yahoo_cache_path

SYMBOL = "EURUSD=X"


# -- fixtures: realistic yfinance frames -------------------------------------------------------

def _ohlc(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A plausible EURUSD walk: mid prices around 1.08, consistent OHLC."""
    rng = np.random.default_rng(seed)
    close = 1.08 * np.exp(np.cumsum(rng.normal(0, 5e-4, n)))
    open_ = np.r_[1.08, close[:-1]]
    wick = np.abs(rng.normal(0, 3e-4, n))
    return {
        "Open": open_,
        "High": np.maximum(open_, close) + wick,
        "Low": np.minimum(open_, close) - wick,
        "Close": close,
    }


def yf_frame(
    n: int = 48,
    *,
    tz: str | None = "Europe/London",
    freq: str = "h",
    start: str = "2024-06-03 00:00",
    multiindex: bool = False,
    nan_rows: tuple[int, ...] = (),
    seed: int = 0,
) -> pd.DataFrame:
    """A frame shaped like ``yfinance.download(..., auto_adjust=False)`` returns for one FX ticker."""
    index = pd.date_range(start, periods=n, freq=freq, tz=tz, name="Datetime" if tz else "Date")
    cols = _ohlc(n, seed)
    data = {
        "Adj Close": cols["Close"].copy(),
        "Close": cols["Close"],
        "High": cols["High"],
        "Low": cols["Low"],
        "Open": cols["Open"],
        "Volume": np.zeros(n, dtype=np.int64),
    }
    frame = pd.DataFrame(data, index=index)
    price_cols = ["Adj Close", "Close", "High", "Low", "Open"]
    for r in nan_rows:
        frame.iloc[r, [frame.columns.get_loc(c) for c in price_cols]] = np.nan
    if multiindex:
        frame.columns = pd.MultiIndex.from_product([list(frame.columns), [SYMBOL]], names=["Price", "Ticker"])
    return frame


class FakeDownloader:
    """Stands in for the network boundary; records its calls."""

    def __init__(self, result: pd.DataFrame | Exception | None) -> None:
        self.result = result
        self.calls: list[tuple] = []

    def __call__(self, symbol: str, start: str | None, end: str | None, interval: str) -> pd.DataFrame | None:
        self.calls.append((symbol, start, end, interval))
        if isinstance(self.result, Exception):
            raise self.result
        return None if self.result is None else self.result.copy()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record any real ``yfinance.download`` call (a raise would be swallowed as 'offline')."""
    import yfinance

    real_calls: list = []
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: real_calls.append((a, k)))
    return real_calls


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, no_network: list) -> FakeDownloader:
    """``simulator.data.yahoo._download`` replaced by a fake returning a good hourly frame."""
    dl = FakeDownloader(yf_frame())
    monkeypatch.setattr(yahoo, "_download", dl)
    return dl


# -- parsing -----------------------------------------------------------------------------------

@pytest.mark.parametrize("multiindex", [False, True], ids=["flat", "price-ticker-multiindex"])
@pytest.mark.parametrize(
    ("tz", "freq", "interval"),
    [("Europe/London", "h", "1h"), (None, "D", "1d")],
    ids=["intraday-london", "daily-naive"],
)
def test_parses_yfinance_frame_to_utc_mid_bars_with_spread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list,
    multiindex: bool, tz: str | None, freq: str, interval: str,
) -> None:
    # Arrange
    raw = yf_frame(30, tz=tz, freq=freq, multiindex=multiindex)
    monkeypatch.setattr(yahoo, "_download", FakeDownloader(raw))
    # Act
    md = load_yfinance(SYMBOL, start="2024-06-01", end="2024-07-15", interval=interval, cache_dir=tmp_path)
    # Assert
    assert isinstance(md, MarketData)
    assert md.symbols == ("EURUSD",)
    assert md.source == f"yahoo:{SYMBOL}"
    assert str(md.index.tz) == "UTC"
    expected_index = raw.index.tz_localize("UTC") if tz is None else raw.index.tz_convert("UTC")
    assert (md.index == expected_index).all()
    if tz == "Europe/London":  # June is BST (UTC+1): local midnight is 23:00 UTC the day before
        assert md.index[0] == pd.Timestamp("2024-06-02 23:00", tz="UTC")
    bars = md.pair("EURUSD")
    assert tuple(bars.columns) == ("open", "high", "low", "close", "spread", "volume")
    close = raw[("Close", SYMBOL)] if multiindex else raw["Close"]
    np.testing.assert_array_equal(bars["close"].to_numpy(), close.to_numpy())
    assert (bars["spread"] > 0).all()
    assert (bars["volume"] == 0).all()
    assert any("mid" in n for n in md.notes)
    assert any("spread modelled" in n for n in md.notes)
    assert no_network == []


def test_spread_comes_from_the_given_model(tmp_path: Path, fake: FakeDownloader) -> None:
    model = SpreadModel(base_pips=2.0, vol_elasticity=0.0)
    md = load_yfinance(SYMBOL, cache_dir=tmp_path, spread_model=model)
    pips = md.spread_pips()[:, 0]
    hours = md.index.hour.to_numpy()
    np.testing.assert_allclose(pips, 2.0 * np.asarray(model.hourly_profile)[hours])


def test_all_nan_rows_are_dropped_and_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               no_network: list) -> None:
    raw = yf_frame(48, nan_rows=(5, 6, 7))
    monkeypatch.setattr(yahoo, "_download", FakeDownloader(raw))
    md = load_yfinance(SYMBOL, cache_dir=tmp_path)
    assert len(md) == 45
    assert raw.index[6].tz_convert("UTC") not in md.index
    assert any("dropped 3 rows with all prices missing" in n for n in md.notes)
    # The cache keeps the bars as downloaded, so reloading reports the same drop.
    again = load_yfinance(SYMBOL, cache_dir=tmp_path)
    assert any("dropped 3 rows with all prices missing" in n for n in again.notes)
    assert again.fingerprint() == md.fingerprint()


# -- cache -------------------------------------------------------------------------------------

def test_cache_written_then_reused_without_download(tmp_path: Path, fake: FakeDownloader) -> None:
    first = load_yfinance(SYMBOL, start="2024-06-01", end="2024-06-10", cache_dir=tmp_path)
    path = yahoo_cache_path(SYMBOL, "1h", "2024-06-01", "2024-06-10", tmp_path)
    assert path.exists() and path.suffix == ".csv"
    assert path.read_text(encoding="utf-8").splitlines()[0] == "time,open,high,low,close,volume"
    assert "+00:00" in path.read_text(encoding="utf-8").splitlines()[1]
    assert len(fake.calls) == 1

    second = load_yfinance(SYMBOL, start="2024-06-01", end="2024-06-10", cache_dir=tmp_path)

    assert len(fake.calls) == 1  # served from disk
    assert second.fingerprint() == first.fingerprint()
    assert any("loaded from cache" in n for n in second.notes)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left behind


def test_cache_key_distinguishes_requests(tmp_path: Path) -> None:
    a = yahoo_cache_path("EURUSD=X", "1h", "2024-01-01", None, tmp_path)
    b = yahoo_cache_path("EURUSD=X", "1d", "2024-01-01", None, tmp_path)
    c = yahoo_cache_path("EURUSD=X", "1h", "2024-01-01", "2024-02-01", tmp_path)
    d = yahoo_cache_path("GBPUSD=X", "1h", "2024-01-01", None, tmp_path)
    assert len({a, b, c, d}) == 4
    assert all(p.parent == tmp_path for p in (a, b, c, d))
    assert "=" not in a.name and "/" not in a.name


def test_default_cache_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeDownloader) -> None:
    monkeypatch.setenv("FXRISK_CACHE_DIR", str(tmp_path / "env-cache"))
    load_yfinance(SYMBOL)
    assert yahoo_cache_path(SYMBOL, "1h", None, None).parent == tmp_path / "env-cache"
    assert yahoo_cache_path(SYMBOL, "1h", None, None).exists()


def test_refresh_downloads_again(tmp_path: Path, fake: FakeDownloader) -> None:
    load_yfinance(SYMBOL, cache_dir=tmp_path)
    fake.result = yf_frame(24, seed=7)
    md = load_yfinance(SYMBOL, cache_dir=tmp_path, refresh=True)
    assert len(fake.calls) == 2
    assert len(md) == 24
    assert len(load_yfinance(SYMBOL, cache_dir=tmp_path)) == 24  # the cache now holds the new download
    assert len(fake.calls) == 2


def test_injected_downloader_is_used(tmp_path: Path, fake: FakeDownloader) -> None:
    mine = FakeDownloader(yf_frame(10))
    md = load_yfinance("GBPUSD=X", cache_dir=tmp_path, downloader=mine, interval="1h", start="2024-06-03")
    assert mine.calls == [("GBPUSD=X", "2024-06-03", None, "1h")]
    assert fake.calls == []
    assert md.symbols == ("GBPUSD",)


def test_download_boundary_calls_yfinance_unadjusted_and_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    import yfinance

    seen: dict = {}

    def fake_download(tickers, **kwargs):
        seen.update(kwargs, tickers=tickers)
        return yf_frame(5)

    monkeypatch.setattr(yfinance, "download", fake_download)
    out = yahoo._download(SYMBOL, "2024-06-01", "2024-06-02", "1h")
    assert len(out) == 5
    assert seen["tickers"] == SYMBOL
    assert seen["auto_adjust"] is False and seen["progress"] is False
    assert (seen["start"], seen["end"], seen["interval"]) == ("2024-06-01", "2024-06-02", "1h")


# -- failures ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "result",
    [ConnectionError("Failed to resolve 'query2.finance.yahoo.com'\n(Name or service not known)"),
     pd.DataFrame(), None],
    ids=["raises", "empty-frame", "none"],
)
def test_offline_without_cache_is_one_line_with_cache_path_and_csv_alternative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list, result: object,
) -> None:
    monkeypatch.setattr(yahoo, "_download", FakeDownloader(result))  # type: ignore[arg-type]
    with pytest.raises(DataError) as info:
        load_yfinance(SYMBOL, start="2024-01-01", cache_dir=tmp_path)
    msg = str(info.value)
    assert "\n" not in msg
    assert "Yahoo could not be reached or returned no data for EURUSD=X" in msg
    assert str(yahoo_cache_path(SYMBOL, "1h", "2024-01-01", None, tmp_path)) in msg
    assert "load_csv" in msg
    assert not any(tmp_path.iterdir())
    assert no_network == []


def test_all_nan_download_is_reported_as_no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yahoo, "_download", FakeDownloader(yf_frame(4, nan_rows=(0, 1, 2, 3))))
    with pytest.raises(DataError, match="returned no data.*load_csv"):
        load_yfinance(SYMBOL, cache_dir=tmp_path)


def test_offline_with_cache_uses_cache(tmp_path: Path, fake: FakeDownloader) -> None:
    good = load_yfinance(SYMBOL, cache_dir=tmp_path)
    fake.result = OSError("network is unreachable")
    assert load_yfinance(SYMBOL, cache_dir=tmp_path).fingerprint() == good.fingerprint()
    with pytest.raises(DataError, match="a cache exists at .*refresh=True"):
        load_yfinance(SYMBOL, cache_dir=tmp_path, refresh=True)


def test_invalid_download_raises_and_keeps_good_cache(tmp_path: Path, fake: FakeDownloader) -> None:
    # Arrange: a good cache on disk
    load_yfinance(SYMBOL, cache_dir=tmp_path)
    path = yahoo_cache_path(SYMBOL, "1h", None, None, tmp_path)
    before = path.read_bytes()
    bad = yf_frame(48, nan_rows=(2,))
    bad.iloc[10, bad.columns.get_loc("High")] = bad["Low"].iloc[10] - 0.01  # high < low
    fake.result = bad
    # Act
    with pytest.raises(DataError) as info:
        load_yfinance(SYMBOL, cache_dir=tmp_path, refresh=True)
    # Assert: the error names the source and the downloaded row; the cache is untouched
    msg = str(info.value)
    assert "\n" not in msg
    assert "yahoo:EURUSD=X" in msg and "row 10" in msg and "high" in msg
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_corrupt_cache_names_the_file_line(tmp_path: Path, fake: FakeDownloader) -> None:
    load_yfinance(SYMBOL, cache_dir=tmp_path)
    path = yahoo_cache_path(SYMBOL, "1h", None, None, tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    t, o, h, lo, c, v = lines[3].split(",")
    lines[3] = ",".join([t, o, lo, h, c, v])  # swap high and low
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 4.*high"):
        load_yfinance(SYMBOL, cache_dir=tmp_path)
    assert len(fake.calls) == 1


def test_unwritable_cache_still_returns_data(tmp_path: Path, fake: FakeDownloader,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(yahoo.os, "replace", boom)
    with pytest.warns(RuntimeWarning, match="could not write the Yahoo cache"):
        md = load_yfinance(SYMBOL, cache_dir=tmp_path)
    assert len(md) == 48
    assert not any(tmp_path.iterdir())  # the temp file was removed
