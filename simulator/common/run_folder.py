"""Run folders that reproduce their run, written atomically.

Why: results must never be overwritten or half-written. Each run gets a fresh folder;
files are written to a temporary name and renamed into place; the folder records the
command line, git revision, library versions and resolved config (DESIGN.md rule 9).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from simulator.common.configuration import safe_load

TRACKED_LIBRARIES = (
    "numpy", "pandas", "arch", "scikit-learn", "torch", "gymnasium", "stable-baselines3",
    "ta", "yfinance", "tensorboard", "scipy", "pyyaml", "sb3-contrib", "numba", "matplotlib", "currencyconverter",
)
REPO_ROOT = Path(__file__).resolve().parents[2]


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_csv(path: str | Path, frame: pd.DataFrame, **kwargs: Any) -> Path:
    return atomic_write_text(path, frame.to_csv(**kwargs))


def git_revision(repo: Path = REPO_ROOT) -> str:
    """``HEAD`` commit (with ``-dirty`` when the tree has changes), or ``unknown`` outside git."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


class RunFolder:
    """A fresh run folder, built under a ``.partial`` name and renamed when the run completes.

    Use as a context manager: on success the folder is renamed to its final name; on an
    exception it stays ``<name>.partial`` so nobody mistakes it for a finished run.
    """

    def __init__(self, root: str | Path, prefix: str, *, config: Mapping[str, Any] | None = None,
                 argv: list[str] | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
        for n in range(1000):
            name = f"{prefix}-{stamp}" + (f"-{n}" if n else "")
            final = self.root / name
            partial = self.root / f"{name}.partial"
            if final.exists() or partial.exists():
                continue
            try:
                partial.mkdir()
            except FileExistsError:
                continue
            break
        else:  # pragma: no cover - a thousand runs in one second
            raise RuntimeError(f"cannot create a fresh run folder under {self.root}")
        self.final_path = final
        self.path = partial
        self.manifest = {
            "created_utc": stamp,
            "command": " ".join(argv if argv is not None else sys.argv),
            "git_revision": git_revision(),
            "versions": library_versions(),
            "config": dict(config or {}),
        }
        self.write_yaml("manifest.yaml", self.manifest)

    def add_to_manifest(self, key: str, value: Any) -> None:
        """Record ``value`` under ``key`` in ``manifest.yaml`` (e.g. what the data lacked and what stood in)."""
        self.manifest[key] = value
        self.write_yaml("manifest.yaml", self.manifest)

    @classmethod
    def reopen(cls, path: str | Path, argv: list[str] | None = None) -> RunFolder:
        """An existing run folder (``<name>.partial`` or finished), to continue a killed run in it.

        The manifest keeps its original entries and lists each resumption (command, revision).
        """
        path = Path(path)
        manifest_path = path / "manifest.yaml"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{path}: not a run folder (no manifest.yaml) — pass a folder under runs/")
        self = cls.__new__(cls)
        self.root = path.parent
        self.path = path
        self.final_path = path.with_name(path.name.removesuffix(".partial"))
        self.manifest = safe_load(manifest_path.read_text(encoding="utf-8")) or {}
        self.manifest.setdefault("resumed", []).append({
            "utc": _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S"),
            "command": " ".join(argv if argv is not None else sys.argv),
            "git_revision": git_revision(),
        })
        self.write_yaml("manifest.yaml", self.manifest)
        return self

    def file(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> Path:
        return atomic_write_text(self.path / name, text)

    def write_yaml(self, name: str, data: Any) -> Path:
        return self.write_text(name, yaml.safe_dump(data, sort_keys=False, default_flow_style=False))

    def write_csv(self, name: str, frame: pd.DataFrame, **kwargs: Any) -> Path:
        return atomic_write_csv(self.path / name, frame, **kwargs)

    def finish(self) -> Path:
        os.replace(self.path, self.final_path)
        self.path = self.final_path
        return self.final_path

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
