"""The report's first section, "What this run shows": per held-out design a verdict table and one forest figure, the
explanations and the generated sentences below them.

Every verdict comes from one rule (docs/STATISTICS.md "One rule from test to verdict"), read from the stats row's
verdict columns: the primary family's rows (``evaluate.primary`` x tasks x ``evaluate.primary_metrics``) are decided by
Holm over exactly that family, each printed with its stepped interval, which excludes 0 exactly when Holm rejects; every
other comparison is exploratory: its unadjusted interval, labelled so. A verdict is one of three categories, from
(rejected or not, direction): the difference is an improvement in the metric's better direction (macro accuracy
higher, a gap lower), a deterioration, or no clear difference. Then what the data could have shown: the minimum
detectable effects of the design (results/power.json, :mod:`benchmark.studies.power_study`). On simulated data the
section says that it describes the simulator. Every sentence and table row comes from a :class:`Claim`, so a test can
check it against the row it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.core.metrics import by_name
from benchmark.evaluation import contrasts
from benchmark.evaluation.headline import HEADLINE_METHOD
from benchmark.report import figures
from benchmark.report.document import Block, Bullets, Figure, Heading, Paragraph, Table
from benchmark.report.tables import ordered_groups

__all__ = ["ARROWS", "BETTER", "MARKS", "METRICS", "UNCLEAR", "WORSE", "Claim", "Finding", "blocks", "claims",
           "STALE_POWER", "detectable", "findings", "format_claim", "table_caption", "verdict_table"]

#: the metrics the verdicts state, in order, and their words
METRICS: dict[str, str] = {"macro": "macro accuracy", "average_gap": "average gap"}
#: the three verdicts: (rejected, in the metric's better direction), (rejected, the other way), not rejected
BETTER, WORSE, UNCLEAR = "better", "worse", "no clear difference"
#: the verdict table's mark of each verdict, and the mark with its word (the table's legend)
SYMBOLS: dict[str, str] = {BETTER: "▲", WORSE: "▼", UNCLEAR: "○"}
MARKS: dict[str, str] = {verdict: f"{symbol} {verdict}" for verdict, symbol in SYMBOLS.items()}
HELD_OUT = "test"
PRIMARY, EXPLORATORY = "primary", "exploratory"


@dataclass(frozen=True)
class Claim:
    """One verdict: the stats row (split, partition, dataset, method, task, metric) it came from, its difference, the
    interval the verdict reads (``verdict_ci_low``/``verdict_ci_high`` at ``verdict_level``), the family, the Holm
    step (primary) and the decision ``rejected``; the permutation p as a secondary number."""

    split: str
    partition: str
    dataset: str
    method: str
    task: str
    metric: str
    diff: float
    low: float
    high: float
    level: float
    family: str
    step: int
    family_size: int
    p_ci_holm: float
    p_perm: float
    rejected: bool
    reference: str
    contrast: bool

    @property
    def verdict(self) -> str:
        """:data:`BETTER` or :data:`WORSE` where the rule rejects (by the difference's direction and the metric's
        better direction), else :data:`UNCLEAR`."""
        if not self.rejected:
            return UNCLEAR
        return BETTER if by_name(self.metric).improvement(self.diff) else WORSE

    @property
    def pair(self) -> tuple[str, str]:
        """(a, b) of the difference a - b: the method and the reference, or a contrast's two methods."""
        return contrasts.split_name(self.method) if self.contrast else (self.method, self.reference)

    @property
    def comparison(self) -> str:
        """``corrector - uncorrected`` (a method and the reference) or ``corrector - unimodal`` (a contrast)."""
        return " - ".join(self.pair)


@dataclass(frozen=True)
class Finding:
    """One sentence and the claim it states."""

    sentence: str
    claim: Claim


def _num(x: float) -> str:
    return f"{x:+.2f}"


def _level(level: float) -> str:
    """``99.38 %``: enough digits to tell Holm's stepped levels apart."""
    return f"{100 * level:.4g} %"


def _interval(claim: Claim) -> str:
    """``[-1.20, +6.02]``; a primary hypothesis whose construction gives no interval at its step's level says so."""
    if pd.isna(claim.low) or pd.isna(claim.high):
        return "[no interval at this level]"
    return f"[{_num(claim.low)}, {_num(claim.high)}]"


def format_claim(claim: Claim) -> str:
    """``macro accuracy +2.41 pp [-1.20, +6.02]`` with the interval's level."""
    return f"{METRICS[claim.metric]} {_num(claim.diff)} pp {_interval(claim)} ({_level(claim.level)} interval)"


