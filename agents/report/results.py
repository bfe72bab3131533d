"""Reading a stress-test run folder for the report: ``results.csv``, the per-step cells, the plan.

Why strict: the ranking is only as good as the table under it, so every malformed input is a
one-line :class:`simulator.common.errors.DataError` naming the file, line and column. The cell
columns come from the cell schema (:mod:`agents.evaluation.cells`, whose step fields are
declared in :mod:`envs.fields`); the report's own per-bar columns are declared here.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from agents.evaluation import cells
from agents.report.training_curves import run_folder_of
from simulator.common.configuration import safe_load
from simulator.common.errors import DataError

BASELINE_SCENARIO = "baseline"
KINDS = ("agent", "baseline")
IDENTITY_COLUMNS = ("policy", "kind", "scenario", "seed")
#: Metrics the headline needs; a results.csv without one of them is refused.
REQUIRED_METRICS = ("sharpe_ratio", "total_return", "max_drawdown", "time_over_limit", "stop_outs", "costs_paid")
REQUIRED_COLUMNS = IDENTITY_COLUMNS + REQUIRED_METRICS
#: Metrics shown where present (filled with NaN, shown as n/a, when a results.csv lacks them).
OPTIONAL_METRICS = (
    "n_bars", "initial_equity", "final_equity", "annualised_return", "annualised_volatility", "sortino_ratio",
    "cvar", "worst_bar_return", "var_exceptions", "var_exception_rate", "var_nominal_rate", "var_breaches",
    "breach_rate", "margin_calls", "turnover", "turnover_x_equity", "cost_bps_of_turnover", "mean_var_utilisation",
    "bars_per_year",
)
WINDOW_COLUMNS = ("stress_start", "stress_end")
CELL_REQUIRED = cells.REQUIRED
CELL_OPTIONAL = cells.OPTIONAL
STEP, T, TIMESTAMP, EQUITY, EQUITY_BEFORE = cells.columns("step", "t", "timestamp", "equity", "equity_before")
VAR, VAR_LIMIT, VAR_UTILISATION = cells.columns("var", "var_limit", "var_utilisation")
FLAGS: tuple[str, ...] = cells.columns("stopped_out", "var_breach", "margin_call")
"""The cell's flags the report reads (False where a cell lacks one)."""
STOPPED_OUT = FLAGS[0]
EXPOSURE_PREFIX = cells.EXPOSURE_PREFIX
# Columns :func:`read_cell` adds to the cell's own (per bar).
RET = "ret"
"""Simple return equity / equity_before - 1 (fraction)."""
PNL = "pnl"
"""equity - equity_before (account currency)."""
GROSS_EXPOSURE = "gross_exposure"
"""Sum over pairs of |exposure| (account currency)."""
LEVERAGE = "leverage"
"""Gross exposure / equity (x)."""
_RERUN = "re-run scripts/stress_test.py, whose results.csv has every column, or add the column"


def run_key(results: pd.DataFrame) -> list[str]:
    """The columns naming one run: policy, scenario, seed and, where recorded, the agent's training seed."""
    return ["policy", "scenario", "seed", *(["train_seed"] if "train_seed" in results.columns else [])]


def _line(row: int) -> int:
    return row + 2  # header is line 1


