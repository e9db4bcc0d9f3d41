"""Which interval families fall short of their promise at a run's design, from the measured coverage table.

``benchmark/stats/coverage.csv`` holds what ``benchmark simulate coverage`` measured (per scenario, comparison,
dataset design, interval method and level: the share of replicates in which each family's intervals held the
simulator's truth). For an evaluation group whose design and statistics settings match a measured one, the report
marks every family whose worst measured coverage is below :data:`PROMISE` and says so in words; where nothing was
measured it says that instead of implying a promise.
"""

from __future__ import annotations

import pandas as pd

from benchmark.stats import coverage_table

__all__ = ["PROMISE", "APPROXIMATE", "Measured", "measured_table", "lookup"]

#: the coverage a 95 % interval family must reach at a design not to be marked approximate
PROMISE = 0.93
#: the mark beside a number whose interval family fell short at this design
APPROXIMATE = "§"


def measured_table() -> pd.DataFrame:
    """The shipped measured-coverage table (empty with its columns if the package has none)."""
    return coverage_table.shipped()


class Measured:
    """The measured families of one design: ``worst`` maps (task, metric, kind) to the lowest coverage over the
    measured settings (methods, A/A, null); empty when the design or settings were not measured."""

    def __init__(self, rows: pd.DataFrame) -> None:
        self.rows = rows
        self.worst = ({} if rows.empty else
                      rows.groupby(["task", "metric", "kind"])["coverage"].min().to_dict())

    @property
    def measured(self) -> bool:
        return bool(self.worst)

    def short(self) -> dict[tuple[str, str, str], float]:
        """(task, metric, kind) -> coverage for the families below :data:`PROMISE`."""
        return {key: value for key, value in self.worst.items() if value < PROMISE}

    def approximate(self, task: str, metric: str, kind: str) -> bool:
        return (task, metric, kind) in self.short()

    def sentence(self, label: str) -> str:
        """What the measurements say about this design, in words."""
        if not self.measured:
            return (f"Interval coverage was not measured at the design of {label} with these statistics settings "
                    "(`benchmark simulate coverage` measures it; docs/STATISTICS.md).")
        replicates = int(self.rows["replicates"].min())
        lowest = min(self.worst.items(), key=lambda item: item[1])
        settings = ", ".join(sorted(dict.fromkeys(self.rows["comparison"])))
        head = (f"Interval coverage at the design of {label} (measured on simulated data, {replicates} replicates per "
                f"setting: {settings}; docs/STATISTICS.md): ")
        short = self.short()
        worst = self.rows.loc[self.rows["worst_row"].idxmin()]
        single = (f" A family's coverage is over all its intervals; the least covered single interval (one "
                  f"{worst['metric']} {worst['kind']} of the {worst['task']} task) held it in {worst['worst_row']:.1%}.")
        if not short:
            return (head + f"every family of estimates and differences held the truth in at least {PROMISE:.0%} of "
                    f"replicates (lowest {lowest[1]:.1%}: {lowest[0][0]} {lowest[0][1]} {lowest[0][2]}s)." + single)
        listed = "; ".join(f"{t} {m} {k}s {v:.1%}" for (t, m, k), v in sorted(short.items()))
        return (head + f"these families held the truth in fewer than {PROMISE:.0%} of replicates: {listed}. Their "
                f"numbers carry {APPROXIMATE}: read those intervals as approximate." + single)


def lookup(table: pd.DataFrame, *, dataset: str, attribute: str, n_subjects: int, n_images: int, ci_method: str,
           ci: float) -> Measured:
    """The measured families of a design (dataset, attribute, subjects and images of the group) and settings."""
    if table.empty:
        return Measured(table)
    rows = table[(table["dataset"] == dataset) & (table["attribute"] == attribute)
                 & (table["n_subjects"] == n_subjects) & (table["n_images"] == n_images)
                 & (table["ci_method"] == ci_method) & ((table["ci"] - ci).abs() < 1e-9)]
    return Measured(rows)