def _direction_words(claim: Claim) -> str:
    """What the verdict says in the metric's own words (macro: higher is better; gaps: lower is better)."""
    words = METRICS[claim.metric]
    if claim.verdict == UNCLEAR:
        return f"no clear difference in {words} (the interval holds 0; not evidence of no difference)"
    rises = claim.diff > 0
    if by_name(claim.metric).better == "higher":
        change = "raises" if rises else "lowers"
    else:
        change = "widens" if rises else "narrows"
    return f"{claim.verdict}: {change} the {words}"


def _rule(claim: Claim) -> str:
    if claim.family == PRIMARY:
        return (f"primary, Holm step {claim.step} of {claim.family_size}, Holm-adjusted p = {claim.p_ci_holm:.4f}; "
                f"permutation p = {claim.p_perm:.4f}")
    return f"exploratory, unadjusted; permutation p = {claim.p_perm:.4f}"


def _sentence(subject: str, claim: Claim) -> str:
    return f"{subject}, {claim.task} task: {format_claim(claim)} ({_rule(claim)}): {_direction_words(claim)}."


def claims(rows: pd.DataFrame, *, method: str = HEADLINE_METHOD) -> list[Claim]:
    """The verdicts of one held-out group's rows for :data:`METRICS`: the primary family first, in Holm's step order,
    then the exploratory comparisons (``method`` and the other methods against the reference, then the contrasts; by
    task, then metric)."""
    rows = rows[rows["metric"].isin(list(METRICS)) & rows["group"].isna() & rows["emotion"].isna()
                & rows["diff"].notna() & (rows["verdict_ci_low"].notna() | (rows["family"] == PRIMARY))]
    tasks = sorted(dict.fromkeys(rows["task"]), key=lambda t: t == "emotion")
    methods = list(dict.fromkeys(contrasts.method_rows(rows)["method"]))
    order = ([method] if method in methods else []) + [m for m in methods if m != method]
    order += list(dict.fromkeys(contrasts.contrast_rows(rows)["method"]))
    size = int((rows["family"] == PRIMARY).sum())
    out = []
    for r in rows.to_dict("records"):
        out.append(Claim(r["split"], r["partition"], r["dataset"], r["method"], r["task"], r["metric"],
                         float(r["diff"]), float(r["verdict_ci_low"]), float(r["verdict_ci_high"]),
                         float(r["verdict_level"]), r["family"], int(r["holm_step"]), size, float(r["p_ci_holm"]),
                         float(r["p_perm"]), bool(r["rejected"]), str(r["reference"]), bool(r["contrast"])))
    rank = {name: i for i, name in enumerate(order)}
    return sorted(out, key=lambda c: (c.family != PRIMARY, c.step if c.family == PRIMARY else 0, rank[c.method],
                                      tasks.index(c.task), list(METRICS).index(c.metric)))


def _subject(claim: Claim) -> str:
    return ("contrast " if claim.contrast else "") + "`{}` - `{}`".format(*claim.pair)


def findings(stats: pd.DataFrame, *, method: str = HEADLINE_METHOD) -> dict[tuple[str, str], list[Finding]]:
    """(split, dataset) of every held-out group -> one sentence per verdict (:func:`claims`' order)."""
    out: dict[tuple[str, str], list[Finding]] = {}
    for split, dataset, partition in ordered_groups(stats):
        if partition != HELD_OUT:
            continue
        rows = stats[(stats["split"] == split) & (stats["dataset"] == dataset) & (stats["partition"] == partition)]
        out[(split, dataset)] = [Finding(_sentence(_subject(c), c), c)
                                 for c in claims(rows, method=method)]
    return out


#: the better direction of a metric in the verdict table's headers
ARROWS: dict[str, str] = {"higher": "↑", "lower": "↓"}


def _cell(claim: Claim) -> str:
    """``▲ +15.28 [+2.72, +27.84] 98.8 %``: the verdict mark, the difference and the interval it read (with its level
    where that is a Holm step's, not the configured one)."""
    level = f" {100 * claim.level:.3g} %" if claim.family == PRIMARY else ""
    return f"{SYMBOLS[claim.verdict]} {_num(claim.diff)} {_interval(claim)}{level}"