def load_results(path: str | Path) -> pd.DataFrame:
    """Read and validate a stress test's ``results.csv``: one row per (policy, scenario, seed).

    Why strict: the ranking is only as good as the table under it, so a missing column, an
    unknown ``kind``, a non-integer seed, an unparsable number or a duplicated run is a
    :class:`simulator.common.errors.DataError` — one line naming the file, the line, the column and
    what to do. Metric columns come back as floats (empty = NaN), ``seed`` as int,
    ``stress_start`` / ``stress_end`` as UTC timestamps (NaT when empty); optional metrics the
    file lacks are added as NaN and listed in ``frame.attrs["filled_columns"]``.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise DataError("file not found", source=source,
                        hint="pass the run folder written by scripts/stress_test.py (it holds results.csv)")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", source=source, hint=_RERUN) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"not a readable CSV file ({first})", source=source,
                        hint="check the separator (a comma) and the encoding (UTF-8)") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        more = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise DataError(f"missing column '{missing[0]}'{more}; the report needs {', '.join(REQUIRED_COLUMNS)}",
                        source=source, hint=_RERUN)
    if raw.empty:
        raise DataError("no rows: the stress test recorded no runs", source=source, hint=_RERUN)
    out = pd.DataFrame(index=raw.index)
    for col in ("policy", "scenario"):
        values = raw[col].str.strip()
        bad = values == ""
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError("empty value", source=source, line=_line(row), field=col,
                            hint="every run needs a policy and a scenario name")
        out[col] = values
    kind = raw["kind"].str.strip().str.lower()
    bad = ~kind.isin(KINDS)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"kind {raw['kind'].iloc[row]!r} is neither 'agent' nor 'baseline'", source=source,
                        line=_line(row), field="kind", hint="write agent for trained policies, baseline for rules")
    out["kind"] = kind
    seed = pd.to_numeric(raw["seed"].str.strip(), errors="coerce")
    bad = ~(np.isfinite(seed) & (seed == np.round(seed)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"seed {raw['seed'].iloc[row]!r} is not an integer", source=source, line=_line(row),
                        field="seed", hint="write the seed of the run as a whole number")
    out["seed"] = seed.astype(np.int64)
    for col in WINDOW_COLUMNS:
        text = raw[col].str.strip() if col in raw.columns else pd.Series("", index=raw.index)
        stamps = pd.to_datetime(text.where(text != ""), utc=True, errors="coerce", format="ISO8601")
        bad = (text != "") & stamps.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"cannot parse timestamp {text.iloc[row]!r}", source=source, line=_line(row), field=col,
                            hint="write ISO 8601 timestamps (2024-03-01T12:00:00Z) or leave it empty")
        out[col] = stamps
    filled = []
    for col in REQUIRED_METRICS + OPTIONAL_METRICS:
        if col not in raw.columns:
            filled.append(col)
            out[col] = np.nan
            continue
        text = raw[col].str.strip()
        values = pd.to_numeric(text.replace({"": "nan", "True": "1", "False": "0"}), errors="coerce")
        bad = values.isna() & ~text.str.lower().isin(("", "nan", "na", "n/a", "none", "null"))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"cannot parse number {text.iloc[row]!r}", source=source, line=_line(row), field=col,
                            hint="write a number, or leave the value empty when it is undefined")
        out[col] = values.astype(np.float64)
    extra = [c for c in raw.columns if c not in out.columns]
    for col in extra:  # kept as given (strings), for whoever reads the frame
        out[col] = raw[col]
    dup = out.duplicated(run_key(out), keep="first")  # an agent's training seeds are runs of their own
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        r = out.iloc[row]
        raise DataError(f"duplicate run: policy {r['policy']}, scenario {r['scenario']}, seed {r['seed']} appears "
                        f"twice", source=source, line=_line(row),
                        hint="keep one row per (policy, scenario, seed, train_seed)")
    kinds = out.groupby("policy")["kind"].nunique()
    if (kinds > 1).any():
        name = str(kinds[kinds > 1].index[0])
        row = int(np.flatnonzero((out["policy"] == name).to_numpy())[-1])
        raise DataError(f"policy {name} is listed both as an agent and as a baseline", source=source,
                        line=_line(row), field="kind", hint="give each policy one kind")
    out.attrs["filled_columns"] = filled
    out.attrs["source"] = source
    return out


def _name_variants(name: str) -> list[str]:
    safe = re.sub(r"[^A-Za-z0-9._=+-]+", "_", name)
    return list(dict.fromkeys([name, safe]))


def _as_bool(values: pd.Series) -> np.ndarray:
    if values.dtype == bool:
        return values.to_numpy()
    text = values.astype(str).str.strip().str.lower()
    return text.isin(("true", "1", "1.0", "yes")).to_numpy()


def read_cell(path: str | Path) -> pd.DataFrame:
    """Per-step records of one run, normalised for the report (one row per step, in order).

    Returns columns ``t`` (bar index; ``step`` when absent), ``timestamp`` (UTC, NaT when absent),
    ``equity``, ``equity_before`` (account currency), ``ret`` (per-bar simple return
    ``equity / equity_before - 1``; 0 where ``equity_before <= 0``), ``pnl`` (account currency),
    ``gross_exposure`` (sum of ``|exposure_<PAIR>|``, account currency), ``leverage`` (gross
    exposure / equity of the same row), ``var``, ``var_limit``, ``var_utilisation`` (NaN when
    absent), ``stopped_out``, ``var_breach``, ``margin_call`` (bool) and the cell's
    ``exposure_<PAIR>`` columns (account currency). An unreadable file or one without
    ``equity`` / ``equity_before`` raises a one-line :class:`DataError`.
    """
    path = Path(path)
    wanted = set(CELL_REQUIRED) | set(CELL_OPTIONAL)
    try:
        frame = pd.read_csv(path, usecols=lambda c: c in wanted or str(c).startswith(EXPOSURE_PREFIX))
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", source=str(path), hint="re-run this cell with scripts/stress_test.py") \
            from None
    except (OSError, EOFError, zlib.error, pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"cannot read the per-step records ({first})", source=str(path),
                        hint="re-run this cell with scripts/stress_test.py") from None
    missing = [c for c in CELL_REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"missing column '{missing[0]}'", source=str(path),
                        hint=f"per-step records need {' and '.join(CELL_REQUIRED)}; re-run scripts/stress_test.py")
    if frame.empty:
        raise DataError("no steps recorded", source=str(path), hint="re-run this cell with scripts/stress_test.py")
    if STEP in frame.columns:
        frame = frame.sort_values(STEP, kind="stable")
    frame = frame.reset_index(drop=True)
    n = len(frame)
    out = pd.DataFrame(index=frame.index)
    if T in frame.columns:
        out[T] = pd.to_numeric(frame[T], errors="coerce")
    elif STEP in frame.columns:
        out[T] = pd.to_numeric(frame[STEP], errors="coerce")
    else:
        out[T] = np.arange(n)
    if out[T].isna().any() or out[T].duplicated().any():
        out[T] = np.arange(n)  # no usable bar index: align by position
    out[T] = out[T].astype(np.int64)
    if TIMESTAMP in frame.columns:
        out[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True, errors="coerce", format="ISO8601")
    else:
        out[TIMESTAMP] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    for col in CELL_REQUIRED:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(np.float64)
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise DataError("not a finite number", source=str(path), row=row, field=col,
                            hint="re-run this cell with scripts/stress_test.py")
        out[col] = values
    eq, eq0 = out[EQUITY].to_numpy(), out[EQUITY_BEFORE].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out[RET] = np.where(eq0 > 0, eq / eq0 - 1.0, 0.0)
    out[PNL] = eq - eq0
    expo = exposure_columns(frame)
    exposures = frame[expo].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    gross = np.abs(exposures).sum(axis=1) if expo else np.full(n, np.nan)
    out[GROSS_EXPOSURE] = gross
    with np.errstate(divide="ignore", invalid="ignore"):
        out[LEVERAGE] = np.where(eq > 0, gross / eq, np.nan)
    for col in (VAR, VAR_LIMIT, VAR_UTILISATION):
        out[col] = pd.to_numeric(frame[col], errors="coerce").to_numpy(np.float64) if col in frame.columns \
            else np.full(n, np.nan)
    for col in FLAGS:
        out[col] = _as_bool(frame[col]) if col in frame.columns else np.zeros(n, dtype=bool)
    for j, col in enumerate(expo):
        out[col] = exposures[:, j]
    return out


def exposure_columns(frame: pd.DataFrame) -> list[str]:
    """The per-pair exposure columns (``exposure_<PAIR>``) of a cell or of :func:`read_cell`'s frame, in order."""
    return [str(c) for c in frame.columns if str(c).startswith(EXPOSURE_PREFIX)]


