"""Default locations of every stage's inputs and outputs, relative to the project root (one place), and the one rule
that says where a relative path or store URI points (:func:`resolve_location`).

The **project root** is the folder of params.yaml: every relative path in params and every default location below is
relative to it (the CLI works there, :func:`project_root`). In a queued or temporary DVC experiment that folder is a
copy of the workspace under ``<workspace>/.dvc/tmp/exps/`` which DVC deletes afterwards: the run's own inputs and
outputs belong there, but shared records (the MLflow tracking store and its artifacts) resolve against the
**workspace root** (:func:`workspace_root`), so the experiment's runs land where the team looks.
"""

from __future__ import annotations

import re
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


#: where DVC runs queued (``dvc exp run --queue``, ``dvc queue start``) and temporary (``--temp``) experiments:
#: a copy of the workspace in a folder under ``<workspace>/.dvc/tmp/exps/`` (dvc.repo.experiments.utils.EXEC_TMP_DIR)
DVC_EXPERIMENT_COPIES = (".dvc", "tmp", "exps")
#: URI schemes whose ``scheme:///relative`` form names a file relative to a root (``scheme:////absolute`` is absolute)
FILE_SCHEMES: tuple[str, ...] = ("sqlite", "journal")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
#: tracking URIs that are names, not paths (MLflow's hosted stores)
NAMED_STORES = frozenset({"databricks", "databricks-uc", "uc"})


def project_root(params: Path | str) -> Path:
    """The project root of a params file: its folder, absolute."""
    return Path(params).resolve().parent


def workspace_root(project: Path | str) -> Path:
    """The workspace whose shared records a project root uses: the workspace a DVC experiment's copy was made from
    (a root under ``<workspace>/.dvc/tmp/exps/``), else the project root itself."""
    project = Path(project).resolve()
    parts = project.parts
    for i in range(len(parts) - len(DVC_EXPERIMENT_COPIES)):
        if parts[i + 1:i + 1 + len(DVC_EXPERIMENT_COPIES)] == DVC_EXPERIMENT_COPIES:
            return Path(*parts[:i + 1])
    return project


def resolve_location(value: str | Path, root: Path | str) -> str:
    """Where ``value`` points, made independent of the current directory: a relative file path is joined to ``root``;
    a file-backed store URI (``sqlite:///relative.db``, ``journal:///relative.log``, ``file:relative``) gets the
    absolute path of its file; absolute paths, in-memory databases and server URLs (``http://``, ``postgresql://``,
    ``databricks`` ...) are returned unchanged. ``root``: the project root for a run's own files, the workspace root
    for shared records (see the module docstring)."""
    text = str(value)
    root = Path(root).resolve()
    for scheme in FILE_SCHEMES:
        prefix = f"{scheme}:///"
        if text.startswith(prefix):
            rest = text[len(prefix):]
            if not rest or rest.startswith("/") or rest.startswith(":memory:"):
                return text
            query = ""
            if "?" in rest:
                rest, query = rest.split("?", 1)
                query = "?" + query
            return f"{scheme}:///{(root / rest).as_posix()}{query}"
    if text.startswith("file:"):
        rest = text[len("file:"):]
        return text if rest.startswith("/") else (root / rest).as_uri()
    if text in NAMED_STORES or (_URL.match(text) and not re.match(r"^[A-Za-z]:[\\/]", text)):  # not a drive letter
        return text
    return str(text if Path(text).is_absolute() else root / text)
