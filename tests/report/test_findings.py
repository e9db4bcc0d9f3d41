"""The report's first section, "What this run shows": every sentence states numbers of one stats row, and its verdict
follows from that row's Holm p and interval."""

from __future__ import annotations

import re

import pandas as pd

from benchmark import stats
from benchmark.report import findings
from benchmark.report.document import Bullets, Paragraph

GROUP = {"split": "faces->adfes", "dataset": "adfes", "partition": "test", "group": None, "emotion": None,
         "n_subjects": 22}
#: (method, task, metric, diff, low, high, p_perm, p_holm, contrast)
ROWS = [
    ("corrector", "emotion", "macro", 4.0, 1.5, 6.5, 0.001, 0.004, False),  # supported
    ("corrector", "emotion", "average_gap", -2.0, -5.0, 1.0, 0.20, 0.40, False),  # not supported
    ("corrector", "gender", "macro", 1.0, -0.5, 2.5, 0.01, 0.03, False),  # rejects, interval holds 0: not settled
    ("corrector", "gender", "average_gap", -1.0, -3.0, 1.0, 0.30, 0.60, False),
    (stats.contrast_name("corrector", "unimodal"), "emotion", "macro", 0.5, -1.0, 2.0, 0.5, 1.0, True),
    (stats.contrast_name("corrector", "unimodal"), "emotion", "average_gap", -0.5, -2.0, 1.0, 0.6, 1.0, True),
]


def _stats(rows=ROWS, **group) -> pd.DataFrame:
    return pd.DataFrame([{**GROUP, **group, "method": m, "task": t, "metric": metric, "diff": d, "diff_ci_low": lo,
                          "diff_ci_high": hi, "p_perm": p, "p_holm": ph, "contrast": c}
                         for m, t, metric, d, lo, hi, p, ph, c in rows])


def _row(table: pd.DataFrame, claim: findings.Claim) -> pd.Series:
    found = table[(table["split"] == claim.split) & (table["dataset"] == claim.dataset)
                  & (table["partition"] == claim.partition) & (table["method"] == claim.method)
                  & (table["task"] == claim.task) & (table["metric"] == claim.metric)]
    assert len(found) == 1
    return found.iloc[0]


def test_every_sentence_states_the_numbers_of_the_rows_it_came_from():
    table = _stats()
    produced = findings.findings(table, reference="uncorrected", alpha=0.05)[("faces->adfes", "adfes")]
    assert len(produced) == 3  # corrector x (gender, emotion), the contrast x emotion
    for finding in produced:
        for claim in finding.claims:
            row = _row(table, claim)
            numbers = f"{row['diff']:+.2f} pp [{row['diff_ci_low']:+.2f}, {row['diff_ci_high']:+.2f}]"
            assert numbers in finding.sentence and f"Holm p = {row['p_holm']:.4f}" in finding.sentence


def test_the_verdict_follows_the_holm_p_and_whether_the_interval_excludes_zero():
    produced = findings.findings(_stats(), reference="uncorrected", alpha=0.05)[("faces->adfes", "adfes")]
    by_task = {(f.claims[0].method, f.claims[0].task): f.sentence for f in produced}
    emotion = by_task[("corrector", "emotion")]
    assert f"macro accuracy {findings.SUPPORTED}" in emotion
    assert f"average gap {findings.NOT_SUPPORTED}" in emotion
    assert f"macro accuracy {findings.UNSETTLED}" in by_task[("corrector", "gender")]
    assert "neither is supported by the data" in by_task[(stats.contrast_name("corrector", "unimodal"), "emotion")]


def test_the_contrast_sentence_names_both_methods_of_the_pair():
    produced = findings.findings(_stats(), reference="uncorrected", alpha=0.05)[("faces->adfes", "adfes")]
    assert any(f.sentence.startswith("contrast `corrector` - `unimodal`, emotion task:") for f in produced)


def test_only_held_out_groups_have_findings():
    table = pd.concat([_stats(), _stats(partition="train", dataset="faces")], ignore_index=True)
    assert list(findings.findings(table, reference="uncorrected", alpha=0.05)) == [("faces->adfes", "adfes")]


def test_on_simulated_data_the_section_says_it_describes_the_simulator():
    doc = {"reference": "uncorrected", "statistics": {"ci": 0.95}, "source": "sim", "scenario": "paper"}
    text = " ".join(b.text for b in findings.blocks(_stats(), doc, None, alpha=0.05) if isinstance(b, Paragraph))
    assert "These findings describe the simulator" in text and "`paper`" in text


def test_the_minimum_detectable_effects_stand_beside_the_findings():
    power = {"target": 0.8, "alpha": 0.05, "scenario": "paper", "replicates": 200, "family_size": 4,
             "designs": {"adfes": {"subjects": 22, "tasks": {task: {
                 "macro": {"mde": 6.25, "mde_holm": 8.5, "largest_effect": 30.0},
                 "average_gap": {"mde": None, "mde_holm": None, "largest_effect": 4.0}}
                 for task in ("gender", "emotion")}}}}
    doc = {"reference": "uncorrected", "statistics": {"ci": 0.95}, "source": "published"}
    bullets = [b for b in findings.blocks(_stats(), doc, power, alpha=0.05) if isinstance(b, Bullets)]
    last = bullets[0].items[-1]
    assert "with 22 people" in last and "emotion macro accuracy 6.2 pp" in last
    assert re.search(r"average gap not even when all of it \(4\.0 pp\) is removed", last)


def test_without_power_json_the_section_says_the_effects_were_not_computed():
    doc = {"reference": "uncorrected", "statistics": {"ci": 0.95}, "source": "published"}
    bullets = [b for b in findings.blocks(_stats(), doc, None, alpha=0.05) if isinstance(b, Bullets)]
    assert bullets[0].items[-1].startswith("Minimum detectable effects: not computed")


def test_a_design_power_could_not_simulate_is_repeated_in_one_line():
    power = {"target": 0.8, "alpha": 0.05, "scenario": "paper", "replicates": 200, "family_size": 4,
             "designs": {"adfes": {"not_simulated": "scenario 'paper' has no dataset 'mine'"}}}
    doc = {"reference": "uncorrected", "statistics": {"ci": 0.95}, "source": "table"}
    bullets = [b for b in findings.blocks(_stats(), doc, power, alpha=0.05) if isinstance(b, Bullets)]
    assert bullets[0].items[-1] == ("Minimum detectable effects not computed: scenario 'paper' has no dataset "
                                    "'mine'.")
