"""Default locations of every stage's inputs and outputs, relative to the project root (one place)."""

from __future__ import annotations

from pathlib import Path

PARAMS = Path("params.yaml")
LOCK = Path("constraints.txt")  # exact package versions (pip constraints); benchmark/infra/version_lock.py
OUTPUTS_DIR = Path("data/outputs")
PUBLISHED_DIR = Path("data/published")
SCENARIOS_DIR = Path("benchmark/scenarios")  # the shipped simulation scenarios (package data)
DEFAULT_SCENARIO = SCENARIOS_DIR / "paper.yaml"  # the sim source's default input
CHIPS_DIR = Path("data/chips")  # aligned face chips and the image manifest (a persistent DVC output of fetch)
MODELS_DIR = Path("models")  # frozen-model weights supplied by the user (never committed)
RESULTS_DIR = Path("results")
PREDICTIONS = RESULTS_DIR / "predictions.parquet"
STATS = RESULTS_DIR / "stats.parquet"
CONFUSION = RESULTS_DIR / "confusion.parquet"
POWER = RESULTS_DIR / "power.json"  # minimum detectable effects (benchmark power)
REPORTS_DIR = Path("reports")
METRICS_JSON = REPORTS_DIR / "metrics.json"
CELLS_CSV = REPORTS_DIR / "cells.csv"
# git-tracked paths (not ignored), so DVC experiments carry them: the headline metrics and their per-cell plots
HEADLINE_JSON = REPORTS_DIR / "headline.json"
PLOTS_DIR = REPORTS_DIR / "plots"
REPORT_MD = REPORTS_DIR / "report.md"
REPORT_HTML = REPORTS_DIR / "report.html"
FIGURES_DIR = REPORTS_DIR / "figures"
TUNE_DIR = REPORTS_DIR / "tune"
#: the files a study leaves in its folder (TUNE_DIR by default)
TUNE_BEST_PARAMS = "best_params.yaml"
TUNE_TRIALS = "trials.csv"
TUNE_IMPORTANCES = "importances.json"
TUNE_FIGURE = "study.png"
LOCKS_DIR = Path(".locks")  # one lock file per stage of this working copy (benchmark/infra/process_locks.py; git-ignored)


def outputs_table(dataset: str, outputs_dir: Path = OUTPUTS_DIR) -> Path:
    """Path of one dataset's outputs table: ``data/outputs/<dataset>.parquet``."""
    return outputs_dir / f"{dataset}.parquet"
