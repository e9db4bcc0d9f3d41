"""The report's first section, "What this run shows": generated sentences, each from rows of the statistics table.

For every held-out evaluation group (partition ``test``), one sentence per task and comparison (the headline method
against the reference, and every contrast: does the cross-modal information help beyond plain recalibration?) gives
the difference in macro accuracy and in average gap with its interval and Holm-adjusted p, and says whether the data
support it: the test rejects after Holm's adjustment and the interval excludes 0 (both claims agree), or the test
rejects but the interval includes 0 (not settled), or the test does not reject. Then what the data could have shown: the minimum detectable effects of the design
(results/power.json, :mod:`benchmark.studies.power_study`). On simulated data the section says that it describes the simulator.
Every sentence comes from a :class:`Claim` list, so a test can check it against the table it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from benchmark.evaluation import contrasts
from benchmark.evaluation.headline import HEADLINE_METHOD
from benchmark.report.document import Block, Bullets, Heading, Paragraph
from benchmark.report.tables import ordered_groups

__all__ = ["METRICS", "NOT_SUPPORTED", "SUPPORTED", "UNSETTLED", "Claim", "Finding", "blocks", "findings",
           "format_claim"]

#: the metrics a finding states, in order, and their words
METRICS: dict[str, str] = {"macro": "macro accuracy", "average_gap": "average gap"}
SUPPORTED = "supported by the data"
UNSETTLED = "not settled (the test rejects, but the interval includes 0)"
NOT_SUPPORTED = "not supported by the data"
HELD_OUT = "test"


@dataclass(frozen=True)
class Claim:
    """One number of a finding: the stats row (split, partition, dataset, method, task, metric) it came from and its
    difference, interval and p-values."""

    split: str
    partition: str
    dataset: str
    method: str
    task: str
    metric: str
    diff: float
    low: float
    high: float
    p_perm: float
    p_holm: float

    def rejects(self, alpha: float) -> bool:
        """Whether the test rejects: the Holm-adjusted p is below alpha."""
        return not math.isnan(self.p_holm) and self.p_holm < alpha

    def excludes_zero(self) -> bool:
        """Whether the interval excludes 0 (it says which direction the difference has)."""
        return self.low > 0 or self.high < 0

    def verdict(self, alpha: float) -> str:
        """:data:`SUPPORTED` (the test rejects after Holm and the interval excludes 0), :data:`UNSETTLED` (the test
        rejects, the interval includes 0: the methods differ, but not clearly in this number's direction) or
        :data:`NOT_SUPPORTED`."""
        if not self.rejects(alpha):
            return NOT_SUPPORTED
        return SUPPORTED if self.excludes_zero() else UNSETTLED


@dataclass(frozen=True)
class Finding:
    """One sentence and the claims it states, in order."""

    sentence: str
    claims: tuple[Claim, ...]


def _num(x: float) -> str:
    return f"{x:+.2f}"


def format_claim(claim: Claim) -> str:
    """``macro accuracy +2.41 pp [-1.20, +6.02] (Holm p = 0.3100)``."""
    return (f"{METRICS[claim.metric]} {_num(claim.diff)} pp [{_num(claim.low)}, {_num(claim.high)}] "
            f"(Holm p = {claim.p_holm:.4f})")


def _verdict(claims: tuple[Claim, ...], alpha: float) -> str:
    verdicts = [c.verdict(alpha) for c in claims]
    if len(claims) == 1:
        return verdicts[0]
    if len(set(verdicts)) == 1:
        return {SUPPORTED: f"both {SUPPORTED}", NOT_SUPPORTED: "neither is supported by the data"}.get(
            verdicts[0], f"both {verdicts[0]}")
    return "; ".join(f"{METRICS[c.metric]} {v}" for c, v in zip(claims, verdicts))


def _claims(rows: pd.DataFrame, method: str, task: str) -> tuple[Claim, ...]:
    out = []
    for metric in METRICS:
        found = rows[(rows["method"] == method) & (rows["task"] == task) & (rows["metric"] == metric)]
        if len(found) != 1 or pd.isna(found["diff"].iloc[0]):
            continue
        r = found.iloc[0]
        out.append(Claim(r["split"], r["partition"], r["dataset"], method, task, metric, float(r["diff"]),
                         float(r["diff_ci_low"]), float(r["diff_ci_high"]), float(r["p_perm"]), float(r["p_holm"])))
    return tuple(out)


def _sentence(subject: str, task: str, claims: tuple[Claim, ...], alpha: float) -> str:
    numbers = " and ".join(format_claim(c) for c in claims)
    return f"{subject}, {task} task: {numbers}: {_verdict(claims, alpha)}."


def findings(stats: pd.DataFrame, *, reference: str, alpha: float,
             method: str = HEADLINE_METHOD) -> dict[tuple[str, str], list[Finding]]:
    """(split, dataset) of every held-out group -> its findings: ``method`` - ``reference`` per task, then every
    contrast per task (a - b, the contrast's own Holm family)."""
    out: dict[tuple[str, str], list[Finding]] = {}
    for split, dataset, partition in ordered_groups(stats):
        if partition != HELD_OUT:
            continue
        rows = stats[(stats["split"] == split) & (stats["dataset"] == dataset) & (stats["partition"] == partition)]
        tasks = sorted(dict.fromkeys(rows["task"]), key=lambda t: t == "emotion")
        items = []
        comparisons = [(method, f"`{method}` - `{reference}`")] if method in set(rows["method"]) else []
        comparisons += [(name, "contrast `{}` - `{}`".format(*contrasts.split_name(name)))
                        for name in dict.fromkeys(contrasts.contrast_rows(rows)["method"])]
        for name, subject in comparisons:
            for task in tasks:
                claims = _claims(rows, name, task)
                if claims:
                    items.append(Finding(_sentence(subject, task, claims, alpha), claims))
        out[(split, dataset)] = items
    return out


def _power_sentence(power: dict[str, Any] | None, dataset: str) -> str:
    """What the design could have shown, from power.json; says so where it was not simulated."""
    if power is None:
        return "Minimum detectable effects: not computed (run `benchmark power`, a DVC stage)."
    design = power.get("designs", {}).get(dataset)
    if design is None:
        return f"Minimum detectable effects: {dataset} was not simulated."
    if "not_simulated" in design:
        return f"Minimum detectable effects not computed: {design['not_simulated']}."
    parts = []
    for task, metrics in design["tasks"].items():
        for metric, words in METRICS.items():
            m = metrics[metric]
            parts.append(f"{task} {words} {_effect(m['mde'], m['largest_effect'])} "
                         f"(Holm's first step: {_effect(m['mde_holm'], m['largest_effect'])})")
    return (f"What this design could have shown: with {design['subjects']} people, the permutation test detects "
            f"with {power['target']:.0%} power at alpha = {power['alpha']:g} a true difference of "
            + "; ".join(parts) + f" (simulated from scenario `{design.get('scenario', power['scenario'])}`"
            + (f", chosen because {design['scenario_chosen_because']}" if "scenario_chosen_because" in design else "")
            + f", {power['replicates']} replicates, "
            "planted effects; Holm's first step divides alpha by the "
            f"{power['family_size']} methods compared with the reference). Smaller true differences are likely to "
            "go unseen here: \"not supported\" is not \"no difference\".")


def _effect(value: float | None, largest: float) -> str:
    if value is None:
        return f"not even when all of it ({abs(largest):.1f} pp) is removed"
    return f"{value:.1f} pp"


def blocks(stats: pd.DataFrame, doc: dict[str, Any], power: dict[str, Any] | None, *, alpha: float) -> list[Block]:
    """The section: heading, what the numbers describe, then per held-out group its findings and its minimum
    detectable effects."""
    reference = doc["reference"]
    intro = (f"Generated from results/stats.parquet: differences in percentage points with their "
             f"{doc['statistics']['ci']:.0%} intervals and Holm-adjusted permutation p. \"{SUPPORTED}\": Holm p < "
             f"{alpha:g} and the interval excludes 0; \"not settled\": the test rejects (the two methods differ) but "
             "the interval still includes 0; \"not supported\": Holm p >= " + f"{alpha:g}.")
    if doc.get("source") == "sim":
        intro = (f"**These findings describe the simulator** (scenario `{doc.get('scenario', 'unknown')}`), not the "
                 "real FairFace and EmoNet models. " + intro)
    out: list[Block] = [Heading("What this run shows"), Paragraph(intro)]
    requested = [item for item in doc.get("contrasts_requested", []) if not item.get("computed", True)]
    for (split, dataset), items in findings(stats, reference=reference, alpha=alpha).items():
        rows = stats[(stats["split"] == split) & (stats["dataset"] == dataset) & (stats["partition"] == HELD_OUT)]
        people = int(rows["n_subjects"].iloc[0])
        lines = tuple(f.sentence for f in items) or ("No method was compared with the reference here.",)
        out += [Paragraph(f"**{dataset.upper()}, split {split}** ({people} people):"),
                Bullets(lines + (_power_sentence(power, dataset),))]
    if requested:
        out.append(Paragraph("Contrasts not computed (a method of the pair did not run): "
                             + ", ".join("`{}` - `{}`".format(*item["pair"]) for item in requested) + "."))
    return out
