"""Validation on real people: plasmode subsamples of the published outputs, and interval widths on them.

**Plasmode** (Franklin et al. 2014): the persons of one published outputs table (FACES: 171) are the population.
Each replicate draws a subsample of persons without replacement, stratified by the attribute's groups (e.g. ADFES's
design: 10 women and 12 men), predicts it with fixed rules (``reference``: the uncorrected argmax; ``method``: a rule
fitted once on the other dataset's published outputs), and runs the project's statistics on it. The **truth** is each
rule's metric over all persons, so the dependence between a person's images is the real one. The subsample is a
sizeable share of a finite population, so an interval calibrated for an infinite one is slightly conservative here
(the finite-population correction 1 - n_g / N_g of the variance: 0.88 for 10 of 85 women).

``agreement`` varies how strongly a person's images agree, keeping every cell's images (so the truth is unchanged):
a > 0 moves a share a of each cell's images to random persons of the cell (a = 1: a person's images are a random
draw of the cell's, independent); a < 0 reassigns a share |a| so that the images the reference gets wrong go to the
persons it gets most wrong (stronger agreement than the real one).

**Widths** (:func:`published_widths`): every interval method on the full published FACES and ADFES outputs; the
median width per family and its ratio to BCa's.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.core import design as designs
from benchmark.core import predictions
from benchmark.core.design import CellLayout
from benchmark.core.settings import Settings
from benchmark.infra.errors import BenchmarkError
from benchmark.sources import published
from benchmark.stats import StatsConfig, group_statistics
from benchmark.stats.rowcoverage import family_table
from benchmark.studies.coverage_study import (
    fitted_predictions,
    interval_method,
    other_dataset,
    score,
    truth_table,
)

log = logging.getLogger(__name__)

__all__ = ["PlasmodeStudy", "parse_sizes", "published_rows", "published_widths", "regroup", "run"]


@dataclass(frozen=True)
class PlasmodeStudy:
    """See the module docstring. sizes: persons per attribute group in each subsample."""

    dataset: str = "faces"
    attribute: str = "gender"
    method: str = "crossmodal_linear"
    reference: str = "uncorrected"
    sizes: tuple[tuple[str, int], ...] = (("female", 10), ("male", 12))
    replicates: int = 200
    agreement: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not -1.0 <= self.agreement <= 1.0:
            raise BenchmarkError(f"--agreement: expected a value in [-1, 1], got {self.agreement}")
        if self.method == self.reference:
            raise BenchmarkError(f"--method and --reference must differ, got {self.method!r} twice")


def parse_sizes(text: str, option: str = "--sizes") -> tuple[tuple[str, int], ...]:
    """``female=10,male=12`` -> (("female", 10), ("male", 12)); a BenchmarkError naming ``option`` otherwise."""
    out = []
    for item in text.split(","):
        name, _, count = item.partition("=")
        if not name.strip() or not count.strip().isdigit() or int(count) < 2:
            raise BenchmarkError(f"{option}: {item!r} is not group=n with n >= 2; expected e.g. female=10,male=12")
        out.append((name.strip(), int(count)))
    return tuple(out)


def published_rows(settings: Settings, folder: Path | str, dataset: str, attribute: str,
                   names: tuple[str, ...]) -> tuple[dict[str, pd.DataFrame], CellLayout]:
    """Prediction rows of every rule in ``names`` on the published outputs of ``dataset`` (rules fitted once on the
    other dataset's published outputs), and the cells."""
    declared = designs.shipped()
    design = declared[dataset]
    attr = designs.attribute_of(design, attribute)
    table = published.load(design, folder)
    train_name = other_dataset(dataset, declared)
    train = published.load(declared[train_name], folder) if train_name != dataset else table
    rows = {name: fitted_predictions(name, settings, train, {"all": table}, attr)["all"].assign(method=name)
            for name in names}
    return rows, designs.layout(design, attr)


def regroup(rows: dict[str, pd.DataFrame], attribute: str, agreement: float, reference: str,
            rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """The same images with their persons reassigned within every cell (see ``agreement`` in the module docstring);
    the same reassignment for every rule."""
    if agreement == 0.0:
        return rows
    ref = rows[reference]
    images = ref[["image_id", "subject", attribute, "emotion"]].reset_index(drop=True)
    wrong = ((ref[f"pred_{attribute}"] != ref[attribute]).astype(int)
             + (ref["pred_emotion"] != ref["emotion"]).astype(int)).to_numpy()
    person_wrong = pd.Series(wrong).groupby(images["subject"].to_numpy()).sum()
    new_subject = images["subject"].to_numpy().copy()
    for _, cell in images.groupby([attribute, "emotion"], sort=True):
        index = cell.index.to_numpy()
        pooled = index[rng.random(len(index)) < abs(agreement)]
        if len(pooled) < 2:
            continue
        slots = images.loc[pooled, "subject"].to_numpy()
        if agreement > 0:
            moved = rng.permutation(pooled)
        else:  # the most wrong images to the persons wrong most often
            moved = pooled[np.argsort(-(wrong[pooled] + rng.random(len(pooled)) * 0.1), kind="stable")]
            slots = slots[np.argsort(-(person_wrong.loc[slots].to_numpy() + rng.random(len(slots)) * 0.1),
                                     kind="stable")]
        new_subject[moved] = slots
    mapping = dict(zip(images["image_id"], new_subject))
    return {name: r.assign(subject=r["image_id"].map(mapping)) for name, r in rows.items()}


def run(study: PlasmodeStudy, settings: Settings, folder: Path | str, *, config: StatsConfig,
        ci_methods: tuple[str, ...] = (), alpha: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run a plasmode study: (records as :func:`benchmark.studies.coverage_study.score` with ``replicate`` and
    ``ci_method``, truth)."""
    alpha = settings.evaluate.alpha if alpha is None else alpha
    names = (study.method, study.reference)
    rows, layout = published_rows(settings, folder, study.dataset, study.attribute, names)
    rows = regroup(rows, study.attribute, study.agreement, study.reference,
                   np.random.default_rng([study.seed, 99, zlib.crc32(str(study.agreement).encode())]))
    truth = truth_table(rows, layout, study.attribute, names, exchangeable=False)
    persons = rows[study.reference].drop_duplicates("subject").set_index("subject")[study.attribute]
    sizes = dict(study.sizes)
    missing = sorted(set(layout.groups) - set(sizes))
    if missing:
        raise BenchmarkError(f"--sizes: no size for group(s) {missing}; groups are {', '.join(layout.groups)}")
    for group, n in sizes.items():
        if group not in layout.groups:
            raise BenchmarkError(f"--sizes: {group!r} is not a group of {study.attribute}; groups are "
                                 f"{', '.join(layout.groups)}")
        if n > int((persons == group).sum()):
            raise BenchmarkError(f"--sizes: {group}={n} is more than the {int((persons == group).sum())} published "
                                 f"persons of that group in {study.dataset}")
    records, start = [], time.perf_counter()
    for r in range(study.replicates):
        rng = np.random.default_rng([study.seed, r])
        chosen = np.concatenate([rng.choice(np.sort(persons.index[persons == g].to_numpy()), size=sizes[g],
                                            replace=False) for g in layout.groups])
        sample = {name: frame[frame["subject"].isin(chosen)] for name, frame in rows.items()}
        for ci_method in ci_methods or (config.ci_method,):
            with interval_method(ci_method) as base:
                table = group_statistics(sample, reference=study.reference,
                                         config=replace(config, seed=config.seed + r, ci_method=base),
                                         key=f"plasmode|{r}", layout=layout,
                                         tasks=predictions.tasks(study.attribute))
            records.append(score(table, truth, alpha=alpha).assign(replicate=r, ci_method=ci_method))
        if (r + 1) % max(1, study.replicates // 10) == 0:
            log.info("plasmode: %d of %d replicates (%.0f s)", r + 1, study.replicates, time.perf_counter() - start)
    return pd.concat(records, ignore_index=True), truth


def published_widths(settings: Settings, folder: Path | str, *, config: StatsConfig, ci_methods: tuple[str, ...],
                     attribute: str = "gender", method: str = "crossmodal_linear",
                     reference: str = "uncorrected") -> pd.DataFrame:
    """Median interval width per family (dataset x kind x task x metric) of every interval method on the full
    published outputs, and its ratio to BCa's (``bca`` must be among ``ci_methods``)."""
    frames = []
    for dataset in ("faces", "adfes"):
        rows, layout = published_rows(settings, folder, dataset, attribute, (method, reference))
        for ci_method in ci_methods:
            with interval_method(ci_method) as base:
                table = group_statistics(rows, reference=reference, config=replace(config, ci_method=base),
                                         key=f"published|{dataset}", layout=layout,
                                         tasks=predictions.tasks(attribute))
            fake_truth = table[["method", "task", "metric", "group", "emotion"]].assign(truth=np.nan, truth_diff=np.nan)
            scored = score(table, fake_truth, alpha=0.05).assign(ci_method=ci_method, replicate=0)
            scored["covered"] = scored["width"].notna().astype(float).where(scored["width"].notna())
            scored["diff_covered"] = scored["diff_width"].notna().astype(float).where(scored["diff_width"].notna())
            fam = family_table(scored)[["ci_method", "kind", "task", "metric", "median_width"]]
            frames.append(fam.assign(dataset=dataset))
    out = pd.concat(frames, ignore_index=True)
    bca = out[out["ci_method"] == "bca"].set_index(["dataset", "kind", "task", "metric"])["median_width"]
    bca_width = bca.reindex(pd.MultiIndex.from_frame(out[["dataset", "kind", "task", "metric"]])).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):  # no ratio where BCa's interval has no width
        out["ratio_to_bca"] = np.where(bca_width > 0, out["median_width"].to_numpy() / bca_width, np.nan)
    return out
