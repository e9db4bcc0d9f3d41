"""docs/STATISTICS.md's validation tables from a folder of row-level studies (``benchmark simulate table``).

The folder holds the row tables that ``benchmark simulate coverage --rows`` and ``benchmark simulate plasmode --rows``
write (:func:`benchmark.stats.rowcoverage.row_table`), named ``<dataset>_<scenario>_<comparison>[_<seed set>].csv``
(scenario ``age``: the attribute ``age_group``, else ``gender``) and ``plasmode_<name>.csv``, and optionally the
``widths_published.csv`` of ``benchmark simulate widths``. Per family (task x metric), kind (estimate, difference)
and design, and for each interval method of :data:`METHODS`:

- **coverage** pooled over the design's studies (every interval of the family in every study counts once; the
  differences of the ``methods`` and A/A studies only: a composite study's compared set is not a method), with the
  **lowest row** in parentheses (the least covered metric row of any one study), and the **median width** (per
  study the median over the family's rows of each row's median width, then the median over the studies);
- the permutation test's **rejection rate** per study (the same for every interval method);
- the plasmode studies' coverage per family, and the widths on the published outputs as ratios to BCa's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.infra.errors import BenchmarkError

__all__ = ["METHODS", "coverage_markdown", "load", "plasmode_markdown", "rejection_markdown", "tables",
           "widths_markdown"]

#: the interval methods compared: the construction of issue 23, the plain bootstrap, the previous default
METHODS: tuple[str, ...] = ("calibrated", "bca", "bound")
#: the families' order in the tables
ORDER: tuple[str, ...] = ("cell", "signed_gap", "macro", "gap", "pair_gap", "largest_gap", "average_gap")
_DATASETS = {"faces": "FACES (171 people)", "adfes": "ADFES (22 people)"}


def _study(name: str) -> dict[str, str]:
    """``faces_paper_methods_seed2`` -> dataset, scenario, comparison, attribute, design label."""
    parts = name.split("_")
    if len(parts) < 3 or parts[0] not in _DATASETS:
        raise BenchmarkError(f"{name}.csv: expected <dataset>_<scenario>_<comparison>[_<seeds>].csv with dataset one "
                             f"of {', '.join(_DATASETS)}")
    attribute = "age_group" if parts[1] == "age" else "gender"
    return {"dataset": parts[0], "scenario": parts[1], "comparison": parts[2], "attribute": attribute,
            "design": f"{_DATASETS[parts[0]]}, {attribute}"}


def load(folder: Path | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The simulator studies' row tables (with ``study`` and :func:`_study`'s columns) and the plasmode studies'."""
    folder = Path(folder)
    simulated, plasmode = [], []
    for path in sorted(folder.glob("*.csv")):
        name = path.name.removesuffix(".csv")
        if name.endswith(".families") or name.startswith("widths"):
            continue
        rows = pd.read_csv(path, keep_default_na=False, na_values=[""])
        if name.startswith("plasmode"):
            plasmode.append(rows.assign(study=name))
        else:
            simulated.append(rows.assign(study=name, **_study(name)))
    if not simulated:
        raise BenchmarkError(f"{folder}: no row-level study tables (<dataset>_<scenario>_<comparison>.csv)")
    return (pd.concat(simulated, ignore_index=True),
            pd.concat(plasmode, ignore_index=True) if plasmode else pd.DataFrame())


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by design (FACES before ADFES, gender before age_group), kind (estimates first), task (the attribute
    first) and :data:`ORDER`."""
    def rank(values: pd.Series, order: list[str]) -> np.ndarray:
        return np.array([order.index(v) if v in order else len(order) for v in values])

    designs = [f"{label}, {a}" for a in ("gender", "age_group") for label in _DATASETS.values()]
    keys = (rank(frame["metric"], list(ORDER)), frame["_task"].to_numpy(), rank(frame["kind"], ["estimate", "difference"]),
            rank(frame["design"], designs))
    return frame.iloc[np.lexsort(keys)]


def _families(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Pooled coverage, lowest row and median width per family of ``rows`` (row tables), one column set per method."""
    rows = rows[rows["ci_method"].isin(METHODS)].assign(hits=lambda r: r["coverage"] * r["n"])
    per_study = rows.groupby(by + ["ci_method"] + ([] if "study" in by else ["study"]), sort=False).agg(
        hits=("hits", "sum"), n=("n", "sum"), lowest=("coverage", "min"), width=("median_width", "median"))
    fam = per_study.groupby(by + ["ci_method"], sort=False).agg(
        hits=("hits", "sum"), n=("n", "sum"), lowest=("lowest", "min"), width=("width", "median"))
    fam["coverage"] = fam["hits"] / fam["n"]
    return fam.reset_index()


def _cell(coverage: float, lowest: float) -> str:
    return "" if np.isnan(coverage) else f"{100 * coverage:.1f} ({100 * lowest:.1f})"