class CellStore:
    """The per-step records of a run folder, read on first use and kept in memory.

    Why a class: the state is real — the report reads the same cells for several tables and
    plots, and a cell that cannot be read is noted once (``problems``) rather than aborting the
    report. Cells live at ``cells/<policy>/<scenario>/seed-<seed>.csv.gz`` (``-train-<seed>`` before the
    extension for one of an agent's training seeds; ``.csv`` also
    accepted); names with characters outside ``[A-Za-z0-9._=+-]`` are also looked up with those
    replaced by ``_``.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.root = Path(run_dir) / "cells"
        self._cache: dict[tuple[str, str, int], pd.DataFrame | None] = {}
        self.problems: list[str] = []

    def path(self, policy: str, scenario: str, seed: int) -> Path | None:
        for p in _name_variants(policy):
            for s in _name_variants(scenario):
                for ext in (".csv.gz", ".csv"):
                    candidate = self.root / p / s / f"seed-{int(seed)}{ext}"
                    if candidate.is_file():
                        return candidate
                    # an agent of several training seeds: the curves show its lowest seed's run
                    found = {int(m.group(1)): f for f in (self.root / p / s).glob(f"seed-{int(seed)}-train-*{ext}")
                             if (m := re.fullmatch(rf"seed-{int(seed)}-train-(\d+){re.escape(ext)}", f.name))}
                    if found:
                        return found[min(found)]
        return None

    def get(self, policy: str, scenario: str, seed: int) -> pd.DataFrame | None:
        """The normalised records (:func:`read_cell`) of one run, or None when absent or unreadable."""
        key = (policy, scenario, int(seed))
        if key not in self._cache:
            frame = None
            found = self.path(*key)
            if found is not None:
                try:
                    frame = read_cell(found)
                except DataError as exc:
                    self.problems.append(str(exc))
            self._cache[key] = frame
        return self._cache[key]

    @property
    def exists(self) -> bool:
        return self.root.is_dir()


_SAME_RUN_METRICS = ("sharpe_ratio", "total_return", "max_drawdown", "costs_paid", "turnover_x_equity", "n_bars",
                     "var_exceptions", "time_over_limit")


def _metric_key(frame: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in _SAME_RUN_METRICS if c in frame.columns]
    return frame[cols].astype(np.float64).round(12)


def collapse_seed_invariant(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep one run of a scenario that gives every policy the same result on every seed.

    Why: the unstressed test data or a whole-run rate shock do not depend on the seed; counting
    their seeds as separate runs would shrink intervals to zero width without new information.
    """
    keep = pd.Series(True, index=results.index)
    invariant = []
    for scenario, g in results.groupby("scenario", sort=False):
        if g["seed"].nunique() < 2:
            continue
        per_model = ["policy", "train_seed"] if "train_seed" in g.columns else ["policy"]  # each training seed apart
        same = all(len(_metric_key(p).drop_duplicates()) == 1 for _, p in g.groupby(per_model, dropna=False))
        if same:
            first = g["seed"].min()
            keep[g.index[g["seed"] != first]] = False
            invariant.append(str(scenario))
    notes = []
    if invariant:
        notes.append(f"{', '.join(invariant)}: the same result on every seed (nothing in the scenario is drawn), "
                     f"so each counts as one run per policy, not one per seed.")
    return results[keep].reset_index(drop=True), notes


