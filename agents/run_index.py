"""An ``index.html`` at the root of a run folder that links everything the run wrote.

Why: the main job writes a dozen folders (data summary, forecast report, training runs, stress
runs and their reports); a reader should open one page and find every report, manifest and the
TensorBoard command, with links that work from the folder itself (relative paths, no server).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from simulator.common.run_folder import atomic_write_text

#: (glob relative to the root, label) in the order the page lists them.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("**/report*/interactive.html", "Stress-test reports (interactive)"),
    ("**/report*/report.html", "Stress-test reports"),
    ("**/forecast-*/report.md", "Forecast and VaR backtest reports"),
    ("**/var-backtest-*/report.html", "VaR backtest reports"),
    ("**/data-*/stylised_facts.csv", "Data summaries (stylised facts)"),
    ("**/train-*/metrics.yaml", "Training runs (metrics)"),
    ("**/manifest.yaml", "Manifests (command, git revision, library versions, resolved config)"),
)


def run_links(root: Path) -> dict[str, list[Path]]:
    """Files under ``root`` by section (paths relative to ``root``, sorted; ``.partial`` folders left out)."""
    out: dict[str, list[Path]] = {}
    for pattern, label in SECTIONS:
        found = sorted(p.relative_to(root) for p in root.glob(pattern)
                       if p.is_file() and not any(part.endswith(".partial") for part in p.relative_to(root).parts))
        if found:
            out[label] = found
    return out


def write_index(root: str | Path, *, title: str, summary: str = "", tensorboard: Sequence[str] | None = None) -> Path:
    """Write ``root/index.html`` (relative links to every report, manifest and TensorBoard log) and return it.

    ``tensorboard``: the commands to show under "Learning curves" (default one on ``root/training``,
    or ``root``). A job that writes into a ``.partial`` root passes commands with its final path.
    """
    root = Path(root)
    links = run_links(root)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if summary:
        parts.append(f"<p>{html.escape(summary)}</p>")
    for label, paths in links.items():
        items = "".join(f'<li><a href="{html.escape(p.as_posix())}">{html.escape(p.as_posix())}</a></li>'
                        for p in paths)
        parts.append(f"<h2>{html.escape(label)}</h2><ul>{items}</ul>")
    boards = sorted({p.parent.relative_to(root) for p in root.glob("**/tensorboard/**/events.out.tfevents.*")
                     if not any(x.endswith(".partial") for x in p.relative_to(root).parts)})
    if boards:
        if tensorboard is None:
            tensorboard = [f"tensorboard --logdir {root / 'training' if (root / 'training').is_dir() else root}"]
        commands = "\n".join(html.escape(c) for c in tensorboard)
        parts.append(f"<h2>Learning curves</h2><p>Open TensorBoard on the training runs:</p><pre>{commands}</pre>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
            "li{margin:.2em 0}pre{background:#f4f4f4;padding:.6em}</style></head><body>"
            + "".join(parts) + "</body></html>\n")
    return atomic_write_text(root / "index.html", page)


__all__ = ["SECTIONS", "run_links", "write_index"]
