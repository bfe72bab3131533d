"""Publishing a report: the self-contained HTML page and the atomic rename of the finished folder.

Why apart: a report folder is complete or absent; how it becomes visible does not depend on
what is in it.
"""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1200px; margin: 1.5em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; }
th { background: #f2f2f2; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 0.2em; }
.verdict { font-size: 1.05em; }
footer, .footer { color: #666; font-size: 0.85em; }
"""


def render_html(markdown_text: str, folder: str | Path, *, title: str) -> str:
    """Self-contained HTML of the report: Markdown converted, each relative PNG embedded as base64."""
    import markdown

    folder = Path(folder)
    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")

    def embed(match: re.Match[str]) -> str:
        name = html.unescape(match.group(2))
        png = folder / name
        if "/" in name or "\\" in name or not png.is_file():
            return match.group(0)
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        return f"{match.group(1)}data:image/png;base64,{data}{match.group(3)}"

    body = re.sub(r'(<img[^>]*?\bsrc=")([^"]+?\.png)(")', embed, body)
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def publish(tmp: Path, parent: Path, base: str = "report") -> Path:
    """Rename the finished temporary folder to ``report`` or, when taken, ``report-2``, ``report-3``, ...

    The temporary folder and files are private while built (``mkdtemp`` / ``mkstemp``); they get
    the usual permissions under the user's umask before they appear under the final name.
    """
    mask = os.umask(0)
    os.umask(mask)
    for item in tmp.iterdir():
        item.chmod(0o666 & ~mask)
    tmp.chmod(0o777 & ~mask)
    for n in range(1, 10_000):
        candidate = parent / (base if n == 1 else f"{base}-{n}")
        if candidate.exists() or candidate.is_symlink():
            continue
        try:
            os.rename(tmp, candidate)
        except OSError:  # someone else took the name in the meantime
            if candidate.exists():
                continue
            raise
        return candidate
    raise RuntimeError(f"{parent}: no free report folder name (report-2 ... report-9999 all exist)")
