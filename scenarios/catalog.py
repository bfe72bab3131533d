"""Finding scenarios: the shipped library, user directories and ``$FXRISK_SCENARIOS``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from scenarios.errors import ScenarioError
from scenarios.schema import Scenario, load_scenario

ENV_VAR = "FXRISK_SCENARIOS"
SUFFIXES = (".yaml", ".yml")


def library_dir() -> Path:
    """The folder of the shipped scenario files (``scenarios/library/*.yaml``)."""
    return Path(__file__).resolve().parent / "library"


def scenario_dirs(extra_dirs: Sequence[str | Path] = ()) -> list[Path]:
    """Where scenarios are looked up, in order: the library, ``extra_dirs``, then the
    colon-separated folders of ``$FXRISK_SCENARIOS`` (empty entries ignored)."""
    dirs = [library_dir(), *(Path(d) for d in extra_dirs)]
    dirs += [Path(d) for d in os.environ.get(ENV_VAR, "").split(os.pathsep) if d.strip()]
    out: list[Path] = []
    for d in dirs:
        if d.resolve() not in {x.resolve() for x in out}:
            out.append(d)
    return out


def list_scenarios(extra_dirs: Sequence[str | Path] = ()) -> list[Scenario]:
    """Every scenario of the library and of the user's folders (``*.yaml``, ``*.yml``), loaded and
    validated; a folder that does not exist or two files with one name are errors."""
    found: list[Scenario] = []
    by_name: dict[str, Scenario] = {}
    for folder in scenario_dirs(extra_dirs):
        if not folder.is_dir():
            raise ScenarioError(str(folder), "<root>", "scenario folder does not exist",
                                f"check the path (extra_dirs or ${ENV_VAR})")
        for path in sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file()):
            scenario = load_scenario(path)
            if scenario.name in by_name:
                raise ScenarioError(scenario.path, "name", f"duplicate scenario name {scenario.name!r}, also "
                                    f"defined in {by_name[scenario.name].path}", "rename one of them")
            by_name[scenario.name] = scenario
            found.append(scenario)
    return found


def get_scenario(name_or_path: str | Path, extra_dirs: Sequence[str | Path] = ()) -> Scenario:
    """A scenario by library name (``snb_2015``) or by the path of a YAML file."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in SUFFIXES or os.sep in text or (os.altsep and os.altsep in text):
        return load_scenario(path)
    scenarios = list_scenarios(extra_dirs)
    for scenario in scenarios:
        if scenario.name == text:
            return scenario
    raise ScenarioError(text, "name", "unknown scenario",
                        f"choose one of {', '.join(s.name for s in scenarios)}, or give the path of a .yaml file")
