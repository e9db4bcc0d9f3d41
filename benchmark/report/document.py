"""A report as a list of blocks, rendered to Markdown and to one self-contained HTML page.

The HTML page embeds every figure as a base64 PNG data URI and its own CSS; it makes no external request. A short
inline script marks ``<body data-images-loaded="k/n">`` once the page has loaded (k images decoded out of n), so a
headless browser can check that every figure is visible.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["Bullets", "Code", "Figure", "Heading", "Paragraph", "Table", "to_html", "to_markdown"]


@dataclass(frozen=True)
class Heading:
    """A section heading; level 2 headings make the HTML table of contents."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """Text; ``**bold**`` and ```code``` are rendered in both formats; a warning is boxed in HTML."""

    text: str
    warning: bool = False


@dataclass(frozen=True)
class Bullets:
    """A bulleted list of short texts (same inline markup as Paragraph)."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Code:
    """A preformatted block (e.g. params)."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells (strings); cells equal to one of ``flags`` are emphasised."""

    frame: pd.DataFrame
    caption: str = ""
    flags: tuple[str, ...] = field(default_factory=tuple)
    css_class: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG under the figures folder, with a title (alt text) and a caption."""

    file: str
    title: str
    caption: str = ""


Block = Heading | Paragraph | Bullets | Code | Table | Figure


def _md_cell(text: str, flags: tuple[str, ...]) -> str:
    text = str(text).replace("|", "\\|")
    return f"**{text}**" if text in flags else text


def to_markdown(blocks: list[Block], *, figures_rel: str = "figures") -> str:
    """Markdown (GitHub flavour); figures are linked relative to the report as ``<figures_rel>/<file>``."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text)
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Code):
            out.append("```\n" + block.text.rstrip("\n") + "\n```")
        elif isinstance(block, Table):
            frame = block.frame
            lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "|".join("---" for _ in frame.columns) + "|"]
            lines += ["| " + " | ".join(_md_cell(v, block.flags) for v in row) + " |"
                      for row in frame.itertuples(index=False)]
            if block.caption:
                lines.insert(0, f"*{block.caption}*\n")
            out.append("\n".join(lines))
        elif isinstance(block, Figure):
            out.append(f"![{block.title}]({figures_rel}/{block.file})" + (f"\n\n*{block.caption}*" if block.caption else ""))
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.88em}th,td{border:1px solid #ccc;padding:3px 7px;text-align:left}
th{background:#f0f0f0}tr:nth-child(even) td{background:#fafafa}td.flag,tr:nth-child(even) td.flag{background:#ffe0e0;font-weight:bold}
caption{caption-side:top;text-align:left;font-style:italic;padding:0.3em 0}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-style:italic;font-size:0.9em}
pre{background:#f6f6f6;padding:0.8em;overflow:auto;font-size:0.85em}code{background:#f3f3f3;padding:0 2px}
nav ul{display:flex;flex-wrap:wrap;gap:0 1.4em;margin:0.2em 0;padding-left:1.2em}.warning{background:#fff3cd;border:1px solid #e0c060;padding:0.6em}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', ok + '/' + images.length);
});
"""


def to_html(blocks: list[Block], *, title: str, figures_dir: Path) -> str:
    """One self-contained HTML page: inline CSS, figures from ``figures_dir`` as base64 data URIs, a table of contents."""
    body: list[str] = []
    toc = [f'<li><a href="#{_anchor(b.text)}">{html.escape(b.text)}</a></li>' for b in blocks
           if isinstance(b, Heading) and b.level == 2]
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f'<h{block.level} id="{_anchor(block.text)}">{html.escape(block.text)}</h{block.level}>')
        elif isinstance(block, Paragraph):
            css = ' class="warning"' if block.warning else ""
            body.append(f"<p{css}>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Code):
            body.append(f"<pre>{html.escape(block.text)}</pre>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block.frame.columns)
            rows = "".join("<tr>" + "".join(
                f'<td class="flag">{html.escape(str(v))}</td>' if str(v) in block.flags else f"<td>{html.escape(str(v))}</td>"
                for v in row) + "</tr>" for row in block.frame.itertuples(index=False))
            caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
            css = f' class="{block.css_class}"' if block.css_class else ""
            body.append(f"<table{css}>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Figure):
            data = base64.b64encode((figures_dir / block.file).read_bytes()).decode("ascii")
            caption = f"<figcaption>{_inline(block.caption)}</figcaption>" if block.caption else ""
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.title)}">{caption}</figure>')
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head>\n<body><h1>{html.escape(title)}</h1>"
            f"<nav><b>Contents</b><ul>{''.join(toc)}</ul></nav>\n" + "\n".join(body)
            + f"\n<script>{_SCRIPT}</script></body></html>\n")
