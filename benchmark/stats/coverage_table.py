"""The measured-coverage table shipped with the package (``benchmark/stats/coverage.csv``): its columns, reading it,
and merging a study's rows into it. Written by ``benchmark simulate coverage`` (:mod:`benchmark.studies.coverage_study`),
read by the report's marks (:mod:`benchmark.report.coverage_marks`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from benchmark.infra import atomic
from benchmark.infra.errors import BenchmarkError

__all__ = ["MEASURED_COLUMNS", "merge_measured", "read_measured", "shipped"]

#: the measured coverage table shipped with the package (the report marks families that fall short at a design)
MEASURED_COLUMNS = ["scenario", "comparison", "dataset", "attribute", "n_subjects", "n_images", "ci_method", "ci",
                    "n_resamples", "replicates", "task", "metric", "kind", "coverage", "worst_row", "width",
                    "rejection"]


def shipped() -> pd.DataFrame:
    """The shipped table (empty with its columns if the package has none)."""
    path = resources.files("benchmark") / "stats" / "coverage.csv"
    return read_measured(str(path)) if path.is_file() else pd.DataFrame(columns=MEASURED_COLUMNS)


def read_measured(path: Path | str) -> pd.DataFrame:
    """A measured table as written by :func:`merge_measured`; the scenario ``null`` stays a name (not a missing
    value), only an empty ``rejection`` (estimates have no test) is missing."""
    return pd.read_csv(path, keep_default_na=False, na_values={"rejection": [""]})


def merge_measured(path: Path, rows: pd.DataFrame) -> Path:
    """Write ``rows`` (:func:`measured_rows`) into the measured table at ``path``, replacing the rows of the same study
    (scenario, comparison, dataset, attribute and statistics settings); atomic."""
    key = ["scenario", "comparison", "dataset", "attribute", "ci_method", "ci", "n_resamples"]
    old = read_measured(path) if path.exists() else pd.DataFrame(columns=MEASURED_COLUMNS)
    if list(old.columns) != MEASURED_COLUMNS:
        raise BenchmarkError(f"{path}: columns {list(old.columns)}, expected {MEASURED_COLUMNS}")
    study = rows[key].drop_duplicates()
    kept = old.merge(study, on=key, how="left", indicator=True).query("_merge == 'left_only'")[MEASURED_COLUMNS]
    merged = pd.concat([kept, rows], ignore_index=True) if not kept.empty else rows
    merged = merged.sort_values(["dataset", "attribute", "scenario", "comparison", "task", "metric", "kind"],
                                kind="stable")
    atomic.write_text(path, merged.to_csv(index=False))
    return path