def verdict_table(items: list[Claim]) -> pd.DataFrame:
    """The first screen's table of one held-out design: one row per comparison (the primary family's first, in
    Holm's order), one column per task and metric of :data:`METRICS` (its better direction as an arrow) holding the
    verdict mark, the difference and the interval it read. A row whose cells fall in both families marks the
    exploratory ones."""
    by_row: dict[str, list[Claim]] = {}
    for c in items:
        by_row.setdefault(c.method, []).append(c)
    tasks = sorted(dict.fromkeys(c.task for c in items), key=lambda t: t == "emotion")
    columns = [f"{task}: {METRICS[m]} {ARROWS[by_name(m).better]}" for task in tasks for m in METRICS]
    out = []
    for claims_ in by_row.values():
        families = {c.family for c in claims_}
        family = PRIMARY if families == {PRIMARY} else EXPLORATORY if families == {EXPLORATORY} else "both"
        row = {"comparison": claims_[0].comparison, "family": family} | dict.fromkeys(columns, "")
        for c in claims_:
            row[f"{c.task}: {METRICS[c.metric]} {ARROWS[by_name(c.metric).better]}"] = (
                _cell(c) + (" (exploratory)" if family == "both" and c.family == EXPLORATORY else ""))
        out.append(row)
    return pd.DataFrame(out)


def table_caption(items: list[Claim], alpha: float) -> str:
    """The verdict table's legend: the family, the marks and the arrows."""
    size = next((c.family_size for c in items if c.family == PRIMARY), 0)
    ci = next((c.level for c in items if c.family == EXPLORATORY), None)
    primary = (f"primary: Holm over m = {size} at alpha = {alpha:g}, each interval at its step's level"
               if size else "no primary comparison here")
    exploratory = f"; exploratory: unadjusted {_level(ci)} intervals" if ci is not None else ""
    return (f"Differences a - b in pp. {primary}{exploratory}. " + ", ".join(MARKS.values())
            + "; ↑ higher is better, ↓ lower is better.")


#: what the report says of a power.json written before the verdict rule's bound (no ``primary_size``, no ``mde_rule``)
STALE_POWER = ("Minimum detectable effects: results/power.json predates the verdict rule's bound (issue 23); rerun "
               "`benchmark power`.")


def _power_sentence(power: dict[str, Any] | None, dataset: str) -> str:
    """What the design could have shown, from power.json: the verdict rule's minimum detectable effects (upper
    bounds, from Holm's first step); says so where they were not simulated."""
    if power is None:
        return "Minimum detectable effects: not computed (run `benchmark power`, a DVC stage)."
    design = power.get("designs", {}).get(dataset)
    if design is None:
        return f"Minimum detectable effects: {dataset} was not simulated."
    if "not_simulated" in design:
        return f"Minimum detectable effects not computed: {design['not_simulated']}."
    if "primary_size" not in power:
        return STALE_POWER
    parts = []
    for task, metrics in design["tasks"].items():
        for metric, words in METRICS.items():
            m = metrics[metric]
            effect = detectable(m["mde_rule"], m["largest_effect"], m["power"]["rule"], power["target"])
            parts.append(f"{task} {words} {effect}")
    m = power["primary_size"]
    return (f"What this design could have shown: with {design['subjects']} people, the verdict rule detects with "
            f"{power['target']:.0%} power a true difference of " + "; ".join(parts)
            + f" (upper bounds: power counted where the {power['ci_method']} interval at Holm's first step, level "
            f"1 - {power['alpha']:g}/{m}, excludes 0, which Holm over the {m} primary hypotheses always rejects; "
            "planted effects change whole people's predictions, fixing some and breaking "
            f"{power['churn']:g} right predictions per unit of net gain; simulated from scenario "
            f"`{design.get('scenario', power['scenario'])}`"
            + (f", chosen because {design['scenario_chosen_because']}" if "scenario_chosen_because" in design else "")
            + f", {power['replicates']} replicates). Smaller true differences are likely to go unseen here: "
            "\"no clear difference\" is not \"no difference\".")


def detectable(mde: float | None, largest: float, curve: list[float], target: float) -> str:
    """A minimum detectable effect as the report prints it: "<= x" where the smallest planted effect of the grid
    already reaches ``target`` power (``curve``: power over :data:`benchmark.studies.power_study.GRID`), "> largest"
    where not even removing all of it does, else "x" (interpolated)."""
    if mde is None:
        return f"> {abs(largest):.1f} pp (not even when all of it is removed)"
    return f"<= {mde:.1f} pp" if curve and curve[0] >= target else f"{mde:.1f} pp"


