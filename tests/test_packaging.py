"""The project installs our packages, and our generic import names resolve to this repository."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUR_PACKAGES = ["envs", "agents", "forecasters", "simulator", "scenarios"]


@pytest.mark.parametrize("name", OUR_PACKAGES)
def test_import_name_resolves_to_this_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().parent == REPO / name


def test_pyproject_lists_packages_explicitly_and_is_private() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = meta["tool"]["setuptools"]["packages"]
    assert sorted(packages) == sorted(OUR_PACKAGES)
    assert "tests" not in packages and "scripts" not in packages
    assert "Private :: Do Not Upload" in meta["project"]["classifiers"]
    assert meta["project"]["requires-python"] == ">=3.11"
    deps = " ".join(meta["project"]["dependencies"])
    for required in ["gymnasium", "stable-baselines3", "torch", "numpy", "pandas", "arch", "scikit-learn",
                     "yfinance", "ta", "tensorboard"]:
        assert required in deps


def test_simulator_does_not_import_gymnasium() -> None:
    for path in (REPO / "simulator").glob("*.py"):
        text = path.read_text()
        assert "import gymnasium" not in text and "from gymnasium" not in text, path