def coverage_markdown(rows: pd.DataFrame) -> str:
    """The coverage and width table (see the module docstring)."""
    kept = rows[(rows["kind"] == "estimate") | rows["comparison"].isin(["methods", "aa"])]
    by = ["design", "kind", "task", "metric"]
    fam = _families(kept, by)
    wide = _flat(fam.pivot_table(index=by, columns="ci_method", values=["coverage", "lowest", "width"], sort=False))
    wide = _ordered(wide.assign(_task=np.where(wide["task"] == "emotion", 1, 0)))
    lines = ["| design | kind | task | metric | " + " | ".join(f"{m}: coverage (lowest row)" for m in METHODS)
             + " | " + " | ".join(f"{m}: median width" for m in METHODS) + " |",
             "|" + "---|" * (4 + 2 * len(METHODS))]
    for _, r in wide.iterrows():
        coverage = [_cell(r.get(f"coverage|{m}", np.nan), r.get(f"lowest|{m}", np.nan)) for m in METHODS]
        width = ["" if np.isnan(r.get(f"width|{m}", np.nan)) else f"{r[f'width|{m}']:.1f}" for m in METHODS]
        lines.append(f"| {r['design']} | {r['kind']} | {r['task']} | {r['metric']} | "
                     + " | ".join(coverage) + " | " + " | ".join(width) + " |")
    return "\n".join(lines) + "\n"


def _flat(pivot: pd.DataFrame) -> pd.DataFrame:
    """A pivot table with its index as columns and its (value, method) columns as ``value|method``."""
    pivot = pivot.copy()
    pivot.columns = [f"{value}|{method}" for value, method in pivot.columns]
    return pivot.reset_index()


def _setting(row: pd.Series) -> str:
    """A study's column in the rejection table: its comparison, the ``null`` scenario and a seed set named."""
    seeds = row["study"].split("_", 3)[3] if row["study"].count("_") >= 3 else ""
    return "_".join(filter(None, [row["comparison"], "null" if row["scenario"] == "null" else "", seeds]))


def rejection_markdown(rows: pd.DataFrame) -> str:
    """Per design and family, the permutation test's rejection rate (percent, at alpha 0.05) in every study: power
    in the ``methods`` studies, size in the A/A (``aa``, ``aa_null``) and ``composite`` ones."""
    diff = rows[(rows["kind"] == "difference") & (rows["ci_method"] == METHODS[0])]
    diff = diff.assign(setting=diff.apply(_setting, axis=1))
    rate = diff.groupby(["design", "task", "metric", "setting"], sort=False)["rejection"].mean().unstack("setting")
    settings = sorted(rate.columns, key=lambda c: (not c.startswith("methods"), c))
    rate = rate.reset_index()
    rate["_task"] = np.where(rate["task"] == "emotion", 1, 0)
    rate = _ordered(rate.assign(kind="difference"))
    lines = ["| design | task | metric | " + " | ".join(settings) + " |", "|" + "---|" * (3 + len(settings))]
    for _, r in rate.iterrows():
        values = ["" if np.isnan(r[s]) else f"{100 * r[s]:.1f}" for s in settings]
        lines.append(f"| {r['design']} | {r['task']} | {r['metric']} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def plasmode_markdown(rows: pd.DataFrame) -> str:
    """Per plasmode study and family: coverage (lowest row) of every method."""
    if rows.empty:
        return ""
    by = ["study", "kind", "task", "metric"]
    fam = _families(rows, by)
    lines = ["| study | kind | task | metric | " + " | ".join(f"{m}: coverage (lowest row)" for m in METHODS) + " |",
             "|" + "---|" * (4 + len(METHODS))]
    fam = fam.assign(design=fam["study"], _task=np.where(fam["task"] == "emotion", 1, 0))
    ordered = _ordered(fam)
    ordered = ordered.iloc[np.argsort(ordered["study"].to_numpy(), kind="stable")]
    for (study, kind, task, metric), g in ordered.groupby(by, sort=False):
        cells = [_cell(*g.loc[g["ci_method"] == m, ["coverage", "lowest"]].iloc[0]) if (g["ci_method"] == m).any()
                 else "" for m in METHODS]
        lines.append(f"| {study} | {kind} | {task} | {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def widths_markdown(path: Path | str) -> str:
    """``benchmark simulate widths``' table: median width per family on the published outputs and its ratio to BCa's."""
    table = pd.read_csv(path)
    table = table[table["ci_method"].isin(METHODS)]
    wide = _flat(table.pivot_table(index=["dataset", "kind", "task", "metric"], columns="ci_method",
                                   values=["median_width", "ratio_to_bca"], sort=False))
    lines = ["| dataset | kind | task | metric | " + " | ".join(f"{m}: median width" for m in METHODS)
             + " | calibrated / BCa | bound / BCa |", "|" + "---|" * (6 + len(METHODS))]
    for _, r in wide.iterrows():
        widths = [f"{r[f'median_width|{m}']:.1f}" for m in METHODS]
        ratios = [f"{r[f'ratio_to_bca|{m}']:.2f}" if np.isfinite(r[f"ratio_to_bca|{m}"]) else "-"  # BCa: width 0
                  for m in ("calibrated", "bound")]
        lines.append(f"| {r['dataset']} | {r['kind']} | {r['task']} | {r['metric']} | " + " | ".join(widths) + " | "
                     + " | ".join(ratios) + " |")
    return "\n".join(lines) + "\n"


def tables(folder: Path | str) -> str:
    """Every table of the folder's studies, as Markdown with a heading each."""
    folder = Path(folder)
    simulated, plasmode = load(folder)
    parts = ["#### Coverage and width (simulator)\n", coverage_markdown(simulated),
             "\n#### Rejection rates\n", rejection_markdown(simulated)]
    if not plasmode.empty:
        parts += ["\n#### Real people (plasmode)\n", plasmode_markdown(plasmode)]
    if (folder / "widths_published.csv").exists():
        parts += ["\n#### Widths on the published outputs\n", widths_markdown(folder / "widths_published.csv")]
    return "\n".join(parts)
