"""Stage ``report``: ``reports/report.md``, a self-contained ``reports/report.html`` and ``reports/figures/*.png``
from the evaluate stage's results (metrics.json, stats.parquet, confusion.parquet) and the power stage's
(results/power.json, optional). It opens with the generated findings (:mod:`benchmark.report.findings`) and ends with
the reproducibility card and the corrector's model card (:mod:`benchmark.report.cards`), which its MLflow stage run
``report`` stores beside the frontier figures. It reads results; it computes no statistic."""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.core.paper import PAPER_ATTRIBUTE, PAPER_METHOD, PAPER_SPLIT
from benchmark.core.settings import CorrectorSettings, Settings
from benchmark.evaluation.confusion import CONFUSION_KEYS
from benchmark.evaluation.contrasts import contrast_rows, method_rows
from benchmark.experiment import pipeline_run, tracking
from benchmark.infra import atomic, paths, stored
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.processes import Job, run_jobs
from benchmark.report import cards, coverage_marks, figures, findings, provenance, tables
from benchmark.report.coverage_marks import APPROXIMATE, PROMISE
from benchmark.report.document import Block, Bullets, Code, Figure, Heading, Paragraph, Table, to_html, to_markdown
from benchmark.report.fairness_sections import fairness_blocks, frontier_job, read_audit
from benchmark.report.reproduction import OUTSIDE, RUN_OUTSIDE, RUN_WITHIN, WITHIN, reproduction_rows
from benchmark.report.tuning import read_study, tuning_blocks

log = logging.getLogger(__name__)

TITLE = "Cross-modal bias correction: benchmark report"
SOURCE_TEXT = {
    "published": "the paper authors' published per-image FairFace and EmoNet outputs (source `published`, pinned by "
                 "commit and sha256)",
}


#: the command that writes metrics.json, stats.parquet and confusion.parquet
EVALUATE = "benchmark evaluate"
#: the columns of stats.parquet the report keys its tables and sentences by
STATS_KEYS: tuple[str, ...] = ("split", "partition", "dataset", "method", "task", "metric", "estimate")


def _slug(*parts: str) -> str:
    return "_".join(re.sub(r"[^a-z0-9]+", "-", p.lower().replace("->", "-to-")).strip("-") for p in parts)


