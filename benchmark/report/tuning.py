"""The report's tuning section: what the Optuna study chose, next to the paper's configuration, with parameter
importances and the study's figure (Pareto front or optimisation history)."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.core import metrics
from benchmark.core.protocol import test_dataset
from benchmark.core.settings import CorrectorSettings
from benchmark.infra import paths, stored
from benchmark.report.document import Block, Figure, Heading, Paragraph, Table
from benchmark.report.tables import fmt_ci

#: the command that writes reports/tune/
TUNE = "benchmark tune"

FIGURE_NAME = "tune_study.png"


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def held_out_table(results: dict[str, Any], split: str, method: str = "corrector") -> pd.DataFrame | None:
    """The configured ``method`` (the paper's, for the corrector) beside the tuned one (``<method>_tuned``) on
    ``split``'s test dataset: per task and metric, the seed-mean estimate [CI] from metrics.json ``results``; None
    unless both ran there."""
    by_method = results.get(split, {})
    tuned = f"{method}_tuned"
    if not {method, tuned} <= set(by_method):
        return None
    partition = f"{test_dataset(split)}_test"
    rows = []
    tasks = sorted(by_method[method][partition], key=lambda t: t == "emotion")
    configured = "paper configuration [CI]" if method == "corrector" else "configured [CI]"
    for task in tasks:
        for m in metrics.HEADLINE:
            if m.name not in by_method[method][partition][task]:
                continue  # a metric with a row per emotion: its keys carry the emotion
            row = {"task": task, "metric": m.short}
            for name, column in ((method, configured), (tuned, "tuned [CI]")):
                r = by_method[name][partition][task]
                row[column] = fmt_ci(r[m.name], r[f"{m.name}_ci_low"], r[f"{m.name}_ci_high"])
            rows.append(row)
    return pd.DataFrame(rows)


def read_study(tune_dir: Path) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any]] | None:
    """best_params.yaml, trials.csv and importances.json of the study in ``tune_dir`` (None when no study ran), each
    checked to be what the tune stage writes (one line naming the file otherwise)."""
    best_path = tune_dir / paths.TUNE_BEST_PARAMS
    if not best_path.exists():
        return None
    best = stored.read_yaml(best_path, producer=TUNE, keys=("study", "objective", "split", "trial", "cv_macro",
                                                            "cv_average_gap", "params"))
    trials = stored.read_csv(tune_dir / paths.TUNE_TRIALS, producer=TUNE, columns=("state",))
    return best, trials, stored.read_json(tune_dir / paths.TUNE_IMPORTANCES, producer=TUNE)


def tuning_blocks(tune_dir: Path, *, paper: CorrectorSettings, figures_dir: Path,
                  results: dict[str, Any] | None = None) -> list[Block]:
    """Blocks for the tuning section; empty when no study has been run (no best_params.yaml). ``results`` (the
    ``results`` of metrics.json) adds the tuned network's held-out results beside the paper configuration's."""
    study = read_study(tune_dir)
    if study is None:
        return []
    best, trials, importances = study
    method = str(best.get("method", "corrector"))
    states = trials["state"].value_counts().to_dict()
    paper_params = asdict(paper) if method == "corrector" else {}
    rows = [{"parameter": k, **({"paper": _fmt(paper_params.get(k))} if paper_params else {}), "tuned": _fmt(v)}
            for k, v in sorted(best["params"].items())]
    blocks: list[Block] = [
        Heading(f"Tuned {method} (Optuna study)"),
        Paragraph(f"Study **{best['study']}** ({best['objective']} objective) scored each configuration by "
                  f"subject-grouped cross-validation inside the training dataset of **{best['split']}** only; the test "
                  f"dataset was never seen. Trials: {', '.join(f'{n} {s.lower()}' for s, n in sorted(states.items()))}. "
                  f"Chosen trial {best['trial']}: CV macro accuracy {best['cv_macro']:.2f} %, CV average gap "
                  f"{best['cv_average_gap']:.2f} points."),
        Table(pd.DataFrame(rows), caption="The paper's configuration beside the tuned one" if paper_params
              else "The tuned configuration"),
    ]
    held_out = held_out_table(results or {}, best["split"], method)
    if held_out is None:
        blocks.append(Paragraph(f"Add `{method}_tuned` (and `{method}`) to train.methods and {best['split']} to "
                                "train.splits to see the tuned method's held-out results here."))
    else:
        blocks.append(Table(held_out, caption=f"Held out: {test_dataset(best['split'])} under {best['split']}, the "
                                              f"configured {method} beside the tuned one (percent; seed means, CIs "
                                              "from the subject bootstrap)"))
    if importances:
        frame = pd.DataFrame({"parameter": list(importances), "importance (fANOVA)": [f"{v:.3f}" for v in importances.values()]})
        blocks.append(Table(frame, caption="Which parameters mattered (fANOVA importance of the first objective)"))
    figure = tune_dir / paths.TUNE_FIGURE
    if figure.exists():
        shutil.copyfile(figure, figures_dir / FIGURE_NAME)
        title = "Pareto front: CV macro accuracy against CV average gap" if best["objective"] == "pareto" \
            else "Optimisation history: CV objective by trial, and each trial's CV objective at the pruning epochs"
        blocks.append(Figure(FIGURE_NAME, title))
    return blocks
