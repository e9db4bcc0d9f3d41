"""The report's fairness sections: the accuracy-fairness frontier (:mod:`benchmark.report.frontier`), the
predicted-attribute audit (``results/audit.parquet`` and ``results/attribute_audit.parquet``, written by the evaluate
stage through :mod:`benchmark.evaluation.audit`) and the training data's bias profile (:mod:`benchmark.evaluation.bias_profile`, counted
from the outputs tables of the splits' training datasets)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.core import metrics, outputs
from benchmark.core.protocol import parse_split
from benchmark.core.settings import Settings
from benchmark.evaluation import audit, bias_profile
from benchmark.infra import paths, stored
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.optional import available
from benchmark.infra.processes import Job
from benchmark.report import frontier
from benchmark.report.document import Block, Figure, Heading, Paragraph, Table
from benchmark.report.tables import fmt_ci, group_label

__all__ = ["fairness_blocks", "frontier_job"]


def frontier_job(stats: pd.DataFrame, settings: Settings, *, ci: float, figures_dir: Path, tune_dir: Path) -> Job:
    """The frontier figures to draw into ``figures_dir`` (:func:`frontier.frontier_job`), at the configured default
    fairness strength, with the study's Pareto front; their results go to :func:`fairness_blocks`."""
    return frontier.frontier_job(stats, out_dir=figures_dir, default_strength=settings.train.fairness.strength,
                                   ci=ci, pareto=frontier.pareto_front(tune_dir))


def frontier_blocks(made: list[Figure]) -> list[Block]:
    """The frontier section around its figures."""
    intro = Paragraph(
        "Each held-out evaluation: macro accuracy against average gap for every method (bars: subject-bootstrap "
        "intervals of each axis). Up and to the left is better on both. `group_recalibration` and its `@<strength>` "
        "variants (train.methods) trace how much accuracy a smaller gap costs; the fairness baselines are described "
        "in docs/FAIRNESS_BASELINES.md.")
    return [Heading("Accuracy-fairness frontier"), intro, *made]


def _audit_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method and headline metric: by true group [CI], by predicted group [CI], predicted - true [CI]."""
    out = []
    headline = rows[rows["metric"].isin([m.name for m in metrics.HEADLINE]) & rows["emotion"].isna()]
    for (method, metric), found in headline.groupby(["method", "metric"], sort=True):
        by = found.set_index("grouping")
        out.append({"method": method, "emotion metric": metrics.by_name(metric).short,
                    **{column: fmt_ci(by.loc[g, "estimate"], by.loc[g, "ci_low"], by.loc[g, "ci_high"])
                       for g, column in (("true", "by true group [CI]"), ("predicted", "by predicted group [CI]"),
                                         ("difference", "predicted - true [CI]"))}})
    return pd.DataFrame(out)


def read_audit(results_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The audit's two tables (gaps, attribute accuracy), each checked to be a table the evaluate stage wrote."""
    for name in (audit.GAPS_FILE, audit.ATTRIBUTE_FILE):
        if not (results_dir / name).exists():
            raise BenchmarkError(f"{results_dir / name}: not found (written by the evaluate stage since the audit "
                                 "exists); rerun `benchmark evaluate`")
    return (stored.read_parquet(results_dir / audit.GAPS_FILE, producer="benchmark evaluate"),
            stored.read_parquet(results_dir / audit.ATTRIBUTE_FILE, producer="benchmark evaluate"))