def _figure(items: list[Claim], *, split: str, dataset: str, figures_dir: Path) -> Figure:
    """The design's forest figure (:func:`benchmark.report.figures.verdict_forest`), saved under ``figures_dir``."""
    name = "_".join(["verdicts", *(re.sub(r"[^a-z0-9]+", "-", p.lower().replace("->", "-to-")).strip("-")
                                   for p in (split, dataset))]) + ".png"
    frame = pd.DataFrame([{"label": f"{c.comparison}, {c.task}", "metric": METRICS[c.metric], "diff": c.diff,
                           "low": c.low, "high": c.high, "rejected": c.rejected, "primary": c.family == PRIMARY,
                           "better": by_name(c.metric).better} for c in items])
    figures.save_png(figures.verdict_forest(frame, title=f"{dataset.upper()}, split {split}"), figures_dir / name)
    return Figure(name, f"Verdicts, {dataset.upper()} split {split}",
                  "Each difference with the interval its verdict reads: the primary family's at Holm's stepped level, "
                  "the exploratory ones unadjusted. Filled: the rule rejects (the interval excludes 0).")


def _explanation(doc: dict[str, Any], alpha: float, primary: list[str], primary_metrics: list[str]) -> list[Block]:
    """How the verdicts were reached, below the tables and figures."""
    ci = doc["statistics"]["ci"]
    family = ", ".join(f"`{c}`" for c in primary) + " x tasks x " + ", ".join(primary_metrics)
    return [Heading("How to read the verdicts", 3), Paragraph(
        f"One rule decides every verdict. The **primary family** of each held-out design ({family}; "
        "`evaluate.primary`, `evaluate.primary_metrics`) is tested by Holm's step-down procedure at family-wise "
        f"alpha = {alpha:g}; each hypothesis's p is the smallest alpha at which its difference interval (the "
        "configured interval construction, the same bootstrap draws) excludes 0, and its printed interval is taken at "
        "Holm's level for its step, 1 - alpha / (m - step + 1) (the level of the first non-rejected step for all after "
        "it), so **the printed interval excludes 0 exactly when Holm rejects**. Every other comparison is "
        f"**exploratory**: its unadjusted {ci:.0%} interval, no correction for the many comparisons. Verdicts: "
        f"\"{MARKS[BETTER]}\" (rejected, in the metric's better direction: macro accuracy higher, a gap lower), "
        f"\"{MARKS[WORSE]}\" (rejected, the other way), \"{MARKS[UNCLEAR]}\" (not rejected: the interval holds "
        "0; that is not evidence of no difference). The subject-level permutation p is reported beside each "
        "sentence as a secondary number; it does not change a verdict."),
        Paragraph("**Inference is conditional on the trained seeds**: the intervals resample people, not training "
                  "runs; a different set of training seeds could move a method's numbers by more than they show "
                  "(the seed sd in the methods comparison says how much the seeds here varied).")]


def blocks(stats: pd.DataFrame, doc: dict[str, Any], power: dict[str, Any] | None, *, alpha: float,
           figures_dir: Path | None = None) -> list[Block]:
    """The section: per held-out design its verdict table and forest figure (when ``figures_dir`` is given) first,
    then how to read them, then per design the sentences and its minimum detectable effects."""
    intro = "Verdicts per held-out design; how they were reached is explained below the figures."
    if doc.get("source") == "sim":
        intro = (f"**These findings describe the simulator** (scenario `{doc.get('scenario', 'unknown')}`), not the "
                 "real FairFace and EmoNet models. " + intro)
    out: list[Block] = [Heading("What this run shows"), Paragraph(intro)]
    produced = findings(stats)
    details: list[Block] = []
    for (split, dataset), items in produced.items():
        rows = stats[(stats["split"] == split) & (stats["dataset"] == dataset) & (stats["partition"] == HELD_OUT)]
        title = f"{dataset.upper()}, split {split} ({int(rows['n_subjects'].iloc[0])} people)"
        out.append(Heading(title, 3))
        verdicts = [f.claim for f in items]
        if verdicts:
            out.append(Table(verdict_table(verdicts), caption=table_caption(verdicts, alpha), css_class="verdicts"))
            if figures_dir is not None:
                out.append(_figure(verdicts, split=split, dataset=dataset, figures_dir=figures_dir))
        else:
            out.append(Paragraph("No method was compared with the reference here."))
        details += [Paragraph(f"**{title}**:"),
                    Bullets(tuple(f.sentence for f in items) + (_power_sentence(power, dataset),))]
    statistics = doc.get("statistics", {})
    out += _explanation(doc, alpha, statistics.get("primary", [HEADLINE_METHOD]),
                        statistics.get("primary_metrics", list(METRICS))) + details
    requested = [item for item in doc.get("contrasts_requested", []) if not item.get("computed", True)]
    if requested:
        out.append(Paragraph("Contrasts not computed (a method of the pair did not run): "
                             + ", ".join("`{}` - `{}`".format(*item["pair"]) for item in requested) + "."))
    return out
