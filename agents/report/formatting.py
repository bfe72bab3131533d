"""Numbers and Markdown as the report writes them: one place for "n/a", percentages, p-values, tables.

Why apart: the ranking's tier reasons, the verdict, the tables and the section text all quote
numbers, and they must read the same everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import pandas as pd


def minus(text: str) -> str:
    """Hyphens as typographic minus signs (numbers in running text)."""
    return text.replace("-", "\u2212")


def fnum(x: float, digits: int = 2, *, signed: bool = False) -> str:
    """``x`` to ``digits`` decimals (``+`` shown when ``signed``); n/a when undefined."""
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def pct(x: float, digits: int = 1) -> str:
    """A fraction as a percentage; n/a when undefined."""
    return "n/a" if x is None or not math.isfinite(float(x)) else f"{100 * x:.{digits}f}%"


def interval(point: float, low: float, high: float, digits: int = 2) -> str:
    """``point [low, high]``; the point alone when there is no interval (one run)."""
    if not math.isfinite(point):
        return "n/a"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def p_text(p: float) -> str:
    """A p-value as ``p = 0.042`` or ``p < 0.001``."""
    if not math.isfinite(p):
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def money_text(x: float) -> str:
    """Account currency: whole units from 100 up, cents below."""
    return "n/a" if not math.isfinite(x) else f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def md_escape(text: object) -> str:
    """Escape text for Markdown: emphasis, code spans, table pipes and anything that could open an HTML tag."""
    s = str(text).replace("\\", "\\\\")
    for ch in "`*|":
        s = s.replace(ch, "\\" + ch)
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", s)  # only what could open an HTML tag


def markdown_table(frame: pd.DataFrame, *, left: Iterable[str] = ()) -> str:
    """A GitHub-style Markdown table of ``frame`` (cells as given, ``str``'d), padded to align.

    Why our own: ``DataFrame.to_markdown`` needs ``tabulate``, which the project does not
    install. Columns named in ``left`` are left-aligned, the rest right-aligned; pipes and
    Markdown markup in cells are escaped. Readable as plain text too (the CLI prints it).
    """
    left = set(left)
    cols = [str(c) for c in frame.columns]
    body = [[md_escape(v) for v in row] for row in frame.astype(object).itertuples(index=False, name=None)]
    head = [md_escape(c) for c in cols]
    widths = [max([len(h), 3, *(len(r[j]) for r in body)]) for j, h in enumerate(head)]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if col in left else c.rjust(w)
                                 for c, w, col in zip(cells, widths, cols, strict=True)) + " |"

    rule = "|" + "|".join(("-" * (w + 2)) if col in left else ("-" * (w + 1) + ":")
                          for w, col in zip(widths, cols, strict=True)) + "|"
    return "\n".join([fmt(head), rule, *(fmt(r) for r in body)])