def _read_inputs(metrics_path: Path, stats_path: Path, confusion_path: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    for path in (metrics_path, stats_path, confusion_path):
        if not path.exists():
            raise BenchmarkError(f"{path}: not found; run `benchmark evaluate` (or `dvc repro evaluate`) first")
    doc = stored.read_json(metrics_path, producer=EVALUATE)
    stats = stored.read_parquet(stats_path, producer=EVALUATE, columns=STATS_KEYS)
    confusion = stored.read_parquet(confusion_path, producer=EVALUATE, columns=CONFUSION_KEYS)
    missing = [k for k in ("source", "reference", "statistics", "results") if k not in doc]
    if missing:
        raise BenchmarkError(f"{metrics_path}: no {', '.join(missing)} (written by an older evaluate stage); rerun `benchmark evaluate`")
    return doc, stats, confusion


def source_blocks(doc: dict[str, Any], inputs: list[dict[str, Any]]) -> list[Block]:
    """What the numbers are computed from; simulated data are announced as such, with the scenario (from metrics.json,
    else from the outputs tables' metadata ``inputs``, see :func:`benchmark.report.provenance.collect`)."""
    source = doc.get("source", "unknown")
    if source == "sim":
        recorded = sorted({str(i["scenario"]) for i in inputs if i.get("scenario")})
        scenario = doc.get("scenario") or ", ".join(recorded) or "not recorded"
        return [Paragraph(f"**Warning: these data are simulated** (source `sim`, scenario `{scenario}`). The numbers test "
                          "the pipeline and the statistics; they say nothing about the real FairFace and EmoNet models.",
                          warning=True)]
    if source == "images":
        gender, emotion = (", ".join(f"`{n}`" for n in sorted({str(i[role]) for i in inputs if i.get(role)}))
                           or "not recorded" for role in ("gender_model", "emotion_model"))
        return [Paragraph(f"Per-image outputs: computed by this benchmark from the images (source `images`): gender "
                          f"by {gender}, emotions by {emotion}; the models' weights and checksums are in the "
                          "provenance below.")]
    return [Paragraph(f"Per-image outputs: {SOURCE_TEXT.get(source, f'source `{source}`')}.")]


def design_blocks(doc: dict[str, Any]) -> list[Block]:
    """What the cells are: the protected attribute, each dataset's groups x emotions, and where a dataset has no person
    ids (every image its own subject)."""
    attribute = doc.get("attribute", "gender")
    lines = []
    for name, d in sorted(doc.get("design", {}).items()):
        line = (f"{name.upper()}: {len(d['groups'])} {attribute} groups ({', '.join(d['groups'])}) x "
                f"{len(d['emotions'])} emotions ({', '.join(d['emotions'])}) = {len(d['groups']) * len(d['emotions'])} "
                "cells")
        if not d["subjects"].startswith("declared"):
            line += "; **no person ids declared: every image is its own subject**, so intervals treat images as "                     "independent"
        lines.append(line)
    gap = ("the per-emotion gap is |A(" + ") - A(".join(doc["design"][next(iter(doc["design"]))]["groups"]) + ")|"
           if doc.get("design") and all(len(d["groups"]) == 2 for d in doc["design"].values())
           else "the per-emotion gap is the spread max - min of the groups' accuracies (every pairwise gap is in "
                "results/stats.parquet, metric pair_gap)")
    return [Paragraph(f"Protected attribute: **{attribute}**. Cells are its true groups x the true emotions; macro "
                      f"accuracy is their mean; {gap}."), Bullets(tuple(lines))] if lines else []


INTERVAL_TEXT = {
    "bound": "score intervals for cells and, for every other number, the estimate +- a bound on its error that holds "
             "whatever the true gaps (so the upward bias of a gap near 0 lies inside it), from a subject-cluster "
             "bootstrap with small-sample corrections",
    "bca": "BCa intervals of a subject-cluster bootstrap",
    "percentile": "percentile intervals of a subject-cluster bootstrap",
}


def reading_guide(doc: dict[str, Any], alpha: float) -> Paragraph:
    """How to read the numbers: units, intervals, differences, the two p-values and the marks."""
    s = doc["statistics"]
    return Paragraph(
        f"All numbers are percent (differences: percentage points). Brackets are {s['ci']:.0%} confidence intervals: "
        f"{INTERVAL_TEXT.get(s['ci_method'], s['ci_method'])} ({s['n_resamples']} resamples of people, stratified by "
        f"{doc.get('attribute', 'gender')} group); seeds are held fixed, so an interval is the test-sampling "
        f"uncertainty of the seed mean, and the seed sd is reported beside it. Δ is method − `{doc['reference']}` "
        f"on the same resamples. p is a subject-level permutation test ({s['n_permutations']} sign flips) of that one "
        f"comparison, and Holm is the same p adjusted over the methods compared with the reference within each "
        f"dataset x task x metric (contrasts: over the contrasts); `*` marks Holm p < {alpha:g}, the only claim of a "
        f"difference the report makes. An interval is per comparison, like the raw p, so an interval that excludes 0 "
        f"next to a Holm p above {alpha:g} means the difference does not survive the adjustment for multiple "
        f"comparisons. {tables.DISAGREE} marks a difference whose interval and raw p disagree (one excludes 0, the "
        f"other does not reject); {tables.DEGENERATE} an interval of zero width or one with a note (see Statistical "
        f"notes); {APPROXIMATE} an interval family that held the truth in fewer than {PROMISE:.0%} of simulated "
        f"replicates at this design. Details: docs/STATISTICS.md.")


def reproduction_blocks(doc: dict[str, Any]) -> list[Block]:
    """The paper's table beside ours, with a one-line verdict per side; only for the paper's attribute (gender)."""
    if doc.get("attribute", "gender") != PAPER_ATTRIBUTE:
        return [Heading("Reproduction of the paper's table"),
                Paragraph(f"The paper's table concerns {PAPER_ATTRIBUTE}; this run's protected attribute is "
                          f"{doc['attribute']}, so there is nothing of the paper's to compare with.")]
    rows = reproduction_rows(doc)
    verdicts = []
    for side, method in (("uncorrected", "uncorrected"), ("corrected", PAPER_METHOD)):
        checks = rows[f"check_{side}"]
        if (checks == WITHIN).sum() + (checks == OUTSIDE).sum() == 0:
            verdicts.append(f"{side}: method `{method}` was not run on split {PAPER_SPLIT}.")
        else:
            verdict = (f"{side} (`{method}`): {int((checks == WITHIN).sum())} of {len(rows)} paper values lie "
                       f"within our {doc['statistics']['ci']:.0%} CI, {int((checks == OUTSIDE).sum())} outside")
            if side == "corrected":
                runs = rows["check_corrected_run"]
                verdict += (f"; {int((runs == RUN_WITHIN).sum())} within the {doc['statistics']['ci']:.0%} prediction "
                            f"interval of one run, {int((runs == RUN_OUTSIDE).sum())} outside")
            verdicts.append(verdict + ".")
    return [Heading("Reproduction of the paper's table"),
            Paragraph(f"The paper trained on FACES and tested on ADFES (split `{PAPER_SPLIT}`); its FACES rows are "
                      "in-sample (the corrector was fitted on those images), its ADFES rows are held out. `check` says "
                      "whether the paper's value lies within our CI (subject bootstrap; for the corrector, of the mean "
                      "over our seeds); OUTSIDE CI marks a difference beyond sampling uncertainty. The paper's "
                      "corrected values are single training runs, and on the same images a single run differs from a "
                      "seed mean by seed variation, which that CI leaves out: `corrected run check` asks whether the "
                      "paper's value lies within the prediction interval of one more run of ours (seed mean +- "
                      "t(n-1) x seed sd x sqrt(1 + 1/n)). Details: docs/STATISTICS.md."),
            Table(tables.reproduction_table(rows), flags=tables.FLAGS), Bullets(tuple(verdicts))]


def _figures_for_group(stats: pd.DataFrame, conf: pd.DataFrame, *, group: tuple[str, str, str], reference: str,
                       ci: float, alpha: float, out_dir: Path) -> list[Figure]:
    """The figures of one evaluation group from its own stats and confusion rows (:func:`_group_rows`)."""
    split, dataset, partition = group
    rows = method_rows(stats)
    methods = sorted(rows["method"].unique(), key=lambda m: (m != reference, m))
    compared = [m for m in methods if m != reference and rows.loc[rows["method"] == m, "diff"].notna().any()]
    label, slug = tables.group_label(*group), _slug(split, dataset, partition)
    attribute = figures.task_order(rows)[0]
    shown = reference if reference in methods else methods[0]
    if rows.loc[rows["metric"] == "cell", "group"].nunique() > 2:
        cells = (figures.cell_heatmaps(rows, reference=shown, methods=compared, title=label, ci=ci),
                 f"one row per method, `{shown}` first; each cell its accuracy [CI]")
    else:
        cells = (figures.cell_bars(rows, reference=shown, methods=compared, title=label, ci=ci),
                 f"the groups side by side, `{reference}` (hatched) beside each method")
    made = [(f"cells_{slug}.png", "Per-cell accuracy", *cells),
            (f"gaps_{slug}.png", f"{attribute} gaps".capitalize(),
             figures.gap_bars(rows, methods=methods, title=label, ci=ci), "per emotion, with their largest and average")]
    if compared:
        made.append((f"forest_{slug}.png", f"Differences to {reference}",
                     figures.forest(rows, reference=reference, methods=compared, title=label, ci=ci, alpha=alpha),
                     f"paired CIs; filled markers: Holm-adjusted p < {alpha:g}"))
    made.append((f"confusion_{slug}.png", f"Emotion confusion per true {attribute} group",
                 figures.confusion_matrices(conf, methods=methods, title=label), "rows: true emotion, % of its images"))
    out = []
    for name, what, fig, detail in made:
        figures.save_png(fig, out_dir / name)
        out.append(Figure(name, f"{what}, {label}", f"{what}, {label}: {detail}."))
    return out


def _group_rows(frame: pd.DataFrame, group: tuple[str, str, str]) -> pd.DataFrame:
    return frame[(frame[["split", "dataset", "partition"]] == list(group)).all(axis=1)]


def _group_figures_job(stats: pd.DataFrame, confusion: pd.DataFrame, groups: list[tuple[str, str, str]], *,
                         reference: str, ci: float, alpha: float, out_dir: Path) -> Job:
    """Every evaluation group's figures (in ``groups`` order) as calls for worker processes: drawing and PNG encoding
    are most of the report's time, and each group's figures are independent (each call gets only its group's rows;
    the files are the same bytes whichever process draws them)."""
    return Job([functools.partial(_figures_of_job, (_group_rows(stats, g), _group_rows(confusion, g), g),
                                    reference=reference, ci=ci, alpha=alpha, out_dir=out_dir) for g in groups], list)


def _figures_of_job(job: tuple[pd.DataFrame, pd.DataFrame, tuple[str, str, str]], *, reference: str, ci: float,
                    alpha: float, out_dir: Path) -> list[Figure]:
    rows, conf, group = job
    return _figures_for_group(rows, conf, group=group, reference=reference, ci=ci, alpha=alpha, out_dir=out_dir)


def _comparison_blocks(stats: pd.DataFrame, group: tuple[str, str, str], doc: dict[str, Any], *,
                       alpha: float) -> list[Block]:
    """One evaluation group: its methods table, its contrasts table (if any), and what the measured coverage says
    about its design (families that fell short are marked in both tables)."""
    rows = _group_rows(stats, group)
    label = tables.group_label(*group)
    s = doc["statistics"]
    measured = coverage_marks.lookup(coverage_marks.measured_table(), dataset=group[1],
                                     attribute=doc.get("attribute", "gender"), n_subjects=int(rows["n_subjects"].iloc[0]),
                                     n_images=int(rows["n_images"].iloc[0]), ci_method=s["ci_method"], ci=s["ci"])
    out: list[Block] = [Heading(label, 3),
                        Table(tables.methods_table(rows, reference=doc["reference"], alpha=alpha,
                                                   approximate=measured.approximate))]
    if not contrast_rows(rows).empty:
        out.append(Table(tables.contrasts_table(rows, alpha=alpha, approximate=measured.approximate),
                         caption=f"Contrasts, {label}: pairs of methods compared directly (a - b) on the same "
                                 "resamples; Holm over the contrasts"))
    return out + [Paragraph(measured.sentence(label))]


def statistics_notes(stats: pd.DataFrame) -> list[Block]:
    """Where an interval fell back or resamples were left out (the stats table's notes), counted."""
    notes = stats.loc[stats["note"] != "", "note"].str.split("; ").explode()
    notes = notes.str.replace(r"^diff: ", "", regex=True).value_counts().sort_index()
    if notes.empty:
        return [Paragraph("No interval needed a fallback.")]
    return [Paragraph("Rows of results/stats.parquet with a note (the row's `note` column says which):"),
            Bullets(tuple(f"{count} x {note}" for note, count in notes.items()))]


def provenance_blocks(prov: dict[str, Any]) -> list[Block]:
    """Source, checksums, git commit, package versions, seeds, times and params."""
    dirty = {True: " (with uncommitted changes)", False: "", None: " (status unknown)"}[prov["git_dirty"]]
    inputs = pd.DataFrame(prov["inputs"]).fillna("").astype(str)
    results = pd.DataFrame(prov["results"]).astype(str)
    packages = pd.DataFrame({"package": list(prov["packages"]), "version": list(prov["packages"].values())})
    return [Heading("Provenance"),
            Bullets((f"git commit: `{prov['git_commit']}`{dirty}", f"report generated: {prov['generated']}",
                     f"Python {prov['python']}", f"package versions: {prov['lock']}",
                     "seeds: " + ", ".join(f"{k} = {v}" for k, v in prov["seeds"].items()))),
            Table(inputs, caption="Per-image outputs tables (data/outputs): file sha256 and their recorded origin"),
            Table(results, caption="Result files this report reads"),
            Table(packages, caption="Package versions"),
            Paragraph("Settings in force (params.yaml, validated):"), Code(prov["params"])]


@contextmanager
def _recorded(settings: Settings) -> Iterator[tuple[cards.Recorded, Any]]:
    """What the cards say about the pipeline run (its command, DVC experiment, MLflow runs) and, when tracking is on,
    MLflow with the report's stage run active (None when off)."""
    command, dvc = pipeline_run.current("report").command, pipeline_run.dvc_tags()
    if not settings.tracking.enabled:
        yield cards.Recorded(command, dvc), None
        return
    mlflow = tracking.setup(settings.tracking)
    with tracking.stage_run(mlflow, settings.tracking, "report", stage="report",
                            tags={"attribute": settings.data.attribute}) as active:
        yield cards.Recorded(command, dvc, tracking.pipeline_summary(mlflow, settings.tracking, active)), mlflow


def _log_report(mlflow: Any, *, frontier: list[Path], card_blocks: dict[str, list[Block]]) -> None:
    """The frontier figures (folder ``frontier``) and the cards (``cards/<name>.md``) as artifacts of the active run."""
    for path in frontier:
        mlflow.log_artifact(str(path), artifact_path="frontier")
    for name, blocks in card_blocks.items():
        mlflow.log_text(to_markdown(blocks), f"cards/{name}.md")


def run(settings: Settings, metrics_path: Path = paths.METRICS_JSON, md_path: Path = paths.REPORT_MD,
        html_path: Path = paths.REPORT_HTML, stats_path: Path = paths.STATS, confusion_path: Path = paths.CONFUSION,
        figures_dir: Path = paths.FIGURES_DIR, outputs_dir: Path = paths.OUTPUTS_DIR,
        predictions_path: Path = paths.PREDICTIONS, tune_dir: Path = paths.TUNE_DIR,
        power_path: Path = paths.POWER, lock_path: Path = paths.LOCK) -> list[Path]:
    """Write the Markdown report, the self-contained HTML report and the figures; returns the paths written."""
    doc, stats, confusion = _read_inputs(metrics_path, stats_path, confusion_path)
    alpha, ci, reference = settings.evaluate.alpha, doc["statistics"]["ci"], doc["reference"]
    groups = tables.ordered_groups(stats)
    power = stored.read_json(power_path, producer="benchmark power", keys=("designs",)) if power_path.exists() else None
    # every other stored input is read (so checked) before the first figure: a bad file is one line within seconds
    read_audit(stats_path.parent)
    read_study(tune_dir)
    prov = provenance.collect(settings, outputs_dir=outputs_dir, result_files=(predictions_path, stats_path),
                              lock=lock_path)
    fresh = atomic.fresh_dir(figures_dir)
    try:
        blocks: list[Block] = [*source_blocks(doc, prov["inputs"]), *findings.blocks(stats, doc, power, alpha=alpha),
                               *design_blocks(doc), reading_guide(doc, alpha), *reproduction_blocks(doc),
                               Heading("Methods comparison")]
        for group in groups:
            blocks += _comparison_blocks(stats, group, doc, alpha=alpha)
        method_stats = method_rows(stats)  # without the contrast rows
        frontier = frontier_job(method_stats, settings, ci=ci, figures_dir=fresh, tune_dir=tune_dir)
        by_group, frontier_figures = run_jobs([  # one pool for all figures: no core waits while the other draws
            _group_figures_job(stats, confusion, groups, reference=reference, ci=ci, alpha=alpha, out_dir=fresh),
            frontier], meanwhile=tracking.deferred_setup(settings.tracking))
        blocks.append(Heading("Figures"))
        for group, drawn in zip(groups, by_group):
            blocks += [Heading(tables.group_label(*group), 3), *drawn]
        blocks += fairness_blocks(frontier_figures, method_stats, attribute=doc.get("attribute", "gender"),
                                  figures_dir=fresh, results_dir=stats_path.parent, outputs_dir=outputs_dir)
        blocks += tuning_blocks(tune_dir, paper=CorrectorSettings(), figures_dir=fresh, results=doc["results"])
        blocks += [Heading("Statistical notes"), *statistics_notes(stats)]
        with _recorded(settings) as (recorded, mlflow):
            card_blocks = {"model_card": cards.model_card(doc, method_stats, power, settings),
                           "reproducibility_card": cards.reproducibility_card(prov, settings, recorded, lock=lock_path)}
            blocks += [*card_blocks["model_card"], *card_blocks["reproducibility_card"], *provenance_blocks(prov)]
            atomic.write_text(md_path, f"# {TITLE}\n\n" + to_markdown(blocks, figures_rel=os.path.relpath(figures_dir, md_path.parent)))
            atomic.write_text(html_path, to_html(blocks, title=TITLE, figures_dir=fresh))
            if mlflow is not None:
                _log_report(mlflow, frontier=[fresh / f.file for f in frontier_figures], card_blocks=card_blocks)
        atomic.replace_dir(fresh, figures_dir)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    log.info("report: %d evaluation group(s), %d figure(s)", len(groups), len(list(figures_dir.glob("*.png"))))
    return [md_path, html_path, figures_dir]