def audit_blocks(results_dir: Path, *, attribute: str) -> list[Block]:
    """The predicted-attribute audit section (empty tables: says the audit needs the ``uncorrected`` method)."""
    gaps, accuracy = read_audit(results_dir)
    blocks: list[Block] = [Heading("Predicted-attribute audit")]
    if gaps.empty:
        return blocks + [Paragraph(f"No audit: it takes the attribute model's predictions from the "
                                   f"`{audit.ATTRIBUTE_MODEL}` method, which is not in train.methods.")]
    blocks += [
        Paragraph(f"Every number in this report groups images by their **true** {attribute}. A deployed system only "
                  f"has the attribute model's **prediction**. Below, the attribute model's accuracy per true emotion, "
                  f"then each method's emotion metrics with the cells grouped both ways, and the difference with its "
                  f"interval on the same subject resamples (percentile intervals; results/audit.parquet has every "
                  f"cell, gap and pair). A difference away from 0 is gap the attribute model's errors create "
                  f"(positive) or hide (negative)."),
        Table(_accuracy_table(accuracy), caption=f"The attribute model's {attribute} accuracy per true emotion "
                                                 "(percent, subject-bootstrap CI), and where each true group goes"),
    ]
    held = gaps[gaps["partition"] == "test"]
    for (split, dataset, partition), rows in held.groupby(["split", "dataset", "partition"], sort=True):
        blocks += [Heading(group_label(split, dataset, partition), 3), Table(_audit_table(rows))]
    return blocks


def _accuracy_table(accuracy: pd.DataFrame) -> pd.DataFrame:
    shown = accuracy.copy()
    shown["accuracy [CI]"] = [fmt_ci(a, lo, hi) for a, lo, hi in zip(shown["accuracy"], shown["ci_low"], shown["ci_high"])]
    moves = [c for c in shown.columns if " -> " in c and c.split(" -> ")[0] != c.split(" -> ")[1]]
    for column in moves:
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    return shown[["dataset", "emotion", "n_images", "accuracy [CI]", *moves]].astype(str)


def profile_blocks(stats: pd.DataFrame, *, attribute: str, outputs_dir: Path) -> list[Block]:
    """The bias profile of each split's training dataset."""
    heading = Heading("Training data bias profile")
    if not available("dataset_bias_metrics"):
        return [heading, Paragraph("Not computed: it needs the optional extra `fairness` (dataset-bias-metrics); "
                                   "`make setup` installs it.")]
    datasets = sorted({parse_split(s).train for s in stats["split"].unique()})
    tables = {d: outputs.read(paths.outputs_table(d, outputs_dir), attribute=attribute) for d in datasets}
    profile = bias_profile.profile(tables)
    representation = profile[profile["kind"] == "representation"].pivot_table(
        index=["dataset", "labels"], columns="measure", values="value", aggfunc="first").round(3).reset_index()
    co = profile[profile["kind"] == "co-occurrence"].assign(abs_value=lambda f: f["value"].abs())
    strongest = co.loc[co.groupby(["dataset", "labels", "measure"])["abs_value"].idxmax()]
    strongest = strongest.assign(value=strongest["value"].round(3),
                                 combination=strongest["row"] + " & " + strongest["column"])
    return [heading,
            Paragraph("What each split's training data teaches through its labels alone (images counted; "
                      "dataset-bias-metrics). Representation: 1 = perfectly even for Shannon evenness, 1 for the "
                      "imbalance ratio. Co-occurrence: the combination of groups with the largest |value| per pair of "
                      "labels (NPMI and Ducher's Z in [-1, 1], 0 = independent). A balanced lab design scores 0 on "
                      "every attribute x emotion pair."),
            Table(representation.astype(str), caption="Representation of each label"),
            Table(strongest[["dataset", "labels", "measure", "combination", "value"]].astype(str),
                  caption="Strongest co-occurrence per pair of labels")]


def fairness_blocks(frontier_figures: list[Figure], stats: pd.DataFrame, *, attribute: str,
                    figures_dir: Path, results_dir: Path, outputs_dir: Path) -> list[Block]:
    """The three sections, in report order, around the frontier figures drawn in ``figures_dir``
    (:func:`frontier_job`)."""
    return (frontier_blocks(frontier_figures) + audit_blocks(results_dir, attribute=attribute)
            + profile_blocks(stats, attribute=attribute, outputs_dir=outputs_dir))
