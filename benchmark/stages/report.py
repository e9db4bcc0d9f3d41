"""Stage ``report``: reports/report.md and a self-contained reports/report.html from the evaluate stage's results."""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path

import pandas as pd

from benchmark import atomic, paths
from benchmark.config import Settings
from benchmark.errors import BenchmarkError
from benchmark.report.reproduction import reproduction_rows

log = logging.getLogger(__name__)


def _fmt(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.2f}"


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (numbers with 2 decimals)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) if isinstance(v, float) else str(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def run(settings: Settings, metrics_path: Path = paths.METRICS_JSON, md_path: Path = paths.REPORT_MD,
        html_path: Path = paths.REPORT_HTML) -> Path:
    """Write the Markdown and HTML reports."""
    if not metrics_path.exists():
        raise BenchmarkError(f"{metrics_path}: metrics not found; run `benchmark evaluate` first")
    doc = json.loads(metrics_path.read_text())
    table = reproduction_rows(doc)
    md = "\n\n".join([
        "# Cross-modal bias correction: benchmark report",
        f"Source of the per-image outputs: **{doc['source']}**. All numbers in percent.",
        "## Reproduction of the paper's table",
        markdown_table(table),
    ]) + "\n"
    atomic.write_text(md_path, md)
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>Benchmark report</title></head><body>"
            "<h1>Cross-modal bias correction: benchmark report</h1>"
            f"<p>Source of the per-image outputs: <b>{html.escape(doc['source'])}</b>. All numbers in percent.</p>"
            "<h2>Reproduction of the paper's table</h2>" + table.to_html(index=False, float_format="%.2f", na_rep="n/a")
            + "</body></html>\n")
    atomic.write_text(html_path, page)
    log.info("report: %s, %s", md_path, html_path)
    return md_path
