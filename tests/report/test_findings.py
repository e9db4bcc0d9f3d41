"""The report's first section, "What this run shows": every verdict comes from one rule (the stats row's ``rejected``
and the direction of its difference in its metric's sense), every sentence and table row states the numbers of the
row it came from, and the section opens with the verdict table and the forest figure."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from toy_predictions import LAYOUT, clustered_predictions

from benchmark import stats
from benchmark.report import findings
from benchmark.report.document import Bullets, Figure, Heading, Paragraph, Table

GROUP = {"split": "faces->adfes", "dataset": "adfes", "partition": "test", "group": None, "emotion": None,
         "n_subjects": 22, "reference": "uncorrected"}
CONTRAST = stats.contrast_name("corrector", "unimodal")
#: (method, task, metric, diff, verdict low, high, level, family, holm step, rejected, contrast)
ROWS = [
    ("corrector", "emotion", "macro", 4.0, 1.5, 6.5, 0.99375, "primary", 1, True, False),  # better
    ("corrector", "emotion", "average_gap", 2.0, 0.5, 3.5, 0.99286, "primary", 2, True, False),  # worse: gap widens
    ("corrector", "gender", "macro", 1.0, -0.5, 2.5, 0.99167, "primary", 3, False, False),  # no clear difference
    ("corrector", "gender", "average_gap", -3.0, -5.0, -1.0, 0.99167, "primary", 4, False, False),  # never: see test
    (CONTRAST, "emotion", "macro", 0.5, -1.0, 2.0, 0.99167, "primary", 5, False, True),
    (CONTRAST, "emotion", "average_gap", -2.5, -4.0, -1.0, 0.95, "exploratory", 0, True, True),  # better, exploratory
]


def _stats(rows=ROWS, **group) -> pd.DataFrame:
    return pd.DataFrame([{**GROUP, **group, "method": m, "task": t, "metric": metric, "diff": d, "verdict_ci_low": lo,
                          "verdict_ci_high": hi, "verdict_level": level, "family": fam, "holm_step": step,
                          "p_ci_holm": 0.01 * (step or 9), "p_perm": 0.02, "rejected": rej, "contrast": c,
                          "reference": "unimodal" if c else "uncorrected"}
                         for m, t, metric, d, lo, hi, level, fam, step, rej, c in rows])


def _produced(table: pd.DataFrame) -> list[findings.Finding]:
    return findings.findings(table)[("faces->adfes", "adfes")]


def _row(table: pd.DataFrame, claim: findings.Claim) -> pd.Series:
    found = table[(table["split"] == claim.split) & (table["dataset"] == claim.dataset)
                  & (table["partition"] == claim.partition) & (table["method"] == claim.method)
                  & (table["task"] == claim.task) & (table["metric"] == claim.metric)]
    assert len(found) == 1
    return found.iloc[0]


def test_every_sentence_states_the_numbers_of_the_row_it_came_from():
    table = _stats()
    produced = _produced(table)
    assert len(produced) == len(ROWS)
    for finding in produced:
        row = _row(table, finding.claim)
        numbers = f"{row['diff']:+.2f} pp [{row['verdict_ci_low']:+.2f}, {row['verdict_ci_high']:+.2f}]"
        assert numbers in finding.sentence and f"{100 * row['verdict_level']:.4g} % interval" in finding.sentence


def test_the_verdict_is_rejection_and_direction_in_the_metrics_own_sense():
    by_key = {(f.claim.method, f.claim.task, f.claim.metric): f for f in _produced(_stats())}
    assert by_key[("corrector", "emotion", "macro")].claim.verdict == findings.BETTER
    assert "raises the macro accuracy" in by_key[("corrector", "emotion", "macro")].sentence
    assert by_key[("corrector", "emotion", "average_gap")].claim.verdict == findings.WORSE  # a gap that grows
    assert "widens the average gap" in by_key[("corrector", "emotion", "average_gap")].sentence
    assert by_key[("corrector", "gender", "macro")].claim.verdict == findings.UNCLEAR
    assert by_key[(CONTRAST, "emotion", "average_gap")].claim.verdict == findings.BETTER  # a gap that shrinks
    assert "narrows the average gap" in by_key[(CONTRAST, "emotion", "average_gap")].sentence


def test_a_row_the_rule_does_not_reject_is_never_called_better_whatever_its_interval():
    claim = next(f.claim for f in _produced(_stats()) if (f.claim.task, f.claim.metric) == ("gender", "average_gap"))
    assert claim.high < 0 and claim.verdict == findings.UNCLEAR  # the verdict reads `rejected`, not a second rule


def test_there_are_exactly_three_verdicts_and_none_from_disagreeing_procedures():
    verdicts = {f.claim.verdict for f in _produced(_stats())}
    assert verdicts <= {findings.BETTER, findings.WORSE, findings.UNCLEAR}
    assert not any("not settled" in f.sentence for f in _produced(_stats()))


def test_primary_rows_come_first_in_holm_order_and_exploratory_rows_say_so():
    produced = _produced(_stats())
    families = [f.claim.family for f in produced]
    assert families == sorted(families, key=lambda fam: fam != "primary")
    assert [f.claim.step for f in produced if f.claim.family == "primary"] == [1, 2, 3, 4, 5]
    exploratory = [f.sentence for f in produced if f.claim.family == "exploratory"]
    assert exploratory and all("exploratory, unadjusted" in s for s in exploratory)
    assert all("Holm step" in f.sentence for f in produced if f.claim.family == "primary")


def test_a_primary_row_without_an_interval_at_its_level_is_shown_unrejected_and_says_so():
    rows = [("corrector", "emotion", "macro", 4.0, float("nan"), float("nan"), 0.99375, "primary", 1, False, False)]
    (finding,) = _produced(_stats(rows))
    assert finding.claim.verdict == findings.UNCLEAR and "[no interval at this level]" in finding.sentence


def test_the_contrast_sentence_names_both_methods_of_the_pair():
    assert any(f.sentence.startswith("contrast `corrector` - `unimodal`, emotion task:") for f in _produced(_stats()))


def test_only_held_out_groups_have_findings():
    table = pd.concat([_stats(), _stats(partition="train", dataset="faces")], ignore_index=True)
    assert list(findings.findings(table)) == [("faces->adfes", "adfes")]


def test_on_simulated_data_the_section_says_it_describes_the_simulator():
    doc = {"reference": "uncorrected", "statistics": {"ci": 0.95}, "source": "sim", "scenario": "paper"}
    text = " ".join(b.text for b in findings.blocks(_stats(), doc, None, alpha=0.05) if isinstance(b, Paragraph))
    assert "These findings describe the simulator" in text and "`paper`" in text


def test_the_section_opens_with_the_verdict_table_and_the_figure_then_explains(tmp_path):
    doc = {"reference": "uncorrected", "statistics": {"ci": 0.95}, "source": "published"}
    out = findings.blocks(_stats(), doc, None, alpha=0.05, figures_dir=tmp_path)
    kinds = [type(b).__name__ for b in out]
    assert kinds[:5] == ["Heading", "Paragraph", "Heading", "Table", "Figure"]
    table = out[3]
    assert isinstance(table, Table) and table.css_class == "verdicts" and "m = 5" in table.caption
    assert list(table.frame["comparison"]) == ["corrector - uncorrected", "corrector - unimodal"]
    assert (tmp_path / out[4].file).stat().st_size > 0 and isinstance(out[4], Figure)
    first = table.frame.iloc[0]
    assert first["emotion: macro accuracy ↑"] == "▲ +4.00 [+1.50, +6.50] 99.4 %"
    assert first["emotion: average gap ↓"].startswith("▼ +2.00")
    assert first["gender: macro accuracy ↑"].startswith("○ +1.00")
    contrast = table.frame.iloc[-1]
    assert contrast["family"] == "both"  # the contrast's macro is primary, its average gap exploratory
    assert contrast["emotion: average gap ↓"] == "▲ -2.50 [-4.00, -1.00] (exploratory)"
    assert contrast["gender: macro accuracy ↑"] == ""  # no row in stats for it
    text = " ".join(b.text for b in out if isinstance(b, Paragraph))
    assert "conditional on the trained seeds" in text
    assert any(isinstance(b, Heading) and b.text == "How to read the verdicts" for b in out[5:])


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> pd.DataFrame:
    """A stats.parquet of one held-out design from :func:`benchmark.stats.analyse`, written and read back."""
    frame = clustered_predictions(subjects_per_gender=8, seed=5,
                                  logits={"uncorrected": 0.0, "corrector": 0.9, "unimodal": 0.4})
    table = stats.analyse(frame, reference="uncorrected", layouts={"faces": LAYOUT}, attribute="gender",
                          config=stats.StatsConfig(n_resamples=400, n_permutations=200),
                          contrasts=(("corrector", "unimodal"),),
                          primary=stats.PrimaryFamily(("corrector", CONTRAST), ("macro", "average_gap"), 0.05))
    path = tmp_path_factory.mktemp("stats") / "stats.parquet"
    table.to_parquet(path)
    return pd.read_parquet(path)


def test_sentences_from_a_stats_parquet_follow_its_rejections_and_stepped_intervals(analysed):
    produced = findings.findings(analysed)[("s", "faces")]
    primary = [f for f in produced if f.claim.family == "primary"]
    assert len(primary) == 8 and any(f.claim.rejected for f in primary) and not all(f.claim.rejected for f in primary)
    for finding in produced:
        row, claim = _row(analysed, finding.claim), finding.claim
        assert claim.rejected == bool(row["rejected"]) == (claim.low > 0 or claim.high < 0)
        assert f"[{row['verdict_ci_low']:+.2f}, {row['verdict_ci_high']:+.2f}]" in finding.sentence
        better = (row["diff"] > 0) == (row["metric"] == "macro")
        expected = findings.UNCLEAR if not row["rejected"] else findings.BETTER if better else findings.WORSE
        assert claim.verdict == expected
    assert max(f.claim.level for f in primary) == pytest.approx(1 - 0.05 / 8)  # step 1 of 8


POWER = {"target": 0.8, "alpha": 0.05, "scenario": "paper", "replicates": 200, "family_size": 4, "primary_size": 8,
         "ci_method": "bound", "churn": 0.5,
         "designs": {"adfes": {"subjects": 22, "tasks": {task: {
             "macro": {"mde_rule": 6.25, "mde": 5.0, "mde_holm": 8.5, "largest_effect": 30.0,
                       "power": {"rule": [0.1, 0.5, 0.9], "alpha": [0.5, 0.9, 1.0], "holm": [0.0, 0.5, 0.9]}},
             "average_gap": {"mde_rule": None, "mde": None, "mde_holm": None, "largest_effect": 4.0,
                             "power": {"rule": [0.0, 0.1, 0.2], "alpha": [0.0, 0.1, 0.2], "holm": [0.0, 0.0, 0.1]}}}
             for task in ("gender", "emotion")}}}}


def _power_bullet(power: dict) -> str:
    doc = {"reference": "uncorrected", "statistics": {"ci": 0.95}, "source": "published"}
    bullets = [b for b in findings.blocks(_stats(), doc, power, alpha=0.05) if isinstance(b, Bullets)]
    return bullets[0].items[-1]


def test_the_verdict_rules_minimum_detectable_effects_stand_beside_the_findings_as_upper_bounds():
    last = _power_bullet(POWER)
    assert "with 22 people" in last and "emotion macro accuracy 6.2 pp" in last  # the rule's, not the test's 5.0
    assert "upper bounds" in last and "1 - 0.05/8" in last and "8 primary hypotheses" in last
    assert re.search(r"average gap > 4\.0 pp \(not even when all of it is removed\)", last)


def test_an_mde_reached_at_the_smallest_planted_effect_is_printed_as_at_most():
    power = json.loads(json.dumps(POWER))
    for metrics in power["designs"]["adfes"]["tasks"].values():
        metrics["macro"].update(mde_rule=1.5, power={"rule": [0.85, 0.95, 1.0], "alpha": [1.0] * 3, "holm": [1.0] * 3})
    last = _power_bullet(power)
    assert "emotion macro accuracy <= 1.5 pp" in last and "gender macro accuracy <= 1.5 pp" in last
    assert findings.detectable(1.5, 30.0, [0.7, 0.9], 0.8) == "1.5 pp"


def test_a_power_json_from_before_the_rules_bound_asks_for_a_rerun_instead_of_failing():
    stale = json.loads(json.dumps(POWER))
    del stale["primary_size"]
    for metrics in stale["designs"]["adfes"]["tasks"].values():
        for entry in metrics.values():
            del entry["mde_rule"], entry["power"]["rule"]
    assert _power_bullet(stale) == findings.STALE_POWER


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
