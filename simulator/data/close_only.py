"""Bars from close-only series (reference rates, spreadsheet exports), with a stated rule for gaps.

Why: most long FX histories (ECB, FRED, central-bank tables, spreadsheets) carry one price per
day. The bar schema wants OHLC, so close-only data gets the convention used throughout:

* ``open[t] = close[t-1]`` (the first bar opens at its own close), so an order decided at
  the close of t fills at the next bar's open — the close of t — plus half the spread;
* ``high[t] = max(open[t], close[t])`` and ``low[t] = min(open[t], close[t])``: the range
  is the close-to-close move (range-based estimators then see |return|, a lower bound on the
  true range).

Missing values (holidays of one currency, a currency that starts later or stops): leading
and trailing gaps are trimmed to the span where every series has a value; an interior gap of
at most ``max_fill`` bars carries the last value forward (a stale fix, past data only);
a longer gap is an error naming the series and the dates. Every change goes into the notes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.common.errors import DataError

DEFAULT_MAX_FILL = 5
"""Longest interior gap (bars) carried forward: a week of daily fixes."""


def ohlc_from_close(close: pd.Series) -> pd.DataFrame:
    """OHLC bars from a close series by the convention in the module docstring (causal)."""
    values = close.to_numpy(np.float64)
    opens = np.empty_like(values)
    if values.size:
        opens[0] = values[0]
        opens[1:] = values[:-1]
    return pd.DataFrame({"open": opens, "high": np.maximum(opens, values), "low": np.minimum(opens, values),
                         "close": values}, index=close.index)


def align_closes(closes: pd.DataFrame, *, source: str, max_fill: int = DEFAULT_MAX_FILL,
                 lines: np.ndarray | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Apply the gap rule to close series (columns) on one clock; returns the frame and notes.

    ``lines`` optionally maps rows to file lines for the error message.
    """
    notes: list[str] = []
    present = closes.notna()
    if not present.any().all():
        empty = [str(c) for c in closes.columns[~present.any().to_numpy()]]
        raise DataError(f"no values at all for {', '.join(empty)} in the requested span", source=source,
                        field=empty[0], hint="choose another span or symbol")
    first = max(int(np.argmax(present[c].to_numpy())) for c in closes.columns)
    last = min(len(closes) - 1 - int(np.argmax(present[c].to_numpy()[::-1])) for c in closes.columns)
    if last <= first:
        raise DataError("the series have no common span (one ends before another starts)", source=source,
                        hint="choose symbols that overlap in time")
    if first > 0:
        late = [str(c) for c in closes.columns if not present[c].iloc[0]]
        notes.append(f"start moved to {closes.index[first].date()} where every series has a value "
                     f"({', '.join(late)} start later); {first} earlier rows dropped")
    if last < len(closes) - 1:
        early = [str(c) for c in closes.columns if not present[c].iloc[-1]]
        notes.append(f"end moved to {closes.index[last].date()} where every series still has a value "
                     f"({', '.join(early)} stop earlier); {len(closes) - 1 - last} later rows dropped")
    span = closes.iloc[first:last + 1]
    span_lines = None if lines is None else lines[first:last + 1]
    for col in span.columns:
        missing = span[col].isna().to_numpy()
        if not missing.any():
            continue
        # Lengths of runs of missing values.
        edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        longest = int((ends - starts).max())
        if longest > max_fill:
            k = int(np.argmax(ends - starts))
            a, b = span.index[starts[k]], span.index[ends[k] - 1]
            where = {} if span_lines is None else {"line": int(span_lines[starts[k]])}
            raise DataError(f"{longest} consecutive missing values for {col} from {a.date()} to {b.date()} "
                            f"(longer than the {max_fill}-bar fill limit)", source=source, field=str(col), **where,
                            hint=f"start after {b.date()}, drop {col}, or raise max_fill")
        notes.append(f"{col}: {int(missing.sum())} missing values in {len(starts)} gap(s) of at most {longest} "
                     "bar(s) carried forward from the last value")
    return span.ffill(), notes


__all__ = ["DEFAULT_MAX_FILL", "align_closes", "ohlc_from_close"]