#: Relative difference below which two policies' metrics and positions count as the same (rounding).
SAME_TOLERANCE = 1e-9


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shapes and values equal to :data:`SAME_TOLERANCE` relative (NaN equal to NaN)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=SAME_TOLERANCE, atol=0.0, equal_nan=True))


def merge_identical_policies(results: pd.DataFrame, store: CellStore | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Show once the policies that act identically in every run (the first in name order stays).

    Two policies are identical when every (scenario, seed) run has the same metrics and, where
    per-step records exist, the same positions on the first shared run, both to a relative
    :data:`SAME_TOLERANCE`: rules that a VaR shield scales to the same limit position (the signal
    at 3x or at full leverage) differ only in the last bits of that scaling.
    """
    policies = sorted(results["policy"].unique())
    key = run_key(results)[1:]
    runs = {p: results[results["policy"] == p].sort_values(key, kind="stable") for p in policies}
    merged: dict[str, list[str]] = {}
    dropped: set[str] = set()
    for i, a in enumerate(policies):
        if a in dropped:
            continue
        for b in policies[i + 1:]:
            if b in dropped or runs[a]["kind"].iloc[0] != runs[b]["kind"].iloc[0]:
                continue
            ka, kb = runs[a][["scenario", "seed"]].to_numpy(), runs[b][["scenario", "seed"]].to_numpy()
            if ka.shape != kb.shape or not (ka == kb).all():
                continue
            if not _same(_metric_key(runs[a]).to_numpy(), _metric_key(runs[b]).to_numpy()):
                continue
            if store is not None:
                scenario, seed = ka[0]
                fa, fb = store.get(a, scenario, int(seed)), store.get(b, scenario, int(seed))
                if fa is not None and fb is not None:
                    cols = exposure_columns(fa)
                    if cols and not _same(fa[cols].to_numpy(), fb.reindex(columns=cols).to_numpy()):
                        continue
            merged.setdefault(a, []).append(b)
            dropped.add(b)
    notes = [f"{', '.join(bs)} acted like {a} in every run (same metrics and positions to {SAME_TOLERANCE:g} "
             f"relative: float rounding): shown once, as {a}." for a, bs in merged.items()]
    return results[~results["policy"].isin(dropped)].reset_index(drop=True), notes


def skipped_scenarios(run_dir: Path) -> list[str]:
    """Scenarios the stress test could not apply, with their reasons (from ``skipped.csv``)."""
    path = run_dir / "skipped.csv"
    if not path.is_file():
        return []
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return [f"{path}: unreadable list of skipped scenarios"]
    out = []
    for (scenario, reason), g in table.groupby(["scenario", "reason"], sort=True):
        seeds = ", ".join(str(int(x)) for x in sorted(g["seed"]))
        out.append(f"{scenario} (seed {seeds}) skipped: {reason}")
    return out


def read_yaml(path: Path) -> tuple[Any, str | None]:
    """A run folder's YAML (None when absent) and, when it cannot be read, why (a note, not an abort)."""
    if not path.is_file():
        return None, None
    try:
        return safe_load(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, f"{path.name} could not be read ({first})"


def run_cells(results: pd.DataFrame, policies: Sequence[str], scenarios: Sequence[str]) -> list[tuple[str, int]]:
    """(scenario, seed) pairs every one of ``policies`` ran, in scenario order then seed."""
    out = []
    for scenario in scenarios:
        g = results[results["scenario"] == scenario]
        seeds = None
        for p in dict.fromkeys(policies):
            s = set(g.loc[g["policy"] == p, "seed"].astype(int))
            seeds = s if seeds is None else seeds & s
        out += [(scenario, seed) for seed in sorted(seeds or ())]
    return out


def stress_window(results: pd.DataFrame, scenario: str, seed: int) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The (start, end) UTC stress window of one run, None when there is none recorded."""
    if scenario == BASELINE_SCENARIO:
        return None  # the unstressed test data has no stress window (whatever span the file gives)
    g = results[(results["scenario"] == scenario) & (results["seed"] == seed)]
    g = g[g["stress_start"].notna() & g["stress_end"].notna()]
    if g.empty:
        return None
    return g["stress_start"].iloc[0], g["stress_end"].iloc[0]


def data_notes(results: pd.DataFrame) -> list[str]:
    """Distinct data notes of the cells (source, spread and depth models, lookbacks in bars), in order."""
    if "data_notes" not in results.columns:
        return []
    seen: dict[str, None] = {}
    for text in results["data_notes"].dropna().astype(str):
        for note in text.split(" | "):
            if note.strip():
                seen.setdefault(note.strip(), None)
    return list(seen)


def training_runs(run_dir: Path, agents: Sequence[str]) -> tuple[dict[str, Path], list[str]]:
    """The agents' training run folders, from the stress run's ``plan.yaml``, and the agents whose folder is gone.

    Why both: a run folder that was moved or deleted is said in the report, not guessed.
    """
    if not agents:
        return {}, []
    plan, _ = read_yaml(run_dir / "plan.yaml")
    paths = {}
    for spec in (plan or {}).get("policies", []) if isinstance(plan, Mapping) else []:
        if isinstance(spec, Mapping) and spec.get("name") in agents and spec.get("model_path"):
            model = Path(str(spec["model_path"]))
            paths[str(spec["name"])] = run_folder_of(model if model.is_absolute() else run_dir / model)
    present = {name: path for name, path in paths.items() if path.is_dir()}
    return present, sorted(set(agents) - set(present))
