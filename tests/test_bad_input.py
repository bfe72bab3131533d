"""Every malformed CSV raises one-line DataError naming the file, the file line and the problem."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from simulator.data.csv_loader import CsvFormat, load_csv, preset
from simulator.common.errors import DataError

DUKA_HEADER = "Gmt time,Open,High,Low,Close,Volume\n"
DUKA_ROW1 = "02.01.2017 00:00:00.000,1.0500,1.0600,1.0400,1.0550,100\n"
DUKA_ROW2 = "02.01.2017 01:00:00.000,1.0550,1.0570,1.0540,1.0560,100\n"
DUKA_ROW3 = "02.01.2017 02:00:00.000,1.0560,1.0580,1.0550,1.0570,100\n"
MT5_HEADER = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
MT5_ROW = "2017.01.02\t00:00:00\t1.05200\t1.05300\t1.05100\t1.05250\t1200\t0\t12\n"

# (case id, file content (None: no file; bytes: raw), format, expected line (None: no line), key words)
CASES: list[tuple[str, str | bytes | None, str | CsvFormat, int | None, tuple[str, ...]]] = [
    ("missing file", None, "dukascopy", None, ("not found",)),
    ("empty file", b"", "dukascopy", 1, ("empty",)),
    ("blank lines only", "\n\n  \n", "dukascopy", 1, ("blank",)),
    ("header only", DUKA_HEADER, "dukascopy", 1, ("no data rows",)),
    ("binary file", b"PK\x03\x04\x00\x00\x00binary", "dukascopy", 1, ("not a text",)),
    ("missing column", "Date,Open,High,Low,Close,Volume\n" + DUKA_ROW1, "dukascopy", 1,
     ("missing column", "gmt time", "found 'date'")),
    ("misnamed column", "Gmt time,Opn,High,Low,Close,Volume\n" + DUKA_ROW1, "dukascopy", 1,
     ("missing column", "open", "'opn'")),
    ("header missing", "02.01.2017 00:00:00.000,1.05,1.06,1.04,1.055,100\n" + DUKA_ROW2, "generic", 1,
     ("missing column", "header=false")),
    ("semicolon file, comma preset", DUKA_HEADER.replace(",", ";") + DUKA_ROW1.replace(",", ";"), "dukascopy", 1,
     ("file uses ';' as separator", "expects ','", "sep=';'")),
    ("comma file, semicolon preset", "20170102 000000,1.05,1.06,1.04,1.055,0\n", "histdata", 1,
     ("file uses ','", "sep=','")),
    ("tab file, comma preset", MT5_HEADER + MT5_ROW, "metatrader4", 1, ("separator", "sep='\\t'")),
    ("no separator at all", "just some text\nmore text\n", "generic", 1, ("separator",)),
    ("unparsable date", DUKA_HEADER + DUKA_ROW1 + "2017-01-02 01:00,1.05,1.06,1.04,1.055,100\n", "dukascopy", 3,
     ("cannot parse date", "'2017-01-02 01:00'", "%d.%m.%y %h:%m:%s.%f")),
    ("histdata with header", "Date;Open;High;Low;Close;Volume\n20170102 000000;1.05;1.06;1.04;1.055;0\n",
     "histdata", 1, ("cannot parse date", "'date'", "header")),
    ("empty timestamp", DUKA_HEADER + DUKA_ROW1 + ",1.05,1.06,1.04,1.055,100\n", "dukascopy", 3,
     ("missing timestamp",)),
    ("unparsable number", DUKA_HEADER + DUKA_ROW1 + DUKA_ROW2 + "02.01.2017 02:00:00.000,1.05,abc,1.04,1.055,1\n",
     "dukascopy", 4, ("cannot parse number", "'abc'", "high")),
    ("decimal comma", "time;open;high;low;close\n2017-01-02 00:00;1,05;1,06;1,04;1,055\n", "generic", 2,
     ("cannot parse number", "'1,05'", "decimal=','")),
    ("duplicated timestamp", DUKA_HEADER + DUKA_ROW1 + DUKA_ROW2 + DUKA_ROW2, "dukascopy", 4, ("duplicated",)),
    ("unsorted timestamps", DUKA_HEADER + DUKA_ROW1 + DUKA_ROW3 + DUKA_ROW2, "dukascopy", 4,
     ("back in time", "sort")),
    ("NaN price", DUKA_HEADER + DUKA_ROW1 + "02.01.2017 01:00:00.000,1.05,1.06,1.04,NaN,100\n", "dukascopy", 3,
     ("non-finite", "close")),
    ("empty price", DUKA_HEADER + DUKA_ROW1 + "02.01.2017 01:00:00.000,,1.06,1.04,1.05,100\n", "dukascopy", 3,
     ("missing", "open")),
    ("zero price", DUKA_HEADER + DUKA_ROW1 + "02.01.2017 01:00:00.000,1.05,1.06,0,1.05,100\n", "dukascopy", 3,
     ("price must be > 0", "low")),
    ("negative price", DUKA_HEADER + DUKA_ROW1 + DUKA_ROW2 + "02.01.2017 02:00:00.000,-1.05,1.06,1.04,1.05,1\n",
     "dukascopy", 4, ("price must be > 0", "open")),
    ("high below low", DUKA_HEADER + DUKA_ROW1 + "02.01.2017 01:00:00.000,1.05,1.04,1.06,1.05,100\n", "dukascopy",
     3, ("below low",)),
    ("negative spread", MT5_HEADER + MT5_ROW + "2017.01.02\t01:00:00\t1.052\t1.053\t1.051\t1.0525\t1\t0\t-3\n",
     "metatrader5", 3, ("spread must be >= 0", "-3")),
    ("negative volume", DUKA_HEADER + DUKA_ROW1 + "02.01.2017 01:00:00.000,1.05,1.06,1.04,1.05,-7\n", "dukascopy",
     3, ("volume must be >= 0",)),
    ("too many fields", DUKA_HEADER + DUKA_ROW1 + "02.01.2017 01:00:00.000,1.05,1.06,1.04,1.05,100,9\n",
     "dukascopy", 3, ("7 field(s), expected 6",)),
    ("too few fields", DUKA_HEADER + DUKA_ROW1 + DUKA_ROW2 + "02.01.2017 02:00:00.000,1.05,1.06\n", "dukascopy",
     4, ("3 field(s), expected 6",)),
    ("too few fields without header", "2017.01.02,00:00,1.05,1.06,1.04,1.055,1\n2017.01.02,01:00,1.05\n"
     "2017.01.02,02:00,1.05,1.06,1.04,1.055,1\n", "metatrader4", 2, ("field(s), expected 7",)),
    ("blank line keeps numbering", DUKA_HEADER + DUKA_ROW1 + "\n" + "02.01.2017 01:00:00.000,1.05,x,1.04,1.05,1\n",
     "dukascopy", 4, ("cannot parse number",)),
    ("non-existent local time", "2017.03.26,02:00,1.05,1.06,1.04,1.055,1\n2017.03.26,03:30,1.05,1.06,1.04,1.055,1\n",
     dataclasses.replace(preset("metatrader4"), timezone="Europe/Athens"), 2, ("does not exist", "europe/athens")),
]


@pytest.mark.parametrize("case, content, fmt, line, words", CASES, ids=[c[0] for c in CASES])
def test_malformed_file_raises_one_line_data_error(tmp_path: Path, case: str, content: str | bytes | None,
                                                   fmt: str | CsvFormat, line: int | None,
                                                   words: tuple[str, ...]) -> None:
    # Arrange
    path = tmp_path / "bad_bars.csv"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    # Act
    with pytest.raises(DataError) as info:
        load_csv(path, fmt=fmt, fixed_spread_pips=None)
    # Assert
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert "bad_bars.csv" in message
    if line is None:
        assert info.value.line is None and not re.search(r"\bline \d+", message)
    else:
        assert info.value.line == line
        assert re.search(rf"\bline {line}\b", message), message
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"


def test_directory_is_reported(tmp_path: Path) -> None:
    # Arrange
    folder = tmp_path / "bars.csv"
    folder.mkdir()
    # Act / Assert
    with pytest.raises(DataError, match="directory"):
        load_csv(folder)


def test_missing_column_lists_expected_and_found(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "cols.csv"
    path.write_text("Gmt time,Open,High,Low,Last,Volume\n" + DUKA_ROW1, encoding="utf-8")
    # Act
    with pytest.raises(DataError) as info:
        load_csv(path, fmt="dukascopy")
    # Assert
    message = str(info.value)
    assert "expected columns Gmt time|Time|Local time, Open, High, Low, Close, Volume" in message
    assert "found 'Gmt time', 'Open', 'High', 'Low', 'Last', 'Volume'" in message
