"""The project installs our packages, and our generic import names resolve to this repository."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
import zipfile
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
    assert sorted({p.split(".")[0] for p in packages}) == sorted(OUR_PACKAGES)
    assert "tests" not in packages and "scripts" not in packages
    assert "Private :: Do Not Upload" in meta["project"]["classifiers"]
    assert meta["project"]["requires-python"] == ">=3.11"
    deps = " ".join(meta["project"]["dependencies"])
    for required in ["gymnasium", "stable-baselines3", "torch", "numpy", "pandas", "arch", "scikit-learn",
                     "yfinance", "ta", "tensorboard"]:
        assert required in deps


def test_simulator_does_not_import_gymnasium() -> None:
    for path in (REPO / "simulator").rglob("*.py"):
        text = path.read_text()
        assert "import gymnasium" not in text and "from gymnasium" not in text, path


#: Files the code reads at run time: the wheel must carry each of them.
DATA_FILES = ("agents/hyperparams/*.yaml", "agents/hyperparams/search/*.yaml", "scenarios/library/*.yaml",
              "simulator/data/*.yaml",
              "simulator/data/*.csv", "simulator/data/*.txt")

RUN_FROM_WHEEL = r"""
import sys
import gymnasium as gym
import envs
assert envs.__file__.startswith(sys.argv[1]), envs.__file__
from agents.hyperparams import DEFAULT_CONFIG, TrainConfig
from envs.config import EnvConfig
from scenarios import list_scenarios
from simulator.data.sample import load_sample
TrainConfig.from_yaml(DEFAULT_CONFIG)
env = gym.make("FxRisk-v0", market=load_sample(), config=EnvConfig(vol_model="ewma", var_window=200))
env.reset(seed=0)
steps = 0
while True:
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    steps += 1
    if terminated or truncated:
        break
print(steps, len(list_scenarios(())))
"""


def test_the_wheel_carries_every_data_file_and_runs_outside_the_repository(tmp_path) -> None:
    # Arrange: a wheel built from the repository (no network: the environment's setuptools)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # Assert: every data file the code reads is inside
    for pattern in DATA_FILES:
        files = [p.relative_to(REPO).as_posix() for p in REPO.glob(pattern)]
        assert files and set(files) <= names, pattern
    assert not any(n.startswith(("tests/", "scripts/")) for n in names)
    # Act: install it into a fresh virtual environment away from the repository (its dependencies
    # from this one's site-packages as a plain path: no editable finder, so the repository is not seen)
    fresh = tmp_path / "fresh-venv"
    subprocess.run([sys.executable, "-m", "venv", str(fresh)], check=True, capture_output=True, timeout=300)
    python = fresh / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "fxrisk-test-deps.pth").write_text("\n".join(deps) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(python), "-s", "-c", RUN_FROM_WHEEL, str(site)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    steps, scenarios = map(int, out.stdout.split())
    assert steps > 100 and scenarios >= 13


def test_scenarios_import_nothing_from_envs() -> None:
    # The data flow runs one way: simulator -> scenarios -> envs (scenarios change broker settings, not envs).
    for path in (REPO / "scenarios").glob("*.py"):
        text = path.read_text()
        assert "from envs" not in text and "import envs" not in text, path


@pytest.mark.parametrize(("package", "forbidden"), [("simulator", ("envs", "agents", "scenarios", "forecasters")),
                                                    ("forecasters", ("envs", "agents", "scenarios")),
                                                    ("envs", ("agents",))])
def test_the_data_flow_runs_one_way(package, forbidden) -> None:
    """simulator -> forecasters -> scenarios -> envs -> agents: no module imports from further down the flow."""
    for path in (REPO / package).rglob("*.py"):
        text = path.read_text()
        for name in forbidden:
            assert f"from {name}." not in text and f"from {name} import" not in text and f"import {name}." not in text, \
                (path, name)
